/* A small parser for HTTP/1.x request heads, as the preview gateway reads
 * them from untrusted clients: request line, headers, the Host of a
 * preview URL, one query parameter and one cookie. Never allocates,
 * never copies; every result points into the caller's buffer. */
#ifndef SBX_HTTPHEAD_H
#define SBX_HTTPHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBX_HTTP_MAX_HEADERS 64

struct sbx_http_str {
	const char *p;
	size_t n;
};

struct sbx_http_header {
	struct sbx_http_str name, value; /* value without surrounding blanks */
};

struct sbx_http_head {
	struct sbx_http_str method, target;
	int minor; /* HTTP/1.<minor> */
	struct sbx_http_header headers[SBX_HTTP_MAX_HEADERS];
	size_t n_headers;
	size_t len; /* bytes of the head, final empty line included */
};

/* > 0: the head is complete and that long; 0: more bytes are needed;
 * -1: not a request head we accept. */
int sbx_http_parse_head(const char *buf, size_t len, struct sbx_http_head *h);
/* The first header of that name (case-insensitive), or NULL. */
const struct sbx_http_header *sbx_http_header_find(const struct sbx_http_head *h, const char *name);
/* The value of name=value in the target's query string. */
bool sbx_http_query_get(struct sbx_http_str target, const char *name, struct sbx_http_str *value);
/* The target without any name=value parameter (and without a "?" left
 * empty); out gets at most outsz - 1 bytes and a NUL; returns the length
 * it needs. */
size_t sbx_http_query_remove(struct sbx_http_str target, const char *name, char *out, size_t outsz);
/* The value of a cookie in a Cookie header. */
bool sbx_http_cookie_get(struct sbx_http_str header, const char *name, struct sbx_http_str *value);
/* "PORT-ID.DOMAIN" with an optional ":port" after it: the port (1..65535)
 * and the sandbox id (12 lowercase hex digits) of a preview URL. */
int sbx_http_preview_host(struct sbx_http_str host, const char *domain, uint16_t *port, char id[13]);
/* A Host header (with an optional ":port") that names this machine as a
 * local client or the operator's preview domain would: an IPv4 or [IPv6]
 * literal, localhost or a name under it, the domain or a name under it.
 * A page whose own name was made to resolve here (DNS rebinding) sends
 * its own name instead, and is refused. */
bool sbx_http_host_local(struct sbx_http_str host, const char *domain);

#endif
