/*
 * kqe-aggregator internals. consumer.c reads the job stream as one member of
 * the consumer group and dispatches entries; build_report.c computes a report
 * snapshot; rollups.c keeps per-office rollups current; stats.c builds
 * the statistical tables; retention.c deletes old case-level data on a
 * timer. Everything runs on one thread with blocking connections; several
 * aggregator processes share the work through the consumer group.
 */
#ifndef KQE_AGGREGATOR_H
#define KQE_AGGREGATOR_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "kqe/config.h"
#include "kqe/db.h"
#include "kqe/redis.h"
#include <jansson.h>

/* What became of one job delivery. */
enum job_outcome {
	JOB_DONE, /* committed (or nothing left to do): XACK */
	JOB_RETRY, /* database unreachable: leave pending, XAUTOCLAIM redelivers it */
	JOB_FAILED, /* failed; a retry is scheduled in PostgreSQL (backoff): XACK */
	JOB_DEAD /* out of attempts or hopeless: marked dead; XACK and dead-letter */
};

struct rollup_memo;
struct keyring;
struct signer;

struct aggregator {
	const struct config *cfg;
	struct db *db;
	struct redis *redis;
	struct rollup_memo *memo; /* owned: what this process's recomputes have covered */
	char consumer[128]; /* host, pid and a random tag: unique per process start */
	volatile sig_atomic_t *stop;
	uint64_t retention_next_ns; /* monotonic time the next retention run is due (0: now) */
	uint64_t release_next_ns; /* monotonic time of the next look whether a release is due */
	const struct keyring *keyring; /* KQE_DATA_KEYS, to read the mails it sends; NULL: none */
	uint64_t mail_next_ns; /* monotonic time of the next look at the mail queue */
	const struct signer *signer; /* KQE_AUDIT_SIGNING_KEY: signs audit heads; NULL: none */
	uint64_t seal_next_ns; /* monotonic time the audit log is sealed next */
	uint64_t head_next_ns; /* monotonic time the next audit head may be signed */
	long long head_signed; /* the chain position of the last head signed (0: none yet) */
};

/*
 * Links finished audit appends into the hash chain every KQE_AUDIT_SEAL_INTERVAL_MS and
 * signs the head every KQE_AUDIT_HEAD_INTERVAL_S when it moved (sealer.c); needs only
 * PostgreSQL.
 */
void seal_tick(struct aggregator *a, uint64_t now);

/* Sends the queued mails that are due (mail.c); needs only PostgreSQL and SMTP. */
void mail_tick(struct aggregator *a, uint64_t now);

/* Runs until *a->stop is set. Returns 0 on a clean stop. */
int aggregator_run(struct aggregator *a);

/*
 * Processes one build_report or ministry_batch job (idempotent: a job already
 * succeeded is left alone). runner names this process (its consumer name): a
 * job it postponed and starts again uses no further attempt.
 */
enum job_outcome process_job(
    struct db *db, const struct config *cfg, const char *runner, const char *job_id);

/*
 * Recomputes the rollups of the dirty offices among offices[0..n) (all dirty
 * offices if offices is NULL), one transaction each. Count recomputed, or -1
 * if one failed (it stays dirty).
 */
int rollups_refresh(struct db *db, const char *const *offices, size_t n);

/*
 * What one aggregator process remembers of its own recomputes (rollups.c):
 * per office, the newest entry of the job stream that existed when its last
 * recompute began, and when an office_changed event last caused one. Only
 * ever used to skip work; not shared between threads.
 */
struct rollup_memo *rollup_memo_new(void);
void rollup_memo_free(struct rollup_memo *m); /* NULL: no-op */

/*
 * Records a recompute of office that began when newest_entry (a stream entry
 * id; NULL, "" or malformed: unknown) was the newest entry, caused by an event
 * at event_ns (now_ns(); 0: not by an event). Never moves backwards.
 */
void rollup_memo_note(
    struct rollup_memo *m, const char *office, const char *newest_entry, uint64_t event_ns);

/*
 * Whether a recompute of office here began after stream entry `entry` was
 * added: it counted the write behind an office_changed event of that id.
 */
bool rollup_memo_covers(const struct rollup_memo *m, const char *office, const char *entry);

/* Whether an event caused a recompute of office at or after since_ns. */
bool rollup_memo_event_since(const struct rollup_memo *m, const char *office, uint64_t since_ns);

struct rollup_refresh_memo {
	struct rollup_memo *memo; /* noted after each recompute */
	struct redis *redis; /* to read the stream's newest entry before each recompute */
	bool by_event; /* the recomputes answer office_changed events */
	uint64_t skip_events_since_ns; /* nonzero: leave out offices an event recomputed since */
};

/* rollups_refresh, noting each recompute in rm->memo (rm NULL: the same as rollups_refresh). */
int rollups_refresh_memo(
    struct db *db, const char *const *offices, size_t n, const struct rollup_refresh_memo *rm);

/*
 * Marks a failed attempt of job_id: with attempts left, status failed and
 * the next attempt due after a capped exponential backoff with jitter
 * (JOB_FAILED); otherwise status dead (JOB_DEAD). error is stored on the job.
 * A job no longer running (another instance finished it) is left as it is:
 * JOB_DONE.
 */
enum job_outcome job_attempt_failed(
    struct db *db, const struct config *cfg, const char *job_id, int attempts, const char *error);

/* Delay before the next attempt after `attempts` failures: capped, doubled, jittered. */
long job_backoff_ms(const struct config *cfg, int attempts, unsigned random);

struct principal;
/*
 * Takes a release (releases.c): recomputes every dirty office, then
 * kqe_release_make() as who, refreshing buckets that changed by min_changes
 * records (and, with final, freezing those whose period closed). Writes its id
 * (the last release's if nothing would change). 0, or -1 (logged).
 */
int release_make(struct db *db, const struct principal *who, long min_changes, bool final,
    int *release_id) KQE_MUSTCHECK;

/* Takes a release if KQE_RELEASE_INTERVAL_S has passed since the last (looks once a minute). */
void release_tick(struct aggregator *a, uint64_t now);

/* The age groups of the rollups (kqe_age_group() in SQL), in order; NULL-terminated. */
extern const char *const stats_age_groups[];

struct report_params;
struct sdc_rules;
struct ckm_table;
/*
 * Appends the statistical tables of a report to out, from the counts of release
 * (a release id; NULL: none, so no counts), counts perturbed with ckm (NULL:
 * the true counts, for kqe sdc evaluate only). 0 or -1. It is stats_load, then
 * stats_build.
 */
int stats_tables(struct db *db, const struct report_params *p, const char *release,
    const struct sdc_rules *rules, const struct ckm_table *ckm, json_t *out) KQE_MUSTCHECK;

/*
 * What a report's tables are computed from, for the offices in its scope (all
 * values text, as libpq returns them):
 *   offices    id, region, kind                      one row per office
 *   counts     office_id, dimension, category, n, keysum   the period's rollups as
 *              the release publishes them
 *   coverage   office_id, 'procedure_status', status, 1, record_key  (a cycle's;
 *              NULL where the period lies in no cycle: no coverage table)
 *   structure  office_id, indicator, value           structural indicators
 *   programmes id, title                             the programmes of the period
 *   programme_figures  owner, dimension, category, n, keysum, part, programme_id
 *              the programme figures' records (kqe_report_programme_figures,
 *              migration 0032: those about persons as the release publishes them,
 *              participation and events held live; owner '' for a programme's own
 *              records, events held)
 * stats_load reads them in the caller's transaction; the attack harness
 * (tests/sdc) builds them from generated records instead.
 */
struct stats_source {
	/* concepts: the § 10 protection concepts as of today (NULL: no concept tables);
	 * programmes and programme_figures: NULL, no programme tables. */
	PGresult *offices, *counts, *coverage, *structure, *concepts, *programmes,
	    *programme_figures;
};
int stats_load(struct db *db, const struct report_params *p, const char *release,
    struct stats_source *src) KQE_MUSTCHECK;
void stats_source_clear(struct stats_source *src);
int stats_build(const struct stats_source *src, const struct report_params *p,
    const struct sdc_rules *rules, const struct ckm_table *ckm, json_t *out) KQE_MUSTCHECK;

/* Logs whether retention is on, with its period and interval (once, at start). */
void retention_announce(const struct config *cfg);

/*
 * Runs retention if it is on and due (at start, then every
 * KQE_RETENTION_INTERVAL_S; sooner again after a failure). Needs no Redis.
 */
void retention_tick(struct aggregator *a);

/* Re-enqueues failed jobs whose next attempt is due (through the outbox). Count or -1. */
int jobs_requeue_due(struct db *db);

#endif
