/*
 * What an uploaded file is (common/src/filetype.c): libmagic reads every
 * byte a team uploads as a material's file, so it meets hostile files here —
 * none may crash it, hang it or make it answer something that is not a
 * media type; and no declared type matches bytes libmagic found otherwise
 * unless the rule of filetype_matches() says so.
 */
#include "fuzz.h"
#include "kqe/filetype.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char found[128];
	if (filetype_of(data, size, found, sizeof(found)) != 0)
		abort(); /* the database is installed: a failure here is libmagic failing */
	if (strchr(found, '/') == NULL)
		abort();
	if (filetype_matches("application/pdf", found) && strcmp(found, "application/pdf") != 0)
		abort();
	return 0;
}
