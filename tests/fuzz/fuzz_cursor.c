/*
 * ?cursor= of every list: cursor_decode for one and two sort keys, and
 * base64url_decode under it. What decodes must encode back to itself
 * (decoding is canonical: one cursor text per key array).
 */
#include "fuzz.h"
#include "kqe/base64url.h"
#include "kqe/cursor.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size);
	size_t len = strlen(text), n;

	unsigned char *raw = base64url_decode(text, len, 1024, &n);
	if (raw != NULL) {
		FUZZ_ASSERT(n <= 1024 && raw[n] == '\0');
		char *back = base64url_encode(raw, n);
		FUZZ_ASSERT(strcmp(back, text) == 0);
		free(back);
		free(raw);
	}
	for (size_t nkeys = 1; nkeys <= 2; nkeys++) {
		json_t *keys = cursor_decode(text, nkeys);
		if (keys == NULL)
			continue;
		FUZZ_ASSERT(json_is_array(keys) && json_array_size(keys) == nkeys);
		for (size_t i = 0; i < nkeys; i++)
			FUZZ_ASSERT(json_is_string(json_array_get(keys, i)));
		json_t *again = NULL;
		char *encoded = cursor_encode(keys);
		again = cursor_decode(encoded, nkeys);
		FUZZ_ASSERT(again != NULL && json_equal(again, keys));
		json_decref(again);
		free(encoded);
		json_decref(keys);
	}
	free(text);
	return 0;
}
