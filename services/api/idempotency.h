/*
 * idempotency — Idempotency-Key for every POST (docs/api-conventions.md), in
 * the request path rather than in each handler.
 *
 * Before the handler: the key is reserved for (caller, key) together with a
 * hash of the request (method, path, query, body). The same key again with
 * the same request replays the first outcome; with another request it is a
 * 422; while the first is still running, a 409. After the handler: a 2xx
 * answer with a Location is recorded (status and Location only — not the
 * body, which may hold decrypted free text; a handler keeps a body verbatim
 * only where it holds no personal data, as batch summaries); anything else
 * releases the key so the client may retry. A replay answers with the resource at Location as
 * it is now, under the original status, with "Idempotency-Replayed: true".
 * Keys expire after 24 hours; a reservation older than a minute whose
 * request never finished (process died) may be taken over.
 */
#ifndef KQE_API_IDEMPOTENCY_H
#define KQE_API_IDEMPOTENCY_H

#include <stddef.h>

#include "server.h"

enum idempotency {
	IDEMPOTENCY_PROCEED, /* run the handler (r->idempotency_key set if a key was reserved) */
	IDEMPOTENCY_ANSWERED, /* answered here: a verbatim replay or a problem */
	IDEMPOTENCY_REPLAY, /* answer with the resource at *location under *status */
};

enum idempotency idempotency_begin(struct request *r, char *location, size_t size, int *status);

/*
 * Called by the dispatcher once the answer is built, before it is sent:
 * records the outcome (a 2xx with a Location, or a body the handler marked
 * safe to keep) or releases the reservation. Frees r->idempotency_key.
 */
void idempotency_finish(struct request *r);

#endif
