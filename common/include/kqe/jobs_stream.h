/*
 * jobs_stream — what the job stream kqe:jobs holds, and trimming it to what
 * is still needed.
 *
 * A Redis stream keeps an entry after every group has acknowledged it; only
 * XTRIM or XDEL remove it. An entry is still needed while a group has not
 * delivered it (its id is above the group's last-delivered-id) or has
 * delivered it without an acknowledgement (it is in the group's pending
 * entries list, and XAUTOCLAIM may deliver it again after a consumer died).
 * Every entry below the smallest such id, over all groups of the stream, is
 * done with: jobs_stream_trim() removes exactly those (docs/design.md).
 *
 * Thread-agnostic: the functions use nothing but the struct redis passed in
 * (which belongs to the calling thread, redis.h) and keep no state between
 * calls, so kqe-api's metrics sampler, kqe-aggregator and `kqe jobs` each call
 * them on their own connection.
 */
#ifndef KQE_JOBS_STREAM_H
#define KQE_JOBS_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "kqe/outbox.h"
#include "kqe/redis.h"
#include "kqe/util.h"

/* Jobs that ran out of attempts, for operators to inspect (docs/operations.md). */
#define JOBS_DEAD_STREAM "kqe:jobs:dead"

/* A stream entry id <ms>-<seq>. */
struct jobs_stream_id {
	uint64_t ms;
	uint64_t seq;
};

/* Longest id text: two 20-digit numbers, a dash, NUL. */
#define JOBS_STREAM_ID_MAX 42

struct jobs_stream_state {
	long long length; /* entries in kqe:jobs (XLEN) */
	long long undelivered; /* entries the group has not delivered to any consumer yet */
	long long pending; /* delivered, not acknowledged yet (the group's pending entries) */
	long long backlog; /* undelivered + pending: jobs not done yet (what to alert on) */
	long long dead; /* entries in kqe:jobs:dead */
	bool stream_exists; /* false: no stream yet (a fresh Redis); everything is 0 */
	bool group_exists; /* false: no group yet, so every entry counts as undelivered */
	bool lag_unknown; /* Redis did not know the group's lag: undelivered was counted */
	/* Where trimming may cut: entries below keep_from are done with for every group. */
	bool trimmable; /* false: trim nothing (no stream, or no group kqe-aggregators yet) */
	struct jobs_stream_id keep_from;
	struct jobs_stream_id last_delivered; /* of the group kqe-aggregators */
};

/* What one jobs_stream_trim() did. */
struct jobs_stream_trimmed {
	bool trimmed; /* XTRIM ran (false: nothing may go, see trimmable) */
	long long removed; /* entries removed */
	long long length; /* entries left: the snapshot's length less those removed */
	long long pending; /* of the group kqe-aggregators, at the time */
	struct jobs_stream_id keep_from; /* the MINID used, when trimmed */
};

/*
 * Fills out with the state of kqe:jobs and the group kqe-aggregators, in two
 * commands: XINFO STREAM kqe:jobs FULL COUNT 1 (one consistent snapshot of
 * length, lag and pending) and XLEN kqe:jobs:dead. Only if Redis cannot say
 * the group's lag (it answers nil after an XDEL of an undelivered entry) are
 * the undelivered entries counted with XRANGE, 1000 a command.
 *
 * Returns 0, also when the stream or the group does not exist yet (a missing
 * group will be created at 0, so backlog = length). Returns -1, out zeroed,
 * only when Redis did not answer or answered what a stream would not
 * (kqe:jobs or kqe:jobs:dead is some other type): a scrape must then say
 * "unknown", never 0.
 */
int jobs_stream_state(struct redis *r, struct jobs_stream_state *out) KQE_MUSTCHECK;

/*
 * Removes the entries every group is done with: XTRIM kqe:jobs MINID
 * <keep_from>, where keep_from is, over all groups, the oldest pending entry
 * or else the entry after the last delivered one. Never removes an entry not
 * yet delivered or not yet acknowledged, even while other consumers read,
 * acknowledge and claim: the snapshot is one command, and between it and the
 * XTRIM a group's last-delivered-id only grows and its pending entries only
 * leave (by XACK) or join above that id. Trims nothing while the stream or
 * the group kqe-aggregators does not exist. 0 (out filled), or -1 when Redis
 * did not answer.
 */
int jobs_stream_trim(struct redis *r, struct jobs_stream_trimmed *out) KQE_MUSTCHECK;

/*
 * The pure part of jobs_stream_state(), for tests: fills out from a reply to
 * XINFO STREAM <stream> FULL COUNT 1 (borrowed) as seen by the group `group`.
 * Sets everything but dead; when lag_unknown is set, undelivered and backlog
 * are left for the caller to count. -1 if the reply is not shaped like one.
 */
int jobs_stream_parse(
    const redisReply *info, const char *group, struct jobs_stream_state *out) KQE_MUSTCHECK;

/* Parses "<ms>-<seq>" (both parts required, decimal). 0 or -1. */
int jobs_stream_id_parse(const char *s, struct jobs_stream_id *id) KQE_MUSTCHECK;

/* Writes "<ms>-<seq>" into buf (JOBS_STREAM_ID_MAX bytes). Returns buf. */
char *jobs_stream_id_format(const struct jobs_stream_id *id, char buf[JOBS_STREAM_ID_MAX]);

/* <0, 0, >0 as a is before, equal to or after b. */
int jobs_stream_id_cmp(const struct jobs_stream_id *a, const struct jobs_stream_id *b);

/* Sets *next to the smallest id after id. -1 if id is the largest possible. */
int jobs_stream_id_next(const struct jobs_stream_id *id, struct jobs_stream_id *next) KQE_MUSTCHECK;

#endif
