/* The one error contract of sandboxd: a failing function returns a negative
 * int and fills an sbx_error the caller owns. Each layer prefixes what it
 * knows; the daemon turns the chain into a JSON-RPC error in one place. */
#ifndef SBX_ERROR_H
#define SBX_ERROR_H

#include <stdarg.h>

/* Protocol error codes (see sandboxd-protocol(7)). */
enum sbx_error_code {
	SBX_ERR_NOT_FOUND = 1,
	SBX_ERR_EXISTS = 2,
	SBX_ERR_BAD_STATE = 3,
	SBX_ERR_LIMIT = 4,
	SBX_ERR_DENIED = 5,
	SBX_ERR_TIMEOUT = 6,
	SBX_ERR_UNSUPPORTED = 7,
	SBX_ERR_PARSE = -32700,
	SBX_ERR_INVALID_REQUEST = -32600,
	SBX_ERR_NO_METHOD = -32601,
	SBX_ERR_INVALID_PARAMS = -32602,
	SBX_ERR_INTERNAL = -32603,
};

typedef struct sbx_error {
	int code;    /* enum sbx_error_code */
	int errnum;  /* errno of the failed system call, 0 if none */
	char *param; /* offending parameter for SBX_ERR_INVALID_PARAMS */
	char *msg;
} sbx_error;

/* All return -1 so that callers can write `return sbx_error_set(...)`.
 * A NULL err is allowed and means the caller does not want details. */
int sbx_error_set(sbx_error **err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sbx_error_errno(sbx_error **err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sbx_error_param(sbx_error **err, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sbx_error_prefix(sbx_error **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sbx_error_free(sbx_error *err);
void sbx_error_freep(sbx_error **err);
#define _cleanup_error_ __attribute__((cleanup(sbx_error_freep)))

/* Map an errno to the protocol code a client can act on. */
int sbx_error_code_for_errno(int errnum);

#endif
