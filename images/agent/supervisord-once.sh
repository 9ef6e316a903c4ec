#!/bin/sh
# One supervisord per sandbox; /usr/bin/supervisord of the agent image
# starts this (under its own name, so that a supervisord still waiting here
# is not counted as one running).
#
# The image's service and an agent backend's session both run
#   /usr/bin/supervisord -n -c /etc/supervisor/conf.d/supervisord.conf
# and often at the same moment, right after a start. supervisord's own
# guard (its control socket already answers) misses a second one started
# before the first has bound the socket: both then start every program and
# fight over their ports. So the image's configuration is taken under a
# lock, held by the supervisord that runs. A later one waits until the
# running one answers on its socket (or is gone) and then goes on, so
# that supervisord itself says "Another program is already listening" and
# exits, as it does when nothing races.
real=/usr/local/lib/sandboxd-agent/bin/supervisord
conf=/etc/supervisor/conf.d/supervisord.conf
case " $* " in
*" $conf "* | *" --configuration=$conf "* | *" -c$conf "*) ;;
*) exec "$real" "$@" ;;
esac
exec 9>>/run/supervisord.lock
if ! flock -n 9; then
	i=0
	while [ "$i" -lt 300 ]; do
		flock -n 9 && break
		supervisorctl -c "$conf" pid > /dev/null 2>&1 && break
		sleep 0.1
		i=$((i + 1))
	done
fi
exec "$real" "$@"
