/*
 * Reports: POST /v1/reports queues a build_report job (202 + Location of the
 * job); GET /v1/reports/{id} serves an immutable report snapshot.
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

static const struct db_stmt stmt_get = { "reports_get",
	"SELECT json_build_object('id', id, 'job_id', job_id, 'scope', scope, 'period', period,"
	" 'params', params, 'watermark', watermark, 'generated_at', kqe_ts(generated_at),"
	" 'content_hash', content_hash, 'tables', tables)::text FROM reports WHERE id = $1" };

void
reports_create(struct request *r)
{
	static const char *const allowed[] = { NULL };
	struct outbox_event ev;

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

	/* One transaction: the job, its outbox event and the audit entry. */
	struct db *db = r->worker->db;
	if (db_begin_as(db, &r->principal) != 0 ||
	    outbox_add_job(db, "build_report", params, &ev) != 0 ||
	    audit_append(
	        db, &r->principal, "report.request", "job", ev.job_id, NULL, r->id, NULL) != 0 ||
	    db_commit(db) != 0) {
		db_rollback(db);
		free(params);
		reply_db_error(r);
		return;
	}
	free(params);
	/* Committed: from here on the job exists whatever happens to Redis. */
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "job not published; the outbox relay will",
		    json_pack("{s:s}", "job_id", ev.job_id));
	char location[64];
	snprintf(location, sizeof(location), "/v1/jobs/%s", ev.job_id);
	reply_header(r, "Location", location);
	reply_json(r, 202,
	    json_pack("{s:s,s:s,s:s,s:s}", "id", ev.job_id, "kind", "build_report", "status",
	        "queued", "href", location));
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
	if (!uuid_valid(r->params[0])) {
		reply_not_found(r);
		return;
	}
	const char *params[] = { r->params[0] };
	PGresult *res = db_exec(r->worker->db, &stmt_get, 1, params);
	if (res == NULL) {
		reply_db_error(r);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		reply_not_found(r);
		return;
	}
	json_t *report = pg_json(res, 0, 0);
	PQclear(res);
	if (r->list_format != LIST_JSON) {
		reply_list(r, report_rows(report), NULL);
		json_decref(report);
		return;
	}
	reply_json(r, 200, report);
}
