/*
 * cursor — opaque keyset-pagination cursors. A cursor is base64url (no
 * padding) of a compact JSON array holding the sort key of the last row
 * served. Clients must treat it as opaque; the server validates its shape.
 */
#ifndef KQE_CURSOR_H
#define KQE_CURSOR_H

#include <jansson.h>

/* Returns a new string (caller frees) encoding keys (borrowed, a JSON array). */
char *cursor_encode(const json_t *keys);

/*
 * Decodes a cursor into a new JSON array of exactly nkeys strings, or NULL if
 * it is malformed in any way (bad alphabet, bad JSON, wrong shape, too long).
 */
json_t *cursor_decode(const char *cursor, size_t nkeys);

#endif
