/*
 * kqe jobs status|trim — the job stream kqe:jobs as an operator sees it.
 * `status` prints what jobs_stream_state() reads (the figures kqe-api's
 * /metrics exports: backlog and dead are the ones to alert on); `trim` removes
 * the entries every consumer group is done with, now, as kqe-aggregator does
 * every KQE_JOBS_TRIM_INTERVAL_S. One "name: value" a line on stdout.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kqe/jobs_stream.h"

#define JOBS_USAGE "usage: kqe jobs status|trim\n"

static const char *
yes_no(bool b)
{
	return b ? "yes" : "no";
}

static int
status(struct redis *r)
{
	struct jobs_stream_state s;
	char id[JOBS_STREAM_ID_MAX];
	if (jobs_stream_state(r, &s) != 0)
		return -1;
	printf("stream: %s\ngroup: %s\nstream_exists: %s\ngroup_exists: %s\n", JOBS_STREAM,
	    JOBS_GROUP, yes_no(s.stream_exists), yes_no(s.group_exists));
	printf("length: %lld\nundelivered: %lld\npending: %lld\nbacklog: %lld\n", s.length,
	    s.undelivered, s.pending, s.backlog);
	printf("lag: %s\n", s.lag_unknown ? "counted (Redis did not know it)" : "from Redis");
	printf("last_delivered: %s\n",
	    s.group_exists ? jobs_stream_id_format(&s.last_delivered, id) : "-");
	printf(
	    "trim_keeps_from: %s\n", s.trimmable ? jobs_stream_id_format(&s.keep_from, id) : "-");
	printf("dead_stream: %s\ndead: %lld\n", JOBS_DEAD_STREAM, s.dead);
	return 0;
}

static int
trim(struct redis *r)
{
	struct jobs_stream_trimmed t;
	char id[JOBS_STREAM_ID_MAX];
	if (jobs_stream_trim(r, &t) != 0)
		return -1;
	printf("trimmed: %s\nremoved: %lld\nkept_from: %s\nlength: %lld\npending: %lld\n",
	    yes_no(t.trimmed), t.removed, t.trimmed ? jobs_stream_id_format(&t.keep_from, id) : "-",
	    t.length, t.pending);
	return 0;
}

int
cmd_jobs(int argc, char **argv, const struct config *cfg)
{
	if (argc != 2 || (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "trim") != 0)) {
		fprintf(stderr, JOBS_USAGE);
		return 2;
	}
	struct redis_settings rs = config_redis_settings(cfg);
	struct redis *r = redis_open(&rs);
	if (r == NULL) {
		fprintf(stderr, "kqe jobs: KQE_REDIS_URL: not a redis:// URL\n");
		return 2;
	}
	int rc = strcmp(argv[1], "status") == 0 ? status(r) : trim(r);
	if (rc != 0)
		fprintf(stderr,
		    "kqe jobs %s: Redis at KQE_REDIS_URL did not answer (or %s is not a stream)\n",
		    argv[1], JOBS_STREAM);
	redis_free(r);
	return rc == 0 ? 0 : 1;
}
