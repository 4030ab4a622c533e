/*
 * kqe retention run [--dry-run] — deletes case-level data older than
 * KQE_RETENTION_YEARS now, as the aggregator does on its schedule
 * (docs/retention.md): one transaction per office, the rollups of what is
 * deleted kept, one audit entry per office with the admin at this terminal as
 * actor. Prints one line per office with records due and a total. --dry-run
 * prints the same counts and changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "kqe/db.h"
#include "kqe/retention.h"

#define RETENTION_USAGE "usage: kqe retention run [--dry-run]\n"

static void
print_office(const struct retention_office *o, void *arg)
{
	(void)arg;
	if (o->skipped)
		printf("office %s: skipped (another run holds it)\n", o->office_id);
	else
		printf("office %s: case_analyses=%lld topics=%lld\n", o->office_id,
		    o->case_analyses, o->topics);
}

int
cmd_retention(int argc, char **argv, const struct config *cfg)
{
	bool dry_run = argc == 3 && strcmp(argv[2], "--dry-run") == 0;
	if (argc < 2 || argc > 3 || strcmp(argv[1], "run") != 0 || (argc == 3 && !dry_run)) {
		fprintf(stderr, RETENTION_USAGE);
		return 2;
	}
	if (cfg->retention_years == 0) {
		fprintf(stderr,
		    "kqe retention run: KQE_RETENTION_YEARS is 0 (retention is off); set it to the "
		    "retention period in years (1 to 100)\n");
		return 2;
	}
	struct db *db = db_new(cfg->database_admin_url, cfg->statement_timeout_ms, "kqe-retention");
	struct principal admin;
	struct retention_totals t;
	int rc = 1;
	cli_principal(&admin);
	if (cli_db_connect(db, "kqe retention") != 0)
		goto out;
	printf("retention: KQE_RETENTION_YEARS=%ld%s\n", cfg->retention_years,
	    dry_run ? " (dry run: nothing is deleted)" : "");
	fflush(stdout);
	int failed =
	    retention_run(db, &admin, cfg->retention_years, dry_run, NULL, print_office, NULL, &t);
	printf("%s: horizon=%s offices=%ld case_analyses=%lld topics=%lld skipped=%ld\n",
	    dry_run ? "would delete" : "deleted", t.horizon[0] ? t.horizon : "-", t.offices,
	    t.case_analyses, t.topics, t.skipped);
	if (failed != 0) {
		cli_db_error("kqe retention run", db);
		goto out;
	}
	rc = 0;
out:
	db_free(db);
	return rc;
}
