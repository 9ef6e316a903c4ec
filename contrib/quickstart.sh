#!/bin/sh
# From a fresh Debian/Ubuntu checkout to a command running in a sandbox:
# install dependencies, build, start sandboxd with a local state directory
# (./quickstart), create a sandbox and run a command in it.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: run as root (sandboxd creates namespaces, mounts and cgroups)" >&2
	exit 1
fi
./contrib/install-deps.sh
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] || ../configure --quiet
make -j"$(nproc)" >/dev/null
cd "$top"

state=$top/quickstart
SANDBOXD_SOCKET=$state/sandboxd.sock
export SANDBOXD_SOCKET
ctl=build/src/sandboxctl
if ! $ctl info >/dev/null 2>&1; then
	# Daemonizes once it serves; the default image is imported on first start.
	build/src/sandboxd --state-dir "$state/state" --run-dir "$state/run" --socket "$SANDBOXD_SOCKET"
fi
$ctl info
name=hello-$(date +%s)
$ctl create --name "$name" >/dev/null
echo "\$ sandboxctl exec $name -- sh -c '...'"
$ctl exec "$name" -- sh -c 'echo "hello from $(hostname), PID 1 is $(cat /proc/1/comm), I am $(id -un) in $(pwd)"; ls /'
echo
$ctl ls
cat <<MSG

sandboxd keeps running. Try:
  export SANDBOXD_SOCKET=$SANDBOXD_SOCKET
  $ctl exec $name -- ps
  $ctl run --rm -- uname -a
  $ctl rm -f $name
Stop the daemon with: pkill -f "sandboxd --state-dir $state/state" (sandboxes keep running until removed)
MSG
