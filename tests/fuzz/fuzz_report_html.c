/*
 * GET /v1/reports/{id}.html (services/api/report_html.c): report_html() on
 * any JSON value as a report, as the aggregator might have stored it. The
 * document is complete HTML with no script.
 */
#include "fuzz.h"
#include "report_html.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *report = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (report == NULL)
		return 0;
	char *html = report_html(report);
	FUZZ_ASSERT(html != NULL);
	FUZZ_ASSERT(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	FUZZ_ASSERT(strstr(html, "<script") == NULL);
	free(html);
	json_decref(report);
	return 0;
}
