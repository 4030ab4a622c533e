/*
 * token_cache — verified API keys remembered per pool thread, so a request
 * does not look its key up in PostgreSQL every time, while revoking a key
 * (or changing it in any way) still takes effect at once.
 *
 * Each pool thread keeps the principals of the keys it verified, by the
 * key's SHA-256, for at most TOKEN_CACHE_TTL_S and never past the key's own
 * expiry. A listener thread holds a connection that LISTENs on
 * kqe_api_tokens; every change to api_tokens notifies it (a trigger,
 * migration 0034), and each notification moves a process-wide generation
 * on, which makes every remembered key stale. While the listener is not
 * connected (PostgreSQL down, the connection lost), nothing is remembered
 * and every request looks its key up, as before: a notification it may have
 * missed cannot leave a revoked key usable. docs/security.md, "Revoking a
 * key".
 */
#ifndef KQE_API_TOKEN_CACHE_H
#define KQE_API_TOKEN_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "kqe/config.h"
#include "kqe/principal.h"

/* How long a verified key is remembered at most, in seconds. */
#define TOKEN_CACHE_TTL_S 60

/* The generation a lookup must note before it asks PostgreSQL (token_cache_put). */
uint64_t token_cache_generation(void);

/*
 * On a pool thread: the principal of a key verified on this thread and not
 * stale. hash is the key's SHA-256.
 */
bool token_cache_get(const unsigned char hash[32], struct principal *out);

/*
 * Remembers a valid key's principal on this thread. generation: what
 * token_cache_generation() said before the lookup; expires_at: the key's
 * expiry in Unix seconds, 0 for none.
 */
void token_cache_put(const unsigned char hash[32], const struct principal *p, uint64_t generation,
    int64_t expires_at);

/* Starts and stops the listener thread (its own connection to cfg->database_url). */
void token_cache_start(const struct config *cfg);
void token_cache_stop(void);

/* Counters for /metrics: invalidations seen, lookups answered from a cache. */
void token_cache_stats(unsigned long *invalidations, unsigned long *hits);

#endif
