/*
 * Reports: POST /v1/reports queues a build_report job and POST
 * /v1/ministry-batches a ministry_batch job (202 + Location of the job);
 * GET /v1/reports lists snapshots (updated_since for the Ministry's pull),
 * GET /v1/reports/{id} serves one as JSON, …/{id}.csv as CSV and
 * …/{id}.html as the publishable report; GET /v1/report-periods says which
 * periods have data.
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
#include "kqe/problem.h"
#include "kqe/report_params.h"
#include "report_html.h"

/* $1 the advisor's region (NULL: not an advisor): what it may read. */
#define REPORT_VISIBLE " ($1::text IS NULL OR scope = 'state' OR params->>'region' = $1)"
#define REPORT_HEAD                                                                                \
	"'id', id, 'job_id', job_id, 'scope', scope, 'region', params->>'region',"                 \
	" 'period', period, 'params', params"

static const struct db_stmt stmt_get = { "reports_get",
	"SELECT '', json_build_object(" REPORT_HEAD ", 'watermark', watermark,"
	" 'generated_at', kqe_ts(generated_at), 'content_hash', content_hash,"
	" 'audit_head', audit_head, 'tables', tables)::text FROM reports WHERE" REPORT_VISIBLE
	" AND id = $2" };
/* $1 region, $2 updated_since, $3 job_id, $4 period, $5 scope, $6 $7 cursor, $8 limit */
static const struct db_stmt stmt_list = { "reports_list",
	"SELECT kqe_ts(generated_at), id, '', json_build_object(" REPORT_HEAD ","
	" 'generated_at', kqe_ts(generated_at), 'content_hash', content_hash,"
	" 'href', '/v1/reports/' || id, 'html', '/v1/reports/' || id || '.html',"
	" 'csv', '/v1/reports/' || id || '.csv')::text FROM reports WHERE" REPORT_VISIBLE
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

const char *const report_csv_columns[] = { "table", "title", "dimension_1", "value_1",
	"dimension_2", "value_2", "dimension_3", "value_3", "figure", "release", "release_cut_off",
	"method", NULL };

static const char *const list_columns[] = { "id", "job_id", "scope", "region", "period",
	"generated_at", "content_hash", "href", "html", "csv", NULL };

const struct resource reports_resource = { .name = "report",
	.title = "report",
	.collection = "/v1/reports",
	.scope = SCOPE_REGION,
	.get = &stmt_get,
	.list = &stmt_list,
	.keys = { KEY_TIMESTAMP, KEY_UUID },
	.nkeys = 2,
	.csv_columns = list_columns };

/* Queues a job of kind with the request body as its parameters: job, outbox event, audit. */
static void
queue_job(struct request *r, const char *kind, const char *action)
{
	struct outbox_event ev;
	struct db *db = r->db;
	char location[64];
	if (request_begin(r) != 0)
		return;
	char *params = json_dumps(r->body, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = outbox_add_job(db, kind, params, r->principal.actor, &ev) != 0;
	free(params);
	if (rc == 0) {
		snprintf(location, sizeof(location), "/v1/jobs/%s", ev.job_id);
		rc = audit_append(db, &r->principal, action, "job", ev.job_id, NULL, r->id, NULL) !=
		         0 ||
		     request_commit(r, 202, location, NULL) != 0;
	}
	if (rc != 0) {
		db_rollback(db);
		reply_db_error(r);
		return;
	}
	publish(r, &ev); /* committed: the job exists whatever happens to Redis */
	reply_header(r, "Location", location);
	reply_json(r, 202,
	    json_pack("{s:s,s:s,s:s,s:s}", "id", ev.job_id, "kind", kind, "status", "queued",
	        "href", location));
}

/* The body checked by validate (which counts the errors it appends); else a 422 with detail. */
static bool
body_valid(
    struct request *r, size_t (*validate)(const json_t *body, json_t *errors), const char *detail)
{
	json_t *errors = json_array();
	if (validate(r->body, errors) > 0) {
		reply_problem(r, 422, detail, errors);
		return false;
	}
	json_decref(errors);
	return true;
}

void
reports_create(struct request *r)
{
	if (!body_valid(r, report_params_validate, "The report request has invalid fields."))
		return;
	const char *region = json_string_value(json_object_get(r->body, "region"));
	if (r->principal.role == ROLE_ADVISOR && region != NULL &&
	    strcmp(region, r->principal.region) != 0) {
		json_t *why = json_array();
		error_at_pointer(why, "/region", "forbidden", "must be your own region");
		reply_problem(r, 403,
		    "An advisor requests reports of the state or of its own region only.", why);
		return;
	}
	queue_job(r, "build_report", "report.request");
}

static const struct field_spec batch_fields[] = {
	{ .name = "period", .type = FIELD_STRING, .required = true, .check = period_check },
};

size_t
ministry_batch_validate(const json_t *body, json_t *errors)
{
	return validate_object(body, batch_fields, ARRAY_LEN(batch_fields), "", errors);
}

void
ministry_batches_create(struct request *r)
{
	if (!body_valid(r, ministry_batch_validate, "The batch request has invalid fields."))
		return;
	queue_job(r, "ministry_batch", "report.batch");
}

/*
 * The disclosure control a report was built with, as its watermark records it, in one CSV
 * cell: the method and its parameters (docs/disclosure.md), then the rules for comparison
 * values. A new string, or NULL for a report that records none.
 */
static char *
method_text(const json_t *disclosure)
{
	if (!json_is_object(disclosure))
		return NULL;
	char text[256], rules[128];
	snprintf(rules, sizeof(rules),
	    "medians and quartiles: min_offices=%lld min_count=%lld dominance=%g",
	    (long long)json_integer_value(json_object_get(disclosure, "min_offices")),
	    (long long)json_integer_value(json_object_get(disclosure, "min_count")),
	    json_number_value(json_object_get(disclosure, "dominance")));
	const char *method = json_string_value(json_object_get(disclosure, "method"));
	if (method != NULL && strcmp(method, "cell_key") == 0)
		snprintf(text, sizeof(text), "cell_key D=%lld V=%g V_large=%g js=%lld; %s",
		    (long long)json_integer_value(json_object_get(disclosure, "max_deviation")),
		    json_number_value(json_object_get(disclosure, "variance")),
		    json_number_value(json_object_get(disclosure, "variance_large")),
		    (long long)json_integer_value(json_object_get(disclosure, "js")), rules);
	else /* reports built before the cell-key method: suppression */
		snprintf(text, sizeof(text), "suppression; %s", rules);
	return xstrdup(text);
}

json_t *
report_rows(const json_t *report)
{
	json_t *rows = json_array();
	size_t i, j, k;
	json_t *table, *cell, *dim;
	const json_t *watermark = json_object_get(report, "watermark");
	const json_t *release = json_object_get(watermark, "release");
	char *method = method_text(json_object_get(watermark, "disclosure"));
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
			if (json_is_object(release)) {
				json_object_set(row, "release", json_object_get(release, "id"));
				json_object_set(
				    row, "release_cut_off", json_object_get(release, "cut_off"));
			}
			if (method != NULL)
				json_object_set_new(row, "method", json_string(method));
			json_array_append_new(rows, row);
		}
	}
	free(method);
	return rows;
}

/* The report of the path as the caller may see it (owned by the request), or NULL after answering.
 */
static json_t *
report_load(struct request *r)
{
	char office[65];
	int failed;
	json_t *report = read_one(r, &reports_resource, r->params[0], office, &failed);
	if (failed)
		reply_db_error(r);
	else if (report == NULL)
		reply_not_found(r); /* another region's report is as if it did not exist */
	return report != NULL ? request_own(r, report) : NULL;
}

/* Adds "own": the calling office's unsuppressed figures for the report's period. 0, or -1 after
 * answering. */
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
	PGresult *res = query_as_caller(r, &stmt_own, 3, params);
	if (res == NULL)
		return -1;
	json_object_set_new(report, "own",
	    json_pack(
	        "{s:s,s:o}", "office_id", r->principal.office_id, "figures", pg_json(res, 0, 0)));
	PQclear(res);
	return 0;
}

void
reports_get(struct request *r)
{
	json_t *report = report_load(r);
	if (report == NULL)
		return;
	if (role_is_office(r->principal.role) && add_own_figures(r, report) != 0)
		return;
	reply_json(r, 200, json_incref(report));
}

void
reports_csv(struct request *r)
{
	json_t *report = report_load(r);
	if (report == NULL)
		return;
	char filename[64];
	snprintf(filename, sizeof(filename), "report-%s.csv", r->params[0]);
	reply_list(r, report_rows(report), NULL, report_csv_columns, filename);
}

void
reports_html(struct request *r)
{
	json_t *report = report_load(r);
	if (report == NULL)
		return;
	char *html = report_html(report);
	/* Nothing to run, nothing to fetch: the document is self-contained. */
	reply_header(r, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
	reply_bytes(r, 200, "text/html; charset=utf-8", html, strlen(html));
	free(html);
}

/*
 * Which periods have data, per kind of data, and which date places a record
 * in a year (docs/api-conventions.md "Report periods"): case analyses by the
 * month the § 8a assessment closed, topics by the day they were identified
 * (Europe/Berlin), structure surveys by their reference date; a cycle holds
 * the records of its procedures. Read from the rollups the reports are built
 * from, so a period listed here is one a report has figures for.
 */
static const struct db_stmt stmt_periods = { "report_periods",
	"SELECT kind, basis, coalesce(json_agg(period ORDER BY period)"
	" FILTER (WHERE length(period) = 4), '[]')::text,"
	" coalesce(json_agg(period ORDER BY period) FILTER (WHERE length(period) = 9), '[]')::text"
	" FROM kqe_report_periods() GROUP BY kind, basis ORDER BY kind" };

void
report_periods(struct request *r)
{
	PGresult *res = db_exec(r->db, &stmt_periods, 0, NULL);
	if (res == NULL) {
		reply_db_error(r);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
		    items, json_pack("{s:s,s:s,s:o,s:o}", "kind", PQgetvalue(res, i, 0),
		               "date_basis", PQgetvalue(res, i, 1), "years", pg_json(res, i, 2),
		               "cycles", pg_json(res, i, 3)));
	PQclear(res);
	reply_json(r, 200, json_pack("{s:o}", "items", items));
}
