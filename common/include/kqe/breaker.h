/*
 * breaker — a circuit breaker in front of one dependency (PostgreSQL, Redis).
 *
 * After a failure that says the dependency is gone or hung (a refused or
 * timed-out connection, a missed deadline), callers fail at once for
 * `cooldown_ms` instead of each waiting out its own timeout. When the
 * cooldown is over, exactly one caller is let through to probe (the others
 * keep failing fast); its success closes the breaker, its failure opens it
 * for another cooldown. So a dead dependency costs one timeout per cooldown,
 * not one per request, and a recovered one is used again within a cooldown.
 *
 * Thread-safe and lock-free: one breaker is shared by every connection to
 * the same dependency.
 */
#ifndef KQE_BREAKER_H
#define KQE_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct breaker {
	_Atomic uint64_t open_until_ns; /* 0: closed */
	_Atomic uint64_t trips; /* how often it opened (for /metrics) */
	uint64_t cooldown_ns;
};

void breaker_init(struct breaker *b, long cooldown_ms);

/* May the caller use the dependency now? (NULL breaker: always.) */
bool breaker_allow(struct breaker *b);

/* The dependency answered. */
void breaker_ok(struct breaker *b);

/* The dependency is gone or hung: fail fast for a cooldown. */
void breaker_fail(struct breaker *b);

/* Whether callers are failing fast right now. */
bool breaker_is_open(struct breaker *b);

#endif
