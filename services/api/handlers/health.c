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
#include "pool.h"
#include "token_cache.h"

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

	if (migrate_current(r->db, &version) != 0) {
		reply_header(r, "Retry-After", "5");
		reply_problem(r, 503, "The database is not reachable.", NULL);
		return;
	}
	/*
	 * A newer schema is fine: migrations only add what an older build does not read
	 * (docs/operations.md, "Start order and upgrades"), so during a rolling update the
	 * instances of the old version stay ready after the new version has migrated.
	 */
	if (version < migrate_latest()) {
		snprintf(detail, sizeof(detail),
		    "The database schema is at version %d; this build needs %d (run kqe migrate).",
		    version, migrate_latest());
		reply_header(r, "Retry-After", "5");
		reply_problem(r, 503, detail, NULL);
		return;
	}
	reply_json(r, 200,
	    json_pack("{s:s,s:i,s:i}", "status", "ready", "schema_version", version,
	        "build_schema_version", migrate_latest()));
}

void
health_metrics(struct request *r)
{
	struct evbuffer *buf = evbuffer_new();
	metrics_render(buf);
	evbuffer_add_printf(buf,
	    "# HELP kqe_api_threads Event-loop threads (HTTP input and output).\n"
	    "# TYPE kqe_api_threads gauge\nkqe_api_threads %ld\n"
	    "# HELP kqe_http_connections_open Client connections open in this process.\n"
	    "# TYPE kqe_http_connections_open gauge\nkqe_http_connections_open %ld\n",
	    r->worker->cfg->api_threads, conn_guard_open(r->worker->guard));
	struct pool_stats s;
	pool_stats(r->worker->pool, &s);
	evbuffer_add_printf(buf,
	    "# HELP kqe_pool_threads Threads running requests that need PostgreSQL or Redis.\n"
	    "# TYPE kqe_pool_threads gauge\nkqe_pool_threads %ld\n"
	    "# HELP kqe_pool_busy Pool threads running a request now.\n"
	    "# TYPE kqe_pool_busy gauge\nkqe_pool_busy %ld\n"
	    "# HELP kqe_pool_queued Requests waiting for a pool thread.\n"
	    "# TYPE kqe_pool_queued gauge\nkqe_pool_queued %ld\n"
	    "# HELP kqe_pool_rejected_total Requests answered 503 at once: the queue was full.\n"
	    "# TYPE kqe_pool_rejected_total counter\nkqe_pool_rejected_total %lu\n"
	    "# HELP kqe_pool_expired_total Requests answered 503: no thread before their deadline.\n"
	    "# TYPE kqe_pool_expired_total counter\nkqe_pool_expired_total %lu\n"
	    "# HELP kqe_breaker_open Whether requests fail fast because the dependency failed.\n"
	    "# TYPE kqe_breaker_open gauge\n"
	    "kqe_breaker_open{dependency=\"postgresql\"} %d\n"
	    "kqe_breaker_open{dependency=\"redis\"} %d\n"
	    "# HELP kqe_breaker_trips_total How often the breaker opened.\n"
	    "# TYPE kqe_breaker_trips_total counter\n"
	    "kqe_breaker_trips_total{dependency=\"postgresql\"} %lu\n"
	    "kqe_breaker_trips_total{dependency=\"redis\"} %lu\n",
	    s.threads, s.busy, s.queued, s.rejected, s.expired, s.db_open, s.redis_open, s.db_trips,
	    s.redis_trips);
	unsigned long invalidations, hits;
	token_cache_stats(&invalidations, &hits);
	evbuffer_add_printf(buf,
	    "# HELP kqe_token_cache_hits_total API keys verified from a pool thread's cache.\n"
	    "# TYPE kqe_token_cache_hits_total counter\nkqe_token_cache_hits_total %lu\n"
	    "# HELP kqe_token_cache_invalidations_total Times every cached API key was forgotten: "
	    "a key changed, or the listener (re)connected.\n"
	    "# TYPE kqe_token_cache_invalidations_total counter\n"
	    "kqe_token_cache_invalidations_total %lu\n",
	    hits, invalidations);
	metrics_render_samples(buf);
	size_t n = evbuffer_get_length(buf);
	reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    (const char *)evbuffer_pullup(buf, -1), n);
	evbuffer_free(buf);
}
