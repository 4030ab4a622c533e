/*
 * The § 8 procedure report's committee version (services/api/report_html.c,
 * docs/procedure-reports.md "The committee version"): which counts, shares
 * and medians it hides for small counts, worked out by hand, and that its
 * method text names the configured thresholds. The full version prints
 * everything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report_html.h"

#define AKUTE "akute Kindeswohlgefährdung"
#define LATENT "latente Kindeswohlgefährdung"
#define HILFE "Hilfebedarf ohne Kindeswohlgefährdung"
#define ROW(label, count, share) "<tr><th>" label "</th><td>" count "</td><td>" share "</td></tr>"

/* A report of n case analyses with these counts (JSON members of "counts"). */
static char *
render(long long n, const char *counts, const char *more, bool committee, long min_count,
    long min_offices)
{
	char text[2048];
	snprintf(text, sizeof(text),
	    "{\"status\":\"draft\",\"generated\":{\"case_analyses\":%lld,\"counts\":{%s}%s%s}}", n,
	    counts, more[0] ? "," : "", more);
	json_error_t error;
	json_t *report = json_loads(text, 0, &error);
	if (report == NULL)
		fail_msg("bad test JSON: %s: %s", error.text, text);
	char *html = procedure_report_html(report, committee, min_count, min_offices);
	json_decref(report);
	return html;
}

static void
expect_in(const char *html, const char *const *parts, bool present)
{
	for (size_t i = 0; parts[i] != NULL; i++)
		if ((strstr(html, parts[i]) != NULL) != present)
			fail_msg(
			    "%s expected %s", parts[i], present ? "in the document" : "absent");
}

struct line_case {
	const char *name;
	long long n;
	const char *counts;
	const char *const shown[6]; /* in the committee version */
	const char *const absent[6];
};

/* Lines of one category per case analysis: the total (n) is printed. */
static const struct line_case line_cases[] = {
	{ "two hidden 1s would add up to n minus the printed: the 8 goes too", 10,
	    "\"result\":{\"akute_gefaehrdung\":1,\"latente_gefaehrdung\":8,"
	    "\"hilfebedarf_ohne_gefaehrdung\":1}",
	    { "wurden <b>10</b>", ROW(AKUTE, ".", "."), ROW(LATENT, ".", "."), ROW(HILFE, ".", "."),
	        NULL },
	    { "<td>8</td>", "<td>80</td>", NULL } },
	{ "one hidden 2: the smallest other count (the first of equals) goes too", 10,
	    "\"result\":{\"akute_gefaehrdung\":2,\"latente_gefaehrdung\":4,"
	    "\"hilfebedarf_ohne_gefaehrdung\":4}",
	    { ROW(AKUTE, ".", "."), ROW(LATENT, ".", "."), ROW(HILFE, "4", "40"), NULL },
	    { NULL } },
	{ "a hidden 1 and 2 add up to 3: nothing more", 10,
	    "\"result\":{\"akute_gefaehrdung\":1,\"latente_gefaehrdung\":2,"
	    "\"hilfebedarf_ohne_gefaehrdung\":7}",
	    { ROW(AKUTE, ".", "."), ROW(LATENT, ".", "."), ROW(HILFE, "7", "70"), NULL },
	    { NULL } },
	{ "fewer than 3 case analyses: their number is hidden too", 2,
	    "\"result\":{\"akute_gefaehrdung\":1,\"latente_gefaehrdung\":1}",
	    { "wurden <b>.</b>", ROW(AKUTE, ".", "."), ROW(LATENT, ".", "."), NULL },
	    { "wurden <b>2</b>", NULL } },
	{ "no small count: everything printed", 10, "\"result\":{\"latente_gefaehrdung\":10}",
	    { ROW(LATENT, "10", "100"), NULL }, { NULL } },
	{ "case analyses in no category count as one more cell", 10,
	    "\"rating:intake\":{\"1\":4,\"2\":5}",
	    { ROW("1 – gut umgesetzt", ".", "."), ROW("2 – überwiegend umgesetzt", "5", "50"),
	        ROW("ohne Bewertung", ".", "."), NULL },
	    { NULL } },
};

static void
test_committee_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];
		print_message("%s\n", c->name);
		char *html = render(c->n, c->counts, "", true, 3, 5);
		expect_in(html, c->shown, true);
		expect_in(html, c->absent, false);
		free(html);
		/* The full version prints every count. */
		html = render(c->n, c->counts, "", false, 3, 5);
		const char *const no_dot[] = { "<td>.</td>", NULL };
		expect_in(html, no_dot, false);
		free(html);
	}
}

/*
 * The facts: yes + no + not stated is the number of case analyses, so a
 * hidden no takes yes with it, and the share too; the office's own share in
 * the structure section as well, and the rating median beside a line with a
 * hidden count. What is printed whole keeps its share, own value and median.
 */
static void
test_committee_facts_structure_and_medians(void **state)
{
	(void)state;
	const char *counts =
	    "\"direct_impression\":{\"yes\":8,\"no\":2},"
	    "\"child_involved\":{\"yes\":5,\"no\":5},"
	    "\"several_professionals\":{\"yes\":9,\"unknown\":1},"
	    "\"rating:intake\":{\"1\":1,\"2\":9},\"rating:documentation\":{\"2\":10}";
	const char *more =
	    "\"medians\":{\"days_to_first_contact\":5.5,\"rating:intake\":2.0,"
	    "\"rating:documentation\":2.0},\"structure\":["
	    "{\"indicator\":\"direct_impression_percent\",\"own\":80.0,\"peer_group\":\"kind\","
	    "\"peers\":9,\"q1\":70.0,\"median\":75.0,\"q3\":90.0},"
	    "{\"indicator\":\"child_involved_percent\",\"own\":50.0,\"peer_group\":\"kind\","
	    "\"peers\":9,\"q1\":40.0,\"median\":45.0,\"q3\":60.0},"
	    "{\"indicator\":\"several_professionals_percent\",\"own\":100.0,"
	    "\"peer_group\":\"kind\",\"peers\":9,\"q1\":40.0,\"median\":45.0,\"q3\":60.0},"
	    "{\"indicator\":\"median_days_to_first_contact\",\"own\":5.5,"
	    "\"peer_group\":\"kind\",\"peers\":9,\"q1\":3.0,\"median\":4.0,\"q3\":6.0}]";
	char *html = render(10, counts, more, true, 3, 5);
	const char *const shown[] = {
		"<tr><th>Unmittelbarer Eindruck vom Kind</th><td>.</td><td>.</td><td>–</td>"
		"<td>.</td></tr>",
		"<tr><th>Kind oder Jugendliche(r) beteiligt</th><td>5</td><td>5</td><td>–</td>"
		"<td>50</td></tr>",
		"<tr><th>Mehrere Fachkräfte beteiligt</th><td>.</td><td>–</td><td>.</td>"
		"<td>.</td></tr>",
		"<th>Fallanalysen mit unmittelbarem Eindruck vom Kind (%)</th><td>gleiche Art</td>"
		"<td>.</td><td>9</td>"
		"<td>70</td>",
		"<td>gleiche Art</td><td>50</td><td>9</td>",
		"<td>gleiche Art</td><td>.</td><td>9</td><td>40</td>",
		"<td>gleiche Art</td><td>5,5</td><td>9</td>",
		"(Median): <b>5,5</b>",
		"Eingang und Erfassung der Meldung</figcaption>",
		NULL,
	};
	expect_in(html, shown, true);
	/* Intake's median is hidden (its line is not whole), documentation's is not. */
	const char *intake = strstr(html, "Eingang und Erfassung der Meldung</figcaption>");
	const char *documentation = strstr(html, "Dokumentation</figcaption>");
	assert_non_null(intake);
	assert_non_null(documentation);
	assert_non_null(strstr(intake, "Median der Bewertungen: <b>.</b>"));
	assert_true(strstr(intake, "Median der Bewertungen: <b>.</b>") < documentation);
	assert_non_null(strstr(documentation, "Median der Bewertungen: <b>2</b>"));
	free(html);

	/* Fewer than 3 case analyses: no median, no own share. */
	html = render(2, "\"child_involved\":{\"yes\":1,\"no\":1}", more, true, 3, 5);
	const char *const hidden[] = { "(Median): <b>.</b>",
		"<td>gleiche Art</td><td>.</td><td>9</td><td>40</td>", NULL };
	expect_in(html, hidden, true);
	free(html);

	/* The full version prints them all. */
	html = render(10, counts, more, false, 3, 5);
	const char *const full[] = { "<td>8</td><td>2</td><td>–</td><td>80</td>",
		"<td>gleiche Art</td><td>80</td><td>9</td>", "(Median): <b>5,5</b>",
		"Median der Bewertungen: <b>2</b>", NULL };
	expect_in(html, full, true);
	free(html);
}

/* The method text and the rule take the configured thresholds. */
static void
test_committee_thresholds_come_from_the_configuration(void **state)
{
	(void)state;
	const char *counts = "\"result\":{\"akute_gefaehrdung\":4,\"latente_gefaehrdung\":6}";
	char *html = render(10, counts, "", true, 5, 7);
	const char *const five[] = { "Fallzahlen von 1 bis 4 werden nicht ausgewiesen",
		"mindestens 5 ergeben", "Bei weniger als 5 Fallanalysen", "erst ab 5 Fallanalysen",
		"mindestens 7 Jugendämter", ROW(AKUTE, ".", "."), ROW(LATENT, ".", "."), NULL };
	expect_in(html, five, true);
	const char *const not_three[] = { "1 und 2", "drei", "fünf", NULL };
	expect_in(html, not_three, false);
	free(html);

	html = render(10, counts, "", true, 3, 5);
	const char *const three[] = { "Fallzahlen von 1 und 2 werden nicht ausgewiesen",
		"mindestens 5 Jugendämter", ROW(AKUTE, "4", "40"), NULL };
	expect_in(html, three, true);
	free(html);

	html = render(
	    10, "\"result\":{\"akute_gefaehrdung\":1,\"latente_gefaehrdung\":9}", "", true, 1, 5);
	const char *const all[] = { "Alle Fallzahlen werden ausgewiesen", ROW(AKUTE, "1", "10"),
		NULL };
	expect_in(html, all, true);
	free(html);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_committee_lines),
		cmocka_unit_test(test_committee_facts_structure_and_medians),
		cmocka_unit_test(test_committee_thresholds_come_from_the_configuration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
