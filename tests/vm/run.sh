#!/bin/bash
# Run a command inside a QEMU guest with a pure cgroup v2 hierarchy, using
# Debian's own kernel package (fetched with apt-get download), a busybox
# initramfs, and this machine's / shared read-only over 9p. The guest runs
# the command as root from the same paths as the host, with tmpfs on /tmp,
# /run and /root and a scratch disk on /var/tmp, and its exit code becomes
# ours.
#
#   tests/vm/run.sh [--timeout SECONDS] [--mem MB] [--share DIR]... -- COMMAND [ARG]...
#
# The working directory, every --share DIR and the directory given to a
# --builddir option of COMMAND are shared again at their own paths, mounted
# over the guest's scratch file systems, so that a checkout under /root or
# /tmp is seen there as on the host. The guest fails at once, naming the
# path, when it cannot enter the working directory.
#
# A guest whose output stops growing for SBX_VM_STALL seconds (default
# 240; no test runs a fifth as long there) is stopped, what it printed is
# shown, and it is booted again, up to SBX_VM_BOOTS boots in all (4); so
# is one that has printed nothing after SBX_VM_BOOT seconds (180), a boot
# that hangs, and one that ends without reporting a result (the end of its
# console is shown). A boot after the first goes on where the last one
# stopped: the tests that ended then (its PASS, SKIP and FAIL lines) are
# listed in SBX_TEST_DONE, which tests/integration/run.py does not run
# again but counts as they ended. The guest itself writes the blocked
# tasks, its CPUs' backtraces and its processes to the console after
# SBX_VM_DUMP seconds (default 150) without output, and that report is
# shown. (Under TCG the guest sometimes stops altogether, timers included,
# after SeaBIOS or in the middle of the tests; the cause is not known. The
# first boot uses the CPU model SBX_VM_CPU, default max; later ones
# SBX_VM_CPU_AGAIN, default qemu64, which TCG guests with two CPUs are
# reported to hang less with.)
#
# Exit 77 (skip) when the guest cannot be built or booted here.
set -euo pipefail
timeout_s=2400
mem_mb=3072
shares=()
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) timeout_s=$2; shift 2 ;;
	--mem) mem_mb=$2; shift 2 ;;
	--share) shares+=("$2"); shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--timeout S] [--mem MB] -- COMMAND..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
cache=${SBX_VM_CACHE:-/var/cache/sandboxd-vm}
skip() { echo "vm: SKIP: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (apt-get download and shared /)"
need=
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
[ -x /bin/busybox ] || need="$need busybox-static"
command -v cpio >/dev/null || need="$need cpio"
PATH=$PATH:/usr/sbin:/sbin
command -v depmod >/dev/null || need="$need kmod"
if [ -n "$need" ]; then
	echo "vm: installing$need"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null; } ||
		skip "cannot install$need"
fi
ldd /bin/busybox >/dev/null 2>&1 && skip "/bin/busybox is not static (install busybox-static)"
mkdir -p "$cache"

# The kernel: Debian's current amd64 kernel package, unpacked once.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
	apt-get update -qq || true
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || skip "no linux-image-amd64 package known to apt"
kdir=$cache/$pkg
if [ ! -d "$kdir/lib/modules" ]; then
	echo "vm: fetching $pkg"
	rm -rf "$kdir" "$cache/dl"
	mkdir -p "$cache/dl"
	(cd "$cache/dl" && apt-get download "$pkg" >/dev/null 2>&1) || skip "apt-get download $pkg failed"
	dpkg-deb -x "$cache"/dl/*.deb "$kdir.tmp" && mv "$kdir.tmp" "$kdir"
	rm -rf "$cache/dl"
fi
kver=$(ls "$kdir/lib/modules" | head -1)
vmlinuz=$kdir/boot/vmlinuz-$kver
# The package ships no modules.dep: depmod makes it at install time.
[ -s "$kdir/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir" "$kver" || skip "depmod failed"
[ -r "$vmlinuz" ] || skip "no kernel image in $pkg"

# The initramfs: busybox, the modules needed to reach the shared root and
# to run sandboxes, and the init below. Rebuilt when this script changes.
initrd=$cache/initrd-$kver.cpio.gz
stamp=$(cat "$0" "$here/guest-init.sh" | md5sum | cut -c1-12)
if [ ! -r "$initrd" ] || [ "$(cat "$initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "vm: building initramfs for $kver"
	ird=$(mktemp -d)
	trap 'rm -rf "$ird"' EXIT
	mkdir -p "$ird"/{bin,sbin,proc,sys,dev,host,lib/modules}
	cp /bin/busybox "$ird/bin/busybox"
	want="virtio_pci virtio_blk 9pnet_virtio 9p overlay loop quota_tree quota_v2 crc32c_generic crc32c-intel libcrc32c ext4 veth bridge nf_tables nft_chain_nat nf_nat nft_ct
	      nft_masq nft_fib_inet nf_conntrack br_netfilter tun"
	moddir=$kdir/lib/modules/$kver
	: > "$ird/modules.order"
	declare -A seen
	add_mod() { # depth-first: dependencies first
		local name=$1 line path deps
		line=$(grep -E "(^|/)${name//_/[_-]}\.ko(\.xz|\.zst)?:" "$moddir/modules.dep" | head -1) || return 0
		[ -n "$line" ] || return 0
		path=${line%%:*}
		[ -z "${seen[$path]:-}" ] || return 0
		seen[$path]=1
		deps=${line#*:}
		for d in $deps; do
			d=$(basename "$d"); d=${d%%.ko*}
			add_mod "$d"
		done
		mkdir -p "$ird/lib/modules/$(dirname "$path")"
		case $path in
		*.xz) xz -dc "$moddir/$path" > "$ird/lib/modules/${path%.xz}"; path=${path%.xz} ;;
		*.zst) zstd -qdc "$moddir/$path" > "$ird/lib/modules/${path%.zst}"; path=${path%.zst} ;;
		*) cp "$moddir/$path" "$ird/lib/modules/$path" ;;
		esac
		echo "$path" >> "$ird/modules.order"
	}
	for m in $want; do add_mod "$m"; done
	cat > "$ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host || {
	echo "vm-init: cannot mount the host's root"; echo o > /proc/sysrq-trigger; }
mount --move /dev /host/dev
mount --move /proc /host/proc
mount --move /sys /host/sys
exec switch_root /host /bin/sh "$(sed -n 's/.*sbx.init=\([^ ]*\).*/\1/p' /host/proc/cmdline)"
INIT
	chmod 755 "$ird/init"
	(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	echo "$stamp" > "$initrd.stamp"
	rm -rf "$ird"
	trap - EXIT
fi

# The command and its results travel through a shared writable directory.
xfer=$(mktemp -d /tmp/sbx-vm.XXXXXX)
trap 'rm -rf "$xfer"' EXIT
printf '%q ' "$@" > "$xfer/cmd"
# A scratch disk for the guest: ext4 (unlike the guest's tmpfs) takes
# idmapped mounts, loop-mounted images and overlay upper layers.
scratch=$xfer/scratch.img
truncate -s 16G "$scratch"
# With project quotas, so that disk limits there take that path (the host
# tests the loop-mounted images).
mkfs.ext4 -q -F -m 0 -O quota,project -E lazy_itable_init=1,lazy_journal_init=1 "$scratch" ||
	skip "mkfs.ext4 failed"
echo "$PWD" > "$xfer/cwd"
# Directories shared at their own paths: the working directory, --share,
# and a --builddir of the command. One 9p export each, read-only like /.
prev=
for a in "$@"; do
	case $prev in --builddir) shares+=("$a") ;; esac
	case $a in --builddir=*) shares+=("${a#--builddir=}") ;; esac
	prev=$a
done
shares=("$PWD" "${shares[@]}")
share_args=()
: > "$xfer/shares"
n=0
for d in "${shares[@]}"; do
	[ -d "$d" ] || continue
	d=$(cd "$d" && pwd -P)
	# / is the guest's root already.
	[ "$d" != / ] || continue
	grep -qxF "$d" "$xfer/shares" && continue
	# qemu's option syntax takes a comma in a value doubled.
	share_args+=(-virtfs "local,path=${d//,/,,},mount_tag=share$n,security_model=none,readonly=on,multidevs=remap")
	echo "$d" >> "$xfer/shares"
	n=$((n + 1))
done
env | grep -E '^(SBX_|SANDBOXD_)' > "$xfer/env" || true
console=$xfer/console.log
# A guest whose output has not grown for this long is stalled, not slow
# (no test in it runs that long): it is stopped, what it printed is shown,
# and it is booted once more. Twice stalled is a failure.
stall_s=${SBX_VM_STALL:-240}
# A guest that has not reached its init's first line by then hangs in its
# boot (seen once under TCG on a loaded host): the same, sooner.
boot_s=${SBX_VM_BOOT:-180}
boot() { # boot: runs the guest; 75 when it stalled
	echo "vm: booting $kver under TCG (${mem_mb} MiB, 2 cpus, CPU model $cpu)"
	local start now size last=-1 changed qpid
	start=$(date +%s)
	changed=$start
	timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu "$cpu" -smp 2 -m "$mem_mb" \
		-nographic -no-reboot -monitor none -serial "file:$console" \
		-kernel "$vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 loglevel=4 sbx.init=$here/guest-init.sh sbx.xfer=$xfer" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$xfer,mount_tag=xfer,security_model=none" \
		"${share_args[@]}" \
		-drive "file=$scratch,if=virtio,format=raw,cache=unsafe" \
		-nic none </dev/null &
	qpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 5
		size=$(stat -c %s "$xfer/output" 2>/dev/null || echo 0)
		now=$(date +%s)
		if [ "$size" = 0 ] && [ $((now - start)) -ge "$boot_s" ]; then
			kill "$qpid" 2>/dev/null || true
			wait "$qpid" || true
			echo "vm: the guest did not reach its init in $boot_s s; stopped it. Its console:"
			tail -150 "$console" 2>/dev/null || true
			return 75
		elif [ "$size" != "$last" ]; then
			last=$size
			changed=$now
		elif [ $((now - changed)) -ge "$stall_s" ]; then
			kill "$qpid" 2>/dev/null || true
			wait "$qpid" || true
			echo "vm: the guest printed nothing for $stall_s s after $((now - start)) s; stopped it"
			# The guest's own report of the stall, or the end of its console.
			if grep -aq "vm-guest: no output" "$console" 2>/dev/null; then
				echo "vm: its console from its report of the stall:"
				sed -n '/vm-guest: no output/,$p' "$console" | head -600
			else
				echo "vm: the end of its console:"
				tail -150 "$console" 2>/dev/null || true
			fi
			return 75
		fi
	done
	set +e
	wait "$qpid"
	qrc=$?
	set -e
	echo "vm: guest ran for $(( $(date +%s) - start )) s"
	return 0
}
qrc=0
boots=${SBX_VM_BOOTS:-4}
# The first boot emulates every CPU feature TCG has ("max"); a boot after
# a stall takes the plain x86-64 model, since TCG guests with "max" and two
# CPUs are known to hang now and then.
cpu=${SBX_VM_CPU:-max}
n=1
while :; do
	set +e
	boot
	brc=$?
	set -e
	# A guest that ended before its init reported a result (its kernel
	# crashed, or it powered off early) is treated as one that stalled;
	# one stopped by the timeout is not booted again.
	if [ $brc -eq 0 ] && [ ! -r "$xfer/rc" ] && [ $qrc -ne 124 ]; then
		echo "vm: the guest ended without a result (qemu exit $qrc); the end of its console:"
		tail -80 "$console" 2>/dev/null || true
		grep -q "cannot mount the host's root" "$console" && skip "9p root not available in the guest"
		brc=75
	fi
	[ $brc -eq 75 ] || break
	echo "vm: what the guest printed:"
	cat "$xfer/output" 2>/dev/null || true
	if [ "$n" -ge "$boots" ]; then
		echo "vm: the guest stalled or ended without a result $n times" >&2
		exit 1
	fi
	n=$((n + 1))
	cpu=${SBX_VM_CPU_AGAIN:-qemu64}
	echo "vm: booting it again (boot $n of at most $boots)"
	# The tests that ended are not run again (tests/integration/run.py
	# counts them as they ended): each boot goes on where the last stopped.
	grep -aE '^(PASS|SKIP|FAIL) ' "$xfer/output" >> "$xfer/done" 2>/dev/null || true
	grep -q '^SBX_TEST_DONE=' "$xfer/env" || echo "SBX_TEST_DONE=/tmp/xfer/done" >> "$xfer/env"
	rm -f "$xfer/output" "$xfer/rc"
	truncate -s 0 "$scratch"
	truncate -s 16G "$scratch"
	mkfs.ext4 -q -F -m 0 -O quota,project -E lazy_itable_init=1,lazy_journal_init=1 "$scratch"
done
if [ -r "$xfer/output" ]; then
	cat "$xfer/output"
fi
if [ ! -r "$xfer/rc" ]; then
	# Only a guest stopped by the timeout gets here: any other that ended
	# without a result was booted again above.
	echo "vm: the guest did not report a result (qemu exit $qrc); console follows" >&2
	tail -50 "$console" >&2
	exit 1
fi
exit "$(cat "$xfer/rc")"
