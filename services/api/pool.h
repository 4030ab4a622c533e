/*
 * pool — the threads that run requests needing PostgreSQL or Redis, so the
 * event loops never wait on a dependency.
 *
 * An event loop reads a request, does the steps that need nothing but the
 * request (route, path parameters, Accept, the header checks) and answers
 * what needs nothing more (/healthz, /metrics, the contract, every 4xx of
 * those steps). Everything else it hands to the pool and goes back to its
 * connections; the pool thread runs the rest of the pipeline with its own
 * database and Redis connections and hands the request back to the loop it
 * came from (its mailbox), which sends the answer.
 *
 * Fairness: one client (its Authorization header, else its address) has at
 * most half the threads at a time, and batch imports (ROUTE_HEAVY) together
 * at most half, so neither one client nor the batches can hold every
 * thread. Bounds: at most KQE_DB_QUEUE requests wait (beyond that a loop
 * answers 503 at once), and a request still waiting at its deadline
 * (KQE_REQUEST_TIMEOUT_MS from when it was read) is given up by the pool's
 * reaper and answered 503 with Retry-After. A request's own database waits
 * end at the same deadline (db_set_deadline).
 *
 * Threads: a pool thread reads what evhttp parsed (headers, URI, body — none
 * of it changes once the request is complete) but writes nothing of
 * evhttp's: answer headers go to r->resp.headers, applied by http_send() on
 * the loop.
 */
#ifndef KQE_API_POOL_H
#define KQE_API_POOL_H

#include <stdbool.h>

#include "kqe/breaker.h"
#include "server.h"

struct pool;
struct mailbox;

struct pool_stats {
	long threads, busy, queued;
	unsigned long rejected; /* answered 503 at once: the queue was full */
	unsigned long expired; /* answered 503: still waiting at the deadline */
	bool db_open, redis_open; /* a breaker is failing requests fast */
	unsigned long db_trips, redis_trips; /* how often each opened */
};

/*
 * Starts cfg->db_pool threads that call run(r) for each request; the
 * breakers are shared by all their database and Redis connections.
 */
struct pool *pool_new(const struct config *cfg, void (*run)(struct request *r),
    struct breaker *db_breaker, struct breaker *redis_breaker);

/* On r->worker's loop: queues r. false if the queue is full or the pool stops. */
bool pool_submit(struct pool *p, struct request *r);

void pool_stats(struct pool *p, struct pool_stats *out);

/* Waits until nothing is queued or running, at most timeout_ms. */
void pool_drain(struct pool *p, long timeout_ms);

/* Stops the threads (each finishes its request; queued ones are given up) and frees. */
void pool_free(struct pool *p);

/*
 * A loop's mailbox: requests the pool is done with (run, or given up with
 * r->expired set) come back here and are passed to deliver() on the loop.
 */
struct mailbox *mailbox_new(struct event_base *base, void (*deliver)(struct request *r));

/* Frees it; requests still in it go to discard() (the loop is gone). */
void mailbox_free(struct mailbox *m, void (*discard)(struct request *r));

#endif
