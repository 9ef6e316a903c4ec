#!/bin/sh
# noVNC on port 6080: the web client (vnc.html, vnc_lite.html) and a
# WebSocket bridge to the VNC server on 5901.
set -eu
exec /usr/bin/websockify --web /usr/share/novnc 6080 localhost:5901
