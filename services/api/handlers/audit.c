/* GET /v1/audit (admin): the audit log with filters and keyset pagination. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/problem.h"
#include "kqe/validate.h"

static const struct db_stmt stmt_list = { "audit_list",
	"SELECT id::text, json_build_object('id', id, 'at', kqe_ts(at), 'actor', actor,"
	" 'role', role, 'office_id', office_id, 'action', action, 'resource', resource,"
	" 'resource_id', resource_id, 'request_id', request_id, 'details', details,"
	" 'prev_hash', prev_hash, 'hash', hash)::text FROM audit_log"
	" WHERE ($1::bigint IS NULL OR id > $1::bigint) AND ($2::text IS NULL OR office_id = $2)"
	" AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR actor = $4)"
	" AND ($5::timestamptz IS NULL OR at >= $5::timestamptz) ORDER BY id LIMIT $6" };

static int
is_digits(const char *s)
{
	return *s != '\0' && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19;
}

void
audit_list(struct request *r)
{
	static const char *const allowed[] = { LIST_PARAMS, "office", "action", "actor", "since",
		NULL };
	struct list_params lp;
	json_t *errors = json_array();
	char limit[24];

	query_parse(r, allowed, errors);
	list_params_parse(r, 1, &lp, errors);
	const char *after = lp.after ? json_string_value(json_array_get(lp.after, 0)) : NULL;
	if (after != NULL && !is_digits(after))
		error_at_parameter(
		    errors, "cursor", "invalid_cursor", "is not a cursor this list issued");
	const char *since = query_get(r, "since");
	if (since != NULL && !timestamp_valid(since))
		error_at_parameter(errors, "since", "format",
		    "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
	const char *const text_params[] = { "office", "action", "actor" };
	for (size_t i = 0; i < ARRAY_LEN(text_params); i++) {
		const char *v = query_get(r, text_params[i]);
		if (v != NULL && (strlen(v) == 0 || strlen(v) > 100 || !utf8_valid(v)))
			error_at_parameter(errors, text_params[i], "format",
			    "must be 1 to 100 characters of UTF-8");
	}
	if (reply_query_errors(r, errors) != 0) {
		list_params_free(&lp);
		return;
	}
	snprintf(limit, sizeof(limit), "%ld", lp.limit + 1);
	const char *params[] = { after, query_get(r, "office"), query_get(r, "action"),
		query_get(r, "actor"), since, limit };
	struct db *db = r->worker->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_list, 6, params)) == NULL || db_commit(db) != 0) {
		PQclear(res);
		db_rollback(db);
		list_params_free(&lp);
		reply_db_error(r);
		return;
	}
	list_params_free(&lp);
	int n = PQntuples(res);
	int shown = n > lp.limit ? (int)lp.limit : n;
	json_t *items = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(items, pg_json(res, i, 1));
	json_t *next = n > lp.limit ? json_pack("[s]", PQgetvalue(res, shown - 1, 0)) : NULL;
	PQclear(res);
	reply_list(r, items, next);
}
