/* validate + report_params: every bad field reported with pointer and code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kqe/filetype.h"
#include "kqe/problem.h"
#include "kqe/report_params.h"
#include "kqe/util.h"
#include "kqe/validate.h"

static const char *const sexes[] = { "maennlich", "weiblich", "divers", "ohne_angabe", NULL };
static const struct field_spec child_fields[] = {
	{ .name = "sex", .type = FIELD_ENUM, .required = true, .values = sexes },
	{ .name = "birth_year", .type = FIELD_INTEGER, .min = 2000, .max = 2030 },
};
static const char *const forms[] = { "vernachlaessigung", "sexuelle_gewalt", NULL };
static const char *const dims[] = { "intake", "documentation", NULL };
static const struct field_spec typed_fields[] = {
	{ .name = "closed", .type = FIELD_MONTH },
	{ .name = "due", .type = FIELD_DATE },
	{ .name = "id", .type = FIELD_UUID },
	{ .name = "fte", .type = FIELD_NUMBER, .min = 0, .max = 500 },
	{ .name = "forms", .type = FIELD_CODES, .values = forms, .min = 1, .max = 2 },
	{ .name = "ratings", .type = FIELD_RATINGS, .values = dims, .min = 1, .max = 4 },
	/* values NULL: ids (slug_id_valid), e.g. the offices a provider works for */
	{ .name = "ids", .type = FIELD_CODES, .max = 3 },
	{ .name = "at", .type = FIELD_TIMESTAMP },
	{ .name = "children",
	    .type = FIELD_LIST,
	    .min = 1,
	    .max = 2,
	    .fields = child_fields,
	    .nfields = 2 },
	{ .name = "answers", .type = FIELD_MAP, .max = 3 },
	{ .name = "attended", .type = FIELD_FLAGS, .max = 3 },
};

static const struct field_spec fields[] = {
	{ .name = "name", .type = FIELD_STRING, .required = true, .min = 1, .max = 5 },
	{ .name = "count", .type = FIELD_INTEGER, .min = 0, .max = 10 },
	{ .name = "flag", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "child", .type = FIELD_OBJECT, .fields = child_fields, .nfields = 2 },
};

/* Validates text and compares "pointer code;pointer code;" with expect. */
static void
check_with(const char *text, const char *expect, const struct field_spec *specs, size_t nspecs)
{
	json_t *v = json_loads(text, 0, NULL);
	assert_non_null(v);
	json_t *errors = json_array();
	size_t n = validate_object(v, specs, nspecs, "", errors);
	char got[512] = "";
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e)
	{
		strcat(got, json_string_value(json_object_get(e, "pointer")));
		strcat(got, " ");
		strcat(got, json_string_value(json_object_get(e, "code")));
		strcat(got, ";");
	}
	if (strcmp(got, expect) != 0)
		fail_msg("%s: got \"%s\", expected \"%s\"", text, got, expect);
	assert_int_equal(n, json_array_size(errors));
	json_decref(errors);
	json_decref(v);
}

static void
check(const char *text, const char *expect)
{
	check_with(text, expect, fields, ARRAY_LEN(fields));
}

static void
check_typed(const char *text, const char *expect)
{
	check_with(text, expect, typed_fields, ARRAY_LEN(typed_fields));
}

static void
test_typed_fields(void **state)
{
	(void)state;
	check_typed("{\"closed\":\"2024-02\",\"due\":\"2024-02-29\",\"fte\":12.5}", "");
	check_typed("{\"closed\":\"2024-13\"}", "/closed format;");
	check_typed("{\"closed\":\"2024-1\"}", "/closed format;");
	check_typed("{\"closed\":\"1899-12\"}", "/closed format;");
	check_typed("{\"due\":\"2023-02-29\"}", "/due format;"); /* not a leap year */
	check_typed("{\"due\":\"2100-02-29\"}", "/due format;"); /* century rule */
	check_typed("{\"due\":\"2000-02-29\"}", ""); /* 400-year rule */
	check_typed("{\"due\":\"2024-04-31\"}", "/due format;");
	check_typed("{\"due\":\"2024-4-30\"}", "/due format;");
	check_typed("{\"id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\"}", "");
	check_typed("{\"id\":\"0f8fad5b-d9cb-469f-a165-70867728950\"}", "/id format;");
	check_typed("{\"fte\":500.5}", "/fte range;");
	check_typed("{\"fte\":-0.5}", "/fte range;");
	check_typed("{\"fte\":\"3\"}", "/fte type;");
	check_typed("{\"forms\":[\"sexuelle_gewalt\"]}", "");
	check_typed("{\"forms\":[]}", "/forms length;");
	check_typed("{\"forms\":[\"x\",1]}", "/forms/0 enum;/forms/1 type;");
	check_typed("{\"ids\":[\"demo-lvr-001\",\"a\"]}", "");
	check_typed("{\"ids\":[]}", "");
	check_typed("{\"ids\":[\"Not-An-Id\",\"-x\",\"a\",\"a\"]}", "/ids length;");
	check_typed("{\"ids\":[\"Not-An-Id\",\"-x\",\"a\"]}", "/ids/0 format;/ids/1 format;");
	check_typed("{\"ids\":[\"a\",\"a\",2]}", "/ids/1 duplicate;/ids/2 type;");
	check_typed("{\"forms\":[\"sexuelle_gewalt\",\"sexuelle_gewalt\"]}", "/forms/1 duplicate;");
	check_typed("{\"forms\":\"sexuelle_gewalt\"}", "/forms type;");
	check_typed("{\"ratings\":{\"intake\":1,\"documentation\":4}}", "");
	check_typed("{\"ratings\":{\"intake\":0,\"documentation\":\"2\",\"x/y\":2}}",
	    "/ratings/intake range;/ratings/documentation type;/ratings/x~1y unknown_field;");
	/* A date-time with its offset; a bare date is not a point in time. */
	check_typed("{\"at\":\"2026-03-31T23:59:00Z\"}", "");
	check_typed("{\"at\":\"2026-03-31T23:59:00.5+02:00\"}", "");
	check_typed("{\"at\":\"2026-03-31\"}", "/at format;");
	check_typed("{\"at\":\"2026-03-31T23:59:00\"}", "/at format;");
	check_typed("{\"at\":20260331}", "/at type;");
	/* A list of objects: each item checked at its own index. */
	check_typed("{\"children\":[{\"sex\":\"divers\"},{\"sex\":\"x\",\"y\":1}]}",
	    "/children/1/sex enum;/children/1/y unknown_field;");
	check_typed("{\"children\":[]}", "/children length;");
	check_typed("{\"children\":[1]}", "/children/0 type;");
	check_typed("{\"children\":{}}", "/children type;");
	/* A map of ids to yes/no or short text. */
	check_typed("{\"answers\":{\"a\":true,\"b-2\":\"abc\",\"c\":\"\"}}", "");
	check_typed("{\"answers\":{\"A\":true,\"b\":\"abcd\",\"c\":1,\"d\":null}}",
	    "/answers/A unknown_field;/answers/b length;/answers/c type;/answers/d type;");
	check_typed("{\"answers\":[]}", "/answers type;");
	check_typed("{\"attended\":[true,false]}", "");
	check_typed("{\"attended\":[true,1,null]}", "/attended/1 type;/attended/2 type;");
	check_typed("{\"attended\":[true,true,true,true]}", "/attended length;");
}

static void
test_field_specs(void **state)
{
	(void)state;
	check("{\"name\":\"abc\"}", "");
	check("{\"name\":\"äöüßé\"}", ""); /* 5 characters, 10 bytes */
	check("{\"name\":\"äöüßéx\"}", "/name length;");
	check("{}", "/name required;");
	check("{\"name\":\"\"}", "/name length;");
	check("{\"name\":1}", "/name type;");
	check("{\"name\":null}", "/name type;");
	check("{\"name\":\"a\",\"flag\":null}", "");
	check("{\"name\":\"a\",\"flag\":1}", "/flag type;");
	check("{\"name\":\"a\",\"count\":11}", "/count range;");
	check("{\"name\":\"a\",\"count\":-1}", "/count range;");
	check("{\"name\":\"a\",\"count\":1.5}", "/count type;");
	check("{\"name\":\"a\",\"count\":\"1\"}", "/count type;");
	check("{\"name\":\"a\",\"child\":{\"sex\":\"x\"}}", "/child/sex enum;");
	check("{\"name\":\"a\",\"child\":{}}", "/child/sex required;");
	check("{\"name\":\"a\",\"child\":[]}", "/child type;");
	check("{\"name\":\"a\",\"child\":{\"sex\":\"divers\",\"birth_year\":1999,\"x\":1}}",
	    "/child/birth_year range;/child/x unknown_field;");
	/* Every problem at once, and unknown keys escaped per RFC 6901. */
	check("{\"count\":\"x\",\"a/b\":1,\"m~n\":2}",
	    "/name required;/count type;/a~1b unknown_field;/m~0n unknown_field;");
}

static void
test_json_depth(void **state)
{
	(void)state;
	json_t *v = json_loads("{\"a\":[{\"b\":[1]}]}", 0, NULL);
	assert_int_equal(json_depth(v, 100), 4);
	assert_true(json_depth(v, 2) >= 2);
	json_decref(v);
	v = json_loads("5", JSON_DECODE_ANY, NULL);
	assert_int_equal(json_depth(v, 10), 0);
	json_decref(v);
}

static const struct {
	const char *body;
	const char *errors; /* expected "pointer code;" list */
	int first_year, last_year;
} report_cases[] = {
	{ "{\"scope\":\"state\",\"period\":\"2024\"}", "", 2024, 2024 },
	{ "{\"scope\":\"state\",\"period\":\"2023-2028\"}", "", 2023, 2028 },
	{ "{\"scope\":\"state\",\"period\":\"2028-2033\"}", "", 2028, 2033 },
	{ "{\"scope\":\"region\",\"region\":\"LWL\",\"period\":\"2000\"}", "", 2000, 2000 },
	{ "{\"scope\":\"state\",\"period\":\"2024-2029\"}", "/period format;", 0, 0 },
	{ "{\"scope\":\"state\",\"period\":\"2022-2027\"}", "/period format;", 0, 0 },
	{ "{\"scope\":\"state\",\"period\":\"1999\"}", "/period format;", 0, 0 },
	{ "{\"scope\":\"state\",\"period\":\"2101\"}", "/period format;", 0, 0 },
	{ "{\"scope\":\"state\",\"period\":\"20x4\"}", "/period format;", 0, 0 },
	{ "{\"scope\":\"state\",\"period\":\" 2024\"}", "/period format;", 0, 0 },
	{ "{\"scope\":\"state\",\"period\":\"+024\"}", "/period format;", 0, 0 },
	{ "{\"scope\":\"region\",\"period\":\"2024\"}", "/region required;", 0, 0 },
	{ "{\"scope\":\"state\",\"region\":\"LVR\",\"period\":\"2024\"}", "/region forbidden;", 0,
	    0 },
	{ "{\"scope\":\"land\",\"period\":\"2024\"}", "/scope enum;", 0, 0 },
};

static void
test_report_params(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_LEN(report_cases); c++) {
		json_t *v = json_loads(report_cases[c].body, 0, NULL);
		json_t *errors = json_array();
		report_params_validate(v, errors);
		char got[256] = "";
		size_t i;
		json_t *e;
		json_array_foreach(errors, i, e)
		{
			strcat(got, json_string_value(json_object_get(e, "pointer")));
			strcat(got, " ");
			strcat(got, json_string_value(json_object_get(e, "code")));
			strcat(got, ";");
		}
		if (strcmp(got, report_cases[c].errors) != 0)
			fail_msg("%s: got \"%s\"", report_cases[c].body, got);
		struct report_params p;
		int rc = report_params_parse(v, &p);
		if (report_cases[c].errors[0] == '\0') {
			assert_int_equal(rc, 0);
			assert_int_equal(p.first_year, report_cases[c].first_year);
			assert_int_equal(p.last_year, report_cases[c].last_year);
		} else {
			assert_int_equal(rc, -1);
		}
		json_decref(errors);
		json_decref(v);
	}
}

/* The checks of a material: a link people follow, a name a download is saved under. */
static void
test_link_and_file_name_checks(void **state)
{
	(void)state;
	static const char *const good_links[] = { "https://video.example/a?t=1#x",
		"https://[2001:db8::1]:8443/x" };
	static const char *const bad_links[] = { "HTTPS://example.org", "http://example.org",
		"https://", "javascript:alert(1)", "https://exa mple.org",
		"https://example.org/\x01", "ftp://example.org", "https://a\nb" };
	for (size_t i = 0; i < ARRAY_LEN(good_links); i++) {
		json_t *v = json_string(good_links[i]);
		assert_null(https_url_check(v));
		json_decref(v);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad_links); i++) {
		json_t *v = json_string(bad_links[i]);
		assert_non_null(https_url_check(v));
		json_decref(v);
	}
	static const char *const good_names[] = { "Leitfaden.pdf", "Prüfbogen (2. Fassung).docx",
		"a" };
	static const char *const bad_names[] = { "../etc/passwd", "a\\b", "\"quoted\"", ".", "..",
		"tab\there", "line\nbreak" };
	for (size_t i = 0; i < ARRAY_LEN(good_names); i++) {
		json_t *v = json_string(good_names[i]);
		assert_null(file_name_check(v));
		json_decref(v);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad_names); i++) {
		json_t *v = json_string(bad_names[i]);
		assert_non_null(file_name_check(v));
		json_decref(v);
	}
}

/* The check of a member naming an office, a provider, a criterion: an id, nothing else. */
static void
test_slug_id_check(void **state)
{
	(void)state;
	static const char *const good[] = { "o1", "jugendamt-koeln", "0",
		"a123456789012345678901234567890123456789012345678901234567890123" };
	static const char *const bad[] = { "", "-a", "A1", "a_b", "a b", "ä",
		"a1234567890123456789012345678901234567890123456789012345678901234" };
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		json_t *v = json_string(good[i]);
		assert_null(slug_id_check(v));
		json_decref(v);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_t *v = json_string(bad[i]);
		assert_string_equal(slug_id_check(v),
		    "must be an id: lower-case letters, digits and '-', at most 64");
		json_decref(v);
	}
	json_t *n = json_integer(1);
	assert_non_null(slug_id_check(n));
	json_decref(n);
}

/* What libmagic calls the bytes, and which declared types those bytes satisfy. */
static void
test_file_types(void **state)
{
	(void)state;
	char found[128];
	static const char pdf[] = "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
	assert_int_equal(filetype_of(pdf, sizeof(pdf) - 1, found, sizeof(found)), 0);
	assert_string_equal(found, "application/pdf");
	assert_true(filetype_matches("application/pdf", found));
	static const unsigned char png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0,
		13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0 };
	assert_int_equal(filetype_of(png, sizeof(png), found, sizeof(found)), 0);
	assert_string_equal(found, "image/png");
	assert_false(filetype_matches("application/pdf", found));
	static const char html[] = "<html><body><script>alert(1)</script></body></html>\n";
	assert_int_equal(filetype_of(html, sizeof(html) - 1, found, sizeof(found)), 0);
	assert_string_equal(found, "text/html");
	assert_false(filetype_matches("text/plain", found));
	assert_false(filetype_matches("text/csv", found));
	static const char csv[] = "a;b;c\n1;2;3\n";
	assert_int_equal(filetype_of(csv, sizeof(csv) - 1, found, sizeof(found)), 0);
	assert_true(filetype_matches("text/csv", found));
	/* Bytes libmagic cannot classify (a fuzzing find: it answered NULL, the upload 500). */
	static const unsigned char odd[] = { 0xff, 0xfe, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		2, 0 };
	assert_int_equal(filetype_of(odd, sizeof(odd), found, sizeof(found)), 0);
	assert_string_equal(found, "application/octet-stream");
	assert_false(filetype_matches("text/plain", found));
	assert_true(filetype_matches("text/plain", "text/plain"));
	assert_false(filetype_matches("application/pdf", "application/x-dosexec"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_specs),
		cmocka_unit_test(test_typed_fields),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_report_params),
		cmocka_unit_test(test_link_and_file_name_checks),
		cmocka_unit_test(test_slug_id_check),
		cmocka_unit_test(test_file_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
