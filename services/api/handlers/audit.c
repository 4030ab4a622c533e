/* GET /v1/audit (admin): the hash-chained audit log with filters, oldest first. */
#include "handlers.h"
#include "http.h"

/* $1 office_id, $2 action, $3 actor, $4 since, $5 cursor, $6 limit */
static const struct db_stmt stmt_list = { "audit_list",
	"SELECT id::text, office_id, json_build_object('id', id, 'at', kqe_ts(at), 'actor', actor,"
	" 'role', role, 'office_id', office_id, 'action', action, 'resource', resource,"
	" 'resource_id', resource_id, 'request_id', request_id, 'details', details,"
	" 'seq', seq, 'prev_hash', prev_hash, 'hash', hash)::text FROM audit_log"
	" WHERE ($1::text IS NULL OR office_id = $1) AND ($2::text IS NULL OR action = $2)"
	" AND ($3::text IS NULL OR actor = $3) AND ($4::timestamptz IS NULL OR at >= $4)"
	" AND ($5::bigint IS NULL OR id > $5::bigint) ORDER BY id LIMIT $6" };

static const char *const csv_columns[] = { "id", "at", "actor", "role", "office_id", "action",
	"resource", "resource_id", "request_id", "details", "seq", "prev_hash", "hash", NULL };

const struct resource audit_resource = { .name = "audit",
	.title = "audit entry",
	.collection = "/v1/audit",
	.scope = SCOPE_NONE,
	.as_caller = true,
	.list = &stmt_list,
	.keys = { KEY_INTEGER },
	.nkeys = 1,
	.csv_columns = csv_columns };

/*
 * GET /v1/audit/head: the newest head of the audit chain that kqe-aggregator signed (null
 * while none is). Published like the reports, so that a head leaves the system: kept
 * outside, it pins the chain up to its position (`kqe audit verify --head FILE`).
 */
static const struct db_stmt stmt_head = { "audit_head_newest",
	"SELECT kqe_audit_head_newest()::text" };

void
audit_head_get(struct request *r)
{
	PGresult *res = db_exec(r->db, &stmt_head, 0, NULL);
	if (res == NULL) {
		reply_db_error(r);
		return;
	}
	json_t *head = PQgetisnull(res, 0, 0) ? json_null() : pg_json(res, 0, 0);
	PQclear(res);
	reply_json(r, 200, json_pack("{s:o}", "head", head));
}
