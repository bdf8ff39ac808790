#!/usr/bin/env bash
# run.sh SERIES [vitest args…]: boot Debian's newest SERIES kernel (6.1, 6.12) under qemu TCG with
# this machine's root filesystem shared read-only over 9p under a tmpfs overlay, and run the live
# suite of this worktree inside it (or only the given files), CI=true. Exit status: the suite's.
# Results (log, rc) land in .cache/kernels/results/<kernel>-<time>/ through a second, writable 9p share.
set -euo pipefail
series=${1:?usage: run.sh SERIES [vitest args...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bash "$here/install-tools.sh"
dir=$(bash "$here/fetch-kernel.sh" "$series")
initrd=$(bash "$here/initramfs.sh" "$dir")
kver=$(ls "$dir/root/lib/modules")
results="$dir/../results/$kver-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$results"
results=$(cd "$results" && pwd)
cp "$here/stage2.sh" "$results/stage2.sh"
printf 'KERNEL_DIR=%q\nWORKTREE=%q\n' "$dir" "$repo" >"$results/job.env"
{
  echo 'set -e'
  echo 'export CI=true'
  printf 'npx vitest run --project live'
  printf ' %q' "$@"
  echo
} >"$results/job.sh"

cpus=$(nproc)
mem=${RXTRACE_VM_MEM:-8G}
echo "kernels: booting $kver (qemu TCG, $cpus cpus, $mem); results in $results" >&2
start=$(date +%s)
# Two 9p shares: the host root read-only (multidevs=remap: it spans several devices), and results.
timeout --foreground "${RXTRACE_VM_TIMEOUT:-3600}" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem" \
  -kernel "$dir/root/boot/vmlinuz-$kver" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$results",mount_tag=results,security_model=none \
  -nic none -nographic -no-reboot </dev/null || true
took=$(($(date +%s) - start))
if [ ! -f "$results/rc" ]; then
  echo "kernels: $kver: the VM stopped before the suite finished (after ${took}s); see above" >&2
  exit 125
fi
rc=$(cat "$results/rc")
echo "kernels: $kver: suite exit $rc after ${took}s; log: $results/log" >&2
exit "$rc"
