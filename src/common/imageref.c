/* Image reference grammar of the distribution spec, checked component by
 * component so that an error can say which part is wrong. */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imageref.h"
#include "util.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* path-component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool path_component_valid(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n;) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && !is_lower_alnum(s[j]))
			j++;
		size_t sep = j - i;
		bool ok = (sep == 1 && (s[i] == '.' || s[i] == '_' || s[i] == '-')) ||
			  (sep == 2 && s[i] == '_' && s[i + 1] == '_');
		if (!ok) {
			ok = true;
			for (size_t k = i; k < j; k++)
				ok = ok && s[k] == '-';
		}
		if (!ok)
			return false;
		i = j;
	}
	return true;
}

/* domain: label(.label)*[:port], a label [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?;
 * or a bracketed IPv6 address with an optional port. */
static bool domain_valid(const char *s, size_t n)
{
	const char *colon = NULL;
	size_t host_len = n;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == ':'))
				return false;
		host_len = (size_t)(close - s) + 1;
		if (host_len < n && s[host_len] != ':')
			return false;
		colon = host_len < n ? s + host_len : NULL;
	} else {
		colon = memchr(s, ':', n);
		host_len = colon ? (size_t)(colon - s) : n;
		if (host_len == 0)
			return false;
		for (size_t i = 0, start = 0; i <= host_len; i++) {
			if (i < host_len && s[i] != '.') {
				if (!is_alnum(s[i]) && s[i] != '-')
					return false;
				continue;
			}
			if (i == start || s[start] == '-' || s[i - 1] == '-')
				return false;
			start = i + 1;
		}
	}
	if (colon) {
		size_t plen = n - (size_t)(colon - s) - 1;
		if (plen == 0 || plen > 5)
			return false;
		for (size_t i = 1; i <= plen; i++)
			if (colon[i] < '0' || colon[i] > '9')
				return false;
		if (atoi(colon + 1) > 65535)
			return false;
	}
	return true;
}

static bool tag_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TAG_MAX_LEN || !(is_alnum(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* algorithm ":" encoded, with algorithm [a-z0-9]+([+._-][a-z0-9]+)* and
 * encoded at least 32 of [a-zA-Z0-9=_-]; sha256 must be 64 lowercase hex. */
static bool digest_valid(const char *s)
{
	const char *colon = strchr(s, ':');
	if (!colon || colon == s)
		return false;
	for (const char *p = s; p < colon; p++) {
		bool sep = *p == '+' || *p == '.' || *p == '_' || *p == '-';
		if (!is_lower_alnum(*p) && !(sep && p > s && p + 1 < colon && is_lower_alnum(p[1])))
			return false;
	}
	const char *enc = colon + 1;
	size_t n = strlen(enc);
	if (n < 32)
		return false;
	bool sha256 = (size_t)(colon - s) == 6 && !strncmp(s, "sha256", 6);
	if (sha256 && n != 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = enc[i];
		bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		if (sha256 ? !hex : !(is_alnum(c) || c == '=' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

void sbx_image_ref_free(struct sbx_image_ref *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

int sbx_image_ref_parse(const char *s, const char *param, struct sbx_image_ref *out, sbx_error **err)
{
	memset(out, 0, sizeof(*out));
	if (!param)
		param = "name";
	if (!s || !*s)
		return sbx_error_param(err, param, "image reference must not be empty");
	size_t len = strlen(s);
	if (len > SBX_IMAGE_REF_MAX)
		return sbx_error_param(err, param, "image reference is %zu bytes long; at most %d are allowed", len,
				       SBX_IMAGE_REF_MAX);
	_cleanup_free_ char *copy = strdup(s);
	if (!copy)
		return sbx_error_errno(err, ENOMEM, "image reference");
	struct sbx_image_ref r = { 0 };
	char *at = strchr(copy, '@');
	if (at) {
		*at = '\0';
		if (!digest_valid(at + 1)) {
			sbx_error_param(err, param, "image reference '%.*s': '%.100s' is not a valid digest (algorithm:hex)",
					(int)SBX_IMAGE_REF_MAX, s, at + 1);
			goto fail;
		}
		r.digest = strdup(at + 1);
	}
	/* A tag is after the last ':' that follows the last '/'. */
	char *slash = strrchr(copy, '/');
	char *colon = strrchr(slash ? slash : copy, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1)) {
			sbx_error_param(err, param,
					"image reference '%s': tag '%.140s' is not valid (1 to 128 of letters, digits, "
					"'_', '.', '-', not starting with '.' or '-')",
					s, colon + 1);
			goto fail;
		}
		r.tag = strdup(colon + 1);
	}
	char *name = copy;
	if (!*name) {
		sbx_error_param(err, param, "image reference '%s' has no name", s);
		goto fail;
	}
	if (strlen(name) > NAME_MAX_LEN) {
		sbx_error_param(err, param, "image reference '%s': the name is longer than %d bytes", s, NAME_MAX_LEN);
		goto fail;
	}
	/* The first part is a registry if it looks like a host name. */
	char *first_slash = strchr(name, '/');
	char *path = name;
	if (first_slash) {
		size_t dlen = (size_t)(first_slash - name);
		bool is_domain = memchr(name, '.', dlen) || memchr(name, ':', dlen) || memchr(name, '[', dlen) ||
				 (dlen == 9 && !strncmp(name, "localhost", 9));
		for (size_t i = 0; !is_domain && i < dlen; i++)
			is_domain = name[i] >= 'A' && name[i] <= 'Z';
		if (is_domain) {
			if (!domain_valid(name, dlen)) {
				sbx_error_param(err, param, "image reference '%s': '%.*s' is not a valid registry host[:port]",
						s, (int)dlen, name);
				goto fail;
			}
			r.domain = strndup(name, dlen);
			path = first_slash + 1;
		}
	}
	for (char *p = path;;) {
		char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (!path_component_valid(p, n)) {
			sbx_error_param(err, param,
					"image reference '%s': '%.*s' is not a valid name component (lowercase letters "
					"and digits, separated by '.', '_', '__' or dashes)",
					s, (int)n, p);
			goto fail;
		}
		if (!end)
			break;
		p = end + 1;
	}
	/* The limit holds for the name a registry is asked for. */
	bool hub = !r.domain || !strcmp(r.domain, "docker.io") || !strcmp(r.domain, "index.docker.io");
	size_t full = (hub ? 9 : strlen(r.domain)) + 1 + (hub && !strchr(path, '/') ? 8 : 0) + strlen(path);
	if (full > NAME_MAX_LEN) {
		sbx_error_param(err, param, "image reference '%s': the full name is longer than %d bytes", s, NAME_MAX_LEN);
		goto fail;
	}
	/* So does the reference's own: the normalized form must parse too. */
	if (full + (r.tag ? 1 + strlen(r.tag) : 0) + (r.digest ? 1 + strlen(r.digest) : 0) > SBX_IMAGE_REF_MAX) {
		sbx_error_param(err, param, "image reference '%.100s...': with its registry it is longer than %d bytes", s,
				SBX_IMAGE_REF_MAX);
		goto fail;
	}
	r.path = strdup(path);
	if (!r.path || (at && !r.digest) || (colon && !r.tag) || (r.domain == NULL && path != name)) {
		sbx_error_errno(err, ENOMEM, "image reference");
		goto fail;
	}
	*out = r;
	return 0;
fail:
	sbx_image_ref_free(&r);
	return -1;
}

bool sbx_image_ref_valid(const char *s)
{
	struct sbx_image_ref r;
	if (sbx_image_ref_parse(s, NULL, &r, NULL) < 0)
		return false;
	sbx_image_ref_free(&r);
	return true;
}

char *sbx_image_ref_normalize(const struct sbx_image_ref *r)
{
	const char *domain = r->domain ? r->domain : "docker.io";
	bool hub = !strcmp(domain, "docker.io") || !strcmp(domain, "index.docker.io");
	const char *lib = hub && !strchr(r->path, '/') ? "library/" : "";
	const char *tag = r->tag ? r->tag : (r->digest ? NULL : "latest");
	char *out = NULL;
	if (asprintf(&out, "%s/%s%s%s%s%s%s", hub ? "docker.io" : domain, lib, r->path, tag ? ":" : "", tag ? tag : "",
		     r->digest ? "@" : "", r->digest ? r->digest : "") < 0)
		return NULL;
	return out;
}

char *sbx_image_ref_format(const struct sbx_image_ref *r)
{
	char *out = NULL;
	if (asprintf(&out, "%s%s%s%s%s%s%s", r->domain ? r->domain : "", r->domain ? "/" : "", r->path,
		     r->tag ? ":" : "", r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "") < 0)
		return NULL;
	return out;
}
