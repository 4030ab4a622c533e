/*
 * report_html — a report snapshot (the JSON of GET /v1/reports/{id}) as the
 * publishable consolidated report in German: contents, inline SVG charts
 * (bars for distributions, box plots for structural indicators), the tables
 * with the symbols of official statistics, a method section on disclosure
 * control, an A4 print stylesheet; no JavaScript.
 */
#ifndef KQE_API_REPORT_HTML_H
#define KQE_API_REPORT_HTML_H

#include <stdbool.h>

#include <jansson.h>

/* The whole document, NUL-terminated; free() it. */
char *report_html(const json_t *report);

/*
 * A § 8 procedure report (the JSON of GET /v1/procedures/{id}/report, borrowed)
 * in German: the full version for the office, or (committee) the version for
 * its youth welfare committee — no comments, counts of 1 to min_count - 1 and
 * whatever would give them away suppressed, medians only from min_count cases.
 * NUL-terminated; free() it.
 */
char *procedure_report_html(const json_t *report, bool committee, long min_count);

#endif
