#include "kqe/jobs_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/log.h"

/* Entries per XRANGE when the undelivered entries must be counted (lag unknown). */
#define COUNT_PAGE 1000

int
jobs_stream_id_parse(const char *s, struct jobs_stream_id *id)
{
	uint64_t part[2];
	for (int i = 0; i < 2; i++) {
		char *end;
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		unsigned long long v = strtoull(s, &end, 10);
		if (errno != 0 || *end != (i == 0 ? '-' : '\0'))
			return -1;
		part[i] = v;
		s = end + 1;
	}
	id->ms = part[0];
	id->seq = part[1];
	return 0;
}

char *
jobs_stream_id_format(const struct jobs_stream_id *id, char buf[JOBS_STREAM_ID_MAX])
{
	snprintf(buf, JOBS_STREAM_ID_MAX, "%" PRIu64 "-%" PRIu64, id->ms, id->seq);
	return buf;
}

int
jobs_stream_id_cmp(const struct jobs_stream_id *a, const struct jobs_stream_id *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

int
jobs_stream_id_next(const struct jobs_stream_id *id, struct jobs_stream_id *next)
{
	if (id->seq < UINT64_MAX) {
		next->ms = id->ms;
		next->seq = id->seq + 1;
		return 0;
	}
	if (id->ms == UINT64_MAX)
		return -1;
	next->ms = id->ms + 1;
	next->seq = 0;
	return 0;
}

/* The value of key in a RESP2 map reply [key, value, …] (borrowed), or NULL if absent. */
static const redisReply *
map_get(const redisReply *map, const char *key)
{
	if (map == NULL || map->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < map->elements; i += 2) {
		const redisReply *k = map->element[i];
		if (k->type == REDIS_REPLY_STRING && strcmp(k->str, key) == 0)
			return map->element[i + 1];
	}
	return NULL;
}

static bool
is_int(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0;
}

static int
id_of(const redisReply *r, struct jobs_stream_id *id)
{
	if (r == NULL || r->type != REDIS_REPLY_STRING)
		return -1;
	return jobs_stream_id_parse(r->str, id);
}

/* The id of element 0 of an array of entries or pending entries ([id, …]). */
static int
first_id(const redisReply *list, struct jobs_stream_id *id)
{
	if (list == NULL || list->type != REDIS_REPLY_ARRAY || list->elements == 0)
		return -1;
	const redisReply *e = list->element[0];
	if (e->type != REDIS_REPLY_ARRAY || e->elements == 0)
		return -1;
	return id_of(e->element[0], id);
}

/*
 * One group of the reply: its last-delivered-id, its pending count, and the
 * first id it still needs (the oldest pending entry, else the one after the
 * last delivered). -1 if the group is not shaped as expected.
 */
static int
group_needs(const redisReply *g, struct jobs_stream_id *last, long long *pending,
    struct jobs_stream_id *need)
{
	const redisReply *pel = map_get(g, "pel-count");
	if (id_of(map_get(g, "last-delivered-id"), last) != 0 || !is_int(pel))
		return -1;
	*pending = pel->integer;
	/* Delivered up to the largest id there is: keep that one, harmlessly. */
	if (jobs_stream_id_next(last, need) != 0)
		*need = *last;
	if (*pending > 0) {
		/* COUNT 1 lists the group's oldest pending entry (the list is in id order). */
		struct jobs_stream_id oldest;
		if (first_id(map_get(g, "pending"), &oldest) != 0)
			return -1;
		if (jobs_stream_id_cmp(&oldest, need) < 0)
			*need = oldest;
	}
	return 0;
}

/*
 * How many entries the group has not delivered, from its position and the
 * lag Redis reports. Returns false if Redis cannot tell (lag nil or absent).
 */
static bool
undelivered_of(const redisReply *info, const redisReply *g, const struct jobs_stream_id *last,
    long long length, long long *undelivered)
{
	struct jobs_stream_id first;
	const redisReply *lag = map_get(g, "lag");

	if (length == 0) {
		*undelivered = 0;
		return true;
	}
	if (first_id(map_get(info, "entries"), &first) == 0 ||
	    id_of(map_get(info, "recorded-first-entry-id"), &first) == 0) {
		/*
		 * Every entry is after the group's position: all are undelivered,
		 * whatever Redis says. Redis 7.0 says nil for a group created at 0 on a
		 * stream that had an XDEL, and after a trim past the group (MAXLEN by
		 * hand) the lag from before the trim (measured: docs/design.md).
		 */
		if (jobs_stream_id_cmp(last, &first) < 0) {
			*undelivered = length;
			return true;
		}
	}
	/* nil after an XDEL of an entry the group has not read yet; absent before 7.0. */
	if (!is_int(lag))
		return false;
	/* Undelivered entries are entries of the stream. */
	*undelivered = lag->integer < length ? lag->integer : length;
	return true;
}

int
jobs_stream_parse(const redisReply *info, const char *group, struct jobs_stream_state *out)
{
	const redisReply *length = map_get(info, "length"), *groups = map_get(info, "groups");
	const redisReply *ours = NULL;

	memset(out, 0, sizeof(*out));
	if (!is_int(length) || groups == NULL || groups->type != REDIS_REPLY_ARRAY)
		return -1;
	out->stream_exists = true;
	out->length = length->integer;
	for (size_t i = 0; i < groups->elements; i++) {
		const redisReply *g = groups->element[i], *name = map_get(g, "name");
		struct jobs_stream_id last, need;
		long long pending;
		if (name == NULL || name->type != REDIS_REPLY_STRING ||
		    group_needs(g, &last, &pending, &need) != 0) {
			memset(out, 0, sizeof(*out));
			return -1;
		}
		/* Any group's needs hold trimming back, not only ours. */
		if (i == 0 || jobs_stream_id_cmp(&need, &out->keep_from) < 0)
			out->keep_from = need;
		if (strcmp(name->str, group) == 0) {
			ours = g;
			out->last_delivered = last;
			out->pending = pending;
		}
	}
	if (ours == NULL) {
		/* The group will be created at 0 (consumer.c): every entry is still to come. */
		out->undelivered = out->backlog = out->length;
		out->keep_from = (struct jobs_stream_id){ 0, 0 };
		return 0;
	}
	out->group_exists = true;
	out->trimmable = true;
	if (!undelivered_of(info, ours, &out->last_delivered, out->length, &out->undelivered)) {
		out->lag_unknown = true;
		out->undelivered = 0;
	}
	out->backlog = out->undelivered + out->pending;
	return 0;
}

/*
 * XINFO STREAM answers an error for a key that does not exist, and
 * redis_cmd() returns NULL for an error and for no answer alike: TYPE tells
 * them apart. 0 with out zeroed if there is no stream; -1 if Redis did not
 * answer or kqe:jobs is something else.
 */
static int
no_stream(struct redis *r, struct jobs_stream_state *out)
{
	memset(out, 0, sizeof(*out));
	redisReply *type = redis_cmd(r, "TYPE %s", JOBS_STREAM);
	if (type == NULL)
		return -1;
	bool none = type->type == REDIS_REPLY_STATUS && strcmp(type->str, "none") == 0;
	if (!none)
		log_warn(NULL, "cannot read the job stream",
		    json_pack("{s:s,s:s}", "stream", JOBS_STREAM, "type",
		        type->type == REDIS_REPLY_STATUS ? type->str : "?"));
	freeReplyObject(type);
	return none ? 0 : -1;
}

/* One command: XINFO STREAM kqe:jobs FULL COUNT 1, parsed for our group. 0 or -1. */
static int
read_info(struct redis *r, struct jobs_stream_state *out)
{
	/*
	 * Asked first, so that a fresh Redis without the stream is not an error
	 * reply (logged) at every sample of kqe-api's metrics.
	 */
	redisReply *exists = redis_cmd(r, "EXISTS %s", JOBS_STREAM);
	if (exists == NULL)
		return -1;
	bool none = exists->type == REDIS_REPLY_INTEGER && exists->integer == 0;
	freeReplyObject(exists);
	if (none) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	redisReply *info = redis_cmd(r, "XINFO STREAM %s FULL COUNT 1", JOBS_STREAM);
	if (info == NULL)
		return no_stream(r, out);
	int rc = jobs_stream_parse(info, JOBS_GROUP, out);
	freeReplyObject(info);
	if (rc != 0)
		log_warn(NULL, "unexpected XINFO STREAM reply",
		    json_pack("{s:s}", "stream", JOBS_STREAM));
	return rc;
}

/* Counts the entries after `after` with XRANGE, COUNT_PAGE a command. 0 or -1. */
static int
count_after(struct redis *r, const struct jobs_stream_id *after, long long *count)
{
	struct jobs_stream_id from;
	*count = 0;
	if (jobs_stream_id_next(after, &from) != 0)
		return 0;
	for (;;) {
		char id[JOBS_STREAM_ID_MAX];
		redisReply *page = redis_cmd(r, "XRANGE %s %s + COUNT %d", JOBS_STREAM,
		    jobs_stream_id_format(&from, id), COUNT_PAGE);
		if (page == NULL)
			return -1;
		struct jobs_stream_id last;
		size_t n = page->type == REDIS_REPLY_ARRAY ? page->elements : 0;
		int rc = page->type == REDIS_REPLY_ARRAY ? 0 : -1;
		*count += (long long)n;
		bool more = rc == 0 && n == COUNT_PAGE;
		if (more) {
			/* Entries are [id, fields]: the next page starts after the last id. */
			const redisReply *e = page->element[n - 1];
			if (e->type != REDIS_REPLY_ARRAY || e->elements == 0 ||
			    id_of(e->element[0], &last) != 0 ||
			    jobs_stream_id_next(&last, &from) != 0)
				more = false;
		}
		freeReplyObject(page);
		if (!more)
			return rc;
	}
}

int
jobs_stream_state(struct redis *r, struct jobs_stream_state *out)
{
	memset(out, 0, sizeof(*out));
	/* First: if Redis is down, this is the one command that waits for the timeout. */
	redisReply *dead = redis_cmd(r, "XLEN %s", JOBS_DEAD_STREAM);
	if (dead == NULL)
		return -1;
	bool ok = dead->type == REDIS_REPLY_INTEGER;
	long long dead_entries = ok ? dead->integer : 0;
	freeReplyObject(dead);
	if (!ok || read_info(r, out) != 0)
		goto fail;
	if (out->lag_unknown) {
		if (count_after(r, &out->last_delivered, &out->undelivered) != 0)
			goto fail;
		out->backlog = out->undelivered + out->pending;
	}
	out->dead = dead_entries;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}

int
jobs_stream_trim(struct redis *r, struct jobs_stream_trimmed *out)
{
	struct jobs_stream_state s;
	char minid[JOBS_STREAM_ID_MAX];

	memset(out, 0, sizeof(*out));
	if (read_info(r, &s) != 0)
		return -1;
	out->length = s.length;
	out->pending = s.pending;
	if (!s.trimmable)
		return 0;
	/*
	 * Exact (=), not approximate (~): it costs the same (measured:
	 * docs/design.md), and afterwards XLEN counts only entries still needed.
	 */
	redisReply *rep = redis_cmd(
	    r, "XTRIM %s MINID = %s", JOBS_STREAM, jobs_stream_id_format(&s.keep_from, minid));
	if (rep == NULL)
		return -1;
	int rc = rep->type == REDIS_REPLY_INTEGER ? 0 : -1;
	if (rc == 0) {
		out->trimmed = true;
		out->removed = rep->integer;
		out->length = s.length > rep->integer ? s.length - rep->integer : 0;
		out->keep_from = s.keep_from;
	}
	freeReplyObject(rep);
	return rc;
}
