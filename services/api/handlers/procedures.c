/*
 * § 8 quality procedures (Qualitätsentwicklungsverfahren), read side. The
 * full resource arrives with the submission API; this is enough to prove
 * tenant isolation: the query is scoped to the caller here, and row-level
 * security scopes it again in PostgreSQL (db_begin_as).
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/problem.h"
#include "kqe/validate.h"

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
	" ORDER BY id LIMIT $5" };
static const struct db_stmt stmt_get = { "procedures_get",
	"SELECT office_id, " PROCEDURE_JSON " FROM procedures WHERE" PROCEDURE_SCOPE
	" AND id = $3::uuid" };

/* The scope parameters for the caller: an office sees its own, an institute its assigned. */
static void
scope(const struct principal *p, const char **office, const char **institute)
{
	*office = role_is_office(p->role) ? p->office_id : NULL;
	*institute = p->role == ROLE_INSTITUTE ? p->institute_id : NULL;
}

/* Reads by anyone outside the owning office are audited. */
static int
outside_office(const struct principal *p)
{
	return !role_is_office(p->role);
}

void
procedures_list(struct request *r)
{
	static const char *const allowed[] = { "limit", "cursor", "office", NULL };
	struct list_params lp;
	json_t *errors = json_array();
	char limit[24];
	const char *office, *institute;

	query_parse(r, allowed, errors);
	list_params_parse(r, 1, &lp, errors);
	const char *after = lp.after ? json_string_value(json_array_get(lp.after, 0)) : NULL;
	if (after != NULL && !uuid_valid(after))
		error_at_parameter(
		    errors, "cursor", "invalid_cursor", "is not a cursor this list issued");
	const char *office_filter = query_get(r, "office");
	if (office_filter != NULL && !slug_id_valid(office_filter))
		error_at_parameter(errors, "office", "format", "is not an office id");
	if (reply_query_errors(r, errors) != 0) {
		list_params_free(&lp);
		return;
	}
	scope(&r->principal, &office, &institute);
	snprintf(limit, sizeof(limit), "%ld", lp.limit + 1);
	const char *params[] = { office, institute, after, query_get(r, "office"), limit };

	struct db *db = r->worker->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_list, 5, params)) == NULL)
		goto fail;
	int n = PQntuples(res);
	int shown = n > lp.limit ? (int)lp.limit : n;
	if (outside_office(&r->principal) && shown > 0) {
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
	if (!uuid_valid(r->params[0])) {
		reply_not_found(r);
		return;
	}
	scope(&r->principal, &office, &institute);
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
	if (outside_office(&r->principal) &&
	    audit_append(db, &r->principal, "procedure.read", "procedure", r->params[0],
	        PQgetvalue(res, 0, 0), r->id, NULL) != 0)
		goto fail;
	if (db_commit(db) != 0)
		goto fail;
	json_t *procedure = pg_json(res, 0, 1);
	PQclear(res);
	reply_json(r, 200, procedure);
	return;
fail:
	PQclear(res);
	db_rollback(db);
	reply_db_error(r);
}
