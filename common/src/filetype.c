#include "kqe/filetype.h"

#include <stdio.h>
#include <string.h>

#include <magic.h>

int
filetype_of(const void *data, size_t len, char *out, size_t size)
{
	out[0] = '\0';
	/*
	 * A handle per call: loading the compiled database takes ~4 ms (mapped,
	 * not read), far below an upload's own cost, and a magic_t is not safe to
	 * share between threads. Archives are not unpacked, nor are ELF or CDF
	 * files parsed: what we accept needs none of it.
	 */
	magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_CHECK_TAR |
	                       MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_CDF);
	if (m == NULL)
		return -1;
	if (magic_load(m, NULL) != 0) {
		magic_close(m);
		return -1;
	}
	const char *t =
	    magic_buffer(m, data, len < FILETYPE_SNIFF_BYTES ? len : FILETYPE_SNIFF_BYTES);
	/*
	 * NULL: libmagic could not classify these bytes (found by fuzzing: a UTF-32 byte-order
	 * mark before bytes that are no UTF-32 fails its encoding check). Bytes of no known
	 * type, then: no declared type matches them.
	 */
	snprintf(out, size, "%s", t != NULL ? t : "application/octet-stream");
	magic_close(m);
	return 0;
}

int
filetype_matches(const char *declared, const char *found)
{
	if (strcmp(declared, found) == 0)
		return 1;
	/* Text formats libmagic tells apart only by heuristics: plain text will do. */
	static const char *const as_text[] = { "text/csv", "text/markdown" };
	for (size_t i = 0; i < sizeof(as_text) / sizeof(as_text[0]); i++)
		if (strcmp(declared, as_text[i]) == 0)
			return strcmp(found, "text/plain") == 0 || strcmp(found, "text/csv") == 0;
	return 0;
}
