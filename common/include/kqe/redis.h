/*
 * redis — one blocking hiredis connection with timeouts, connected lazily and
 * re-established after errors. Owned by one thread.
 *
 * With KQE_REDIS_SENTINELS, every (re)connection asks the Sentinels for the
 * master named KQE_REDIS_MASTER_NAME and checks its ROLE, so a failover is
 * followed at the next error: a dead connection, a timeout, or a READONLY
 * answer from a demoted master (docs/operations.md, "Redis with Sentinel").
 */
#ifndef KQE_REDIS_H
#define KQE_REDIS_H

#include <hiredis/hiredis.h>

#include "kqe/util.h"

#define REDIS_MAX_SENTINELS 8

struct redis;

/* Parses redis://host[:port][/db]. Returns -1 if the URL is malformed. */
int redis_url_parse(
    const char *url, char *host, size_t hostlen, int *port, int *dbnum) KQE_MUSTCHECK;

/* Where Redis is (config.h: KQE_REDIS_URL, KQE_REDIS_SENTINELS, KQE_REDIS_MASTER_NAME). */
struct redis_settings {
	const char *url; /* redis://host[:port][/db]; with sentinels only its db counts */
	const char *sentinels; /* "host:port,host:port,…", or NULL for none */
	const char *master_name; /* the master the Sentinels monitor */
	long timeout_ms; /* connect and command timeout */
};

/* Checks the settings; -1 with err naming the variable that is wrong. */
int redis_settings_check(const struct redis_settings *s, char *err, size_t errlen) KQE_MUSTCHECK;

/* Returns a new handle (no connection yet), or NULL if the settings are malformed. */
struct redis *redis_open(const struct redis_settings *s);
void redis_free(struct redis *r);

/*
 * Runs one command given as argv. Returns a new reply (freeReplyObject) or
 * NULL when Redis is unreachable or answered with an error (the connection is
 * dropped and retried on the next call; error replies are logged by code only).
 */
redisReply *redis_argv(
    struct redis *r, int argc, const char **argv, const size_t *lens) KQE_MUSTCHECK;

/* Like redis_argv with printf-style hiredis formatting. */
redisReply *redis_cmd(struct redis *r, const char *fmt, ...) KQE_MUSTCHECK;

/*
 * Puts the connection behind a circuit breaker shared with the process's
 * other connections to the same Redis (breaker.h): once one of them found
 * Redis gone or hung, the others fail at once instead of each waiting out
 * its timeout. NULL: none (the default).
 */
struct breaker;
void redis_set_breaker(struct redis *r, struct breaker *b);

/* Sets a different read timeout for blocking commands (e.g. XREADGROUP BLOCK). */
void redis_set_read_timeout(struct redis *r, long timeout_ms);

#endif
