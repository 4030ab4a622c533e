/*
 * Download links (services/api/links.c link_verify). The first byte picks:
 *
 *   even  "<token>\n<uri>" as a browser sends it back;
 *   odd   "<claims JSON>\n<uri>", which the fuzzer signs with the link key
 *         (as link_sign would, but with any claims), so the claims' checks
 *         run on arbitrary JSON.
 *
 * A link that verifies acts as a known role and carries the same principal
 * link_sign put in; a token made by link_sign verifies for its URI only.
 */
#include <openssl/hmac.h>

#include "fuzz.h"
#include "kqe/base64url.h"
#include "links.h"

#define FUZZ_NOW 1749945600

static const unsigned char key[LINK_KEY_LEN] = "kqe fuzz link key, 32 bytes ...";

static char *
sign_claims(const char *claims, size_t len, const char *uri)
{
	size_t ulen = strlen(uri);
	unsigned char *msg = malloc(len + 1 + ulen), md[32];
	unsigned int mdlen = 0;
	FUZZ_ASSERT(msg != NULL);
	memcpy(msg, claims, len);
	msg[len] = '\n';
	memcpy(msg + len + 1, uri, ulen);
	HMAC(EVP_sha256(), key, LINK_KEY_LEN, msg, len + 1 + ulen, md, &mdlen);
	free(msg);
	char *c = base64url_encode((const unsigned char *)claims, len), *s = base64url_encode(md, mdlen);
	size_t n = strlen(c) + 1 + strlen(s) + 1;
	char *token = malloc(n);
	FUZZ_ASSERT(token != NULL);
	snprintf(token, n, "%s.%s", c, s);
	free(c);
	free(s);
	return token;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool sign = data[0] & 1;
	char *first, *uri;
	fuzz_split(data + 1, size - 1, &first, &uri);
	char *token = sign ? sign_claims(first, strlen(first), uri) : strdup(first);
	struct principal p;
	if (link_verify(key, token, uri, FUZZ_NOW, &p) == 0) {
		FUZZ_ASSERT(p.role != ROLE_NONE);
		/* Signed again for the same principal, it verifies to the same principal. */
		char *again = link_sign(key, uri, &p, FUZZ_NOW + 1);
		struct principal q;
		FUZZ_ASSERT(link_verify(key, again, uri, FUZZ_NOW, &q) == 0);
		FUZZ_ASSERT(memcmp(&p, &q, sizeof(p)) == 0);
		FUZZ_ASSERT(link_verify(key, again, "/v1/other", FUZZ_NOW, &q) != 0 ||
		            strcmp(uri, "/v1/other") == 0);
		free(again);
	} else {
		FUZZ_ASSERT(p.role == ROLE_NONE && p.actor[0] == '\0');
	}
	free(token);
	free(first);
	free(uri);
	return 0;
}
