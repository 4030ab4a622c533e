/*
 * filetype — what a file's bytes are, by libmagic (docs/design.md, Libraries):
 * the check behind every upload, so a file declared as a PDF is one.
 */
#ifndef KQE_FILETYPE_H
#define KQE_FILETYPE_H

#include <stddef.h>

/*
 * The media type ("application/pdf") libmagic finds in the first bytes of
 * data (at most FILETYPE_SNIFF_BYTES of len), written to out —
 * "application/octet-stream" for bytes it cannot classify; -1 if libmagic
 * could not be used at all (its database missing), out then empty.
 */
#define FILETYPE_SNIFF_BYTES (1024 * 1024)
int filetype_of(const void *data, size_t len, char *out, size_t size);

/*
 * Whether a file declared as type (a media type without parameters, lower
 * case) is one by its bytes: libmagic finds type itself, or a type the
 * declared one may be found as (a CSV file is plain text to libmagic).
 */
int filetype_matches(const char *declared, const char *found);

#endif
