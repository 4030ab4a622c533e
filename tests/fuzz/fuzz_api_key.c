/*
 * The bearer token's first fork (services/api/auth.c auth_identify): the
 * API key shape check, and for anything else the JWT shape check. A key the
 * check accepts is exactly "kqe_" and 43 base64url characters.
 */
#include "auth.h"
#include "fuzz.h"
#include "jwt.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = fuzz_string(data, size);
	if (auth_api_key_shaped(token)) {
		FUZZ_ASSERT(strlen(token) == 4 + 43 && strncmp(token, "kqe_", 4) == 0);
		FUZZ_ASSERT(strspn(token + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                              "0123456789-_") == 43);
		FUZZ_ASSERT(!jwt_shaped(token));
	} else if (jwt_shaped(token)) {
		const char *d1 = strchr(token, '.');
		FUZZ_ASSERT(d1 != NULL && strchr(d1 + 1, '.') != NULL);
	}
	free(token);
	return 0;
}
