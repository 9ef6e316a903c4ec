#!/bin/sh
# Build the "minimal" image: a root filesystem made of Debian's static
# busybox, an /etc with a root and a non-root user, packed as a tarball
# whose entries are owned by root. Usage: build.sh SRCDIR OUTPUT.tar.gz
set -eu
src=$(cd "$1" && pwd)
case $2 in /*) out=$2 ;; *) out=$(pwd)/$2 ;; esac
busybox=${BUSYBOX:-}
[ -n "$busybox" ] || busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! [ -x "$busybox" ]; then
	echo "build.sh: busybox not found; install Debian's busybox-static" >&2
	exit 1
fi
if ! "$busybox" --list >/dev/null 2>&1; then
	echo "build.sh: $busybox does not run" >&2
	exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
	echo "build.sh: $busybox is dynamically linked; images need busybox-static" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs
mkdir -p "$root"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin etc root home/sandbox tmp var/tmp workspace dev proc sys run
chmod 1777 tmp var/tmp
chmod 700 root
cp "$busybox" bin/busybox
chmod 755 bin/busybox
# One link per applet, in the directory busybox itself names for it.
"$busybox" --list-full | while read -r applet; do
	[ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
[ -e bin/sh ] || ln -s busybox bin/sh
cp "$src/passwd" etc/passwd
cp "$src/group" etc/group
chmod 644 etc/passwd etc/group
echo minimal > etc/hostname
printf 'NAME="sandboxd minimal"\nID=sandboxd-minimal\n' > etc/os-release
cd "$tmp"
# Numeric root ownership whatever user builds it; sorted for reproducibility.
# A non-root user's home belongs to that user inside the image, so it goes
# into a second archive appended to the first, and out of the first: a name
# twice in one tarball is an error to podman and containers/storage.
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime='2024-01-01 00:00:00Z' \
	--exclude=./home/sandbox -C "$root" -cf "$tmp/all.tar" .
tar --numeric-owner --owner=1000 --group=1000 --sort=name --mtime='2024-01-01 00:00:00Z' \
	-C "$root" -cf "$tmp/home.tar" ./home/sandbox
tar --concatenate -f "$tmp/all.tar" "$tmp/home.tar"
if [ -n "$(tar -tf "$tmp/all.tar" | sort | uniq -d)" ]; then
	echo "build.sh: the image would hold a name twice:" >&2
	tar -tf "$tmp/all.tar" | sort | uniq -d >&2
	exit 1
fi
gzip -9n < "$tmp/all.tar" > "$tmp/final.tar.gz"
cd - >/dev/null
mv "$tmp/final.tar.gz" "$out"
