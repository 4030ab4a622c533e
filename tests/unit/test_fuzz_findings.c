/*
 * Regressions of what the fuzz targets (tests/fuzz, docs/testing.md) found,
 * each reduced to the input that showed it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/queue.h>

#include "handlers.h"
#include "http.h"
#include "kqe/problem.h"
#include "kqe/validate.h"
#include "links.h"
#include "report_html.h"
#include "router.h"

/* The errors' pointers (or parameters) and codes as "where code;…". */
static void
expect_errors(const json_t *errors, const char *expect)
{
	char got[1024] = "";
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e)
	{
		const char *where = json_string_value(json_object_get(e, "pointer"));
		if (where == NULL)
			where = json_string_value(json_object_get(e, "parameter"));
		assert_non_null(where);
		strncat(got, where, sizeof(got) - strlen(got) - 1);
		strncat(got, " ", sizeof(got) - strlen(got) - 1);
		strncat(got, json_string_value(json_object_get(e, "code")),
		    sizeof(got) - strlen(got) - 1);
		strncat(got, ";", sizeof(got) - strlen(got) - 1);
	}
	assert_string_equal(got, expect);
}

/*
 * fuzz_topic: an unknown member named with 200 "ä" (400 bytes) was accepted.
 * Its pointer was cut inside a character, jansson refused the invalid UTF-8
 * and the error entry was dropped, so the document passed validation.
 */
static void
test_long_non_ascii_unknown_field_is_reported(void **state)
{
	(void)state;
	char key[401];
	for (int i = 0; i < 200; i++)
		memcpy(key + 2 * i, "\xc3\xa4", 2);
	key[400] = '\0';
	json_t *doc =
	    json_pack("{s:s,s:s,s:s,s:i}", "procedure_id", "1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d",
	        "theme", "information_sharing", "priority", "high", key, 1);
	assert_non_null(doc);
	json_t *errors = json_array();
	assert_int_equal(pipeline_check_document(&topics_resource, doc, true, "", errors), 1);
	const char *ptr = json_string_value(json_object_get(json_array_get(errors, 0), "pointer"));
	assert_non_null(ptr);
	assert_true(utf8_valid(ptr));
	assert_true(strlen(ptr) >= 250 && strlen(ptr) < 256);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(errors, 0), "code")), "unknown_field");
	json_decref(errors);
	json_decref(doc);

	/* The cut never splits an escape or a character; a pointer that fits is whole. */
	char buf[8] = "/a";
	pointer_append(buf, sizeof(buf), "x/\xc3\xa4~y");
	assert_string_equal(buf, "/a/x~1");
	char whole[16] = "";
	pointer_append(whole, sizeof(whole), "x/\xc3\xa4~y");
	assert_string_equal(whole, "/x~1\xc3\xa4~0y");
}

/*
 * fuzz_case_analysis: a batch item that is not an object ("items": [{…}, true])
 * is reported at the item itself, /items/1 — which the fuzz target's check of
 * the pointers did not allow for (it wanted every pointer below the item's).
 * The answer was right; this pins it.
 */
static void
test_batch_item_that_is_no_object_is_reported_at_the_item(void **state)
{
	(void)state;
	json_t *errors = json_array();
	json_t *item = json_true();
	assert_int_equal(
	    pipeline_check_document(&case_analyses_resource, item, true, "/items/1", errors), 1);
	expect_errors(errors, "/items/1 type;");
	json_decref(item);
	json_decref(errors);
}

/*
 * fuzz_query: a parameter whose name is not UTF-8 ("\xff=1", as the query
 * string arrives) was not reported: its error entry was dropped the same way,
 * and the query was accepted with an unknown parameter in it.
 */
static void
test_non_utf8_parameter_name_is_reported(void **state)
{
	(void)state;
	char *params[ROUTE_MAX_PARAMS];
	int nparams = 0;
	unsigned allow;
	int idx = router_match(EVHTTP_REQ_GET, "/v1/offices", params, &nparams, &allow);
	assert_true(idx >= 0);
	struct evkeyvalq query;
	long limit;
	json_t *after = NULL, *errors = json_array();
	char text[] = "region=LVR&\xff\xfe=1";
	query_parse(&routes[idx], text, &query, &limit, &after, errors);
	expect_errors(errors, "\xef\xbf\xbd\xef\xbf\xbd unknown_parameter;");
	evhttp_clear_headers(&query);
	json_decref(errors);
	json_decref(after);

	errors = json_array();
	error_at_parameter(errors, "a\xc3(\xe2\x82", "format", "m");
	expect_errors(errors, "a\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd format;");
	json_decref(errors);
}

/*
 * fuzz_report_html: a table with no dimensions read dims[-1] (out of
 * bounds), and a region table without a title passed NULL to strstr().
 */
static void
test_report_html_takes_tables_of_any_shape(void **state)
{
	(void)state;
	static const char *const reports[] = {
		"{\"tables\":[{\"id\":\"t\",\"title\":\"T\",\"measure\":\"count\",\"dimensions\":[],"
		"\"cells\":[{\"value\":3,\"suppressed\":false},{\"value\":1}]}]}",
		"{\"tables\":[{\"id\":\"t\",\"measure\":\"count\",\"dimensions\":[\"region\",\"result\"],"
		"\"cells\":[{\"region\":\"LVR\",\"result\":\"x\",\"value\":2}]}]}",
		"{\"tables\":[{\"id\":\"t\",\"title\":\"T\",\"dimensions\":[1,\"result\"],"
		"\"cells\":[{\"result\":\"x\",\"value\":2},{\"value\":5}]}]}",
		"{\"tables\":[{\"cells\":[{}]}, 7, null]}",
	};
	for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++) {
		json_t *report = json_loads(reports[i], 0, NULL);
		assert_non_null(report);
		char *html = report_html(report);
		assert_non_null(html);
		assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
		free(html);
		json_decref(report);
	}
}

/*
 * fuzz_report_html: a procedure report without a status passed NULL to
 * strcmp() in the header, and so did a structure row without a peer group
 * (fixed in commit 52a0005). Each renders in both versions: as a draft, and
 * the row compared with the office's Landesjugendamt.
 */
static void
test_procedure_report_without_status_or_peer_group_renders(void **state)
{
	(void)state;
	static const char *const reports[] = {
		"{}",
		"{\"status\":null,\"generated\":{\"structure\":[{\"indicator\":\"cases_per_fte\","
		"\"own\":31.0,\"peers\":60}]}}",
		"{\"status\":7,\"generated\":{\"structure\":[{\"peer_group\":null},{}],"
		"\"topics\":[{}],\"counts\":{\"result\":{\"hilfebedarf\":1}}}}",
	};
	for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++) {
		json_t *report = json_loads(reports[i], 0, NULL);
		assert_non_null(report);
		for (int committee = 0; committee <= 1; committee++) {
			char *html = procedure_report_html(report, committee, 3, 5);
			assert_non_null(html);
			assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
			assert_non_null(strstr(html, "Stand: Entwurf"));
			assert_non_null(strstr(html, "</html>"));
			if (i > 0)
				assert_non_null(strstr(html, "<td>gleiches Landesjugendamt</td>"));
			free(html);
		}
		json_decref(report);
	}
}

/*
 * fuzz_links: a token without a '.' (or not base64url) returned -1 but left
 * the principal as it was; every failure now leaves nobody in it, as
 * jwt_verify does.
 */
static void
test_failed_link_leaves_no_principal(void **state)
{
	(void)state;
	static const unsigned char key[LINK_KEY_LEN] = "0123456789abcdef0123456789abcdef";
	static const char *const tokens[] = { "", "no-dot", "!!!.x", "e30.x" };
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		struct principal p;
		memset(&p, 0x5a, sizeof(p));
		assert_int_equal(link_verify(key, tokens[i], "/v1/offices.csv", 0, &p), -1);
		struct principal zero;
		memset(&zero, 0, sizeof(zero));
		assert_memory_equal(&p, &zero, sizeof(p));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_non_ascii_unknown_field_is_reported),
		cmocka_unit_test(test_batch_item_that_is_no_object_is_reported_at_the_item),
		cmocka_unit_test(test_non_utf8_parameter_name_is_reported),
		cmocka_unit_test(test_report_html_takes_tables_of_any_shape),
		cmocka_unit_test(test_procedure_report_without_status_or_peer_group_renders),
		cmocka_unit_test(test_failed_link_leaves_no_principal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
