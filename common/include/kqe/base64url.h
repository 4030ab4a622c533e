/*
 * base64url — RFC 4648 §5 without padding, as used by cursors, API keys and
 * JWTs. Decoding is strict: only the URL-safe alphabet, no padding, no
 * impossible lengths.
 */
#ifndef KQE_BASE64URL_H
#define KQE_BASE64URL_H

#include <stddef.h>

#include "kqe/util.h"

/* Returns a new NUL-terminated string (caller frees). */
char *base64url_encode(const unsigned char *in, size_t len);

/*
 * Decodes len characters of in into a new buffer (caller frees) of *outlen
 * bytes, NUL-terminated for convenience. Returns NULL if in is not strict
 * base64url or decodes to more than max bytes.
 */
unsigned char *base64url_decode(const char *in, size_t len, size_t max, size_t *outlen);

#endif
