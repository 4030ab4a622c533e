/*
 * Reports: POST /v1/reports queues a build_report job and POST
 * /v1/ministry-batches a ministry_batch job (202 + Location of the job);
 * GET /v1/reports lists snapshots (updated_since for the Ministry's pull),
 * GET /v1/reports/{id} serves one as JSON or CSV and GET
 * /v1/reports/{id}.html as the publishable report.
 *
 * Visibility (docs/security.md): every report holds disclosure-controlled
 * figures only, so ministry, institutes and offices read them all; an
 * advisor reads the state's and its own region's. An office additionally
 * gets its own unsuppressed figures (its rollups for the report's period)
 * beside them in the JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/log.h"
#include "kqe/outbox.h"
#include "kqe/problem.h"
#include "kqe/validate.h"
#include "kqe/report_params.h"
#include "report_html.h"

/* $1 the advisor's region (NULL: not an advisor): what it may read. */
#define REPORT_VISIBLE " ($1::text IS NULL OR scope = 'state' OR params->>'region' = $1)"

static const struct db_stmt stmt_get = { "reports_get",
	"SELECT json_build_object('id', id, 'job_id', job_id, 'scope', scope, 'period', period,"
	" 'params', params, 'watermark', watermark, 'generated_at', kqe_ts(generated_at),"
	" 'content_hash', content_hash, 'tables', tables)::text FROM reports"
	" WHERE id = $2 AND" REPORT_VISIBLE };
static const struct db_stmt stmt_list = { "reports_list",
	"SELECT kqe_ts(generated_at), id, json_build_object('id', id, 'job_id', job_id,"
	" 'scope', scope, 'period', period, 'params', params, 'generated_at',"
	" kqe_ts(generated_at), 'content_hash', content_hash, 'href', '/v1/reports/' || id,"
	" 'html', '/v1/reports/' || id || '.html')::text FROM reports WHERE" REPORT_VISIBLE
	" AND ($2::timestamptz IS NULL OR generated_at >= $2)"
	" AND ($3::uuid IS NULL OR job_id = $3) AND ($4::text IS NULL OR period = $4)"
	" AND ($5::text IS NULL OR scope = $5)"
	" AND ($6::timestamptz IS NULL OR (generated_at, id) > ($6, $7::uuid))"
	" ORDER BY generated_at, id LIMIT $8" };
/* The office's own figures for a report's period; RLS shows an office its own rows only. */
static const struct db_stmt stmt_own = { "reports_own",
	"SELECT coalesce(json_agg(json_build_object('dimension', dimension, 'category', category,"
	" 'count', n) ORDER BY dimension, category), '[]')::text FROM (SELECT dimension, category,"
	" sum(n)::bigint AS n FROM rollups WHERE office_id = $1"
	" AND ($2::int IS NULL OR year = $2) AND ($3::text IS NULL OR cycle = $3)"
	" GROUP BY 1, 2) r" };

static const char *
advisor_region(const struct request *r)
{
	return r->principal.role == ROLE_ADVISOR ? r->principal.region : NULL;
}

/* Queues a job of kind with params (JSON text): job, outbox event and audit entry at once. */
static void
queue_job(struct request *r, const char *kind, const char *action, const char *params)
{
	struct outbox_event ev;
	struct db *db = r->worker->db;
	if (db_begin_as(db, &r->principal) != 0 || outbox_add_job(db, kind, params, &ev) != 0 ||
	    audit_append(db, &r->principal, action, "job", ev.job_id, NULL, r->id, NULL) != 0 ||
	    db_commit(db) != 0) {
		db_rollback(db);
		reply_db_error(r);
		return;
	}
	/* Committed: from here on the job exists whatever happens to Redis. */
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "job not published; the outbox relay will",
		    json_pack("{s:s}", "job_id", ev.job_id));
	char location[64];
	snprintf(location, sizeof(location), "/v1/jobs/%s", ev.job_id);
	reply_header(r, "Location", location);
	reply_json(r, 202,
	    json_pack("{s:s,s:s,s:s,s:s}", "id", ev.job_id, "kind", kind, "status", "queued",
	        "href", location));
}

void
reports_create(struct request *r)
{
	static const char *const allowed[] = { NULL };
	if (query_accept(r, allowed) != 0)
		return;
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *errors = json_array();
	report_params_validate(body, errors);
	if (json_array_size(errors) > 0) {
		json_decref(body);
		reply_problem(r, 422, "The report request has invalid fields.", errors);
		return;
	}
	json_decref(errors);
	char *params = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	queue_job(r, "build_report", "report.request", params);
	free(params);
}

static const struct field_spec batch_fields[] = {
	{ .name = "year", .type = FIELD_INTEGER, .required = true, .min = 2000, .max = 2100 },
};

void
ministry_batches_create(struct request *r)
{
	static const char *const allowed[] = { NULL };
	if (query_accept(r, allowed) != 0)
		return;
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *errors = json_array();
	validate_object(body, batch_fields, ARRAY_LEN(batch_fields), "", errors);
	if (json_array_size(errors) > 0) {
		json_decref(body);
		reply_problem(r, 422, "The batch request has invalid fields.", errors);
		return;
	}
	json_decref(errors);
	char *params = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	queue_job(r, "ministry_batch", "report.batch", params);
	free(params);
}

/*
 * A report as CSV in long form, one row per figure: table, title, the
 * dimension values, and the figure with the symbols of German official
 * statistics — "." suppressed, "–" exactly zero, "x" no figure makes sense.
 */
static json_t *
report_rows(const json_t *report)
{
	json_t *rows = json_array();
	size_t i, j, k;
	json_t *table, *cell, *dim;
	json_array_foreach(json_object_get(report, "tables"), i, table)
	{
		json_array_foreach(json_object_get(table, "cells"), j, cell)
		{
			json_t *row = json_pack("{s:O,s:O}", "table", json_object_get(table, "id"),
			    "title", json_object_get(table, "title"));
			char name[40];
			json_array_foreach(json_object_get(table, "dimensions"), k, dim)
			{
				snprintf(name, sizeof(name), "dimension_%zu", k + 1);
				json_object_set(row, name, dim);
				snprintf(name, sizeof(name), "value_%zu", k + 1);
				const json_t *v = json_object_get(cell, json_string_value(dim));
				/* A total over this dimension. */
				json_object_set_new(row, name,
				    json_is_string(v) ? json_incref((json_t *)v)
				                      : json_string("insgesamt"));
			}
			const json_t *value = json_object_get(cell, "value");
			if (json_is_true(json_object_get(cell, "suppressed")))
				json_object_set_new(row, "figure", json_string("."));
			else if (json_is_null(value)) /* no figure makes sense (nothing answered) */
				json_object_set_new(row, "figure", json_string("x"));
			else if (json_is_number(value) && json_number_value(value) == 0)
				json_object_set_new(row, "figure", json_string("\u2013"));
			else
				json_object_set(row, "figure", (json_t *)value);
			json_array_append_new(rows, row);
		}
	}
	return rows;
}

/* The report r->params[0] as the caller may see it, or NULL after answering. */
static json_t *
report_load(struct request *r, const char *id)
{
	if (!uuid_valid(id)) {
		reply_not_found(r);
		return NULL;
	}
	const char *params[] = { advisor_region(r), id };
	PGresult *res = db_exec(r->worker->db, &stmt_get, 2, params);
	if (res == NULL) {
		reply_db_error(r);
		return NULL;
	}
	if (PQntuples(res) == 0) {
		PQclear(res); /* another region's report is as if it did not exist */
		reply_not_found(r);
		return NULL;
	}
	json_t *report = pg_json(res, 0, 0);
	PQclear(res);
	return report;
}

/* Adds "own": the calling office's unsuppressed figures for the report's period. 0 or -1. */
static int
add_own_figures(struct request *r, json_t *report)
{
	struct report_params p;
	if (report_params_parse(json_object_get(report, "params"), &p) != 0)
		return 0; /* cannot happen for a stored report; leave it out */
	char year[12];
	snprintf(year, sizeof(year), "%d", p.first_year);
	int is_year = p.first_year == p.last_year;
	const char *params[] = { r->principal.office_id, is_year ? year : NULL,
		is_year ? NULL : p.period };
	struct db *db = r->worker->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_own, 3, params)) == NULL || db_commit(db) != 0) {
		PQclear(res);
		db_rollback(db);
		return -1;
	}
	json_object_set_new(report, "own",
	    json_pack(
	        "{s:s,s:o}", "office_id", r->principal.office_id, "figures", pg_json(res, 0, 0)));
	PQclear(res);
	return 0;
}

void
reports_get(struct request *r)
{
	static const char *const allowed[] = { "format", "dialect", NULL };
	struct list_params lp;
	json_t *errors = json_array();

	query_parse(r, allowed, errors);
	list_params_parse(r, 1, &lp, errors); /* reads format and dialect (and Accept) */
	list_params_free(&lp);
	if (reply_query_errors(r, errors) != 0)
		return;
	json_t *report = report_load(r, r->params[0]);
	if (report == NULL)
		return;
	if (r->list_format != LIST_JSON) {
		reply_list(r, report_rows(report), NULL);
		json_decref(report);
		return;
	}
	if (role_is_office(r->principal.role) && add_own_figures(r, report) != 0) {
		json_decref(report);
		reply_db_error(r);
		return;
	}
	reply_json(r, 200, report);
}

void
reports_html(struct request *r)
{
	static const char *const allowed[] = { NULL };
	if (query_accept(r, allowed) != 0)
		return;
	json_t *report = report_load(r, r->params[0]);
	if (report == NULL)
		return;
	char *html = report_html(report);
	json_decref(report);
	/* Nothing to run, nothing to fetch: the document is self-contained. */
	reply_header(r, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
	reply_bytes(r, 200, "text/html; charset=utf-8", html, strlen(html));
	free(html);
}

void
reports_list(struct request *r)
{
	static const char *const allowed[] = { LIST_PARAMS, "updated_since", "job_id", "period",
		"scope", NULL };
	struct list_params lp;
	json_t *errors = json_array();

	query_parse(r, allowed, errors);
	list_params_parse(r, 2, &lp, errors);
	const char *after_at = lp.after ? json_string_value(json_array_get(lp.after, 0)) : NULL;
	const char *after_id = lp.after ? json_string_value(json_array_get(lp.after, 1)) : NULL;
	if (lp.after != NULL && (after_at == NULL || !timestamp_valid(after_at) ||
	                            after_id == NULL || !uuid_valid(after_id)))
		error_at_parameter(
		    errors, "cursor", "invalid_cursor", "is not a cursor this list issued");
	const char *since = query_get(r, "updated_since");
	if (since != NULL && !timestamp_valid(since))
		error_at_parameter(errors, "updated_since", "format",
		    "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
	const char *job = query_get(r, "job_id");
	if (job != NULL && !uuid_valid(job))
		error_at_parameter(errors, "job_id", "format", "must be a UUID");
	const char *scope = query_get(r, "scope");
	if (scope != NULL && strcmp(scope, "state") != 0 && strcmp(scope, "region") != 0)
		error_at_parameter(errors, "scope", "enum", "must be one of: state, region");
	const char *period = query_get(r, "period");
	if (period != NULL) {
		json_t *probe = json_pack("{s:s,s:s}", "scope", "state", "period", period);
		struct report_params p;
		if (report_params_parse(probe, &p) != 0)
			error_at_parameter(errors, "period", "format",
			    "must be a year YYYY or a five-year cycle YYYY-YYYY starting 2023, 2028, ...");
		json_decref(probe);
	}
	if (reply_query_errors(r, errors) != 0) {
		list_params_free(&lp);
		return;
	}
	char limit[24];
	snprintf(limit, sizeof(limit), "%ld", lp.limit + 1);
	const char *params[] = { advisor_region(r), since, job, period, scope, after_at, after_id,
		limit };
	PGresult *res = db_exec(r->worker->db, &stmt_list, 8, params);
	list_params_free(&lp);
	if (res == NULL) {
		reply_db_error(r);
		return;
	}
	int n = PQntuples(res);
	int shown = n > lp.limit ? (int)lp.limit : n;
	json_t *items = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(items, pg_json(res, i, 2));
	json_t *next = n > lp.limit ? json_pack("[s,s]", PQgetvalue(res, shown - 1, 0),
	                                  PQgetvalue(res, shown - 1, 1))
	                            : NULL;
	PQclear(res);
	reply_list(r, items, next);
}
