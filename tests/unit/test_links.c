/* links: a signed download link holds for its URI, its signer and its lifetime only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "links.h"

static const unsigned char key[LINK_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char other_key[LINK_KEY_LEN] = "fedcba9876543210fedcba9876543210";
static const char uri[] = "/v1/case-analyses.csv?procedure_id=x&limit=5";

static struct principal
office_staff(void)
{
	struct principal p = { .role = ROLE_OFFICE_STAFF };
	strcpy(p.actor, "token:1f0c");
	strcpy(p.office_id, "demo-lvr-001");
	return p;
}

static void
test_round_trip_until_expiry(void **state)
{
	(void)state;
	struct principal signer = office_staff(), got;
	char *token = link_sign(key, uri, &signer, 1000);
	assert_int_equal(link_verify(key, token, uri, 999, &got), 0);
	assert_int_equal(got.role, ROLE_OFFICE_STAFF);
	assert_string_equal(got.actor, "token:1f0c");
	assert_string_equal(got.office_id, "demo-lvr-001");
	assert_string_equal(got.region, "");
	assert_int_equal(link_verify(key, token, uri, 1000, &got), 0);
	assert_int_equal(link_verify(key, token, uri, 1001, &got), -1);
	assert_int_equal(got.role, ROLE_NONE); /* nothing is left behind on failure */
	free(token);
}

static void
test_anything_changed_is_refused(void **state)
{
	(void)state;
	struct principal signer = office_staff(), got;
	char *token = link_sign(key, uri, &signer, 1000);
	assert_int_equal(link_verify(other_key, token, uri, 1, &got), -1);
	assert_int_equal(link_verify(key, token, "/v1/case-analyses.csv?procedure_id=y&limit=5", 1,
	                     &got),
	    -1);
	assert_int_equal(link_verify(key, token, "/v1/case-analyses.csv", 1, &got), -1);
	char *bad = strdup(token);
	bad[3] = bad[3] == 'A' ? 'B' : 'A'; /* the claims */
	assert_int_equal(link_verify(key, bad, uri, 1, &got), -1);
	strcpy(bad, token);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'A' ? 'B' : 'A'; /* the signature */
	assert_int_equal(link_verify(key, bad, uri, 1, &got), -1);
	const char *garbage[] = { "", ".", "x.y", "eyJ9.", "..", "a.b.c" };
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		assert_int_equal(link_verify(key, garbage[i], uri, 1, &got), -1);
	free(bad);
	free(token);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_until_expiry),
		cmocka_unit_test(test_anything_changed_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
