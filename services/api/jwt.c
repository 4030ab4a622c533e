#include "jwt.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "kqe/base64url.h"
#include "kqe/validate.h"

#define JWT_MAX_PART 8192
#define JWKS_MAX_KEYS 32
#define JWKS_MAX_BYTES (1024 * 1024)

enum key_type { KEY_RSA, KEY_EC_P256 };

struct jwk {
	char kid[128]; /* "" if the JWK has none */
	enum key_type type;
	EVP_PKEY *pkey;
};

struct jwks {
	struct jwk keys[JWKS_MAX_KEYS];
	int count;
	atomic_uint refs; /* jwks_ref / jwks_free */
};

static BIGNUM *
b64_bignum(const char *s)
{
	size_t len;
	unsigned char *raw = s ? base64url_decode(s, strlen(s), 1024, &len) : NULL;
	if (raw == NULL || len == 0) {
		free(raw);
		return NULL;
	}
	BIGNUM *bn = BN_bin2bn(raw, (int)len, NULL);
	free(raw);
	return bn;
}

static EVP_PKEY *
pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *
rsa_key(const json_t *jwk)
{
	BIGNUM *n = b64_bignum(json_string_value(json_object_get(jwk, "n")));
	BIGNUM *e = b64_bignum(json_string_value(json_object_get(jwk, "e")));
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (n != NULL && e != NULL && BN_num_bits(n) >= 2048 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
		pkey = pkey_from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *
ec_key(const json_t *jwk)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *x = json_string_value(json_object_get(jwk, "x"));
	const char *y = json_string_value(json_object_get(jwk, "y"));
	if (crv == NULL || strcmp(crv, "P-256") != 0 || x == NULL || y == NULL)
		return NULL;
	size_t xl, yl;
	unsigned char *xb = base64url_decode(x, strlen(x), 32, &xl);
	unsigned char *yb = base64url_decode(y, strlen(y), 32, &yl);
	EVP_PKEY *pkey = NULL;
	if (xb != NULL && yb != NULL && xl == 32 && yl == 32) {
		unsigned char point[65] = { 0x04 }; /* uncompressed: 04 || x || y */
		memcpy(point + 1, xb, 32);
		memcpy(point + 33, yb, 32);
		OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
		if (OSSL_PARAM_BLD_push_utf8_string(
		        bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
		    OSSL_PARAM_BLD_push_octet_string(
		        bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) == 1)
			pkey = pkey_from_params("EC", bld);
		OSSL_PARAM_BLD_free(bld);
	}
	free(xb);
	free(yb);
	return pkey;
}

struct jwks *
jwks_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	struct jwks *ks = xcalloc(1, sizeof(*ks));
	const json_t *keys = json_object_get(doc, "keys");
	size_t i;
	const json_t *jwk;

	atomic_init(&ks->refs, 1);
	if (doc == NULL) {
		snprintf(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
		goto fail;
	}
	if (!json_is_array(keys)) {
		snprintf(err, errlen, "no \"keys\" array");
		goto fail;
	}
	json_array_foreach(keys, i, jwk)
	{
		const char *kty = json_string_value(json_object_get(jwk, "kty"));
		const char *use = json_string_value(json_object_get(jwk, "use"));
		const char *kid = json_string_value(json_object_get(jwk, "kid"));
		if (use != NULL && strcmp(use, "sig") != 0)
			continue; /* encryption keys are not ours */
		if (ks->count == JWKS_MAX_KEYS) {
			snprintf(err, errlen, "more than %d signing keys", JWKS_MAX_KEYS);
			goto fail;
		}
		struct jwk *k = &ks->keys[ks->count];
		if (kty != NULL && strcmp(kty, "RSA") == 0) {
			k->type = KEY_RSA;
			k->pkey = rsa_key(jwk);
		} else if (kty != NULL && strcmp(kty, "EC") == 0) {
			k->type = KEY_EC_P256;
			k->pkey = ec_key(jwk);
		} else {
			continue; /* "oct" and unknown types are never accepted */
		}
		if (k->pkey == NULL) {
			snprintf(err, errlen,
			    "key %zu is not a usable RSA (>= 2048 bit) or P-256 key", i);
			goto fail;
		}
		snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
		ks->count++;
	}
	if (ks->count == 0) {
		snprintf(err, errlen, "holds no RSA or P-256 signing key");
		goto fail;
	}
	json_decref(doc);
	return ks;
fail:
	json_decref(doc);
	jwks_free(ks);
	return NULL;
}

struct jwks *
jwks_load(const char *path, char *err, size_t errlen)
{
	char why[200];
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0 && len <= JWKS_MAX_BYTES);
	int failed = ferror(f);
	fclose(f);
	struct jwks *ks = NULL;
	if (failed)
		snprintf(err, errlen, "cannot read \"%s\"", path);
	else if (len > JWKS_MAX_BYTES)
		snprintf(err, errlen, "\"%s\" is larger than %d bytes", path, JWKS_MAX_BYTES);
	else if ((ks = jwks_parse(buf, len, why, sizeof(why))) == NULL)
		snprintf(err, errlen, "\"%s\": %s", path, why);
	free(buf);
	return ks;
}

int
jwks_count(const struct jwks *ks)
{
	return ks->count;
}

struct jwks *
jwks_ref(struct jwks *ks)
{
	atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
	return ks;
}

void
jwks_free(struct jwks *ks)
{
	if (ks == NULL || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (int i = 0; i < ks->count; i++)
		EVP_PKEY_free(ks->keys[i].pkey);
	free(ks);
}

int
jwt_shaped(const char *token)
{
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	return d2 != NULL && strchr(d2 + 1, '.') == NULL;
}

static json_t *
decode_json(const char *part, size_t len)
{
	size_t n;
	unsigned char *raw = base64url_decode(part, len, JWT_MAX_PART, &n);
	if (raw == NULL)
		return NULL;
	json_t *v = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (!json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static const struct jwk *
select_key(const struct jwks *ks, enum key_type type, const char *kid)
{
	const struct jwk *found = NULL;
	int candidates = 0;
	for (int i = 0; ks != NULL && i < ks->count; i++) {
		if (ks->keys[i].type != type)
			continue;
		if (kid != NULL && strcmp(ks->keys[i].kid, kid) == 0)
			return &ks->keys[i];
		candidates++;
		found = &ks->keys[i];
	}
	/* Without a kid only an unambiguous key may be used. */
	return kid == NULL && candidates == 1 ? found : NULL;
}

static int
has_kid(const struct jwks *ks, const char *kid)
{
	for (int i = 0; ks != NULL && i < ks->count; i++)
		if (strcmp(ks->keys[i].kid, kid) == 0)
			return 1;
	return 0;
}

/* ES256 signatures are r || s (32 bytes each); OpenSSL wants DER. */
static unsigned char *
es256_der(const unsigned char *sig, size_t len, size_t *derlen)
{
	if (len != 64)
		return NULL;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL; /* owned by es now */
		int n = i2d_ECDSA_SIG(es, &der);
		*derlen = n > 0 ? (size_t)n : 0;
		if (n <= 0)
			der = NULL;
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return der;
}

static int
signature_ok(const struct jwk *key, const char *signed_part, size_t signed_len,
    const unsigned char *sig, size_t siglen)
{
	unsigned char *der = NULL;
	size_t derlen = 0;
	if (key->type == KEY_EC_P256) {
		der = es256_der(sig, siglen, &derlen);
		if (der == NULL)
			return 0;
		sig = der;
		siglen = derlen;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok =
	    ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)signed_part, signed_len) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

static int
audience_ok(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	size_t i;
	const json_t *a;
	json_array_foreach(
	    aud, i, a) if (json_is_string(a) && strcmp(json_string_value(a), want) == 0) return 1;
	return 0;
}

/* Copies a string claim that must look like an id into out; 0 or -1. */
static int
claim_id(const json_t *claims, const char *name, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(claims, name));
	if (v == NULL || !slug_id_valid(v) || strlen(v) >= size)
		return -1;
	snprintf(out, size, "%s", v);
	return 0;
}

static int
bind_role(const json_t *claims, const struct config *cfg, struct principal *p, const char **why)
{
	const char *role = json_string_value(json_object_get(claims, cfg->jwt_role_claim));
	if (role == NULL || role_parse(role, &p->role) != 0) {
		*why = "no known role claim";
		return -1;
	}
	if (role_is_office(p->role) &&
	    claim_id(claims, cfg->jwt_office_claim, p->office_id, sizeof(p->office_id)) != 0) {
		*why = "office role without office claim";
		return -1;
	}
	if (p->role == ROLE_INSTITUTE && claim_id(claims, cfg->jwt_institute_claim, p->institute_id,
	                                     sizeof(p->institute_id)) != 0) {
		*why = "institute role without institute claim";
		return -1;
	}
	if (p->role == ROLE_PROVIDER_STAFF && claim_id(claims, cfg->jwt_provider_claim,
	                                          p->provider_id, sizeof(p->provider_id)) != 0) {
		*why = "provider role without provider claim";
		return -1;
	}
	if (p->role == ROLE_PROFESSIONAL) {
		*why = "professional keys are issued by kqe, not by the identity provider";
		return -1;
	}
	if (p->role == ROLE_PROGRAMME_TEAM && (claim_id(claims, cfg->jwt_programme_claim,
	                                           p->programme_id, sizeof(p->programme_id)) != 0 ||
	                                          !uuid_valid(p->programme_id))) {
		*why = "programme role without programme claim";
		return -1;
	}
	if (p->role == ROLE_ADVISOR) {
		const char *region =
		    json_string_value(json_object_get(claims, cfg->jwt_region_claim));
		if (region == NULL || (strcmp(region, "LVR") != 0 && strcmp(region, "LWL") != 0)) {
			*why = "advisor role without region claim";
			return -1;
		}
		snprintf(p->region, sizeof(p->region), "%s", region);
	}
	return 0;
}

/* True if s holds no control character (C0, DEL, or C1 in UTF-8). */
static bool
printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return false;
	return true;
}

/*
 * The key the token's header asks for: the algorithm is decided here, never
 * by which key happens to match. 0 with *key, else -1 or JWT_UNKNOWN_KID
 * with *why; *why is left alone on success.
 */
static int
header_key(
    const struct jwks *ks, const char *part, size_t len, const struct jwk **key, const char **why)
{
	json_t *header = decode_json(part, len);
	if (header == NULL)
		return -1;
	int rc = -1;
	const char *alg = json_string_value(json_object_get(header, "alg"));
	enum key_type type = KEY_RSA;
	if (alg != NULL && strcmp(alg, "ES256") == 0) {
		type = KEY_EC_P256;
	} else if (alg == NULL || strcmp(alg, "RS256") != 0) {
		*why = "algorithm not allowed";
		goto out;
	}
	if (json_object_get(header, "crit") != NULL) {
		*why = "unsupported critical header";
		goto out;
	}
	const char *kid = json_string_value(json_object_get(header, "kid"));
	*key = select_key(ks, type, kid);
	if (*key != NULL) {
		rc = 0;
	} else if (kid != NULL && !has_kid(ks, kid)) {
		*why = "unknown kid";
		rc = JWT_UNKNOWN_KID;
	} else {
		*why = "no matching key";
	}
out:
	json_decref(header);
	return rc;
}

/* The claims of a token whose signature holds: issuer, audience, time, subject, role. */
static int
claims_accept(const json_t *claims, const struct config *cfg, time_t now, struct principal *p,
    const char **why)
{
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	if (iss == NULL || strcmp(iss, cfg->jwt_issuer) != 0) {
		*why = "wrong issuer";
	} else if (!audience_ok(json_object_get(claims, "aud"), cfg->jwt_audience)) {
		*why = "wrong audience";
	} else if (!json_is_integer(exp) && !json_is_real(exp)) {
		*why = "no expiry";
	} else if ((double)now > json_number_value(exp) + (double)cfg->jwt_leeway_s) {
		*why = "expired";
	} else if (nbf != NULL && (!json_is_number(nbf) || (double)now + (double)cfg->jwt_leeway_s <
	                                                       json_number_value(nbf))) {
		*why = "not yet valid";
	} else if (sub == NULL || *sub == '\0' || strlen(sub) > 60 || !utf8_valid(sub) ||
	           !printable(sub)) {
		/* It becomes the audit actor and goes into logs: no control characters. */
		*why = "no subject";
	} else if (bind_role(claims, cfg, p, why) == 0) {
		snprintf(p->actor, sizeof(p->actor), "jwt:%s", sub);
		return 0;
	}
	return -1;
}

int
jwt_verify(const struct jwks *ks, const struct config *cfg, const char *token, time_t now,
    struct principal *p, const char **why)
{
	json_t *claims = NULL;
	unsigned char *sig = NULL;
	const struct jwk *key = NULL;
	size_t siglen;

	memset(p, 0, sizeof(*p));
	*why = "malformed";
	if (!jwt_shaped(token))
		return -1;
	const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
	int rc = header_key(ks, token, (size_t)(d1 - token), &key, why);
	if (rc != 0)
		goto out;
	rc = -1;
	sig = base64url_decode(d2 + 1, strlen(d2 + 1), 1024, &siglen);
	if (sig == NULL || siglen == 0 ||
	    !signature_ok(key, token, (size_t)(d2 - token), sig, siglen)) {
		*why = "bad signature";
		goto out;
	}
	claims = decode_json(d1 + 1, (size_t)(d2 - d1 - 1));
	if (claims != NULL)
		rc = claims_accept(claims, cfg, now, p, why);
out:
	if (rc != 0)
		memset(p, 0, sizeof(*p));
	json_decref(claims);
	free(sig);
	return rc;
}
