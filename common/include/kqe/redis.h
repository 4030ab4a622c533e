/*
 * redis — one blocking hiredis connection with timeouts, connected lazily and
 * re-established after errors. Owned by one thread.
 */
#ifndef KQE_REDIS_H
#define KQE_REDIS_H

#include <hiredis/hiredis.h>

#include "kqe/util.h"

struct redis;

/* Parses redis://host[:port][/db]. Returns -1 if the URL is malformed. */
int redis_url_parse(
    const char *url, char *host, size_t hostlen, int *port, int *dbnum) KQE_MUSTCHECK;

/* Returns a new handle (no connection yet), or NULL if url is malformed. */
struct redis *redis_new(const char *url, long timeout_ms);
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
