#include "kqe/outbox.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/log.h"

static const struct db_stmt stmt_add_job = { "outbox_add_job",
	"WITH j AS (INSERT INTO jobs (kind, params, requested_by) VALUES ($1, $2::jsonb, $3)"
	" RETURNING id, kind)"
	" INSERT INTO outbox (kind, job_id) SELECT kind, id FROM j RETURNING id, job_id" };
static const struct db_stmt stmt_add_event = { "outbox_add_event",
	"INSERT INTO outbox (kind, payload) VALUES ($1, $2::jsonb)"
	" RETURNING id, coalesce(payload->>'office_id', '')" };
static const struct db_stmt stmt_async_commit = { "outbox_async_commit",
	"SELECT set_config('synchronous_commit', 'off', true)" };
/* $1 the events' ids, $2 the stream entries they became, in the same order. */
static const struct db_stmt stmt_mark = { "outbox_mark",
	"UPDATE outbox o SET published_at = now(), entry_id = v.entry"
	" FROM unnest($1::bigint[], $2::text[]) AS v (id, entry) WHERE o.id = v.id" };
static const struct db_stmt stmt_pending = { "outbox_pending",
	"SELECT id, kind, coalesce(job_id::text, ''), coalesce(payload->>'office_id', '')"
	" FROM outbox"
	" WHERE published_at IS NULL AND created_at < now() - $1 * interval '1 millisecond'"
	" ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED" };
static const struct db_stmt stmt_purge = { "outbox_purge",
	"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
	" WHERE published_at < now() - interval '1 day' LIMIT 1000)" };

int
outbox_add_job(struct db *db, const char *kind, const char *params_json, const char *requested_by,
    struct outbox_event *ev)
{
	const char *params[] = { kind, params_json, requested_by };
	PGresult *res = db_exec(db, &stmt_add_job, 3, params);
	if (res == NULL)
		return -1;
	memset(ev, 0, sizeof(*ev));
	ev->id = atoll(PQgetvalue(res, 0, 0));
	snprintf(ev->kind, sizeof(ev->kind), "%s", kind);
	snprintf(ev->job_id, sizeof(ev->job_id), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

int
outbox_add_event(struct db *db, const char *kind, const char *payload_json, struct outbox_event *ev)
{
	const char *params[] = { kind, payload_json };
	PGresult *res = db_exec(db, &stmt_add_event, 2, params);
	if (res == NULL)
		return -1;
	memset(ev, 0, sizeof(*ev));
	ev->id = atoll(PQgetvalue(res, 0, 0));
	snprintf(ev->kind, sizeof(ev->kind), "%s", kind);
	snprintf(ev->office_id, sizeof(ev->office_id), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/* XADDs the event; entry gets the stream entry's id ("<ms>-<seq>"). */
static int
xadd(struct redis *r, const struct outbox_event *ev, char entry[OUTBOX_ENTRY_MAX])
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", ev->id);
	const char *argv[] = { "XADD", JOBS_STREAM, "*", "outbox_id", id, "kind", ev->kind,
		"job_id", ev->job_id, "office_id", ev->office_id };
	size_t lens[ARRAY_LEN(argv)];
	for (size_t i = 0; i < ARRAY_LEN(argv); i++)
		lens[i] = strlen(argv[i]);
	redisReply *rep = redis_argv(r, (int)ARRAY_LEN(argv), argv, lens);
	if (rep == NULL)
		return -1;
	bool ok = rep->type == REDIS_REPLY_STRING && rep->len < OUTBOX_ENTRY_MAX &&
	          strspn(rep->str, "0123456789-") == rep->len;
	if (ok)
		memcpy(entry, rep->str, rep->len + 1);
	freeReplyObject(rep);
	return ok ? 0 : -1;
}

/* ids and entries: PostgreSQL array literals of the same length. */
static int
mark(struct db *db, const char *ids, const char *entries)
{
	const char *params[] = { ids, entries };
	PGresult *res = db_exec(db, &stmt_mark, 2, params);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
outbox_publish(struct db *db, struct redis *r, const struct outbox_event *ev)
{
	char ids[32], entry[OUTBOX_ENTRY_MAX], entries[OUTBOX_ENTRY_MAX + 2];
	if (xadd(r, ev, entry) != 0)
		return -1;
	snprintf(ids, sizeof(ids), "{%lld}", ev->id);
	snprintf(entries, sizeof(entries), "{%s}", entry);
	/*
	 * Marked without waiting for the WAL flush: a mark lost in a crash only makes the relay
	 * publish the event again, which consumers take as at least once anyway, and a request
	 * no longer waits for a second flush after its own commit.
	 */
	if (db_begin_setup(db, "BEGIN", &stmt_async_commit, 0, NULL) != 0)
		return -1;
	if (mark(db, ids, entries) != 0 || db_commit(db) != 0) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

int
outbox_relay(struct db *db, struct redis *r, long grace_ms, int batch)
{
	char grace[24], limit[24];
	snprintf(grace, sizeof(grace), "%ld", grace_ms);
	snprintf(limit, sizeof(limit), "%d", batch);
	const char *params[] = { grace, limit };
	int published = 0;

	if (db_begin(db) != 0)
		return -1;
	PGresult *res = db_exec(db, &stmt_pending, 2, params);
	if (res == NULL)
		goto fail;
	int n = PQntuples(res);
	/* "{" + n ids of at most 20 digits and a comma + "}"; the same for the entries. */
	char *ids = xmalloc((size_t)n * 21 + 3),
	     *entries = xmalloc((size_t)n * OUTBOX_ENTRY_MAX + 3);
	size_t len = 0, elen = 0;
	ids[len++] = '{';
	entries[elen++] = '{';
	for (int i = 0; i < n; i++) {
		struct outbox_event ev = { .id = atoll(PQgetvalue(res, i, 0)) };
		char entry[OUTBOX_ENTRY_MAX];
		snprintf(ev.kind, sizeof(ev.kind), "%s", PQgetvalue(res, i, 1));
		snprintf(ev.job_id, sizeof(ev.job_id), "%s", PQgetvalue(res, i, 2));
		snprintf(ev.office_id, sizeof(ev.office_id), "%s", PQgetvalue(res, i, 3));
		if (xadd(r, &ev, entry) != 0)
			break; /* Redis still down: keep the rest for the next round. */
		len += (size_t)sprintf(ids + len, "%s%lld", published ? "," : "", ev.id);
		elen += (size_t)sprintf(entries + elen, "%s%s", published ? "," : "", entry);
		published++;
	}
	memcpy(ids + len, "}", 2);
	memcpy(entries + elen, "}", 2);
	PQclear(res);
	int rc = published > 0 ? mark(db, ids, entries) : 0;
	free(ids);
	free(entries);
	if (rc != 0)
		goto fail;
	if (db_commit(db) != 0)
		goto fail;
	if (published > 0) {
		log_info(NULL, "outbox relayed", json_pack("{s:i}", "events", published));
		res = db_exec(db, &stmt_purge, 0, NULL);
		PQclear(res);
	}
	return published;
fail:
	db_rollback(db);
	return -1;
}
