/*
 * GET /v1/reports/{id}.html and GET /v1/procedures/{id}/report.html
 * (services/api/report_html.c): report_html() and procedure_report_html()
 * (both versions) on any JSON value as a report, as the database might hold
 * it. Each document is complete HTML with no script, whatever the sections'
 * text says.
 */
#include "fuzz.h"
#include "report_html.h"

static void
check(char *html)
{
	FUZZ_ASSERT(html != NULL);
	FUZZ_ASSERT(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	FUZZ_ASSERT(strstr(html, "<script") == NULL);
	FUZZ_ASSERT(strstr(html, "</html>") != NULL);
	free(html);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *report = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (report == NULL)
		return 0;
	check(report_html(report));
	check(procedure_report_html(report, false, 3, 5));
	check(procedure_report_html(report, true, 3, 5));
	json_decref(report);
	return 0;
}
