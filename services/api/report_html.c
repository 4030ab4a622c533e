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
	evbuffer_add_printf(b, "</code>.</p></section>");
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

/* The distributions of the case analyses: rollup dimension, heading, label dimension. */
static const char *const case_distributions[][3] = {
	{ "result", "Ergebnis der Gefährdungseinschätzung", "result" },
	{ "form", "Art der Gefährdung (bei Kindeswohlgefährdung)", "form" },
	{ "age_group", "Alter des Kindes", "age_group" },
	{ "child_sex", "Geschlecht des Kindes", "sex" },
	{ "reported_by", "Bekanntmachende Stelle", "reported_by" },
	{ "learning_theme", "Lernthemen der Fallanalysen", "learning_theme" },
};

static int
count_cmp(const void *a, const void *b)
{
	long long x = json_integer_value(json_object_get(*(json_t *const *)a, "value"));
	long long y = json_integer_value(json_object_get(*(json_t *const *)b, "value"));
	return (x > y) - (x < y);
}

/*
 * The cells of one distribution of the procedure's own counts ({category: n}),
 * in code-list order. For the committee, counts of 1 to min_count - 1 are
 * suppressed, and where one count alone would be suppressed while the total
 * is printed, the next smallest too, so that no hidden count can be worked
 * out (the minimum-count rule of official statistics with secondary
 * suppression). A new array of {code, value, suppressed}.
 */
static json_t *
distribution_cells(const json_t *counts, const char *label_dim, bool committee, long min_count)
{
	json_t *cells = json_array();
	const char *code;
	json_t *n;
	json_object_foreach((json_t *)counts, code, n)
	{
		long long v = json_integer_value(n);
		json_array_append_new(cells,
		    json_pack("{s:s,s:s,s:I,s:b}", "code", code, "label", label(label_dim, code),
		        "value", (json_int_t)v, "suppressed", committee && v > 0 && v < min_count));
	}
	size_t hidden = 0, i;
	json_t *cell;
	json_array_foreach(cells, i, cell)
	{
		hidden += json_is_true(json_object_get(cell, "suppressed"));
	}
	if (committee && hidden == 1 && json_array_size(cells) > 1) {
		json_t **sorted = xcalloc(json_array_size(cells), sizeof(json_t *));
		json_array_foreach(cells, i, cell)
		{
			sorted[i] = cell;
		}
		qsort(sorted, json_array_size(cells), sizeof(json_t *), count_cmp);
		for (i = 0; i < json_array_size(cells); i++)
			if (!json_is_true(json_object_get(sorted[i], "suppressed"))) {
				json_object_set_new(sorted[i], "suppressed", json_true());
				break;
			}
		free(sorted);
	}
	/* A hidden count leaves nothing behind: no value a chart could draw as a bar's length. */
	json_array_foreach(cells, i, cell)
	{
		if (json_is_true(json_object_get(cell, "suppressed")))
			json_object_set_new(cell, "value", json_null());
	}
	return cells;
}

static void
distribution_section(struct evbuffer *b, const char *heading, json_t *cells)
{
	size_t n = json_array_size(cells), i;
	evbuffer_add_printf(b, "<figure><figcaption>");
	esc(b, heading);
	evbuffer_add_printf(b, "</figcaption>");
	if (n == 0) {
		evbuffer_add_printf(b, "<p>Keine Angaben.</p></figure>");
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
	bar_chart(b, bars, n, heading);
	evbuffer_add_printf(b, "<table><thead><tr><th>Merkmal</th><th>Fallanalysen</th></tr>"
	                       "</thead><tbody>");
	for (i = 0; i < n; i++) {
		char f[48];
		figure(f, sizeof(f), bars[i].cell);
		evbuffer_add_printf(b, "<tr><th>");
		esc(b, bars[i].label);
		evbuffer_add_printf(b, "</th><td>%s</td></tr>", f);
	}
	evbuffer_add_printf(b, "</tbody></table></figure>");
	free(bars);
}

/*
 * The process facts: yes, no and the share of yes among those answered. For
 * the committee a count of 1 to min_count - 1 is ".", and so is the share
 * then (it would give the count back).
 */
static void
facts_table(struct evbuffer *b, const json_t *counts, bool committee, long min_count)
{
	static const char *const facts[] = { "direct_impression", "several_professionals",
		"child_involved" };
	evbuffer_add_printf(b, "<figure><figcaption>Fachliches Vorgehen</figcaption><table><thead>"
	                       "<tr><th>Merkmal</th><th>ja</th><th>nein</th><th>Anteil ja (%%)</th>"
	                       "</tr></thead><tbody>");
	for (size_t i = 0; i < ARRAY_LEN(facts); i++) {
		const json_t *answers = json_object_get(counts, facts[i]);
		long long yes = json_integer_value(json_object_get(answers, "yes"));
		long long no = json_integer_value(json_object_get(answers, "no"));
		bool hide_yes = committee && yes > 0 && yes < min_count;
		bool hide_no = committee && no > 0 && no < min_count;
		json_t *cells[] = {
			hide_yes
			    ? json_pack("{s:n,s:b}", "value", "suppressed", true)
			    : json_pack("{s:I,s:b}", "value", (json_int_t)yes, "suppressed", false),
			hide_no
			    ? json_pack("{s:n,s:b}", "value", "suppressed", true)
			    : json_pack("{s:I,s:b}", "value", (json_int_t)no, "suppressed", false),
			hide_yes || hide_no ? json_pack("{s:n,s:b}", "value", "suppressed", true)
			: yes + no > 0
			    ? json_pack("{s:f,s:b}", "value",
			          round(1000.0 * (double)yes / (double)(yes + no)) / 10.0,
			          "suppressed", false)
			    : json_pack("{s:n,s:b}", "value", "suppressed", false),
		};
		evbuffer_add_printf(b, "<tr><th>");
		esc(b, label(NULL, facts[i]));
		evbuffer_add_printf(b, "</th>");
		for (size_t c = 0; c < ARRAY_LEN(cells); c++) {
			char f[48];
			figure(f, sizeof(f), cells[c]);
			evbuffer_add_printf(b, "<td>%s</td>", f);
			json_decref(cells[c]);
		}
		evbuffer_add_printf(b, "</tr>");
	}
	evbuffer_add_printf(b, "</tbody></table></figure>");
}

static void
number_cell(struct evbuffer *b, const json_t *v)
{
	json_t *cell = json_pack("{s:O,s:b}", "value", v ? (json_t *)v : json_null(), "suppressed",
	    json_is_null(v) || v == NULL);
	char f[48];
	figure(f, sizeof(f), cell);
	evbuffer_add_printf(b, "<td>%s</td>", f);
	json_decref(cell);
}

static void
text_section(struct evbuffer *b, const char *id, const char *heading, const json_t *text)
{
	evbuffer_add_printf(b, "<section id=\"%s\"><h2>", id);
	esc(b, heading);
	evbuffer_add_printf(b, "</h2>");
	if (!json_is_string(text)) {
		evbuffer_add_printf(b, "<p class=\"meta\">Noch nicht verfasst.</p></section>");
		return;
	}
	/* Paragraphs at blank lines; nothing of the text is markup. */
	const char *s = json_string_value(text);
	evbuffer_add_printf(b, "<p>");
	for (; *s; s++) {
		if (s[0] == '\n' && s[1] == '\n') {
			evbuffer_add_printf(b, "</p><p>");
			while (s[1] == '\n')
				s++;
		} else {
			char one[2] = { *s, '\0' };
			esc(b, one);
		}
	}
	evbuffer_add_printf(b, "</p></section>");
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

char *
procedure_report_html(const json_t *report, bool committee, long min_count)
{
	struct evbuffer *b = evbuffer_new();
	const json_t *gen = json_object_get(report, "generated");
	const json_t *counts = json_object_get(gen, "counts");
	long long cases = json_integer_value(json_object_get(gen, "case_analyses"));
	const char *office = json_string_value(json_object_get(report, "office_id"));
	const char *cycle = json_string_value(json_object_get(report, "cycle"));

	document_begin(b, "Bericht zum Qualitätsentwicklungsverfahren", office, cycle);
	evbuffer_add_printf(b, "<header id=\"titel\"><h1>Bericht zum Qualitätsentwicklungsverfahren"
	                       "</h1><p>nach § 8 Landeskinderschutzgesetz NRW<br>Jugendamt: <b>");
	esc(b, office);
	evbuffer_add_printf(b, "</b> · Zyklus: <b>");
	esc(b, cycle);
	evbuffer_add_printf(b, "</b><br>%s</p><p class=\"meta\">Stand: %s",
	    committee ? "Fassung für den Jugendhilfeausschuss"
	              : "Vollständige Fassung für das Jugendamt",
	    status_label(json_string_value(json_object_get(report, "status"))));
	if (json_is_string(json_object_get(report, "finalised_at"))) {
		evbuffer_add_printf(b, " am ");
		esc(b, json_string_value(json_object_get(report, "finalised_at")));
	}
	evbuffer_add_printf(b, " · Fassung %lld · Zahlen vom ",
	    (long long)json_integer_value(json_object_get(report, "version")));
	esc(b, json_string_value(json_object_get(gen, "as_of")));
	evbuffer_add_printf(b,
	    "</p></header><nav id=\"inhalt\"><h2>Inhalt</h2><ol>"
	    "<li><a href=\"#fallanalysen\">Fallanalysen</a></li>"
	    "<li><a href=\"#bewertungen\">Qualitätsbewertungen</a></li>"
	    "<li><a href=\"#struktur\">Strukturqualität</a></li>"
	    "<li><a href=\"#themen\">Qualitätsentwicklungsthemen</a></li>"
	    "<li><a href=\"#bewertung\">Gesamtbewertung</a></li>"
	    "<li><a href=\"#staerken\">Stärken</a></li>"
	    "<li><a href=\"#entwicklungsbedarfe\">Entwicklungsbedarfe</a></li>"
	    "<li><a href=\"#empfehlungen\">Empfehlungen</a></li>%s"
	    "<li><a href=\"#methodik\">Methodische Hinweise</a></li></ol></nav><main>",
	    committee ? "" : "<li><a href=\"#kommentare\">Anmerkungen des Jugendamts</a></li>");

	/* 1. The case analyses. */
	evbuffer_add_printf(b,
	    "<section id=\"fallanalysen\"><h2>1. Fallanalysen</h2><p>Im Verfahren wurden "
	    "<b>%lld</b> Fallanalysen ausgewertet.</p>",
	    cases);
	for (size_t i = 0; i < ARRAY_LEN(case_distributions); i++) {
		json_t *cells =
		    distribution_cells(json_object_get(counts, case_distributions[i][0]),
		        case_distributions[i][2], committee, min_count);
		distribution_section(b, case_distributions[i][1], cells);
		json_decref(cells);
	}
	facts_table(b, counts, committee, min_count);
	const json_t *days =
	    json_object_get(json_object_get(gen, "medians"), "days_to_first_contact");
	evbuffer_add_printf(b, "<p>Tage bis zum ersten Kontakt (Median): ");
	if (days != NULL && (!committee || cases >= min_count)) {
		json_t *cell = json_pack("{s:O,s:b}", "value", days, "suppressed", false);
		char f[48];
		figure(f, sizeof(f), cell);
		json_decref(cell);
		evbuffer_add_printf(b, "<b>%s</b>", f);
	} else {
		evbuffer_add_printf(b, "<b>.</b>");
	}
	evbuffer_add_printf(b, "</p></section>");

	/* 2. Ratings per quality dimension. */
	evbuffer_add_printf(b, "<section id=\"bewertungen\"><h2>2. Qualitätsbewertungen</h2>");
	for (const char *const *d = codelist_quality_dimension_values; *d != NULL; d++) {
		char dim[64], heading[200];
		snprintf(dim, sizeof(dim), "rating:%s", *d);
		const json_t *ratings = json_object_get(counts, dim);
		if (ratings == NULL)
			continue;
		snprintf(heading, sizeof(heading), "%s", label("quality_dimension", *d));
		json_t *cells = distribution_cells(ratings, "rating", committee, min_count);
		distribution_section(b, heading, cells);
		json_decref(cells);
	}
	evbuffer_add_printf(b, "</section>");

	/* 3. Structural quality beside the peer groups of the latest release. */
	evbuffer_add_printf(b,
	    "<section id=\"struktur\"><h2>3. Strukturqualität</h2><table><thead><tr>"
	    "<th>Kennzahl</th><th>Vergleichsgruppe</th><th>Jugendamt</th><th>Jugendämter</th>"
	    "<th>1. Quartil</th><th>Median</th><th>3. Quartil</th></tr></thead><tbody>");
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(gen, "structure"), i, row)
	{
		evbuffer_add_printf(b, "<tr><th>");
		esc(b, label(NULL, json_string_value(json_object_get(row, "indicator"))));
		evbuffer_add_printf(b, "</th><td>%s</td>",
		    same(json_string_value(json_object_get(row, "peer_group")), "kind")
		        ? "gleiche Art"
		        : "gleiches Landesjugendamt");
		number_cell(b, json_object_get(row, "own"));
		evbuffer_add_printf(b, "<td>%lld</td>",
		    (long long)json_integer_value(json_object_get(row, "peers")));
		number_cell(b, json_object_get(row, "q1"));
		number_cell(b, json_object_get(row, "median"));
		number_cell(b, json_object_get(row, "q3"));
		evbuffer_add_printf(b, "</tr>");
	}
	evbuffer_add_printf(b, "</tbody></table></section>");

	/* 4. Quality topics. */
	evbuffer_add_printf(b,
	    "<section id=\"themen\"><h2>4. Qualitätsentwicklungsthemen</h2><table><thead><tr>"
	    "<th>Thema</th><th>Priorität</th><th>Stand</th><th>Wiedervorlage</th></tr></thead>"
	    "<tbody>");
	json_array_foreach(json_object_get(gen, "topics"), i, row)
	{
		evbuffer_add_printf(b, "<tr><th>");
		esc(b, label("theme", json_string_value(json_object_get(row, "theme"))));
		evbuffer_add_printf(b, "</th><td>");
		const struct code *p = codelist_code(codelist_find("topic_priority"),
		    json_string_value(json_object_get(row, "priority")));
		esc(b, p ? p->label_de : json_string_value(json_object_get(row, "priority")));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, label("status", json_string_value(json_object_get(row, "status"))));
		evbuffer_add_printf(b, "</td><td>");
		esc(b, json_is_string(json_object_get(row, "follow_up_date"))
		           ? json_string_value(json_object_get(row, "follow_up_date"))
		           : "\u2013");
		evbuffer_add_printf(b, "</td></tr>");
	}
	evbuffer_add_printf(b, "</tbody></table></section>");

	/* 5.–8. What the institute or the Landesjugendamt wrote. */
	text_section(b, "bewertung", "5. Gesamtbewertung", json_object_get(report, "assessment"));
	text_section(b, "staerken", "6. Stärken", json_object_get(report, "strengths"));
	text_section(b, "entwicklungsbedarfe", "7. Entwicklungsbedarfe",
	    json_object_get(report, "development_needs"));
	text_section(
	    b, "empfehlungen", "8. Empfehlungen", json_object_get(report, "recommendations"));
	if (!committee) {
		evbuffer_add_printf(
		    b, "<section id=\"kommentare\"><h2>Anmerkungen des Jugendamts</h2>");
		json_t *c;
		size_t n = 0;
		json_array_foreach(json_object_get(report, "comments"), i, c)
		{
			if (!json_is_string(json_object_get(c, "text")))
				continue;
			n++;
			evbuffer_add_printf(b, "<blockquote><p class=\"meta\">");
			esc(b, json_string_value(json_object_get(c, "created_at")));
			evbuffer_add_printf(b, "</p><p>");
			esc(b, json_string_value(json_object_get(c, "text")));
			evbuffer_add_printf(b, "</p></blockquote>");
		}
		if (n == 0)
			evbuffer_add_printf(b, "<p class=\"meta\">Keine.</p>");
		evbuffer_add_printf(b, "</section>");
	}
	evbuffer_add_printf(b,
	    "<section id=\"methodik\"><h2>Methodische Hinweise</h2><p>Die Zahlen stammen aus den "
	    "Fallanalysen, der Strukturerhebung und den Qualitätsentwicklungsthemen dieses "
	    "Verfahrens; Vergleichswerte anderer Jugendämter aus der jüngsten Veröffentlichung "
	    "der Landesstatistik, Quartile nur über mindestens fünf Jugendämter.</p>%s</section>",
	    committee
	        ? "<p>Diese Fassung ist für die öffentliche Beratung im "
	          "Jugendhilfeausschuss bestimmt. Sie enthält keine Angaben zu einzelnen "
	          "Fällen und keine Freitexte aus Fallanalysen. Fallzahlen von 1 oder 2 "
	          "werden nicht ausgewiesen (.), ebenso ein weiterer Wert, wo sich ein "
	          "solcher sonst aus der Gesamtzahl zurückrechnen ließe; Mediane nur ab drei "
	          "Fallanalysen.</p>"
	        : "<p>Diese vollständige Fassung ist für das Jugendamt bestimmt und nicht zur "
	          "Veröffentlichung. Für den Jugendhilfeausschuss gibt es eine eigene Fassung "
	          "ohne Angaben, die Rückschlüsse auf einzelne Fälle erlauben.</p>");
	evbuffer_add_printf(b, "</main></body></html>");
	return document_end(b);
}
