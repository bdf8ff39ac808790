#!/usr/bin/env bash
# `npm run test:kernels [-- vitest args…]`: the live suite on each kernel of the matrix, one VM at a
# time (each takes both cores). RXTRACE_KERNELS overrides the matrix ("6.1" for just Debian 12's).
# Exit status: 0 only if every kernel's suite passed; the summary names each kernel's result.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
matrix=${RXTRACE_KERNELS:-6.1 6.12}
fail=0
summary=()
for series in $matrix; do
  echo "kernels: === $series ===" >&2
  bash "$here/run.sh" "$series" "$@"
  rc=$?
  summary+=("$series: exit $rc")
  [ "$rc" -eq 0 ] || fail=1
done
echo "kernels: ${summary[*]}" >&2
exit "$fail"
