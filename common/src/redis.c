#include "kqe/redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/breaker.h"
#include "kqe/log.h"

struct redis {
	char host[256];
	int port;
	int dbnum;
	long timeout_ms;
	long read_timeout_ms;
	redisContext *ctx;
	struct breaker *breaker; /* shared with the process's other connections; may be NULL */
};

int
redis_url_parse(const char *url, char *host, size_t hostlen, int *port, int *dbnum)
{
	const char *p;
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	p = url + 8;
	size_t n = strcspn(p, ":/");
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, p, n);
	host[n] = '\0';
	p += n;
	*port = 6379;
	*dbnum = 0;
	if (*p == ':') {
		char *end;
		long v = strtol(p + 1, &end, 10);
		if (end == p + 1 || v < 1 || v > 65535)
			return -1;
		*port = (int)v;
		p = end;
	}
	if (*p == '/' && p[1] != '\0') {
		char *end;
		long v = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end != '\0' || v < 0 || v > 15)
			return -1;
		*dbnum = (int)v;
		p = end;
	} else if (*p == '/') {
		p++;
	}
	return *p == '\0' ? 0 : -1;
}

struct redis *
redis_new(const char *url, long timeout_ms)
{
	struct redis *r = xcalloc(1, sizeof(*r));
	if (redis_url_parse(url, r->host, sizeof(r->host), &r->port, &r->dbnum) != 0) {
		free(r);
		return NULL;
	}
	r->timeout_ms = timeout_ms;
	r->read_timeout_ms = timeout_ms;
	return r;
}

static void
drop(struct redis *r)
{
	if (r->ctx != NULL)
		redisFree(r->ctx);
	r->ctx = NULL;
}

void
redis_free(struct redis *r)
{
	if (r == NULL)
		return;
	drop(r);
	free(r);
}

static struct timeval
tv_ms(long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	return tv;
}

static int
ensure(struct redis *r)
{
	if (r->ctx != NULL)
		return 0;
	r->ctx = redisConnectWithTimeout(r->host, r->port, tv_ms(r->timeout_ms));
	if (r->ctx == NULL || r->ctx->err) {
		drop(r);
		return -1;
	}
	redisSetTimeout(r->ctx, tv_ms(r->read_timeout_ms));
	if (r->dbnum != 0) {
		redisReply *rep = redisCommand(r->ctx, "SELECT %d", r->dbnum);
		int ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
		if (rep != NULL)
			freeReplyObject(rep);
		if (!ok) {
			drop(r);
			return -1;
		}
	}
	return 0;
}

void
redis_set_read_timeout(struct redis *r, long timeout_ms)
{
	r->read_timeout_ms = timeout_ms;
	if (r->ctx != NULL)
		redisSetTimeout(r->ctx, tv_ms(timeout_ms));
}

void
redis_set_breaker(struct redis *r, struct breaker *b)
{
	r->breaker = b;
}

/* Connected and allowed by the breaker; a failed connect opens it. */
static int
usable(struct redis *r)
{
	if (!breaker_allow(r->breaker))
		return -1;
	if (ensure(r) != 0) {
		breaker_fail(r->breaker);
		return -1;
	}
	return 0;
}

static redisReply *
check(struct redis *r, redisReply *rep)
{
	if (rep == NULL) {
		/* No answer (timeout, reset): whoever asks next waits out no timeout of its own. */
		drop(r);
		breaker_fail(r->breaker);
		return NULL;
	}
	breaker_ok(r->breaker);
	if (rep->type == REDIS_REPLY_ERROR) {
		char code[32];
		snprintf(code, sizeof(code), "%.*s", (int)strcspn(rep->str, " "), rep->str);
		log_warn(NULL, "redis error reply", json_pack("{s:s}", "code", code));
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/*
 * A connection kept from before a Redis restart is dead, and its first command finds that out
 * (EOF, or a reset/broken pipe). That says nothing about Redis now: drop the connection and
 * send the command once more on a new one before the breaker hears of it. A timeout is not
 * retried (a hung Redis would cost the caller twice). Our commands tolerate the rare case of
 * a command that ran before the server went away: a rate-limit INCR counts one request more,
 * an XADD publishes an event the consumers already treat idempotently.
 */
static bool
retry_on_new(struct redis *r, bool was_connected, redisReply *rep, int err_no)
{
	if (rep != NULL || !was_connected || r->ctx == NULL)
		return false;
	bool dead = r->ctx->err == REDIS_ERR_EOF ||
	            (r->ctx->err == REDIS_ERR_IO && (err_no == ECONNRESET || err_no == EPIPE));
	if (!dead)
		return false;
	drop(r);
	return ensure(r) == 0;
}

redisReply *
redis_argv(struct redis *r, int argc, const char **argv, const size_t *lens)
{
	bool was_connected = r->ctx != NULL;
	if (usable(r) != 0)
		return NULL;
	redisReply *rep = redisCommandArgv(r->ctx, argc, argv, lens);
	if (retry_on_new(r, was_connected, rep, errno))
		rep = redisCommandArgv(r->ctx, argc, argv, lens);
	return check(r, rep);
}

redisReply *
redis_cmd(struct redis *r, const char *fmt, ...)
{
	bool was_connected = r->ctx != NULL;
	if (usable(r) != 0)
		return NULL;
	va_list ap, again;
	va_start(ap, fmt);
	va_copy(again, ap);
	redisReply *rep = redisvCommand(r->ctx, fmt, ap);
	if (retry_on_new(r, was_connected, rep, errno))
		rep = redisvCommand(r->ctx, fmt, again);
	va_end(again);
	va_end(ap);
	return check(r, rep);
}
