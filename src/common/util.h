/* Small helpers both the daemon and sandboxctl use: ownership cleanup,
 * growable buffers, fd I/O, names and ids, time stamps, base64. */
#ifndef SBX_UTIL_H
#define SBX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

void sbx_freep(void *p);
void sbx_closep(int *fd);
void sbx_fclosep(void *f);
void sbx_closedirp(void *d);
#define _cleanup_free_ __attribute__((cleanup(sbx_freep)))
#define _cleanup_close_ __attribute__((cleanup(sbx_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(sbx_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(sbx_closedirp)))

static inline int sbx_take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

static inline void *sbx_take_ptr(void *pp)
{
	void **p = pp;
	void *r = *p;
	*p = NULL;
	return r;
}

#define SBX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Growable byte buffer; data is always NUL-terminated for convenience. */
struct sbx_buf {
	char *data;
	size_t len;
	size_t cap;
};
int sbx_buf_reserve(struct sbx_buf *b, size_t extra);
int sbx_buf_append(struct sbx_buf *b, const void *data, size_t len);
int sbx_buf_printf(struct sbx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbx_buf_consume(struct sbx_buf *b, size_t n);
void sbx_buf_free(struct sbx_buf *b);

/* Full reads and writes that retry on EINTR. */
ssize_t sbx_write_all(int fd, const void *buf, size_t len);
ssize_t sbx_read_all(int fd, void *buf, size_t len);
int sbx_set_nonblock(int fd, bool on);

/* Long-lived descriptors (one per sandbox) are parked at or above a base
 * number, so that the low numbers stay few and dense: a clone that shares
 * the table then copies only those (see spawn.c). 0 turns it off. */
void sbx_fd_park_base(int base);
/* fd moved to the lowest free number at or above the base (the old one
 * closed); unchanged when there is no base, no room or it is there. */
int sbx_fd_park(int fd);

/* Descriptors passed over unix sockets (SCM_RIGHTS), at most this many in
 * one message. */
#define SBX_PASS_FDS_MAX 16
/* One sendmsg of buf carrying fd (none when fd < 0); EINTR is retried.
 * Returns the bytes sent, or -1. */
ssize_t sbx_send_with_fd(int sock, const void *buf, size_t len, int fd, int flags);
/* One recvmsg into buf (MSG_CMSG_CLOEXEC added to flags). Descriptors that
 * come with it are appended to fds while *n_fds < max and closed past
 * that; *dropped (may be NULL) tells whether any were closed or lost to a
 * truncated control message. */
ssize_t sbx_recv_with_fds(int sock, void *buf, size_t len, int flags, int *fds, size_t max, size_t *n_fds,
			  bool *dropped);

/* Read a whole (small) file below dirfd; fails past max bytes. */
int sbx_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *outlen, sbx_error **err);
/* Write a file atomically: temp file in the same directory, then rename. */
int sbx_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode, sbx_error **err);
int sbx_write_file_at(int dirfd, const char *path, const char *data, sbx_error **err);
int sbx_mkdir_p(const char *path, mode_t mode, sbx_error **err);
/* Remove a tree below dirfd without following symlinks, staying on one fs. */
int sbx_rm_rf_at(int dirfd, const char *name, sbx_error **err);

/* Names: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}. Ids: 12 lowercase hex. */
bool sbx_name_valid(const char *name);
bool sbx_id_valid(const char *id);
int sbx_random_id(char out[13], sbx_error **err);

/* RFC 3339 UTC time stamps. */
void sbx_time_rfc3339(int64_t unix_ns, char out[64]);
int64_t sbx_now_ns(void);          /* CLOCK_REALTIME */
int64_t sbx_monotonic_ms(void);    /* CLOCK_MONOTONIC */

/* Base64 (RFC 4648, with padding). Decode rejects malformed input. */
#define SBX_BASE64_ENCODED_LEN(n) (4 * (((n) + 2) / 3))
char *sbx_base64_encode(const void *data, size_t len, size_t *outlen);
/* Writes SBX_BASE64_ENCODED_LEN(len) characters to out (no terminator). */
size_t sbx_base64_encode_into(const void *data, size_t len, char *out);
int sbx_base64_decode(const char *in, size_t inlen, char **out, size_t *outlen);
/* Decodes into out, which needs inlen / 4 * 3 bytes and may be in itself
 * (decoding in place); no terminator. -EINVAL for anything but canonical
 * padded base64 (out then holds garbage). */
int sbx_base64_decode_into(const char *in, size_t inlen, char *out, size_t *outlen);

/* Hex (base16): two lowercase digits a byte out; either case in. Cheaper
 * than base64 for clients whose base64 decoder is slow (CPython's). */
#define SBX_HEX_ENCODED_LEN(n) (2 * (size_t)(n))
/* Writes SBX_HEX_ENCODED_LEN(len) characters to out (no terminator). */
size_t sbx_hex_encode_into(const void *data, size_t len, char *out);
/* Decodes into out, which needs inlen / 2 bytes and may be in itself
 * (decoding in place); no terminator. -EINVAL for an odd length or a
 * character that is not a hex digit (out then holds garbage). */
int sbx_hex_decode_into(const char *in, size_t inlen, char *out, size_t *outlen);

/* Replace invalid UTF-8 sequences with U+FFFD; returns a new string. */
char *sbx_utf8_sanitize(const char *data, size_t len, size_t *outlen);
/* Append data as a quoted JSON string, repaired as sbx_utf8_sanitize does:
 * the same text yajl would write for the sanitized bytes, in one pass. */
int sbx_json_append_string(struct sbx_buf *b, const char *data, size_t len);

/* Signal names without the SIG prefix ("TERM" <-> 15). */
const char *sbx_signal_name(int sig);
int sbx_signal_from_name(const char *name);

/* Parse a strictly decimal, in-range integer. */
int sbx_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
