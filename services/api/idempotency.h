/*
 * idempotency — Idempotency-Key for every POST (docs/api-conventions.md), in
 * the request path rather than in each handler.
 *
 * The key lives in the write's own transaction, so it can never outlive a
 * write that did not happen:
 *
 *   dispatcher  idempotency_begin(): a committed key for (caller, key)
 *               replays its outcome (same request: method, path, query and
 *               body hash) or is a 422 (another request); none lets the
 *               handler run.
 *   handler     request_begin() (pipeline.c) calls idempotency_claim() right
 *               after BEGIN: a transaction-scoped advisory lock on (caller,
 *               key) — taken without waiting, so a concurrent duplicate is a
 *               409 at once — and the key's row, inserted uncommitted.
 *               request_commit() calls idempotency_record() just before
 *               COMMIT with the status and Location (or, for answers without
 *               personal data such as a batch summary, the body).
 *
 * A rollback — a refused write, a dry run, a failure, or the process killed
 * mid-request (PostgreSQL aborts the dead connection's transaction) — takes
 * the key with it: a retry runs at once. A replay answers with the resource
 * at Location as it is now, under the original status, with
 * "Idempotency-Replayed: true". Keys expire after 24 hours.
 */
#ifndef KQE_API_IDEMPOTENCY_H
#define KQE_API_IDEMPOTENCY_H

#include <stddef.h>

#include "server.h"

enum idempotency {
	IDEMPOTENCY_PROCEED, /* run the handler (r->idempotency_key set if a key was sent) */
	IDEMPOTENCY_ANSWERED, /* answered here: a verbatim replay or a problem */
	IDEMPOTENCY_REPLAY, /* answer with the resource at *location under *status */
};

enum idempotency idempotency_begin(struct request *r, char *location, size_t size, int *status);

/*
 * In the request's open transaction: claims r->idempotency_key (no key: a
 * no-op). 0 claimed; 1 another request holds or has just committed the key
 * (r->idempotency_lost is set; the dispatcher answers after a rollback); -1
 * the database failed.
 */
int idempotency_claim(struct request *r);

/* In the same transaction, before COMMIT: the outcome a retry replays. 0 or -1. */
int idempotency_record(struct request *r, int status, const char *location, const char *body);

#endif
