/*
 * idempotency — Idempotency-Key for every POST (API.md), in the request path
 * rather than in each handler.
 *
 * Before the handler: the key is reserved for (caller, key) together with a
 * hash of the request (method, path, query, body). The same key again with
 * the same request replays the first outcome; with another request it is a
 * 422; while the first is still running, a 409. After the handler: a 2xx
 * answer with a Location is recorded (status and Location only — never a
 * body, which may hold decrypted free text); anything else releases the key
 * so the client may retry. A replay answers with the resource at Location as
 * it is now, under the original status, with "Idempotency-Replayed: true".
 * Keys expire after 24 hours; a reservation older than a minute whose
 * request never finished (process died) may be taken over.
 */
#ifndef KQE_API_IDEMPOTENCY_H
#define KQE_API_IDEMPOTENCY_H

#include "server.h"

/*
 * Returns 0 when the handler should run (r->idempotency_key set if a key was
 * reserved), 1 when the request was answered here (replay or problem).
 */
int idempotency_begin(struct request *r) KQE_MUSTCHECK;

/*
 * Called by the reply path just before the answer is sent (r->status set):
 * record the outcome (body: the answer to keep verbatim, or NULL) or release
 * the reservation. Frees r->idempotency_key.
 */
void idempotency_finish(struct request *r, const char *body, size_t len);

#endif
