#!/usr/bin/env bash
# What the kernel matrix needs on the host: qemu (TCG; /dev/kvm here is kvm_pvm, which cannot boot
# a stock kernel), a static busybox for the initramfs, cpio to pack it. Installed only if missing.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --help 2>&1 | grep -q 'statically' || dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v capsh >/dev/null || need+=(libcap2-bin)
command -v setpriv >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "kernels: installing ${need[*]}" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
