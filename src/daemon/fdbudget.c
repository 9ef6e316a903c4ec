/* The descriptor budget (see fdbudget.h). Counting walks /proc/self/fd,
 * about half a microsecond per open descriptor, so a start far below the
 * limit trusts a count up to a second old; near the limit every start
 * counts afresh. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "fdbudget.h"
#include "log.h"
#include "util.h"

/* What starting one sandbox holds at its peak (cgroup and v1 descriptors,
 * user namespace, disk image and loop device, report pipe, pidfd, the
 * files it writes), with room to spare; one pidfd stays. */
#define FDS_PER_START 32
/* The reserve: a sixteenth of the limit, at least 64 (a handful of execs
 * and connections), at most 4096. */
#define RESERVE_MIN 64
#define RESERVE_MAX 4096
/* Where parked descriptors start, at most. */
#define PARK_BASE 1024

static int64_t reserve_for(int64_t limit)
{
	int64_t r = limit / 16;
	return r < RESERVE_MIN ? RESERVE_MIN : r > RESERVE_MAX ? RESERVE_MAX : r;
}

void sbx_fdbudget_init(struct sbx_fdbudget *b, int64_t max_sandboxes)
{
	memset(b, 0, sizeof(*b));
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		sbx_warn("getrlimit RLIMIT_NOFILE: %m");
		rl.rlim_cur = rl.rlim_max = 1024;
	}
	rlim_t was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			sbx_warn("cannot raise the open-file limit from %llu to %llu: %m", (unsigned long long)was,
				 (unsigned long long)rl.rlim_max);
			rl.rlim_cur = was;
		}
	}
	/* RLIM_INFINITY cannot happen (fs.nr_open caps it), but stay in range. */
	b->limit = rl.rlim_cur > INT32_MAX ? INT32_MAX : (int64_t)rl.rlim_cur;
	b->hard = rl.rlim_max > INT32_MAX ? INT32_MAX : (int64_t)rl.rlim_max;
	b->reserve = reserve_for(b->limit);
	if (was != rl.rlim_cur)
		sbx_info("open files: soft limit raised from %llu to %lld (the hard limit); %lld kept for existing sandboxes",
			 (unsigned long long)was, (long long)b->limit, (long long)b->reserve);
	else
		sbx_info("open files: limit %lld (hard limit %lld); %lld kept for existing sandboxes", (long long)b->limit,
			 (long long)b->hard, (long long)b->reserve);
	/* A sandbox's own descriptor goes above the numbers that the daemon's
	 * connections and running commands take, so that what an exec helper
	 * copies stays small (sbx_fd_park). */
	sbx_fd_park_base((int)(b->limit / 4 < PARK_BASE ? b->limit / 4 : PARK_BASE));
	/* About one descriptor per started sandbox stays open. */
	int64_t room = b->limit - b->reserve - sbx_fdbudget_count(b) - FDS_PER_START;
	if (room < max_sandboxes)
		sbx_warn("open files: the limit of %lld leaves room for about %lld sandboxes, fewer than max_sandboxes "
			 "(%lld); raise it (LimitNOFILE= in sandboxd.service, or ulimit -Hn before starting sandboxd)",
			 (long long)b->limit, (long long)(room > 0 ? room : 0), (long long)max_sandboxes);
}

int64_t sbx_fdbudget_count(struct sbx_fdbudget *b)
{
	DIR *dir = opendir("/proc/self/fd");
	if (!dir)
		return b->used; /* keep the last count */
	int64_t n = 0;
	struct dirent *de;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	b->used = n - 1; /* less the directory's own descriptor */
	b->counted_ms = sbx_monotonic_ms();
	return b->used;
}

int sbx_fdbudget_check_start(struct sbx_fdbudget *b, sbx_error **err)
{
	int64_t cap = b->limit - b->reserve - FDS_PER_START;
	if (b->counted_ms == 0 || b->used > cap / 2 || sbx_monotonic_ms() - b->counted_ms >= 1000)
		sbx_fdbudget_count(b);
	if (b->used <= cap)
		return 0;
	sbx_error_set(err, SBX_ERR_LIMIT,
		      "no room for another sandbox: sandboxd has %lld files open and its limit is %lld (RLIMIT_NOFILE), "
		      "of which it keeps %lld for the sandboxes it has; raise the limit (LimitNOFILE= in sandboxd.service, "
		      "or ulimit -n and -Hn before starting sandboxd) or delete sandboxes",
		      (long long)b->used, (long long)b->limit, (long long)b->reserve);
	if (err && *err)
		(*err)->errnum = EMFILE;
	return -1;
}
