/*
 * GET /v1/reports/{id}.csv and every list's CSV: report_rows()
 * (services/api/handlers/reports.c) on any JSON value as a report, then the
 * CSV writer (services/api/http.c csv_write) in both dialects over those
 * rows and over the value itself as a list of items. Every row has as many
 * cells as the header, so quoting holds.
 */
#include <event2/buffer.h>

#include "fuzz.h"
#include "handlers.h"
#include "http.h"

/* Records of the CSV (CRLF outside quotes), each with the header's number of cells. */
static void
check_csv(struct evbuffer *out, bool excel, size_t ncolumns, size_t nrows)
{
	size_t len = evbuffer_get_length(out);
	const char *p = (const char *)evbuffer_pullup(out, -1), *end = p + len;
	char sep = excel ? ';' : ',';
	if (excel) {
		FUZZ_ASSERT(len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0);
		p += 3;
	}
	size_t records = 0, cells = 1;
	bool quoted = false;
	for (; p < end; p++) {
		if (quoted) {
			if (*p == '"' && p + 1 < end && p[1] == '"')
				p++;
			else if (*p == '"')
				quoted = false;
		} else if (*p == '"') {
			quoted = true;
		} else if (*p == sep) {
			cells++;
		} else if (*p == '\r') {
			FUZZ_ASSERT(p + 1 < end && p[1] == '\n');
			FUZZ_ASSERT(cells == ncolumns);
			p++;
			records++;
			cells = 1;
		}
	}
	FUZZ_ASSERT(!quoted && cells == 1);
	FUZZ_ASSERT(records == nrows + 1);
}

static void
write_both(const json_t *items, const char *const *columns)
{
	size_t ncolumns = 0;
	while (columns[ncolumns] != NULL)
		ncolumns++;
	for (int excel = 0; excel <= 1; excel++) {
		struct evbuffer *out = evbuffer_new();
		csv_write(out, items, columns, excel);
		check_csv(out, excel, ncolumns, json_array_size(items));
		evbuffer_free(out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const columns[] = { "id", "child.sex", "process", "ratings.intake",
		"endangerment_forms", "findings", "version", "", NULL };
	json_t *report = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (report == NULL)
		return 0;
	json_t *rows = report_rows(report);
	FUZZ_ASSERT(json_is_array(rows));
	write_both(rows, report_csv_columns);
	json_decref(rows);
	write_both(report, columns); /* a list's items */
	json_decref(report);
	return 0;
}
