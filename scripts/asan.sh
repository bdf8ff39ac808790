#!/usr/bin/env bash
# Runs the native addon under AddressSanitizer: builds it with -fsanitize=address in a scratch
# copy of the tree (so build/ and everyone using it stay untouched), then runs live tests there
# with libasan preloaded into node: by default test/live/native.test.ts (the addon alone) and
# test/live/faults-library.test.ts (close twice, close mid-iteration, a worker terminated
# mid-storm, slow consumers, failed opens, 20 open/close cycles under a storm) and
# test/live/aggregate.test.ts (the reader thread's aggregation of identical drops). Needs root.
#
#   bash scripts/asan.sh                          # build, test, remove the scratch tree
#   bash scripts/asan.sh test/live/library.test.ts   # other live test files instead
#   KEEP=1 bash scripts/asan.sh                   # keep it (path printed) to rerun or debug
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CXX=${CXX:-g++}
LIBASAN=$("$CXX" -print-file-name=libasan.so)
if [[ ! -e "$LIBASAN" || "$LIBASAN" == libasan.so ]]; then
  echo "asan.sh: $CXX has no libasan.so (install the compiler's libasan package)" >&2
  exit 2
fi
LIBASAN=$(readlink -f "$LIBASAN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rxtrace-asan.XXXXXX")
cleanup() {
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "asan.sh: scratch tree kept at $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# A copy, not symlinks: src/native.ts finds the addon relative to its own real path, and the
# test finds the package root from its own, so both must live in the scratch tree.
cd "$ROOT"
cp -r binding.gyp package.json tsconfig.json tsconfig.build.json vitest.config.ts bin native src test "$WORK"/
mkdir -p "$WORK/scripts"
cp scripts/rxflood.c "$WORK/scripts/"
ln -s "$ROOT/node_modules" "$WORK/node_modules"

cd "$WORK"
echo "asan.sh: building the addon with -fsanitize=address in $WORK"
npx --no-install node-gyp configure >/dev/null
# -O1 and frame pointers give usable ASan stacks; the flags come after gyp's own -O3.
make -C build rxtrace \
  CXXFLAGS="-fsanitize=address -fno-omit-frame-pointer -fno-sanitize-recover=all -g -O1" \
  LDFLAGS="-fsanitize=address"
# (not grep -q: with pipefail, ldd dying of SIGPIPE when grep exits early fails the check)
if ! ldd build/Release/rxtrace.node | grep libasan >/dev/null; then
  echo "asan.sh: build/Release/rxtrace.node is not linked against libasan" >&2
  exit 1
fi
# The drop generator the tests drive (not instrumented: it is not under test), and dist/ for
# the tests' workers and child processes, which load the built package (and so this addon).
make -C build rxflood >/dev/null
npx --no-install tsc -p tsconfig.build.json || echo "asan.sh: tsc reported type errors; dist/ was emitted anyway"

# node itself is not instrumented, so libasan must be loaded first (LD_PRELOAD), and its
# exit-time "leaks" (V8, libuv) are noise: leak detection stays off. The fd and
# openSessionCount checks in the test cover the addon's own resource leaks.
# Children inherit all of this: vitest's forked workers, the python3 sink, `node -e` children.
export LD_PRELOAD="$LIBASAN"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:${ASAN_OPTIONS:-}"
TESTS=("$@")
[[ ${#TESTS[@]} -gt 0 ]] || TESTS=(test/live/native.test.ts test/live/faults-library.test.ts test/live/aggregate.test.ts)
echo "asan.sh: running ${TESTS[*]} with LD_PRELOAD=$LIBASAN"
npx --no-install vitest run --project live "${TESTS[@]}"
