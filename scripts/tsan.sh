#!/usr/bin/env bash
# Runs the reader thread under ThreadSanitizer. Needs root (perf_event_open, SO_RCVBUFFORCE);
# run it under the live-test lock: flock /tmp/rxtrace-live.lock npm run test:tsan
#
# 1. scripts/tsan/reader_harness.cc, built with -fsanitize=thread together with
#    native/perf_session.cc: the real PerfSession (perf events, rings, a loopback drop storm)
#    behind a bounded sink like addon.cc's TSFN queue, with a consumer thread that frees room
#    (RoomAvailable, as CallJs does), a thread that pauses and resumes, aggregation, a failing
#    reader (the bad_alloc test hook) and an abandoning stop mid-storm. halt_on_error: any
#    report fails the run. This is the gate.
#    scripts/tsan/sockdiag_harness.cc does the same for native/sock_diag.cc: queries on two
#    namespace keys from four threads, Forget() and CloseAll() with queries in flight.
# 2. With TSAN_NODE=1, also the live tests through node with libtsan preloaded (the N-API side:
#    TSFN, a worker terminated mid-trace). node and V8 are not instrumented: TSan reports races
#    inside them (uv_rwlock_destroy, V8's job threads), and node 20 has crashed (SIGSEGV) under
#    it here. So that step only counts reports with a frame in the addon, and a crash of node is
#    said but does not fail the run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CXX=${CXX:-g++}
LIBTSAN=$("$CXX" -print-file-name=libtsan.so)
if [[ ! -e "$LIBTSAN" || "$LIBTSAN" == libtsan.so ]]; then
  echo "tsan.sh: $CXX has no libtsan.so (install the compiler's libtsan package)" >&2
  exit 2
fi
LIBTSAN=$(readlink -f "$LIBTSAN")
if [[ $(id -u) != 0 ]]; then
  echo "tsan.sh: needs root (perf_event_open on tracepoints, SO_RCVBUFFORCE)" >&2
  exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rxtrace-tsan.XXXXXX")
MOUNTED=0
cleanup() {
  [[ $MOUNTED == 1 ]] && umount /sys/kernel/tracing && echo "tsan.sh: unmounted tracefs from /sys/kernel/tracing"
  if [[ "${KEEP:-0}" == 1 ]]; then echo "tsan.sh: scratch tree kept at $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

TRACEFS=$(awk '$3 == "tracefs" { print $2; exit }' /proc/mounts)
if [[ -z "$TRACEFS" ]]; then
  mount -t tracefs nodev /sys/kernel/tracing
  MOUNTED=1
  TRACEFS=/sys/kernel/tracing
  echo "tsan.sh: mounted tracefs at $TRACEFS (unmounted again at the end)"
fi

cd "$ROOT"
# Build scripts/tsan/NAME.cc with the native source it drives under -fsanitize=thread, and run
# it with ARGS; halt_on_error: any report fails the run.
# --gc-sections: errors.h pulls in napi.h, whose inline code would need node's symbols; the
# harnesses use none of it (each defines the one SysError constructor its source needs).
harness() {
  local name=$1 native=$2
  shift 2
  echo "tsan.sh: building scripts/tsan/$name.cc + $native with -fsanitize=thread"
  "$CXX" -std=c++20 -O1 -g -fsanitize=thread -fno-omit-frame-pointer -Wall -Wextra \
    -ffunction-sections -fdata-sections -Wl,--gc-sections \
    -I node_modules/node-addon-api -I /usr/include/node \
    -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -DNAPI_CPP_EXCEPTIONS \
    "scripts/tsan/$name.cc" "$native" -o "$WORK/$name" -lpthread
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}" "$WORK/$name" "$@"
  echo "tsan.sh: $name clean"
}
harness reader_harness native/perf_session.cc "$TRACEFS"
harness sockdiag_harness native/sock_diag.cc

[[ "${TSAN_NODE:-0}" == 1 ]] || exit 0

# ---- 2. the addon inside node (TSAN_NODE=1) ----
cp -r binding.gyp package.json tsconfig.json tsconfig.build.json vitest.config.ts bin native src test "$WORK"/
mkdir -p "$WORK/scripts" "$WORK/tsan-logs"
cp scripts/rxflood.c "$WORK/scripts/"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
cd "$WORK"
npx --no-install node-gyp configure >/dev/null
make -C build rxtrace CXXFLAGS="-fsanitize=thread -fno-omit-frame-pointer -g -O1" LDFLAGS="-fsanitize=thread"
make -C build rxflood >/dev/null
npx --no-install tsc -p tsconfig.build.json || echo "tsan.sh: tsc reported type errors; dist/ was emitted anyway"
TESTS=("$@")
[[ ${#TESTS[@]} -gt 0 ]] || TESTS=(test/live/native.test.ts test/live/aggregate.test.ts test/live/faults-library.test.ts)
echo "tsan.sh: running ${TESTS[*]} under node with LD_PRELOAD=$LIBTSAN"
LD_PRELOAD="$LIBTSAN" TSAN_OPTIONS="log_path=$WORK/tsan-logs/report:halt_on_error=0:exitcode=0" \
  node node_modules/vitest/vitest.mjs run --project live "${TESTS[@]}" || echo "tsan.sh: vitest under TSan exited with $? (node itself is not TSan-clean)"
node -e '
  const fs = require("node:fs");
  const dir = process.argv[1];
  let ours = 0, others = 0;
  for (const f of fs.readdirSync(dir)) {
    for (const block of fs.readFileSync(`${dir}/${f}`, "utf8").split(/^={10,}$/m)) {
      if (!/WARNING: ThreadSanitizer/.test(block)) continue;
      if (/rxtrace\.node|\/native\/[a-z_]+\.(cc|h):/.test(block)) {
        ours++;
        process.stderr.write(`${block.trim()}\n==================\n`);
      } else others++;
    }
  }
  console.log(`tsan.sh: ${ours} report(s) in the addon; ${others} elsewhere (node, libuv, V8: not ours)`);
  process.exit(ours > 0 ? 1 : 0);
' "$WORK/tsan-logs"
