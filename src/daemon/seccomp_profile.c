/* Seccomp profile files in the OCI/Docker JSON format, read with yajl into
 * the structure lib/seccomp_filter.c compiles:
 *   {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
 *    "syscalls": [{"names": [...], "action": "SCMP_ACT_ALLOW",
 *                  "errnoRet": 1, "args": [{"index": 0, "value": 0,
 *                  "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}
 * Architectures listed in a profile are ignored: only the native ABI is
 * ever allowed. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "seccomp_filter.h"
#include "seccomp_profile.h"

static int parse_action(yajl_val obj, const char *key, const char *errno_key, uint32_t *out, sbx_error **err)
{
	const char *a = NULL;
	int64_t e = EPERM;
	if (sbx_json_string(obj, key, true, &a, err) < 0 || sbx_json_int(obj, errno_key, false, 0, 4095, &e, err) < 0)
		return -1;
	if (!strcmp(a, "SCMP_ACT_ALLOW"))
		*out = SCMP_ACT_ALLOW;
	else if (!strcmp(a, "SCMP_ACT_ERRNO"))
		*out = SCMP_ACT_ERRNO((uint32_t)e);
	else if (!strcmp(a, "SCMP_ACT_KILL") || !strcmp(a, "SCMP_ACT_KILL_THREAD"))
		*out = SCMP_ACT_KILL;
	else if (!strcmp(a, "SCMP_ACT_KILL_PROCESS"))
		*out = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(a, "SCMP_ACT_LOG"))
		*out = SCMP_ACT_LOG;
	else if (!strcmp(a, "SCMP_ACT_TRAP"))
		*out = SCMP_ACT_TRAP;
	else
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "unknown seccomp action '%s'", a);
	return 0;
}

static int parse_op(const char *op, enum scmp_compare *out)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
		{ "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};
	for (size_t i = 0; i < SBX_ARRAY_SIZE(ops); i++) {
		if (!strcmp(op, ops[i].name)) {
			*out = ops[i].op;
			return 0;
		}
	}
	return -1;
}

static int parse_rule(yajl_val r, struct sbx_seccomp_rule *rule, sbx_error **err)
{
	if (!YAJL_IS_OBJECT(r))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "each entry of 'syscalls' must be an object");
	if (sbx_json_string_array(r, "names", false, &rule->names, err) < 0)
		return -1;
	if (!rule->names) {
		const char *one = NULL;
		if (sbx_json_string(r, "name", true, &one, err) < 0)
			return -1;
		rule->names = calloc(2, sizeof(char *));
		if (!rule->names || !(rule->names[0] = strdup(one)))
			return sbx_error_errno(err, ENOMEM, "seccomp profile");
	}
	if (parse_action(r, "action", "errnoRet", &rule->action, err) < 0)
		return -1;
	yajl_val args = NULL;
	if (sbx_json_array(r, "args", false, &args, err) < 0)
		return -1;
	for (size_t i = 0; args && i < args->u.array.len; i++) {
		if (i >= 6)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "a syscall has at most 6 arguments");
		yajl_val a = args->u.array.values[i];
		int64_t index, value = 0, two = 0;
		const char *op = NULL;
		if (sbx_json_int(a, "index", true, 0, 5, &index, err) < 0 ||
		    sbx_json_int(a, "value", false, INT64_MIN, INT64_MAX, &value, err) < 0 ||
		    sbx_json_int(a, "valueTwo", false, INT64_MIN, INT64_MAX, &two, err) < 0 ||
		    sbx_json_string(a, "op", true, &op, err) < 0)
			return -1;
		enum scmp_compare cmp;
		if (parse_op(op, &cmp) < 0)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "unknown seccomp comparison '%s'", op);
		rule->args[i] = (struct scmp_arg_cmp){ .arg = (unsigned int)index,
							.op = cmp,
							.datum_a = (uint64_t)value,
							.datum_b = (uint64_t)two };
		rule->nargs++;
	}
	return 0;
}

int sbx_seccomp_profile_load(const char *path, struct sbx_seccomp_profile *out, sbx_error **err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(AT_FDCWD, path, 4 << 20, &text, NULL, err) < 0)
		return sbx_error_prefix(err, "seccomp profile");
	_cleanup_json_ yajl_val root = sbx_json_parse(text, err);
	if (!root)
		return sbx_error_prefix(err, "seccomp profile '%s'", path);
	if (parse_action(root, "defaultAction", "defaultErrnoRet", &out->default_action, err) < 0)
		return sbx_error_prefix(err, "seccomp profile '%s'", path);
	yajl_val sys = NULL;
	if (sbx_json_array(root, "syscalls", false, &sys, err) < 0)
		return sbx_error_prefix(err, "seccomp profile '%s'", path);
	size_t n = sys ? sys->u.array.len : 0;
	out->rules = calloc(n ? n : 1, sizeof(*out->rules));
	if (!out->rules)
		return sbx_error_errno(err, ENOMEM, "seccomp profile");
	for (size_t i = 0; i < n; i++) {
		out->nrules++;
		if (parse_rule(sys->u.array.values[i], &out->rules[i], err) < 0) {
			sbx_seccomp_profile_free(out);
			return sbx_error_prefix(err, "seccomp profile '%s', syscalls[%zu]", path, i);
		}
	}
	return 0;
}
