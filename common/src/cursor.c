#include "kqe/cursor.h"

#include <stdlib.h>
#include <string.h>

#include "kqe/base64url.h"

#include "kqe/util.h"

#define CURSOR_MAX_LEN 512

char *
cursor_encode(const json_t *keys)
{
	char *text = json_dumps(keys, JSON_COMPACT);
	char *out = base64url_encode((const unsigned char *)text, strlen(text));
	free(text);
	return out;
}

json_t *
cursor_decode(const char *cursor, size_t nkeys)
{
	size_t n = strlen(cursor), len;
	if (n == 0 || n > CURSOR_MAX_LEN)
		return NULL;
	unsigned char *raw = base64url_decode(cursor, n, CURSOR_MAX_LEN, &len);
	if (raw == NULL)
		return NULL;
	json_error_t err;
	json_t *keys = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, &err);
	free(raw);
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
