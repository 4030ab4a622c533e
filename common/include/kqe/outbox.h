/*
 * outbox — the one path by which a write reaches the job stream.
 *
 * A write inserts its outbox row inside its own transaction (outbox_add), so
 * the event exists if and only if the change was committed. After commit the
 * writer tries outbox_publish(); if Redis is down or the process dies first,
 * outbox_relay() (run by kqe-aggregator) publishes the row later. Consumers
 * must therefore tolerate a message delivered twice.
 */
#ifndef KQE_OUTBOX_H
#define KQE_OUTBOX_H

#include "kqe/db.h"
#include "kqe/redis.h"

#define JOBS_STREAM "kqe:jobs"
#define JOBS_GROUP "kqe-aggregators"
/* A stream entry id "<ms>-<seq>" and its NUL. */
#define OUTBOX_ENTRY_MAX 48

struct outbox_event {
	long long id;
	char kind[32];
	char job_id[37]; /* "" when the event has no job row */
	char office_id[65]; /* "" unless the event is about one office */
};

/*
 * Inside the caller's open transaction: creates a queued job of `kind` with
 * params (JSON text), asked for by requested_by (an actor), and its outbox
 * event. Fills ev (ev->job_id is the new job).
 */
int outbox_add_job(struct db *db, const char *kind, const char *params_json,
    const char *requested_by, struct outbox_event *ev) KQE_MUSTCHECK;

/*
 * Inside the caller's open transaction: an event without a job row, e.g.
 * kind "office_changed" with payload {"office_id": …} after a submission.
 */
int outbox_add_event(struct db *db, const char *kind, const char *payload_json,
    struct outbox_event *ev) KQE_MUSTCHECK;

/*
 * After commit: XADD the event and mark it published with the stream entry it became (an
 * asynchronous commit: a mark lost in a crash means the relay publishes the event again).
 * -1 leaves it to the relay.
 */
int outbox_publish(struct db *db, struct redis *r, const struct outbox_event *ev) KQE_MUSTCHECK;

/*
 * Publishes up to `batch` unpublished events older than grace_ms, oldest
 * first, locking them with FOR UPDATE SKIP LOCKED so several relays can run.
 * Returns how many were published, or -1.
 */
int outbox_relay(struct db *db, struct redis *r, long grace_ms, int batch) KQE_MUSTCHECK;

#endif
