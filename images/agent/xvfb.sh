#!/bin/sh
# The virtual X display :99 at $RESOLUTION (WIDTHxHEIGHTxDEPTH).
set -eu
res=${RESOLUTION:-1024x768x24}
case $res in
*[!0-9x]* | x* | *x | *xx*) echo "xvfb: bad RESOLUTION '$res'" >&2; exit 1 ;;
esac
rm -f /tmp/.X99-lock /tmp/.X11-unix/X99
exec /usr/bin/Xvfb :99 -screen 0 "$res" -nolisten tcp -noreset
