/* Human output: aligned tables, sizes, ages; and JSON pretty printing. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

void ctl_print_json(yajl_val v)
{
	_cleanup_gen_ yajl_gen g = sbx_gen_new();
	if (!g)
		return;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	sbx_gen_value(g, v);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	fwrite(buf, 1, len, stdout);
	if (len && buf[len - 1] != '\n')
		fputc('\n', stdout);
}

struct ctl_table {
	size_t ncols;
	size_t nrows;
	char **cells; /* nrows * ncols, row 0 = headers */
};

struct ctl_table *ctl_table_new(const char *const *headers, size_t ncols)
{
	struct ctl_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ncols = ncols;
	ctl_table_add(t, headers);
	return t;
}

void ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (!t)
		return;
	char **n = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
	if (!n)
		return;
	t->cells = n;
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "");
	t->nrows++;
}

void ctl_table_print(struct ctl_table *t)
{
	if (!t)
		return;
	size_t w[16] = { 0 };
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t l = s ? strlen(s) : 0;
			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (c + 1 < t->ncols)
				printf("%-*s   ", (int)w[c], s ? s : "");
			else
				printf("%s", s ? s : "");
		}
		putchar('\n');
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

const char *ctl_str(yajl_val obj, const char *key)
{
	yajl_val v = sbx_json_get(obj, key);
	return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

long long ctl_int(yajl_val obj, const char *key, long long dflt)
{
	yajl_val v = sbx_json_get(obj, key);
	return v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : dflt;
}

void ctl_human_size(long long bytes, char *out, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < SBX_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void ctl_ago(const char *ts, char *out, size_t len)
{
	struct tm tm = { 0 };
	if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, len, "-");
		return;
	}
	time_t then = timegm(&tm);
	long long d = (long long)(time(NULL) - then);
	if (d < 0)
		d = 0;
	if (d < 60)
		snprintf(out, len, "%lld seconds ago", d);
	else if (d < 3600)
		snprintf(out, len, "%lld minutes ago", d / 60);
	else if (d < 86400)
		snprintf(out, len, "%lld hours ago", d / 3600);
	else
		snprintf(out, len, "%lld days ago", d / 86400);
}

int ctl_gen_kv_arg(yajl_gen g, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return -1;
	sbx_gen_strn(g, arg, (size_t)(eq - arg));
	sbx_gen_str(g, eq + 1);
	return 0;
}
