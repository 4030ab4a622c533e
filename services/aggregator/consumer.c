/*
 * consumer — one member of the consumer group kqe-aggregators on kqe:jobs.
 *
 * Delivery is at-least-once: an entry is XACKed only after its result is
 * committed in PostgreSQL. Entries left pending by a crashed consumer are
 * taken over with XAUTOCLAIM once idle longer than KQE_JOBS_VISIBILITY_MS.
 * Job processing is idempotent, so a second delivery changes nothing. The
 * loop also runs the outbox relay, which publishes events the API could not,
 * catches up offices whose rollups are dirty without an event, publishes
 * again the jobs whose entries Redis lost (lost_entries), runs
 * retention when it is due (retention.c), and trims the stream to the entries
 * still needed (jobs_stream.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator.h"
#include "kqe/jobs_stream.h"
#include "kqe/log.h"
#include "kqe/outbox.h"
#include "kqe/validate.h"

#define RELAY_INTERVAL_NS 500000000ull
#define RELAY_BATCH 200
#define BACKOFF_MS 1000
#define HOUSEKEEPING_INTERVAL_NS 3600000000000ull

static const struct db_stmt stmt_expire_keys = { "expire_idempotency_keys",
	"DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'" };

/* Idempotency keys live 24 hours (services/api/idempotency.h). */
static void
housekeeping(struct aggregator *a)
{
	PGresult *res = db_exec(a->db, &stmt_expire_keys, 0, NULL);
	PQclear(res);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/*
 * The jobs a lost stream held: queued or running, with no event waiting in the outbox.
 * Each gets a new event, which the relay publishes; a job that ran meanwhile is skipped
 * when its event arrives (build_report.c starts only queued or running jobs).
 */
static const struct db_stmt stmt_republish = { "jobs_republish",
	"INSERT INTO outbox (kind, job_id) SELECT j.kind, j.id FROM jobs j"
	" WHERE j.status IN ('queued', 'running') AND NOT EXISTS (SELECT FROM outbox o"
	"  WHERE o.job_id = j.id AND o.published_at IS NULL)" };

/*
 * The consumer group, made if missing. An empty stream means Redis lost it (flushed,
 * restored without its append-only file, a new server), or all is done: the jobs still
 * queued or running then are published again from PostgreSQL first (harmless when all is
 * done: there are none), so Redis holds nothing that cannot be rebuilt (docs/operations.md,
 * "Redis outages").
 */
static int
ensure_group(struct aggregator *a)
{
	redisReply *len = redis_cmd(a->redis, "XLEN %s", JOBS_STREAM);
	if (len == NULL)
		return -1;
	bool empty = len->type == REDIS_REPLY_INTEGER && len->integer == 0;
	freeReplyObject(len);
	if (empty) {
		PGresult *res = db_exec(a->db, &stmt_republish, 0, NULL);
		if (res == NULL)
			return -1;
		long n = atol(PQcmdTuples(res));
		PQclear(res);
		if (n > 0)
			log_info(NULL, "job stream empty; jobs published again",
			    json_pack("{s:i}", "jobs", (json_int_t)n));
	}
	redisReply *rep =
	    redis_cmd(a->redis, "XGROUP CREATE %s %s 0 MKSTREAM", JOBS_STREAM, JOBS_GROUP);
	if (rep != NULL) {
		freeReplyObject(rep);
		return 0;
	}
	/* BUSYGROUP (group exists) is an error reply: check the group is there. */
	rep = redis_cmd(a->redis, "XINFO GROUPS %s", JOBS_STREAM);
	if (rep == NULL)
		return -1;
	freeReplyObject(rep);
	return 0;
}

/*
 * Jobs still to run whose last event went to the stream longer ago than the visibility
 * timeout, with the entry it became: each is looked up in the stream (lost_entries).
 */
static const struct db_stmt stmt_waiting_jobs = { "jobs_waiting_entries",
	"SELECT j.id::text, o.entry_id FROM jobs j"
	" CROSS JOIN LATERAL (SELECT entry_id, published_at FROM outbox"
	"  WHERE job_id = j.id ORDER BY id DESC LIMIT 1) o"
	" WHERE j.status IN ('queued', 'running') AND o.entry_id IS NOT NULL"
	" AND o.published_at < now() - $1 * interval '1 millisecond' ORDER BY j.id LIMIT 200" };
static const struct db_stmt stmt_republish_job = { "job_republish",
	"INSERT INTO outbox (kind, job_id) SELECT kind, id FROM jobs"
	" WHERE id = $1::uuid AND status IN ('queued', 'running')" };

/*
 * Redis may lose entries without losing the stream: a failover promotes a replica that had
 * not received the last ones, an append-only file is cut short, an older snapshot comes
 * back. A job whose entry is gone would wait for ever: it gets a new event, which the relay
 * publishes (a job that ran meanwhile is skipped when the event arrives). Runs every half
 * visibility timeout, like the claim of stale entries. -1 if Redis or PostgreSQL failed.
 */
static int
lost_entries(struct aggregator *a)
{
	char visibility[24];
	snprintf(visibility, sizeof(visibility), "%ld", a->cfg->jobs_visibility_ms);
	const char *params[] = { visibility };
	PGresult *res = db_exec(a->db, &stmt_waiting_jobs, 1, params);
	if (res == NULL)
		return -1;
	int rc = 0, lost = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		const char *entry = PQgetvalue(res, i, 1);
		redisReply *rep =
		    redis_cmd(a->redis, "XRANGE %s %s %s COUNT 1", JOBS_STREAM, entry, entry);
		if (rep == NULL) {
			rc = -1;
			break;
		}
		bool gone = rep->type == REDIS_REPLY_ARRAY && rep->elements == 0;
		freeReplyObject(rep);
		if (!gone)
			continue;
		const char *job[] = { PQgetvalue(res, i, 0) };
		PGresult *ins = db_exec(a->db, &stmt_republish_job, 1, job);
		if (ins == NULL)
			rc = -1;
		PQclear(ins);
		lost++;
	}
	PQclear(res);
	if (lost > 0)
		log_warn(NULL, "job stream entries lost; jobs published again",
		    json_pack("{s:i}", "jobs", (json_int_t)lost));
	return rc;
}

static const char *
field(const redisReply *fields, const char *name)
{
	if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(fields->element[i]->str, name) == 0 &&
		    fields->element[i + 1]->type == REDIS_REPLY_STRING)
			return fields->element[i + 1]->str;
	return NULL;
}

static bool
is_office_changed(const redisReply *entry)
{
	const char *kind = field(entry->element[1], "kind");
	return kind != NULL && strcmp(kind, "office_changed") == 0;
}

static bool
entry_ok(const redisReply *e)
{
	/* A deleted entry has nil fields; anything else malformed is skipped too. */
	return e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
	       e->element[0]->type == REDIS_REPLY_STRING;
}

/*
 * All office_changed events of a batch become one recompute per office (and
 * none for an office an earlier recompute already caught up: one that began
 * after the event was added, or one that left the office clean). JOB_DONE, or
 * JOB_RETRY if PostgreSQL failed: the events stay pending and come back.
 */
static enum job_outcome
offices_changed(struct aggregator *a, const redisReply *entries)
{
	const char **offices = xcalloc(entries->elements + 1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (!entry_ok(e) || !is_office_changed(e))
			continue;
		const char *office = field(e->element[1], "office_id");
		if (office != NULL && slug_id_valid(office) &&
		    !rollup_memo_covers(a->memo, office, e->element[0]->str)) {
			size_t k = 0;
			while (k < n && strcmp(offices[k], office) != 0)
				k++;
			if (k == n)
				offices[n++] = office;
		}
	}
	const struct rollup_refresh_memo rm = {
		.memo = a->memo, .redis = a->redis, .by_event = true
	};
	int rc = n > 0 ? rollups_refresh_memo(a->db, offices, n, &rm) : 0;
	free(offices);
	return rc < 0 ? JOB_RETRY : JOB_DONE;
}

static enum job_outcome
dispatch(struct aggregator *a, const redisReply *fields)
{
	const char *kind = field(fields, "kind");
	const char *job_id = field(fields, "job_id");
	if (kind != NULL && job_id != NULL &&
	    (strcmp(kind, "build_report") == 0 || strcmp(kind, "ministry_batch") == 0))
		return process_job(a->db, a->cfg, a->consumer, job_id);
	log_warn(NULL, "unknown job entry dropped", json_pack("{s:s?}", "kind", kind));
	return JOB_DONE;
}

static void
ack(struct aggregator *a, const char *id)
{
	redisReply *rep = redis_cmd(a->redis, "XACK %s %s %s", JOBS_STREAM, JOBS_GROUP, id);
	if (rep != NULL)
		freeReplyObject(rep);
}

/*
 * Handles an array of [id, [field, value, …]] entries: first the batch's
 * office_changed events together, then the jobs one by one (so a report in
 * the same batch sees the recomputed rollups). Returns -1 if an entry must
 * be retried later because a dependency is down.
 */
static int
handle_entries(struct aggregator *a, const redisReply *entries)
{
	if (entries == NULL || entries->type != REDIS_REPLY_ARRAY)
		return 0;
	int rc = 0;
	enum job_outcome changed = offices_changed(a, entries);
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (!entry_ok(e))
			continue;
		const char *id = e->element[0]->str;
		enum job_outcome out = is_office_changed(e) ? changed : dispatch(a, e->element[1]);
		if (out == JOB_RETRY) {
			rc = -1;
			continue; /* stays pending; XAUTOCLAIM redelivers it */
		}
		if (out == JOB_DEAD) {
			/*
			 * Kept for operators: the entry's fields, plus where it came from.
			 * Bounded: the job row (status dead, error) is the record; this
			 * stream is for looking at what died lately.
			 */
			const char *job_id = field(e->element[1], "job_id");
			redisReply *dl =
			    redis_cmd(a->redis, "XADD %s MAXLEN ~ %ld * job_id %s source_id %s",
			        JOBS_DEAD_STREAM, a->cfg->jobs_dead_max, job_id ? job_id : "", id);
			if (dl == NULL) {
				rc = -1;
				continue; /* not yet dead-lettered: keep it pending */
			}
			freeReplyObject(dl);
		}
		ack(a, id);
	}
	return rc;
}

/* XAUTOCLAIM entries idle past the visibility timeout (ours after a restart, or a dead peer's). */
static int
claim_stale(struct aggregator *a)
{
	redisReply *rep = redis_cmd(a->redis, "XAUTOCLAIM %s %s %s %ld 0-0 COUNT %ld", JOBS_STREAM,
	    JOBS_GROUP, a->consumer, a->cfg->jobs_visibility_ms, a->cfg->jobs_batch);
	if (rep == NULL)
		return -1;
	int rc = 0;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2)
		rc = handle_entries(a, rep->element[1]);
	freeReplyObject(rep);
	return rc;
}

static int
read_new(struct aggregator *a)
{
	redisReply *rep =
	    redis_cmd(a->redis, "XREADGROUP GROUP %s %s COUNT %ld BLOCK %ld STREAMS %s >",
	        JOBS_GROUP, a->consumer, a->cfg->jobs_batch, a->cfg->jobs_block_ms, JOBS_STREAM);
	if (rep == NULL)
		return -1;
	int rc = 0;
	/* Reply: [[stream, [entries…]]] or nil on timeout. */
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
	    rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2)
		rc = handle_entries(a, rep->element[0]->element[1]);
	freeReplyObject(rep);
	return rc;
}

/*
 * Every KQE_JOBS_TRIM_INTERVAL_S (and at start): drop the entries every group
 * is done with. Each aggregator trims on its own; that is safe (jobs_stream.h)
 * and costs two commands an interval. A failure waits for the next interval.
 */
static void
trim_tick(struct aggregator *a, uint64_t now, uint64_t *last_trim)
{
	uint64_t every = (uint64_t)a->cfg->jobs_trim_interval_s * 1000000000ull;
	if (every == 0 || (*last_trim != 0 && now - *last_trim < every))
		return;
	*last_trim = now;
	struct jobs_stream_trimmed t;
	char kept_from[JOBS_STREAM_ID_MAX];
	if (jobs_stream_trim(a->redis, &t) != 0) {
		log_warn(NULL, "jobs stream trim failed; retrying later",
		    json_pack("{s:s}", "stream", JOBS_STREAM));
		return;
	}
	enum log_level level = t.removed > 0 ? LOG_INFO : LOG_DEBUG;
	log_at(level, NULL, "jobs stream trimmed",
	    json_pack("{s:s,s:b,s:I,s:I,s:I,s:s}", "stream", JOBS_STREAM, "trimmed", t.trimmed,
	        "removed", t.removed, "length", t.length, "pending", t.pending, "kept_from",
	        t.trimmed ? jobs_stream_id_format(&t.keep_from, kept_from) : ""));
}

int
aggregator_run(struct aggregator *a)
{
	uint64_t last_relay = 0, last_claim = 0, last_housekeeping = 0, last_trim = 0;
	uint64_t claim_every = (uint64_t)a->cfg->jobs_visibility_ms * 1000000ull / 2;
	int group_ready = 0;

	/* A blocking XREADGROUP must not hit the client-side timeout first. */
	redis_set_read_timeout(a->redis, a->cfg->jobs_block_ms + a->cfg->redis_timeout_ms);
	retention_announce(a->cfg);
	while (!*a->stop) {
		/* Before anything that needs Redis: retention and releases need only PostgreSQL. */
		retention_tick(a);
		seal_tick(a, now_ns());
		release_tick(a, now_ns());
		mail_tick(a, now_ns());
		if (*a->stop)
			break;
		if (!group_ready) {
			if (ensure_group(a) != 0) {
				log_warn(NULL, "redis not reachable; retrying", NULL);
				sleep_ms(BACKOFF_MS);
				continue;
			}
			group_ready = 1;
			log_info(NULL, "consuming",
			    json_pack("{s:s,s:s,s:s}", "stream", JOBS_STREAM, "group", JOBS_GROUP,
			        "consumer", a->consumer));
		}
		uint64_t now = now_ns();
		int rc = 0;
		trim_tick(a, now, &last_trim); /* needs only Redis */
		if (now - last_relay >= RELAY_INTERVAL_NS) {
			/* Dirty offices without an event (seeds, SQL deletes, a lost event) too;
			 * those an event recomputed since the last look are being kept current
			 * by their events, and looking again would only repeat that work. */
			const struct rollup_refresh_memo rm = { .memo = a->memo,
				.redis = a->redis,
				.skip_events_since_ns = last_relay };
			if (jobs_requeue_due(a->db) < 0 ||
			    outbox_relay(a->db, a->redis, a->cfg->outbox_grace_ms, RELAY_BATCH) <
			        0 ||
			    rollups_refresh_memo(a->db, NULL, 0, &rm) < 0)
				rc = -1;
			if (now - last_housekeeping >= HOUSEKEEPING_INTERVAL_NS) {
				last_housekeeping = now;
				housekeeping(a);
			}
			/* The interval counts from the end of the look: however long it took,
			 * the stream gets the time between two looks to itself. */
			last_relay = now_ns();
		}
		if (rc == 0 && (last_claim == 0 || now - last_claim >= claim_every)) {
			last_claim = now;
			rc = claim_stale(a);
			if (rc == 0)
				rc = lost_entries(a);
		}
		if (rc == 0)
			rc = read_new(a);
		if (rc != 0) {
			/* Redis or PostgreSQL down: back off, re-check the group (Redis may be
			 * new). */
			group_ready = 0;
			sleep_ms(BACKOFF_MS);
		}
	}
	return 0;
}
