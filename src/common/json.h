/* JSON through yajl: typed accessors that turn a wrong or missing field
 * into an invalid-params error naming the field, and generator helpers. */
#ifndef SBX_JSON_H
#define SBX_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "error.h"

/* Parse a NUL-terminated text; on failure fills err with SBX_ERR_PARSE. */
yajl_val sbx_json_parse(const char *text, sbx_error **err);
void sbx_json_freep(yajl_val *v);
#define _cleanup_json_ __attribute__((cleanup(sbx_json_freep)))

yajl_val sbx_json_get(yajl_val obj, const char *key);
/* 1 if some string in text holds U+0000; param gets the member of "params"
 * it is in. Cheap when there is none (a substring search). */
int sbx_json_find_nul(const char *text, size_t len, char *param, size_t cap);

/* A big string member taken out of a message so that the rest parses into
 * a small tree while the string's bytes stay where they lie (base64 file
 * chunks: a tree would copy and check megabytes). */
struct sbx_json_cut {
	char *rest;      /* the text with the value replaced by "" (allocated) */
	size_t rest_len;
	char *value;     /* into the original text: the string's bytes, which hold no escape */
	size_t value_len;
};
/* In text, a JSON object, look for member inner of the object that is
 * member outer of the top level, whose value is a string of at least
 * min_len bytes without a backslash; when must_key is given, the top level
 * must also have must_key equal to the string must_value. Returns 1 and
 * fills cut, 0 when there is no such member (or the text is not a well
 * formed object, or the member appears twice: the caller parses the text as
 * it is and reports what is wrong), -ENOMEM. */
int sbx_json_cut_string(char *text, size_t len, const char *outer, const char *inner, size_t min_len,
			const char *must_key, const char *must_value, struct sbx_json_cut *cut);

/* Each returns 1 when found, 0 when absent (or null) and not required,
 * -1 with an SBX_ERR_INVALID_PARAMS error otherwise. */
int sbx_json_string(yajl_val obj, const char *key, bool required, const char **out, sbx_error **err);
int sbx_json_int(yajl_val obj, const char *key, bool required, int64_t min, int64_t max, int64_t *out, sbx_error **err);
int sbx_json_number(yajl_val obj, const char *key, bool required, double min, double max, double *out, sbx_error **err);
int sbx_json_bool(yajl_val obj, const char *key, bool required, bool *out, sbx_error **err);
int sbx_json_object(yajl_val obj, const char *key, bool required, yajl_val *out, sbx_error **err);
int sbx_json_array(yajl_val obj, const char *key, bool required, yajl_val *out, sbx_error **err);

/* A list of strings as a NULL-terminated, newly allocated vector. */
int sbx_json_string_array(yajl_val obj, const char *key, bool required, char ***out, sbx_error **err);
/* A map of string values as a NULL-terminated vector "k=v" pairs split in two vectors. */
struct sbx_kv {
	char *key;
	char *value;
};
struct sbx_kvlist {
	struct sbx_kv *items;
	size_t n;
};
int sbx_json_string_map(yajl_val obj, const char *key, bool required, struct sbx_kvlist *out, sbx_error **err);
void sbx_kvlist_free(struct sbx_kvlist *l);
int sbx_kvlist_set(struct sbx_kvlist *l, const char *key, const char *value);
const char *sbx_kvlist_get(const struct sbx_kvlist *l, const char *key);
int sbx_kvlist_copy(struct sbx_kvlist *dst, const struct sbx_kvlist *src);

void sbx_strv_free(char **v);
char **sbx_strv_dup(char *const *v);
void sbx_strv_freep(char ***v);
#define _cleanup_strv_ __attribute__((cleanup(sbx_strv_freep)))
size_t sbx_strv_len(char *const *v);
char **sbx_strv_copy(char *const *v);

/* Generator helpers; all ignore yajl's status, which only fails on misuse. */
yajl_gen sbx_gen_new(void);
void sbx_gen_freep(yajl_gen *g);
#define _cleanup_gen_ __attribute__((cleanup(sbx_gen_freep)))
void sbx_gen_str(yajl_gen g, const char *s);
void sbx_gen_strn(yajl_gen g, const char *s, size_t len);
void sbx_gen_key(yajl_gen g, const char *key);
void sbx_gen_kv_str(yajl_gen g, const char *key, const char *value); /* NULL -> null */
void sbx_gen_kv_int(yajl_gen g, const char *key, int64_t value);
void sbx_gen_kv_double(yajl_gen g, const char *key, double value);
void sbx_gen_kv_bool(yajl_gen g, const char *key, bool value);
void sbx_gen_kv_null(yajl_gen g, const char *key);
void sbx_gen_kvlist(yajl_gen g, const char *key, const struct sbx_kvlist *l);
void sbx_gen_strv(yajl_gen g, const char *key, char *const *v);
/* Re-emit a parsed value (used to echo request ids). */
void sbx_gen_value(yajl_gen g, yajl_val v);

#endif
