#!/usr/bin/env bash
# Build the release addons into prebuilds/linux-<arch>/rxtrace.node (x64 native, arm64 with
# Debian's aarch64-linux-gnu cross compiler), then check their ABI.
#
# The build goes through node-gyp and binding.gyp (so the source list is binding.gyp's, whatever
# other branches add), with -Drxtrace_portable=1: static libstdc++/libgcc and glibc symbol
# versions pinned (native/glibc-compat.h). It runs in a scratch copy of the package so that the
# developer build in build/ is left alone.
#   usage: scripts/ship/prebuild.sh [x64] [arm64]     (both by default)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
arches=("$@")
[ "${#arches[@]}" -gt 0 ] || arches=(x64 arm64)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# What node-gyp reads: binding.gyp and every file under native/ and scripts/*.c it may name.
cp "$root/binding.gyp" "$work/"
cp -r "$root/native" "$work/native"
mkdir -p "$work/scripts" && cp "$root"/scripts/*.c "$work/scripts/"
ln -s "$root/node_modules" "$work/node_modules"
gyp="$root/node_modules/node-gyp/bin/node-gyp.js"
# Node-API headers are the same for every Node >= 20 and every arch: use the running node's own
# (as npm does with nodedir=/usr here), so no header download is needed.
nodedir="${npm_config_nodedir:-$(cd "$(dirname "$(command -v node)")/.." && pwd)}"
[ -f "$nodedir/include/node/node_api.h" ] || nodedir=""
for arch in "${arches[@]}"; do
  case "$arch" in
    x64) cc=gcc cxx=g++ ;;
    arm64) cc=aarch64-linux-gnu-gcc cxx=aarch64-linux-gnu-g++ ;;
    *) echo "prebuild: unknown arch '$arch' (x64 or arm64)" >&2; exit 64 ;;
  esac
  command -v "$cxx" >/dev/null || { echo "prebuild: $cxx not found (run scripts/ship/apt-tools.sh as root)" >&2; exit 69; }
  (cd "$work" && CC="$cc" CXX="$cxx" LINK="$cxx" node "$gyp" rebuild --arch="$arch" ${nodedir:+--nodedir="$nodedir"} --loglevel=warn -- -Drxtrace_portable=1 >"$work/build-$arch.log" 2>&1) || {
    cat "$work/build-$arch.log" >&2; echo "prebuild: $arch build failed" >&2; exit 1; }
  mkdir -p "$root/prebuilds/linux-$arch"
  cp "$work/build/Release/rxtrace.node" "$root/prebuilds/linux-$arch/rxtrace.node"
  echo "prebuild: prebuilds/linux-$arch/rxtrace.node"
done
for arch in "${arches[@]}"; do bash "$root/scripts/check-abi" "$root/prebuilds/linux-$arch/rxtrace.node"; done
