/*
 * kqe rollups rebuild — recomputes every office's rollups in one transaction
 * (kqe_rollup_rebuild() in SQL): report builds running meanwhile keep reading
 * the old rows until the commit, then the new ones; none sees a mix. For
 * operators after restoring a backup or changing what rollups count; the
 * aggregator keeps them current on its own otherwise (docs/rollups.md).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "kqe/db.h"

static const struct db_stmt stmt_rebuild = { "rollups_rebuild", "SELECT kqe_rollup_rebuild()" };

int
cmd_rollups(int argc, char **argv, const struct config *cfg)
{
	if (argc != 2 || strcmp(argv[1], "rebuild") != 0) {
		fprintf(stderr, "usage: kqe rollups rebuild\n");
		return 2;
	}
	struct db *db = db_new(cfg->database_admin_url, 0, "kqe-rollups");
	PGresult *res = NULL;
	int rc = 1;
	if (cli_db_connect(db, "kqe rollups") != 0)
		goto out;
	if (db_begin(db) != 0 || (res = db_exec(db, &stmt_rebuild, 0, NULL)) == NULL ||
	    db_commit(db) != 0) {
		cli_db_error("kqe rollups rebuild", db);
		db_rollback(db);
		goto out;
	}
	printf("rollups rebuilt: %s rows\n", PQgetvalue(res, 0, 0));
	rc = 0;
out:
	PQclear(res);
	db_free(db);
	return rc;
}
