/*
 * api_key — what an API key looks like and what is stored of it: "kqe_"
 * followed by 32 random bytes in base64url without padding (43 characters);
 * only the lowercase hex SHA-256 of the whole string, prefix included, is
 * stored (api_tokens.token_hash). Made by `kqe token create` and, for
 * approved professionals, by kqe-api.
 */
#ifndef KQE_API_KEY_H
#define KQE_API_KEY_H

#define TOKEN_PREFIX "kqe_"
#define TOKEN_RANDOM_BYTES 32
#define TOKEN_LEN (sizeof(TOKEN_PREFIX) - 1 + 43) /* 43 = ceil(32 * 4 / 3) */
#define TOKEN_HASH_LEN 64 /* hex digits of a SHA-256 */

/* Writes "kqe_" + base64url(raw) without padding, NUL-terminated. */
void token_encode(const unsigned char raw[TOKEN_RANDOM_BYTES], char out[TOKEN_LEN + 1]);

/* Writes a new random token (random_bytes()) into out. */
void token_generate(char out[TOKEN_LEN + 1]);

/* Writes what is stored of a token: the lowercase hex SHA-256 of the whole string. */
void token_hash(const char *token, char out[TOKEN_HASH_LEN + 1]);

#endif
