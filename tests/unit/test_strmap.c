/* The string map under the sandbox registry: keys found after many puts and
 * removals, values replaced, tombstones reused, growth. */
#include "config.h"
#include <stdio.h>
#include <string.h>

#include "strmap.h"
#include "unit.h"

#define N 5000

static char keys[N][16];

START_TEST(put_get_del)
{
	struct sbx_strmap m = { 0 };
	ck_assert_ptr_null(sbx_strmap_get(&m, "x"));
	ck_assert_ptr_null(sbx_strmap_del(&m, "x"));
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%012x", i * 7919);
		ck_assert_int_eq(sbx_strmap_put(&m, keys[i], keys[i]), 0);
	}
	ck_assert_int_eq(m.used, N);
	ck_assert_int_le(m.used * 4, m.cap * 3);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(sbx_strmap_get(&m, keys[i]), keys[i]);
	ck_assert_ptr_null(sbx_strmap_get(&m, "not-a-key"));
	/* A key given again keeps one slot, with the new value. */
	ck_assert_int_eq(sbx_strmap_put(&m, keys[3], keys[4]), 0);
	ck_assert_ptr_eq(sbx_strmap_get(&m, keys[3]), keys[4]);
	ck_assert_int_eq(m.used, N);
	/* Every other key removed: the rest still found past the tombstones. */
	for (int i = 0; i < N; i += 2)
		ck_assert_ptr_nonnull(sbx_strmap_del(&m, keys[i]));
	ck_assert_int_eq(m.used, N / 2);
	for (int i = 0; i < N; i++) {
		if (i % 2)
			ck_assert_ptr_nonnull(sbx_strmap_get(&m, keys[i]));
		else
			ck_assert_ptr_null(sbx_strmap_get(&m, keys[i]));
	}
	ck_assert_ptr_null(sbx_strmap_del(&m, keys[0]));
	sbx_strmap_free(&m);
	ck_assert_int_eq(m.cap, 0);
}
END_TEST

START_TEST(churn_stays_bounded)
{
	/* Sandboxes come and go for ever: the table must not fill with
	 * tombstones and grow without end, nor lose a live key. */
	struct sbx_strmap m = { 0 };
	char live[64][16];
	for (int i = 0; i < 64; i++) {
		snprintf(live[i], sizeof(live[i]), "live-%d", i);
		ck_assert_int_eq(sbx_strmap_put(&m, live[i], live[i]), 0);
	}
	static char k[16];
	for (int round = 0; round < 100000; round++) {
		snprintf(k, sizeof(k), "tmp-%d", round);
		ck_assert_int_eq(sbx_strmap_put(&m, k, k), 0);
		ck_assert_ptr_eq(sbx_strmap_del(&m, k), k);
	}
	ck_assert_int_eq(m.used, 64);
	ck_assert_int_le(m.cap, 256);
	for (int i = 0; i < 64; i++)
		ck_assert_ptr_eq(sbx_strmap_get(&m, live[i]), live[i]);
	sbx_strmap_free(&m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("strmap");
	TCase *tc = tcase_create("map");
	tcase_add_test(tc, put_get_del);
	tcase_add_test(tc, churn_stays_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
