/* Error objects: a code a client can branch on and a message a person can
 * act on. Never aborts; allocation failure degrades to a static message. */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static sbx_error oom_error = { SBX_ERR_INTERNAL, ENOMEM, NULL, (char *)"out of memory" };

static sbx_error *error_new(int code, int errnum, char *msg)
{
	sbx_error *e = calloc(1, sizeof(*e));
	if (!e) {
		free(msg);
		return &oom_error;
	}
	e->code = code;
	e->errnum = errnum;
	e->msg = msg;
	return e;
}

static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

int sbx_error_code_for_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ESRCH:
		return SBX_ERR_NOT_FOUND;
	case EEXIST:
	case ENOTEMPTY:
		return SBX_ERR_EXISTS;
	case EACCES:
	case EPERM:
	case EXDEV:
	case ELOOP:
	case EROFS:
		return SBX_ERR_DENIED;
	case ENOSPC:
	case EDQUOT:
	case EAGAIN: /* fork at the pids limit */
	case EMFILE:
	case ENFILE:
	case E2BIG:
		return SBX_ERR_LIMIT;
	case ETIMEDOUT:
		return SBX_ERR_TIMEOUT;
	case ENOSYS:
	case EOPNOTSUPP:
	case ENODEV:
		return SBX_ERR_UNSUPPORTED;
	default:
		return SBX_ERR_INTERNAL;
	}
}

int sbx_error_set(sbx_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return -1;
	if (*err)
		sbx_error_free(*err);
	va_start(ap, fmt);
	char *msg = vformat(fmt, ap);
	va_end(ap);
	*err = error_new(code, 0, msg);
	return -1;
}

int sbx_error_errno(sbx_error **err, int errnum, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return -1;
	if (*err)
		sbx_error_free(*err);
	va_start(ap, fmt);
	char *head = vformat(fmt, ap);
	va_end(ap);
	char *msg = NULL;
	if (head && asprintf(&msg, "%s: %s", head, strerror(errnum)) < 0)
		msg = NULL;
	free(head);
	*err = error_new(sbx_error_code_for_errno(errnum), errnum, msg);
	return -1;
}

int sbx_error_param(sbx_error **err, const char *param, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return -1;
	if (*err)
		sbx_error_free(*err);
	va_start(ap, fmt);
	char *msg = vformat(fmt, ap);
	va_end(ap);
	*err = error_new(SBX_ERR_INVALID_PARAMS, 0, msg);
	if (*err != &oom_error && param)
		(*err)->param = strdup(param);
	return -1;
}

int sbx_error_prefix(sbx_error **err, const char *fmt, ...)
{
	va_list ap;
	if (!err || !*err || *err == &oom_error)
		return -1;
	va_start(ap, fmt);
	char *head = vformat(fmt, ap);
	va_end(ap);
	char *msg = NULL;
	if (head && asprintf(&msg, "%s: %s", head, (*err)->msg ? (*err)->msg : "error") >= 0) {
		free((*err)->msg);
		(*err)->msg = msg;
	}
	free(head);
	return -1;
}

void sbx_error_free(sbx_error *err)
{
	if (!err || err == &oom_error)
		return;
	free(err->msg);
	free(err->param);
	free(err);
}

void sbx_error_freep(sbx_error **err)
{
	if (err && *err) {
		sbx_error_free(*err);
		*err = NULL;
	}
}
