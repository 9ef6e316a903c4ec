/* Socket activation and readiness notification, written to the documented
 * wire protocols rather than linked from libsystemd: they are a few
 * environment variables and one datagram, stable since systemd 209, and
 * the daemon should not need the library on hosts without systemd. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "systemd.h"
#include "util.h"

/* SD_LISTEN_FDS_START of sd-daemon.h: passed descriptors start here. */
#define LISTEN_FDS_START 3

static void clear_listen_env(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

int sbx_systemd_listen_fd(int *fd, sbx_error **err)
{
	*fd = -1;
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	int64_t pid, n;
	/* Variables meant for another process (our parent, say) are not ours
	 * to act on, but they must not reach our children either. */
	if (!pid_s || !fds_s || sbx_parse_int64(pid_s, 1, INT32_MAX, &pid) < 0 || pid != getpid()) {
		clear_listen_env();
		return 0;
	}
	if (sbx_parse_int64(fds_s, 0, 1024, &n) < 0) {
		clear_listen_env();
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "LISTEN_FDS: '%s' is not a count of descriptors", fds_s);
	}
	clear_listen_env();
	if (n == 0)
		return 0;
	if (n != 1)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
				     "the service manager passed %lld sockets; sandboxd takes exactly one "
				     "(ListenStream= a unix socket path)",
				     (long long)n);
	int s = LISTEN_FDS_START;
	struct stat st;
	if (fstat(s, &st) < 0)
		return sbx_error_errno(err, errno, "socket passed by the service manager (fd %d)", s);
	int domain = 0, type = 0, accepting = 0;
	socklen_t len = sizeof(int);
	if (!S_ISSOCK(st.st_mode) || getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    (len = sizeof(int), getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) < 0) ||
	    (len = sizeof(int), getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0) || domain != AF_UNIX ||
	    type != SOCK_STREAM || !accepting)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
				     "the descriptor passed by the service manager (fd %d) is not a listening unix "
				     "stream socket (ListenStream= a path, Accept=no)",
				     s);
	int flags = fcntl(s, F_GETFL);
	if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(s, F_SETFD, FD_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "socket passed by the service manager (fd %d)", s);
	*fd = s;
	return 1;
}

static char *notify_path;

void sbx_systemd_notify_init(void)
{
	const char *p = getenv("NOTIFY_SOCKET");
	/* Only paths and abstract names; other kinds (vsock:) are not for a
	 * host daemon. */
	if (p && (p[0] == '/' || p[0] == '@') && strlen(p) > 1)
		notify_path = strdup(p);
	unsetenv("NOTIFY_SOCKET");
}

bool sbx_systemd_notify(const char *state)
{
	if (!notify_path)
		return false;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t plen = strlen(notify_path);
	if (plen > sizeof(addr.sun_path))
		return false;
	memcpy(addr.sun_path, notify_path, plen);
	if (addr.sun_path[0] == '@')
		addr.sun_path[0] = '\0';
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	if (notify_path[0] == '/' && plen < sizeof(addr.sun_path))
		alen++; /* a path counts its terminating NUL */
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	ssize_t n = sendto(s, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
	close(s);
	return n == (ssize_t)strlen(state);
}
