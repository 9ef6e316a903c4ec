/* sandbox-monitor: the parent of one background command. It copies the
 * command's output into a bounded log, records how the command ended, and
 * holds the command's stdin and terminal open, so that all of this outlives
 * sandboxd itself. It never runs code of the sandbox and reads nothing from
 * it but output bytes.
 *
 *   sandbox-monitor CMD_PID CAP_BYTES TIMEOUT_MS
 *
 * Descriptors on entry: 3 stdout source (pipe or terminal master),
 * 4 stderr source (pipe) or closed, 5 the log file, 6 the command's state
 * directory, 7 the stdin pipe's write end or closed, 8 the command's cgroup
 * directory or closed. SIGUSR1 closes 7 (end of input for the command).
 *
 * The log is a sequence of records in 64 KiB segments: an 8-byte header
 * (payload length, little endian u32; stream 1 or 2; three zero bytes) then
 * the payload. A record never crosses a segment; a zero length pads to the
 * segment's end. Past CAP_BYTES the oldest whole segments are punched out,
 * so offsets stay valid and the file's blocks stay bounded. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEG 65536
#define HDR 8
#define FD_OUT 3
#define FD_ERR 4
#define FD_LOG 5
#define FD_DIR 6
#define FD_STDIN 7
#define FD_CGROUP 8

static uint64_t pos, start, dropped;
static uint64_t cap;
static uint32_t *seg_payload;
static size_t nslots;
static int punch_ok = 1;
static int dropped_fd = -1;

struct source {
	int fd;
	int stream;
	unsigned char held[4]; /* an incomplete UTF-8 sequence waiting for its rest */
	size_t nheld;
};

/* Close what fd refers to but keep its number taken (by /dev/null), so a
 * later open never lands on a number this program gives a meaning to. */
static void release(int fd)
{
	int n = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (n < 0 || dup3(n, fd, O_CLOEXEC) < 0)
		close(fd);
	if (n >= 0)
		close(n);
}

static void write_dropped(void)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%020llu\n", (unsigned long long)dropped);
	if (dropped_fd >= 0 && pwrite(dropped_fd, line, (size_t)n, 0) < 0) {
		/* nothing to do: the count is advisory */
	}
}

static void enforce_cap(void)
{
	if (pos - start <= cap)
		return;
	uint64_t cur_seg = pos - pos % SEG;
	uint64_t new_start = start;
	uint64_t gone = 0;
	while (pos - new_start > cap && new_start + SEG <= cur_seg) {
		gone += seg_payload[(new_start / SEG) % nslots];
		new_start += SEG;
	}
	if (new_start == start)
		return;
	if (punch_ok && fallocate(FD_LOG, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
				  (off_t)(new_start - start)) < 0)
		punch_ok = 0;
	if (!punch_ok)
		return;
	start = new_start;
	dropped += gone;
	write_dropped();
}

/* One record of payload data for a stream. */
static void put_record(int stream, const unsigned char *data, size_t len)
{
	while (len) {
		uint64_t room = SEG - pos % SEG;
		if (room < HDR + 1) {
			pos += room; /* the tail reads as zeros: padding */
			seg_payload[(pos / SEG) % nslots] = 0;
			continue;
		}
		if (pos % SEG == 0)
			seg_payload[(pos / SEG) % nslots] = 0;
		size_t n = len < room - HDR ? len : (size_t)(room - HDR);
		if (!punch_ok && pos - start + HDR + n > cap) {
			dropped += len; /* cannot drop the oldest: drop the newest */
			write_dropped();
			return;
		}
		unsigned char hdr[HDR] = { (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
					   (unsigned char)(n >> 24), (unsigned char)stream, 0, 0, 0 };
		struct iovec iov[2] = { { hdr, HDR }, { (void *)data, n } };
		ssize_t w = pwritev(FD_LOG, iov, 2, (off_t)pos);
		if (w != (ssize_t)(HDR + n)) {
			/* The state dir is full or gone: count what is lost. */
			dropped += len;
			write_dropped();
			return;
		}
		seg_payload[(pos / SEG) % nslots] += (uint32_t)n;
		pos += HDR + n;
		data += n;
		len -= n;
		enforce_cap();
	}
}

/* How many bytes at the end of buf start a UTF-8 sequence not complete yet. */
static size_t incomplete_tail(const unsigned char *buf, size_t len)
{
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = buf[len - back];
		if ((c & 0xC0) == 0x80)
			continue;
		size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
		return need > back ? back : 0;
	}
	return 0;
}

static void flush_held(struct source *s)
{
	if (s->nheld)
		put_record(s->stream, s->held, s->nheld);
	s->nheld = 0;
}

/* Read what is there; returns 0 when the source is finished. */
static int pump(struct source *s, int all)
{
	static unsigned char buf[SEG];
	for (int rounds = 0; rounds < (all ? 4096 : 16); rounds++) {
		memcpy(buf, s->held, s->nheld);
		ssize_t n = read(s->fd, buf + s->nheld, sizeof(buf) - HDR - s->nheld);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0) { /* EOF, or EIO from a terminal whose last user left */
			flush_held(s);
			release(s->fd);
			s->fd = -1;
			return 0;
		}
		size_t len = s->nheld + (size_t)n;
		size_t keep = incomplete_tail(buf, len);
		s->nheld = 0;
		put_record(s->stream, buf, len - keep);
		memcpy(s->held, buf + len - keep, keep);
		s->nheld = keep;
	}
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_status(const siginfo_t *si, int timed_out)
{
	char text[128];
	int n = snprintf(text, sizeof(text), "%s %d\ntimed_out %d\nfinished_ms %lld\ndropped %llu\n",
			 si->si_code == CLD_EXITED ? "exited" : "killed", si->si_status, timed_out,
			 (long long)now_ms(), (unsigned long long)dropped);
	int fd = openat(FD_DIR, "status.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	int ok = write(fd, text, (size_t)n) == n;
	close(fd);
	if (ok)
		renameat(FD_DIR, "status.tmp", FD_DIR, "status");
}

/* The whole tree of the command, not just its first process. */
static void kill_tree(pid_t pid)
{
	int fd = openat(FD_CGROUP, "cgroup.kill", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		int ok = write(fd, "1", 1) == 1;
		close(fd);
		if (ok)
			return;
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: sandbox-monitor CMD_PID CAP_BYTES TIMEOUT_MS (started by sandboxd)\n");
		return 2;
	}
	pid_t cmd = (pid_t)strtol(argv[1], NULL, 10);
	cap = strtoull(argv[2], NULL, 10);
	long long timeout_ms = strtoll(argv[3], NULL, 10);
	if (cmd <= 0 || cap < 2 * SEG)
		return 2;
	/* Fill the numbers of absent descriptors with /dev/null first, so that
	 * nothing opened below can take one of them. */
	int absent[FD_CGROUP + 1] = { 0 };
	for (int fd = FD_OUT; fd <= FD_CGROUP; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		absent[fd] = 1;
		int n = open("/dev/null", O_RDWR);
		if (n < 0 || (n != fd && (dup2(n, fd) < 0 || close(n) < 0)))
			return 1;
	}
	nslots = (size_t)(cap / SEG) + 3;
	seg_payload = calloc(nslots, sizeof(*seg_payload));
	if (!seg_payload)
		return 1;
	prctl(PR_SET_NAME, "sandbox-monitor", 0, 0, 0);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	int tfd = -1;
	if (timeout_ms > 0) {
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		struct itimerspec its = { .it_value = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000 } };
		if (tfd >= 0)
			timerfd_settime(tfd, 0, &its, NULL);
	}
	dropped_fd = openat(FD_DIR, "dropped", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;
	if (fstat(FD_LOG, &st) == 0)
		pos = start = (uint64_t)st.st_size;
	struct source src[2] = { { FD_OUT, 1, { 0 }, 0 }, { FD_ERR, 2, { 0 }, 0 } };
	for (int i = 0; i < 2; i++) {
		if (absent[src[i].fd]) {
			src[i].fd = -1;
			continue;
		}
		int fl = fcntl(src[i].fd, F_GETFL);
		fcntl(src[i].fd, F_SETFL, fl | O_NONBLOCK);
	}
	int exited = 0, timed_out = 0;
	siginfo_t status = { 0 };
	for (;;) {
		/* Done once the command has ended and nobody writes any more. */
		if (exited && src[0].fd < 0 && src[1].fd < 0)
			break;
		struct pollfd p[4];
		int np = 0;
		for (int i = 0; i < 2; i++)
			p[np++] = (struct pollfd){ .fd = src[i].fd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = exited ? -1 : tfd, .events = POLLIN };
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = 0; i < 2; i++)
			if (src[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				pump(&src[i], 0);
		if (p[3].revents & POLLIN) {
			uint64_t ticks;
			if (read(tfd, &ticks, sizeof(ticks)) > 0 && !exited) {
				timed_out = 1;
				kill_tree(cmd);
			}
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo ssi;
			while (read(sfd, &ssi, sizeof(ssi)) == sizeof(ssi)) {
				if (ssi.ssi_signo == SIGUSR1)
					release(FD_STDIN);
			}
			siginfo_t si = { 0 };
			if (!exited && waitid(P_PID, (id_t)cmd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == cmd) {
				exited = 1;
				status = si;
				/* What the command wrote before it ended is in the pipes:
				 * log it before telling anyone it has ended. */
				for (int i = 0; i < 2; i++) {
					if (src[i].fd >= 0) {
						pump(&src[i], 1);
						flush_held(&src[i]);
					}
				}
				release(FD_STDIN);
				write_status(&status, timed_out);
			}
		}
	}
	return 0;
}
