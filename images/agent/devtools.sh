#!/bin/sh
# DevTools on $CHROME_DEBUGGING_PORT (9222) on every address of the
# sandbox, passed to Chromium's own listener on 127.0.0.1 one port above.
set -eu
port=${CHROME_DEBUGGING_PORT:-9222}
case $port in '' | *[!0-9]*) port=9222 ;; esac
exec /usr/bin/socat "TCP-LISTEN:$port,fork,reuseaddr" "TCP:127.0.0.1:$((port + 1))"
