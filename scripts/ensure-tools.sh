#!/usr/bin/env bash
# Install the system tools the live tests and the demo use, when missing: jq, tmux, iproute2
# (ip, ss, nstat), perf, prometheus (+ promtool, for the serve test). Only as root, only through
# apt; otherwise say what is missing. Tests never install anything themselves: an apt run
# elsewhere on the machine holds the dpkg lock, and we wait for it (up to 5 min) instead of failing.
set -euo pipefail
need=()
command -v jq >/dev/null || need+=(jq)
command -v tmux >/dev/null || need+=(tmux)
command -v ss >/dev/null || need+=(iproute2)
command -v nstat >/dev/null || need+=(iproute2)
command -v perf >/dev/null || need+=(linux-perf)
command -v setpriv >/dev/null || need+=(util-linux)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "rxtrace: missing tools for live tests: ${need[*]} (install them with apt as root)" >&2
  exit 0
fi
echo "rxtrace: installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
LOCK=(-o DPkg::Lock::Timeout=300)
apt-get "${LOCK[@]}" update -qq >/dev/null
apt-get "${LOCK[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null
