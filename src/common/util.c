/* Helpers without policy: buffers, fd I/O, ids, time, base64, UTF-8.
 * Nothing here knows about sandboxes, JSON or sockets. */
#include "config.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void sbx_freep(void *p)
{
	free(*(void **)p);
}

void sbx_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

void sbx_fclosep(void *f)
{
	FILE **fp = f;
	if (*fp)
		fclose(*fp);
}

void sbx_closedirp(void *d)
{
	DIR **dp = d;
	if (*dp)
		closedir(*dp);
}

int sbx_buf_reserve(struct sbx_buf *b, size_t extra)
{
	if (extra > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	char *n = realloc(b->data, cap);
	if (!n)
		return -ENOMEM;
	b->data = n;
	b->cap = cap;
	return 0;
}

int sbx_buf_append(struct sbx_buf *b, const void *data, size_t len)
{
	if (sbx_buf_reserve(b, len) < 0)
		return -ENOMEM;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int sbx_buf_printf(struct sbx_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sbx_buf_reserve(b, (size_t)n) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void sbx_buf_consume(struct sbx_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void sbx_buf_free(struct sbx_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

ssize_t sbx_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t sbx_send_with_fd(int sock, const void *buf, size_t len, int fd, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t sbx_recv_with_fds(int sock, void *buf, size_t len, int flags, int *fds, size_t max, size_t *n_fds,
			  bool *dropped)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * SBX_PASS_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	bool lost = (mh.msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*n_fds < max) {
				fds[(*n_fds)++] = fd;
			} else {
				close(fd);
				lost = true;
			}
		}
	}
	if (dropped)
		*dropped = lost;
	return n;
}

ssize_t sbx_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int sbx_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl);
}

static int park_base;

void sbx_fd_park_base(int base)
{
	park_base = base > 0 ? base : 0;
}

int sbx_fd_park(int fd)
{
	if (fd < 0 || park_base <= 0 || fd >= park_base)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, park_base);
	if (moved < 0)
		return fd; /* no room up there: it works where it is */
	close(fd);
	return moved;
}

int sbx_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *outlen, sbx_error **err)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sbx_error_errno(err, errno, "stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return sbx_error_set(err, SBX_ERR_INTERNAL, "'%s' is not a regular file", path);
	struct sbx_buf b = { 0 };
	char chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			sbx_buf_free(&b);
			return sbx_error_errno(err, e, "read '%s'", path);
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			sbx_buf_free(&b);
			return sbx_error_set(err, SBX_ERR_LIMIT, "'%s' is larger than %zu bytes", path, max);
		}
		if (sbx_buf_append(&b, chunk, (size_t)n) < 0) {
			sbx_buf_free(&b);
			return sbx_error_errno(err, ENOMEM, "read '%s'", path);
		}
	}
	if (!b.data && sbx_buf_append(&b, "", 0) < 0)
		return sbx_error_errno(err, ENOMEM, "read '%s'", path);
	*out = b.data;
	if (outlen)
		*outlen = b.len;
	return 0;
}

int sbx_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode, sbx_error **err)
{
	char tmp[PATH_MAX];
	char rnd[13];
	if (sbx_random_id(rnd, err) < 0)
		return -1;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, rnd) >= sizeof(tmp))
		return sbx_error_set(err, SBX_ERR_INTERNAL, "path too long: '%s'", path);
	_cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return sbx_error_errno(err, errno, "create '%s'", tmp);
	if (sbx_write_all(fd, data, len) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return sbx_error_errno(err, e, "write '%s'", tmp);
	}
	if (renameat(dirfd, tmp, dirfd, path) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return sbx_error_errno(err, e, "rename '%s'", path);
	}
	return 0;
}

int sbx_write_file_at(int dirfd, const char *path, const char *data, sbx_error **err)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sbx_error_errno(err, errno, "open '%s'", path);
	if (sbx_write_all(fd, data, strlen(data)) < 0)
		return sbx_error_errno(err, errno, "write '%s'", path);
	return 0;
}

/* mkdir that accepts an existing directory at the end of the path, and
 * only a directory; a file in the middle fails at the next component. */
static int mkdir_one(const char *path, mode_t mode, bool last, sbx_error **err)
{
	if (mkdir(path, mode) == 0)
		return 0;
	struct stat st;
	if (errno == EEXIST && (!last || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))))
		return 0;
	return sbx_error_errno(err, errno == EEXIST ? EEXIST : errno, "mkdir '%s'", path);
}

int sbx_mkdir_p(const char *path, mode_t mode, sbx_error **err)
{
	char buf[PATH_MAX];
	if (!*path)
		return sbx_error_errno(err, ENOENT, "mkdir ''");
	if (strlen(path) >= sizeof(buf))
		return sbx_error_set(err, SBX_ERR_INTERNAL, "path too long: '%s'", path);
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir_one(buf, mode, false, err) < 0)
			return -1;
		*p = '/';
	}
	return mkdir_one(buf, mode, true, err);
}

static int rm_rf_children(int dfd, dev_t dev, sbx_error **err)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return sbx_error_errno(err, e, "opendir");
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				rc = sbx_error_set(err, SBX_ERR_INTERNAL, "refusing to cross into mount at '%s'", de->d_name);
				break;
			}
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				rc = sbx_error_errno(err, errno, "open '%s'", de->d_name);
				break;
			}
			if (rm_rf_children(sub, dev, err) < 0) {
				rc = sbx_error_prefix(err, "%s", de->d_name);
				break;
			}
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0) {
				rc = sbx_error_errno(err, errno, "rmdir '%s'", de->d_name);
				break;
			}
		} else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			rc = sbx_error_errno(err, errno, "unlink '%s'", de->d_name);
			break;
		}
	}
	closedir(d);
	return rc;
}

int sbx_rm_rf_at(int dirfd, const char *name, sbx_error **err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return sbx_error_errno(err, errno, "stat '%s'", name);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return sbx_error_errno(err, errno, "unlink '%s'", name);
		return 0;
	}
	int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return sbx_error_errno(err, errno, "open '%s'", name);
	if (rm_rf_children(sub, st.st_dev, err) < 0)
		return sbx_error_prefix(err, "remove '%s'", name);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return sbx_error_errno(err, errno, "rmdir '%s'", name);
	return 0;
}

bool sbx_name_valid(const char *name)
{
	if (!name || !isalnum((unsigned char)name[0]) || !isascii((unsigned char)name[0]))
		return false;
	size_t n = 1;
	for (const char *p = name + 1; *p; p++, n++) {
		unsigned char c = (unsigned char)*p;
		if (n >= 63 || !isascii(c) || !(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool sbx_id_valid(const char *id)
{
	if (!id || strlen(id) != 12)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int sbx_random_id(char out[13], sbx_error **err)
{
	unsigned char raw[6];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sbx_error_errno(err, errno, "getrandom");
		}
		got += (size_t)n;
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[12] = '\0';
	return 0;
}

void sbx_time_rfc3339(int64_t unix_ns, char out[64])
{
	/* Floor division: before 1970 the fraction still counts upwards. */
	int64_t s = unix_ns / 1000000000, rem = unix_ns % 1000000000;
	if (rem < 0) {
		s--;
		rem += 1000000000;
	}
	time_t secs = (time_t)s;
	struct tm tm;
	gmtime_r(&secs, &tm);
	int ms = (int)(rem / 1000000);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int64_t sbx_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sbx_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Tables built once: two output characters per 12 input bits when
 * encoding, and for decoding each character's value already shifted to its
 * place in a 24-bit group, with bit 24 set for a character outside the
 * alphabet, so that a group costs four loads, three ORs and one test. Bulk
 * file data goes through here at hundreds of MB/s; a branch per character
 * cannot be predicted on random data. */
static uint16_t b64_pairs[4096];
static uint32_t b64_dec[4][256];
static bool b64_ready;

#define B64_BAD 0x01000000u

static void b64_init(void)
{
	if (b64_ready)
		return;
	for (int i = 0; i < 4096; i++) {
		unsigned char two[2] = { (unsigned char)b64[i >> 6], (unsigned char)b64[i & 63] };
		memcpy(&b64_pairs[i], two, 2);
	}
	for (int k = 0; k < 4; k++)
		for (int c = 0; c < 256; c++)
			b64_dec[k][c] = B64_BAD;
	for (int i = 0; i < 64; i++) {
		unsigned char c = (unsigned char)b64[i];
		b64_dec[0][c] = (uint32_t)i << 18;
		b64_dec[1][c] = (uint32_t)i << 12;
		b64_dec[2][c] = (uint32_t)i << 6;
		b64_dec[3][c] = (uint32_t)i;
	}
	b64_ready = true;
}

size_t sbx_base64_encode_into(const void *data, size_t len, char *out)
{
	b64_init();
	const unsigned char *in = data;
	char *o = out;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		memcpy(o, &b64_pairs[v >> 12], 2);
		memcpy(o + 2, &b64_pairs[v & 4095], 2);
		o += 4;
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		*o++ = b64[v >> 18];
		*o++ = b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	return (size_t)(o - out);
}

char *sbx_base64_encode(const void *data, size_t len, size_t *outlen)
{
	char *out = malloc(SBX_BASE64_ENCODED_LEN(len) + 1);
	if (!out)
		return NULL;
	size_t o = sbx_base64_encode_into(data, len, out);
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return out;
}

int sbx_base64_decode_into(const char *in, size_t inlen, char *out, size_t *outlen)
{
	if (inlen % 4 != 0)
		return -EINVAL;
	b64_init();
	const unsigned char *s = (const unsigned char *)in;
	unsigned char *d = (unsigned char *)out;
	size_t o = 0, i = 0;
	/* Every group but the last has no padding. Output never passes input
	 * (3 bytes for 4), so out may be in itself. */
	size_t body = inlen >= 4 ? inlen - 4 : 0;
	uint32_t bad = 0;
	for (; i < body; i += 4) {
		uint32_t x = b64_dec[0][s[i]] | b64_dec[1][s[i + 1]] | b64_dec[2][s[i + 2]] | b64_dec[3][s[i + 3]];
		bad |= x;
		d[o] = (unsigned char)(x >> 16);
		d[o + 1] = (unsigned char)(x >> 8);
		d[o + 2] = (unsigned char)x;
		o += 3;
	}
	if (bad & B64_BAD)
		return -EINVAL;
	if (i < inlen) {
		unsigned v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			uint32_t x = b64_dec[3][s[i + k]];
			if (x == B64_BAD && s[i + k] == '=' && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				v[k] = 0;
				pad++;
			} else if (x == B64_BAD || pad) {
				return -EINVAL;
			} else {
				v[k] = x;
			}
		}
		/* Canonical only: the bits padding leaves unused must be zero, so
		 * that every byte string has exactly one encoding. */
		if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
			return -EINVAL;
		uint32_t x = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
		d[o++] = (unsigned char)(x >> 16);
		if (pad < 2)
			d[o++] = (unsigned char)((x >> 8) & 255);
		if (pad < 1)
			d[o++] = (unsigned char)(x & 255);
	}
	*outlen = o;
	return 0;
}

int sbx_base64_decode(const char *in, size_t inlen, char **out, size_t *outlen)
{
	if (inlen % 4 != 0)
		return -EINVAL;
	char *buf = malloc(inlen / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	size_t o = 0;
	if (sbx_base64_decode_into(in, inlen, buf, &o) < 0) {
		free(buf);
		return -EINVAL;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

/* One table lookup a byte each way: a pair of digits per byte value to
 * encode; to decode, a digit's value in the high or low nibble, with bit 8
 * set for anything else, or-ed over the whole input and tested once (no
 * branch per byte). */
static uint16_t hex_pairs[256];
static uint16_t hex_dec_hi[256], hex_dec_lo[256];
static bool hex_ready;
#define HEX_BAD 0x100u

static void hex_init(void)
{
	if (hex_ready)
		return;
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 256; i++) {
		unsigned char two[2] = { (unsigned char)digits[i >> 4], (unsigned char)digits[i & 15] };
		memcpy(&hex_pairs[i], two, 2);
		hex_dec_hi[i] = hex_dec_lo[i] = HEX_BAD;
	}
	for (int v = 0; v < 16; v++) {
		unsigned char lc = (unsigned char)digits[v], uc = (unsigned char)"0123456789ABCDEF"[v];
		hex_dec_hi[lc] = hex_dec_hi[uc] = (uint16_t)(v << 4);
		hex_dec_lo[lc] = hex_dec_lo[uc] = (uint16_t)v;
	}
	hex_ready = true;
}

size_t sbx_hex_encode_into(const void *data, size_t len, char *out)
{
	hex_init();
	const unsigned char *in = data;
	for (size_t i = 0; i < len; i++)
		memcpy(out + 2 * i, &hex_pairs[in[i]], 2);
	return 2 * len;
}

int sbx_hex_decode_into(const char *in, size_t inlen, char *out, size_t *outlen)
{
	if (inlen % 2 != 0)
		return -EINVAL;
	hex_init();
	const unsigned char *s = (const unsigned char *)in;
	unsigned char *d = (unsigned char *)out;
	size_t n = inlen / 2;
	unsigned bad = 0;
	/* Byte i is written after digits 2i and 2i+1 are read, and i <= 2i:
	 * out may be in itself. */
	for (size_t i = 0; i < n; i++) {
		unsigned x = hex_dec_hi[s[2 * i]] | hex_dec_lo[s[2 * i + 1]];
		bad |= x;
		d[i] = (unsigned char)x;
	}
	if (bad & HEX_BAD)
		return -EINVAL;
	*outlen = n;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

char *sbx_utf8_sanitize(const char *data, size_t len, size_t *outlen)
{
	struct sbx_buf b = { 0 };
	const unsigned char *s = (const unsigned char *)data;
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		size_t l;
		while (i < len && (l = utf8_seq_len(s + i, len - i)) > 0 && !(l == 1 && s[i] == 0))
			i += l;
		if (sbx_buf_append(&b, s + start, i - start) < 0)
			goto oom;
		if (i < len) {
			/* NUL cannot travel in a C string JSON value; it is invalid here too. */
			if (sbx_buf_append(&b, "\xef\xbf\xbd", 3) < 0)
				goto oom;
			i++;
		}
	}
	if (!b.data && sbx_buf_append(&b, "", 0) < 0)
		goto oom;
	if (outlen)
		*outlen = b.len;
	return b.data;
oom:
	sbx_buf_free(&b);
	return NULL;
}

int sbx_json_append_string(struct sbx_buf *b, const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)data;
	/* Worst case: every byte a \u00XX escape or a U+FFFD. */
	if (sbx_buf_reserve(b, len * 6 + 2) < 0)
		return -1;
	char *o = b->data + b->len;
	*o++ = '"';
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			*o++ = (char)c;
			i++;
			continue;
		}
		if (c < 0x80) {
			*o++ = '\\';
			switch (c) {
			case '"': *o++ = '"'; break;
			case '\\': *o++ = '\\'; break;
			case '\n': *o++ = 'n'; break;
			case '\r': *o++ = 'r'; break;
			case '\t': *o++ = 't'; break;
			case '\b': *o++ = 'b'; break;
			case '\f': *o++ = 'f'; break;
			default:
				if (c == 0) { /* as sbx_utf8_sanitize: NUL becomes U+FFFD */
					o[-1] = '\xef';
					*o++ = '\xbf';
					*o++ = '\xbd';
					break;
				}
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = hex[c >> 4];
				*o++ = hex[c & 15];
			}
			i++;
			continue;
		}
		size_t l = utf8_seq_len(s + i, len - i);
		if (l == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(o, s + i, l);
		o += l;
		i += l;
	}
	*o++ = '"';
	b->len = (size_t)(o - b->data);
	return 0;
}

static const struct {
	int sig;
	const char *name;
} signames[] = {
	{ SIGHUP, "HUP" },   { SIGINT, "INT" },   { SIGQUIT, "QUIT" },     { SIGILL, "ILL" },     { SIGTRAP, "TRAP" },
	{ SIGABRT, "ABRT" }, { SIGBUS, "BUS" },   { SIGFPE, "FPE" },       { SIGKILL, "KILL" },   { SIGUSR1, "USR1" },
	{ SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" }, { SIGPIPE, "PIPE" },     { SIGALRM, "ALRM" },   { SIGTERM, "TERM" },
	{ SIGCHLD, "CHLD" }, { SIGCONT, "CONT" }, { SIGSTOP, "STOP" },     { SIGTSTP, "TSTP" },   { SIGTTIN, "TTIN" },
	{ SIGTTOU, "TTOU" }, { SIGURG, "URG" },   { SIGXCPU, "XCPU" },     { SIGXFSZ, "XFSZ" },   { SIGVTALRM, "VTALRM" },
	{ SIGPROF, "PROF" }, { SIGWINCH, "WINCH" }, { SIGIO, "IO" },       { SIGPWR, "PWR" },     { SIGSYS, "SYS" },
};

const char *sbx_signal_name(int sig)
{
	for (size_t i = 0; i < SBX_ARRAY_SIZE(signames); i++)
		if (signames[i].sig == sig)
			return signames[i].name;
	return NULL;
}

int sbx_signal_from_name(const char *name)
{
	if (!name)
		return -1;
	if (!strncasecmp(name, "SIG", 3))
		name += 3;
	for (size_t i = 0; i < SBX_ARRAY_SIZE(signames); i++)
		if (!strcasecmp(signames[i].name, name))
			return signames[i].sig;
	int64_t v;
	if (sbx_parse_int64(name, 1, 64, &v) == 0)
		return (int)v;
	return -1;
}

int sbx_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	/* Strictly decimal: strtoll alone would take " 42" and "+42". */
	if (!s || !*s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return -EINVAL;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}
