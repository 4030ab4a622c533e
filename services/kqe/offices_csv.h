/*
 * offices_csv — the office directory (module 1) as the admin tool loads it.
 *
 * The parser turns an RFC 4180 CSV file (quoted fields, doubled quotes, line
 * breaks inside quotes, CRLF or LF, optional UTF-8 BOM) into validated office
 * rows. It is pure: no I/O, no database, so it is unit-tested directly. It
 * never stops at the first problem: every error of every row is collected
 * with the physical line it is on, so an operator fixes a file in one pass.
 *
 * offices_upsert() is the one statement that writes an office; kqe import and
 * kqe seed both use it, inside a transaction the caller owns.
 */
#ifndef KQE_ADMIN_OFFICES_CSV_H
#define KQE_ADMIN_OFFICES_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "kqe/db.h"
#include "kqe/util.h"

#define OFFICES_ID_MAX 64 /* characters; the schema's CHECK */
#define OFFICES_NAME_MAX 200 /* characters (code points) */
/* Bytes a valid name can take: 4 per code point plus NUL. */
#define OFFICES_NAME_BYTES (4 * OFFICES_NAME_MAX + 1)

struct office {
	char id[OFFICES_ID_MAX + 1];
	char name[OFFICES_NAME_BYTES];
	const char *kind; /* static code: "kreisfreie_stadt", "kreis", ... */
	const char *region; /* static code: "LVR" or "LWL" */
	long population_under_18; /* -1: not given (an update keeps the stored value) */
	bool synthetic;
	int line; /* physical line the record starts on; 0 if not from a file */
};

struct offices_csv_error {
	int line; /* 1-based physical line; the header is line 1 */
	char field[24]; /* column ("name", "kind", ...) or "csv" for syntax, "header" */
	char message[256];
};

struct offices_csv {
	struct office *rows; /* only rows without any error */
	size_t nrows;
	struct offices_csv_error *errors; /* in file order */
	size_t nerrors;
};

/*
 * Parses len bytes of CSV text (need not be NUL-terminated). Always returns a
 * new result (caller frees with offices_csv_free); the file is acceptable iff
 * nerrors == 0.
 */
struct offices_csv *offices_csv_parse(const char *data, size_t len);
void offices_csv_free(struct offices_csv *csv);

/*
 * The kind code for a code or German label ("kreisfreie Stadt", "Kreis",
 * "kreisangehörige Stadt"; ASCII letters and umlauts case-insensitive), or
 * NULL. The result is a static string.
 */
const char *offices_kind_parse(const char *s);

/* "LVR" or "LWL" for s in any case, else NULL. The result is a static string. */
const char *offices_region_parse(const char *s);

/* True if id matches the schema: ^[a-z0-9][a-z0-9-]{0,63}$. */
bool offices_id_valid(const char *id);

/*
 * Writes the id derived from a UTF-8 name into out: lowercase ASCII letters
 * and digits, ä/ö/ü/ß (either case) as ae/oe/ue/ss, every run of anything
 * else as one '-', no leading or trailing '-', at most OFFICES_ID_MAX
 * characters. out is "" if the name has no letter or digit to keep.
 */
void offices_slug(const char *name, char out[OFFICES_ID_MAX + 1]);

/* What a series of offices_upsert() calls did. */
struct offices_counts {
	int created;
	int updated;
	int unchanged;
};

/*
 * Inserts the office or updates the row with its id. An update that would
 * change nothing is skipped, so version and updated_at move only on a real
 * change; a population of -1 keeps the stored one. Adds 1 to the matching
 * member of counts. Runs in the caller's transaction. 0 or -1 (see
 * db_error_message()).
 */
int offices_upsert(
    struct db *db, const struct office *o, struct offices_counts *counts) KQE_MUSTCHECK;

#endif
