/*
 * build_report — computes a report snapshot for a queued job and stores it
 * with the job's success in one transaction, so a crash leaves either no
 * report and a re-runnable job, or both.
 *
 * For now one statistic: offices per region and kind, with the population
 * under 18. Directory facts are public, so no disclosure control applies to
 * these tables (it arrives with the case-level statistics).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aggregator.h"
#include "kqe/log.h"
#include "kqe/report_params.h"

static const struct db_stmt stmt_start = { "job_start",
	"UPDATE jobs SET status = 'running', attempts = attempts + 1,"
	" started_at = coalesce(started_at, now()), updated_at = now()"
	" WHERE id = $1 AND status IN ('queued', 'running', 'failed') RETURNING params::text" };
static const struct db_stmt stmt_lock = { "job_lock",
	"SELECT status FROM jobs WHERE id = $1 FOR UPDATE" };
static const struct db_stmt stmt_offices = { "report_offices",
	"SELECT region, kind, count(*), coalesce(sum(population_under_18), 0)"
	" FROM offices WHERE ($1::text IS NULL OR region = $1) GROUP BY region, kind" };
static const struct db_stmt stmt_watermark = { "report_watermark",
	"SELECT count(*), coalesce(kqe_ts(max(updated_at)), '') FROM offices" };
static const struct db_stmt stmt_insert = { "report_insert",
	"INSERT INTO reports (job_id, scope, period, params, watermark, content_hash, tables)"
	" VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7::json) RETURNING id" };
static const struct db_stmt stmt_succeed = { "job_succeed",
	"UPDATE jobs SET status = 'succeeded', result_id = $2, error = NULL,"
	" finished_at = now(), updated_at = now() WHERE id = $1" };
static const struct db_stmt stmt_fail = { "job_fail",
	"UPDATE jobs SET status = 'failed', error = $2, finished_at = now(), updated_at = now()"
	" WHERE id = $1" };

static const char *const regions[] = { "LVR", "LWL" };
static const char *const kinds[] = { "kreisfreie_stadt", "kreis", "kreisangehoerige_stadt" };

static json_t *
table_new(const char *id, const char *title, const char *measure, json_t *dimensions)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:[]}", "id", id, "title", title, "measure", measure,
	    "dimensions", dimensions, "cells");
}

static void
cell_add(json_t *table, json_t *cell, long long value)
{
	json_object_set_new(cell, "value", json_integer(value));
	json_object_set_new(cell, "suppressed", json_false());
	json_array_append_new(json_object_get(table, "cells"), cell);
}

/* Builds the tables from the per region × kind rows of stmt_offices. */
static json_t *
office_tables(PGresult *res, const struct report_params *p)
{
	json_t *by_region = table_new("offices_by_region", "Jugendämter nach Landesjugendamt",
	    "count", json_pack("[s]", "region"));
	json_t *by_kind =
	    table_new("offices_by_region_kind", "Jugendämter nach Landesjugendamt und Art", "count",
	        json_pack("[s,s]", "region", "kind"));
	json_t *population = table_new("population_under_18_by_region_kind",
	    "Bevölkerung unter 18 Jahren nach Landesjugendamt und Art der Jugendämter", "sum",
	    json_pack("[s,s]", "region", "kind"));

	for (size_t g = 0; g < ARRAY_LEN(regions); g++) {
		if (p->region[0] != '\0' && strcmp(p->region, regions[g]) != 0)
			continue;
		long long region_total = 0;
		for (size_t k = 0; k < ARRAY_LEN(kinds); k++) {
			long long count = 0, pop = 0;
			for (int i = 0; i < PQntuples(res); i++) {
				if (strcmp(PQgetvalue(res, i, 0), regions[g]) == 0 &&
				    strcmp(PQgetvalue(res, i, 1), kinds[k]) == 0) {
					count = atoll(PQgetvalue(res, i, 2));
					pop = atoll(PQgetvalue(res, i, 3));
				}
			}
			region_total += count;
			cell_add(by_kind,
			    json_pack("{s:s,s:s}", "region", regions[g], "kind", kinds[k]), count);
			cell_add(population,
			    json_pack("{s:s,s:s}", "region", regions[g], "kind", kinds[k]), pop);
		}
		cell_add(by_region, json_pack("{s:s}", "region", regions[g]), region_total);
	}
	return json_pack("[o,o,o]", by_region, by_kind, population);
}

static void
content_hash(const json_t *content, char out[72])
{
	unsigned char md[32];
	unsigned int len = 0;
	char hex[65];
	char *text = json_dumps(content, JSON_COMPACT | JSON_SORT_KEYS);
	EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
	free(text);
	hex_encode(md, sizeof(md), hex);
	snprintf(out, 72, "sha256:%s", hex);
}

static enum job_outcome
fail_job(struct db *db, const char *job_id, const char *why)
{
	const char *params[] = { job_id, why };
	PGresult *res = db_exec(db, &stmt_fail, 2, params);
	if (res == NULL)
		return JOB_RETRY;
	PQclear(res);
	log_warn(NULL, "job failed", json_pack("{s:s,s:s}", "job_id", job_id, "error", why));
	return JOB_FAILED;
}

static enum job_outcome
transient(struct db *db, const char *job_id)
{
	db_rollback(db);
	log_warn(NULL, "job postponed",
	    json_pack("{s:s,s:s}", "job_id", job_id, "sqlstate", db_error_sqlstate(db)));
	return JOB_RETRY;
}

enum job_outcome
build_report(struct db *db, const char *job_id)
{
	struct report_params p;
	const char *id_param[] = { job_id };
	PGresult *res = NULL;
	json_t *params = NULL, *content = NULL;
	enum job_outcome outcome;

	if (!uuid_valid(job_id))
		return JOB_FAILED; /* not ours to mark: there can be no such job row */
	res = db_exec(db, &stmt_start, 1, id_param);
	if (res == NULL)
		return transient(db, job_id);
	if (PQntuples(res) == 0) {
		PQclear(res);
		return JOB_DONE; /* already succeeded, dead, or unknown: nothing to do */
	}
	params = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	PQclear(res);
	if (params == NULL || report_params_parse(params, &p) != 0) {
		json_decref(params);
		return fail_job(db, job_id, "invalid report parameters");
	}

	/* One snapshot of the inputs: the figures and the watermark must agree. */
	if (db_begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ") != 0)
		goto transient;
	res = db_exec(db, &stmt_lock, 1, id_param);
	if (res == NULL)
		goto transient;
	int still_running = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "running") == 0;
	PQclear(res);
	if (!still_running) {
		db_rollback(db); /* another instance finished it meanwhile */
		json_decref(params);
		return JOB_DONE;
	}
	const char *region_param[] = { p.region[0] ? p.region : NULL };
	res = db_exec(db, &stmt_offices, 1, region_param);
	if (res == NULL)
		goto transient;
	json_t *tables = office_tables(res, &p);
	PQclear(res);
	res = db_exec(db, &stmt_watermark, 0, NULL);
	if (res == NULL) {
		json_decref(tables);
		goto transient;
	}
	json_t *watermark =
	    json_pack("{s:I,s:s?}", "offices", (json_int_t)atoll(PQgetvalue(res, 0, 0)),
	        "offices_updated_at", *PQgetvalue(res, 0, 1) ? PQgetvalue(res, 0, 1) : NULL);
	PQclear(res);

	content = json_pack("{s:s,s:s,s:O,s:o,s:o}", "scope", p.scope, "period", p.period, "params",
	    params, "watermark", watermark, "tables", tables);
	char hash[72];
	content_hash(content, hash);
	char *params_text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	char *watermark_text = json_dumps(watermark, JSON_COMPACT | JSON_SORT_KEYS);
	char *tables_text = json_dumps(tables, JSON_COMPACT | JSON_PRESERVE_ORDER);
	const char *insert[] = { job_id, p.scope, p.period, params_text, watermark_text, hash,
		tables_text };
	res = db_exec(db, &stmt_insert, 7, insert);
	free(params_text);
	free(watermark_text);
	free(tables_text);
	if (res == NULL)
		goto transient;
	char report_id[37];
	snprintf(report_id, sizeof(report_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	const char *succeed[] = { job_id, report_id };
	res = db_exec(db, &stmt_succeed, 2, succeed);
	if (res == NULL)
		goto transient;
	PQclear(res);
	if (db_commit(db) != 0)
		goto transient;
	log_info(NULL, "report built",
	    json_pack("{s:s,s:s,s:s,s:s}", "job_id", job_id, "report_id", report_id, "scope",
	        p.scope, "period", p.period));
	outcome = JOB_DONE;
	goto out;
transient:
	outcome = transient(db, job_id);
out:
	json_decref(params);
	json_decref(content);
	return outcome;
}
