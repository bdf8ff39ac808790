#!/usr/bin/env bash
# `npm run demo`: the main job in one command. A "slow consumer" UDP socket on loopback that never
# reads; a burst of datagrams every second; rxtrace shows each drop live with its socket and
# owner, then the socket snapshot. Needs root (perf_event_open on tracepoints).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "rxtrace demo: run as root (tracing tracepoints needs root or CAP_PERFMON)" >&2; exit 77; fi
flood=build/Release/rxflood
port=${RXTRACE_DEMO_PORT:-45679}
exec 3< <(sleep 30)
"$flood" sink --bind "127.0.0.1:$port" --rcvbuf 1 --comm slow-consumer <&3 >/tmp/rxtrace-demo.$$ &
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -f /tmp/rxtrace-demo.$$' EXIT
for _ in $(seq 50); do grep -q READY /tmp/rxtrace-demo.$$ 2>/dev/null && break; sleep 0.1; done
( for _ in 1 2 3 4; do sleep 1; "$flood" send --to "127.0.0.1:$port" -n 5 >/dev/null; done ) &
echo "== rxtrace trace --port $port --duration 6 --format text   (5 datagrams a second into a socket that never reads)"
node bin/rxtrace.js trace --port "$port" --duration 6 --format text
echo
echo "== rxtrace sockets --dropping --format text"
node bin/rxtrace.js sockets --dropping --format text | head -5
wait
