/* Unit tests of the address helpers of src/lib/netlink.c (the rtnetlink
 * requests themselves are exercised by tests/integration/test_net.py). */
#include "config.h"
#include <arpa/inet.h>
#include <check.h>

#include "netlink.h"
#include "unit.h"

START_TEST(test_cidr_parse)
{
	struct in_addr net;
	int prefix;
	ck_assert_int_eq(sbx_cidr_parse("10.88.3.7/16", &net, &prefix), 0);
	ck_assert_int_eq(prefix, 16);
	ck_assert_uint_eq(ntohl(net.s_addr), 0x0a580000u);
	ck_assert_int_eq(sbx_cidr_parse("1.2.3.4", &net, &prefix), 0);
	ck_assert_int_eq(prefix, 32);
	ck_assert_int_eq(sbx_cidr_parse("0.0.0.0/0", &net, &prefix), 0);
	ck_assert_int_eq(prefix, 0);
	static const char *const bad[] = { "", "1.2.3.4/33", "1.2.3.4/", "1.2.3/8", "1.2.3.4/-1", "1.2.3.4/+8",
					   "a.b.c.d/8", "::1/128", "1.2.3.4/8x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sbx_cidr_parse(bad[i], &net, &prefix) < 0, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_cidr_contains)
{
	struct in_addr net, a;
	int prefix;
	sbx_cidr_parse("169.254.0.0/16", &net, &prefix);
	inet_pton(AF_INET, "169.254.169.254", &a);
	ck_assert(sbx_cidr_contains(net, prefix, a));
	inet_pton(AF_INET, "169.255.0.1", &a);
	ck_assert(!sbx_cidr_contains(net, prefix, a));
	sbx_cidr_parse("0.0.0.0/0", &net, &prefix);
	ck_assert(sbx_cidr_contains(net, prefix, a));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("netlink");
	TCase *tc = tcase_create("cidr");
	tcase_add_test(tc, test_cidr_parse);
	tcase_add_test(tc, test_cidr_contains);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
