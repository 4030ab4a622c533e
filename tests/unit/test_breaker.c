/* breaker: fail fast while open, exactly one probe when the cooldown is over. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kqe/breaker.h"

#define HOUR_MS (3600L * 1000)

static void
test_closed_until_a_failure_then_open(void **state)
{
	(void)state;
	struct breaker b;
	breaker_init(&b, HOUR_MS);
	assert_true(breaker_allow(&b));
	assert_false(breaker_is_open(&b));
	breaker_fail(&b);
	assert_true(breaker_is_open(&b));
	assert_false(breaker_allow(&b));
	assert_false(breaker_allow(&b));
	assert_int_equal(atomic_load(&b.trips), 1);
	breaker_fail(&b); /* failing again while open is the same trip */
	assert_int_equal(atomic_load(&b.trips), 1);
}

static void
test_after_the_cooldown_one_probe_and_its_outcome_decides(void **state)
{
	(void)state;
	struct breaker b;
	breaker_init(&b, HOUR_MS);
	breaker_fail(&b);
	atomic_store(&b.open_until_ns, 1); /* the cooldown is over */
	assert_true(breaker_allow(&b)); /* the probe */
	assert_false(breaker_allow(&b)); /* everyone else still fails fast */
	breaker_ok(&b);
	assert_true(breaker_allow(&b));
	assert_false(breaker_is_open(&b));

	breaker_fail(&b);
	atomic_store(&b.open_until_ns, 1);
	assert_true(breaker_allow(&b));
	breaker_fail(&b); /* the probe failed: another cooldown */
	assert_false(breaker_allow(&b));
	assert_int_equal(atomic_load(&b.trips), 2);
}

static struct breaker shared;
static _Atomic int allowed;

static void *
race(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		if (breaker_allow(&shared))
			atomic_fetch_add(&allowed, 1);
	return NULL;
}

static void
test_exactly_one_probe_among_threads(void **state)
{
	(void)state;
	breaker_init(&shared, HOUR_MS);
	breaker_fail(&shared);
	atomic_store(&shared.open_until_ns, 1);
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, race, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&allowed), 1);
}

static void
test_no_breaker_always_allows(void **state)
{
	(void)state;
	assert_true(breaker_allow(NULL));
	breaker_fail(NULL);
	breaker_ok(NULL);
	assert_false(breaker_is_open(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_closed_until_a_failure_then_open),
		cmocka_unit_test(test_after_the_cooldown_one_probe_and_its_outcome_decides),
		cmocka_unit_test(test_exactly_one_probe_among_threads),
		cmocka_unit_test(test_no_breaker_always_allows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
