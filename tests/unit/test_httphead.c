/* Unit tests of src/lib/httphead.c: request heads as the preview gateway
 * reads them, preview host names, the token in a query or a cookie. */
#include "config.h"
#include <check.h>
#include <string.h>

#include "httphead.h"
#include "unit.h"

static struct sbx_http_str S(const char *s)
{
	return (struct sbx_http_str){ s, strlen(s) };
}

static bool str_is(struct sbx_http_str s, const char *want)
{
	return s.n == strlen(want) && !memcmp(s.p, want, s.n);
}

START_TEST(test_complete_head)
{
	const char *req = "GET /a?b=1 HTTP/1.1\r\nHost: 8080-0123456789ab.localhost:8480\r\nX-Sandbox-Token:  t0k \r\n"
			  "\r\nBODY";
	struct sbx_http_head h;
	int r = sbx_http_parse_head(req, strlen(req), &h);
	ck_assert_int_eq(r, (int)(strlen(req) - 4));
	ck_assert(str_is(h.method, "GET"));
	ck_assert(str_is(h.target, "/a?b=1"));
	ck_assert_int_eq(h.minor, 1);
	ck_assert_int_eq((int)h.n_headers, 2);
	const struct sbx_http_header *t = sbx_http_header_find(&h, "x-sandbox-token");
	ck_assert_ptr_nonnull(t);
	ck_assert(str_is(t->value, "t0k"));
	ck_assert_ptr_null(sbx_http_header_find(&h, "Cookie"));
}
END_TEST

START_TEST(test_incomplete_and_bare_lf)
{
	struct sbx_http_head h;
	ck_assert_int_eq(sbx_http_parse_head("GET / HTTP/1.1\r\nHost: x", 23, &h), 0);
	ck_assert_int_eq(sbx_http_parse_head("GE", 2, &h), 0);
	const char *lf = "GET / HTTP/1.0\nHost: a\n\n";
	ck_assert_int_eq(sbx_http_parse_head(lf, strlen(lf), &h), (int)strlen(lf));
	ck_assert_int_eq(h.minor, 0);
}
END_TEST

START_TEST(test_refused_heads)
{
	static const char *const bad[] = {
		"GET  / HTTP/1.1\r\n\r\n",	    /* two spaces */
		"GET / HTTP/2.0\r\n\r\n",	    /* not 1.x */
		"G(T / HTTP/1.1\r\n\r\n",	    /* not a token */
		"GET / HTTP/1.1\r\n folded\r\n\r\n", /* obsolete folding */
		"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", /* control character */
		"GET /\x7f HTTP/1.1\r\n\r\n",
		"\r\n\r\n",
	};
	struct sbx_http_head h;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sbx_http_parse_head(bad[i], strlen(bad[i]), &h) < 0, "accepted %s", bad[i]);
	char nul[] = "GET / HTTP/1.1\r\nA: \0b\r\n\r\n";
	ck_assert_int_lt(sbx_http_parse_head(nul, sizeof(nul) - 1, &h), 0);
}
END_TEST

START_TEST(test_header_limit)
{
	char buf[8192] = "GET / HTTP/1.1\r\n";
	for (int i = 0; i < SBX_HTTP_MAX_HEADERS + 1; i++)
		strcat(buf, "A: b\r\n");
	strcat(buf, "\r\n");
	struct sbx_http_head h;
	ck_assert_int_lt(sbx_http_parse_head(buf, strlen(buf), &h), 0);
}
END_TEST

START_TEST(test_preview_host)
{
	uint16_t port;
	char id[13];
	ck_assert_int_eq(sbx_http_preview_host(S("8080-0123456789ab.localhost"), "localhost", &port, id), 0);
	ck_assert_int_eq(port, 8080);
	ck_assert_str_eq(id, "0123456789ab");
	ck_assert_int_eq(sbx_http_preview_host(S("1-0123456789AB.LocalHost:8480"), "localhost", &port, id), 0);
	ck_assert_int_eq(port, 1);
	ck_assert_str_eq(id, "0123456789ab");
	static const char *const bad[] = {
		"0-0123456789ab.localhost",  "65536-0123456789ab.localhost", "08-0123456789ab.localhost",
		"80-0123456789a.localhost",  "80-0123456789abc.localhost",   "80-0123456789ag.localhost",
		"80-0123456789ab.localhostx", "80-0123456789ab.example.com",  "80-0123456789ab.localhost:",
		"-0123456789ab.localhost",   "80_0123456789ab.localhost",    "localhost",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sbx_http_preview_host(S(bad[i]), "localhost", &port, id) < 0, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_query_token)
{
	struct sbx_http_str v;
	ck_assert(sbx_http_query_get(S("/x?a=1&token=abc&b=2"), "token", &v));
	ck_assert(str_is(v, "abc"));
	ck_assert(!sbx_http_query_get(S("/x?mytoken=abc"), "token", &v));
	ck_assert(!sbx_http_query_get(S("/x#token=abc"), "token", &v));
	char out[64];
	ck_assert_int_eq((int)sbx_http_query_remove(S("/x?a=1&token=abc&b=2"), "token", out, sizeof(out)), 10);
	ck_assert_str_eq(out, "/x?a=1&b=2");
	sbx_http_query_remove(S("/x?token=abc"), "token", out, sizeof(out));
	ck_assert_str_eq(out, "/x");
	sbx_http_query_remove(S("/?token=abc#frag"), "token", out, sizeof(out));
	ck_assert_str_eq(out, "/#frag");
	/* a "?" inside a parameter is part of it, not a second query */
	ck_assert_int_eq((int)sbx_http_query_remove(S("/p?tokH?token=2&token=3"), "token", out, sizeof(out)), 15);
	ck_assert_str_eq(out, "/p?tokH?token=2");
	ck_assert(!sbx_http_query_get(S(out), "token", &v));
	/* nor is a "?" in the fragment */
	ck_assert(!sbx_http_query_get(S("/p#x?token=1"), "token", &v));
	sbx_http_query_remove(S("/p#x?token=1"), "token", out, sizeof(out));
	ck_assert_str_eq(out, "/p#x?token=1");
	char tiny[4];
	ck_assert_int_eq((int)sbx_http_query_remove(S("/abcdef"), "token", tiny, sizeof(tiny)), 7);
	ck_assert_str_eq(tiny, "/ab");
}
END_TEST

START_TEST(test_cookie)
{
	struct sbx_http_str v;
	ck_assert(sbx_http_cookie_get(S("a=1; sbx_preview_token=xyz ; b=2"), "sbx_preview_token", &v));
	ck_assert(str_is(v, "xyz"));
	ck_assert(!sbx_http_cookie_get(S("xsbx_preview_token=xyz"), "sbx_preview_token", &v));
}
END_TEST

START_TEST(test_host_local)
{
	static const char *const good[] = {
		"127.0.0.1", "127.0.0.1:30001", "10.1.2.3:80", "[::1]", "[::1]:30001", "localhost", "LocalHost:8480",
		"localhost.", "8080-0123456789ab.localhost:8480", "preview.example.com", "a.b.Preview.Example.com:80",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(sbx_http_host_local(S(good[i]), "preview.example.com"), "refused %s", good[i]);
	static const char *const bad[] = {
		"", "evil.com", "evil.com:30001", "localhost.evil.com", "xlocalhost", "notpreview.example.com",
		"example.com", "127.0.0.1:", "[::1", "[::1]x", "[::1]:", "[zz::1]", "1.2.3", "127.0.0.1.evil.com",
		"localhost:8a", ":80", "a:b:c",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!sbx_http_host_local(S(bad[i]), "preview.example.com"), "accepted %s", bad[i]);
	/* the default domain adds nothing to localhost */
	ck_assert(!sbx_http_host_local(S("preview.example.com"), "localhost"));
	ck_assert(!sbx_http_host_local(S("preview.example.com"), NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("httphead");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_complete_head);
	tcase_add_test(tc, test_incomplete_and_bare_lf);
	tcase_add_test(tc, test_refused_heads);
	tcase_add_test(tc, test_header_limit);
	tcase_add_test(tc, test_preview_host);
	tcase_add_test(tc, test_query_token);
	tcase_add_test(tc, test_cookie);
	tcase_add_test(tc, test_host_local);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
