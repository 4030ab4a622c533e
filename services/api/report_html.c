/*
 * report_html — a report snapshot as the publishable consolidated report: one
 * German HTML document with a table of contents, a section per table (an
 * inline SVG chart, then the table with the symbols of official statistics),
 * and a method section saying what was suppressed and why. A print
 * stylesheet lays it out for A4; nothing needs JavaScript.
 *
 * It renders exactly the stored, disclosure-controlled cells: nothing here
 * can reveal more than the JSON of the same report.
 */
#include "report_html.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "kqe/codelists.h"
#include "kqe/util.h"

/* Labels of codes that are not in a code list. */
static const char *const fixed_labels[][2] = {
	{ "provider", "Freie Träger der Pflegekinderhilfe" },
	{ "professional", "Registrierte Fachkräfte (Sitz in NRW)" },
	{ "attended", "Anwesend (Termine angemeldeter Personen)" },
	{ "answered", "Beantwortet" },
	{ "young_people_took_part", "Junge Menschen haben mitgewirkt" },
	{ "unter_3", "unter 3 Jahre" },
	{ "3_bis_unter_6", "3 bis unter 6 Jahre" },
	{ "6_bis_unter_9", "6 bis unter 9 Jahre" },
	{ "9_bis_unter_12", "9 bis unter 12 Jahre" },
	{ "12_bis_unter_14", "12 bis unter 14 Jahre" },
	{ "14_bis_unter_16", "14 bis unter 16 Jahre" },
	{ "16_bis_unter_18", "16 bis unter 18 Jahre" },
	{ "direct_impression", "Unmittelbarer Eindruck vom Kind" },
	{ "several_professionals", "Mehrere Fachkräfte beteiligt" },
	{ "child_involved", "Kind oder Jugendliche(r) beteiligt" },
	{ "completed", "abgeschlossen" },
	{ "in_progress", "in Durchführung" },
	{ "due", "fällig, noch nicht begonnen" },
	{ "overdue", "überfällig" },
	{ "asd_staff_per_10k_under_18", "ASD-Fachkräfte (VZÄ) je 10.000 unter 18-Jährige" },
	{ "cases_per_fte", "Fälle je Vollzeitstelle" },
	{ "vacancy_percent", "Unbesetzte Stellen (%)" },
	{ "turnover_percent", "Personalfluktuation in 12 Monaten (%)" },
	{ "training_hours_per_fte", "Fortbildungsstunden je Vollzeitstelle" },
	{ "direct_impression_percent", "Fallanalysen mit unmittelbarem Eindruck vom Kind (%)" },
	{ "several_professionals_percent", "Fallanalysen mit mehreren Fachkräften (%)" },
	{ "child_involved_percent", "Fallanalysen mit Beteiligung des Kindes (%)" },
	{ "median_days_to_first_contact", "Tage bis zum ersten Kontakt (Median)" },
	{ "offices", "Jugendämter" },
	{ "q1", "1. Quartil" },
	{ "median", "Median" },
	{ "q3", "3. Quartil" },
};

/* Which code list labels a dimension's codes. */
static const char *const dimension_lists[][2] = {
	{ "region", "region" },
	{ "kind", "office_kind" },
	{ "result", "assessment_result" },
	{ "form", "endangerment_form" },
	{ "sex", "sex" },
	{ "reported_by", "reporter" },
	{ "learning_theme", "learning_theme" },
	{ "theme", "learning_theme" },
	{ "status", "topic_status" },
	{ "quality_dimension", "quality_dimension" },
	{ "rating", "rating" },
	{ "advice_kind", "advice_kind" },
	{ "advice_topic", "advice_topic" },
	{ "concept_status", "concept_status" },
	{ "concept_element", "concept_element" },
	{ "programme_role", "programme_role" },
	{ "event_kind", "event_kind" },
	{ "registration_status", "registration_status" },
	{ "service_request_status", "service_request_status" },
};

static const char *
label(const char *dimension, const char *code)
{
	if (code == NULL)
		return "Insgesamt";
	for (size_t i = 0; dimension != NULL && i < ARRAY_LEN(dimension_lists); i++)
		if (strcmp(dimension_lists[i][0], dimension) == 0) {
			const struct code *c =
			    codelist_code(codelist_find(dimension_lists[i][1]), code);
			if (c != NULL)
				return c->label_de;
		}
	for (size_t i = 0; i < ARRAY_LEN(fixed_labels); i++)
		if (strcmp(fixed_labels[i][0], code) == 0)
			return fixed_labels[i][1];
	return code;
}

static void
esc(struct evbuffer *b, const char *s)
{
	for (; s != NULL && *s; s++) {
		switch (*s) {
		case '&':
			evbuffer_add(b, "&amp;", 5);
			break;
		case '<':
			evbuffer_add(b, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(b, "&gt;", 4);
			break;
		case '"':
			evbuffer_add(b, "&quot;", 6);
			break;
		default:
			evbuffer_add(b, s, 1);
		}
	}
}

/* A figure as German official statistics print it. */
static void
figure(char *out, size_t size, const json_t *cell)
{
	const json_t *v = json_object_get(cell, "value");
	if (json_is_true(json_object_get(cell, "suppressed"))) {
		snprintf(out, size, ".");
	} else if (!json_is_number(v)) {
		snprintf(out, size, "x");
	} else if (json_number_value(v) == 0) {
		snprintf(out, size, "\u2013");
	} else if (json_is_integer(v)) {
		/* 12345 → 12.345 */
		char digits[32];
		snprintf(digits, sizeof(digits), "%lld", (long long)json_integer_value(v));
		size_t n = strlen(digits), o = 0;
		for (size_t i = 0; i < n && o + 2 < size; i++) {
			out[o++] = digits[i];
			if (digits[i] != '-' && (n - i - 1) % 3 == 0 && i + 1 < n)
				out[o++] = '.';
		}
		out[o] = '\0';
	} else {
		snprintf(out, size, "%.2f", json_real_value(v));
		char *dot = strchr(out, '.');
		if (dot != NULL) {
			char *end = out + strlen(out) - 1;
			while (end > dot && *end == '0')
				*end-- = '\0';
			if (end == dot)
				*end = '\0';
			else
				*dot = ',';
		}
	}
}

/* The value of dimension d in a cell (NULL: a total over it). */
static const char *
dim_value(const json_t *cell, const char *d)
{
	return json_string_value(json_object_get(cell, d));
}

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * A table's layout: rows keyed by every dimension but the last, columns by
 * the last one (1-D tables: one column). Keys are kept in first-seen order,
 * which is the order the aggregator wrote (totals last).
 */
struct layout {
	size_t ndims;
	const char *dims[4];
	json_t *rows; /* array of cells: the first cell seen of each row */
	json_t *cols; /* array of column codes (JSON null: the total) */
};

/* Appends s (NULL: JSON null) to array unless it is there already. */
static void
add_once(json_t *array, const char *s)
{
	for (size_t k = 0; k < json_array_size(array); k++)
		if (same(json_string_value(json_array_get(array, k)), s))
			return;
	json_array_append_new(array, s ? json_string(s) : json_null());
}

static bool
same_row(const struct layout *l, const json_t *a, const json_t *b)
{
	/* 1-D: a row per value of the one dimension; else per value of all but the last. */
	size_t keys = l->ndims > 1 ? l->ndims - 1 : 1;
	for (size_t d = 0; d < keys; d++)
		if (!same(dim_value(a, l->dims[d]), dim_value(b, l->dims[d])))
			return false;
	return true;
}

static void
layout_build(struct layout *l, const json_t *table)
{
	size_t i;
	json_t *d, *cell;
	memset(l, 0, sizeof(*l));
	json_array_foreach(json_object_get(table, "dimensions"), i, d)
	{
		if (l->ndims < ARRAY_LEN(l->dims))
			l->dims[l->ndims++] = json_string_value(d);
	}
	l->rows = json_array();
	l->cols = json_array();
	json_array_foreach(json_object_get(table, "cells"), i, cell)
	{
		bool found = false;
		for (size_t k = 0; !found && k < json_array_size(l->rows); k++)
			found = same_row(l, json_array_get(l->rows, k), cell);
		if (!found)
			json_array_append(l->rows, cell);
		const char *col = l->ndims > 1 ? dim_value(cell, l->dims[l->ndims - 1]) : NULL;
		if (l->ndims > 1 || json_array_size(l->cols) == 0)
			add_once(l->cols, col);
	}
}

static const json_t *
find_cell(const struct layout *l, const json_t *table, const json_t *row, const char *col)
{
	size_t i;
	json_t *cell;
	json_array_foreach(json_object_get(table, "cells"), i, cell)
	{
		if (same_row(l, row, cell) &&
		    (l->ndims <= 1 || same(dim_value(cell, l->dims[l->ndims - 1]), col)))
			return cell;
	}
	return NULL;
}

/* The label of a row's value of dimension d: a title the cell carries (`<d>_title`, the
 * programmes'), else the code's. */
static const char *
row_label(const json_t *row, const char *d)
{
	char key[64];
	snprintf(key, sizeof(key), "%s_title", d);
	const char *title = json_string_value(json_object_get(row, key));
	return title != NULL ? title : label(d, dim_value(row, d));
}

/* A row's label, plain text: its dimension values, innermost first ("Median – LVR"). */
static void
row_text(char *out, size_t size, const struct layout *l, const json_t *row)
{
	size_t n = l->ndims > 1 ? l->ndims - 1 : 1, used = 0;
	out[0] = '\0';
	for (size_t k = n; k-- > 0 && used < size;) {
		int w = snprintf(out + used, size - used, "%s%s", row_label(row, l->dims[k]),
		    k > 0 ? " \u2013 " : "");
		used += w > 0 ? (size_t)w : 0;
	}
}

static void
column_head(char *out, size_t size, const struct layout *l, const json_t *col)
{
	snprintf(out, size, "%s",
	    l->ndims <= 1 ? "Wert" : label(l->dims[l->ndims - 1], json_string_value(col)));
}

/*
 * The table with the figures as official statistics print them. Wide tables
 * (many categories, few groups: learning themes) are turned so the categories
 * run down the page.
 */
static void
html_table(struct evbuffer *b, const struct layout *l, const json_t *table)
{
	size_t i, j, nrows = json_array_size(l->rows), ncols = json_array_size(l->cols);
	bool turned = ncols > 6 && ncols > nrows;
	size_t outer = turned ? ncols : nrows, inner = turned ? nrows : ncols;
	char text[200];
	evbuffer_add_printf(b, "<table><thead><tr><th></th>");
	for (j = 0; j < inner; j++) {
		if (turned)
			row_text(text, sizeof(text), l, json_array_get(l->rows, j));
		else
			column_head(text, sizeof(text), l, json_array_get(l->cols, j));
		evbuffer_add_printf(b, "<th>");
		esc(b, text);
		evbuffer_add_printf(b, "</th>");
	}
	evbuffer_add_printf(b, "</tr></thead><tbody>");
	for (i = 0; i < outer; i++) {
		if (turned)
			column_head(text, sizeof(text), l, json_array_get(l->cols, i));
		else
			row_text(text, sizeof(text), l, json_array_get(l->rows, i));
		evbuffer_add_printf(b, "<tr><th scope=\"row\">");
		esc(b, text);
		evbuffer_add_printf(b, "</th>");
		for (j = 0; j < inner; j++) {
			const json_t *row = json_array_get(l->rows, turned ? j : i);
			const json_t *col = json_array_get(l->cols, turned ? i : j);
			char f[48] = "";
			const json_t *cell = find_cell(l, table, row, json_string_value(col));
			if (cell != NULL)
				figure(f, sizeof(f), cell);
			evbuffer_add_printf(b, "<td>%s</td>", f);
		}
		evbuffer_add_printf(b, "</tr>");
	}
	evbuffer_add_printf(b, "</tbody></table>");
}

/* One bar of a chart: a label and a cell (NULL cell: nothing to draw). */
struct bar {
	char label[160];
	const json_t *cell;
};

#define CHART_W 640
#define LABEL_W 250
#define BAR_H 16
#define BAR_GAP 6

static void
bar_chart(struct evbuffer *b, const struct bar *bars, size_t n, const char *title)
{
	double max = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_object_get(bars[i].cell, "value");
		if (json_is_number(v) && json_number_value(v) > max)
			max = json_number_value(v);
	}
	int height = (int)n * (BAR_H + BAR_GAP) + BAR_GAP;
	evbuffer_add_printf(b,
	    "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">"
	    "<title>",
	    CHART_W, height, CHART_W, height);
	esc(b, title);
	evbuffer_add_printf(b, "</title>");
	for (size_t i = 0; i < n; i++) {
		int y = BAR_GAP + (int)i * (BAR_H + BAR_GAP);
		const json_t *v = json_object_get(bars[i].cell, "value");
		double w = max > 0 && json_is_number(v)
		               ? json_number_value(v) / max * (CHART_W - LABEL_W - 70)
		               : 0;
		char f[48];
		figure(f, sizeof(f), bars[i].cell);
		evbuffer_add_printf(
		    b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", LABEL_W - 6, y + BAR_H - 4);
		/* The label area holds some 44 characters; the table below has the full label. */
		char shown[sizeof(bars[i].label) + 4];
		snprintf(shown, sizeof(shown), "%s", bars[i].label);
		size_t cut = 44;
		if (strlen(shown) > cut + 3) {
			while (cut > 0 && ((unsigned char)shown[cut] & 0xC0) == 0x80)
				cut--; /* not inside a UTF-8 sequence */
			memcpy(shown + cut, "\u2026", sizeof("\u2026"));
		}
		esc(b, shown);
		evbuffer_add_printf(b,
		    "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>"
		    "<text x=\"%.1f\" y=\"%d\">%s</text>",
		    LABEL_W, y, w, BAR_H, LABEL_W + w + 4, y + BAR_H - 4, f);
	}
	evbuffer_add_printf(b, "</svg>");
}

/*
 * Bars of a distribution: the total row over the columns if the table has
 * one, else each row's total (or its single figure). Nothing for tables
 * without either.
 */
static void
distribution_chart(struct evbuffer *b, const struct layout *l, const json_t *table)
{
	size_t i, n = 0;
	json_t *row, *col;
	struct bar *bars =
	    xcalloc(json_array_size(l->rows) + json_array_size(l->cols) + 1, sizeof(*bars));
	const json_t *total_row = NULL;
	json_array_foreach(l->rows, i, row)
	{
		if (l->ndims == 2 && dim_value(row, l->dims[0]) == NULL)
			total_row = row;
	}
	if (total_row != NULL) {
		json_array_foreach(l->cols, i, col)
		{
			if (json_is_null(col))
				continue;
			snprintf(bars[n].label, sizeof(bars[n].label), "%s",
			    label(l->dims[1], json_string_value(col)));
			bars[n++].cell = find_cell(l, table, total_row, json_string_value(col));
		}
	} else {
		const char *last = l->ndims > 1 ? NULL : "";
		json_array_foreach(l->rows, i, row)
		{
			const json_t *cell = l->ndims <= 1 ? row : find_cell(l, table, row, last);
			if (cell == NULL)
				continue;
			row_text(bars[n].label, sizeof(bars[n].label), l, row);
			bars[n++].cell = cell;
		}
	}
	if (n > 0)
		bar_chart(b, bars, n, json_string_value(json_object_get(table, "title")));
	free(bars);
}

static double
stat_value(const json_t *table, const char *group_dim, const char *group, const char *indicator,
    const char *statistic, bool *shown)
{
	size_t i;
	json_t *cell;
	json_array_foreach(json_object_get(table, "cells"), i, cell)
	{
		if (same(dim_value(cell, group_dim), group) &&
		    same(dim_value(cell, "indicator"), indicator) &&
		    same(dim_value(cell, "statistic"), statistic)) {
			const json_t *v = json_object_get(cell, "value");
			*shown = json_is_number(v);
			return json_is_number(v) ? json_number_value(v) : 0;
		}
	}
	*shown = false;
	return 0;
}

/* Box plots (first quartile to third, median line) per indicator and group. */
static void
box_plots(struct evbuffer *b, const struct layout *l, const json_t *table)
{
	size_t i, k;
	json_t *row;
	const char *group_dim = l->dims[0];
	json_t *indicators = json_array(), *groups = json_array();
	json_array_foreach(l->rows, i, row)
	{
		if (dim_value(row, "indicator") != NULL)
			add_once(indicators, dim_value(row, "indicator"));
		add_once(groups, dim_value(row, group_dim));
	}
	json_t *ind;
	json_array_foreach(indicators, i, ind)
	{
		const char *indicator = json_string_value(ind);
		double max = 0;
		json_t *g;
		json_array_foreach(groups, k, g)
		{
			bool shown;
			double q3 = stat_value(
			    table, group_dim, json_string_value(g), indicator, "q3", &shown);
			if (shown && q3 > max)
				max = q3;
		}
		max = max > 0 ? max * 1.1 : 1;
		int height = (int)json_array_size(groups) * (BAR_H + BAR_GAP) + BAR_GAP + 18;
		evbuffer_add_printf(b, "<figure><figcaption>");
		esc(b, label("indicator", indicator));
		evbuffer_add_printf(b,
		    "</figcaption><svg class=\"chart\" role=\"img\" viewBox=\"0 0 %d %d\" "
		    "width=\"%d\" height=\"%d\"><title>Box-Plot: ",
		    CHART_W, height, CHART_W, height);
		esc(b, label("indicator", indicator));
		evbuffer_add_printf(b, "</title>");
		double scale = (CHART_W - LABEL_W - 20) / max;
		json_array_foreach(groups, k, g)
		{
			int y = BAR_GAP + (int)k * (BAR_H + BAR_GAP);
			bool s1, s2, s3;
			const char *grp = json_string_value(g);
			double q1 = stat_value(table, group_dim, grp, indicator, "q1", &s1);
			double md = stat_value(table, group_dim, grp, indicator, "median", &s2);
			double q3 = stat_value(table, group_dim, grp, indicator, "q3", &s3);
			evbuffer_add_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
			    LABEL_W - 6, y + BAR_H - 4);
			esc(b, label(group_dim, grp));
			evbuffer_add_printf(b, "</text>");
			if (s1 && s2 && s3) {
				evbuffer_add_printf(b,
				    "<rect class=\"box\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
				    "height=\"%d\"/><line class=\"median\" x1=\"%.1f\" y1=\"%d\" "
				    "x2=\"%.1f\" y2=\"%d\"/>",
				    LABEL_W + q1 * scale, y, (q3 - q1) * scale, BAR_H,
				    LABEL_W + md * scale, y, LABEL_W + md * scale, y + BAR_H);
			} else {
				evbuffer_add_printf(b,
				    "<text x=\"%d\" y=\"%d\">. (zu wenige Jugendämter)</text>",
				    LABEL_W + 4, y + BAR_H - 4);
			}
		}
		int axis = height - 6;
		evbuffer_add_printf(b,
		    "<text x=\"%d\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\" "
		    "text-anchor=\"end\">%.1f</text></svg></figure>",
		    LABEL_W, axis, CHART_W - 20, axis, max);
	}
	json_decref(indicators);
	json_decref(groups);
}

/* A table's title with the grouping of its rows: the same statistic appears per region and per
 * kind. */
static void
table_title(struct evbuffer *b, const json_t *table)
{
	const char *title = json_string_value(json_object_get(table, "title"));
	esc(b, title);
	const json_t *dims = json_object_get(table, "dimensions");
	const char *first = json_string_value(json_array_get(dims, 0));
	if (first != NULL && strcmp(first, "region") == 0 &&
	    (title == NULL || strstr(title, "Landesjugendamt") == NULL))
		evbuffer_add_printf(b, " \u2013 nach Landesjugendamt");
	else if (first != NULL && strcmp(first, "kind") == 0)
		evbuffer_add_printf(b, " \u2013 nach Art des Jugendamts");
	else if (first != NULL && strcmp(first, "programme") == 0)
		evbuffer_add_printf(b, " \u2013 nach Programm");
}

static const char *const style =
    "body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:10pt;color:#111;"
    "max-width:190mm;margin:1em auto;padding:0 1em;line-height:1.4}"
    "h1{font-size:18pt;margin-bottom:0.2em}h2{font-size:13pt;margin-top:1.6em;"
    "border-bottom:1px solid #1f4e8c;color:#1f4e8c}"
    "table{border-collapse:collapse;font-size:8.5pt;margin:0.6em 0;width:100%;"
    "table-layout:fixed}th,td{border:1px solid #aaa;padding:2px 4px;text-align:right;"
    "vertical-align:top;hyphens:auto;overflow-wrap:anywhere}tbody th{width:28%}"
    "thead th{background:#e8eef6;text-align:center}tbody th{text-align:left;font-weight:normal}"
    "svg.chart{display:block;max-width:100%;height:auto;font-size:10px}"
    "svg .bar{fill:#1f4e8c}svg .box{fill:#9bb7dd;stroke:#1f4e8c}"
    "svg .median{stroke:#111;stroke-width:2}figure{margin:0.4em 0}"
    "figcaption{font-weight:bold;font-size:9pt}.meta{color:#444}nav ol{columns:2}"
    "@page{size:A4;margin:18mm 15mm 20mm 15mm}"
    "@media print{body{max-width:none;margin:0;padding:0;font-size:9.5pt}"
    "nav{break-after:page}section{break-inside:avoid-page}h2{break-after:avoid}"
    "a{color:inherit;text-decoration:none}thead{display:table-header-group}"
    "tr{break-inside:avoid}}";

/* The head of a document: "<what> <a> <b>" as its title, the style sheet. */
static void
document_begin(struct evbuffer *b, const char *what, const char *a, const char *c)
{
	evbuffer_add_printf(b, "<!DOCTYPE html><html lang=\"de\"><head><meta charset=\"utf-8\">"
	                       "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	esc(b, what);
	evbuffer_add_printf(b, " ");
	esc(b, a);
	evbuffer_add_printf(b, " ");
	esc(b, c);
	evbuffer_add_printf(b, "</title><style>%s</style></head><body>", style);
}

/* The document as a NUL-terminated string (free() it); frees b. */
static char *
document_end(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *out = xcalloc(len + 1, 1);
	evbuffer_remove(b, out, len);
	evbuffer_free(b);
	return out;
}

/* The cells of a report, and how many were suppressed for each reason. */
static const char *const reasons[] = { "min_count", "dominance", "secondary", "min_offices" };

static long
count_cells(const json_t *report, long by_reason[ARRAY_LEN(reasons)])
{
	size_t i, j;
	json_t *table, *cell;
	long cells = 0;
	json_array_foreach(json_object_get(report, "tables"), i, table)
	{
		json_array_foreach(json_object_get(table, "cells"), j, cell)
		{
			cells++;
			const char *why = json_string_value(json_object_get(cell, "reason"));
			for (size_t k = 0; why && k < ARRAY_LEN(reasons); k++)
				if (strcmp(why, reasons[k]) == 0)
					by_reason[k]++;
		}
	}
	return cells;
}

/* Disclosure control by the cell-key method on atoms (docs/disclosure.md). */
static void
method_cell_key(struct evbuffer *b, const json_t *rules, long cells, long hidden)
{
	long long deviation =
	    (long long)json_integer_value(json_object_get(rules, "max_deviation"));
	long long js = (long long)json_integer_value(json_object_get(rules, "js"));
	evbuffer_add_printf(b,
	    "<section id=\"methodik\"><h2>Methodische Hinweise</h2>"
	    "<h3>Geheimhaltung</h3><p>Keine Angabe in diesem Bericht darf Rückschlüsse auf ein "
	    "einzelnes Kind, einen einzelnen Fall oder ein einzelnes Jugendamt zulassen, auch "
	    "nicht im Vergleich mit anderen Tabellen, Berichten oder Zeiträumen. Die Fallzahlen "
	    "sind deshalb mit der Cell-Key-Methode geheim gehalten, einem Verfahren der "
	    "amtlichen Statistik. Verändert werden die Fallzahlen der feinsten Gliederung "
	    "(Jahr, Bereich des Landesjugendamts, Art des Jugendamts, Merkmal): jede um einen "
	    "kleinen Wert, höchstens um %lld nach oben oder unten (Varianz %.2f, ab %lld "
	    "Fällen %.2f). Welcher Wert das ist, hängt allein von den gezählten Fällen ab: "
	    "Dieselben Fälle ergeben in jeder Tabelle, in jedem Bericht und bei jeder Abfrage "
	    "dieselbe Zahl.</p><ul>"
	    "<li>Alle übrigen Zahlen, auch Summen und Zyklen, sind Summen dieser veränderten "
	    "Werte. Die Tabellen gehen daher auf, in sich und untereinander; eine Zahl aus "
	    "vielen Einzelwerten kann dafür um mehr als den genannten Höchstwert vom wahren "
	    "Wert abweichen, im Verhältnis zu ihrer Größe aber wenig.</li>"
	    "<li>Fallzahlen von 1 bis %lld werden nie ausgewiesen; eine ausgewiesene Null "
	    "(\u2013) ist eine echte Null.</li>"
	    "<li>Anteile werden aus den veränderten Fallzahlen berechnet.</li>"
	    "<li><b>Vergleichswerte:</b> Mediane und Quartile über Jugendämter werden nur "
	    "ausgewiesen, wenn mindestens %lld Jugendämter beitragen; Mediane außerdem nur ab "
	    "%lld Fällen und wenn kein Jugendamt mehr als %.0f %% der Fälle stellt. Minimum und "
	    "Maximum werden nie gezeigt, weil sie Werte einzelner Jugendämter wären.</li></ul>",
	    deviation, json_number_value(json_object_get(rules, "variance")), deviation + js + 1,
	    json_number_value(json_object_get(rules, "variance_large")), js,
	    (long long)json_integer_value(json_object_get(rules, "min_offices")),
	    (long long)json_integer_value(json_object_get(rules, "min_count")),
	    json_number_value(json_object_get(rules, "dominance")) * 100);
	evbuffer_add_printf(b,
	    "<p>Von %ld Angaben dieses Berichts sind %ld mangels ausreichend vieler "
	    "Jugendämter oder Fälle nicht ausgewiesen.</p>",
	    cells, hidden);
}

/* Disclosure control by minimum counts and suppression (reports made before the cell-key
 * method). */
static void
method_min_count(struct evbuffer *b, const json_t *rules, long cells, const long by_reason[])
{
	evbuffer_add_printf(b,
	    "<section id=\"methodik\"><h2>Methodische Hinweise</h2>"
	    "<h3>Geheimhaltung</h3><p>Keine Angabe in diesem Bericht darf Rückschlüsse auf ein "
	    "einzelnes Kind, einen einzelnen Fall oder ein einzelnes Jugendamt zulassen. Vor der "
	    "Veröffentlichung durchläuft daher jede Tabelle eine statistische "
	    "Geheimhaltungsprüfung:</p><ul>"
	    "<li><b>Mindestfallzahl:</b> Fallzahlen von 1 bis %lld werden nicht ausgewiesen.</li>"
	    "<li><b>Dominanz:</b> Stammt mehr als %.0f %% eines Wertes aus einem einzigen "
	    "Jugendamt, wird er nicht ausgewiesen.</li>"
	    "<li><b>Vergleichswerte:</b> Mediane, Quartile und Anteile über Jugendämter werden nur "
	    "ausgewiesen, wenn mindestens %lld Jugendämter beitragen. Minimum und Maximum werden "
	    "nie gezeigt, weil sie Werte einzelner Jugendämter wären.</li>"
	    "<li><b>Sekundäre Geheimhaltung:</b> Wo Summen veröffentlicht werden, werden "
	    "zusätzliche Felder gesperrt, damit ein gesperrter Wert nicht aus der Summe "
	    "zurückgerechnet werden kann. Anteile werden gesperrt, wenn Zähler oder Gegenteil "
	    "gesperrt sind.</li></ul>",
	    (long long)json_integer_value(json_object_get(rules, "min_count")) - 1,
	    json_number_value(json_object_get(rules, "dominance")) * 100,
	    (long long)json_integer_value(json_object_get(rules, "min_offices")));
	evbuffer_add_printf(b,
	    "<p>Von %ld Angaben dieses Berichts sind gesperrt: %ld wegen der Mindestfallzahl, "
	    "%ld wegen Dominanz, %ld sekundär, %ld mangels ausreichend vieler Jugendämter.</p>",
	    cells, by_reason[0], by_reason[1], by_reason[2], by_reason[3]);
}

/* The symbols, and which date places a record in a year. */
static void
method_legend(struct evbuffer *b)
{
	evbuffer_add_printf(b,
	    "<h3>Zeichenerklärung</h3><table class=\"legend\"><tbody>"
	    "<tr><th scope=\"row\">.</th><td>Zahlenwert unbekannt oder geheim zu halten</td></tr>"
	    "<tr><th scope=\"row\">\u2013</th><td>genau null</td></tr>"
	    "<tr><th scope=\"row\">x</th><td>Tabellenfach gesperrt, weil Aussage nicht sinnvoll"
	    "</td></tr></tbody></table>"
	    "<h3>Datengrundlage</h3><p>Fallanalysen, Strukturerhebungen und "
	    "Qualitätsentwicklungsthemen der Verfahren nach § 8 Landeskinderschutzgesetz NRW. "
	    "Welches Datum eine Angabe einem Berichtsjahr zuordnet:</p><ul>"
	    "<li><b>Fallanalysen:</b> der Monat, in dem die Gefährdungseinschätzung nach § 8a "
	    "SGB VIII abgeschlossen wurde (Abschlussmonat).</li>"
	    "<li><b>Qualitätsentwicklungsthemen:</b> der Tag, an dem das Thema erfasst wurde.</li>"
	    "<li><b>Strukturerhebungen:</b> der Stichtag der Erhebung; je Jugendamt zählt die "
	    "jüngste Erhebung des Zeitraums.</li></ul>");
}

/* Which cycle, which inputs, which release, the content hash; closes the section. */
/*
 * The audit chain's signed head when the report was built (docs/security.md, "Audit"): kept
 * with the report, it shows a later rewrite of the audit history.
 */
static void
audit_head_note(struct evbuffer *b, const json_t *head)
{
	if (!json_is_object(head))
		return;
	evbuffer_add_printf(b,
	    "<p>Zugriffs- und Änderungsprotokoll: Stand Nr. %lld, Prüfwert <code>",
	    (long long)json_integer_value(json_object_get(head, "seq")));
	esc(b, json_string_value(json_object_get(head, "hash")));
	evbuffer_add_printf(b, "</code>, signiert am ");
	esc(b, json_string_value(json_object_get(head, "signed_at")));
	evbuffer_add_printf(b, " mit Schlüssel <code>");
	esc(b, json_string_value(json_object_get(head, "key_id")));
	evbuffer_add_printf(b, "</code>, Signatur <code>");
	esc(b, json_string_value(json_object_get(head, "signature")));
	evbuffer_add_printf(b, "</code>. Wer diese Angaben aufbewahrt, kann später prüfen lassen, "
	                       "dass das Protokoll bis hierher unverändert ist.</p>");
}

static void
method_sources(struct evbuffer *b, const json_t *report)
{
	const json_t *wm = json_object_get(report, "watermark");
	evbuffer_add_printf(b,
	    "<p>Ein Zyklus (z. B. 2023–2028) umfasst "
	    "die Angaben der Verfahren dieses Zyklus. Stand der Eingaben: %lld "
	    "Fallanalysen, übernommen bis ",
	    (long long)json_integer_value(json_object_get(wm, "case_analyses")));
	esc(b, json_string_value(json_object_get(wm, "case_analyses_updated_at")));
	const json_t *release = json_object_get(wm, "release");
	if (json_is_object(release)) {
		evbuffer_add_printf(b,
		    ". Die Fallzahlen stammen aus der Veröffentlichung Nr. %lld mit Stichtag ",
		    (long long)json_integer_value(json_object_get(release, "id")));
		esc(b, json_string_value(json_object_get(release, "cut_off")));
		evbuffer_add_printf(b, "%s",
		    json_is_true(json_object_get(release, "final"))
		        ? "; sie sind endgültig und ändern sich nicht mehr"
		        : "; sie sind vorläufig: Eine spätere Veröffentlichung übernimmt Änderungen, "
		          "sobald sich hinreichend viele Angaben des Zeitraums geändert haben");
	} else if (release != NULL) {
		evbuffer_add_printf(b, ". Es gibt noch keine Veröffentlichung der Fallzahlen");
	}
	evbuffer_add_printf(b, ". Prüfsumme des Inhalts: <code>");
	esc(b, json_string_value(json_object_get(report, "content_hash")));
	evbuffer_add_printf(b, "</code>.</p>");
	audit_head_note(b, json_object_get(report, "audit_head"));
	evbuffer_add_printf(b, "</section>");
}

static void
method_section(struct evbuffer *b, const json_t *report)
{
	const json_t *rules = json_object_get(json_object_get(report, "watermark"), "disclosure");
	long by_reason[ARRAY_LEN(reasons)] = { 0 };
	long cells = count_cells(report, by_reason);
	const char *method = json_string_value(json_object_get(rules, "method"));
	if (method != NULL && strcmp(method, "cell_key") == 0)
		method_cell_key(
		    b, rules, cells, by_reason[0] + by_reason[1] + by_reason[2] + by_reason[3]);
	else
		method_min_count(b, rules, cells, by_reason);
	method_legend(b);
	method_sources(b, report);
}

char *
report_html(const json_t *report)
{
	struct evbuffer *b = evbuffer_new();
	const char *scope = json_string_value(json_object_get(report, "scope"));
	const char *region =
	    json_string_value(json_object_get(json_object_get(report, "params"), "region"));
	const char *period = json_string_value(json_object_get(report, "period"));
	const char *area = region ? label("region", region) : "Nordrhein-Westfalen";
	(void)scope;

	document_begin(b, "Kinderschutz-Qualitätsbericht", area, period);
	evbuffer_add_printf(b, "<header id=\"titel\"><h1>Qualitätsentwicklung im Kinderschutz</h1>"
	                       "<p>Konsolidierter Bericht nach dem Landeskinderschutzgesetz NRW<br>"
	                       "Gebiet: <b>");
	esc(b, area);
	evbuffer_add_printf(b, "</b> · Zeitraum: <b>");
	esc(b, period);
	evbuffer_add_printf(b, "</b></p><p class=\"meta\">Erstellt ");
	esc(b, json_string_value(json_object_get(report, "generated_at")));
	evbuffer_add_printf(b, " · Bericht ");
	esc(b, json_string_value(json_object_get(report, "id")));
	evbuffer_add_printf(b, "</p></header><nav id=\"inhalt\"><h2>Inhalt</h2><ol>");

	size_t i;
	json_t *table;
	json_array_foreach(json_object_get(report, "tables"), i, table)
	{
		evbuffer_add_printf(b, "<li><a href=\"#t-");
		esc(b, json_string_value(json_object_get(table, "id")));
		evbuffer_add_printf(b, "\">");
		table_title(b, table);
		evbuffer_add_printf(b, "</a></li>");
	}
	evbuffer_add_printf(
	    b, "<li><a href=\"#methodik\">Methodische Hinweise</a></li></ol></nav><main>");
	json_array_foreach(json_object_get(report, "tables"), i, table)
	{
		struct layout l;
		layout_build(&l, table);
		evbuffer_add_printf(b, "<section class=\"table\" id=\"t-");
		esc(b, json_string_value(json_object_get(table, "id")));
		evbuffer_add_printf(b, "\"><h2>%zu. ", i + 1);
		table_title(b, table);
		evbuffer_add_printf(b, "</h2>");
		const char *measure = json_string_value(json_object_get(table, "measure"));
		if (measure != NULL && strcmp(measure, "quantiles") == 0)
			box_plots(b, &l, table);
		else
			distribution_chart(b, &l, table);
		html_table(b, &l, table);
		evbuffer_add_printf(b, "</section>");
		json_decref(l.rows);
		json_decref(l.cols);
	}
	evbuffer_add_printf(b, "</main>");
	method_section(b, report);
	evbuffer_add_printf(b, "</body></html>\n");

	return document_end(b);
}

/* ---- the § 8 procedure report (docs/procedure-reports.md) ---- */

/*
 * The lines of counts of the case analyses: rollup dimension, heading, label
 * dimension, and what the case analyses in none of its categories are called
 * (NULL for a line where one case analysis may count several times, so that
 * the line has no total).
 */
static const char *const case_lines[][4] = {
	{ "result", "Ergebnis der Gefährdungseinschätzung", "result", "ohne Angabe" },
	{ "form", "Art der Gefährdung (bei Kindeswohlgefährdung)", "form", NULL },
	{ "age_group", "Alter des Kindes", "age_group", "ohne Angabe" },
	{ "child_sex", "Geschlecht des Kindes", "sex", "ohne Angabe" },
	{ "reported_by", "Bekanntmachende Stelle", "reported_by", "ohne Angabe" },
	{ "learning_theme", "Lernthemen der Fallanalysen", "learning_theme", NULL },
};

/* The yes/no facts of the process, and the structural indicator that is each one's share. */
static const char *const facts[][2] = {
	{ "direct_impression", "direct_impression_percent" },
	{ "several_professionals", "several_professionals_percent" },
	{ "child_involved", "child_involved_percent" },
};

#define FACTS ARRAY_LEN(facts)

/*
 * One rendering of a procedure report, and what it may print, decided once:
 * the full version prints every figure; the committee version follows the
 * rules of docs/procedure-reports.md ("The committee version").
 */
struct procedure_doc {
	struct evbuffer *b;
	const json_t *report, *gen, *counts;
	bool committee;
	long min_count, min_offices;
	long long cases; /* the procedure's case analyses */
	bool cases_shown; /* … printed */
	bool days_shown; /* the median days to first contact printed */
	json_t *fact_line[FACTS]; /* the cells yes, no, unknown of each fact */
	bool fact_whole[FACTS]; /* every cell of that line printed */
};

double
procedure_report_share(long long n, long long total)
{
	return total > 0 ? round(1000.0 * (double)n / (double)total) / 10.0 : 0;
}

static bool
is_hidden(const json_t *cell)
{
	return json_is_true(json_object_get(cell, "suppressed"));
}

static long long
count_of(const json_t *cell)
{
	return json_integer_value(json_object_get(cell, "value"));
}

/* a + b of counts (a >= 0), saturating: the JSON rendered may hold any number. */
static long long
count_add(long long a, long long b)
{
	if (b <= 0)
		return a;
	return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

/*
 * The committee's rule for one line of counts, as if its total were printed
 * (for the lines of one category per case analysis it is, the number of case
 * analyses): counts of 1 to min_count - 1 are hidden; if any is, further
 * counts, smallest first, until the hidden ones add up to min_count or more.
 * So neither a hidden count nor a small sum of hidden counts is the total
 * minus the printed ones. Should all of them add up to less, the total itself
 * is below min_count: for the number of case analyses, procedure_doc_init()
 * hides it.
 */
static void
protect_line(json_t *cells, long min_count)
{
	long long sum = 0;
	size_t i;
	json_t *cell;
	json_array_foreach(cells, i, cell)
	{
		if (count_of(cell) > 0 && count_of(cell) < min_count) {
			json_object_set_new(cell, "suppressed", json_true());
			sum = count_add(sum, count_of(cell));
		}
	}
	while (sum > 0 && sum < min_count) {
		json_t *next = NULL;
		json_array_foreach(cells, i, cell)
		{
			if (!is_hidden(cell) && count_of(cell) > 0 &&
			    (next == NULL || count_of(cell) < count_of(next)))
				next = cell;
		}
		if (next == NULL)
			break;
		json_object_set_new(next, "suppressed", json_true());
		sum = count_add(sum, count_of(next));
	}
}

static const struct codelist *
code_list(const char *label_dim)
{
	for (size_t i = 0; label_dim != NULL && i < ARRAY_LEN(dimension_lists); i++)
		if (strcmp(dimension_lists[i][0], label_dim) == 0)
			return codelist_find(dimension_lists[i][1]);
	return NULL;
}

static void
add_cell(json_t *cells, const char *code, const char *text, long long n)
{
	json_array_append_new(cells, json_pack("{s:s,s:s,s:I,s:b}", "code", code, "label", text,
	                                 "value", (json_int_t)n, "suppressed", false));
}

/* For the committee, protects a line (protect_line); a hidden count's value becomes null:
 * nothing a chart could draw as a bar's length. */
static void
line_protect(const struct procedure_doc *d, json_t *cells)
{
	if (!d->committee)
		return;
	protect_line(cells, d->min_count);
	size_t i;
	json_t *cell;
	json_array_foreach(cells, i, cell)
	{
		if (is_hidden(cell))
			json_object_set_new(cell, "value", json_null());
	}
}

/*
 * A line of the procedure's counts ({category: n}) as a new array of cells
 * {code, label, value, suppressed}, in code-list order; with rest, one more
 * cell of that label for the case analyses in none of the categories, so
 * that the line adds up to the number of case analyses. Protected for the
 * committee (line_protect).
 */
static json_t *
line_cells(
    const struct procedure_doc *d, const json_t *counts, const char *label_dim, const char *rest)
{
	json_t *cells = json_array(), *n;
	const struct codelist *list = code_list(label_dim);
	const char *code;
	long long sum = 0;
	for (size_t i = 0; list != NULL && i < list->count; i++)
		if ((n = json_object_get(counts, list->codes[i].code)) != NULL)
			add_cell(cells, list->codes[i].code, list->codes[i].label_de,
			    json_integer_value(n));
	json_object_foreach((json_t *)counts, code, n)
	{
		if (!codelist_has(list, code))
			add_cell(cells, code, label(label_dim, code), json_integer_value(n));
		sum = count_add(sum, json_integer_value(n));
	}
	if (rest != NULL && d->cases > sum)
		add_cell(cells, "", rest, d->cases - sum);
	line_protect(d, cells);
	return cells;
}

/* A fact's line: the cells yes, no and not stated (the three always, in this order). */
static json_t *
fact_cells(const struct procedure_doc *d, const char *fact)
{
	static const char *const answers[][2] = { { "yes", "ja" }, { "no", "nein" },
		{ "unknown", "ohne Angabe" } };
	const json_t *counts = json_object_get(d->counts, fact);
	json_t *cells = json_array();
	for (size_t i = 0; i < ARRAY_LEN(answers); i++)
		add_cell(cells, answers[i][0], answers[i][1],
		    json_integer_value(json_object_get(counts, answers[i][0])));
	line_protect(d, cells);
	return cells;
}

static bool
line_whole(const json_t *cells)
{
	size_t i;
	json_t *cell;
	json_array_foreach(cells, i, cell)
	{
		if (is_hidden(cell))
			return false;
	}
	return true;
}

/* Decides what this rendering prints of the case analyses as a whole. */
static void
procedure_doc_init(
    struct procedure_doc *d, const json_t *report, bool committee, long min_count, long min_offices)
{
	memset(d, 0, sizeof(*d));
	d->b = evbuffer_new();
	d->report = report;
	d->gen = json_object_get(report, "generated");
	d->counts = json_object_get(d->gen, "counts");
	d->committee = committee;
	d->min_count = min_count;
	d->min_offices = min_offices;
	d->cases = json_integer_value(json_object_get(d->gen, "case_analyses"));
	d->cases_shown = !committee || d->cases == 0 || d->cases >= min_count;
	d->days_shown =
	    json_object_get(json_object_get(d->gen, "medians"), "days_to_first_contact") != NULL &&
	    (!committee || d->cases >= min_count);
	for (size_t i = 0; i < FACTS; i++) {
		d->fact_line[i] = fact_cells(d, facts[i][0]);
		d->fact_whole[i] = line_whole(d->fact_line[i]);
	}
}

/* A figure cell: the value, or "." where hidden. */
static void
figure_cell(struct evbuffer *b, const char *tag, json_t *value, bool suppressed)
{
	json_t *cell =
	    json_pack("{s:o,s:b}", "value", value ? value : json_null(), "suppressed", suppressed);
	char f[48];
	figure(f, sizeof(f), cell);
	evbuffer_add_printf(b, "<%s>%s</%s>", tag, f, tag);
	json_decref(cell);
}

/* A count's share of the procedure's case analyses, "." where the count is hidden. */
static void
share_cell(const struct procedure_doc *d, const json_t *cell)
{
	bool shown = !is_hidden(cell) && d->cases > 0;
	figure_cell(d->b, "td",
	    shown ? json_real(procedure_report_share(count_of(cell), d->cases)) : NULL, !shown);
}

/* A line as a bar chart and a table of counts and shares. */
static void
line_section(const struct procedure_doc *d, const char *heading, const json_t *cells)
{
	size_t n = json_array_size(cells), i;
	evbuffer_add_printf(d->b, "<figure><figcaption>");
	esc(d->b, heading);
	evbuffer_add_printf(d->b, "</figcaption>");
	if (n == 0) {
		evbuffer_add_printf(d->b, "<p>Keine Angaben.</p></figure>");
		return;
	}
	struct bar *bars = xcalloc(n, sizeof(struct bar));
	json_t *cell;
	json_array_foreach(cells, i, cell)
	{
		snprintf(bars[i].label, sizeof(bars[i].label), "%s",
		    json_string_value(json_object_get(cell, "label")));
		bars[i].cell = cell;
	}
	bar_chart(d->b, bars, n, heading);
	free(bars);
	evbuffer_add_printf(d->b, "<table><thead><tr><th>Merkmal</th><th>Fallanalysen</th>"
	                          "<th>Anteil (%%)</th></tr></thead><tbody>");
	json_array_foreach(cells, i, cell)
	{
		char f[48];
		figure(f, sizeof(f), cell);
		evbuffer_add_printf(d->b, "<tr><th>");
		esc(d->b, json_string_value(json_object_get(cell, "label")));
		evbuffer_add_printf(d->b, "</th><td>%s</td>", f);
		share_cell(d, cell);
		evbuffer_add_printf(d->b, "</tr>");
	}
	evbuffer_add_printf(d->b, "</tbody></table></figure>");
}

/* The process facts: yes, no, not stated, and the share of yes among those answered. */
static void
facts_table(const struct procedure_doc *d)
{
	evbuffer_add_printf(d->b,
	    "<figure><figcaption>Fachliches Vorgehen</figcaption><table><thead><tr>"
	    "<th>Merkmal</th><th>ja</th><th>nein</th><th>ohne Angabe</th><th>Anteil ja (%%)</th>"
	    "</tr></thead><tbody>");
	for (size_t i = 0; i < FACTS; i++) {
		const json_t *line = d->fact_line[i];
		evbuffer_add_printf(d->b, "<tr><th>");
		esc(d->b, label(NULL, facts[i][0]));
		evbuffer_add_printf(d->b, "</th>");
		for (size_t c = 0; c < 3; c++) {
			char f[48];
			figure(f, sizeof(f), json_array_get(line, c));
			evbuffer_add_printf(d->b, "<td>%s</td>", f);
		}
		long long yes = count_of(json_array_get(line, 0));
		long long answered = count_add(yes, count_of(json_array_get(line, 1)));
		figure_cell(d->b, "td",
		    answered > 0 ? json_real(procedure_report_share(yes, answered)) : NULL,
		    !d->fact_whole[i]);
		evbuffer_add_printf(d->b, "</tr>");
	}
	evbuffer_add_printf(d->b, "</tbody></table></figure>");
}

/* 1. The case analyses. */
static void
cases_section(const struct procedure_doc *d)
{
	evbuffer_add_printf(
	    d->b, "<section id=\"fallanalysen\"><h2>1. Fallanalysen</h2><p>Im Verfahren wurden ");
	figure_cell(d->b, "b", json_integer(d->cases), !d->cases_shown);
	evbuffer_add_printf(d->b, " Fallanalysen ausgewertet. Anteile beziehen sich auf diese "
	                          "Fallanalysen; bei Art der Gefährdung und Lernthemen kann eine "
	                          "Fallanalyse mehrfach zählen.</p>");
	for (size_t i = 0; i < ARRAY_LEN(case_lines); i++) {
		json_t *cells = line_cells(d, json_object_get(d->counts, case_lines[i][0]),
		    case_lines[i][2], case_lines[i][3]);
		line_section(d, case_lines[i][1], cells);
		json_decref(cells);
	}
	facts_table(d);
	const json_t *days =
	    json_object_get(json_object_get(d->gen, "medians"), "days_to_first_contact");
	evbuffer_add_printf(d->b, "<p>Tage bis zum ersten Kontakt (Median): ");
	figure_cell(d->b, "b", json_incref((json_t *)days), !d->days_shown);
	evbuffer_add_printf(d->b, "</p></section>");
}

/* 2. Ratings per quality dimension, each with its median (the committee: only beside a line
 * printed whole, which the median would otherwise narrow down). */
static void
ratings_section(const struct procedure_doc *d)
{
	const json_t *medians = json_object_get(d->gen, "medians");
	evbuffer_add_printf(d->b, "<section id=\"bewertungen\"><h2>2. Qualitätsbewertungen</h2>");
	for (const char *const *q = codelist_quality_dimension_values; *q != NULL; q++) {
		char dim[64];
		snprintf(dim, sizeof(dim), "rating:%s", *q);
		const json_t *ratings = json_object_get(d->counts, dim);
		if (ratings == NULL)
			continue;
		json_t *cells = line_cells(d, ratings, "rating", "ohne Bewertung");
		line_section(d, label("quality_dimension", *q), cells);
		const json_t *median = json_object_get(medians, dim);
		evbuffer_add_printf(d->b, "<p>Median der Bewertungen: ");
		figure_cell(d->b, "b", json_incref((json_t *)median),
		    median == NULL || (d->committee && !line_whole(cells)));
		evbuffer_add_printf(d->b, "</p>");
		json_decref(cells);
	}
	evbuffer_add_printf(d->b, "</section>");
}

/*
 * Whether the office's own value of an indicator is printed: the case
 * indicators (the facts' shares, the median days) only where section 1 prints
 * them too, so that they give no hidden count back.
 */
static bool
own_shown(const struct procedure_doc *d, const char *indicator)
{
	if (same(indicator, "median_days_to_first_contact"))
		return d->days_shown;
	for (size_t i = 0; i < FACTS; i++)
		if (same(indicator, facts[i][1]))
			return d->fact_whole[i] && d->cases_shown;
	return true;
}

/* 3. Structural quality beside the peer groups of the latest release. */
static void
structure_section(const struct procedure_doc *d)
{
	evbuffer_add_printf(d->b,
	    "<section id=\"struktur\"><h2>3. Strukturqualität</h2><table><thead><tr>"
	    "<th>Kennzahl</th><th>Vergleichsgruppe</th><th>Jugendamt</th><th>Jugendämter</th>"
	    "<th>1. Quartil</th><th>Median</th><th>3. Quartil</th></tr></thead><tbody>");
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(d->gen, "structure"), i, row)
	{
		const char *indicator = json_string_value(json_object_get(row, "indicator"));
		evbuffer_add_printf(d->b, "<tr><th>");
		esc(d->b, label(NULL, indicator));
		evbuffer_add_printf(d->b, "</th><td>%s</td>",
		    same(json_string_value(json_object_get(row, "peer_group")), "kind")
		        ? "gleiche Art"
		        : "gleiches Landesjugendamt");
		const json_t *own = json_object_get(row, "own");
		figure_cell(d->b, "td", json_incref((json_t *)own),
		    !json_is_number(own) || !own_shown(d, indicator));
		evbuffer_add_printf(d->b, "<td>%lld</td>",
		    (long long)json_integer_value(json_object_get(row, "peers")));
		static const char *const quartiles[] = { "q1", "median", "q3" };
		for (size_t q = 0; q < ARRAY_LEN(quartiles); q++) {
			const json_t *v = json_object_get(row, quartiles[q]);
			figure_cell(d->b, "td", json_incref((json_t *)v), !json_is_number(v));
		}
		evbuffer_add_printf(d->b, "</tr>");
	}
	evbuffer_add_printf(d->b, "</tbody></table></section>");
}

/* 4. Quality topics. */
static void
topics_section(const struct procedure_doc *d)
{
	evbuffer_add_printf(d->b,
	    "<section id=\"themen\"><h2>4. Qualitätsentwicklungsthemen</h2><table><thead><tr>"
	    "<th>Thema</th><th>Priorität</th><th>Stand</th><th>Wiedervorlage</th></tr></thead>"
	    "<tbody>");
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(d->gen, "topics"), i, row)
	{
		evbuffer_add_printf(d->b, "<tr><th>");
		esc(d->b, label("theme", json_string_value(json_object_get(row, "theme"))));
		evbuffer_add_printf(d->b, "</th><td>");
		const struct code *p = codelist_code(codelist_find("topic_priority"),
		    json_string_value(json_object_get(row, "priority")));
		esc(d->b, p ? p->label_de : json_string_value(json_object_get(row, "priority")));
		evbuffer_add_printf(d->b, "</td><td>");
		esc(d->b, label("status", json_string_value(json_object_get(row, "status"))));
		evbuffer_add_printf(d->b, "</td><td>");
		esc(d->b, json_is_string(json_object_get(row, "follow_up_date"))
		              ? json_string_value(json_object_get(row, "follow_up_date"))
		              : "\u2013");
		evbuffer_add_printf(d->b, "</td></tr>");
	}
	evbuffer_add_printf(d->b, "</tbody></table></section>");
}

/* One of the sections the authors write: paragraphs at blank lines, nothing of it markup.
 * The committee version holds no free text (it may name people): a note instead. */
static void
text_section(const struct procedure_doc *d, const char *id, const char *heading, const char *field)
{
	const json_t *text = json_object_get(d->report, field);
	evbuffer_add_printf(d->b, "<section id=\"%s\"><h2>", id);
	esc(d->b, heading);
	evbuffer_add_printf(d->b, "</h2>");
	if (d->committee) {
		evbuffer_add_printf(d->b,
		    "<p class=\"meta\">Freitext der Verfasser, nur in der vollständigen Fassung für "
		    "das Jugendamt; dem Ausschuss berichtet die Verwaltung die Ergebnisse und "
		    "Vorschläge.</p></section>");
		return;
	}
	if (!json_is_string(text)) {
		evbuffer_add_printf(d->b, "<p class=\"meta\">Noch nicht verfasst.</p></section>");
		return;
	}
	const char *s = json_string_value(text);
	evbuffer_add_printf(d->b, "<p>");
	for (; *s; s++) {
		if (s[0] == '\n' && s[1] == '\n') {
			evbuffer_add_printf(d->b, "</p><p>");
			while (s[1] == '\n')
				s++;
		} else {
			char one[2] = { *s, '\0' };
			esc(d->b, one);
		}
	}
	evbuffer_add_printf(d->b, "</p></section>");
}

/* The office's comments (the full version only). */
static void
comments_section(const struct procedure_doc *d)
{
	evbuffer_add_printf(d->b, "<section id=\"kommentare\"><h2>Anmerkungen des Jugendamts</h2>");
	size_t i, n = 0;
	json_t *c;
	json_array_foreach(json_object_get(d->report, "comments"), i, c)
	{
		if (!json_is_string(json_object_get(c, "text")))
			continue;
		n++;
		evbuffer_add_printf(d->b, "<blockquote><p class=\"meta\">");
		esc(d->b, json_string_value(json_object_get(c, "created_at")));
		evbuffer_add_printf(d->b, "</p><p>");
		esc(d->b, json_string_value(json_object_get(c, "text")));
		evbuffer_add_printf(d->b, "</p></blockquote>");
	}
	if (n == 0)
		evbuffer_add_printf(d->b, "<p class=\"meta\">Keine.</p>");
	evbuffer_add_printf(d->b, "</section>");
}

/* "1", "1 und 2", "1 bis 4": the counts the committee version hides (min_count >= 2). */
static void
small_counts(char *out, size_t size, long min_count)
{
	if (min_count <= 2)
		snprintf(out, size, "1");
	else if (min_count == 3)
		snprintf(out, size, "1 und 2");
	else
		snprintf(out, size, "1 bis %ld", min_count - 1);
}

/* The committee version's rules, with the thresholds of this configuration. */
static void
committee_rules(const struct procedure_doc *d)
{
	evbuffer_add_printf(d->b,
	    "<p>Diese Fassung ist für die öffentliche Beratung im Jugendhilfeausschuss bestimmt. "
	    "Sie enthält keine Angaben zu einzelnen Fällen und keine Freitexte: weder aus "
	    "Fallanalysen noch die Abschnitte der Verfasser oder Anmerkungen des Jugendamts.</p>");
	if (d->min_count <= 1) {
		evbuffer_add_printf(d->b, "<p>Alle Fallzahlen werden ausgewiesen.</p>");
		return;
	}
	char small[32];
	small_counts(small, sizeof(small), d->min_count);
	evbuffer_add_printf(d->b,
	    "<ul><li>Fallzahlen von %s werden nicht ausgewiesen (.).</li>"
	    "<li>Wo das in einer Zeile geschieht, werden dort weitere Fallzahlen gesperrt, die "
	    "kleinsten zuerst, bis die gesperrten zusammen mindestens %ld ergeben: So lässt sich "
	    "weder eine gesperrte Zahl noch eine kleine Summe gesperrter Zahlen aus der "
	    "Gesamtzahl zurückrechnen. Bei weniger als %ld Fallanalysen wird auch deren Zahl "
	    "nicht ausgewiesen.</li>"
	    "<li>Anteile gesperrter Zahlen werden nicht ausgewiesen. Der Median der Tage bis zum "
	    "ersten Kontakt erscheint erst ab %ld Fallanalysen, der Median einer "
	    "Qualitätsdimension nur, wo ihre Zeile vollständig ausgewiesen ist.</li>"
	    "<li>Eigene Kennzahlen aus den Fallanalysen erscheinen in der Strukturqualität nur, "
	    "wo dieselben Angaben im Abschnitt Fallanalysen ausgewiesen sind.</li></ul>",
	    small, d->min_count, d->min_count, d->min_count);
}

static void
procedure_method_section(const struct procedure_doc *d)
{
	evbuffer_add_printf(d->b,
	    "<section id=\"methodik\"><h2>Methodische Hinweise</h2><p>Die Zahlen stammen aus den "
	    "Fallanalysen, der Strukturerhebung und den Qualitätsentwicklungsthemen dieses "
	    "Verfahrens, auch die eigenen Kennzahlen der Strukturqualität, die auf Fallanalysen "
	    "beruhen; Vergleichswerte anderer Jugendämter aus der jüngsten Veröffentlichung der "
	    "Landesstatistik, Quartile nur über mindestens %ld Jugendämter.</p>",
	    d->min_offices);
	if (d->committee)
		committee_rules(d);
	else
		evbuffer_add_printf(d->b,
		    "<p>Diese vollständige Fassung ist für das Jugendamt bestimmt und nicht zur "
		    "Veröffentlichung. Für den Jugendhilfeausschuss gibt es eine eigene Fassung "
		    "ohne Angaben, die Rückschlüsse auf einzelne Fälle erlauben.</p>");
	evbuffer_add_printf(d->b, "</section>");
}

static const char *
status_label(const char *status)
{
	if (status == NULL)
		status = "draft";
	return strcmp(status, "accepted") == 0    ? "abgeschlossen und vom Jugendamt angenommen"
	       : strcmp(status, "finalised") == 0 ? "abgeschlossen"
	                                          : "Entwurf";
}

/* The title, which version, its state; the contents. */
static void
procedure_header(const struct procedure_doc *d)
{
	const char *office = json_string_value(json_object_get(d->report, "office_id"));
	const char *cycle = json_string_value(json_object_get(d->report, "cycle"));
	document_begin(d->b, "Bericht zum Qualitätsentwicklungsverfahren", office, cycle);
	evbuffer_add_printf(d->b, "<header id=\"titel\"><h1>Bericht zum "
	                          "Qualitätsentwicklungsverfahren</h1><p>nach § 8 "
	                          "Landeskinderschutzgesetz NRW<br>Jugendamt: <b>");
	esc(d->b, office);
	evbuffer_add_printf(d->b, "</b> · Zyklus: <b>");
	esc(d->b, cycle);
	evbuffer_add_printf(d->b, "</b><br>%s</p><p class=\"meta\">Stand: %s",
	    d->committee ? "Fassung für den Jugendhilfeausschuss"
	                 : "Vollständige Fassung für das Jugendamt",
	    status_label(json_string_value(json_object_get(d->report, "status"))));
	if (json_is_string(json_object_get(d->report, "finalised_at"))) {
		evbuffer_add_printf(d->b, " am ");
		esc(d->b, json_string_value(json_object_get(d->report, "finalised_at")));
	}
	evbuffer_add_printf(d->b, " · Fassung %lld · Zahlen vom ",
	    (long long)json_integer_value(json_object_get(d->report, "version")));
	esc(d->b, json_string_value(json_object_get(d->gen, "as_of")));
	evbuffer_add_printf(d->b,
	    "</p></header><nav id=\"inhalt\"><h2>Inhalt</h2><ol>"
	    "<li><a href=\"#fallanalysen\">Fallanalysen</a></li>"
	    "<li><a href=\"#bewertungen\">Qualitätsbewertungen</a></li>"
	    "<li><a href=\"#struktur\">Strukturqualität</a></li>"
	    "<li><a href=\"#themen\">Qualitätsentwicklungsthemen</a></li>"
	    "<li><a href=\"#bewertung\">Gesamtbewertung</a></li>"
	    "<li><a href=\"#staerken\">Stärken</a></li>"
	    "<li><a href=\"#entwicklungsbedarfe\">Entwicklungsbedarfe</a></li>"
	    "<li><a href=\"#empfehlungen\">Empfehlungen</a></li>%s"
	    "<li><a href=\"#methodik\">Methodische Hinweise</a></li></ol></nav>",
	    d->committee ? "" : "<li><a href=\"#kommentare\">Anmerkungen des Jugendamts</a></li>");
}

char *
procedure_report_html(const json_t *report, bool committee, long min_count, long min_offices)
{
	struct procedure_doc d;
	procedure_doc_init(&d, report, committee, min_count, min_offices);
	procedure_header(&d);
	evbuffer_add_printf(d.b, "<main>");
	cases_section(&d);
	ratings_section(&d);
	structure_section(&d);
	topics_section(&d);
	text_section(&d, "bewertung", "5. Gesamtbewertung", "assessment");
	text_section(&d, "staerken", "6. Stärken", "strengths");
	text_section(&d, "entwicklungsbedarfe", "7. Entwicklungsbedarfe", "development_needs");
	text_section(&d, "empfehlungen", "8. Empfehlungen", "recommendations");
	if (!committee)
		comments_section(&d);
	procedure_method_section(&d);
	evbuffer_add_printf(d.b, "</main></body></html>");
	for (size_t i = 0; i < FACTS; i++)
		json_decref(d.fact_line[i]);
	return document_end(d.b);
}
