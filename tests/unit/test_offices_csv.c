/*
 * Unit tests of the office directory CSV parser (services/kqe/offices_csv.c):
 * RFC 4180 records and physical line numbers, validation of every row, the
 * label-to-code mappings and the id slug. Expectations are worked out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "offices_csv.h"

#define MAX_EXPECTED 10

struct expected_row {
	const char *id;
	const char *name;
	const char *kind;
	const char *region;
	long population;
	int line;
};

struct expected_error {
	int line;
	const char *field;
	const char *contains; /* substring of the message */
};

struct parse_case {
	const char *what;
	const char *csv;
	struct expected_row rows[MAX_EXPECTED];
	size_t nrows;
	struct expected_error errors[MAX_EXPECTED];
	size_t nerrors;
};

static const struct parse_case parse_cases[] = {
	{ "three rows of nrw-jugendaemter-sample.csv (UTF-8 names, German labels, no id)",
	    "name,type,landesjugendamt_region\n"
	    "Stadt Mönchengladbach,kreisfreie Stadt,LVR\n"
	    "Kreis Siegen-Wittgenstein,Kreis,LWL\n"
	    "Stadt Bad Oeynhausen,kreisangehörige Stadt,LWL\n",
	    {
	        { "stadt-moenchengladbach", "Stadt Mönchengladbach", "kreisfreie_stadt", "LVR", -1,
	            2 },
	        { "kreis-siegen-wittgenstein", "Kreis Siegen-Wittgenstein", "kreis", "LWL", -1, 3 },
	        { "stadt-bad-oeynhausen", "Stadt Bad Oeynhausen", "kreisangehoerige_stadt", "LWL",
	            -1, 4 },
	    },
	    3, { { 0 } }, 0 },
	{ "BOM, CRLF, quoted fields with commas and doubled quotes, extra column, codes",
	    "\xef\xbb\xbfId,Name,Kind,Region,Population_Under_18,source\r\n"
	    "essen,\"Stadt Essen, Ruhr\",kreisfreie_stadt,lvr,98765,\"https://example.org/a,b\"\r\n"
	    "\"bo\",\"Stadt \"\"Bochum\"\"\",Kreisfreie Stadt,LWL,,x\r\n"
	    "\"\",\"\",\"\",\"\",\"\",\"\"\r\n",
	    {
	        { "essen", "Stadt Essen, Ruhr", "kreisfreie_stadt", "LVR", 98765, 2 },
	        { "bo", "Stadt \"Bochum\"", "kreisfreie_stadt", "LWL", -1, 3 },
	    },
	    2,
	    {
	        { 4, "name", "missing" },
	        { 4, "kind", "missing" },
	        { 4, "region", "missing" },
	    },
	    3 },
	{ "line breaks inside quotes count towards the following line numbers",
	    "name,kind,region,source\n"
	    "Kreis Lippe,Kreis,LWL,\"a\nb\r\nc\"\n"
	    "Kreis Wesel,Kreis,XXX,d\n"
	    "\"Kreis\nKleve\",Kreis,LVR,\"\"\n"
	    "Kreis Mettmann,Kreis,,e\n",
	    {
	        { "kreis-lippe", "Kreis Lippe", "kreis", "LWL", -1, 2 },
	    },
	    1,
	    {
	        { 5, "region", "unknown region \"XXX\"" },
	        { 6, "name", "line break" },
	        { 8, "region", "missing" },
	    },
	    3 },
	{ "unterminated quote: reported on the line it opens, earlier rows still checked",
	    "name,kind,region\n"
	    "Stadt A,Kreis,LVR\n"
	    "\"Stadt B,Kreis,LVR\n"
	    "Stadt C,Kreis,LVR\n",
	    { { "stadt-a", "Stadt A", "kreis", "LVR", -1, 2 } }, 1,
	    { { 3, "csv", "unterminated quoted field" } }, 1 },
	{ "wrong number of fields",
	    "name,kind,region\n"
	    "Stadt A,Kreis\n"
	    "Stadt B,Kreis,LVR,extra\n"
	    "Stadt C,Kreis,LWL\n",
	    { { "stadt-c", "Stadt C", "kreis", "LWL", -1, 4 } }, 1,
	    {
	        { 2, "csv", "expected 3 fields as in the header, found 2" },
	        { 3, "csv", "expected 3 fields as in the header, found 4" },
	    },
	    2 },
	{ "every field error of every row, with the header's column names",
	    "id,name,type,landesjugendamt_region,population_under_18\n"
	    ",,Kreis,LVR,\n"
	    "x,Stadt X,Landkreis,LVR,1\n"
	    ",Stadt Y,Kreis,NRW,-5\n"
	    "Bad_Id,Stadt Z,Kreis,LWL,12\n"
	    ",Stadt Essen,Kreis,LWL,007\n"
	    ",  Stadt  Essen! ,Kreis,LWL,\n"
	    ",Kreis U,Kreis,LVR,2147483648\n"
	    ",---,Kreis,LVR,\n"
	    "stadt-essen,Kreis Q,Kreis,LVR,1.5\n",
	    { { "stadt-essen", "Stadt Essen", "kreis", "LWL", 7, 6 } }, 1,
	    {
	        { 2, "name", "missing" },
	        { 3, "type", "unknown kind \"Landkreis\"" },
	        { 4, "landesjugendamt_region", "unknown region \"NRW\"" },
	        { 4, "population_under_18", "\"-5\" is not a non-negative whole number" },
	        { 5, "id", "\"Bad_Id\" is not a valid id" },
	        { 7, "id", "duplicate id \"stadt-essen\" (first on line 6)" },
	        { 8, "population_under_18", "too large" },
	        { 9, "id", "no id given" },
	        { 10, "population_under_18", "\"1.5\" is not" },
	        { 10, "id", "duplicate id \"stadt-essen\" (first on line 6)" },
	    },
	    10 },
	{ "invalid UTF-8: the line of the bad byte, also after a quoted line break",
	    "name,kind,region\n"
	    "Stadt \xff,Kreis,LVR\n"
	    "\"A\nB\xc3\",Kreis,LVR\n"
	    "Stadt \xc0\xaf,Kreis,LVR\n"
	    "Stadt \xed\xa0\x80,Kreis,LVR\n"
	    "Stadt D,Kreis,\xf4\x90\x80\x80\n",
	    { { 0 } }, 0,
	    {
	        { 2, "name", "invalid UTF-8" },
	        { 4, "name", "invalid UTF-8" },
	        { 5, "name", "invalid UTF-8" },
	        { 6, "name", "invalid UTF-8" },
	        { 7, "region", "invalid UTF-8" },
	    },
	    5 },
	{ "quote inside an unquoted field, text after a closing quote",
	    "name,kind,region\n"
	    "Stadt \"A\",Kreis,LVR\n"
	    "\"Stadt B\"x,Kreis,LVR\n"
	    "Stadt C,Kreis,LVR\n",
	    { { "stadt-c", "Stadt C", "kreis", "LVR", -1, 4 } }, 1,
	    {
	        { 2, "csv", "quote inside an unquoted field" },
	        { 3, "csv", "after a closing quote" },
	    },
	    2 },
	{ "blank lines are skipped but counted",
	    "name,kind,region\n\nStadt A,Kreis,LVR\r\n\r\n\nStadt B,Kreis,LWL",
	    {
	        { "stadt-a", "Stadt A", "kreis", "LVR", -1, 3 },
	        { "stadt-b", "Stadt B", "kreis", "LWL", -1, 6 },
	    },
	    2, { { 0 } }, 0 },
	{ "missing required column: reported once, no row accepted", "Name,Region\nStadt A,LVR\n",
	    { { 0 } }, 0, { { 1, "header", "required column \"type\" (or \"kind\") missing" } },
	    1 },
	{ "a column given twice", "name,type,kind,region\nStadt A,Kreis,Kreis,LVR\n",
	    { { "stadt-a", "Stadt A", "kreis", "LVR", -1, 2 } }, 1,
	    { { 1, "header", "column 3 (\"kind\") repeats column 2 (\"type\")" } }, 1 },
	{ "empty file", "", { { 0 } }, 0, { { 1, "header", "empty" } }, 1 },
	{ "only a BOM", "\xef\xbb\xbf", { { 0 } }, 0, { { 1, "header", "empty" } }, 1 },
	{ "header only", "name,kind,region\r\n", { { 0 } }, 0, { { 0 } }, 0 },
};

static void
check_parse_case(const struct parse_case *c)
{
	struct offices_csv *csv = offices_csv_parse(c->csv, strlen(c->csv));

	print_message("case: %s\n", c->what);
	for (size_t i = 0; i < csv->nerrors && csv->nerrors != c->nerrors; i++)
		print_message("  got %d: %s: %s\n", csv->errors[i].line, csv->errors[i].field,
		    csv->errors[i].message);
	assert_int_equal(csv->nerrors, c->nerrors);
	for (size_t i = 0; i < c->nerrors; i++) {
		assert_int_equal(csv->errors[i].line, c->errors[i].line);
		assert_string_equal(csv->errors[i].field, c->errors[i].field);
		assert_non_null(strstr(csv->errors[i].message, c->errors[i].contains));
	}
	assert_int_equal(csv->nrows, c->nrows);
	for (size_t i = 0; i < c->nrows; i++) {
		const struct office *o = &csv->rows[i];
		assert_string_equal(o->id, c->rows[i].id);
		assert_string_equal(o->name, c->rows[i].name);
		assert_string_equal(o->kind, c->rows[i].kind);
		assert_string_equal(o->region, c->rows[i].region);
		assert_int_equal(o->population_under_18, c->rows[i].population);
		assert_int_equal(o->line, c->rows[i].line);
		assert_false(o->synthetic);
	}
	offices_csv_free(csv);
}

static void
test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
		check_parse_case(&parse_cases[i]);
}

/* Names are limited in characters, not bytes: 200 × "ä" (400 bytes) passes, 201 × "a" not. */
static void
test_name_length(void **state)
{
	char csv[1024];
	struct offices_csv *r;
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(csv, sizeof(csv), "name,kind,region\n");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(csv + n, sizeof(csv) - n, "ä");
	n += (size_t)snprintf(csv + n, sizeof(csv) - n, ",Kreis,LVR\n");
	for (int i = 0; i < 201; i++)
		csv[n++] = 'a';
	n += (size_t)snprintf(csv + n, sizeof(csv) - n, ",Kreis,LVR\n");

	r = offices_csv_parse(csv, n);
	assert_int_equal(r->nerrors, 1);
	assert_int_equal(r->errors[0].line, 3);
	assert_string_equal(r->errors[0].field, "name");
	assert_string_equal(r->errors[0].message, "201 characters, at most 200 allowed");
	assert_int_equal(r->nrows, 1);
	assert_int_equal(strlen(r->rows[0].name), 400);
	/* 200 × "ae" cut to the 64 characters an id may have. */
	assert_int_equal(strlen(r->rows[0].id), 64);
	offices_csv_free(r);
}

/* The parser takes a length, not a C string: a NUL byte in the data is invalid, not the end. */
static void
test_nul_byte(void **state)
{
	static const char csv[] = "name,kind,region\nStadt A\0x,Kreis,LVR\n";
	struct offices_csv *r = offices_csv_parse(csv, sizeof(csv) - 1);

	(void)state;
	assert_int_equal(r->nerrors, 1);
	assert_int_equal(r->errors[0].line, 2);
	assert_string_equal(r->errors[0].field, "name");
	assert_int_equal(r->nrows, 0);
	offices_csv_free(r);
}

static void
test_kind_parse(void **state)
{
	static const struct {
		const char *in;
		const char *code;
	} cases[] = {
		{ "kreisfreie_stadt", "kreisfreie_stadt" },
		{ "kreis", "kreis" },
		{ "kreisangehoerige_stadt", "kreisangehoerige_stadt" },
		{ "kreisfreie Stadt", "kreisfreie_stadt" },
		{ "KREISFREIE STADT", "kreisfreie_stadt" },
		{ "Kreis", "kreis" },
		{ "kreisangehörige Stadt", "kreisangehoerige_stadt" },
		{ "KREISANGEHÖRIGE STADT", "kreisangehoerige_stadt" },
		{ "Kreisangehoerige Stadt", "kreisangehoerige_stadt" },
		{ "Landkreis", NULL },
		{ "Stadt", NULL },
		{ "kreis ", NULL },
		{ "kreisfreie-stadt", NULL },
		{ "", NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = offices_kind_parse(cases[i].in);
		print_message("kind \"%s\"\n", cases[i].in);
		if (cases[i].code == NULL)
			assert_null(got);
		else
			assert_string_equal(got, cases[i].code);
	}
}

static void
test_region_parse(void **state)
{
	static const struct {
		const char *in;
		const char *code;
	} cases[] = {
		{ "LVR", "LVR" },
		{ "lvr", "LVR" },
		{ "Lwl", "LWL" },
		{ "LWL", "LWL" },
		{ "LV", NULL },
		{ "LVR ", NULL },
		{ "NRW", NULL },
		{ "", NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = offices_region_parse(cases[i].in);
		if (cases[i].code == NULL)
			assert_null(got);
		else
			assert_string_equal(got, cases[i].code);
	}
}

static void
test_slug(void **state)
{
	static const struct {
		const char *name;
		const char *slug;
	} cases[] = {
		{ "Stadt Mönchengladbach", "stadt-moenchengladbach" },
		{ "Städteregion Aachen", "staedteregion-aachen" },
		{ "Kreis Siegen-Wittgenstein", "kreis-siegen-wittgenstein" },
		{ "Stadt Düsseldorf", "stadt-duesseldorf" },
		{ "  Stadt  Essen!! ", "stadt-essen" },
		{ "STRAßE ÄÖÜ", "strasse-aeoeue" },
		{ "Groß-Gerau", "gross-gerau" },
		{ "\xe1\xba\x9e", "ss" }, /* ẞ */
		{ "Café Köln", "caf-koeln" },
		{ "Kreis 2024/25", "kreis-2024-25" },
		{ "---", "" },
		{ "", "" },
		/* 70 letters: cut to 64 */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
		/* 63 letters, a gap and a letter: the '-' would be the 64th, then trimmed */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b",
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
		/* 63 letters and "ä": only the "a" of "ae" fits */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaä",
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	};
	char out[OFFICES_ID_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		offices_slug(cases[i].name, out);
		print_message("slug \"%s\"\n", cases[i].name);
		assert_string_equal(out, cases[i].slug);
		assert_true(out[0] == '\0' || offices_id_valid(out));
	}
}

static void
test_id_valid(void **state)
{
	static const struct {
		const char *id;
		bool valid;
	} cases[] = {
		{ "a", true },
		{ "stadt-essen", true },
		{ "0-", true },
		{ "demo-lvr-001", true },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
		{ "", false },
		{ "-a", false },
		{ "A", false },
		{ "a_b", false },
		{ "a b", false },
		{ "ä", false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("id \"%s\"\n", cases[i].id);
		assert_int_equal(offices_id_valid(cases[i].id), cases[i].valid);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_name_length),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_kind_parse),
		cmocka_unit_test(test_region_parse),
		cmocka_unit_test(test_slug),
		cmocka_unit_test(test_id_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
