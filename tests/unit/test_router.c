/* router: pattern matching, path parameters, 404 vs 405 and the Allow mask. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

static void
expect_route(enum evhttp_cmd_type m, const char *path, const char *pattern, const char *param)
{
	char *params[ROUTE_MAX_PARAMS];
	int n;
	unsigned allow;
	int i = router_match(m, path, params, &n, &allow);
	if (i < 0)
		fail_msg("%s did not match", path);
	assert_string_equal(routes[i].pattern, pattern);
	if (param != NULL) {
		assert_int_equal(n, 1);
		assert_string_equal(params[0], param);
	} else {
		assert_int_equal(n, 0);
	}
	while (n > 0)
		free(params[--n]);
}

static void
test_matches(void **state)
{
	(void)state;
	expect_route(EVHTTP_REQ_GET, "/healthz", "/healthz", NULL);
	expect_route(EVHTTP_REQ_GET, "/v1/offices", "/v1/offices", NULL);
	expect_route(EVHTTP_REQ_GET, "/v1/offices/demo-lvr-001", "/v1/offices/{id}", "demo-lvr-001");
	expect_route(EVHTTP_REQ_HEAD, "/v1/offices/x", "/v1/offices/{id}", "x");
	expect_route(EVHTTP_REQ_POST, "/v1/reports", "/v1/reports", NULL);
	expect_route(EVHTTP_REQ_GET, "/v1/jobs/abc", "/v1/jobs/{id}", "abc");
	/* A parameter with a literal suffix in its segment; without the suffix, the bare route. */
	expect_route(EVHTTP_REQ_GET, "/v1/reports/abc.html", "/v1/reports/{id}.html", "abc");
	expect_route(EVHTTP_REQ_GET, "/v1/reports/abc.htm", "/v1/reports/{id}", "abc.htm");
	expect_route(EVHTTP_REQ_GET, "/v1/reports/abc", "/v1/reports/{id}", "abc");
}

static void
test_not_found_and_not_allowed(void **state)
{
	(void)state;
	char *params[ROUTE_MAX_PARAMS];
	int n;
	unsigned allow;
	const char *missing[] = { "/", "", "/v1", "/v1/offices/", "/v1/offices/a/b",
		"/v1/offices//", "/healthz/", "/v1/officesx", "/V1/offices" };
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		if (router_match(EVHTTP_REQ_GET, missing[i], params, &n, &allow) != -1)
			fail_msg("%s should be unknown", missing[i]);
		assert_int_equal(n, 0);
	}
	assert_int_equal(router_match(EVHTTP_REQ_DELETE, "/v1/offices", params, &n, &allow), -2);
	assert_int_equal(allow, EVHTTP_REQ_GET);
	assert_int_equal(router_match(EVHTTP_REQ_DELETE, "/v1/reports", params, &n, &allow), -2);
	assert_int_equal(allow, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
	/* ".html" alone names no report: the bare route takes it, the handler answers 404. */
	expect_route(EVHTTP_REQ_GET, "/v1/reports/.html", "/v1/reports/{id}", ".html");
	assert_int_equal(router_match(EVHTTP_REQ_POST, "/v1/reports/x", params, &n, &allow), -2);
	assert_int_equal(allow, EVHTTP_REQ_GET);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_not_found_and_not_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
