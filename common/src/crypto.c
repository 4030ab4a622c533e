#include "kqe/crypto.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "kqe/base64url.h"

#define ENVELOPE_VERSION "v1."
#define NONCE_B64_LEN 16 /* base64url of KEYRING_NONCE_LEN bytes, no padding */
/* EVP_*Update take an int length; feed longer inputs in pieces. */
#define EVP_CHUNK ((size_t)1 << 30)

struct pseudonymizer {
	EVP_MAC *mac; /* fetched once; shared read-only by all threads */
	unsigned char *key;
	size_t keylen;
};

struct data_key {
	char id[KEYRING_ID_MAX + 1];
	unsigned char key[KEYRING_KEY_LEN];
};

struct keyring {
	struct data_key *keys; /* in spec order; the last one is current */
	size_t n;
};

static _Noreturn void
fail_fatal(const char *what)
{
	fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"%s failed\"}\n", what);
	abort();
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) KQE_PRINTF(3, 4);

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Narrows [*s, *s + *len) to exclude surrounding whitespace. */
static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

/* Value of a standard base64 character, or -1. */
static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict standard base64 (RFC 4648 §4): only the standard alphabet, '='
 * padding optional but, if present, complete; unused trailing bits zero, so
 * every key has exactly one accepted spelling. Decodes into out (room for
 * max bytes) and returns the length, or -1. Temporaries are wiped: the input
 * is key material.
 */
static long
b64_decode_strict(const char *in, size_t len, unsigned char *out, size_t max)
{
	size_t pad = 0;
	while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
		pad++;
	size_t data = len - pad;
	if (data == 0 || data % 4 == 1 || (pad > 0 && len % 4 != 0))
		return -1;
	if (data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0) > max)
		return -1;
	for (size_t i = 0; i < data; i++)
		if (b64_value(in[i]) < 0)
			return -1;
	int last = b64_value(in[data - 1]);
	if ((data % 4 == 2 && (last & 0x0f) != 0) || (data % 4 == 3 && (last & 0x03) != 0))
		return -1;

	size_t full = (data + 3) / 4 * 4;
	if (full > INT_MAX)
		return -1;
	char *buf = xmalloc(full);
	unsigned char *tmp = xmalloc(full / 4 * 3);
	memcpy(buf, in, data);
	memset(buf + data, '=', full - data);
	int n = EVP_DecodeBlock(tmp, (const unsigned char *)buf, (int)full);
	long result = -1;
	/* EVP_DecodeBlock counts each '=' as a zero byte. */
	if (n >= 0 && (size_t)n >= full - data && (size_t)n - (full - data) <= max) {
		result = (long)((size_t)n - (full - data));
		memcpy(out, tmp, (size_t)result);
	}
	OPENSSL_cleanse(buf, full);
	OPENSSL_cleanse(tmp, full / 4 * 3);
	free(buf);
	free(tmp);
	return result;
}

/* ---- pseudonyms ---- */

static int
mac_init(const struct pseudonymizer *p, EVP_MAC_CTX *ctx)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_init(ctx, p->key, p->keylen, params) == 1 ? 0 : -1;
}

struct pseudonymizer *
pseudonymizer_new(const char *key_b64, char *err, size_t errlen)
{
	if (key_b64 == NULL) {
		set_err(err, errlen, "pseudonym key missing");
		return NULL;
	}
	const char *s = key_b64;
	size_t len = strlen(s);
	trim(&s, &len);
	if (len == 0) {
		set_err(err, errlen, "pseudonym key is empty");
		return NULL;
	}

	struct pseudonymizer *p = xcalloc(1, sizeof(*p));
	p->key = xmalloc(PSEUDONYM_KEY_MAX);
	long n = b64_decode_strict(s, len, p->key, PSEUDONYM_KEY_MAX);
	if (n < 0) {
		set_err(err, errlen,
		    "pseudonym key is not strict standard base64 of at most %d bytes",
		    PSEUDONYM_KEY_MAX);
		goto fail;
	}
	p->keylen = (size_t)n;
	if (p->keylen < PSEUDONYM_KEY_MIN) {
		set_err(err, errlen, "pseudonym key has %zu bytes, needs at least %d", p->keylen,
		    PSEUDONYM_KEY_MIN);
		goto fail;
	}
	p->mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	/* Prove once that HMAC-SHA256 works here, so pseudonym() cannot fail later. */
	EVP_MAC_CTX *ctx = p->mac ? EVP_MAC_CTX_new(p->mac) : NULL;
	int ok = ctx != NULL && mac_init(p, ctx) == 0;
	EVP_MAC_CTX_free(ctx);
	if (!ok) {
		set_err(err, errlen, "HMAC-SHA256 is not available from OpenSSL");
		goto fail;
	}
	return p;
fail:
	pseudonymizer_free(p);
	return NULL;
}

void
pseudonymizer_free(struct pseudonymizer *p)
{
	if (p == NULL)
		return;
	if (p->key != NULL) {
		OPENSSL_cleanse(p->key, PSEUDONYM_KEY_MAX);
		free(p->key);
	}
	EVP_MAC_free(p->mac);
	free(p);
}

void
pseudonymizer_derive(const struct pseudonymizer *p, const char *label, unsigned char out[32])
{
	static const char prefix[] = "kqe-derive:";
	size_t mdlen = 0;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(p->mac);
	if (ctx == NULL || mac_init(p, ctx) != 0 ||
	    EVP_MAC_update(ctx, (const unsigned char *)prefix, strlen(prefix)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)label, strlen(label)) != 1 ||
	    EVP_MAC_final(ctx, out, &mdlen, 32) != 1 || mdlen != 32)
		fail_fatal("HMAC-SHA256");
	EVP_MAC_CTX_free(ctx);
}

void
pseudonym(const struct pseudonymizer *p, const char *office_id, const char *reference,
    char out[PSEUDONYM_LEN + 1])
{
	static const unsigned char sep = 0x1f;
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;

	assert(p != NULL && office_id != NULL && reference != NULL);
	assert(strchr(office_id, sep) == NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(p->mac);
	if (ctx == NULL || mac_init(p, ctx) != 0 ||
	    EVP_MAC_update(ctx, (const unsigned char *)office_id, strlen(office_id)) != 1 ||
	    EVP_MAC_update(ctx, &sep, 1) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)reference, strlen(reference)) != 1 ||
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) != 1 || mdlen != PSEUDONYM_LEN / 2)
		fail_fatal("HMAC-SHA256");
	EVP_MAC_CTX_free(ctx);
	hex_encode(md, mdlen, out);
	OPENSSL_cleanse(md, sizeof(md));
}

/* ---- key ring ---- */

static bool
is_id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* Length of the key id at the start of s (stops at the first non-id character). */
static size_t
id_span(const char *s, size_t len)
{
	size_t n = 0;
	while (n < len && is_id_char(s[n]))
		n++;
	return n;
}

static const struct data_key *
keyring_find(const struct keyring *r, const char *id, size_t idlen)
{
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->keys[i].id) == idlen && memcmp(r->keys[i].id, id, idlen) == 0)
			return &r->keys[i];
	return NULL;
}

/* Parses one trimmed "id:base64key" entry (number k, 1-based) into dk. */
static int
parse_entry(const char *s, size_t len, size_t k, struct data_key *dk, char *err, size_t errlen)
{
	if (len == 0) {
		set_err(err, errlen, "data keys: entry %zu is empty", k);
		return -1;
	}
	const char *colon = memchr(s, ':', len);
	if (colon == NULL) {
		set_err(err, errlen, "data keys: entry %zu has no ':' between id and key", k);
		return -1;
	}
	size_t idlen = (size_t)(colon - s);
	if (idlen == 0 || idlen > KEYRING_ID_MAX || id_span(s, idlen) != idlen) {
		set_err(err, errlen,
		    "data keys: entry %zu: id must be 1-%d characters of A-Z a-z 0-9 _ -", k,
		    KEYRING_ID_MAX);
		return -1;
	}
	unsigned char key[KEYRING_KEY_LEN + 1];
	long n = b64_decode_strict(colon + 1, len - idlen - 1, key, sizeof(key));
	if (n != KEYRING_KEY_LEN) {
		OPENSSL_cleanse(key, sizeof(key));
		set_err(err, errlen,
		    "data keys: entry %zu: key must be strict standard base64 of exactly %d bytes",
		    k, KEYRING_KEY_LEN);
		return -1;
	}
	memcpy(dk->id, s, idlen);
	dk->id[idlen] = '\0';
	memcpy(dk->key, key, KEYRING_KEY_LEN);
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

struct keyring *
keyring_new(const char *spec, char *err, size_t errlen)
{
	if (spec == NULL) {
		set_err(err, errlen, "data keys missing");
		return NULL;
	}
	const char *s = spec;
	size_t len = strlen(s);
	trim(&s, &len);
	if (len == 0) {
		set_err(err, errlen, "data keys: no key given");
		return NULL;
	}

	size_t entries = 1;
	for (size_t i = 0; i < len; i++)
		entries += s[i] == ',';
	struct keyring *r = xcalloc(1, sizeof(*r));
	r->keys = xcalloc(entries, sizeof(*r->keys));

	const char *end = s + len;
	while (r->n < entries) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *stop = comma ? comma : end;
		const char *e = s;
		size_t elen = (size_t)(stop - s);
		trim(&e, &elen);
		struct data_key *dk = &r->keys[r->n];
		if (parse_entry(e, elen, r->n + 1, dk, err, errlen) != 0)
			goto fail;
		for (size_t i = 0; i < r->n; i++) {
			if (strcmp(r->keys[i].id, dk->id) == 0) {
				set_err(err, errlen,
				    "data keys: entry %zu repeats the id of entry %zu", r->n + 1,
				    i + 1);
				goto fail;
			}
		}
		r->n++;
		s = stop + (comma != NULL);
	}
	return r;
fail:
	/* keys beyond r->n may hold a half-parsed entry: wipe them all */
	r->n = entries;
	keyring_free(r);
	return NULL;
}

void
keyring_free(struct keyring *r)
{
	if (r == NULL)
		return;
	OPENSSL_cleanse(r->keys, r->n * sizeof(*r->keys));
	free(r->keys);
	free(r);
}

const char *
keyring_current_id(const struct keyring *r)
{
	return r->keys[r->n - 1].id;
}

/* Feeds in (to out, or as AAD if out is NULL) in int-sized pieces. */
static int
gcm_update(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in, size_t len)
{
	while (len > 0) {
		size_t chunk = len < EVP_CHUNK ? len : EVP_CHUNK;
		int outl = 0;
		if (EVP_CipherUpdate(ctx, out, &outl, in, (int)chunk) != 1)
			return -1;
		if (out != NULL) {
			if ((size_t)outl != chunk)
				return -1; /* GCM is a stream mode: never buffers */
			out += chunk;
		}
		in += chunk;
		len -= chunk;
	}
	return 0;
}

/*
 * Sets up ctx for AES-256-GCM with key and nonce (enc 1 = encrypt, 0 =
 * decrypt) and feeds the AAD: prefix "v1.<id>." then the caller's aad.
 */
static int
gcm_begin(EVP_CIPHER_CTX *ctx, int enc, const struct data_key *dk, const unsigned char *nonce,
    const char *prefix, const char *aad)
{
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KEYRING_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, dk->key, nonce, enc) != 1)
		return -1;
	if (gcm_update(ctx, NULL, (const unsigned char *)prefix, strlen(prefix)) != 0)
		return -1;
	if (aad != NULL && gcm_update(ctx, NULL, (const unsigned char *)aad, strlen(aad)) != 0)
		return -1;
	return 0;
}

char *
keyring_encrypt(const struct keyring *r, const char *plaintext, size_t len, const char *aad)
{
	if (len > KEYRING_MAX_PLAINTEXT)
		return NULL;
	const struct data_key *dk = &r->keys[r->n - 1];
	unsigned char nonce[KEYRING_NONCE_LEN];
	random_bytes(nonce, sizeof(nonce));
	char *prefix = xasprintf(ENVELOPE_VERSION "%s.", dk->id);
	unsigned char *ct = xmalloc(len + KEYRING_TAG_LEN);
	int outl = 0;

	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL || gcm_begin(ctx, 1, dk, nonce, prefix, aad) != 0 ||
	    gcm_update(ctx, ct, (const unsigned char *)plaintext, len) != 0 ||
	    EVP_EncryptFinal_ex(ctx, ct + len, &outl) != 1 || outl != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KEYRING_TAG_LEN, ct + len) != 1)
		fail_fatal("AES-256-GCM encryption");
	EVP_CIPHER_CTX_free(ctx);

	char *nonce_b64 = base64url_encode(nonce, sizeof(nonce));
	char *ct_b64 = base64url_encode(ct, len + KEYRING_TAG_LEN);
	char *env = xasprintf("%s%s.%s", prefix, nonce_b64, ct_b64);
	free(nonce_b64);
	free(ct_b64);
	free(ct);
	free(prefix);
	return env;
}

/*
 * base64url_decode plus the canonical-form check it leaves out: the unused
 * low bits of the last character must be zero, or two spellings would decode
 * to the same bytes and an envelope could be changed without detection.
 */
static unsigned char *
b64url_decode_canonical(const char *in, size_t len, size_t max, size_t *outlen)
{
	if (len % 4 == 2 || len % 4 == 3) {
		char c = in[len - 1];
		int v = c == '-' ? 62 : c == '_' ? 63 : b64_value(c);
		if (v < 0 || (v & (len % 4 == 2 ? 0x0f : 0x03)) != 0)
			return NULL;
	}
	return base64url_decode(in, len, max, outlen);
}

char *
keyring_decrypt(const struct keyring *r, const char *envelope, const char *aad, size_t *len)
{
	const size_t vlen = strlen(ENVELOPE_VERSION);
	if (envelope == NULL || strncmp(envelope, ENVELOPE_VERSION, vlen) != 0)
		return NULL;

	const char *id = envelope + vlen;
	size_t idlen = id_span(id, strnlen(id, KEYRING_ID_MAX + 1));
	if (idlen == 0 || idlen > KEYRING_ID_MAX || id[idlen] != '.')
		return NULL;
	const struct data_key *dk = keyring_find(r, id, idlen);
	if (dk == NULL)
		return NULL;

	const char *nonce_b64 = id + idlen + 1;
	if (strnlen(nonce_b64, NONCE_B64_LEN + 1) != NONCE_B64_LEN + 1 ||
	    nonce_b64[NONCE_B64_LEN] != '.')
		return NULL;
	const char *ct_b64 = nonce_b64 + NONCE_B64_LEN + 1;

	char *plain = NULL;
	char *prefix = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	size_t nlen = 0, ctlen = 0;
	unsigned char *nonce =
	    b64url_decode_canonical(nonce_b64, NONCE_B64_LEN, KEYRING_NONCE_LEN, &nlen);
	unsigned char *ct = b64url_decode_canonical(
	    ct_b64, strlen(ct_b64), KEYRING_MAX_PLAINTEXT + KEYRING_TAG_LEN, &ctlen);
	if (nonce == NULL || nlen != KEYRING_NONCE_LEN || ct == NULL || ctlen < KEYRING_TAG_LEN)
		goto fail;

	size_t plen = ctlen - KEYRING_TAG_LEN;
	prefix = xstrndup(envelope, vlen + idlen + 1); /* "v1.<id>." */
	plain = xmalloc(plen + 1);
	int outl = 0;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		fail_fatal("EVP_CIPHER_CTX_new");
	if (gcm_begin(ctx, 0, dk, nonce, prefix, aad) != 0 ||
	    gcm_update(ctx, (unsigned char *)plain, ct, plen) != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KEYRING_TAG_LEN, ct + plen) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + plen, &outl) != 1 || outl != 0)
		goto fail;
	EVP_CIPHER_CTX_free(ctx);
	free(prefix);
	free(nonce);
	free(ct);
	plain[plen] = '\0';
	if (len != NULL)
		*len = plen;
	return plain;
fail:
	/* plain may hold unauthenticated plaintext: never let it linger */
	if (plain != NULL) {
		OPENSSL_cleanse(plain, ctlen - KEYRING_TAG_LEN + 1);
		free(plain);
	}
	EVP_CIPHER_CTX_free(ctx);
	free(prefix);
	free(nonce);
	free(ct);
	return NULL;
}

/* --- Ed25519 signer ---------------------------------------------------------------------- */

struct signer {
	EVP_PKEY *key;
	char public_b64[45]; /* base64 of 32 bytes: 44 characters */
	char key_id[SIGNER_KEY_ID_LEN + 1];
};

static void
b64_encode(const unsigned char *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void
key_id_of(const unsigned char pub[SIGNER_KEY_LEN], char id[SIGNER_KEY_ID_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65];
	if (EVP_Digest(pub, SIGNER_KEY_LEN, md, &mdlen, EVP_sha256(), NULL) != 1)
		abort();
	hex_encode(md, sizeof(md), hex);
	memcpy(id, hex, SIGNER_KEY_ID_LEN);
	id[SIGNER_KEY_ID_LEN] = '\0';
}

struct signer *
signer_new(const char *seed_b64, char *err, size_t errlen)
{
	unsigned char seed[SIGNER_KEY_LEN + 1], pub[SIGNER_KEY_LEN];
	size_t publen = sizeof(pub);
	long n = seed_b64 != NULL
	             ? b64_decode_strict(seed_b64, strlen(seed_b64), seed, sizeof(seed))
	             : -1;
	if (n != SIGNER_KEY_LEN) {
		OPENSSL_cleanse(seed, sizeof(seed));
		snprintf(err, errlen,
		    "signing key must be strict standard base64 of exactly %d bytes",
		    SIGNER_KEY_LEN);
		return NULL;
	}
	struct signer *s = xcalloc(1, sizeof(*s));
	s->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SIGNER_KEY_LEN);
	OPENSSL_cleanse(seed, sizeof(seed));
	if (s->key == NULL || EVP_PKEY_get_raw_public_key(s->key, pub, &publen) != 1 ||
	    publen != SIGNER_KEY_LEN) {
		signer_free(s);
		snprintf(err, errlen, "signing key: OpenSSL has no Ed25519");
		return NULL;
	}
	b64_encode(pub, sizeof(pub), s->public_b64);
	key_id_of(pub, s->key_id);
	return s;
}

void
signer_free(struct signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s);
}

const char *
signer_public_key(const struct signer *s)
{
	return s->public_b64;
}

const char *
signer_key_id(const struct signer *s)
{
	return s->key_id;
}

char *
signer_sign(const struct signer *s, const char *msg, size_t len)
{
	unsigned char sig[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg, len) != 1 ||
	    siglen != sizeof(sig)) {
		fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"Ed25519 signing failed\"}\n");
		abort();
	}
	EVP_MD_CTX_free(ctx);
	char *out = xmalloc(89); /* base64 of 64 bytes: 88 characters */
	b64_encode(sig, siglen, out);
	return out;
}

int
signer_public_key_id(const char *public_b64, char *id)
{
	unsigned char pub[SIGNER_KEY_LEN + 1];
	if (b64_decode_strict(public_b64, strlen(public_b64), pub, sizeof(pub)) != SIGNER_KEY_LEN)
		return -1;
	key_id_of(pub, id);
	return 0;
}

int
signature_verify(const char *public_b64, const char *msg, size_t len, const char *sig_b64)
{
	unsigned char pub[SIGNER_KEY_LEN + 1], sig[65];
	if (b64_decode_strict(public_b64, strlen(public_b64), pub, sizeof(pub)) != SIGNER_KEY_LEN ||
	    b64_decode_strict(sig_b64, strlen(sig_b64), sig, sizeof(sig)) != 64)
		return -1;
	EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, SIGNER_KEY_LEN);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = key != NULL && ctx != NULL &&
	         EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
	         EVP_DigestVerify(ctx, sig, 64, (const unsigned char *)msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return ok ? 1 : 0;
}
