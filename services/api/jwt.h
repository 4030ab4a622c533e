/*
 * jwt — verification of JSON Web Tokens from the state's identity provider.
 *
 * Only RS256 and ES256 are accepted, and only with a key of the matching type
 * from the configured JWKS (file or URL), chosen by the token's kid: "none", HMAC
 * (including HMAC keyed with a public key) and every other algorithm are
 * refused before any key is touched. The signature is checked with OpenSSL's
 * EVP_DigestVerify; then iss, aud, exp and nbf (with leeway) and the role
 * claims. A key set is immutable once parsed and shared read-only by workers;
 * a refresh from the identity provider swaps in a new set (jwks_source).
 */
#ifndef KQE_API_JWT_H
#define KQE_API_JWT_H

#include <stddef.h>
#include <time.h>

#include "kqe/config.h"
#include "kqe/principal.h"

struct jwks;

/*
 * Parses a JWKS document (RFC 7517) from buf: its RSA (>= 2048 bit) and P-256
 * signing keys. NULL with a message in err if it cannot be used. The file and
 * the URL share this parser.
 */
struct jwks *jwks_parse(const char *buf, size_t len, char *err, size_t errlen);
/* Reads the JWKS file and parses it (jwks_parse); err names the path. */
struct jwks *jwks_load(const char *path, char *err, size_t errlen);
/* Number of usable signing keys in the set. */
int jwks_count(const struct jwks *keys);
/*
 * A key set is reference-counted so that a refreshed set can replace it while
 * workers still verify with it: jwks_parse/jwks_load return one reference,
 * jwks_ref adds one, jwks_free drops one and frees the set with the last.
 */
struct jwks *jwks_ref(struct jwks *keys);
void jwks_free(struct jwks *keys);

/* jwt_verify's result when the token names a kid that keys does not hold. */
#define JWT_UNKNOWN_KID (-2)

/*
 * Verifies token and fills p. Returns 0, or -1 with *why set to a short
 * static reason (for logs; never includes the token), or JWT_UNKNOWN_KID
 * (also with *why) when the token's kid is in no key of the set: a newer set
 * from the identity provider may hold it. keys may be NULL (no keys yet).
 */
int jwt_verify(const struct jwks *keys, const struct config *cfg, const char *token, time_t now,
    struct principal *p, const char **why) KQE_MUSTCHECK;

/*
 * Where the keys come from: a JWKS file (KQE_JWKS_FILE, read once at start) or
 * the identity provider's JWKS endpoint (KQE_JWKS_URL, fetched over HTTPS with
 * libcurl by a background thread, refreshed per Cache-Control max-age and on an
 * unknown kid; see jwks_source.c). Shared by all workers; thread-safe.
 */
struct jwks_source;

/* An unknown kid: how long a request waits for the refresh, how often one may be asked for. */
#define JWKS_KID_WAIT_MS 2000
#define JWKS_KID_COOLDOWN_S 30

/*
 * Creates the source cfg describes. NULL with err[0] == '\0' when neither
 * KQE_JWKS_FILE nor KQE_JWKS_URL is set (no JWTs); NULL with a message naming
 * the variable in err when the settings cannot be used. With a URL the first
 * fetch runs in the background: the source is returned even if it fails.
 * curl_global_init must have been called.
 */
struct jwks_source *jwks_source_new(const struct config *cfg, char *err, size_t errlen);

/*
 * jwt_verify with the source's current keys (held by reference while in
 * use). For a token whose kid the keys lack, a URL source asks for a refresh
 * and waits for it (at most JWKS_KID_WAIT_MS), once per JWKS_KID_COOLDOWN_S
 * process-wide; during the cool-down such tokens fail at once. Returns 0 or -1
 * with *why set as jwt_verify does.
 */
int jwks_source_verify(struct jwks_source *src, const struct config *cfg, const char *token,
    time_t now, struct principal *p, const char **why) KQE_MUSTCHECK;

/* Stops the refresh thread (aborting a fetch under way) and frees everything. */
void jwks_source_free(struct jwks_source *src);

/* True if the token has the shape header.payload.signature. */
int jwt_shaped(const char *token);

#endif
