/*
 * rollups — keeps the per-office rollups current (docs/rollups.md).
 *
 * Writes mark their office dirty in PostgreSQL (a trigger, in the write's own
 * transaction); this module recomputes dirty offices, one transaction each,
 * through kqe_rollup_office(). Many office_changed events for one office in a
 * batch become one recompute, and an event whose office is no longer dirty
 * (an earlier recompute already saw its write) costs one indexed lookup.
 *
 * An office written to all the time is dirty again at every look, though, so
 * that check alone would recompute it for every batch of events, and events
 * would arrive faster than they are handled. The memo (struct rollup_memo)
 * remembers, per office, the newest stream entry that existed when its last
 * recompute began: every event up to that entry was added after its write
 * committed (outbox.h), so that recompute counted it, and the event needs
 * nothing more. The memo is per process and only ever skips work: the dirty
 * mark in PostgreSQL stays until a recompute clears it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "kqe/log.h"
#include "kqe/outbox.h"
#include "kqe/principal.h"
#include "kqe/validate.h"

static const struct db_stmt stmt_dirty = { "rollups_dirty",
	"SELECT office_id FROM rollup_dirty WHERE ($1::text[] IS NULL OR office_id = ANY($1))"
	" ORDER BY office_id" };
static const struct db_stmt stmt_recompute = { "rollups_recompute",
	"SELECT kqe_rollup_office($1)" };

static const struct principal system_principal = { .role = ROLE_SYSTEM,
	.actor = "system:aggregator" };

static int
recompute(struct db *db, const char *office)
{
	const char *params[] = { office };
	PGresult *res = NULL;
	if (db_begin_as(db, &system_principal) != 0 ||
	    (res = db_exec(db, &stmt_recompute, 1, params)) == NULL || db_commit(db) != 0) {
		PQclear(res);
		db_rollback(db);
		log_warn(NULL, "rollup recompute failed",
		    json_pack("{s:s,s:s}", "office_id", office, "sqlstate", db_error_sqlstate(db)));
		return -1;
	}
	PQclear(res);
	return 0;
}

/* ---- the memo ---- */

/* A stream entry id, "<milliseconds>-<sequence>"; Redis hands them out in increasing order. */
struct stream_id {
	uint64_t ms, seq;
};

struct memo_office {
	char office[65];
	bool known; /* covered holds an entry */
	struct stream_id covered; /* every entry up to this one is counted */
	uint64_t event_ns; /* when an event last caused a recompute (now_ns); 0: never */
};

struct rollup_memo {
	struct memo_office *v;
	size_t n, cap;
};

/* Offices are a directory of a few hundred; beyond this many the memo stops learning. */
#define MEMO_MAX 4096

/* Strictly "<digits>-<digits>", each part fitting 64 bits. */
static bool
stream_id_parse(const char *s, struct stream_id *out)
{
	uint64_t part[2] = { 0, 0 };
	if (s == NULL)
		return false;
	for (int k = 0; k < 2; k++) {
		const char *start = s;
		for (; *s >= '0' && *s <= '9'; s++) {
			uint64_t digit = (uint64_t)(*s - '0');
			if (part[k] > (UINT64_MAX - digit) / 10)
				return false;
			part[k] = part[k] * 10 + digit;
		}
		if (s == start || *s != (k == 0 ? '-' : '\0'))
			return false;
		s++;
	}
	out->ms = part[0];
	out->seq = part[1];
	return true;
}

static bool
stream_id_le(struct stream_id a, struct stream_id b)
{
	return a.ms < b.ms || (a.ms == b.ms && a.seq <= b.seq);
}

struct rollup_memo *
rollup_memo_new(void)
{
	return xcalloc(1, sizeof(struct rollup_memo));
}

void
rollup_memo_free(struct rollup_memo *m)
{
	if (m == NULL)
		return;
	free(m->v);
	free(m);
}

static struct memo_office *
memo_find(const struct rollup_memo *m, const char *office)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].office, office) == 0)
			return &m->v[i];
	return NULL;
}

void
rollup_memo_note(
    struct rollup_memo *m, const char *office, const char *newest_entry, uint64_t event_ns)
{
	struct memo_office *o = memo_find(m, office);
	if (o == NULL) {
		if (m->n == MEMO_MAX || strlen(office) >= sizeof(o->office))
			return;
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 64;
			m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
		}
		o = &m->v[m->n++];
		memset(o, 0, sizeof(*o));
		memcpy(o->office, office, strlen(office) + 1);
	}
	struct stream_id id;
	if (stream_id_parse(newest_entry, &id) && (!o->known || !stream_id_le(id, o->covered))) {
		o->covered = id;
		o->known = true;
	}
	if (event_ns > o->event_ns)
		o->event_ns = event_ns;
}

bool
rollup_memo_covers(const struct rollup_memo *m, const char *office, const char *entry)
{
	const struct memo_office *o = memo_find(m, office);
	struct stream_id id;
	return o != NULL && o->known && stream_id_parse(entry, &id) && stream_id_le(id, o->covered);
}

bool
rollup_memo_event_since(const struct rollup_memo *m, const char *office, uint64_t since_ns)
{
	const struct memo_office *o = memo_find(m, office);
	return o != NULL && o->event_ns != 0 && o->event_ns >= since_ns;
}

/*
 * The id of the newest entry in the job stream, into out (empty if the stream
 * is empty or Redis did not answer: then the recompute covers nothing here).
 */
static void
stream_newest(struct redis *redis, char *out, size_t len)
{
	out[0] = '\0';
	redisReply *rep = redis_cmd(redis, "XREVRANGE %s + - COUNT 1", JOBS_STREAM);
	if (rep == NULL)
		return;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
	    rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2 &&
	    rep->element[0]->element[0]->type == REDIS_REPLY_STRING)
		snprintf(out, len, "%s", rep->element[0]->element[0]->str);
	freeReplyObject(rep);
}

/* ---- recomputing ---- */

int
rollups_refresh_memo(
    struct db *db, const char *const *offices, size_t n, const struct rollup_refresh_memo *rm)
{
	/* A PostgreSQL text[] literal; office ids are slugs ([a-z0-9-]), no quoting needed. */
	char *list = NULL;
	if (offices != NULL) {
		size_t len = 3;
		for (size_t i = 0; i < n; i++)
			len += strlen(offices[i]) + 1;
		list = xcalloc(len, 1);
		strcat(list, "{");
		for (size_t i = 0; i < n; i++) {
			if (!slug_id_valid(offices[i]))
				continue;
			if (list[1] != '\0')
				strcat(list, ",");
			strcat(list, offices[i]);
		}
		strcat(list, "}");
	}
	const char *params[] = { list };
	PGresult *res = NULL;
	if (db_begin_as(db, &system_principal) != 0 ||
	    (res = db_exec(db, &stmt_dirty, 1, params)) == NULL || db_commit(db) != 0) {
		free(list);
		PQclear(res);
		db_rollback(db);
		return -1;
	}
	free(list);
	int done = 0, rc = 0;
	uint64_t started = now_ns();
	for (int i = 0; i < PQntuples(res); i++) {
		const char *office = PQgetvalue(res, i, 0);
		char newest[64] = "";
		if (rm != NULL) {
			/* Kept current by its events, which need no help from the periodic look. */
			if (rm->skip_events_since_ns != 0 &&
			    rollup_memo_event_since(rm->memo, office, rm->skip_events_since_ns))
				continue;
			/* Read before the recompute begins: it then counts every write whose
			 * event is this entry or older. */
			stream_newest(rm->redis, newest, sizeof(newest));
		}
		if (recompute(db, office) != 0) {
			rc = -1;
			break;
		}
		if (rm != NULL)
			rollup_memo_note(rm->memo, office, newest, rm->by_event ? now_ns() : 0);
		done++;
	}
	PQclear(res);
	if (done > 0)
		log_info(NULL, "rollups recomputed",
		    json_pack(
		        "{s:i,s:f}", "offices", done, "ms", (double)(now_ns() - started) / 1e6));
	return rc == 0 ? done : -1;
}

int
rollups_refresh(struct db *db, const char *const *offices, size_t n)
{
	return rollups_refresh_memo(db, offices, n, NULL);
}
