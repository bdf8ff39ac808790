#!/usr/bin/env bash
# Tools the release build and its checks need, from Debian's packages: the arm64 cross compiler
# (g++-aarch64-linux-gnu brings binutils-aarch64-linux-gnu), file(1) for the machine check.
# Only as root, only through apt, and only what is missing.
set -euo pipefail
need=()
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v aarch64-linux-gnu-readelf >/dev/null || need+=(binutils-aarch64-linux-gnu)
command -v file >/dev/null || need+=(file)
command -v readelf >/dev/null || need+=(binutils)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "rxtrace: missing release tools: ${need[*]} (install them with apt as root)" >&2
  exit 1
fi
echo "rxtrace: installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
