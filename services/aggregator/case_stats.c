/*
 * case_stats — statistics of case analyses (Fallanalysen) for a report, per
 * region × category, aligned with the official § 8a statistics: results,
 * forms of endangerment, the child's age group, who reported. Counts are
 * read per office, so each cell knows how many offices contribute and how
 * much the largest one does; then disclosure control (common/disclosure)
 * suppresses what could reveal a child, a case or an office.
 *
 * Reads as the 'system' principal: the caller's transaction must have it set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "kqe/codelists.h"
#include "kqe/disclosure.h"
#include "kqe/log.h"
#include "kqe/report_params.h"

/* $1 region (NULL = both), $2 year (NULL), $3 cycle (NULL): the report's scope and period. */
#define CASE_SCOPE                                                                                 \
	" FROM case_analyses c JOIN offices o ON o.id = c.office_id"                               \
	" JOIN procedures p ON p.id = c.procedure_id"                                              \
	" WHERE ($1::text IS NULL OR o.region = $1)"                                               \
	" AND ($2::int IS NULL OR extract(year FROM c.closed_month) = $2)"                         \
	" AND ($3::text IS NULL OR p.cycle = $3)"

static const struct db_stmt stmt_results = { "stats_results",
	"SELECT o.region, c.result, c.office_id, count(*)" CASE_SCOPE " GROUP BY 1, 2, 3" };
static const struct db_stmt stmt_forms = { "stats_forms",
	"SELECT o.region, f.form, c.office_id, count(*)"
	" FROM case_analyses c JOIN offices o ON o.id = c.office_id"
	" JOIN procedures p ON p.id = c.procedure_id"
	" CROSS JOIN LATERAL unnest(c.endangerment_forms) AS f(form)"
	" WHERE ($1::text IS NULL OR o.region = $1)"
	" AND ($2::int IS NULL OR extract(year FROM c.closed_month) = $2)"
	" AND ($3::text IS NULL OR p.cycle = $3) GROUP BY 1, 2, 3" };
static const struct db_stmt stmt_ages = { "stats_ages",
	"SELECT o.region, kqe_age_group(c.child_birth_month, c.closed_month), c.office_id,"
	" count(*)" CASE_SCOPE " GROUP BY 1, 2, 3" };
static const struct db_stmt stmt_reporters = { "stats_reporters",
	"SELECT o.region, c.reported_by, c.office_id, count(*)" CASE_SCOPE " GROUP BY 1, 2, 3" };

static const char *const regions[] = { "LVR", "LWL", NULL };
static const char *const age_groups[] = { "unter_3", "3_bis_unter_6", "6_bis_unter_9",
	"9_bis_unter_12", "12_bis_unter_14", "14_bis_unter_16", "16_bis_unter_18", NULL };

struct stats_table {
	const char *id, *title, *dimension;
	const struct db_stmt *stmt;
	const char *const *codes;
	/* Totals are published only where they are sums: a case has several forms. */
	bool additive;
};

static const struct stats_table tables[] = {
	{ "case_results_by_region", "Fallanalysen nach Ergebnis der Gefährdungseinschätzung",
	    "result", &stmt_results, codelist_assessment_result_values, true },
	{ "case_forms_by_region", "Fallanalysen mit Kindeswohlgefährdung nach Art der Gefährdung",
	    "form", &stmt_forms, codelist_endangerment_form_values, false },
	{ "case_age_groups_by_region", "Fallanalysen nach Alter des Kindes", "age_group",
	    &stmt_ages, age_groups, true },
	{ "case_reporters_by_region", "Fallanalysen nach bekanntmachender Stelle", "reported_by",
	    &stmt_reporters, codelist_reporter_values, true },
};

static int
index_of(const char *const *list, const char *s)
{
	for (int i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

/*
 * Per office sums, to know each cell's largest contributor and its number of
 * offices exactly (also for totals): per[office][row][col].
 */
struct per_office {
	json_t *index; /* office id → position */
	long long *counts;
	size_t noffices, rows, cols;
};

static long long *
slot(struct per_office *po, const char *office, size_t row, size_t col)
{
	json_t *at = json_object_get(po->index, office);
	size_t i;
	if (at == NULL) {
		i = po->noffices++;
		json_object_set_new(po->index, office, json_integer((json_int_t)i));
		po->counts =
		    xrealloc(po->counts, po->noffices * po->rows * po->cols * sizeof(long long));
		memset(po->counts + i * po->rows * po->cols, 0,
		    po->rows * po->cols * sizeof(long long));
	} else {
		i = (size_t)json_integer_value(at);
	}
	return &po->counts[(i * po->rows + row) * po->cols + col];
}

/* Value, offices and largest office of row r0 × column c0 (-1: summed over). */
static void
measure(const struct per_office *po, struct sdc_cell *out, long r0, long c0)
{
	memset(out, 0, sizeof(*out));
	for (size_t o = 0; o < po->noffices; o++) {
		long long sum = 0;
		for (size_t r = 0; r < po->rows; r++)
			for (size_t c = 0; c < po->cols; c++)
				if ((r0 < 0 || (size_t)r0 == r) && (c0 < 0 || (size_t)c0 == c))
					sum += po->counts[(o * po->rows + r) * po->cols + c];
		if (sum == 0)
			continue;
		out->value += sum;
		out->offices++;
		if (sum > out->top)
			out->top = sum;
	}
}

static json_t *
cell_json(const char *dimension, const char *region, const char *code, const struct sdc_cell *c)
{
	json_t *j = json_pack("{s:s?,s:s?}", "region", region, dimension, code);
	json_object_set_new(j, "value", c->suppressed ? json_null() : json_integer(c->value));
	json_object_set_new(j, "suppressed", json_boolean(c->suppressed != SDC_NONE));
	if (c->suppressed)
		json_object_set_new(j, "reason", json_string(sdc_reason_name(c->suppressed)));
	return j;
}

static json_t *
build_table(struct db *db, const struct stats_table *t, const struct report_params *p,
    const struct sdc_rules *rules)
{
	char year[8];
	snprintf(year, sizeof(year), "%d", p->first_year);
	int is_year = p->first_year == p->last_year;
	const char *params[] = { p->region[0] ? p->region : NULL, is_year ? year : NULL,
		is_year ? NULL : p->period };
	PGresult *res = db_exec(db, t->stmt, 3, params);
	if (res == NULL)
		return NULL;

	const char *scope_regions[3] = { NULL, NULL, NULL };
	size_t rows = 0;
	for (size_t i = 0; regions[i]; i++)
		if (!p->region[0] || strcmp(p->region, regions[i]) == 0)
			scope_regions[rows++] = regions[i];
	size_t cols = 0;
	while (t->codes[cols] != NULL)
		cols++;
	struct per_office po = { .index = json_object(), .rows = rows, .cols = cols };
	for (int i = 0; i < PQntuples(res); i++) {
		int r = index_of(scope_regions, PQgetvalue(res, i, 0));
		int c = index_of(t->codes, PQgetvalue(res, i, 1));
		if (r < 0 || c < 0)
			continue;
		*slot(&po, PQgetvalue(res, i, 2), (size_t)r, (size_t)c) +=
		    atoll(PQgetvalue(res, i, 3));
	}
	PQclear(res);

	struct sdc_cell *cells = xcalloc(rows * cols, sizeof(*cells));
	struct sdc_cell *row_totals = xcalloc(rows, sizeof(*row_totals));
	struct sdc_cell *col_totals = xcalloc(cols, sizeof(*col_totals));
	struct sdc_table st = { .rows = rows,
		.cols = cols,
		.cells = cells,
		.row_totals = t->additive ? row_totals : NULL,
		.col_totals = t->additive ? col_totals : NULL,
		.totals_published = t->additive };
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++)
			measure(&po, &cells[r * cols + c], (long)r, (long)c);
	for (size_t r = 0; r < rows; r++)
		measure(&po, &row_totals[r], (long)r, -1);
	for (size_t c = 0; c < cols; c++)
		measure(&po, &col_totals[c], -1, (long)c);
	measure(&po, &st.grand, -1, -1);

	json_t *table = NULL;
	if (sdc_apply(&st, rules) != 0) {
		log_error(
		    NULL, "disclosure control refused a table", json_pack("{s:s}", "table", t->id));
		goto out;
	}
	table = json_pack("{s:s,s:s,s:s,s:[s,s],s:[]}", "id", t->id, "title", t->title, "measure",
	    "count", "dimensions", "region", t->dimension, "cells");
	json_t *out = json_object_get(table, "cells");
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++)
			json_array_append_new(out, cell_json(t->dimension, scope_regions[r],
			                               t->codes[c], &cells[r * cols + c]));
	/* Totals: the summed-over dimension is null. */
	if (t->additive) {
		for (size_t r = 0; r < rows; r++)
			json_array_append_new(
			    out, cell_json(t->dimension, scope_regions[r], NULL, &row_totals[r]));
		for (size_t c = 0; c < cols; c++)
			json_array_append_new(
			    out, cell_json(t->dimension, NULL, t->codes[c], &col_totals[c]));
		json_array_append_new(out, cell_json(t->dimension, NULL, NULL, &st.grand));
	}
out:
	free(cells);
	free(row_totals);
	free(col_totals);
	free(po.counts);
	json_decref(po.index);
	return table;
}

int
case_stats_tables(
    struct db *db, const struct report_params *p, const struct sdc_rules *rules, json_t *out)
{
	for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
		json_t *t = build_table(db, &tables[i], p, rules);
		if (t == NULL)
			return -1;
		json_array_append_new(out, t);
	}
	return 0;
}
