/*
 * kqe import — loads directory data from files. `kqe import offices FILE.csv`
 * validates the whole file first (every error of every row, as
 * FILE:LINE: field: message on stderr) and imports nothing if anything is
 * wrong; otherwise it upserts every row in one transaction, so a run either
 * lands completely or not at all and running it again changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "kqe/db.h"
#include "offices_csv.h"

/* A directory file is a few hundred rows; refuse anything absurd before reading it all. */
#define IMPORT_MAX_BYTES (64L * 1024 * 1024)

/* Reads the file into a new buffer (*data, caller frees). Prints why it cannot. */
static int
read_file(const char *path, char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 65536, n = 0;
	char *buf = NULL;

	if (f == NULL) {
		fprintf(stderr, "kqe import: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(cap);
	for (;;) {
		if (n == cap) {
			if (cap >= (size_t)IMPORT_MAX_BYTES) {
				fprintf(stderr, "kqe import: %s: larger than %ld bytes\n", path,
				    IMPORT_MAX_BYTES);
				goto fail;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "kqe import: %s: %s\n", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	*data = buf;
	*len = n;
	return 0;
fail:
	fclose(f);
	free(buf);
	return -1;
}

static int
import_offices(const char *path, const struct config *cfg)
{
	char *data = NULL;
	size_t len = 0;
	struct offices_csv *csv = NULL;
	struct db *db = NULL;
	struct offices_counts counts = { 0, 0, 0 };
	int rc = 1;

	if (read_file(path, &data, &len) != 0)
		goto out;
	csv = offices_csv_parse(data, len);
	if (csv->nerrors > 0) {
		for (size_t i = 0; i < csv->nerrors; i++)
			fprintf(stderr, "%s:%d: %s: %s\n", path, csv->errors[i].line,
			    csv->errors[i].field, csv->errors[i].message);
		fprintf(stderr, "%s: %zu error%s, nothing imported\n", path, csv->nerrors,
		    csv->nerrors == 1 ? "" : "s");
		goto out;
	}

	db = db_new(cfg->database_admin_url, cfg->statement_timeout_ms, "kqe-import");
	if (db_connect(db) != 0) {
		fprintf(stderr, "kqe import: cannot connect to the database: %.*s\n",
		    (int)strcspn(db_error_message(db), "\n"), db_error_message(db));
		goto out;
	}
	if (db_begin(db) != 0) {
		cli_db_error("kqe import", db);
		goto out;
	}
	for (size_t i = 0; i < csv->nrows; i++) {
		if (offices_upsert(db, &csv->rows[i], &counts) != 0) {
			char where[512];
			snprintf(where, sizeof(where), "%s:%d", path, csv->rows[i].line);
			cli_db_error(where, db);
			goto fail;
		}
	}
	if (db_commit(db) != 0) {
		cli_db_error("kqe import: commit", db);
		goto fail;
	}
	printf("offices: %zu imported (%d created, %d updated, %d unchanged)\n", csv->nrows,
	    counts.created, counts.updated, counts.unchanged);
	rc = 0;
	goto out;
fail:
	db_rollback(db);
	fprintf(stderr, "%s: nothing imported\n", path);
out:
	db_free(db);
	offices_csv_free(csv);
	free(data);
	return rc;
}

static const struct {
	const char *what;
	int (*run)(const char *path, const struct config *cfg);
} importers[] = {
	{ "offices", import_offices },
};

int
cmd_import(int argc, char **argv, const struct config *cfg)
{
	if (argc == 3) {
		for (size_t i = 0; i < ARRAY_LEN(importers); i++)
			if (strcmp(argv[1], importers[i].what) == 0)
				return importers[i].run(argv[2], cfg);
	}
	fprintf(stderr, "usage: kqe import offices FILE.csv\n");
	return 2;
}
