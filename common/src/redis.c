#include "kqe/redis.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/breaker.h"
#include "kqe/log.h"

#define MASTER_NAME_MAX 128

struct endpoint {
	char host[256];
	int port;
};

struct redis {
	struct endpoint server; /* KQE_REDIS_URL's host, or the master the Sentinels named last */
	struct endpoint sentinels[REDIS_MAX_SENTINELS];
	int nsentinels; /* 0: no Sentinel, server is fixed */
	int sentinel_first; /* the Sentinel that answered last is asked first */
	char master_name[MASTER_NAME_MAX];
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

/* One "host:port" of a Sentinel list, len bytes at p (an IPv6 host in brackets). */
static int
endpoint_parse(const char *p, size_t len, struct endpoint *e)
{
	const char *colon = NULL;
	for (size_t i = 0; i < len; i++)
		if (p[i] == ':')
			colon = p + i;
	if (colon == NULL || colon == p || colon + 1 == p + len)
		return -1;
	const char *host = p;
	size_t hostlen = (size_t)(colon - p);
	if (host[0] == '[' && hostlen > 2 && host[hostlen - 1] == ']') {
		host++;
		hostlen -= 2;
	}
	if (hostlen >= sizeof(e->host) || memchr(host, '[', hostlen) != NULL ||
	    memchr(host, ']', hostlen) != NULL)
		return -1;
	memcpy(e->host, host, hostlen);
	e->host[hostlen] = '\0';
	long port = 0;
	for (const char *d = colon + 1; d < p + len; d++) {
		if (*d < '0' || *d > '9' || port > 65535)
			return -1;
		port = port * 10 + (*d - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	e->port = (int)port;
	return 0;
}

/* "host:port,host:port,…" into out; the number of Sentinels, or -1. */
static int
sentinels_parse(const char *list, struct endpoint *out, int max)
{
	int n = 0;
	const char *p = list;
	for (;;) {
		size_t len = strcspn(p, ",");
		if (n == max || endpoint_parse(p, len, &out[n]) != 0)
			return -1;
		n++;
		if (p[len] == '\0')
			return n;
		p += len + 1;
	}
}

int
redis_settings_check(const struct redis_settings *s, char *err, size_t errlen)
{
	struct endpoint e, list[REDIS_MAX_SENTINELS];
	int dbnum;
	if (redis_url_parse(s->url, e.host, sizeof(e.host), &e.port, &dbnum) != 0) {
		snprintf(err, errlen, "KQE_REDIS_URL: \"%.60s\" is not redis://host[:port][/db]",
		    s->url);
		return -1;
	}
	if (s->sentinels != NULL && sentinels_parse(s->sentinels, list, REDIS_MAX_SENTINELS) < 0) {
		snprintf(err, errlen,
		    "KQE_REDIS_SENTINELS: \"%.60s\" is not a list of at most %d host:port",
		    s->sentinels, REDIS_MAX_SENTINELS);
		return -1;
	}
	if (s->master_name == NULL || s->master_name[0] == '\0' ||
	    strlen(s->master_name) >= MASTER_NAME_MAX ||
	    strpbrk(s->master_name, " \t\r\n") != NULL) {
		snprintf(err, errlen, "KQE_REDIS_MASTER_NAME: not a Sentinel master name");
		return -1;
	}
	return 0;
}

struct redis *
redis_open(const struct redis_settings *s)
{
	struct redis *r = xcalloc(1, sizeof(*r));
	if (redis_url_parse(
	        s->url, r->server.host, sizeof(r->server.host), &r->server.port, &r->dbnum) != 0)
		goto bad;
	if (s->sentinels != NULL) {
		memset(&r->server, 0, sizeof(r->server)); /* not known until a Sentinel names it */
		r->nsentinels = sentinels_parse(s->sentinels, r->sentinels, REDIS_MAX_SENTINELS);
		if (r->nsentinels < 0 || s->master_name == NULL ||
		    strlen(s->master_name) >= sizeof(r->master_name))
			goto bad;
		memcpy(r->master_name, s->master_name, strlen(s->master_name) + 1);
	}
	r->timeout_ms = s->timeout_ms;
	r->read_timeout_ms = s->timeout_ms;
	return r;
bad:
	free(r);
	return NULL;
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

/*
 * The master's address as the Sentinels know it now, from the first of them that answers
 * (Redis's guidelines for Sentinel clients): a Sentinel that is down or does not know the
 * master is passed over.
 */
static int
ask_sentinels(struct redis *r, struct endpoint *master)
{
	for (int i = 0; i < r->nsentinels; i++) {
		int k = (r->sentinel_first + i) % r->nsentinels;
		const struct endpoint *s = &r->sentinels[k];
		redisContext *c = redisConnectWithTimeout(s->host, s->port, tv_ms(r->timeout_ms));
		if (c == NULL || c->err) {
			if (c != NULL)
				redisFree(c);
			continue;
		}
		redisSetTimeout(c, tv_ms(r->timeout_ms));
		redisReply *rep =
		    redisCommand(c, "SENTINEL get-master-addr-by-name %s", r->master_name);
		bool ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		          rep->element[0]->type == REDIS_REPLY_STRING &&
		          rep->element[1]->type == REDIS_REPLY_STRING &&
		          rep->element[0]->len < sizeof(master->host);
		long port = ok ? strtol(rep->element[1]->str, NULL, 10) : 0;
		if (ok && port >= 1 && port <= 65535) {
			memcpy(master->host, rep->element[0]->str, rep->element[0]->len + 1);
			master->port = (int)port;
		} else {
			ok = false;
		}
		if (rep != NULL)
			freeReplyObject(rep);
		redisFree(c);
		if (ok) {
			r->sentinel_first = k;
			return 0;
		}
	}
	return -1;
}

/* A Sentinel may still name a master that a failover has just demoted: ROLE tells. */
static bool
is_master(redisContext *c)
{
	redisReply *rep = redisCommand(c, "ROLE");
	bool master = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
	              rep->element[0]->type == REDIS_REPLY_STRING &&
	              strcmp(rep->element[0]->str, "master") == 0;
	if (rep != NULL)
		freeReplyObject(rep);
	return master;
}

/* Where to connect: KQE_REDIS_URL's server, or the master the Sentinels name now. */
static int
locate(struct redis *r)
{
	if (r->nsentinels == 0)
		return 0;
	struct endpoint master;
	if (ask_sentinels(r, &master) != 0)
		return -1;
	if (strcmp(master.host, r->server.host) != 0 || master.port != r->server.port) {
		/* The first answer is where the master is; a later, different one a failover. */
		log_at(r->server.port == 0 ? LOG_DEBUG : LOG_INFO, NULL,
		    r->server.port == 0 ? "redis master found" : "redis master moved",
		    json_pack("{s:s,s:i}", "host", master.host, "port", master.port));
		r->server = master;
	}
	return 0;
}

static int
ensure(struct redis *r)
{
	if (r->ctx != NULL)
		return 0;
	if (locate(r) != 0)
		return -1;
	r->ctx = redisConnectWithTimeout(r->server.host, r->server.port, tv_ms(r->timeout_ms));
	if (r->ctx == NULL || r->ctx->err) {
		drop(r);
		return -1;
	}
	redisSetTimeout(r->ctx, tv_ms(r->read_timeout_ms));
	if (r->nsentinels > 0 && !is_master(r->ctx)) {
		drop(r);
		return -1;
	}
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
 *
 * Under Sentinel, a master that a failover demoted answers writes READONLY (the command did
 * not run): the new connection is made to the master the Sentinels name now.
 */
static bool
retry_on_new(struct redis *r, bool was_connected, redisReply **rep, int err_no)
{
	if (*rep != NULL) {
		if (r->nsentinels == 0 || (*rep)->type != REDIS_REPLY_ERROR ||
		    strncmp((*rep)->str, "READONLY", 8) != 0)
			return false;
		freeReplyObject(*rep);
		*rep = NULL;
		drop(r);
		return ensure(r) == 0;
	}
	if (!was_connected || r->ctx == NULL)
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
	if (retry_on_new(r, was_connected, &rep, errno))
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
	if (retry_on_new(r, was_connected, &rep, errno))
		rep = redisvCommand(r->ctx, fmt, again);
	va_end(again);
	va_end(ap);
	return check(r, rep);
}
