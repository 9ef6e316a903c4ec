#!/bin/sh
# VNC on port 5901 showing display :99, with the password $VNC_PASSWORD.
# Without one a random password is made and left, for root only, in
# /run/sandboxd-agent/vnc-password: the desktop is never open to anyone.
# VNC authentication uses only the first 8 characters of a password.
set -eu
umask 077
dir=/run/sandboxd-agent
mkdir -p "$dir"
pw=${VNC_PASSWORD:-}
if [ -z "$pw" ]; then
	pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
fi
printf '%s\n' "$pw" > "$dir/vnc-password"
x11vnc -storepasswd "$pw" "$dir/vnc-passwd" >/dev/null 2>&1
# x11vnc gives up when the display is not there yet.
i=0
while [ ! -S /tmp/.X11-unix/X99 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
exec x11vnc -display :99 -rfbport 5901 -rfbauth "$dir/vnc-passwd" -forever -shared \
	-rfbportv6 -1 -noipv6 -noxdamage -quiet -norc
