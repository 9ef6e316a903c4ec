#!/bin/sh
# /usr/bin/supervisord of the agent image: see supervisord-once.
exec /usr/local/lib/sandboxd-agent/supervisord-once "$@"
