/* Unit tests of src/lib/subnet.c: pools, overlaps and the choice of a
 * free subnet beside what the host already routes. */
#include "config.h"
#include <arpa/inet.h>
#include <check.h>

#include "netlink.h"
#include "subnet.h"
#include "unit.h"

static struct sbx_cidr cidr(const char *s)
{
	struct sbx_cidr c;
	ck_assert_int_eq(sbx_cidr_parse(s, &c.net, &c.prefix), 0);
	return c;
}

static const char *fmt(struct sbx_cidr c)
{
	static char buf[SBX_CIDR_STRLEN];
	sbx_cidr_format(c, buf);
	return buf;
}

START_TEST(test_overlaps)
{
	ck_assert(sbx_cidr_overlaps(cidr("10.88.0.0/16"), cidr("10.88.3.0/24")));
	ck_assert(sbx_cidr_overlaps(cidr("10.88.3.0/24"), cidr("10.88.0.0/16")));
	ck_assert(sbx_cidr_overlaps(cidr("10.0.0.0/8"), cidr("10.200.0.0/16")));
	ck_assert(!sbx_cidr_overlaps(cidr("10.88.0.0/16"), cidr("10.89.0.0/16")));
	ck_assert(!sbx_cidr_overlaps(cidr("172.17.0.0/16"), cidr("172.16.0.0/16")));
	ck_assert(sbx_cidr_overlaps(cidr("192.168.122.1/32"), cidr("192.168.122.0/24")));
}
END_TEST

START_TEST(test_pool_parse)
{
	struct sbx_subnet_pool *p = NULL;
	size_t n = 0;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_subnet_pool_parse("subnet_pool", "10.200.0.0/13:16, 172.30.0.0/16", &p, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(fmt(p[0].base), "10.200.0.0/13");
	ck_assert_int_eq(p[0].size, 16);
	ck_assert_int_eq(p[1].size, 16);
	free(p);
	static const char *const bad[] = { "", "10.0.0.0/8:7", "10.0.0.0/16:8", "10.0.0.0/8:31", "10.0.0.0/33",
					   "10.0.0.0/8:x", "nonsense", "10.0.0.0/8:16 bogus" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(sbx_subnet_pool_parse("subnet_pool", bad[i], &p, &n, &e) < 0, "accepted '%s'", bad[i]);
		ck_assert_ptr_nonnull(strstr(e->msg, "subnet_pool"));
		sbx_error_free(e);
		e = NULL;
	}
}
END_TEST

START_TEST(test_pick)
{
	struct sbx_subnet_pool *p = NULL;
	size_t n = 0;
	sbx_error *e = NULL;
	ck_assert_int_eq(sbx_subnet_pool_parse("subnet_pool", "10.88.0.0/14:16, 172.30.0.0/16", &p, &n, &e), 0);
	struct sbx_cidr out;
	ck_assert_int_eq(sbx_subnet_pick(p, n, NULL, 0, &out), 0);
	ck_assert_str_eq(fmt(out), "10.88.0.0/16");
	/* podman's default network and a /24 of one of its others */
	struct sbx_cidr taken[] = { cidr("10.88.0.0/16"), cidr("10.89.3.0/24") };
	ck_assert_int_eq(sbx_subnet_pick(p, n, taken, 2, &out), 0);
	ck_assert_str_eq(fmt(out), "10.90.0.0/16");
	/* a wide route covers the whole first pool: the next pool */
	struct sbx_cidr wide[] = { cidr("10.0.0.0/8") };
	ck_assert_int_eq(sbx_subnet_pick(p, n, wide, 1, &out), 0);
	ck_assert_str_eq(fmt(out), "172.30.0.0/16");
	struct sbx_cidr all[] = { cidr("10.0.0.0/8"), cidr("172.16.0.0/12") };
	ck_assert_int_eq(sbx_subnet_pick(p, n, all, 2, &out), -1);
	free(p);
	/* a large pool of small subnets, skipped past quickly */
	ck_assert_int_eq(sbx_subnet_pool_parse("subnet_pool", "10.0.0.0/8:24", &p, &n, &e), 0);
	struct sbx_cidr most[] = { cidr("10.0.0.0/9"), cidr("10.128.0.0/10"), cidr("10.192.0.0/24") };
	ck_assert_int_eq(sbx_subnet_pick(p, n, most, 3, &out), 0);
	ck_assert_str_eq(fmt(out), "10.192.1.0/24");
	free(p);
}
END_TEST

static struct sbx_nl_prefix prefix(enum sbx_nl_prefix_kind kind, const char *net, const char *ifname, uint32_t group)
{
	struct sbx_nl_prefix p = { .kind = kind, .ifindex = ifname ? 5 : 0, .group = group };
	struct sbx_cidr c = cidr(net);
	p.net = c.net;
	p.prefix = c.prefix;
	if (kind == SBX_NL_ADDRESS) {
		char a[32];
		snprintf(a, sizeof(a), "%s", net);
		*strchr(a, '/') = '\0';
		inet_pton(AF_INET, a, &p.addr);
	}
	snprintf(p.ifname, sizeof(p.ifname), "%s", ifname ? ifname : "");
	return p;
}

START_TEST(test_conflict)
{
	struct sbx_nl_prefix host[] = {
		prefix(SBX_NL_ROUTE, "0.0.0.0/1", "tun0", 0),      /* a VPN's half default */
		prefix(SBX_NL_ROUTE, "192.0.2.0/24", "eth0", 0),   /* the uplink's network */
		prefix(SBX_NL_ADDRESS, "10.88.0.1/16", "podman0", 0),
		prefix(SBX_NL_ROUTE, "10.200.0.0/16", "sbx0", 0),  /* ours */
		prefix(SBX_NL_ROUTE, "10.200.3.4/32", "sv0123456789ab", 12), /* a sandbox of ours */
		prefix(SBX_NL_ROUTE_DEAD, "10.244.0.0/24", NULL, 0),
	};
	size_t n = sizeof(host) / sizeof(host[0]);
	char what[128];
	ck_assert_ptr_null(sbx_subnet_conflict(host, n, cidr("10.200.0.0/16"), "sbx0", 12));
	const struct sbx_nl_prefix *c = sbx_subnet_conflict(host, n, cidr("10.88.0.0/16"), "sbx0", 12);
	ck_assert_ptr_nonnull(c);
	sbx_subnet_describe(c, what, sizeof(what));
	ck_assert_str_eq(what, "address 10.88.0.1/16 of podman0");
	c = sbx_subnet_conflict(host, n, cidr("192.0.2.128/25"), "sbx0", 12);
	sbx_subnet_describe(c, what, sizeof(what));
	ck_assert_str_eq(what, "route 192.0.2.0/24 dev eth0");
	c = sbx_subnet_conflict(host, n, cidr("10.244.0.0/16"), "sbx0", 12);
	sbx_subnet_describe(c, what, sizeof(what));
	ck_assert_ptr_nonnull(strstr(what, "route 10.244.0.0/24 (no link"));
	/* another daemon's bridge is not ours */
	ck_assert_ptr_nonnull(sbx_subnet_conflict(host, n, cidr("10.200.0.0/16"), "sbx1", 13));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("subnet");
	TCase *tc = tcase_create("subnet");
	tcase_add_test(tc, test_overlaps);
	tcase_add_test(tc, test_pool_parse);
	tcase_add_test(tc, test_pick);
	tcase_add_test(tc, test_conflict);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
