/*
 * auth — who is calling and what they may do. The single place in the request
 * path where identity is decided (auth_identify) and the one permission table
 * (auth_allows): every route names a permission, every permission lists the
 * roles granted it, and anything not listed is denied.
 *
 * Bearer tokens: opaque API keys "kqe_<43 base64url chars>" (32 random bytes),
 * looked up by SHA-256 in api_tokens, or JWTs from the identity provider
 * (jwt.c). Then a per-principal rate limit applies (auth_rate_limit).
 */
#ifndef KQE_API_AUTH_H
#define KQE_API_AUTH_H

#include <stdbool.h>

#include "server.h"

/* Fills r->principal from the Authorization header. 0, or -1 after answering (401, 503). */
int auth_identify(struct request *r) KQE_MUSTCHECK;

/*
 * True if a bearer token has the shape of an API key, "kqe_" and 43
 * base64url characters: only then is it looked up (else it may be a JWT).
 */
bool auth_api_key_shaped(const char *token);

bool auth_allows(const struct principal *p, enum permission perm);

/* The permission's name ("cases.read") and whether role holds it (for --permissions). */
const char *auth_permission_name(enum permission perm);
bool auth_role_has(enum role role, enum permission perm);

/* A new array of the names of the permissions role holds. */
json_t *auth_permissions_of(enum role role);

/*
 * Counts the request against the caller's limit per minute (shared by every
 * instance through Redis) and fills r->rate. 0, or -1 after answering 429.
 * If Redis does not answer, the request is let through and r->rate stays unknown.
 */
int auth_rate_limit(struct request *r) KQE_MUSTCHECK;

#endif
