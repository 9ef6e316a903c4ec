/* yajl glue. All JSON in sandboxd is read and written here or through these
 * helpers; nothing parses JSON by hand. */
#include "config.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <yajl/yajl_parse.h>

#include "json.h"
#include "util.h"

yajl_val sbx_json_parse(const char *text, sbx_error **err)
{
	char ebuf[256] = "";
	yajl_val v = yajl_tree_parse(text, ebuf, sizeof(ebuf));
	if (!v) {
		/* yajl's message spans lines with a caret drawing; keep the first. */
		char *nl = strchr(ebuf, '\n');
		if (nl)
			*nl = '\0';
		/* yajl's own text already starts with "parse error". */
		const char *m = ebuf[0] ? ebuf : "invalid JSON";
		sbx_error_set(err, SBX_ERR_PARSE, "%s%s", strncmp(m, "parse error", 11) ? "parse error: " : "", m);
	}
	return v;
}

void sbx_json_freep(yajl_val *v)
{
	if (*v)
		yajl_tree_free(*v);
	*v = NULL;
}

yajl_val sbx_json_get(yajl_val obj, const char *key)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (!strcmp(obj->u.object.keys[i], key))
			return obj->u.object.values[i];
	return NULL;
}

static int lookup(yajl_val obj, const char *key, bool required, yajl_val *v, sbx_error **err)
{
	*v = sbx_json_get(obj, key);
	if (!*v || YAJL_IS_NULL(*v)) {
		if (required)
			return sbx_error_param(err, key, "missing required parameter '%s'", key);
		return 0;
	}
	return 1;
}

int sbx_json_string(yajl_val obj, const char *key, bool required, const char **out, sbx_error **err)
{
	yajl_val v;
	int r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!YAJL_IS_STRING(v))
		return sbx_error_param(err, key, "parameter '%s' must be a string", key);
	*out = YAJL_GET_STRING(v);
	return 1;
}

int sbx_json_int(yajl_val obj, const char *key, bool required, int64_t min, int64_t max, int64_t *out, sbx_error **err)
{
	yajl_val v;
	int r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!YAJL_IS_INTEGER(v))
		return sbx_error_param(err, key, "parameter '%s' must be an integer", key);
	long long x = YAJL_GET_INTEGER(v);
	if (x < min || x > max)
		return sbx_error_param(err, key, "parameter '%s' must be between %lld and %lld", key, (long long)min,
				       (long long)max);
	*out = x;
	return 1;
}

int sbx_json_number(yajl_val obj, const char *key, bool required, double min, double max, double *out, sbx_error **err)
{
	yajl_val v;
	int r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!YAJL_IS_NUMBER(v))
		return sbx_error_param(err, key, "parameter '%s' must be a number", key);
	double x = YAJL_IS_INTEGER(v) ? (double)YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
	if (!isfinite(x) || x < min || x > max)
		return sbx_error_param(err, key, "parameter '%s' must be between %g and %g", key, min, max);
	*out = x;
	return 1;
}

int sbx_json_bool(yajl_val obj, const char *key, bool required, bool *out, sbx_error **err)
{
	yajl_val v;
	int r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return sbx_error_param(err, key, "parameter '%s' must be true or false", key);
	*out = YAJL_IS_TRUE(v);
	return 1;
}

int sbx_json_object(yajl_val obj, const char *key, bool required, yajl_val *out, sbx_error **err)
{
	yajl_val v;
	int r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!YAJL_IS_OBJECT(v))
		return sbx_error_param(err, key, "parameter '%s' must be an object", key);
	*out = v;
	return 1;
}

int sbx_json_array(yajl_val obj, const char *key, bool required, yajl_val *out, sbx_error **err)
{
	yajl_val v;
	int r = lookup(obj, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!YAJL_IS_ARRAY(v))
		return sbx_error_param(err, key, "parameter '%s' must be an array", key);
	*out = v;
	return 1;
}

int sbx_json_string_array(yajl_val obj, const char *key, bool required, char ***out, sbx_error **err)
{
	yajl_val arr;
	int r = sbx_json_array(obj, key, required, &arr, err);
	if (r <= 0)
		return r;
	size_t n = arr->u.array.len;
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return sbx_error_errno(err, ENOMEM, "parameter '%s'", key);
	for (size_t i = 0; i < n; i++) {
		yajl_val e = arr->u.array.values[i];
		const char *str = YAJL_IS_STRING(e) ? YAJL_GET_STRING(e) : NULL;
		if (!str || !(v[i] = strdup(str))) {
			sbx_strv_free(v);
			return sbx_error_param(err, key, "parameter '%s' must be an array of strings", key);
		}
	}
	*out = v;
	return 1;
}

int sbx_json_string_map(yajl_val obj, const char *key, bool required, struct sbx_kvlist *out, sbx_error **err)
{
	yajl_val m;
	int r = sbx_json_object(obj, key, required, &m, err);
	if (r <= 0)
		return r;
	struct sbx_kvlist l = { 0 };
	for (size_t i = 0; i < m->u.object.len; i++) {
		yajl_val e = m->u.object.values[i];
		if (!YAJL_IS_STRING(e)) {
			sbx_kvlist_free(&l);
			return sbx_error_param(err, key, "parameter '%s' must map names to strings ('%s' does not)", key,
					       m->u.object.keys[i]);
		}
		if (sbx_kvlist_set(&l, m->u.object.keys[i], YAJL_GET_STRING(e)) < 0) {
			sbx_kvlist_free(&l);
			return sbx_error_errno(err, ENOMEM, "parameter '%s'", key);
		}
	}
	*out = l;
	return 1;
}

void sbx_kvlist_free(struct sbx_kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int sbx_kvlist_set(struct sbx_kvlist *l, const char *key, const char *value)
{
	char *v = strdup(value);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		if (!strcmp(l->items[i].key, key)) {
			free(l->items[i].value);
			l->items[i].value = v;
			return 0;
		}
	}
	struct sbx_kv *n = realloc(l->items, (l->n + 1) * sizeof(*n));
	char *k = strdup(key);
	if (!n || !k) {
		if (n)
			l->items = n;
		free(k);
		free(v);
		return -ENOMEM;
	}
	l->items = n;
	l->items[l->n].key = k;
	l->items[l->n].value = v;
	l->n++;
	return 0;
}

const char *sbx_kvlist_get(const struct sbx_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->items[i].key, key))
			return l->items[i].value;
	return NULL;
}

int sbx_kvlist_copy(struct sbx_kvlist *dst, const struct sbx_kvlist *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (sbx_kvlist_set(dst, src->items[i].key, src->items[i].value) < 0)
			return -ENOMEM;
	return 0;
}

void sbx_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

char **sbx_strv_dup(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **r = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; r && i < n; i++) {
		if (!(r[i] = strdup(v[i]))) {
			sbx_strv_free(r);
			return NULL;
		}
	}
	return r;
}

void sbx_strv_freep(char ***v)
{
	sbx_strv_free(*v);
	*v = NULL;
}

size_t sbx_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

char **sbx_strv_copy(char *const *v)
{
	size_t n = sbx_strv_len(v);
	char **r = calloc(n + 1, sizeof(char *));
	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(r[i] = strdup(v[i]))) {
			sbx_strv_free(r);
			return NULL;
		}
	}
	return r;
}

yajl_gen sbx_gen_new(void)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (g)
		yajl_gen_config(g, yajl_gen_beautify, 0);
	return g;
}

void sbx_gen_freep(yajl_gen *g)
{
	if (*g)
		yajl_gen_free(*g);
	*g = NULL;
}

void sbx_gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void sbx_gen_strn(yajl_gen g, const char *s, size_t len)
{
	yajl_gen_string(g, (const unsigned char *)s, len);
}

void sbx_gen_key(yajl_gen g, const char *key)
{
	sbx_gen_str(g, key);
}

void sbx_gen_kv_str(yajl_gen g, const char *key, const char *value)
{
	sbx_gen_key(g, key);
	if (value)
		sbx_gen_str(g, value);
	else
		yajl_gen_null(g);
}

void sbx_gen_kv_int(yajl_gen g, const char *key, int64_t value)
{
	sbx_gen_key(g, key);
	yajl_gen_integer(g, value);
}

void sbx_gen_kv_double(yajl_gen g, const char *key, double value)
{
	sbx_gen_key(g, key);
	yajl_gen_double(g, value);
}

void sbx_gen_kv_bool(yajl_gen g, const char *key, bool value)
{
	sbx_gen_key(g, key);
	yajl_gen_bool(g, value);
}

void sbx_gen_kv_null(yajl_gen g, const char *key)
{
	sbx_gen_key(g, key);
	yajl_gen_null(g);
}

void sbx_gen_kvlist(yajl_gen g, const char *key, const struct sbx_kvlist *l)
{
	sbx_gen_key(g, key);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < l->n; i++)
		sbx_gen_kv_str(g, l->items[i].key, l->items[i].value);
	yajl_gen_map_close(g);
}

void sbx_gen_strv(yajl_gen g, const char *key, char *const *v)
{
	sbx_gen_key(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; v && v[i]; i++)
		sbx_gen_str(g, v[i]);
	yajl_gen_array_close(g);
}

void sbx_gen_value(yajl_gen g, yajl_val v)
{
	if (!v || YAJL_IS_NULL(v)) {
		yajl_gen_null(g);
	} else if (YAJL_IS_STRING(v)) {
		sbx_gen_str(g, YAJL_GET_STRING(v));
	} else if (YAJL_IS_INTEGER(v)) {
		yajl_gen_integer(g, YAJL_GET_INTEGER(v));
	} else if (YAJL_IS_NUMBER(v)) {
		const char *raw = YAJL_GET_NUMBER(v);
		yajl_gen_number(g, raw, strlen(raw));
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			sbx_gen_key(g, v->u.object.keys[i]);
			sbx_gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			sbx_gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	}
}

/* A NUL in a JSON string (written \u0000) cannot survive in a C string:
 * find the member of the request's params that holds one, so that the
 * request can be refused rather than silently cut short. */
struct nul_scan {
	char keys[4][64];
	int depth; /* map nesting */
	int found;
	char where[64];
};

static void nul_found(struct nul_scan *s)
{
	if (s->found)
		return;
	s->found = 1;
	if (s->depth >= 2 && !strcmp(s->keys[0], "params"))
		snprintf(s->where, sizeof(s->where), "%s", s->keys[1]);
	else if (s->depth >= 1)
		snprintf(s->where, sizeof(s->where), "%s", s->keys[0]);
}

static int nul_string(void *ctx, const unsigned char *str, size_t len)
{
	if (memchr(str, '\0', len))
		nul_found(ctx);
	return 1;
}

static int nul_key(void *ctx, const unsigned char *key, size_t len)
{
	struct nul_scan *s = ctx;
	if (s->depth >= 1 && s->depth <= 4)
		snprintf(s->keys[s->depth - 1], sizeof(s->keys[0]), "%.*s", (int)(len < 63 ? len : 63), key);
	if (memchr(key, '\0', len)) {
		s->depth--;
		nul_found(s);
		s->depth++;
	}
	return 1;
}

static int nul_map_open(void *ctx)
{
	((struct nul_scan *)ctx)->depth++;
	return 1;
}

static int nul_map_close(void *ctx)
{
	((struct nul_scan *)ctx)->depth--;
	return 1;
}

int sbx_json_find_nul(const char *text, size_t len, char *param, size_t cap)
{
	if (!memmem(text, len, "\\u0000", 6))
		return 0;
	static const yajl_callbacks cb = {
		.yajl_string = nul_string,
		.yajl_map_key = nul_key,
		.yajl_start_map = nul_map_open,
		.yajl_end_map = nul_map_close,
	};
	struct nul_scan s = { .depth = 0 };
	yajl_handle h = yajl_alloc(&cb, NULL, &s);
	if (!h)
		return 0;
	yajl_parse(h, (const unsigned char *)text, len);
	yajl_complete_parse(h);
	yajl_free(h);
	if (s.found)
		snprintf(param, cap, "%s", s.where[0] ? s.where : "params");
	return s.found;
}

/* End of the string whose opening quote is at s[i] (index of the closing
 * quote), or 0 if it does not end; *escaped tells whether it holds a
 * backslash. Quotes are found with memchr, so a megabyte string costs about
 * what copying it would. */
static size_t string_end(const char *s, size_t len, size_t i, bool *escaped)
{
	size_t j = i + 1;
	*escaped = false;
	for (;;) {
		const char *q = j < len ? memchr(s + j, '"', len - j) : NULL;
		if (!q)
			return 0;
		size_t e = (size_t)(q - s), k = e;
		while (k > i + 1 && s[k - 1] == '\\')
			k--;
		if ((e - k) % 2 == 0) {
			if (!*escaped && memchr(s + i + 1, '\\', e - i - 1))
				*escaped = true;
			return e;
		}
		*escaped = true;
		j = e + 1;
	}
}

static bool token_is(const char *s, size_t start, size_t end, const char *want)
{
	size_t n = strlen(want);
	return end - start == n && !memcmp(s + start, want, n);
}

int sbx_json_cut_string(char *text, size_t len, const char *outer, const char *inner, size_t min_len,
			const char *must_key, const char *must_value, struct sbx_json_cut *cut)
{
	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
		i++;
	if (i >= len || text[i] != '{')
		return 0;
	int depth = 0;
	bool in_outer = false, must_ok = !must_key;
	/* The last key seen at depth 1 and 2 (start and end offsets). */
	size_t k1s = 0, k1e = 0, k2s = 0, k2e = 0;
	size_t vs = 0, ve = 0; /* the value found, its bytes between the quotes */
	for (; i < len; i++) {
		char c = text[i];
		if (c == '{' || c == '[') {
			depth++;
			if (depth == 2)
				in_outer = c == '{' && token_is(text, k1s, k1e, outer);
			k2s = k2e = 0;
			continue;
		}
		if (c == '}' || c == ']') {
			if (--depth < 0)
				return 0;
			if (depth < 2)
				in_outer = false;
			continue;
		}
		if (c != '"')
			continue;
		bool escaped;
		size_t e = string_end(text, len, i, &escaped);
		if (!e)
			return 0;
		size_t j = e + 1;
		while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n'))
			j++;
		if (j < len && text[j] == ':') {
			if (depth == 1)
				k1s = i + 1, k1e = e;
			else if (depth == 2)
				k2s = i + 1, k2e = e;
			i = j;
			continue;
		}
		if (depth == 1 && must_key && token_is(text, k1s, k1e, must_key))
			must_ok = !escaped && token_is(text, i + 1, e, must_value);
		if (depth == 2 && in_outer && token_is(text, k2s, k2e, inner)) {
			if (vs || escaped || e - i - 1 < min_len)
				return 0; /* twice, or not for us: the tree decides */
			vs = i + 1;
			ve = e;
		}
		i = e;
	}
	if (depth != 0 || !vs || !must_ok)
		return 0;
	size_t rest_len = len - (ve - vs);
	char *rest = malloc(rest_len + 1);
	if (!rest)
		return -ENOMEM;
	memcpy(rest, text, vs);
	memcpy(rest + vs, text + ve, len - ve);
	rest[rest_len] = '\0';
	cut->rest = rest;
	cut->rest_len = rest_len;
	cut->value = text + vs;
	cut->value_len = ve - vs;
	return 1;
}
