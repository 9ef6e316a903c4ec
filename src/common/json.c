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

/* sbx_json_cut_string: yajl's event parser finds the member; only its
 * position is taken from the parse. For a string without escapes yajl
 * hands over a pointer into the text itself, which gives that position;
 * keys are compared against short names, so a longer key matches none. */
struct cut_scan {
	const char *text;
	size_t len;
	const char *outer, *inner, *must_key, *must_value;
	size_t min_len;
	int depth;
	bool outer_map; /* the map at depth 2 is member outer of the top level */
	char key1[32], key2[32];
	bool must_ok, unusable;
	const char *value;
	size_t value_len;
};

static void cut_set_key(char *dst, const unsigned char *k, size_t n)
{
	if (n >= 32 || memchr(k, '\0', n)) {
		snprintf(dst, 32, "%s", "\x01"); /* no name we look for */
		return;
	}
	memcpy(dst, k, n);
	dst[n] = '\0';
}

static int cut_scalar(struct cut_scan *s, const unsigned char *str, size_t n, bool is_string)
{
	if (s->depth == 1 && s->must_key && !strcmp(s->key1, s->must_key))
		s->must_ok = is_string && n == strlen(s->must_value) && !memcmp(str, s->must_value, n);
	if (s->depth == 2 && s->outer_map && !strcmp(s->key2, s->inner)) {
		const char *p = (const char *)str;
		/* Twice, not a string, short, or decoded from escapes (then
		 * not in the text): the tree decides. */
		if (s->value || !is_string || n < s->min_len || p <= s->text || p + n >= s->text + s->len ||
		    p[-1] != '"' || p[n] != '"' || memchr(p, '\\', n)) {
			s->unusable = true;
		} else {
			s->value = p;
			s->value_len = n;
		}
	}
	return 1;
}

static int cut_null(void *ctx)
{
	return cut_scalar(ctx, NULL, 0, false);
}

static int cut_boolean(void *ctx, int b)
{
	(void)b;
	return cut_scalar(ctx, NULL, 0, false);
}

static int cut_number(void *ctx, const char *n, size_t l)
{
	(void)n;
	(void)l;
	return cut_scalar(ctx, NULL, 0, false);
}

static int cut_string(void *ctx, const unsigned char *v, size_t l)
{
	return cut_scalar(ctx, v, l, true);
}

static int cut_start_map(void *ctx)
{
	struct cut_scan *s = ctx;
	if (++s->depth == 2)
		s->outer_map = !strcmp(s->key1, s->outer);
	return 1;
}

static int cut_start_array(void *ctx)
{
	struct cut_scan *s = ctx;
	if (++s->depth == 2)
		s->outer_map = false;
	return 1;
}

static int cut_key(void *ctx, const unsigned char *k, size_t l)
{
	struct cut_scan *s = ctx;
	if (s->depth == 1)
		cut_set_key(s->key1, k, l);
	else if (s->depth == 2)
		cut_set_key(s->key2, k, l);
	return 1;
}

static int cut_end(void *ctx)
{
	struct cut_scan *s = ctx;
	if (--s->depth < 2)
		s->outer_map = false;
	return 1;
}

static const yajl_callbacks cut_callbacks = {
	.yajl_null = cut_null,
	.yajl_boolean = cut_boolean,
	.yajl_number = cut_number,
	.yajl_string = cut_string,
	.yajl_start_map = cut_start_map,
	.yajl_map_key = cut_key,
	.yajl_end_map = cut_end,
	.yajl_start_array = cut_start_array,
	.yajl_end_array = cut_end,
};

int sbx_json_cut_string(char *text, size_t len, const char *outer, const char *inner, size_t min_len,
			const char *must_key, const char *must_value, struct sbx_json_cut *cut)
{
	struct cut_scan s = { .text = text,
			      .len = len,
			      .outer = outer,
			      .inner = inner,
			      .must_key = must_key,
			      .must_value = must_value,
			      .min_len = min_len,
			      .must_ok = !must_key };
	yajl_handle h = yajl_alloc(&cut_callbacks, NULL, &s);
	if (!h)
		return -ENOMEM;
	/* The tree parse of the rest checks its strings; the cut value is
	 * checked by whoever decodes it. */
	yajl_config(h, yajl_dont_validate_strings, 1);
	bool ok = yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
		  yajl_complete_parse(h) == yajl_status_ok;
	yajl_free(h);
	if (!ok || s.unusable || !s.value || !s.must_ok)
		return 0;
	size_t vs = (size_t)(s.value - text), ve = vs + s.value_len;
	size_t rest_len = len - s.value_len;
	char *rest = malloc(rest_len + 1);
	if (!rest)
		return -ENOMEM;
	memcpy(rest, text, vs);
	memcpy(rest + vs, text + ve, len - ve);
	rest[rest_len] = '\0';
	cut->rest = rest;
	cut->rest_len = rest_len;
	cut->value = text + vs;
	cut->value_len = s.value_len;
	return 1;
}
