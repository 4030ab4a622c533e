/*
 * kqe sdc ptable|evaluate — the cell-key method for statisticians
 * (docs/disclosure.md).
 *
 *   kqe sdc ptable [--json]      the perturbation table the reports use: for each
 *                                true count, each noise value with its probability
 *                                and the end of its cell-key interval
 *   kqe sdc evaluate --period P [--region LVR|LWL]
 *                                what the perturbation costs a report of P today:
 *                                share of count cells changed, mean and maximum
 *                                absolute deviation, and how many cells the
 *                                minimum-count rule would hide instead
 *
 * evaluate builds the report's tables from the latest release twice in one
 * snapshot, once with the true counts and once as published, and compares them
 * cell by cell. It reads as the
 * owning role; it prints figures about the tables, never a cell.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "cli.h"
#include "commands.h"
#include "kqe/ckm.h"
#include "kqe/db.h"
#include "kqe/disclosure.h"
#include "kqe/report_params.h"

#define SDC_USAGE                                                                                  \
	"usage: kqe sdc ptable [--json]\n"                                                         \
	"       kqe sdc evaluate --period YYYY|YYYY-YYYY [--region LVR|LWL]\n"

static int
ptable(bool as_json)
{
	const struct ckm_table *t = ckm_default();
	json_t *rows = json_array();
	if (!as_json)
		printf(
		    "cell-key perturbation table: D = %d, V = %g (row %d, which serves every larger "
		    "count: %g), js = %d\n%6s %6s %12s %12s\n",
		    t->params.max_deviation, t->params.variance, t->rows - 1,
		    t->params.variance_large > 0 ? t->params.variance_large : t->params.variance,
		    t->params.js, "i", "v", "p", "key below");
	for (int i = 0; i < t->rows; i++) {
		const struct ckm_row *r = &t->row[i];
		json_t *vals = json_array();
		for (int k = 0; k < r->n; k++) {
			if (as_json)
				json_array_append_new(
				    vals, json_pack("{s:i,s:f,s:I}", "v", r->v[k], "p", r->p[k],
				              "key_below", (json_int_t)r->ub[k]));
			else
				printf("%6d %6d %12.8f %12llu\n", i, r->v[k], r->p[k],
				    (unsigned long long)r->ub[k]);
		}
		json_array_append_new(rows, json_pack("{s:i,s:o}", "i", i, "noise", vals));
	}
	if (as_json) {
		json_t *out = json_pack("{s:i,s:f,s:f,s:i,s:o}", "max_deviation",
		    t->params.max_deviation, "variance", t->params.variance, "variance_large",
		    t->params.variance_large > 0 ? t->params.variance_large : t->params.variance,
		    "js", t->params.js, "rows", rows);
		char *text = json_dumps(out, JSON_COMPACT);
		printf("%s\n", text);
		free(text);
		json_decref(out);
	} else {
		json_decref(rows);
	}
	return 0;
}

struct tally {
	long cells, changed, would_hide;
	double abs_sum, abs_max;
};

/* Compares the count cells of two builds of the same tables, in order. */
static void
compare(const json_t *truth, const json_t *published, long long min_count, struct tally *t)
{
	size_t i, j;
	json_t *table;
	json_array_foreach(truth, i, table)
	{
		const char *measure = json_string_value(json_object_get(table, "measure"));
		if (measure == NULL || strcmp(measure, "count") != 0)
			continue;
		const json_t *cells = json_object_get(table, "cells");
		const json_t *pub = json_object_get(json_array_get(published, i), "cells");
		json_t *cell;
		json_array_foreach(cells, j, cell)
		{
			long long v = json_integer_value(json_object_get(cell, "value"));
			long long p =
			    json_integer_value(json_object_get(json_array_get(pub, j), "value"));
			double d = fabs((double)(p - v));
			t->cells++;
			t->changed += p != v;
			t->abs_sum += d;
			t->abs_max = fmax(t->abs_max, d);
			t->would_hide += v > 0 && v < min_count;
		}
	}
}

static int
evaluate(struct db *db, const struct report_params *p, const struct config *cfg)
{
	static const struct principal system = { .role = ROLE_SYSTEM,
		.actor = "system:aggregator" };
	struct sdc_rules rules = { .min_count = cfg->sdc_min_count,
		.dominance = (double)cfg->sdc_dominance_percent / 100.0,
		.min_offices = (int)cfg->sdc_min_offices };
	static const struct db_stmt stmt_latest = { "sdc_latest_release",
		"SELECT max(id)::text FROM releases" };
	json_t *truth = json_array(), *published = json_array();
	PGresult *res = NULL;
	char release[16] = "";
	int rc = 1;
	if (db_begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0 ||
	    db_set_principal(db, &system) != 0 ||
	    (res = db_exec(db, &stmt_latest, 0, NULL)) == NULL) {
		cli_db_error("kqe sdc evaluate", db);
		goto out;
	}
	snprintf(release, sizeof(release), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!release[0]) {
		fprintf(stderr, "kqe sdc evaluate: no release yet (kqe release make)\n");
		db_rollback(db);
		goto out;
	}
	if (stats_tables(db, p, release, &rules, NULL, truth) != 0 ||
	    stats_tables(db, p, release, &rules, ckm_default(), published) != 0) {
		cli_db_error("kqe sdc evaluate", db);
		goto out;
	}
	db_rollback(db);
	struct tally t = { 0 };
	compare(truth, published, rules.min_count, &t);
	const struct ckm_params *c = &ckm_default()->params;
	printf("report: %s %s%s%s, release %s\n", p->scope, p->period, p->region[0] ? " " : "",
	    p->region, release);
	printf("method: cell key, D = %d, V = %g (large counts %g), js = %d\n", c->max_deviation,
	    c->variance, c->variance_large > 0 ? c->variance_large : c->variance, c->js);
	printf("count cells: %ld\n", t.cells);
	printf("changed by the noise: %ld (%.1f %%)\n", t.changed,
	    t.cells ? 100.0 * (double)t.changed / (double)t.cells : 0.0);
	printf("absolute deviation: mean %.2f, maximum %.0f\n",
	    t.cells ? t.abs_sum / (double)t.cells : 0.0, t.abs_max);
	printf("the minimum-count rule (1 to %lld) would hide instead: %ld (%.1f %%), before "
	       "secondary suppression\n",
	    rules.min_count - 1, t.would_hide,
	    t.cells ? 100.0 * (double)t.would_hide / (double)t.cells : 0.0);
	rc = 0;
out:
	json_decref(truth);
	json_decref(published);
	return rc;
}

int
cmd_sdc(int argc, char **argv, const struct config *cfg)
{
	if (argc >= 2 && strcmp(argv[1], "ptable") == 0 &&
	    (argc == 2 || (argc == 3 && strcmp(argv[2], "--json") == 0)))
		return ptable(argc == 3);
	const char *period = NULL, *region = NULL;
	for (int i = 2; argc >= 2 && strcmp(argv[1], "evaluate") == 0 && i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--period") == 0)
			period = argv[i + 1];
		else if (strcmp(argv[i], "--region") == 0)
			region = argv[i + 1];
	}
	json_t *body = period == NULL
	                   ? NULL
	                   : json_pack("{s:s,s:s,s:s?}", "scope", region ? "region" : "state",
	                         "period", period, "region", region);
	struct report_params p;
	if (body == NULL || argc % 2 != 0 || report_params_parse(body, &p) != 0) {
		json_decref(body);
		fprintf(stderr, SDC_USAGE);
		return 2;
	}
	json_decref(body);
	struct db *db = db_new(cfg->database_admin_url, 0, "kqe-sdc");
	int rc = cli_db_connect(db, "kqe sdc") == 0 ? evaluate(db, &p, cfg) : 1;
	db_free(db);
	return rc;
}
