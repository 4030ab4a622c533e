#include "links.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "kqe/base64url.h"

#define CLAIMS_MAX 1024

/* HMAC-SHA256 over claims "\n" uri, base64url. */
static char *
signature(const unsigned char *key, const char *claims, size_t claims_len, const char *uri)
{
	size_t uri_len = strlen(uri);
	unsigned char *msg = xmalloc(claims_len + 1 + uri_len);
	unsigned char md[32];
	unsigned int mdlen = 0;
	memcpy(msg, claims, claims_len);
	msg[claims_len] = '\n';
	memcpy(msg + claims_len + 1, uri, uri_len);
	HMAC(EVP_sha256(), key, LINK_KEY_LEN, msg, claims_len + 1 + uri_len, md, &mdlen);
	free(msg);
	return base64url_encode(md, mdlen);
}

char *
link_sign(const unsigned char *key, const char *uri, const struct principal *p, time_t expires)
{
	json_t *claims = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "exp", (json_int_t)expires, "role",
	    role_name(p->role), "actor", p->actor, "office_id", p->office_id, "region", p->region,
	    "institute_id", p->institute_id);
	char *text = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(claims);
	char *encoded = base64url_encode((const unsigned char *)text, strlen(text));
	char *sig = signature(key, text, strlen(text), uri);
	char *token = xasprintf("%s.%s", encoded, sig);
	free(text);
	free(encoded);
	free(sig);
	return token;
}

static int
copy_claim(const json_t *claims, const char *name, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(claims, name));
	if (v == NULL || strlen(v) >= size)
		return -1;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int
link_verify(
    const unsigned char *key, const char *token, const char *uri, time_t now, struct principal *p)
{
	const char *dot = strchr(token, '.');
	size_t len;
	memset(p, 0, sizeof(*p)); /* nobody, whichever way it fails */
	if (dot == NULL || (size_t)(dot - token) > CLAIMS_MAX * 2)
		return -1;
	unsigned char *text = base64url_decode(token, (size_t)(dot - token), CLAIMS_MAX, &len);
	if (text == NULL)
		return -1;
	char *want = signature(key, (const char *)text, len, uri);
	int ok = strlen(want) == strlen(dot + 1) && CRYPTO_memcmp(want, dot + 1, strlen(want)) == 0;
	free(want);
	json_t *claims = ok ? json_loadb((const char *)text, len, 0, NULL) : NULL;
	free(text);
	const json_t *exp = json_object_get(claims, "exp");
	const char *role = json_string_value(json_object_get(claims, "role"));
	int rc = -1;
	if (json_is_integer(exp) && json_integer_value(exp) >= (json_int_t)now && role != NULL &&
	    role_parse(role, &p->role) == 0 &&
	    copy_claim(claims, "actor", p->actor, sizeof(p->actor)) == 0 &&
	    copy_claim(claims, "office_id", p->office_id, sizeof(p->office_id)) == 0 &&
	    copy_claim(claims, "region", p->region, sizeof(p->region)) == 0 &&
	    copy_claim(claims, "institute_id", p->institute_id, sizeof(p->institute_id)) == 0)
		rc = 0;
	json_decref(claims);
	if (rc != 0)
		memset(p, 0, sizeof(*p));
	return rc;
}
