/* sandboxd.conf's syntax, apart from what the keys mean. */
#include "config.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "conffile.h"
#include "util.h"

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int sbx_conffile_read(const char *path, bool must_exist,
		      int (*fn)(const char *key, const char *value, void *data, sbx_error **err), void *data,
		      sbx_error **err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return sbx_error_errno(err, errno, "config file '%s'", path);
	}
	struct stat st;
	if (fstat(fileno(f), &st) < 0)
		return sbx_error_errno(err, errno, "config file '%s'", path);
	if (S_ISDIR(st.st_mode))
		return sbx_error_errno(err, EISDIR, "config file '%s'", path);
	if (!S_ISREG(st.st_mode))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "config file '%s' is not a regular file", path);
	char line[4096];
	int lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s:%d: line longer than %zu bytes", path, lineno,
					     sizeof(line) - 2);
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s:%d: expected 'key = value'", path, lineno);
		*eq = '\0';
		char *key = trim(s);
		char *value = trim(eq + 1);
		size_t vl = strlen(value);
		if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
			value[vl - 1] = '\0';
			value++;
		}
		if (fn(key, value, data, err) < 0)
			return sbx_error_prefix(err, "%s:%d", path, lineno);
	}
	if (ferror(f))
		return sbx_error_errno(err, errno ? errno : EIO, "read config file '%s'", path);
	return 0;
}
