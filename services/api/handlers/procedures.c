/*
 * § 8 quality procedures (Qualitätsentwicklungsverfahren), read side. The
 * full resource arrives with the submission API; this is enough to prove
 * tenant isolation: the query is scoped to the caller here, and row-level
 * security scopes it again in PostgreSQL (db_begin_as).
 */
#include <stdio.h>
#include <string.h>

#include "caller.h"
#include "handlers.h"
#include "http.h"
#include "kqe/problem.h"
#include "kqe/validate.h"
#include "kqe/codelists.h"
#include "kqe/log.h"
#include "kqe/outbox.h"
#include <stdlib.h>

/* The query of writes that take nothing but ?dry_run=. */
static const char *const dry_run_allowed[] = { "dry_run", NULL };

#define PROCEDURE_JSON                                                                             \
	"json_build_object('id', id, 'office_id', office_id, 'cycle', cycle,"                      \
	" 'out_of_cycle', out_of_cycle, 'institute_id', institute_id, 'phase', phase,"             \
	" 'due_date', due_date, 'version', version, 'created_at', kqe_ts(created_at),"             \
	" 'updated_at', kqe_ts(updated_at))::text"

/* $1 office scope, $2 institute scope (NULL = none): the API's own tenant filter. */
#define PROCEDURE_SCOPE                                                                            \
	" ($1::text IS NULL OR office_id = $1) AND ($2::text IS NULL OR institute_id = $2)"

static const struct db_stmt stmt_list = { "procedures_list",
	"SELECT id::text, office_id, " PROCEDURE_JSON " FROM procedures WHERE" PROCEDURE_SCOPE
	" AND ($3::uuid IS NULL OR id > $3::uuid) AND ($4::text IS NULL OR office_id = $4)"
	" AND ($6::timestamptz IS NULL OR updated_at >= $6::timestamptz)"
	" ORDER BY id LIMIT $5" };
static const struct db_stmt stmt_get = { "procedures_get",
	"SELECT office_id, " PROCEDURE_JSON " FROM procedures WHERE" PROCEDURE_SCOPE
	" AND id = $3::uuid" };

static int
in_list(const char *const *values, const char *s)
{
	for (; *values; values++)
		if (strcmp(*values, s) == 0)
			return 1;
	return 0;
}

/* A five-year § 8 cycle: starts 1 July 2023 and every five years after. */
static int
cycle_valid(const char *s)
{
	int a, b, n = 0;
	return s != NULL && strlen(s) == 9 && sscanf(s, "%4d-%4d%n", &a, &b, &n) == 2 && n == 9 &&
	       s[4] == '-' && a >= 2023 && a <= 2098 && (a - 2023) % 5 == 0 && b == a + 5;
}

static const struct db_stmt stmt_status = { "procedures_status",
	"SELECT office_id, status FROM kqe_procedure_status($1, current_date)"
	" WHERE ($2::text IS NULL OR status = $2) ORDER BY office_id" };

static const char *const statuses[] = { "due", "overdue", "in_progress", "completed", NULL };

/*
 * GET /v1/procedures?cycle=2023-2028&status=due — the cycle's coverage:
 * office ids and a status only. The one view of procedures advisors (their
 * region) and the ministry have. status is one of due, overdue, in_progress,
 * completed, or "open" for due and overdue together.
 */
static void
procedures_status(struct request *r, const char *cycle, const char *status)
{
	json_t *errors = json_array();
	/* A cycle may be named by its start year: cycle=2023 is 2023-2028. */
	char full[16];
	int start, n = 0;
	if (strlen(cycle) == 4 && sscanf(cycle, "%4d%n", &start, &n) == 1 && n == 4 &&
	    start >= 2023 && start <= 2098 && (start - 2023) % 5 == 0) {
		snprintf(full, sizeof(full), "%d-%d", start, start + 5);
		cycle = full;
	}
	if (!cycle_valid(cycle))
		error_at_parameter(errors, "cycle", "format",
		    "must be a five-year cycle YYYY-YYYY starting 2023, 2028, ...");
	int open = status != NULL && strcmp(status, "open") == 0;
	if (status != NULL && !open && !in_list(statuses, status))
		error_at_parameter(errors, "status", "enum",
		    "must be one of: due overdue in_progress completed open");
	if (reply_query_errors(r, errors) != 0)
		return;
	struct db *db = r->worker->db;
	PGresult *res = NULL;
	const char *params[] = { cycle, open ? NULL : status };
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_status, 2, params)) == NULL || db_commit(db) != 0) {
		PQclear(res);
		db_rollback(db);
		reply_db_error(r);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		const char *st = PQgetvalue(res, i, 1);
		if (open && strcmp(st, "due") != 0 && strcmp(st, "overdue") != 0)
			continue;
		json_array_append_new(items,
		    json_pack("{s:s,s:s}", "office_id", PQgetvalue(res, i, 0), "status", st));
	}
	PQclear(res);
	reply_json(
	    r, 200, json_pack("{s:s,s:o,s:n}", "cycle", cycle, "items", items, "next_cursor"));
}

void
procedures_list(struct request *r)
{
	static const char *const allowed[] = { LIST_PARAMS, "office", "cycle", "status",
		"updated_since", NULL };
	const char *status_or_cycle[2];
	struct list_params lp;
	json_t *errors = json_array();
	char limit[24];
	const char *office, *institute;

	query_parse(r, allowed, errors);
	status_or_cycle[0] = query_get(r, "status");
	status_or_cycle[1] = query_get(r, "cycle");
	if (json_array_size(errors) == 0 && (status_or_cycle[0] || status_or_cycle[1])) {
		/* The coverage view: cycle is required, and it takes no paging or office filter. */
		json_decref(errors);
		errors = json_array();
		if (status_or_cycle[1] == NULL)
			error_at_parameter(errors, "cycle", "required", "is required with status");
		const char *const extra[] = { "limit", "cursor", "office", "format", "dialect",
			"updated_since" };
		for (size_t i = 0; i < ARRAY_LEN(extra); i++)
			if (query_get(r, extra[i]) != NULL)
				error_at_parameter(errors, extra[i], "unknown_parameter",
				    "is not a parameter of the cycle status view");
		if (reply_query_errors(r, errors) == 0)
			procedures_status(r, status_or_cycle[1], status_or_cycle[0]);
		return;
	}
	if (r->principal.role == ROLE_ADVISOR || r->principal.role == ROLE_MINISTRY) {
		json_decref(errors);
		reply_problem(r, 403,
		    "Advisors and the ministry see the cycle status view only (cycle, status).",
		    NULL);
		return;
	}
	list_params_parse(r, 1, &lp, errors);
	const char *after = lp.after ? json_string_value(json_array_get(lp.after, 0)) : NULL;
	if (after != NULL && !uuid_valid(after))
		error_at_parameter(
		    errors, "cursor", "invalid_cursor", "is not a cursor this list issued");
	const char *office_filter = query_get(r, "office");
	if (office_filter != NULL && !slug_id_valid(office_filter))
		error_at_parameter(errors, "office", "format", "is not an office id");
	const char *since = query_get(r, "updated_since");
	if (since != NULL && !timestamp_valid(since))
		error_at_parameter(errors, "updated_since", "format",
		    "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
	if (reply_query_errors(r, errors) != 0) {
		list_params_free(&lp);
		return;
	}
	caller_scope(&r->principal, &office, &institute);
	snprintf(limit, sizeof(limit), "%ld", lp.limit + 1);
	const char *params[] = { office, institute, after, query_get(r, "office"), limit, since };

	struct db *db = r->worker->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_list, 6, params)) == NULL)
		goto fail;
	int n = PQntuples(res);
	int shown = n > lp.limit ? (int)lp.limit : n;
	if (caller_outside_office(&r->principal) && shown > 0) {
		json_t *details = json_pack("{s:i}", "count", shown);
		int rc = audit_append(db, &r->principal, "procedure.list", "procedure", NULL,
		    query_get(r, "office"), r->id, details);
		json_decref(details);
		if (rc != 0)
			goto fail;
	}
	if (db_commit(db) != 0)
		goto fail;
	list_params_free(&lp);
	json_t *items = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(items, pg_json(res, i, 2));
	json_t *next = n > lp.limit ? json_pack("[s]", PQgetvalue(res, shown - 1, 0)) : NULL;
	PQclear(res);
	reply_list(r, items, next);
	return;
fail:
	PQclear(res);
	db_rollback(db);
	list_params_free(&lp);
	reply_db_error(r);
}

void
procedures_get(struct request *r)
{
	static const char *const allowed[] = { NULL };
	const char *office, *institute;

	if (query_accept(r, allowed) != 0)
		return;
	if (r->principal.role == ROLE_ADVISOR || r->principal.role == ROLE_MINISTRY) {
		reply_problem(r, 403,
		    "Advisors and the ministry see the cycle status view only (cycle, status).",
		    NULL);
		return;
	}
	if (!uuid_valid(r->params[0])) {
		reply_not_found(r);
		return;
	}
	caller_scope(&r->principal, &office, &institute);
	const char *params[] = { office, institute, r->params[0] };
	struct db *db = r->worker->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_get, 3, params)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		/* Not there, or not the caller's: the same answer, so nothing leaks. */
		PQclear(res);
		db_rollback(db);
		reply_not_found(r);
		return;
	}
	if (caller_outside_office(&r->principal) &&
	    audit_append(db, &r->principal, "procedure.read", "procedure", r->params[0],
	        PQgetvalue(res, 0, 0), r->id, NULL) != 0)
		goto fail;
	if (db_commit(db) != 0)
		goto fail;
	json_t *procedure = pg_json(res, 0, 1);
	PQclear(res);
	reply_resource(r, 200, procedure);
	return;
fail:
	PQclear(res);
	db_rollback(db);
	reply_db_error(r);
}

/* ---- writes ---- */

static const char *
check_cycle(const json_t *v)
{
	return cycle_valid(json_string_value(v))
	           ? NULL
	           : "must be a five-year cycle YYYY-YYYY starting 2023, 2028, ...";
}

static const char *
check_slug(const json_t *v)
{
	return slug_id_valid(json_string_value(v)) ? NULL : "is not an id";
}

static const struct field_spec create_fields[] = {
	{ .name = "office_id", .type = FIELD_STRING, .check = check_slug },
	{ .name = "cycle", .type = FIELD_STRING, .required = true, .check = check_cycle },
	{ .name = "out_of_cycle", .type = FIELD_BOOLEAN },
	{ .name = "institute_id", .type = FIELD_STRING, .nullable = true, .check = check_slug },
	{ .name = "due_date", .type = FIELD_DATE, .nullable = true },
};

static const struct field_spec patch_fields[] = {
	{ .name = "phase", .type = FIELD_ENUM, .values = codelist_procedure_phase_values },
	{ .name = "institute_id", .type = FIELD_STRING, .nullable = true, .check = check_slug },
	{ .name = "due_date", .type = FIELD_DATE, .nullable = true },
};

static const struct db_stmt stmt_insert = { "procedures_insert",
	"INSERT INTO procedures (office_id, cycle, out_of_cycle, institute_id, due_date)"
	" VALUES ($1, $2, $3::boolean, $4, $5::date)"
	" ON CONFLICT (office_id, cycle) WHERE NOT out_of_cycle DO NOTHING RETURNING id::text" };
static const struct db_stmt stmt_in_cycle = {
	"procedures_in_cycle",
	"SELECT id::text FROM procedures WHERE office_id = $1 AND cycle = $2 AND NOT out_of_cycle"
};
static const struct db_stmt stmt_office_exists = { "procedures_office_exists",
	"SELECT 1 FROM offices WHERE id = $1" };
static const struct db_stmt stmt_institute_exists = { "procedures_institute_exists",
	"SELECT 1 FROM institutes WHERE id = $1" };
static const struct db_stmt stmt_by_id = { "procedures_by_id",
	"SELECT office_id, phase, version, " PROCEDURE_JSON " FROM procedures WHERE" PROCEDURE_SCOPE
	" AND id = $3::uuid FOR UPDATE" };
static const struct db_stmt stmt_update = { "procedures_update",
	"UPDATE procedures SET phase = coalesce($2, phase),"
	" institute_id = CASE WHEN $3::boolean THEN $4 ELSE institute_id END,"
	" due_date = CASE WHEN $5::boolean THEN $6::date ELSE due_date END,"
	" version = version + 1, updated_at = now() WHERE id = $1::uuid AND version = $7::int"
	" RETURNING " PROCEDURE_JSON };

/* 422 for a referenced id that does not exist (the same for one the caller may not use). */
static int
check_reference(
    struct request *r, const struct db_stmt *stmt, const char *id, const char *ptr, json_t *errors)
{
	if (id == NULL)
		return 0;
	const char *params[] = { id };
	PGresult *res = db_exec(r->worker->db, stmt, 1, params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0)
		error_at_pointer(errors, ptr, "not_found", "does not exist");
	PQclear(res);
	return 0;
}

static void
reply_unprocessable(struct request *r, json_t *errors)
{
	reply_problem(r, 422, "The procedure has invalid fields.", errors);
}

/* POST /v1/procedures — an office opens its procedure of a cycle (admin: any office's). */
void
procedures_create(struct request *r)
{
	struct db *db = r->worker->db;
	struct outbox_event ev;
	PGresult *res = NULL;
	int dry_run;

	if (write_params(r, dry_run_allowed, &dry_run, NULL) != 0)
		return;
	if (r->principal.role == ROLE_INSTITUTE) {
		reply_problem(r, 403, "Procedures are opened by their office.", NULL);
		return;
	}
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *errors = json_array();
	validate_object(body, create_fields, ARRAY_LEN(create_fields), "", errors);
	const char *office = json_text(json_object_get(body, "office_id"));
	if (role_is_office(r->principal.role)) {
		if (office != NULL && strcmp(office, r->principal.office_id) != 0)
			error_at_pointer(errors, "/office_id", "not_found", "is not your office");
		office = r->principal.office_id;
	} else if (office == NULL && json_object_get(body, "office_id") == NULL) {
		error_at_pointer(errors, "/office_id", "required", "is required");
	}
	const char *cycle = json_text(json_object_get(body, "cycle"));
	const char *institute = json_text(json_object_get(body, "institute_id"));
	const char *due = json_text(json_object_get(body, "due_date"));
	int out_of_cycle = json_is_true(json_object_get(body, "out_of_cycle"));

	if (db_begin_as(db, &r->principal) != 0)
		goto fail;
	if (json_array_size(errors) == 0 &&
	    (check_reference(r, &stmt_office_exists, office, "/office_id", errors) != 0 ||
	        check_reference(r, &stmt_institute_exists, institute, "/institute_id", errors) !=
	            0))
		goto fail;
	if (json_array_size(errors) > 0) {
		db_rollback(db);
		reply_unprocessable(r, errors);
		json_decref(body);
		return;
	}
	json_decref(errors);
	errors = NULL;
	const char *params[] = { office, cycle, out_of_cycle ? "true" : "false", institute, due };
	if ((res = db_exec(db, &stmt_insert, 5, params)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		const char *cparams[] = { office, cycle };
		if ((res = db_exec(db, &stmt_in_cycle, 2, cparams)) == NULL)
			goto fail;
		char location[64];
		snprintf(location, sizeof(location), "/v1/procedures/%s",
		    PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
		PQclear(res);
		res = NULL;
		db_rollback(db);
		reply_header(r, "Location", location);
		reply_problem(r, 409,
		    "This office already has its procedure of this cycle (see Location); further "
		    "procedures are out of cycle (out_of_cycle: true).",
		    NULL);
		json_decref(body);
		return;
	}
	char id[37];
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (dry_run) {
		db_rollback(db);
		json_decref(body);
		reply_json(r, 200, json_pack("{s:b,s:s}", "valid", 1, "would", "create"));
		return;
	}
	const char *office_param[] = { NULL, NULL, id };
	if (audit_append(
	        db, &r->principal, "procedure.create", "procedure", id, office, r->id, NULL) != 0 ||
	    office_changed(db, office, &ev) != 0 ||
	    (res = db_exec(db, &stmt_by_id, 3, office_param)) == NULL || PQntuples(res) == 0 ||
	    db_commit(db) != 0)
		goto fail;
	json_t *procedure = pg_json(res, 0, 3);
	PQclear(res);
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	char location[64];
	snprintf(location, sizeof(location), "/v1/procedures/%s", id);
	reply_header(r, "Location", location);
	reply_resource(r, 201, procedure);
	json_decref(body);
	return;
fail:
	PQclear(res);
	db_rollback(db);
	json_decref(errors);
	json_decref(body);
	reply_db_error(r);
}

static int
phase_index(const char *phase)
{
	for (int i = 0; codelist_procedure_phase_values[i] != NULL; i++)
		if (strcmp(codelist_procedure_phase_values[i], phase) == 0)
			return i;
	return -1;
}

/*
 * PATCH /v1/procedures/{id} (JSON merge patch, If-Match required): move the
 * phase one step forward (planned → case_selection → … → completed; never
 * back, never skipping), assign the institute, set the due date. Each phase
 * move is audited with from and to.
 */
void
procedures_patch(struct request *r)
{
	struct db *db = r->worker->db;
	struct outbox_event ev;
	PGresult *res = NULL;
	long expected;
	const char *office_scope, *institute_scope;
	int dry_run;

	if (write_params(r, dry_run_allowed, &dry_run, NULL) != 0)
		return;
	if (!uuid_valid(r->params[0])) {
		reply_not_found(r);
		return;
	}
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *errors = json_array();
	validate_object(body, patch_fields, ARRAY_LEN(patch_fields), "", errors);
	if (json_array_size(errors) > 0) {
		reply_unprocessable(r, errors);
		json_decref(body);
		return;
	}
	if (if_match_version(r, &expected) != 0) {
		json_decref(errors);
		json_decref(body);
		return;
	}
	caller_scope(&r->principal, &office_scope, &institute_scope);
	const char *params[] = { office_scope, institute_scope, r->params[0] };
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_by_id, 3, params)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(db);
		json_decref(errors);
		json_decref(body);
		reply_not_found(r);
		return;
	}
	char office[65], from[32], version[16];
	snprintf(office, sizeof(office), "%s", PQgetvalue(res, 0, 0));
	snprintf(from, sizeof(from), "%s", PQgetvalue(res, 0, 1));
	long current = atol(PQgetvalue(res, 0, 2));
	PQclear(res);
	res = NULL;
	if (current != expected) {
		db_rollback(db);
		json_decref(errors);
		json_decref(body);
		char etag[32];
		snprintf(etag, sizeof(etag), "\"v%ld\"", current);
		reply_header(r, "ETag", etag);
		reply_problem(
		    r, 412, "The procedure changed since your read; read it again.", NULL);
		return;
	}
	const char *to = json_text(json_object_get(body, "phase"));
	if (to != NULL && strcmp(to, from) != 0 && phase_index(to) != phase_index(from) + 1) {
		db_rollback(db);
		json_decref(errors);
		json_decref(body);
		char detail[200];
		int next = phase_index(from) + 1;
		snprintf(detail, sizeof(detail),
		    "A procedure in phase %s can only move to %s; phases move forward one at a time.",
		    from,
		    codelist_procedure_phase_values[next] ? codelist_procedure_phase_values[next]
		                                          : "(none: it is completed)");
		reply_problem(r, 409, detail, NULL);
		return;
	}
	const json_t *inst = json_object_get(body, "institute_id");
	const json_t *due = json_object_get(body, "due_date");
	if (inst != NULL && r->principal.role == ROLE_INSTITUTE)
		error_at_pointer(errors, "/institute_id", "forbidden",
		    "an institute cannot reassign a procedure");
	if (check_reference(r, &stmt_institute_exists, json_text(inst), "/institute_id", errors) !=
	    0)
		goto fail;
	if (json_array_size(errors) > 0) {
		db_rollback(db);
		reply_unprocessable(r, errors);
		json_decref(body);
		return;
	}
	snprintf(version, sizeof(version), "%ld", expected);
	const char *uparams[] = { r->params[0], to, inst ? "true" : "false", json_text(inst),
		due ? "true" : "false", json_text(due), version };
	if ((res = db_exec(db, &stmt_update, 7, uparams)) == NULL || PQntuples(res) == 0)
		goto fail;
	if (dry_run) {
		/*
		 * What the procedure would look like; nothing is kept, so its
		 * version (and ETag, valid for the real write) stays the current one.
		 */
		json_t *would = pg_json(res, 0, 0);
		PQclear(res);
		db_rollback(db);
		json_decref(errors);
		json_decref(body);
		json_object_set_new(would, "version", json_integer(expected));
		reply_resource(r, 200, would);
		return;
	}
	json_t *details = json_object();
	if (to != NULL && strcmp(to, from) != 0)
		json_object_set_new(
		    details, "phase", json_pack("{s:s,s:s}", "from", from, "to", to));
	if (inst != NULL)
		json_object_set_new(details, "institute_id", json_deep_copy(inst));
	if (due != NULL)
		json_object_set_new(details, "due_date", json_deep_copy(due));
	int rc = audit_append(db, &r->principal,
	    json_object_get(details, "phase") ? "procedure.phase" : "procedure.update", "procedure",
	    r->params[0], office, r->id, details);
	json_decref(details);
	if (rc != 0 || office_changed(db, office, &ev) != 0 || db_commit(db) != 0)
		goto fail;
	json_t *procedure = pg_json(res, 0, 0);
	PQclear(res);
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	json_decref(errors);
	json_decref(body);
	reply_resource(r, 200, procedure);
	return;
fail:
	PQclear(res);
	db_rollback(db);
	json_decref(errors);
	json_decref(body);
	reply_db_error(r);
}
