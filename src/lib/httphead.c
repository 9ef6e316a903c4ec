/* HTTP/1.x request heads (RFC 9112), read strictly: a CRLF or bare LF line
 * end, a token method, a target without control characters or blanks, no
 * obsolete line folding, and header names of token characters. Anything
 * else is refused rather than guessed at, since the head decides who may
 * reach a sandbox. */
#include "config.h"
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "httphead.h"

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* One line from *pos, without its end; false when no line end is there yet. */
static bool next_line(const char *buf, size_t len, size_t *pos, struct sbx_http_str *line)
{
	const char *nl = memchr(buf + *pos, '\n', len - *pos);
	if (!nl)
		return false;
	size_t end = (size_t)(nl - buf);
	line->p = buf + *pos;
	line->n = end - *pos;
	if (line->n && line->p[line->n - 1] == '\r')
		line->n--;
	*pos = end + 1;
	return true;
}

int sbx_http_parse_head(const char *buf, size_t len, struct sbx_http_head *h)
{
	memset(h, 0, sizeof(*h));
	size_t pos = 0;
	struct sbx_http_str line;
	if (!next_line(buf, len, &pos, &line)) {
		/* Refuse early what can never become a request line. */
		for (size_t i = 0; i < len; i++)
			if (buf[i] == '\0' || (buf[i] == '\r' && i + 1 < len))
				return -1;
		return 0;
	}
	/* method SP target SP HTTP/1.x */
	size_t i = 0;
	while (i < line.n && is_tchar((unsigned char)line.p[i]))
		i++;
	if (i == 0 || i >= line.n || line.p[i] != ' ')
		return -1;
	h->method = (struct sbx_http_str){ line.p, i };
	size_t t = ++i;
	while (i < line.n && (unsigned char)line.p[i] > 0x20 && line.p[i] != 0x7f)
		i++;
	if (i == t || i >= line.n || line.p[i] != ' ')
		return -1;
	h->target = (struct sbx_http_str){ line.p + t, i - t };
	i++;
	if (line.n - i != 8 || memcmp(line.p + i, "HTTP/1.", 7) != 0 || line.p[i + 7] < '0' || line.p[i + 7] > '9')
		return -1;
	h->minor = line.p[i + 7] - '0';
	for (;;) {
		if (!next_line(buf, len, &pos, &line)) {
			for (size_t k = pos; k < len; k++)
				if (buf[k] == '\0')
					return -1;
			return 0;
		}
		if (line.n == 0) {
			h->len = pos;
			return (int)(pos > (size_t)INT32_MAX ? -1 : (int)pos);
		}
		if (line.p[0] == ' ' || line.p[0] == '\t')
			return -1; /* obsolete folding */
		size_t c = 0;
		while (c < line.n && is_tchar((unsigned char)line.p[c]))
			c++;
		if (c == 0 || c >= line.n || line.p[c] != ':')
			return -1;
		size_t v = c + 1, e = line.n;
		while (v < e && (line.p[v] == ' ' || line.p[v] == '\t'))
			v++;
		while (e > v && (line.p[e - 1] == ' ' || line.p[e - 1] == '\t'))
			e--;
		for (size_t k = v; k < e; k++) {
			unsigned char ch = (unsigned char)line.p[k];
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return -1;
		}
		if (h->n_headers == SBX_HTTP_MAX_HEADERS)
			return -1;
		h->headers[h->n_headers++] = (struct sbx_http_header){ { line.p, c }, { line.p + v, e - v } };
	}
}

const struct sbx_http_header *sbx_http_header_find(const struct sbx_http_head *h, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < h->n_headers; i++)
		if (h->headers[i].name.n == n && !strncasecmp(h->headers[i].name.p, name, n))
			return &h->headers[i];
	return NULL;
}

/* Walks the "&"-separated parameters of the query; cb returns true to stop. */
static bool param_matches(const char *p, size_t n, const char *name, struct sbx_http_str *value)
{
	size_t nl = strlen(name);
	if (n < nl + 1 || memcmp(p, name, nl) != 0 || p[nl] != '=')
		return false;
	if (value)
		*value = (struct sbx_http_str){ p + nl + 1, n - nl - 1 };
	return true;
}

/* The query is what lies between the first "?" and a "#"; a "?" after the
 * "#" belongs to the fragment. */
static const char *query_start(struct sbx_http_str target, const char **qend)
{
	const char *hash = memchr(target.p, '#', target.n);
	const char *end = hash ? hash : target.p + target.n;
	*qend = end;
	return memchr(target.p, '?', (size_t)(end - target.p));
}

bool sbx_http_query_get(struct sbx_http_str target, const char *name, struct sbx_http_str *value)
{
	const char *end;
	const char *q = query_start(target, &end);
	if (!q)
		return false;
	const char *p = q + 1;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		if (param_matches(p, (size_t)(e - p), name, value))
			return true;
		p = e + 1;
	}
	return false;
}

size_t sbx_http_query_remove(struct sbx_http_str target, const char *name, char *out, size_t outsz)
{
	size_t need = 0;
#define EMIT(ptr, len)                                                                  \
	do {                                                                            \
		for (size_t k_ = 0; k_ < (len); k_++, need++)                           \
			if (outsz && need < outsz - 1)                                  \
				out[need] = (ptr)[k_];                                  \
	} while (0)
	const char *end = target.p + target.n, *qend;
	const char *q = query_start(target, &qend);
	if (!q) {
		EMIT(target.p, target.n);
	} else {
		EMIT(target.p, (size_t)(q - target.p));
		const char *hash = qend < end ? qend : NULL;
		bool first = true;
		const char *p = q + 1;
		while (p < qend) {
			const char *amp = memchr(p, '&', (size_t)(qend - p));
			const char *e = amp ? amp : qend;
			if (e > p && !param_matches(p, (size_t)(e - p), name, NULL)) {
				EMIT(first ? "?" : "&", 1);
				EMIT(p, (size_t)(e - p));
				first = false;
			}
			p = e + 1;
		}
		if (hash)
			EMIT(hash, (size_t)(end - hash));
	}
#undef EMIT
	if (outsz)
		out[need < outsz ? need : outsz - 1] = '\0';
	return need;
}

bool sbx_http_cookie_get(struct sbx_http_str header, const char *name, struct sbx_http_str *value)
{
	const char *p = header.p, *end = header.p + header.n;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end)
			break;
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *e = semi ? semi : end;
		const char *te = e;
		while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
			te--;
		if (param_matches(p, (size_t)(te - p), name, value))
			return true;
		p = e + 1;
	}
	return false;
}

int sbx_http_preview_host(struct sbx_http_str host, const char *domain, uint16_t *port, char id[13])
{
	size_t n = host.n;
	/* an optional :port of the gateway itself */
	for (size_t i = n; i > 0; i--) {
		char c = host.p[i - 1];
		if (c == ':') {
			if (i == n)
				return -1;
			n = i - 1;
			break;
		}
		if (c < '0' || c > '9')
			break;
	}
	size_t dl = strlen(domain);
	if (n < dl + 2 || host.p[n - dl - 1] != '.' || strncasecmp(host.p + n - dl, domain, dl) != 0)
		return -1;
	size_t label = n - dl - 1; /* "PORT-ID" */
	uint32_t p = 0;
	size_t i = 0;
	while (i < label && host.p[i] >= '0' && host.p[i] <= '9' && i < 5)
		p = p * 10 + (uint32_t)(host.p[i++] - '0');
	if (i == 0 || host.p[0] == '0' || p == 0 || p > 65535 || i >= label || host.p[i] != '-' || label - i - 1 != 12)
		return -1;
	for (size_t k = 0; k < 12; k++) {
		char c = host.p[i + 1 + k];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		id[k] = c;
	}
	id[12] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* name is "suffix" or ends with ".suffix", case-insensitive. */
static bool name_under(const char *name, size_t n, const char *suffix)
{
	size_t sl = strlen(suffix);
	if (!sl || n < sl || strncasecmp(name + n - sl, suffix, sl) != 0)
		return false;
	return n == sl || name[n - sl - 1] == '.';
}

bool sbx_http_host_local(struct sbx_http_str host, const char *domain)
{
	char name[256];
	size_t n = host.n;
	const char *p = host.p;
	if (!n || n >= sizeof(name))
		return false;
	if (p[0] == '[') {
		const char *close = memchr(p, ']', n);
		if (!close)
			return false;
		size_t rest = n - (size_t)(close + 1 - p);
		if (rest && (close[1] != ':' || rest == 1))
			return false;
		for (size_t i = 1; i < rest; i++)
			if (close[1 + i] < '0' || close[1 + i] > '9')
				return false;
		size_t in = (size_t)(close - p - 1);
		memcpy(name, p + 1, in);
		name[in] = '\0';
		struct in6_addr a6;
		return inet_pton(AF_INET6, name, &a6) == 1;
	}
	/* an optional :port */
	for (size_t i = n; i > 0; i--) {
		char c = p[i - 1];
		if (c == ':') {
			if (i == n)
				return false;
			n = i - 1;
			break;
		}
		if (c < '0' || c > '9')
			break;
	}
	if (n && p[n - 1] == '.') /* the root's dot */
		n--;
	if (!n)
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	if (memchr(name, ':', n))
		return false;
	struct in_addr a4;
	if (inet_pton(AF_INET, name, &a4) == 1)
		return true;
	return name_under(name, n, "localhost") || (domain && name_under(name, n, domain));
}
