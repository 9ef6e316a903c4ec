/* Log sink shared by the daemon and its helper processes. Must stay
 * async-signal-unsafe-free of allocation so forked children can use it. */
#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static enum sbx_log_level cur_level = SBX_LOG_INFO;
static bool to_syslog;
static const char *log_ident = "sandboxd";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void sbx_log_init(const char *ident, enum sbx_log_level level, bool use_syslog)
{
	log_ident = ident;
	cur_level = level;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int sbx_log_level_parse(const char *s, enum sbx_log_level *out)
{
	for (size_t i = 0; i < SBX_ARRAY_SIZE(level_names); i++) {
		if (!strcasecmp(s, level_names[i])) {
			*out = (enum sbx_log_level)i;
			return 0;
		}
	}
	if (!strcasecmp(s, "warning")) {
		*out = SBX_LOG_WARN;
		return 0;
	}
	return -1;
}

bool sbx_log_enabled(enum sbx_log_level level)
{
	return level <= cur_level;
}

void sbx_log(enum sbx_log_level level, const char *fmt, ...)
{
	if (level > cur_level)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (to_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
		syslog(prio[level], "%s", msg);
		return;
	}
	char ts[64];
	sbx_time_rfc3339(sbx_now_ns(), ts);
	dprintf(STDERR_FILENO, "%s %s[%d] %s: %s\n", ts, log_ident, (int)getpid(), level_names[level], msg);
}
