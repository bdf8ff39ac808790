#!/usr/bin/env bash
# `npm run test:ship`: build the release artifacts and test them (test/ship):
#   the prebuilt addons for x64 and arm64 (their ABI check; arm64 loaded under qemu with Debian's
#   arm64 Node), the packed tarball installed
#   with no compiler, the single executable run with no node on PATH.
# The live parts take the shared live-test lock (they make real drops on this kernel).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/ship/apt-tools.sh
bash scripts/ensure-tools.sh
# The drop generator for the live checks (a dev tool, not part of the package).
[ -f build/Release/rxflood ] || npx node-gyp rebuild >/dev/null
bash scripts/ship/prebuild.sh x64 arm64
npm run build --silent
pack="$(mktemp -d)"
trap 'rm -rf "$pack"' EXIT
tarball="$pack/$(npm pack --silent --pack-destination "$pack" | tail -1)"
echo "test:ship: $(basename "$tarball"): $(tar -tzf "$tarball" | grep -c .) files, $(tar -tzf "$tarball" | grep -c '^package/prebuilds/.*\.node$') prebuilt addons"
node scripts/ship/build-sea.mjs
# Debian's arm64 Node and qemu-user-static, unpacked (not installed), to load the arm64 addon.
RXTRACE_ARM64_NODE="$(bash scripts/ship/arm64-node.sh)"
export RXTRACE_ARM64_NODE
export RXTRACE_TARBALL="$tarball" RXTRACE_SEA="$PWD/dist/sea/rxtrace-linux-$(node -p process.arch)"
flock /tmp/rxtrace-live.lock npx vitest run --project ship "$@"
