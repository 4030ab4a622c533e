/*
 * auth — who is calling and what they may do. The single place in the request
 * path where identity is decided (auth_identify) and the one permission table
 * (auth_allows): every route names a permission, every permission lists the
 * roles granted it, and anything not listed is denied.
 *
 * Bearer tokens: opaque API keys "kqe_<43 base64url chars>" (32 random bytes),
 * looked up by SHA-256 in api_tokens, or JWTs from the identity provider
 * (jwt.c). Then a per-principal rate limit applies.
 */
#ifndef KQE_API_AUTH_H
#define KQE_API_AUTH_H

#include <stdbool.h>
#include <stdio.h>

#include "server.h"

enum permission {
	PERM_PUBLIC, /* health, readiness, metrics: no token needed */
	PERM_OFFICES_READ,
	PERM_REPORTS_CREATE,
	PERM_REPORTS_READ,
	PERM_JOBS_READ,
	PERM_PROCEDURES_READ,
	PERM_PROCEDURES_WRITE,
	PERM_AUDIT_READ,
	PERM_CODELISTS_READ,
	PERM_CASES_READ,
	PERM_CASES_WRITE,
	PERM_BENCHMARK_READ,
	PERM_BATCHES_CREATE,
	PERM_COUNT
};

/* Fills r->principal. Returns 0, or -1 after answering (401, 503). */
int auth_identify(struct request *r);

bool auth_allows(const struct principal *p, enum permission perm);

/* Prints the permission table as Markdown (kqe-api --permissions; docs/security.md). */
void auth_print_permissions(FILE *out);

#endif
