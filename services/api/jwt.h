/*
 * jwt — verification of JSON Web Tokens from the state's identity provider.
 *
 * Only RS256 and ES256 are accepted, and only with a key of the matching type
 * from the configured JWKS file, chosen by the token's kid: "none", HMAC
 * (including HMAC keyed with a public key) and every other algorithm are
 * refused before any key is touched. The signature is checked with OpenSSL's
 * EVP_DigestVerify; then iss, aud, exp and nbf (with leeway) and the role
 * claims. The keys are loaded once at start and shared read-only by workers.
 */
#ifndef KQE_API_JWT_H
#define KQE_API_JWT_H

#include <time.h>

#include "kqe/config.h"
#include "kqe/principal.h"

struct jwks;

/* Loads the JWKS file. NULL with a message in err if it cannot be used. */
struct jwks *jwks_load(const char *path, char *err, size_t errlen);
void jwks_free(struct jwks *keys);

/*
 * Verifies token and fills p. Returns 0, or -1 with *why set to a short
 * static reason (for logs; never includes the token).
 */
int jwt_verify(const struct jwks *keys, const struct config *cfg, const char *token, time_t now,
    struct principal *p, const char **why) KQE_MUSTCHECK;

/* True if the token has the shape header.payload.signature. */
int jwt_shaped(const char *token);

#endif
