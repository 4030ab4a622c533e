#include "kqe/api_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kqe/base64url.h"
#include "kqe/util.h"

void
token_encode(const unsigned char raw[TOKEN_RANDOM_BYTES], char out[TOKEN_LEN + 1])
{
	char *text = base64url_encode(raw, TOKEN_RANDOM_BYTES);
	snprintf(out, TOKEN_LEN + 1, "%s%s", TOKEN_PREFIX, text);
	free(text);
}

void
token_generate(char out[TOKEN_LEN + 1])
{
	unsigned char raw[TOKEN_RANDOM_BYTES];

	random_bytes(raw, sizeof(raw));
	token_encode(raw, out);
	OPENSSL_cleanse(raw, sizeof(raw));
}

void
token_hash(const char *token, char out[TOKEN_HASH_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
		fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"SHA-256 failed\"}\n");
		abort();
	}
	hex_encode(md, len, out);
}
