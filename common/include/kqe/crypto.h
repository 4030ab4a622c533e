/*
 * crypto — the two secrets-holding transformations applied to case data at
 * the edge of the API, so that neither an office's own file number nor free
 * text that may name people ever reaches PostgreSQL, Redis, logs or exports
 * in the clear (Sozialdatenschutz, SGB VIII §§ 61–65):
 *
 *  - pseudonymizer: turns an office's own case file number (Aktenzeichen)
 *    into HMAC-SHA256(KQE_PSEUDONYM_KEY, office id ‖ 0x1f ‖ file number),
 *    § 64 (2a) SGB VIII. The file number itself is never stored or logged.
 *  - keyring: AES-256-GCM encryption at rest of free text with the keys of
 *    KQE_DATA_KEYS; the key id travels with each envelope so keys can be
 *    rotated without re-encrypting everything at once.
 *
 *  - signer: Ed25519 signatures over the audit log's chain heads with the key
 *    of KQE_AUDIT_SIGNING_KEY, so a head that has left the system pins the
 *    chain up to it (docs/security.md, "Audit").
 *
 * This module owns copies of the key material (wiped with OPENSSL_cleanse on
 * free); it never logs, and no error message it writes contains key text.
 * Both objects are immutable after _new and may be shared by any number of
 * threads. Only OpenSSL 3 EVP primitives are used.
 */
#ifndef KQE_CRYPTO_H
#define KQE_CRYPTO_H

#include <stddef.h>

#include "kqe/util.h"

/* Length of a pseudonym: 64 lowercase hex digits (plus NUL in buffers). */
#define PSEUDONYM_LEN 64
#define PSEUDONYM_KEY_MIN 32 /* bytes, after base64 decoding */
#define PSEUDONYM_KEY_MAX 1024

struct pseudonymizer;

/*
 * key_b64 is standard base64 (RFC 4648 §4, '+' and '/', padding optional,
 * surrounding whitespace ignored) of PSEUDONYM_KEY_MIN..PSEUDONYM_KEY_MAX
 * bytes. Returns a new pseudonymizer (free with pseudonymizer_free), or NULL
 * with a message in err (never containing the key) if the key is missing,
 * not strict base64, or too short/long. The caller handles the config value
 * "-" (= no key) before calling.
 */
struct pseudonymizer *pseudonymizer_new(const char *key_b64, char *err, size_t errlen);

/* Wipes the key and frees p; NULL is a no-op. */
void pseudonymizer_free(struct pseudonymizer *p);

/*
 * Derives a 32-byte key for another purpose from the pseudonym key (HMAC-
 * SHA256 of "kqe-derive:" label), so a new secret needs no new setting and
 * is the same on every instance. Never the pseudonym key itself.
 */
void pseudonymizer_derive(const struct pseudonymizer *p, const char *label, unsigned char out[32]);

/*
 * Writes the pseudonym of (office_id, reference) into out: lowercase hex of
 * HMAC-SHA256(key, office_id ‖ 0x1f ‖ reference), always 64 digits + NUL.
 * The unit separator 0x1f keeps the pair unambiguous: ("ab", "c") and
 * ("a", "bc") get different pseudonyms. That holds because office ids never
 * contain 0x1f (validate: ^[a-z0-9][a-z0-9-]{0,63}$); the reference may hold
 * any bytes, including UTF-8. Deterministic: the same key and input always
 * give the same pseudonym, so it can be used to find a case again.
 * Aborts with a log line only if OpenSSL itself fails (as xmalloc does).
 */
void pseudonym(const struct pseudonymizer *p, const char *office_id, const char *reference,
    char out[PSEUDONYM_LEN + 1]);

/*
 * Key ring for free text. Envelope format (ASCII, no padding anywhere):
 *
 *     v1.<key id>.<nonce>.<ciphertext+tag>
 *
 *   key id          1..KEYRING_ID_MAX characters [A-Za-z0-9_-]
 *   nonce           base64url (RFC 4648 §5, no padding) of 12 random bytes,
 *                   always 16 characters
 *   ciphertext+tag  base64url (no padding) of the AES-256-GCM ciphertext
 *                   (as long as the plaintext) followed by the 16-byte tag
 *
 * The GCM additional authenticated data is the envelope prefix
 * "v1.<key id>." followed by the caller's aad bytes; so version, key id and
 * aad are all authenticated, while only the prefix is stored. Decoding is
 * canonical (unused trailing bits of the base64url must be zero), so every
 * single-character change to an envelope makes decryption fail.
 */
#define KEYRING_ID_MAX 16
#define KEYRING_KEY_LEN 32
#define KEYRING_NONCE_LEN 12
#define KEYRING_TAG_LEN 16
/* Largest plaintext keyring_encrypt accepts (KQE_MAX_BODY_BYTES is at most 64 MiB). */
#define KEYRING_MAX_PLAINTEXT ((size_t)256 << 20)

struct keyring;

/*
 * spec is KQE_DATA_KEYS: "id:base64key[,id:base64key...]", whitespace around
 * entries ignored. Each id is 1..KEYRING_ID_MAX characters [A-Za-z0-9_-] and
 * unique; each key is standard base64 (padding optional) of exactly
 * KEYRING_KEY_LEN bytes. The LAST entry is the current key, used to encrypt;
 * every listed key decrypts (rotation: append the new key, re-encrypt, then
 * drop the old one). Returns a new keyring (free with keyring_free), or NULL
 * with a message in err naming the entry by position, never quoting any part
 * of the spec (a mistyped entry may be key material).
 */
struct keyring *keyring_new(const char *spec, char *err, size_t errlen);

/* Wipes all keys and frees r; NULL is a no-op. */
void keyring_free(struct keyring *r);

/* Id of the key keyring_encrypt uses; borrowed until keyring_free. */
const char *keyring_current_id(const struct keyring *r);

/*
 * Encrypts len bytes of plaintext (may be NULL if len is 0) with the current
 * key and a fresh random nonce, binding aad (NULL = "", e.g. record id and
 * field name; not stored) to it. Returns a new NUL-terminated envelope
 * (caller frees), or NULL only if len > KEYRING_MAX_PLAINTEXT. Aborts with a
 * log line if OpenSSL itself fails.
 * Random nonces: keep well below 2^32 encryptions per key (rotate earlier).
 */
char *keyring_encrypt(
    const struct keyring *r, const char *plaintext, size_t len, const char *aad) KQE_MUSTCHECK;

/*
 * Decrypts an envelope made by keyring_encrypt with the same aad (NULL = "").
 * Returns a new buffer (caller frees) of the plaintext plus a NUL (the
 * plaintext itself may contain NULs) and sets *len (if len is not NULL) to
 * its length; or NULL if the envelope is malformed or not canonical, names a
 * key id not in the ring, or fails authentication (wrong key or aad, any
 * change to nonce, ciphertext or tag). Safe on arbitrary input.
 */
char *keyring_decrypt(
    const struct keyring *r, const char *envelope, const char *aad, size_t *len) KQE_MUSTCHECK;

/* Ed25519: a 32-byte seed (the private key), its 32-byte public key, 64-byte signatures. */
#define SIGNER_KEY_LEN 32
#define SIGNER_KEY_ID_LEN 16 /* hex digits of SHA-256 over the public key */

struct signer;

/*
 * seed_b64: strict standard base64 of SIGNER_KEY_LEN bytes (e.g. `openssl rand -base64 32`).
 * Returns a new signer, or NULL with a message in err (never containing the key).
 */
struct signer *signer_new(const char *seed_b64, char *err, size_t errlen);
void signer_free(struct signer *s);

/* The public key (standard base64) and its id; owned by s. */
const char *signer_public_key(const struct signer *s);
const char *signer_key_id(const struct signer *s);

/* The signature of msg as standard base64 (caller frees). */
char *signer_sign(const struct signer *s, const char *msg, size_t len);

/*
 * 1 if sig_b64 is public_b64's Ed25519 signature of msg, 0 if not, -1 if a key or the
 * signature is not base64 of the right length.
 */
int signature_verify(const char *public_b64, const char *msg, size_t len, const char *sig_b64);

/* The key id of a public key (base64), into id (SIGNER_KEY_ID_LEN + 1); -1 if malformed. */
int signer_public_key_id(const char *public_b64, char *id);

#endif
