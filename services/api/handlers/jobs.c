/* Background jobs (report builds): status, attempts, error, timings and the result link. */
#include "handlers.h"

static const struct db_stmt stmt_get = { "jobs_get",
	"SELECT '', json_build_object('id', id, 'kind', kind, 'status', status, 'params', params,"
	" 'attempts', attempts, 'error', error, 'created_at', kqe_ts(created_at),"
	" 'updated_at', kqe_ts(updated_at), 'started_at', kqe_ts(started_at),"
	" 'finished_at', kqe_ts(finished_at), 'next_attempt_at', kqe_ts(next_attempt_at),"
	" 'result', CASE WHEN result_id IS NOT NULL THEN '/v1/reports/' || result_id"
	"  WHEN kind = 'ministry_batch' AND status = 'succeeded' THEN '/v1/reports?job_id=' || id END"
	")::text FROM jobs WHERE ($1::text IS NULL OR requested_by = $1) AND id = $2" };

const struct resource jobs_resource = { .name = "job",
	.title = "job",
	.collection = "/v1/jobs",
	.scope = SCOPE_REQUESTER,
	.get = &stmt_get };
