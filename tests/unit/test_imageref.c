/* Registry-style image references. */
#include "config.h"
#include <stdlib.h>
#include <string.h>

#include "imageref.h"
#include "unit.h"
#include "util.h"

static void parses(const char *s, const char *domain, const char *path, const char *tag, const char *digest,
		   const char *normal)
{
	struct sbx_image_ref r;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_image_ref_parse(s, "name", &r, &err) == 0, "%s: %s", s, err ? err->msg : "");
	if (domain)
		ck_assert_str_eq(r.domain, domain);
	else
		ck_assert_ptr_null(r.domain);
	ck_assert_str_eq(r.path, path);
	if (tag)
		ck_assert_str_eq(r.tag, tag);
	else
		ck_assert_ptr_null(r.tag);
	if (digest)
		ck_assert_str_eq(r.digest, digest);
	else
		ck_assert_ptr_null(r.digest);
	_cleanup_free_ char *n = sbx_image_ref_normalize(&r);
	ck_assert_str_eq(n, normal);
	_cleanup_free_ char *f = sbx_image_ref_format(&r);
	ck_assert_str_eq(f, s);
	sbx_image_ref_free(&r);
}

static void refused(const char *s, const char *needle)
{
	struct sbx_image_ref r;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_image_ref_parse(s, "ref", &r, &err) < 0, "'%s' accepted", s);
	ck_assert_int_eq(err->code, SBX_ERR_INVALID_PARAMS);
	ck_assert_str_eq(err->param, "ref");
	ck_assert_msg(strstr(err->msg, needle), "'%s' not in '%s'", needle, err->msg);
	sbx_error_free(err);
	ck_assert(!sbx_image_ref_valid(s));
}

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

START_TEST(valid_references)
{
	parses("kortix/suna:0.1.3.30", NULL, "kortix/suna", "0.1.3.30", NULL, "docker.io/kortix/suna:0.1.3.30");
	parses("registry.example.com:5000/team/img:tag", "registry.example.com:5000", "team/img", "tag", NULL,
	       "registry.example.com:5000/team/img:tag");
	parses("busybox", NULL, "busybox", NULL, NULL, "docker.io/library/busybox:latest");
	parses("minimal", NULL, "minimal", NULL, NULL, "docker.io/library/minimal:latest");
	parses("python:3.12-slim", NULL, "python", "3.12-slim", NULL, "docker.io/library/python:3.12-slim");
	parses("localhost/x", "localhost", "x", NULL, NULL, "localhost/x:latest");
	parses("localhost:5000/a/b/c:v1", "localhost:5000", "a/b/c", "v1", NULL, "localhost:5000/a/b/c:v1");
	parses("ghcr.io/org/my-app__x.y:Latest_1", "ghcr.io", "org/my-app__x.y", "Latest_1", NULL,
	       "ghcr.io/org/my-app__x.y:Latest_1");
	parses("alpine@" D64, NULL, "alpine", NULL, D64, "docker.io/library/alpine@" D64);
	parses("127.0.0.1:5000/img:t@" D64, "127.0.0.1:5000", "img", "t", D64, "127.0.0.1:5000/img:t@" D64);
	parses("[::1]:5000/img", "[::1]:5000", "img", NULL, NULL, "[::1]:5000/img:latest");
	parses("docker.io/library/debian:bookworm", "docker.io", "library/debian", "bookworm", NULL,
	       "docker.io/library/debian:bookworm");
	parses("a--b/c", NULL, "a--b/c", NULL, NULL, "docker.io/a--b/c:latest");
}
END_TEST

START_TEST(invalid_references)
{
	refused("", "empty");
	refused("kortix/Suna", "name component");
	refused("kortix//suna", "name component");
	refused("kortix/suna:", "tag");
	refused("kortix/suna:.x", "tag");
	refused("kortix/suna:-x", "tag");
	refused("a/b:t:u", "name component");
	refused("-x", "name component");
	refused("x_", "name component");
	refused("a___b", "name component");
	refused("a/.b", "name component");
	refused("a@sha256:abc", "digest");
	refused("a@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "digest");
	refused("exa_mple.com/x", "registry");
	refused("example.com:99999/x", "registry");
	refused("-bad.com/x", "registry");
	refused("/x", "name component");
	refused("x/", "name component");
	refused("../etc", "registry");
	char tag[200];
	memset(tag, 'a', sizeof(tag));
	tag[sizeof(tag) - 1] = '\0';
	char ref[300];
	snprintf(ref, sizeof(ref), "x:%s", tag);
	refused(ref, "tag");
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	longname[sizeof(longname) - 1] = '\0';
	refused(longname, "longer than 255");
	/* 240 bytes alone, but docker.io/library/ makes it too long. */
	char hubname[241];
	memset(hubname, 'b', sizeof(hubname));
	hubname[sizeof(hubname) - 1] = '\0';
	refused(hubname, "full name is longer than 255");
	char huge[700];
	memset(huge, 'a', sizeof(huge));
	huge[sizeof(huge) - 1] = '\0';
	refused(huge, "bytes long");
	/* 504 bytes, but docker.io/library/ takes it past 512: its normalized
	 * form would not parse again. */
	char longdigest[505] = "x@t:";
	memset(longdigest + 4, 'a', 500);
	longdigest[504] = '\0';
	refused(longdigest, "with its registry it is longer than 512");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("imageref");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, valid_references);
	tcase_add_test(tc, invalid_references);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
