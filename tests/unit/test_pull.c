/* Pulls from a real registry: Debian's docker-registry on loopback, one
 * open and one behind basic auth (an htpasswd file with a bcrypt entry),
 * an image pushed to both with skopeo. Skipped (77) without root,
 * docker-registry, skopeo, umoci or htpasswd. */
#include "config.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layers.h"
#include "oci.h"
#include "pull.h"
#include "unit.h"
#include "util.h"

static char fix[PATH_MAX];
static char dir[PATH_MAX];
static struct sbx_layer_store *store;
static int open_port, auth_port, dead_port;
static pid_t registries[2];
static char pushed_digest[SBX_DIGEST_LEN];

static const char *fp(const char *name)
{
	static char p[4][PATH_MAX + 64];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", fix, name);
	return p[i];
}

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(s, (struct sockaddr *)&a, &len) < 0)
		return -1;
	close(s);
	return ntohs(a.sin_port);
}

static bool port_open(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

static pid_t start_registry(const char *name, int port, bool auth)
{
	char cfg[PATH_MAX + 64];
	snprintf(cfg, sizeof(cfg), "%s/%s.yml", fix, name);
	FILE *f = fopen(cfg, "w");
	if (!f)
		return -1;
	fprintf(f, "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/%s-data\n"
		   "http:\n  addr: 127.0.0.1:%d\n",
		fix, name, port);
	if (auth)
		fprintf(f, "auth:\n  htpasswd:\n    realm: test\n    path: %s/htpasswd\n", fix);
	fclose(f);
	pid_t pid = fork();
	if (pid == 0) {
		char log[PATH_MAX + 64];
		snprintf(log, sizeof(log), "%s/%s.log", fix, name);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && pid > 0; i++) {
		if (port_open(port))
			return pid;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (pid > 0)
		kill(pid, SIGKILL);
	return -1;
}

static void stop_registries(void)
{
	for (size_t i = 0; i < SBX_ARRAY_SIZE(registries); i++) {
		if (registries[i] > 0) {
			kill(registries[i], SIGTERM);
			waitpid(registries[i], NULL, 0);
			registries[i] = 0;
		}
	}
}

static void write_authfile(const char *path, int port, const char *user, const char *pass)
{
	char cred[128];
	snprintf(cred, sizeof(cred), "%s:%s", user, pass);
	_cleanup_free_ char *b64 = sbx_base64_encode(cred, strlen(cred), NULL);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"%s\"}}}\n", port, b64);
	fclose(f);
}

static void setup(void)
{
	unit_mkdtemp(dir, "pull");
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/store", dir);
	sbx_error *err = NULL;
	ck_assert_int_eq(sbx_layer_store_open(p, &store, &err), 0);
}

static void teardown(void)
{
	sbx_layer_store_close(store);
	unit_rm_rf(dir);
}

static int count_layers(void)
{
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/store/layers/sha256", dir);
	DIR *d = opendir(p);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

struct seen {
	int calls;
	int64_t max_done, total;
	bool downloading;
};

static void on_progress(void *ctx, const struct sbx_pull_progress *p)
{
	struct seen *s = ctx;
	s->calls++;
	if (p->bytes_done > s->max_done)
		s->max_done = p->bytes_done;
	s->total = p->bytes_total;
	s->downloading = s->downloading || !strcmp(p->phase, "downloading");
}

static void pull_fails(const char *ref, const struct sbx_pull_opts *opts, int code, const char *needle)
{
	int before = count_layers();
	struct sbx_oci_image *img = NULL;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_image_pull(store, "bad", ref, opts, &img, &err) < 0, "%s pulled", ref);
	ck_assert_msg(strstr(err->msg, needle), "'%s' not in '%s'", needle, err->msg);
	if (getenv("SBX_UNIT_SHOW_ERRORS"))
		fprintf(stderr, "%s\n", err->msg);
	ck_assert_msg(err->code == code, "code %d, not %d: %s", err->code, code, err->msg);
	sbx_error_free(err);
	ck_assert_int_eq(count_layers(), before);
}

START_TEST(pull_plain_http)
{
	char ref[128];
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/team/img:v2", open_port);
	struct seen seen = { 0 };
	struct sbx_pull_opts opts = { .insecure = true, .progress = on_progress, .progress_ctx = &seen };
	_cleanup_oci_image_ struct sbx_oci_image *img = NULL;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_image_pull(store, "p1", ref, &opts, &img, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(img->manifest_digest, pushed_digest);
	ck_assert_int_eq(img->n_layers, 2);
	ck_assert_str_eq(img->config.cmd[1], "echo hi");
	ck_assert_str_eq(img->names[0], ref);
	ck_assert_int_eq(count_layers(), 2);
	ck_assert(seen.downloading);
	ck_assert_int_gt(seen.total, 0);
	ck_assert_int_eq(seen.max_done, seen.total);
	/* Nothing left behind in tmp/. */
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/store/tmp", dir);
	DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(pull_errors_are_clear)
{
	char ref[128];
	struct sbx_pull_opts insecure = { .insecure = true };
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/team/img:nope", open_port);
	pull_fails(ref, &insecure, SBX_ERR_NOT_FOUND, "no such image");
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/team/other:v2", open_port);
	pull_fails(ref, &insecure, SBX_ERR_NOT_FOUND, "no such image");
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/team/img:v2", dead_port);
	pull_fails(ref, &insecure, SBX_ERR_TIMEOUT, "cannot reach registry 127.0.0.1:");
	struct sbx_pull_opts secure = { 0 };
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/team/img:v2", open_port);
	pull_fails(ref, &secure, SBX_ERR_DENIED, "plain HTTP");
	pull_fails("Bad/Ref", &insecure, SBX_ERR_INVALID_PARAMS, "name component");
	struct sbx_pull_opts missing = { .insecure = true, .authfile = "/nonexistent/auth.json" };
	pull_fails(ref, &missing, SBX_ERR_NOT_FOUND, "auth file '/nonexistent/auth.json'");
}
END_TEST

START_TEST(pull_with_basic_auth)
{
	char ref[128], good[PATH_MAX + 32], bad[PATH_MAX + 32];
	snprintf(ref, sizeof(ref), "127.0.0.1:%d/team/img:v2", auth_port);
	snprintf(good, sizeof(good), "%s/good.json", dir);
	snprintf(bad, sizeof(bad), "%s/bad.json", dir);
	write_authfile(good, auth_port, "agent", "s3cret");
	write_authfile(bad, auth_port, "agent", "wrong");

	/* No credentials at all. */
	unsetenv("REGISTRY_AUTH_FILE");
	setenv("HOME", dir, 1);
	unsetenv("XDG_RUNTIME_DIR");
	struct sbx_pull_opts none = { .insecure = true };
	pull_fails(ref, &none, SBX_ERR_DENIED, "none were found");
	/* A wrong password, named in the error. */
	struct sbx_pull_opts wrong = { .insecure = true, .authfile = bad };
	pull_fails(ref, &wrong, SBX_ERR_DENIED, "refused the credentials from '");
	/* The right one, found through REGISTRY_AUTH_FILE. */
	setenv("REGISTRY_AUTH_FILE", good, 1);
	_cleanup_free_ char *found = sbx_pull_find_authfile();
	ck_assert_str_eq(found, good);
	_cleanup_oci_image_ struct sbx_oci_image *img = NULL;
	sbx_error *err = NULL;
	ck_assert_msg(sbx_image_pull(store, "a1", ref, &none, &img, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_str_eq(img->manifest_digest, pushed_digest);
	/* ... and through ~/.docker/config.json. */
	unsetenv("REGISTRY_AUTH_FILE");
	char docker[PATH_MAX + 32];
	snprintf(docker, sizeof(docker), "%s/.docker", dir);
	ck_assert_int_eq(mkdir(docker, 0700), 0);
	strcat(docker, "/config.json");
	write_authfile(docker, auth_port, "agent", "s3cret");
	_cleanup_oci_image_ struct sbx_oci_image *img2 = NULL;
	ck_assert_msg(sbx_image_pull(store, "a2", ref, &none, &img2, &err) == 0, "%s", err ? err->msg : "");
	ck_assert_int_eq(count_layers(), 2);
}
END_TEST

START_TEST(explain_messages)
{
	sbx_error *err = NULL;
	sbx_pull_explain("x", "r.example", NULL, "time=\"...\" level=fatal msg=\"Error: dial tcp: lookup r.example: no such host\"",
			 &err);
	ck_assert_int_eq(err->code, SBX_ERR_TIMEOUT);
	ck_assert_msg(strstr(err->msg, "cannot reach registry r.example (Error: dial tcp"), "%s", err->msg);
	sbx_error_free(err);
	err = NULL;
	sbx_pull_explain("x", "r.example", NULL, "msg=\"x509: certificate signed by unknown authority\"", &err);
	ck_assert_int_eq(err->code, SBX_ERR_DENIED);
	ck_assert(strstr(err->msg, "not trusted"));
	sbx_error_free(err);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pull");
	TCase *tc = tcase_create("registry");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, pull_plain_http);
	tcase_add_test(tc, pull_errors_are_clear);
	tcase_add_test(tc, pull_with_basic_auth);
	tcase_add_test(tc, explain_messages);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: test_pull needs root (umoci unpack)\n");
		return 77;
	}
	if (unit_sh("for t in docker-registry skopeo umoci htpasswd; do command -v $t >/dev/null || exit 1; done") != 0) {
		printf("SKIP: test_pull needs docker-registry, skopeo, umoci and htpasswd "
		       "(apt-get install docker-registry skopeo umoci apache2-utils)\n");
		return 77;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(fix, sizeof(fix), "%s/sbx-pull-fixture-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	open_port = free_port();
	auth_port = free_port();
	dead_port = free_port();
	if (!mkdtemp(fix) || open_port < 0 || auth_port < 0 || dead_port < 0 || open_port == auth_port) {
		fprintf(stderr, "fixture directory or ports\n");
		return 1;
	}
	/* The image: a base layer and one more, made by umoci. The registry
	 * speaks basic auth with a bcrypt entry (htpasswd -B). */
	if (unit_sh("set -e; cd '%s'; exec >fixture.log 2>&1; umoci init --layout L; umoci new --image L:v2;"
	       "umoci unpack --image L:v2 b; echo hello > b/rootfs/hello; mkdir -p b/rootfs/d; echo x > b/rootfs/d/x;"
	       "umoci repack --image L:v2 b; rm -rf b; umoci unpack --image L:v2 b; rm b/rootfs/hello;"
	       "echo y > b/rootfs/d/y; umoci repack --image L:v2 b;"
	       "umoci config --image L:v2 --config.cmd sh --config.cmd 'echo hi';"
	       "htpasswd -Bbc htpasswd agent s3cret",
	       fix) != 0) {
		fprintf(stderr, "making the image failed; see %s/fixture.log\n", fix);
		return 1;
	}
	registries[0] = start_registry("open", open_port, false);
	registries[1] = start_registry("auth", auth_port, true);
	int rc = 1;
	if (registries[0] < 0 || registries[1] < 0) {
		fprintf(stderr, "docker-registry did not start; see %s/*.log\n", fix);
		goto out;
	}
	if (unit_sh("cd '%s' && skopeo copy -q --dest-tls-verify=false oci:L:v2 docker://127.0.0.1:%d/team/img:v2 >>fixture.log 2>&1 &&"
	       " skopeo copy -q --dest-tls-verify=false --dest-creds agent:s3cret oci:L:v2 docker://127.0.0.1:%d/team/img:v2"
	       " >>fixture.log 2>&1",
	       fix, open_port, auth_port) != 0) {
		fprintf(stderr, "pushing with skopeo failed; see %s/fixture.log\n", fix);
		goto out;
	}
	{
		char p[PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s/L/index.json", fix);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		char *text = NULL;
		struct sbx_oci_descriptor d;
		if (fd < 0 || sbx_read_file_at(fd, p, 1 << 20, &text, NULL, NULL) < 0 ||
		    sbx_oci_parse_index(text, "v2", &d, NULL, NULL) < 0) {
			fprintf(stderr, "cannot read the layout's index\n");
			goto out;
		}
		close(fd);
		free(text);
		snprintf(pushed_digest, sizeof(pushed_digest), "%s", d.digest);
	}
	rc = unit_run(suite());
out:
	stop_registries();
	unit_rm_rf(fix);
	(void)fp;
	return rc;
}
