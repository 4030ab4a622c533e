/*
 * JWTs and key sets (services/api/jwt.c). The first byte of the input picks
 * what the rest is:
 *
 *   0, 4  a bearer token as sent: jwt_verify() against the fuzzer's JWKS
 *         (fuzz_keys.h: "rsa-1" RS256, "ec-1" ES256, "enc-1" an encryption
 *         key the set must skip), at a fixed time;
 *   1, 5  "<header JSON>\n<claims JSON>", which the fuzzer signs with ES256
 *         (the EC key) so that the checks after the signature — issuer,
 *         audience, expiry, role claims — see arbitrary claims;
 *   2     the same signed with RS256 (slower: RSA signing);
 *   3, 6  a JWKS document for jwks_parse();
 *   7     a token verified against no key set at all.
 *
 * tests/fuzz/make_corpus.py makes the seeds in corpus/jwt/.
 */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fuzz.h"
#include "fuzz_keys.h"
#include "jwt.h"
#include "kqe/base64url.h"

/* 2025-06-15T00:00:00Z: the seed tokens are valid then (make_corpus.py). */
#define FUZZ_NOW 1749945600

static EVP_PKEY *rsa, *ec;
static struct jwks *keys;
static struct config cfg;

static EVP_PKEY *
load_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	FUZZ_ASSERT(k != NULL);
	return k;
}

/* base64url of a big-endian number, at least pad bytes long. */
static char *
bn_b64(EVP_PKEY *k, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	FUZZ_ASSERT(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
	unsigned char buf[512];
	int n = BN_bn2binpad(bn, buf, pad > BN_num_bytes(bn) ? pad : BN_num_bytes(bn));
	FUZZ_ASSERT(n > 0);
	BN_free(bn);
	return base64url_encode(buf, (size_t)n);
}

static void
init(void)
{
	rsa = load_key(fuzz_rsa_pem);
	ec = load_key(fuzz_ec_pem);
	char *n = bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N, 0), *e = bn_b64(rsa, OSSL_PKEY_PARAM_RSA_E, 0);
	char *x = bn_b64(ec, OSSL_PKEY_PARAM_EC_PUB_X, 32), *y = bn_b64(ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
	json_t *jwks = json_pack("{s:[{s:s,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s,s:s},"
	                         "{s:s,s:s,s:s,s:s,s:s}]}",
	    "keys", "kty", "RSA", "kid", "rsa-1", "use", "sig", "n", n, "e", e, "kty", "EC", "kid",
	    "ec-1", "use", "sig", "crv", "P-256", "x", x, "y", y, "kty", "RSA", "kid", "enc-1", "use",
	    "enc", "n", n, "e", e);
	FUZZ_ASSERT(jwks != NULL);
	char *text = json_dumps(jwks, JSON_COMPACT);
	char err[200];
	keys = jwks_parse(text, strlen(text), err, sizeof(err));
	FUZZ_ASSERT(keys != NULL && jwks_count(keys) == 2);
	free(text);
	json_decref(jwks);
	free(n);
	free(e);
	free(x);
	free(y);
	/* As tests/integration/test_jwt.py configures kqe-api. */
	cfg.jwt_issuer = "https://idp.test.nrw/realms/kqe";
	cfg.jwt_audience = "kqe-api";
	cfg.jwt_leeway_s = 60;
	cfg.jwt_role_claim = "kqe_role";
	cfg.jwt_office_claim = "kqe_office";
	cfg.jwt_region_claim = "kqe_region";
	cfg.jwt_institute_claim = "kqe_institute";
}

/* header.claims signed with key (ES256: raw r || s as JWS wants it). A new string. */
static char *
sign(EVP_PKEY *key, const char *header, size_t hlen, const char *claims, size_t clen)
{
	char *h = base64url_encode((const unsigned char *)header, hlen);
	char *c = base64url_encode((const unsigned char *)claims, clen);
	size_t inlen = strlen(h) + 1 + strlen(c);
	char *input = malloc(inlen + 1);
	FUZZ_ASSERT(input != NULL);
	snprintf(input, inlen + 1, "%s.%s", h, c);
	free(h);
	free(c);

	unsigned char sig[512], raw[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FUZZ_ASSERT(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	            EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, inlen) == 1);
	EVP_MD_CTX_free(ctx);
	const unsigned char *s = sig;
	if (key == ec) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
		FUZZ_ASSERT(es != NULL);
		FUZZ_ASSERT(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) == 32 &&
		            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) == 32);
		ECDSA_SIG_free(es);
		s = raw;
		siglen = sizeof(raw);
	}
	char *b64sig = base64url_encode(s, siglen);
	size_t len = inlen + 1 + strlen(b64sig) + 1;
	char *token = malloc(len);
	FUZZ_ASSERT(token != NULL);
	snprintf(token, len, "%s.%s", input, b64sig);
	free(b64sig);
	free(input);
	return token;
}

static void
verify(const struct jwks *ks, const char *token)
{
	struct principal p;
	const char *why = NULL;
	int rc = jwt_verify(ks, &cfg, token, FUZZ_NOW, &p, &why);
	FUZZ_ASSERT(rc == 0 || rc == -1 || rc == JWT_UNKNOWN_KID);
	if (rc != 0) {
		FUZZ_ASSERT(why != NULL && p.role == ROLE_NONE && p.actor[0] == '\0');
		return;
	}
	/* A verified token binds exactly what its role needs, and names who it is. */
	FUZZ_ASSERT(p.role != ROLE_NONE && strncmp(p.actor, "jwt:", 4) == 0);
	FUZZ_ASSERT(!role_is_office(p.role) || p.office_id[0] != '\0');
	FUZZ_ASSERT(p.role != ROLE_INSTITUTE || p.institute_id[0] != '\0');
	FUZZ_ASSERT(p.role != ROLE_ADVISOR ||
	            strcmp(p.region, "LVR") == 0 || strcmp(p.region, "LWL") == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (keys == NULL)
		init();
	if (size == 0)
		return 0;
	unsigned mode = data[0] % 8;
	data++;
	size--;
	switch (mode) {
	case 0:
	case 4:
	case 7: {
		char *token = fuzz_string(data, size);
		verify(mode == 7 ? NULL : keys, token);
		free(token);
		break;
	}
	case 1:
	case 5:
	case 2: {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
		const char *claims = nl != NULL ? (const char *)nl + 1 : "";
		size_t clen = nl != NULL ? size - hlen - 1 : 0;
		char *token = sign(mode == 2 ? rsa : ec, (const char *)data, hlen, claims, clen);
		verify(keys, token);
		free(token);
		break;
	}
	case 3:
	case 6: {
		char err[256] = "";
		struct jwks *ks = jwks_parse((const char *)data, size, err, sizeof(err));
		if (ks == NULL) {
			FUZZ_ASSERT(err[0] != '\0');
			break;
		}
		FUZZ_ASSERT(jwks_count(ks) >= 1 && jwks_count(ks) <= 32);
		jwks_free(ks);
		break;
	}
	}
	ERR_clear_error();
	return 0;
}
