/* rollup memo: which office_changed events a recompute already counted (services/aggregator). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "aggregator.h"

static void
test_an_office_never_recomputed_covers_nothing(void **state)
{
	(void)state;
	struct rollup_memo *m = rollup_memo_new();
	assert_false(rollup_memo_covers(m, "demo-lvr-001", "1-0"));
	rollup_memo_note(m, "demo-lvr-002", "1700000000000-5", 0);
	assert_false(rollup_memo_covers(m, "demo-lvr-001", "1-0"));
	rollup_memo_free(m);
	rollup_memo_free(NULL);
}

static void
test_entries_up_to_the_newest_at_the_recompute_are_covered(void **state)
{
	(void)state;
	static const struct {
		const char *entry;
		bool covered;
	} cases[] = {
		{ "1700000000000-5", true }, /* the newest entry itself */
		{ "1700000000000-4", true }, { "1700000000000-0", true },
		{ "1699999999999-99", true }, /* an earlier millisecond, any sequence */
		{ "1700000000000-6", false }, /* added after: its write may be missed */
		{ "1700000000001-0", false },
		{ "1700000000000-10", false }, /* numbers, not strings: 10 > 5 */
		{ "17000000000000-0", false }, { "", false }, /* not an entry id: never skipped */
		{ "1700000000000", false }, { "1700000000000-", false }, { "-1-0", false },
		{ "1700000000000-5x", false }, { " 1700000000000-5", false },
		{ "1700000000000- 5", false }, { "1700000000000--5", false },
		{ "1700000000000-+5", false },
		{ "99999999999999999999-0", false }, /* past 64 bits */
	};
	struct rollup_memo *m = rollup_memo_new();
	rollup_memo_note(m, "demo-lvr-001", "1700000000000-5", 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (rollup_memo_covers(m, "demo-lvr-001", cases[i].entry) != cases[i].covered)
			fail_msg("entry \"%s\": expected covered=%d", cases[i].entry,
			    (int)cases[i].covered);
	}
	rollup_memo_free(m);
}

static void
test_the_cover_never_moves_backwards_and_unknown_newest_keeps_it(void **state)
{
	(void)state;
	struct rollup_memo *m = rollup_memo_new();
	rollup_memo_note(m, "demo-lwl-001", "200-3", 0);
	rollup_memo_note(m, "demo-lwl-001", "100-0", 0); /* an older id (another recompute) */
	assert_true(rollup_memo_covers(m, "demo-lwl-001", "200-3"));
	rollup_memo_note(m, "demo-lwl-001", NULL, 0); /* Redis did not answer */
	rollup_memo_note(m, "demo-lwl-001", "", 0); /* the stream was empty */
	rollup_memo_note(m, "demo-lwl-001", "garbage", 0);
	assert_true(rollup_memo_covers(m, "demo-lwl-001", "200-3"));
	assert_false(rollup_memo_covers(m, "demo-lwl-001", "200-4"));
	rollup_memo_note(m, "demo-lwl-001", "300-0", 0);
	assert_true(rollup_memo_covers(m, "demo-lwl-001", "200-4"));
	rollup_memo_free(m);
}

static void
test_an_office_first_noted_without_an_entry_covers_nothing(void **state)
{
	(void)state;
	struct rollup_memo *m = rollup_memo_new();
	rollup_memo_note(m, "demo-lvr-003", "", 5);
	assert_false(rollup_memo_covers(m, "demo-lvr-003", "0-0"));
	assert_false(rollup_memo_covers(m, "demo-lvr-003", "0-1"));
	assert_false(rollup_memo_covers(m, "demo-lvr-003", "1-0"));
	rollup_memo_free(m);
}

static void
test_event_since_only_for_recomputes_an_event_caused(void **state)
{
	(void)state;
	struct rollup_memo *m = rollup_memo_new();
	rollup_memo_note(m, "demo-lvr-004", "1-0", 0); /* the periodic look, not an event */
	assert_false(rollup_memo_event_since(m, "demo-lvr-004", 1));
	rollup_memo_note(m, "demo-lvr-004", "2-0", 1000);
	assert_true(rollup_memo_event_since(m, "demo-lvr-004", 1000));
	assert_true(rollup_memo_event_since(m, "demo-lvr-004", 999));
	assert_false(rollup_memo_event_since(m, "demo-lvr-004", 1001));
	rollup_memo_note(m, "demo-lvr-004", "3-0", 0); /* a later look keeps the event's time */
	assert_true(rollup_memo_event_since(m, "demo-lvr-004", 1000));
	assert_false(rollup_memo_event_since(m, "demo-lvr-005", 0));
	rollup_memo_free(m);
}

static void
test_many_offices_each_keep_their_own(void **state)
{
	(void)state;
	struct rollup_memo *m = rollup_memo_new();
	char office[32], entry[32];
	for (int i = 0; i < 500; i++) {
		snprintf(office, sizeof(office), "office-%d", i);
		snprintf(entry, sizeof(entry), "%d-0", i + 1);
		rollup_memo_note(m, office, entry, 0);
	}
	for (int i = 0; i < 500; i++) {
		snprintf(office, sizeof(office), "office-%d", i);
		snprintf(entry, sizeof(entry), "%d-0", i + 1);
		assert_true(rollup_memo_covers(m, office, entry));
		snprintf(entry, sizeof(entry), "%d-1", i + 1);
		assert_false(rollup_memo_covers(m, office, entry));
	}
	rollup_memo_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_office_never_recomputed_covers_nothing),
		cmocka_unit_test(test_entries_up_to_the_newest_at_the_recompute_are_covered),
		cmocka_unit_test(test_the_cover_never_moves_backwards_and_unknown_newest_keeps_it),
		cmocka_unit_test(test_an_office_first_noted_without_an_entry_covers_nothing),
		cmocka_unit_test(test_event_since_only_for_recomputes_an_event_caused),
		cmocka_unit_test(test_many_offices_each_keep_their_own),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
