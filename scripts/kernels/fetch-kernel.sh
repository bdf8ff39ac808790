#!/usr/bin/env bash
# fetch-kernel.sh SERIES → prints the directory of an unpacked Debian kernel for SERIES (6.1, 6.12):
# the newest linux-image-<SERIES>…-amd64-unsigned that apt offers, plus kmod and libkmod2 (the host
# may have no modprobe, and `ip link add … type veth` needs one in the VM), unpacked with dpkg -x
# under .cache/kernels/. Downloads are cached: a second run prints the same directory at once.
set -euo pipefail
series=${1:?usage: fetch-kernel.sh SERIES (e.g. 6.1)}
cache=${RXTRACE_KERNELS_CACHE:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/kernels}
mkdir -p "$cache"
# 6.1 → linux-image-6.1.0-57-amd64-unsigned; 6.12 → linux-image-6.12.118+deb12-amd64-unsigned
re="^linux-image-${series//./\\.}[.-][0-9][^ ]*-amd64-unsigned\$"
pkg=$(apt-cache search --names-only "$re" 2>/dev/null | awk '{print $1}' | grep -v -e cloud -e rt-amd64 | sort -V | tail -1 || true)
if [ -z "$pkg" ]; then
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  pkg=$(apt-cache search --names-only "$re" | awk '{print $1}' | grep -v -e cloud -e rt-amd64 | sort -V | tail -1 || true)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: apt offers no linux-image for $series" >&2; exit 1; }
dir="$cache/$pkg"
if [ ! -f "$dir/.done" ]; then
  echo "kernels: downloading $pkg, kmod, libkmod2 into $dir" >&2
  rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root"
  (cd "$dir/debs" && apt-get download -q "$pkg" kmod libkmod2 >&2)
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
  # The package ships no modules.dep (its postinst runs depmod): make it with the kmod we fetched.
  kver=$(ls "$dir/root/lib/modules")
  ln -sf "$dir/root/bin/kmod" "$dir/depmod"
  LD_LIBRARY_PATH="$dir/root/usr/lib/x86_64-linux-gnu" "$dir/depmod" -b "$dir/root" "$kver"
  touch "$dir/.done"
fi
echo "$dir"
