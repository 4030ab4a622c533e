#include "kqe/cursor.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kqe/util.h"

#define CURSOR_MAX_LEN 512

char *
cursor_encode(const json_t *keys)
{
	char *text = json_dumps(keys, JSON_COMPACT);
	size_t n = strlen(text);
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)n);
	free(text);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *p = out; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	return out;
}

json_t *
cursor_decode(const char *cursor, size_t nkeys)
{
	size_t n = strlen(cursor);
	if (n == 0 || n > CURSOR_MAX_LEN || n % 4 == 1)
		return NULL;
	char buf[CURSOR_MAX_LEN + 4];
	for (size_t i = 0; i < n; i++) {
		char c = cursor[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		             (c >= '0' && c <= '9')))
			return NULL;
		buf[i] = c;
	}
	size_t pad = (4 - n % 4) % 4;
	memset(buf + n, '=', pad);
	buf[n + pad] = '\0';

	unsigned char raw[CURSOR_MAX_LEN];
	int len = EVP_DecodeBlock(raw, (const unsigned char *)buf, (int)(n + pad));
	if (len < 0)
		return NULL;
	len -= (int)pad; /* EVP_DecodeBlock counts the padding as zero bytes */
	json_error_t err;
	json_t *keys = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, &err);
	if (keys == NULL)
		return NULL;
	if (!json_is_array(keys) || json_array_size(keys) != nkeys)
		goto bad;
	for (size_t i = 0; i < nkeys; i++) {
		const json_t *k = json_array_get(keys, i);
		if (!json_is_string(k) || json_string_length(k) == 0 || json_string_length(k) > 128)
			goto bad;
	}
	return keys;
bad:
	json_decref(keys);
	return NULL;
}
