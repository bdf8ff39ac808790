#!/usr/bin/env bash
# arm64-node.sh → prints a directory with an arm64 Node to load the arm64 addon under qemu:
#   DIR/qemu-aarch64-static   (Debian's qemu-user-static, unpacked)
#   DIR/root                  (Debian bookworm's nodejs:arm64 and its libraries, unpacked: a sysroot)
# run: DIR/qemu-aarch64-static -L DIR/root DIR/root/usr/bin/node -e '…'
# Everything comes from Debian's archive through apt, with a private apt state (arm64 lists, an
# empty dpkg status, its own cache) so the host's apt configuration and dpkg are left alone, and
# nothing is installed. Cached under .cache/arm64/: a second run prints the directory at once.
set -euo pipefail
dir=${RXTRACE_ARM64_CACHE:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/arm64}
if [ ! -f "$dir/.done" ]; then
  echo "arm64: downloading nodejs:arm64 (with its libraries) and qemu-user-static into $dir" >&2
  rm -rf "$dir"
  apt="$dir/apt"
  mkdir -p "$apt/etc/sources.list.d" "$apt/etc/preferences.d" "$apt/state/lists/partial" "$apt/cache/archives/partial" "$dir/root" "$dir/qemu"
  touch "$apt/state/status"
  cp /etc/apt/sources.list.d/*.sources "$apt/etc/sources.list.d/" 2>/dev/null || true
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$apt/etc/sources.list.d/host.list"
  opts=(-o "Dir::Etc=$apt/etc" -o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$apt/etc/sources.list.d"
        -o "Dir::State=$apt/state" -o "Dir::State::status=$apt/state/status" -o "Dir::Cache=$apt/cache"
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq >&2
  apt-get "${opts[@]}" install --download-only -y -qq --no-install-recommends nodejs >&2
  for deb in "$apt"/cache/archives/*.deb; do dpkg -x "$deb" "$dir/root"; done
  (cd "$apt" && apt-get -o APT::Sandbox::User=root download -q qemu-user-static >&2)
  dpkg -x "$apt"/qemu-user-static_*.deb "$dir/qemu"
  # Only the aarch64 emulator (the package unpacks to ~400 MiB of every arch).
  cp "$dir/qemu/usr/bin/qemu-aarch64-static" "$dir/qemu-aarch64-static"
  rm -rf "$apt" "$dir/qemu"
  touch "$dir/.done"
fi
echo "$dir"
