#!/bin/bash
# Stage 2 in the VM (copied into the results share by run.sh): the mounts a booted Debian has,
# this kernel's modules where modprobe looks (so `ip link add … type veth` autoloads), then the
# job run.sh wrote, its output to the console and to the results share; then power off.
# debugfs is NOT mounted: tracefs must be found at /sys/kernel/tracing, as on a real system.
R=/mnt/rxtrace-results
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tracefs nodev /sys/kernel/tracing
mount -t cgroup2 none /sys/fs/cgroup
. "$R/job.env" # KERNEL_DIR WORKTREE (and RXTRACE_* for the job)
kver=$(uname -r)
mkdir -p "/usr/lib/modules/$kver"
mount --bind "$KERNEL_DIR/root/lib/modules/$kver" "/usr/lib/modules/$kver"
cp "$KERNEL_DIR/root/bin/kmod" /usr/bin/kmod
cp -a "$KERNEL_DIR"/root/usr/lib/x86_64-linux-gnu/libkmod.so.2* /usr/lib/x86_64-linux-gnu/
for t in modprobe insmod rmmod lsmod depmod modinfo; do ln -sf /usr/bin/kmod "/usr/sbin/$t"; done
echo /usr/sbin/modprobe >/proc/sys/kernel/modprobe
ip link set lo up
hostname "rxtrace-$kver"
ulimit -n 65536 2>/dev/null || ulimit -n 20000
echo "kernels: $(uname -r) up in $(cut -d' ' -f1 /proc/uptime)s, $(nproc) cpus, perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid); running: $(cat "$R/job.sh" | tail -1)"
cd "$WORKTREE"
bash "$R/job.sh" 2>&1 | tee "$R/log"
echo "${PIPESTATUS[0]}" >"$R/rc"
sync
echo o >/proc/sysrq-trigger
sleep 30
