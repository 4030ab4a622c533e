/*
 * kqe release make [--min-changes N] — takes a release of the cross-office
 * figures now (docs/disclosure.md, "Releases"), as the aggregator does on its
 * schedule: every dirty office recomputed, then each (year, cycle) bucket
 * refreshed if at least N records (default KQE_RELEASE_MIN_CHANGES) changed
 * since its published state, carried otherwise, final once its period closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "cli.h"
#include "commands.h"

int
cmd_release(int argc, char **argv, const struct config *cfg)
{
	long min_changes = cfg->release_min_changes;
	char *end = NULL;
	if (argc == 4 && strcmp(argv[2], "--min-changes") == 0)
		min_changes = strtol(argv[3], &end, 10);
	if (argc < 2 || strcmp(argv[1], "make") != 0 || (argc != 2 && argc != 4) ||
	    (end != NULL && (*end != '\0' || min_changes < 1 || min_changes > 1000000))) {
		fprintf(stderr, "usage: kqe release make [--min-changes N]\n");
		return 2;
	}
	struct principal who;
	cli_principal(&who);
	struct db *db = db_new(cfg->database_admin_url, 0, "kqe-release");
	int id = 0, rc = 1;
	if (cli_db_connect(db, "kqe release") != 0)
		goto out;
	if (release_make(db, &who, min_changes, cfg->release_final != 0, &id) != 0) {
		cli_db_error("kqe release make", db);
		goto out;
	}
	printf("release %d made\n", id);
	rc = 0;
out:
	db_free(db);
	return rc;
}
