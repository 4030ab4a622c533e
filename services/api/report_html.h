/*
 * report_html — a report snapshot (the JSON of GET /v1/reports/{id}) as the
 * publishable consolidated report in German: contents, inline SVG charts
 * (bars for distributions, box plots for structural indicators), the tables
 * with the symbols of official statistics, a method section on disclosure
 * control, an A4 print stylesheet; no JavaScript.
 */
#ifndef KQE_API_REPORT_HTML_H
#define KQE_API_REPORT_HTML_H

#include <jansson.h>

/* The whole document, NUL-terminated; free() it. */
char *report_html(const json_t *report);

#endif
