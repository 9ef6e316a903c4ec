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
ip link set lo up 2>/dev/null
hostname sbx-vm
export HOME=/root PYTHONDONTWRITEBYTECODE=1 SBX_IN_VM=1 TMPDIR=/var/tmp
set -a
. /tmp/xfer/env 2>/dev/null
set +a
cd "$(cat /tmp/xfer/cwd)" || cd /
echo "vm-guest: kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)" > /tmp/xfer/output
eval "$(cat /tmp/xfer/cmd)" >> /tmp/xfer/output 2>&1
echo $? > /tmp/xfer/rc
sync
umount /var/tmp 2>/dev/null
umount /tmp/xfer
echo o > /proc/sysrq-trigger
sleep 10
