/*
 * ckm: the perturbation table is the maximum-entropy distribution the parameters
 * ask for, and looking noise up by cell key follows it.
 *
 * The expected rows were worked out independently of this code (a general
 * constrained optimiser maximising entropy under the same constraints, and the
 * closed form where the constraints pin a row down), to four decimals.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kqe/ckm.h"

static void
assert_row(const struct ckm_table *t, int i, const int *v, const double *p, int n)
{
	const struct ckm_row *r = ckm_row_for(t, i);
	assert_int_equal(r->n, n);
	for (int k = 0; k < n; k++) {
		assert_int_equal(r->v[k], v[k]);
		assert_true(fabs(r->p[k] - p[k]) < 5e-5);
	}
}

static void
build(struct ckm_table *t, int d, double v, int js)
{
	char err[200];
	struct ckm_params p = { d, v, 0, js };
	assert_int_equal(ckm_table_build(&p, t, err, sizeof(err)), 0);
}

static void
test_symmetric_row_without_js(void **state)
{
	(void)state;
	struct ckm_table t;
	build(&t, 2, 1.0, 0);
	assert_int_equal(t.rows, 4);
	int v[] = { -2, -1, 0, 1, 2 };
	double p[] = { 0.06383, 0.24469, 0.38296, 0.24469, 0.06383 };
	assert_row(&t, 2, v, p, 5);
	assert_row(&t, 1000, v, p, 5); /* large counts use the last row */
	ckm_table_free(&t);
}

static void
test_rows_for_d4_v225_js2(void **state)
{
	(void)state;
	struct ckm_table t;
	build(&t, 4, 2.25, 2);
	assert_int_equal(t.rows, 8); /* 0 .. D + js + 1 */
	int v1[] = { -1, 2, 3, 4 };
	double p1[] = { 0.6867, 0.2583, 0.0500, 0.0050 };
	assert_row(&t, 1, v1, p1, 4);
	int v3[] = { -3, 0, 1, 2, 3, 4 };
	double p3[] = { 0.1625, 0.4761, 0.2568, 0.0851, 0.0173, 0.0022 };
	assert_row(&t, 3, v3, p3, 6);
	int v7[] = { -4, -3, -2, -1, 0, 1, 2, 3, 4 };
	double p7[] = { 0.0083, 0.0375, 0.1107, 0.2119, 0.2631, 0.2119, 0.1107, 0.0375, 0.0083 };
	assert_row(&t, 7, v7, p7, 9);
	ckm_table_free(&t);
}

/* Every row: probabilities sum to 1, mean 0, variance V; nothing below 0 or in 1..js. */
static void
test_every_row_keeps_its_promises(void **state)
{
	(void)state;
	const struct ckm_params cases[] = { { 5, 3.0, 0, 2 }, { 4, 2.25, 0, 2 }, { 3, 1.5, 0, 1 },
		{ 8, 6.0, 0, 3 }, { 2, 0.5, 0, 0 }, { 5, 3.0, 8.0, 2 } };
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct ckm_table t;
		char err[200];
		assert_int_equal(ckm_table_build(&cases[c], &t, err, sizeof(err)), 0);
		for (int i = 0; i < t.rows + 3; i++) {
			const struct ckm_row *r = ckm_row_for(&t, i);
			double sum = 0, mean = 0, var = 0;
			for (int k = 0; k < r->n; k++) {
				long long j = i + r->v[k];
				assert_true(j >= 0);
				assert_false(j >= 1 && j <= cases[c].js);
				assert_true(abs(r->v[k]) <= cases[c].max_deviation);
				sum += r->p[k];
				mean += r->p[k] * r->v[k];
				var += r->p[k] * r->v[k] * r->v[k];
			}
			assert_true(fabs(sum - 1) < 1e-12);
			assert_true(fabs(mean) < 1e-7);
			double want = i == 0 ? 0
			              : i >= t.rows - 1 && cases[c].variance_large > 0
			                  ? cases[c].variance_large
			                  : cases[c].variance;
			assert_true(fabs(var - want) < 1e-7);
		}
		assert_int_equal(ckm_perturb(&t, 0, 12345), 0); /* a zero stays zero */
		ckm_table_free(&t);
	}
}

static void
test_parameters_without_a_table_are_refused_naming_the_row(void **state)
{
	(void)state;
	struct ckm_table t;
	char err[200];
	/* A true 1 with js = 2 can only become 0 or 3+: variance at least 2. */
	struct ckm_params p = { 3, 1.0, 0, 2 };
	assert_int_equal(ckm_table_build(&p, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "true count of 1"));
	struct ckm_params q = { 2, 3.0, 0, 2 }; /* D must be at least js + 1 */
	assert_int_equal(ckm_table_build(&q, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at least js + 1 = 3"));
	struct ckm_params big = { 5, 30.0, 0, 2 }; /* beyond what -5 .. 5 allows */
	assert_int_equal(ckm_table_build(&big, &t, err, sizeof(err)), -1);
}

/* Keys spread evenly over [0, 2^32) meet each noise value as often as the table says. */
static void
test_lookup_follows_the_intervals(void **state)
{
	(void)state;
	struct ckm_table t;
	build(&t, 5, 3.0, 2);
	for (long long n = 1; n <= 12; n++) {
		const struct ckm_row *r = ckm_row_for(&t, n);
		int seen[2 * CKM_MAX_D + 1] = { 0 };
		const int steps = 1 << 16;
		for (int s = 0; s < steps; s++) {
			uint32_t key = (uint32_t)((uint64_t)s << 16 | 0x8000);
			long long j = ckm_perturb(&t, n, key);
			assert_int_equal(
			    ckm_perturb(&t, n, key), j); /* the same key, the same noise */
			seen[j - n + CKM_MAX_D]++;
			assert_true(ckm_probability(&t, n, j) > 0);
		}
		for (int k = 0; k < r->n; k++)
			assert_true(
			    fabs((double)seen[r->v[k] + CKM_MAX_D] / steps - r->p[k]) < 1e-4);
		assert_int_equal(ckm_perturb(&t, n, 0), n + r->v[0]);
		assert_int_equal(ckm_perturb(&t, n, UINT32_MAX), n + r->v[r->n - 1]);
	}
	ckm_table_free(&t);
}

static void
test_cell_keys_add_modulo_2_32(void **state)
{
	(void)state;
	assert_int_equal(ckm_key_add(0xfffffff0u, 0x20), 0x10);
	assert_int_equal(ckm_key_add(5, ((uint64_t)7 << 32) + 3), 8); /* a sum beyond 2^32 */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_symmetric_row_without_js),
		cmocka_unit_test(test_rows_for_d4_v225_js2),
		cmocka_unit_test(test_every_row_keeps_its_promises),
		cmocka_unit_test(test_parameters_without_a_table_are_refused_naming_the_row),
		cmocka_unit_test(test_lookup_follows_the_intervals),
		cmocka_unit_test(test_cell_keys_add_modulo_2_32),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
