/* Liveness, readiness and Prometheus metrics. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "handlers.h"
#include "http.h"
#include "kqe/migrate.h"
#include "kqe/outbox.h"
#include "conn.h"
#include "metrics.h"

void
health_live(struct request *r)
{
	reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void
health_ready(struct request *r)
{
	int version;
	char detail[128];

	if (migrate_current(r->worker->db, &version) != 0) {
		reply_header(r, "Retry-After", "5");
		reply_problem(r, 503, "The database is not reachable.", NULL);
		return;
	}
	if (version != migrate_latest()) {
		snprintf(detail, sizeof(detail),
		    "The database schema is at version %d; this build needs %d (run kqe migrate).",
		    version, migrate_latest());
		reply_header(r, "Retry-After", "5");
		reply_problem(r, 503, detail, NULL);
		return;
	}
	reply_json(r, 200, json_pack("{s:s,s:i}", "status", "ready", "schema_version", version));
}

void
health_metrics(struct request *r)
{
	struct evbuffer *buf = evbuffer_new();
	metrics_render(buf);
	evbuffer_add_printf(buf,
	    "# HELP kqe_api_threads Worker threads (one database connection each).\n"
	    "# TYPE kqe_api_threads gauge\nkqe_api_threads %ld\n"
	    "# HELP kqe_http_connections_open Client connections open in this process.\n"
	    "# TYPE kqe_http_connections_open gauge\nkqe_http_connections_open %ld\n",
	    r->worker->cfg->api_threads, conn_guard_open(r->worker->guard));
	redisReply *len = redis_cmd(r->worker->redis, "XLEN %s", JOBS_STREAM);
	evbuffer_add_printf(buf,
	    "# HELP kqe_redis_up Whether Redis answered this scrape.\n"
	    "# TYPE kqe_redis_up gauge\nkqe_redis_up %d\n",
	    len != NULL);
	if (len != NULL && len->type == REDIS_REPLY_INTEGER)
		evbuffer_add_printf(buf,
		    "# HELP kqe_jobs_stream_length Entries in the job stream.\n"
		    "# TYPE kqe_jobs_stream_length gauge\n"
		    "kqe_jobs_stream_length %lld\n",
		    len->integer);
	if (len != NULL)
		freeReplyObject(len);
	size_t n = evbuffer_get_length(buf);
	reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    (const char *)evbuffer_pullup(buf, -1), n);
	evbuffer_free(buf);
}
