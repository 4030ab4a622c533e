#include <stdio.h>

#include "commands.h"
#include "kqe/db.h"
#include "kqe/migrate.h"

int
cmd_migrate(int argc, char **argv, const struct config *cfg)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: kqe migrate\n");
		return 2;
	}
	/* Migrations may take long (index builds): no statement timeout here. */
	struct db *db = db_new(cfg->database_admin_url, 0, "kqe-migrate");
	int applied = 0, rc = 1;
	if (db_connect(db) != 0) {
		fprintf(stderr, "kqe migrate: cannot connect to the database\n");
		goto out;
	}
	if (migrate_run(db, &applied) != 0) {
		fprintf(stderr, "kqe migrate: failed (see log)\n");
		goto out;
	}
	printf("migrations: %d applied, schema at version %d\n", applied, migrate_latest());
	rc = 0;
out:
	db_free(db);
	return rc;
}
