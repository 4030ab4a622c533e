/* disclosure: the rules for comparison values at their boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kqe/disclosure.h"

static void
test_defaults_and_the_office_minimum(void **state)
{
	(void)state;
	struct sdc_rules rules;
	sdc_rules_default(&rules);
	assert_int_equal(rules.min_count, 3);
	assert_true(rules.dominance == 0.85);
	/* A median over 4 offices would let each office narrow down the others. */
	assert_false(sdc_comparison_allowed(&rules, 4));
	assert_true(sdc_comparison_allowed(&rules, 5));
}

static void
test_median_rules_in_order_at_their_boundaries(void **state)
{
	(void)state;
	struct sdc_rules rules;
	sdc_rules_default(&rules);
	assert_string_equal(sdc_median_blocked(&rules, 4, 100, 10), "min_offices");
	assert_string_equal(sdc_median_blocked(&rules, 5, 2, 1), "min_count");
	assert_null(sdc_median_blocked(&rules, 5, 3, 1));
	/* 85 of 100 is the share itself: published; 86 is more. */
	assert_null(sdc_median_blocked(&rules, 5, 100, 85));
	assert_string_equal(sdc_median_blocked(&rules, 5, 100, 86), "dominance");
	/* Rules are configuration. */
	struct sdc_rules other = { .min_count = 5, .dominance = 0.5, .min_offices = 3 };
	assert_null(sdc_median_blocked(&other, 3, 10, 5));
	assert_string_equal(sdc_median_blocked(&other, 3, 10, 6), "dominance");
	assert_string_equal(sdc_median_blocked(&other, 3, 4, 1), "min_count");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_the_office_minimum),
		cmocka_unit_test(test_median_rules_in_order_at_their_boundaries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
