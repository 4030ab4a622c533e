/* GET /v1/jobs/{id}: status, attempts, error, timings and the result link. */
#include "handlers.h"
#include "http.h"

static const struct db_stmt stmt_get = { "jobs_get",
	"SELECT json_build_object('id', id, 'kind', kind, 'status', status, 'params', params,"
	" 'attempts', attempts, 'error', error, 'created_at', kqe_ts(created_at),"
	" 'updated_at', kqe_ts(updated_at), 'started_at', kqe_ts(started_at),"
	" 'finished_at', kqe_ts(finished_at), 'next_attempt_at', kqe_ts(next_attempt_at),"
	" 'result', CASE WHEN result_id IS NOT NULL THEN '/v1/reports/' || result_id"
	"  WHEN kind = 'ministry_batch' AND status = 'succeeded' THEN '/v1/reports?job_id=' || id END"
	")::text FROM jobs WHERE id = $1" };

void
jobs_get(struct request *r)
{
	static const char *const allowed[] = { NULL };
	if (query_accept(r, allowed) != 0)
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
	json_t *job = pg_json(res, 0, 0);
	PQclear(res);
	reply_json(r, 200, job);
}
