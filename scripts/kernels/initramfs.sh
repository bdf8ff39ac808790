#!/usr/bin/env bash
# initramfs.sh KERNEL_DIR → prints the path of an initramfs for that unpacked kernel: a static
# busybox, scripts/kernels/init (stage 1), and the modules stage 1 must insmod before it can
# reach the host's root over 9p (virtio-pci, 9p, overlay) with every dependency first, in the
# order modules.dep gives for THIS kernel (it changed between 6.1.0-50 and -57).
set -euo pipefail
dir=${1:?usage: initramfs.sh KERNEL_DIR}
here=$(cd "$(dirname "$0")" && pwd)
kver=$(ls "$dir/root/lib/modules")
mods="$dir/root/lib/modules/$kver"
out="$dir/initramfs.cpio.gz"
if [ -f "$out" ] && [ "$out" -nt "$here/init" ] && [ "$out" -nt "$0" ]; then echo "$out"; exit 0; fi

declare -A seen=()
order=()
# load MODULE_PATH: its dependencies (modules.dep lists the one to load first last), then it.
load() {
  local m=$1 deps d i
  [ -n "${seen[$m]:-}" ] && return
  seen[$m]=1
  deps=$(awk -v m="$m:" '$1 == m { for (i = 2; i <= NF; i++) print $i }' "$mods/modules.dep")
  mapfile -t deps <<<"$deps"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do [ -n "${deps[$i]}" ] && load "${deps[$i]}"; done
  order+=("$m")
}
for want in virtio_pci 9pnet_virtio 9p overlay; do
  # .ko on 6.1, .ko.xz on 6.12
  path=$(awk -F: -v w="$want" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", n) } n == w { print $1; exit }' "$mods/modules.dep")
  if [ -z "$path" ]; then
    grep -q "/$want.ko\$" "$mods/modules.builtin" || { echo "initramfs: $kver has no module $want" >&2; exit 1; }
    continue # built in
  fi
  load "$path"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,lower,rw,newroot,modules}
cp /bin/busybox "$tmp/bin/busybox"
cp "$here/init" "$tmp/init"
chmod +x "$tmp/init"
: >"$tmp/modules.order"
# busybox insmod takes plain .ko: decompress what the package compressed
for m in "${order[@]}"; do
  b=$(basename "$m")
  case "$m" in
    *.xz) xz -dc "$mods/$m" >"$tmp/modules/${b%.xz}"; b=${b%.xz} ;;
    *.zst) zstd -qdc "$mods/$m" >"$tmp/modules/${b%.zst}"; b=${b%.zst} ;;
    *.gz) gzip -dc "$mods/$m" >"$tmp/modules/${b%.gz}"; b=${b%.gz} ;;
    *) cp "$mods/$m" "$tmp/modules/" ;;
  esac
  echo "$b" >>"$tmp/modules.order"
done
echo "kernels: initramfs for $kver loads $(tr '\n' ' ' <"$tmp/modules.order")" >&2
(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
