/* Unit tests of src/common/error.c: the error object, the prefix chain and
 * the errno to protocol code mapping. */
#include "config.h"
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "unit.h"

START_TEST(test_set_fills_every_field)
{
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_error_set(&e, SBX_ERR_BAD_STATE, "sandbox %s is %s (%d)", "abc", "running", 42), -1);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->code, SBX_ERR_BAD_STATE);
	ck_assert_int_eq(e->errnum, 0);
	ck_assert_ptr_null(e->param);
	ck_assert_str_eq(e->msg, "sandbox abc is running (42)");
	sbx_error_free(e);
}
END_TEST

START_TEST(test_null_err_is_allowed)
{
	ck_assert_int_eq(sbx_error_set(NULL, SBX_ERR_LIMIT, "x %d", 1), -1);
	ck_assert_int_eq(sbx_error_errno(NULL, ENOENT, "open '%s'", "a"), -1);
	ck_assert_int_eq(sbx_error_param(NULL, "name", "bad %s", "name"), -1);
	ck_assert_int_eq(sbx_error_prefix(NULL, "outer"), -1);
	sbx_error_free(NULL);
	sbx_error_freep(NULL);
	sbx_error *e = NULL;
	sbx_error_freep(&e);
	ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_set_replaces_previous_error)
{
	sbx_error *e = NULL;
	sbx_error_param(&e, "first", "first message");
	ck_assert_str_eq(e->param, "first");
	ck_assert_int_eq(sbx_error_set(&e, SBX_ERR_TIMEOUT, "second"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_TIMEOUT);
	ck_assert_int_eq(e->errnum, 0);
	ck_assert_ptr_null(e->param);
	ck_assert_str_eq(e->msg, "second");
	ck_assert_int_eq(sbx_error_errno(&e, EEXIST, "third"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_EXISTS);
	ck_assert_int_eq(e->errnum, EEXIST);
	ck_assert_str_eq(e->msg, "third: File exists");
	ck_assert_int_eq(sbx_error_param(&e, "fourth", "fourth %s", "message"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_int_eq(e->errnum, 0);
	ck_assert_str_eq(e->param, "fourth");
	ck_assert_str_eq(e->msg, "fourth message");
	sbx_error_freep(&e);
	ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_errno_message_code_and_errnum)
{
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_error_errno(&e, ENOENT, "open '%s'", "/etc/x"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_NOT_FOUND);
	ck_assert_int_eq(e->errnum, ENOENT);
	ck_assert_ptr_null(e->param);
	ck_assert_str_eq(e->msg, "open '/etc/x': No such file or directory");
	sbx_error_freep(&e);

	ck_assert_int_eq(sbx_error_errno(&e, EACCES, "write"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_DENIED);
	ck_assert_int_eq(e->errnum, EACCES);
	ck_assert_str_eq(e->msg, "write: Permission denied");
	sbx_error_freep(&e);

	ck_assert_int_eq(sbx_error_errno(&e, EINVAL, "ioctl %d", 7), -1);
	ck_assert_int_eq(e->code, SBX_ERR_INTERNAL);
	ck_assert_int_eq(e->errnum, EINVAL);
	ck_assert_str_eq(e->msg, "ioctl 7: Invalid argument");
	sbx_error_freep(&e);
}
END_TEST

START_TEST(test_errno_zero)
{
	sbx_error *e = NULL;
	sbx_error_errno(&e, 0, "nothing");
	ck_assert_int_eq(e->code, SBX_ERR_INTERNAL);
	ck_assert_int_eq(e->errnum, 0);
	ck_assert_str_eq(e->msg, "nothing: Success");
	sbx_error_freep(&e);
}
END_TEST

static const struct {
	int errnum;
	int code;
} errno_map[] = {
	{ ENOENT, SBX_ERR_NOT_FOUND },	   { ESRCH, SBX_ERR_NOT_FOUND },       { EEXIST, SBX_ERR_EXISTS },
	{ ENOTEMPTY, SBX_ERR_EXISTS },	   { EACCES, SBX_ERR_DENIED },	       { EPERM, SBX_ERR_DENIED },
	{ EXDEV, SBX_ERR_DENIED },	   { ELOOP, SBX_ERR_DENIED },	       { EROFS, SBX_ERR_DENIED },
	{ ENOSPC, SBX_ERR_LIMIT },	   { EDQUOT, SBX_ERR_LIMIT },	       { EMFILE, SBX_ERR_LIMIT },
	{ ENFILE, SBX_ERR_LIMIT },	   { E2BIG, SBX_ERR_LIMIT },	       { ETIMEDOUT, SBX_ERR_TIMEOUT },
	{ ENOSYS, SBX_ERR_UNSUPPORTED },   { EOPNOTSUPP, SBX_ERR_UNSUPPORTED }, { ENODEV, SBX_ERR_UNSUPPORTED },
	{ 0, SBX_ERR_INTERNAL },	   { EINVAL, SBX_ERR_INTERNAL },       { EIO, SBX_ERR_INTERNAL },
	{ ENOMEM, SBX_ERR_INTERNAL },	   { EBADF, SBX_ERR_INTERNAL },	       { EAGAIN, SBX_ERR_LIMIT },
	{ ENOTDIR, SBX_ERR_INTERNAL },	   { EISDIR, SBX_ERR_INTERNAL },       { -1, SBX_ERR_INTERNAL },
	{ 100000, SBX_ERR_INTERNAL },
};

START_TEST(test_code_for_errno_table)
{
	int errnum = errno_map[_i].errnum;
	int want = errno_map[_i].code;
	ck_assert_msg(sbx_error_code_for_errno(errnum) == want, "errno %d: got %d, want %d", errnum,
		      sbx_error_code_for_errno(errnum), want);
	/* sbx_error_errno must use the same mapping. */
	sbx_error *e = NULL;
	sbx_error_errno(&e, errnum, "x");
	ck_assert_int_eq(e->code, want);
	ck_assert_int_eq(e->errnum, errnum);
	sbx_error_freep(&e);
}
END_TEST

START_TEST(test_protocol_code_values)
{
	/* The numbers are part of the wire protocol. */
	ck_assert_int_eq(SBX_ERR_NOT_FOUND, 1);
	ck_assert_int_eq(SBX_ERR_EXISTS, 2);
	ck_assert_int_eq(SBX_ERR_BAD_STATE, 3);
	ck_assert_int_eq(SBX_ERR_LIMIT, 4);
	ck_assert_int_eq(SBX_ERR_DENIED, 5);
	ck_assert_int_eq(SBX_ERR_TIMEOUT, 6);
	ck_assert_int_eq(SBX_ERR_UNSUPPORTED, 7);
	ck_assert_int_eq(SBX_ERR_PARSE, -32700);
	ck_assert_int_eq(SBX_ERR_INVALID_REQUEST, -32600);
	ck_assert_int_eq(SBX_ERR_NO_METHOD, -32601);
	ck_assert_int_eq(SBX_ERR_INVALID_PARAMS, -32602);
	ck_assert_int_eq(SBX_ERR_INTERNAL, -32603);
}
END_TEST

START_TEST(test_param_sets_code_and_param)
{
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_error_param(&e, "memory_mb", "parameter '%s' must be positive", "memory_mb"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_int_eq(e->errnum, 0);
	ck_assert_str_eq(e->param, "memory_mb");
	ck_assert_str_eq(e->msg, "parameter 'memory_mb' must be positive");
	sbx_error_freep(&e);

	ck_assert_int_eq(sbx_error_param(&e, NULL, "no parameter named"), -1);
	ck_assert_int_eq(e->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_ptr_null(e->param);
	ck_assert_str_eq(e->msg, "no parameter named");
	sbx_error_freep(&e);
}
END_TEST

START_TEST(test_param_is_copied)
{
	char name[16];
	strcpy(name, "cpus");
	sbx_error *e = NULL;
	sbx_error_param(&e, name, "bad");
	ck_assert_ptr_ne(e->param, name);
	strcpy(name, "changed");
	ck_assert_str_eq(e->param, "cpus");
	sbx_error_freep(&e);
}
END_TEST

START_TEST(test_prefix_chain)
{
	sbx_error *e = NULL;
	sbx_error_errno(&e, ENOSPC, "write '%s'", "state.json");
	ck_assert_int_eq(sbx_error_prefix(&e, "sandbox %s", "abc123"), -1);
	ck_assert_int_eq(sbx_error_prefix(&e, "step %d", 2), -1);
	ck_assert_str_eq(e->msg, "step 2: sandbox abc123: write 'state.json': No space left on device");
	/* Prefixing changes nothing but the message. */
	ck_assert_int_eq(e->code, SBX_ERR_LIMIT);
	ck_assert_int_eq(e->errnum, ENOSPC);
	ck_assert_ptr_null(e->param);
	sbx_error_freep(&e);

	sbx_error_param(&e, "env", "bad entry");
	sbx_error_prefix(&e, "exec");
	ck_assert_str_eq(e->msg, "exec: bad entry");
	ck_assert_str_eq(e->param, "env");
	ck_assert_int_eq(e->code, SBX_ERR_INVALID_PARAMS);
	sbx_error_freep(&e);
}
END_TEST

START_TEST(test_prefix_without_error)
{
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_error_prefix(&e, "outer %s", "x"), -1);
	ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_long_and_percent_messages)
{
	char *big = malloc(20001);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 20000);
	big[20000] = '\0';
	sbx_error *e = NULL;
	sbx_error_set(&e, SBX_ERR_INTERNAL, "%s", big);
	ck_assert_uint_eq(strlen(e->msg), 20000);
	ck_assert_str_eq(e->msg, big);
	sbx_error_prefix(&e, "%d%%", 100);
	ck_assert_uint_eq(strlen(e->msg), 20006);
	ck_assert_int_eq(strncmp(e->msg, "100%: xxx", 9), 0);
	free(big);
	sbx_error_freep(&e);

	/* A message that looks like a format string is data, not format. */
	sbx_error_set(&e, SBX_ERR_INTERNAL, "%s", "%s %n %d");
	ck_assert_str_eq(e->msg, "%s %n %d");
	sbx_error_freep(&e);
}
END_TEST

START_TEST(test_cleanup_attribute)
{
	/* Leaving the scopes frees the error (the sanitizer build reports a
	 * leak otherwise) and copes with an error never set. */
	{
		_cleanup_error_ sbx_error *e = NULL;
		sbx_error_set(&e, SBX_ERR_LIMIT, "scoped");
		ck_assert_str_eq(e->msg, "scoped");
	}
	{
		_cleanup_error_ sbx_error *none = NULL;
		(void)none;
	}
}
END_TEST

static Suite *error_suite(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_set_fills_every_field);
	tcase_add_test(tc, test_null_err_is_allowed);
	tcase_add_test(tc, test_set_replaces_previous_error);
	tcase_add_test(tc, test_errno_message_code_and_errnum);
	tcase_add_test(tc, test_errno_zero);
	tcase_add_loop_test(tc, test_code_for_errno_table, 0, (int)(sizeof(errno_map) / sizeof(errno_map[0])));
	tcase_add_test(tc, test_protocol_code_values);
	tcase_add_test(tc, test_param_sets_code_and_param);
	tcase_add_test(tc, test_param_is_copied);
	tcase_add_test(tc, test_prefix_chain);
	tcase_add_test(tc, test_prefix_without_error);
	tcase_add_test(tc, test_long_and_percent_messages);
	tcase_add_test(tc, test_cleanup_attribute);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(error_suite());
}
