/* Log sink shared by the daemon and its helper processes. Must stay
 * async-signal-unsafe-free of allocation so forked children can use it.
 * Under systemd, stderr is often a journal stream: lines then carry the
 * "<N>" priority prefix of sd-daemon(3) and no time stamp of their own. */
#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static enum sbx_log_level cur_level = SBX_LOG_INFO;
static bool to_syslog;
static bool to_journal;
static const char *log_ident = "sandboxd";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void sbx_log_init(const char *ident, enum sbx_log_level level, bool use_syslog)
{
	log_ident = ident;
	cur_level = level;
	to_syslog = use_syslog;
	to_journal = !use_syslog && sbx_log_stderr_is_journal();
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* JOURNAL_STREAM is "DEV:INO" of the stream systemd connected; it is
 * inherited by processes whose stderr went elsewhere, hence the check. */
bool sbx_log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	char end;
	struct stat st;
	if (!v || sscanf(v, "%llu:%llu%c", &dev, &ino, &end) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
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
	/* The numbers of LOG_ERR... are those of SD_ERR... in sd-daemon.h. */
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	if (to_syslog) {
		syslog(prio[level], "%s", msg);
		return;
	}
	if (to_journal) {
		dprintf(STDERR_FILENO, "<%d>%s: %s\n", prio[level], level_names[level], msg);
		return;
	}
	char ts[64];
	sbx_time_rfc3339(sbx_now_ns(), ts);
	dprintf(STDERR_FILENO, "%s %s[%d] %s: %s\n", ts, log_ident, (int)getpid(), level_names[level], msg);
}
