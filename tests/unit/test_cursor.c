/* cursor: round trips and rejection of everything a client could make up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kqe/cursor.h"

static void
test_round_trip(void **state)
{
	(void)state;
	const char *keys[] = { "a", "demo-lvr-001", "x-y-z-0123456789", "ä/ö?&=#" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *k = json_pack("[s]", keys[i]);
		char *c = cursor_encode(k);
		/* URL-safe: no characters that need escaping in a query string. */
		assert_int_equal(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                           "0123456789-_"),
		    strlen(c));
		json_t *back = cursor_decode(c, 1);
		assert_non_null(back);
		assert_string_equal(json_string_value(json_array_get(back, 0)), keys[i]);
		json_decref(back);
		json_decref(k);
		free(c);
	}
}

static void
test_known_encoding(void **state)
{
	(void)state;
	/* base64url('["b"]') = WyJiIl0 (hand-computed, padding dropped). */
	json_t *k = json_pack("[s]", "b");
	char *c = cursor_encode(k);
	assert_string_equal(c, "WyJiIl0");
	free(c);
	json_decref(k);
}

static void
test_rejects(void **state)
{
	(void)state;
	const char *bad[] = {
		"", /* empty */
		"zzz", /* decodes to garbage */
		"W", /* impossible length */
		"WyJiIl0=", /* padding is not part of our alphabet */
		"Wy+iIl0", /* standard base64 character */
		"e30", /* {} */
		"WzFd", /* [1]: not a string */
		"WyJhIiwiYiJd", /* ["a","b"]: wrong arity */
		"WyIiXQ", /* [""]: empty key */
		"WyJiIg", /* ["b": truncated JSON */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *v = cursor_decode(bad[i], 1);
		if (v != NULL)
			fail_msg("accepted bad cursor \"%s\"", bad[i]);
	}
	char longc[600];
	memset(longc, 'A', sizeof(longc) - 1);
	longc[sizeof(longc) - 1] = '\0';
	assert_null(cursor_decode(longc, 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_known_encoding),
		cmocka_unit_test(test_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
