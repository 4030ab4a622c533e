/*
 * build_report — runs a report job (build_report: one report; ministry_batch:
 * every report of a period) and stores the reports with the job's success in
 * one transaction, so a crash leaves either no report and a re-runnable job,
 * or all of them.
 *
 * A report starts with directory facts (offices per region and kind, the
 * population under 18: public, no disclosure control), then the statistics
 * of stats.c, all read in one REPEATABLE READ snapshot after the rollups
 * caught up with every committed write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aggregator.h"
#include "kqe/ckm.h"
#include "kqe/disclosure.h"
#include "kqe/log.h"
#include "kqe/principal.h"
#include "kqe/report_params.h"

/*
 * A failed job runs again only when the retry scheduler re-queued it. Starting a job
 * still 'running' counts an attempt only if another runner ($2) had it: that one crashed
 * or hung. This runner had it when it postponed the job (database unreachable, full or
 * timed out), which is no fault of the job and must not use up its attempts.
 */
static const struct db_stmt stmt_start = {
	"job_start",
	"UPDATE jobs SET attempts = attempts +"
	" CASE WHEN status = 'running' AND runner = $2 THEN 0 ELSE 1 END,"
	" status = 'running', runner = $2,"
	" started_at = coalesce(started_at, now()), updated_at = now()"
	" WHERE id = $1 AND status IN ('queued', 'running') RETURNING kind, params::text, attempts"
};
static const struct db_stmt stmt_lock = { "job_lock",
	"SELECT status FROM jobs WHERE id = $1 FOR UPDATE" };
static const struct db_stmt stmt_offices = { "report_offices",
	"SELECT region, kind, count(*), coalesce(sum(population_under_18), 0)"
	" FROM offices WHERE ($1::text IS NULL OR region = $1) GROUP BY region, kind" };
/* The inputs as the release $1 publishes them (NULL: none yet), never live: how many case
 * analyses, topics and surveys it holds, and when the newest of its states was taken. */
static const struct db_stmt stmt_watermark = { "report_watermark",
	"WITH states AS (SELECT b.state_release, b.year, b.cycle, o.id AS office_id"
	"  FROM release_buckets b JOIN offices o ON o.region = b.region AND o.kind = b.kind"
	"  WHERE b.release_id = $1::int),"
	" counts AS (SELECT coalesce(sum(r.n) FILTER (WHERE r.dimension = 'cases'), 0) AS cases,"
	"  coalesce(sum(r.n) FILTER (WHERE r.dimension = 'topic_status'), 0) AS topics"
	"  FROM states s JOIN release_rollups r ON r.release_id = s.state_release"
	"  AND r.year = s.year AND r.cycle = s.cycle AND r.office_id = s.office_id)"
	" SELECT (SELECT count(*) FROM offices),"
	" coalesce((SELECT kqe_ts(max(updated_at)) FROM offices), ''),"
	" (SELECT cases FROM counts),"
	" coalesce((SELECT kqe_ts(max(x.cut_off)) FROM releases x"
	"  WHERE x.id IN (SELECT state_release FROM states)), ''),"
	" (SELECT topics FROM counts),"
	" (SELECT count(DISTINCT (t.office_id, t.year, t.cycle)) FROM states s"
	"  JOIN release_structure t ON t.release_id = s.state_release AND t.year = s.year"
	"  AND t.cycle = s.cycle AND t.office_id = s.office_id),"
	" (SELECT count(*) FROM rollup_dirty)" };
/* The latest release, and whether it publishes every bucket of the period ($1 year, $2 cycle)
 * in its final state. */
static const struct db_stmt stmt_release = { "report_release",
	"SELECT r.id, kqe_ts(r.cut_off), coalesce(bool_and(b.final), false) FROM releases r"
	" LEFT JOIN release_buckets b ON b.release_id = r.id AND ($1::int IS NULL OR b.year = $1)"
	" AND ($2::text IS NULL OR b.cycle = $2) WHERE r.id = (SELECT max(id) FROM releases)"
	" GROUP BY r.id, r.cut_off" };
static const struct db_stmt stmt_insert = { "report_insert",
	"INSERT INTO reports (job_id, scope, period, params, watermark, content_hash, tables,"
	" audit_head) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7::json,"
	" kqe_audit_head_newest())"
	" RETURNING id" };
static const struct db_stmt stmt_succeed = { "job_succeed",
	"UPDATE jobs SET status = 'succeeded', result_id = $2, error = NULL,"
	" finished_at = now(), updated_at = now() WHERE id = $1" };
/* A failed attempt is recorded only while the job still runs: when two instances held one
 * redelivered job, the loser's failure (a serialization error on the job row, or the report
 * already there) must not turn the winner's 'succeeded' into 'failed' and then 'dead'. */
static const struct db_stmt stmt_fail = { "job_fail",
	"UPDATE jobs SET status = 'failed', error = $2, updated_at = now(),"
	" next_attempt_at = now() + $3::bigint * interval '1 millisecond'"
	" WHERE id = $1 AND status = 'running' RETURNING id" };
static const struct db_stmt stmt_dead = {
	"job_dead",
	"UPDATE jobs SET status = 'dead', error = $2, next_attempt_at = NULL,"
	" finished_at = now(), updated_at = now() WHERE id = $1 AND status = 'running' RETURNING id"
};
static const struct db_stmt stmt_requeue = { "job_requeue",
	"WITH due AS (SELECT id FROM jobs WHERE status = 'failed' AND next_attempt_at <= now()"
	"   ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED),"
	" requeued AS (UPDATE jobs j SET status = 'queued', next_attempt_at = NULL,"
	"   updated_at = now() FROM due WHERE j.id = due.id RETURNING j.id, j.kind)"
	" INSERT INTO outbox (kind, job_id) SELECT kind, id FROM requeued" };

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

long
job_backoff_ms(const struct config *cfg, int attempts, unsigned random)
{
	long delay = cfg->jobs_backoff_base_ms;
	for (int i = 1; i < attempts && delay < cfg->jobs_backoff_max_ms; i++)
		delay *= 2;
	if (delay > cfg->jobs_backoff_max_ms)
		delay = cfg->jobs_backoff_max_ms;
	/* "Equal jitter": half fixed, half random, so retries of many jobs spread out. */
	long half = delay / 2;
	return half + (half > 0 ? (long)(random % (unsigned long)(half + 1)) : 0);
}

enum job_outcome
job_attempt_failed(
    struct db *db, const struct config *cfg, const char *job_id, int attempts, const char *error)
{
	db_rollback(db);
	int dead = attempts >= cfg->jobs_max_attempts;
	unsigned random;
	random_bytes((unsigned char *)&random, sizeof(random));
	char delay[24];
	snprintf(delay, sizeof(delay), "%ld", job_backoff_ms(cfg, attempts, random));
	const char *params[] = { job_id, error, delay };
	PGresult *res = db_exec(db, dead ? &stmt_dead : &stmt_fail, dead ? 2 : 3, params);
	if (res == NULL)
		return JOB_RETRY; /* cannot even record it: leave it pending */
	int ours = PQntuples(res) == 1;
	PQclear(res);
	if (!ours) {
		log_info(NULL, "job finished elsewhere",
		    json_pack("{s:s,s:s}", "job_id", job_id, "error", error));
		return JOB_DONE;
	}
	log_warn(NULL, dead ? "job dead" : "job failed; retry scheduled",
	    json_pack("{s:s,s:s,s:i,s:s}", "job_id", job_id, "error", error, "attempts", attempts,
	        "retry_in_ms", dead ? "-" : delay));
	return dead ? JOB_DEAD : JOB_FAILED;
}

int
jobs_requeue_due(struct db *db)
{
	PGresult *res = db_exec(db, &stmt_requeue, 0, NULL);
	if (res == NULL)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n > 0)
		log_info(NULL, "jobs re-queued for retry", json_pack("{s:i}", "jobs", n));
	return n;
}

static enum job_outcome
transient(struct db *db, const char *job_id)
{
	db_rollback(db);
	log_warn(NULL, "job postponed",
	    json_pack("{s:s,s:s}", "job_id", job_id, "sqlstate", db_error_sqlstate(db)));
	return JOB_RETRY;
}

/*
 * The reports a job builds: one for build_report, every report of a period
 * (the state's and both regions') for ministry_batch.
 */
static size_t
job_reports(const char *kind, const json_t *params, struct report_params *out, size_t max)
{
	if (strcmp(kind, "build_report") == 0)
		return report_params_parse(params, &out[0]) == 0 ? 1 : 0;
	const char *period = json_string_value(json_object_get(params, "period"));
	if (strcmp(kind, "ministry_batch") != 0 || !period_valid(period) || max < 3)
		return 0;
	json_t *bodies[] = { json_pack("{s:s,s:s}", "scope", "state", "period", period),
		json_pack("{s:s,s:s,s:s}", "scope", "region", "region", "LVR", "period", period),
		json_pack("{s:s,s:s,s:s}", "scope", "region", "region", "LWL", "period", period) };
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
		if (report_params_parse(bodies[i], &out[n]) == 0)
			n++;
		json_decref(bodies[i]);
	}
	return n == ARRAY_LEN(bodies) ? n : 0;
}

/* The parameters a report records: what report_params_parse read. */
static json_t *
params_json(const struct report_params *p)
{
	json_t *j = json_pack("{s:s,s:s}", "scope", p->scope, "period", p->period);
	if (p->region[0])
		json_object_set_new(j, "region", json_string(p->region));
	return j;
}

/*
 * Builds one report inside the job's snapshot and inserts it. Writes the new
 * report's id to report_id. 0, or -1 on a database error.
 */
static int
build_one(struct db *db, const char *job_id, const struct report_params *p,
    const struct sdc_rules *rules, char report_id[37])
{
	const char *region_param[] = { p->region[0] ? p->region : NULL };
	PGresult *res = db_exec(db, &stmt_offices, 1, region_param);
	if (res == NULL)
		return -1;
	json_t *tables = office_tables(res, p);
	PQclear(res);
	/* Cross-office counts come from the latest release (none yet: no counts). */
	char year[12];
	snprintf(year, sizeof(year), "%d", p->first_year);
	const char *period[] = { p->first_year == p->last_year ? year : NULL,
		p->first_year == p->last_year ? NULL : p->period };
	if ((res = db_exec(db, &stmt_release, 2, period)) == NULL) {
		json_decref(tables);
		return -1;
	}
	json_t *release =
	    PQntuples(res) == 1
	        ? json_pack("{s:i,s:s,s:b}", "id", atoi(PQgetvalue(res, 0, 0)), "cut_off",
	              PQgetvalue(res, 0, 1), "final", PQgetvalue(res, 0, 2)[0] == 't')
	        : json_null();
	char release_id[16] = "";
	if (PQntuples(res) == 1)
		snprintf(release_id, sizeof(release_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (stats_tables(db, p, release_id[0] ? release_id : NULL, rules, ckm_default(), tables) !=
	        0 ||
	    (res = db_exec(db, &stmt_watermark, 1,
	         (const char *[]){ release_id[0] ? release_id : NULL })) == NULL) {
		json_decref(tables);
		json_decref(release);
		return -1;
	}
	/* What the report was built from, and the disclosure control it was built with. */
	const struct ckm_params *ckm = &ckm_default()->params;
	json_t *watermark = json_pack(
	    "{s:I,s:s?,s:I,s:s?,s:I,s:I,s:I,s:{s:s,s:[sssss],s:i,s:f,s:f,s:i,s:I,s:f,s:i}}",
	    "offices", (json_int_t)atoll(PQgetvalue(res, 0, 0)), "offices_updated_at",
	    *PQgetvalue(res, 0, 1) ? PQgetvalue(res, 0, 1) : NULL, "case_analyses",
	    (json_int_t)atoll(PQgetvalue(res, 0, 2)), "case_analyses_updated_at",
	    *PQgetvalue(res, 0, 3) ? PQgetvalue(res, 0, 3) : NULL, "topics",
	    (json_int_t)atoll(PQgetvalue(res, 0, 4)), "structure_surveys",
	    (json_int_t)atoll(PQgetvalue(res, 0, 5)), "rollups_pending",
	    (json_int_t)atoll(PQgetvalue(res, 0, 6)), "disclosure", "method", "cell_key", "atoms",
	    "year", "cycle", "region", "kind", "category", "max_deviation", ckm->max_deviation,
	    "variance", ckm->variance, "variance_large",
	    ckm->variance_large > 0 ? ckm->variance_large : ckm->variance, "js", ckm->js,
	    "min_count", (json_int_t)rules->min_count, "dominance", rules->dominance, "min_offices",
	    rules->min_offices);
	PQclear(res);
	json_object_set_new(watermark, "release", release);

	json_t *params = params_json(p);
	json_t *content = json_pack("{s:s,s:s,s:O,s:O,s:O}", "scope", p->scope, "period", p->period,
	    "params", params, "watermark", watermark, "tables", tables);
	char hash[72];
	content_hash(content, hash);
	json_decref(content);
	char *params_text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	char *watermark_text = json_dumps(watermark, JSON_COMPACT | JSON_SORT_KEYS);
	char *tables_text = json_dumps(tables, JSON_COMPACT | JSON_PRESERVE_ORDER);
	const char *insert[] = { job_id, p->scope, p->period, params_text, watermark_text, hash,
		tables_text };
	res = db_exec(db, &stmt_insert, 7, insert);
	free(params_text);
	free(watermark_text);
	free(tables_text);
	json_decref(params);
	json_decref(watermark);
	json_decref(tables);
	if (res == NULL)
		return -1;
	snprintf(report_id, 37, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	log_info(NULL, "report built",
	    json_pack("{s:s,s:s,s:s,s:s,s:s}", "job_id", job_id, "report_id", report_id, "scope",
	        p->scope, "region", p->region, "period", p->period));
	return 0;
}

enum job_outcome
process_job(struct db *db, const struct config *cfg, const char *runner, const char *job_id)
{
	struct report_params reports[3];
	const char *id_param[] = { job_id };
	const char *start_params[] = { job_id, runner };
	PGresult *res = NULL;
	json_t *params = NULL;
	enum job_outcome outcome;
	char kind[32];

	if (!uuid_valid(job_id))
		return JOB_FAILED; /* not ours to mark: there can be no such job row */
	res = db_exec(db, &stmt_start, 2, start_params);
	if (res == NULL)
		return transient(db, job_id);
	if (PQntuples(res) == 0) {
		PQclear(res);
		return JOB_DONE; /* already succeeded, dead, or unknown: nothing to do */
	}
	snprintf(kind, sizeof(kind), "%s", PQgetvalue(res, 0, 0));
	params = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
	int attempts = atoi(PQgetvalue(res, 0, 2));
	PQclear(res);
	if (attempts > cfg->jobs_max_attempts) {
		/* Redelivered after crashing the process each time: a poison job. */
		json_decref(params);
		return job_attempt_failed(
		    db, cfg, job_id, attempts, "crashed or hung on every attempt");
	}
	size_t nreports = params ? job_reports(kind, params, reports, ARRAY_LEN(reports)) : 0;
	json_decref(params);
	if (nreports == 0) {
		/* Hopeless: no retry can fix the parameters. */
		return job_attempt_failed(
		    db, cfg, job_id, (int)cfg->jobs_max_attempts, "invalid job parameters");
	}

	/* Rollups first catch up with every committed write (with KQE_RELEASE_INTERVAL_S 0, a
	 * release is taken too), then one snapshot of the inputs: the figures and the watermark
	 * must agree. */
	static const struct principal system = { .role = ROLE_SYSTEM,
		.actor = "system:aggregator" };
	int release_id;
	if ((cfg->release_interval_s == 0 ? release_make(db, &system, cfg->release_min_changes,
	                                        cfg->release_final != 0, &release_id)
	                                  : rollups_refresh(db, NULL, 0)) < 0 ||
	    db_begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ") != 0 ||
	    db_set_principal(db, &system) != 0)
		goto failed;
	res = db_exec(db, &stmt_lock, 1, id_param);
	if (res == NULL)
		goto failed;
	int still_running = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "running") == 0;
	PQclear(res);
	if (!still_running) {
		db_rollback(db); /* another instance finished it meanwhile */
		return JOB_DONE;
	}
	struct sdc_rules rules = { .min_count = cfg->sdc_min_count,
		.dominance = (double)cfg->sdc_dominance_percent / 100.0,
		.min_offices = (int)cfg->sdc_min_offices };
	char first_id[37] = "", report_id[37];
	for (size_t i = 0; i < nreports; i++) {
		if (build_one(db, job_id, &reports[i], &rules, report_id) != 0)
			goto failed;
		if (i == 0)
			memcpy(first_id, report_id, sizeof(first_id));
	}
	/* A batch's result is its list of reports (GET /v1/jobs links it), not one report. */
	const char *succeed[] = { job_id, strcmp(kind, "build_report") == 0 ? first_id : NULL };
	res = db_exec(db, &stmt_succeed, 2, succeed);
	if (res == NULL)
		goto failed;
	PQclear(res);
	if (db_commit(db) != 0)
		goto failed;
	return JOB_DONE;
failed:
	if (db_error_kind(db) == DB_UNAVAILABLE) {
		outcome = transient(db, job_id);
	} else {
		char why[64];
		snprintf(why, sizeof(why), "database error %s", db_error_sqlstate(db));
		outcome = job_attempt_failed(db, cfg, job_id, attempts, why);
	}
	return outcome;
}
