/*
 * § 8 quality procedures (Qualitätsentwicklungsverfahren): one per office and
 * five-year cycle, plus out-of-cycle procedures. The phase moves forward one
 * step at a time (planned → case_selection → … → completed), every move
 * audited with from and to. Offices see and open their own, institutes see
 * and move the ones assigned to them; advisors and the ministry see only
 * which offices are due, overdue, in progress or done (GET
 * /v1/cycles/{cycle}/offices).
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/problem.h"
#include "kqe/report_params.h"

#define PROCEDURE_JSON                                                                             \
	"json_build_object('id', id, 'office_id', office_id, 'cycle', cycle,"                      \
	" 'out_of_cycle', out_of_cycle, 'institute_id', institute_id, 'phase', phase,"             \
	" 'due_date', due_date, 'version', version, 'created_at', kqe_ts(created_at),"             \
	" 'updated_at', kqe_ts(updated_at))::text"

/* $1 office scope, $2 institute scope (NULL = none): the API's own tenant filter. */
#define PROCEDURE_SCOPE                                                                            \
	" ($1::text IS NULL OR office_id = $1) AND ($2::text IS NULL OR institute_id = $2)"

static const struct db_stmt stmt_get = { "procedures_get",
	"SELECT office_id, " PROCEDURE_JSON " FROM procedures WHERE" PROCEDURE_SCOPE
	" AND id = $3::uuid" };
/* scope, $3 office_id, $4 updated_since, $5 $6 cursor, $7 limit */
static const struct db_stmt stmt_list = { "procedures_list",
	"SELECT kqe_ts(updated_at), id::text, office_id, " PROCEDURE_JSON " FROM procedures"
	" WHERE" PROCEDURE_SCOPE " AND ($3::text IS NULL OR office_id = $3)"
	" AND ($4::timestamptz IS NULL OR updated_at >= $4)"
	" AND ($5::timestamptz IS NULL OR (updated_at, id) > ($5, $6::uuid))"
	" ORDER BY updated_at, id LIMIT $7" };
static const struct db_stmt stmt_lock = { "procedures_lock",
	"SELECT office_id, version, " PROCEDURE_JSON " FROM procedures WHERE" PROCEDURE_SCOPE
	" AND id = $3::uuid FOR UPDATE" };
static const struct db_stmt stmt_insert = { "procedures_insert",
	"INSERT INTO procedures (office_id, cycle, out_of_cycle, institute_id, due_date)"
	" VALUES ($1, $2, $3::boolean, $4, $5::date)"
	" ON CONFLICT (office_id, cycle) WHERE NOT out_of_cycle DO NOTHING RETURNING id::text" };
static const struct db_stmt stmt_in_cycle = {
	"procedures_in_cycle",
	"SELECT id::text FROM procedures WHERE office_id = $1 AND cycle = $2 AND NOT out_of_cycle"
};
static const struct db_stmt stmt_update = { "procedures_update",
	"UPDATE procedures SET phase = $2, institute_id = $3, due_date = $4::date,"
	" version = version + 1, updated_at = now() WHERE id = $1::uuid" };
const struct db_stmt procedure_of_caller = { "procedure_of_caller",
	"SELECT office_id, cycle, phase FROM procedures WHERE" PROCEDURE_SCOPE
	" AND id = $3::uuid FOR SHARE" };
static const struct db_stmt stmt_office_exists = { "procedures_office_exists",
	"SELECT 1 FROM offices WHERE id = $1" };
static const struct db_stmt stmt_institute_exists = { "procedures_institute_exists",
	"SELECT 1 FROM institutes WHERE id = $1" };

static const char *
check_cycle(const json_t *v)
{
	char cycle[10];
	return cycle_canonical(json_string_value(v), cycle) && strlen(json_string_value(v)) == 9
	           ? NULL
	           : "must be a five-year cycle YYYY-YYYY starting 2023, 2028, ...";
}

static const struct field_spec fields[] = {
	/* Office roles open their own office's procedure: they may leave it out. */
	{ .name = "office_id", .type = FIELD_STRING, .immutable = true, .check = slug_id_check },
	{ .name = "cycle",
	    .type = FIELD_STRING,
	    .required = true,
	    .immutable = true,
	    .check = check_cycle },
	{ .name = "out_of_cycle", .type = FIELD_BOOLEAN, .immutable = true },
	{ .name = "institute_id", .type = FIELD_STRING, .nullable = true, .check = slug_id_check },
	{ .name = "phase",
	    .type = FIELD_ENUM,
	    .required = true,
	    .update_only = true,
	    .values = codelist_procedure_phase_values },
	{ .name = "due_date", .type = FIELD_DATE, .nullable = true },
};

static int
phase_index(const char *phase)
{
	for (int i = 0; codelist_procedure_phase_values[i] != NULL; i++)
		if (strcmp(codelist_procedure_phase_values[i], phase) == 0)
			return i;
	return -1;
}

static int
procedure_create(struct write *w)
{
	const struct principal *p = &w->r->principal;
	const char *office = doc_text(w, "office_id");
	if (role_is_office(p->role) && office != NULL && strcmp(office, p->office_id) != 0)
		write_error(w, "/office_id", "not_found", "is not your office");
	else if (!role_is_office(p->role) && office == NULL)
		write_error(w, "/office_id", "required", "is required");
	if (json_array_size(w->errors) > 0)
		return 0;
	snprintf(
	    w->office, sizeof(w->office), "%s", role_is_office(p->role) ? p->office_id : office);
	const char *cycle = doc_text(w, "cycle");
	const char *params[] = { w->office, cycle,
		json_is_true(json_object_get(w->doc, "out_of_cycle")) ? "true" : "false",
		doc_text(w, "institute_id"), doc_text(w, "due_date") };
	PGresult *res = db_exec(w->r->db, &stmt_insert, 5, params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		snprintf(w->id, sizeof(w->id), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		return 0;
	}
	PQclear(res);
	return write_conflict(w, &stmt_in_cycle, 2, params, "/cycle",
	    "This office already has its procedure of this cycle (see Location); further "
	    "procedures are out of cycle (out_of_cycle: true).");
}

/* Phases move one step forward; an institute may not reassign the procedure. */
static int
procedure_update(struct write *w)
{
	const char *from = json_text(json_object_get(w->current, "phase"));
	const char *to = doc_text(w, "phase");
	const json_t *was = json_object_get(w->current, "institute_id");
	const json_t *now = json_object_get(w->doc, "institute_id");
	if (w->r->principal.role == ROLE_INSTITUTE && !json_equal(was, now ? now : json_null())) {
		write_refuse(w, 403, "/institute_id", "forbidden",
		    "An institute cannot reassign a procedure.");
		return 0;
	}
	int next = phase_index(from) + 1;
	const char *allowed = codelist_procedure_phase_values[next];
	if (strcmp(to, from) != 0 && phase_index(to) != next) {
		char detail[200];
		snprintf(detail, sizeof(detail),
		    "A procedure in phase %s can only move to %s; phases move forward one at a time.",
		    from, allowed ? allowed : "(none: it is completed)");
		write_refuse(w, 409, "/phase", "transition", detail);
		w->refusal_members = json_pack("{s:[]}", "allowed_next");
		if (allowed != NULL)
			json_array_append_new(json_object_get(w->refusal_members, "allowed_next"),
			    json_string(allowed));
		return 0;
	}
	if (strcmp(to, from) != 0) {
		w->action = "procedure.phase";
		json_object_set_new(
		    w->details, "phase", json_pack("{s:s,s:s}", "from", from, "to", to));
	}
	const char *params[] = { w->id, to, doc_text(w, "institute_id"), doc_text(w, "due_date") };
	return write_exec(w, &stmt_update, 4, params);
}

static const char *const csv_columns[] = { "id", "office_id", "cycle", "out_of_cycle",
	"institute_id", "phase", "due_date", "version", "created_at", "updated_at", NULL };

const struct resource procedures_resource = { OFFICE_DATA(
	                                          "procedure", "procedure", "/v1/procedures"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.fields = fields, .nfields = ARRAY_LEN(fields),
	.refs = { { "office_id", &stmt_office_exists, SCOPE_NONE, "does not exist" },
	    { "institute_id", &stmt_institute_exists, SCOPE_NONE, "does not exist" } },
	.create = procedure_create, .update = procedure_update };

static const struct db_stmt stmt_status = { "procedures_status",
	"SELECT office_id, status FROM kqe_procedure_status($1, current_date)"
	" WHERE $2::text IS NULL OR status = $2 OR ($2 = 'open' AND status IN ('due', 'overdue'))"
	" ORDER BY office_id" };

/*
 * GET /v1/cycles/{cycle}/offices?status=open — the cycle's coverage: office
 * ids and a status only (due, overdue, in_progress, completed; "open" is due
 * and overdue together). Advisors see their region's offices, the ministry
 * and admin all; the database decides (kqe_procedure_status).
 */
void
cycle_offices(struct request *r)
{
	const char *params[] = { r->params[0], query_get(r, "status") };
	PGresult *res = query_as_caller(r, &stmt_status, 2, params);
	if (res == NULL)
		return;
	json_t *items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
		    items, json_pack("{s:s,s:s}", "office_id", PQgetvalue(res, i, 0), "status",
		               PQgetvalue(res, i, 1)));
	PQclear(res);
	reply_json(r, 200, json_pack("{s:s,s:o}", "cycle", r->params[0], "items", items));
}
