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
 * its youth welfare committee — no free text, no comments, and no count below
 * min_count nor anything that would give one away (docs/procedure-reports.md,
 * "The committee version"); quartiles are said to need min_offices peers.
 * NUL-terminated; free() it.
 */
char *procedure_report_html(const json_t *report, bool committee, long min_count, long min_offices);

/* n as a percentage of total (> 0), to one decimal: the report's shares. */
double procedure_report_share(long long n, long long total);

#endif
