#!/bin/sh
# Second stage of the test guest: runs on the host's root (read-only over
# 9p) as PID 1. Gives the guest writable scratch space and a pure cgroup v2
# hierarchy, runs the command from tests/vm/run.sh, reports, powers off.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
xfer=$(sed -n 's/.*sbx.xfer=\([^ ]*\).*/\1/p' /proc/cmdline)
for d in /tmp /run /root; do mount -t tmpfs -o mode=1777,size=50% tmpfs "$d"; done
# The scratch disk: where tests keep state (ext4 takes idmapped mounts).
mount -t ext4 -o prjquota /dev/vda /var/tmp && chmod 1777 /var/tmp || mount -t tmpfs -o mode=1777 tmpfs /var/tmp
chmod 700 /root
mkdir -p /tmp/xfer
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 xfer /tmp/xfer
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The shared directories go over the scratch file systems above, at the
# paths they have on the host, in the order run.sh exported them.
n=0
while read -r d; do
	mkdir -p "$d" 2>/dev/null
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose "share$n" "$d" ||
		echo "vm-guest: cannot mount the shared directory $d" >> /tmp/xfer/output
	n=$((n + 1))
done < /tmp/xfer/shares
ip link set lo up 2>/dev/null
hostname sbx-vm
export HOME=/root PYTHONDONTWRITEBYTECODE=1 SBX_IN_VM=1 TMPDIR=/var/tmp
set -a
. /tmp/xfer/env 2>/dev/null
set +a
echo "vm-guest: kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)" >> /tmp/xfer/output
# A stalled guest explains itself on the serial console, which does not go
# through 9p: when the output has not grown for SBX_VM_DUMP seconds (150),
# the blocked tasks, every CPU's backtrace and the process list are written
# there, once per stall (tests/vm/run.sh shows them when it gives up).
# The watch runs from a copy of the host's static busybox on tmpfs, so
# that nothing it runs is read over 9p: it reports a hung share too.
mkdir -p /run/vmtools && cp /bin/busybox /run/vmtools/busybox
SBX_VM_DUMP=${SBX_VM_DUMP:-150} /run/vmtools/busybox sh -c '
	bb=/run/vmtools/busybox
	last=-1 since=$($bb date +%s) dumped=
	while $bb sleep 10; do
		# A 9p share that hangs must not hang this watch too.
		size=$($bb timeout 30 $bb stat -c %s /tmp/xfer/output 2>/dev/null || echo unknown)
		now=$($bb date +%s)
		if [ "$size" != unknown ] && [ "$size" != "$last" ]; then
			last=$size since=$now dumped=
			continue
		fi
		[ -z "$dumped" ] && [ $((now - since)) -ge "$SBX_VM_DUMP" ] || continue
		dumped=1
		{
			echo "vm-guest: no output for $((now - since)) s; blocked tasks, CPUs and processes follow"
			echo 7 > /proc/sys/kernel/printk
			echo w > /proc/sysrq-trigger
			echo l > /proc/sysrq-trigger
			$bb ps -o pid,ppid,stat,rss,args 2>&1 | $bb head -200
			$bb grep -E "^(MemFree|MemAvailable|Shmem|Dirty|Writeback):" /proc/meminfo
			echo 3 > /proc/sys/kernel/printk
			echo "vm-guest: end of the report"
		} > /dev/console 2>&1
	done
' &
cwd=$(cat /tmp/xfer/cwd)
if cd "$cwd" 2>/dev/null; then
	eval "$(cat /tmp/xfer/cmd)" >> /tmp/xfer/output 2>&1
	echo $? > /tmp/xfer/rc
else
	# Never run the command somewhere else: its relative paths would
	# name other files, or none.
	echo "vm-guest: cannot enter the working directory $cwd" >> /tmp/xfer/output
	echo 1 > /tmp/xfer/rc
fi
sync
umount /var/tmp 2>/dev/null
umount /tmp/xfer
echo o > /proc/sysrq-trigger
sleep 10
