#!/bin/sh
# Chromium on display :99 with DevTools (CDP) on 127.0.0.1, one port above
# $CHROME_DEBUGGING_PORT; devtools.sh serves $CHROME_DEBUGGING_PORT itself
# on every address. Chromium binds DevTools to loopback only (it ignores
# --remote-debugging-address outside headless mode), and the preview
# gateway connects to the sandbox's own address.
#
# --no-sandbox: Chromium's own sandbox needs new user, PID and network
# namespaces, which the sandbox's seccomp filter refuses (nested namespaces
# open kernel code to every sandbox). Everything in the sandbox already runs
# as its root and the sandbox is the security boundary; a renderer escaping
# Chromium reaches only what the agent itself can reach.
set -eu
port=${CHROME_DEBUGGING_PORT:-9222}
case $port in '' | *[!0-9]*) port=9222 ;; esac
data=${CHROME_USER_DATA:-/root/.config/chromium-agent}
res=${RESOLUTION:-1024x768x24}
w=${res%%x*}
h=${res#*x}; h=${h%%x*}
mkdir -p "$data"
rm -f "$data/SingletonLock" "$data/SingletonSocket" "$data/SingletonCookie"
i=0
while [ ! -S /tmp/.X11-unix/X99 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
export DISPLAY=:99
# shellcheck disable=SC2086 # CHROME_FLAGS is a list of flags
exec /usr/bin/chromium --no-sandbox --disable-dev-shm-usage --no-first-run \
	--no-default-browser-check --disable-gpu --disable-features=Translate \
	--password-store=basic --user-data-dir="$data" \
	--remote-debugging-port=$((port + 1)) \
	--window-position=0,0 --window-size="$w,$h" ${CHROME_FLAGS:-} about:blank
