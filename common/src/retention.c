#include "kqe/retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct db_stmt stmt_horizon = { "retention_horizon",
	"SELECT kqe_retention_check($1::int)::text" };
static const struct db_stmt stmt_offices = { "retention_offices",
	"SELECT o FROM kqe_retention_offices($1::int) o" };
static const struct db_stmt stmt_office = { "retention_office",
	"SELECT n_case_analyses, n_topics, skipped"
	" FROM kqe_retention_office($1, $2::int, $3, $4::boolean)" };

/* The offices with records due; the horizon into horizon. NULL on a database error. */
static PGresult *
due_offices(struct db *db, const struct principal *p, const char *years, char horizon[11])
{
	const char *params[] = { years };
	PGresult *h = NULL, *res = NULL;
	if (db_begin_as(db, p) != 0 || (h = db_exec(db, &stmt_horizon, 1, params)) == NULL ||
	    (res = db_exec(db, &stmt_offices, 1, params)) == NULL || db_commit(db) != 0) {
		PQclear(h);
		PQclear(res);
		db_rollback(db);
		return NULL;
	}
	snprintf(horizon, 11, "%s", PQgetvalue(h, 0, 0));
	PQclear(h);
	return res;
}

/* One office in one transaction; a dry run is rolled back whatever it did. 0 or -1. */
static int
one_office(struct db *db, const struct principal *p, const char *years, bool dry_run,
    struct retention_office *out)
{
	const char *params[] = { out->office_id, years, p->actor, dry_run ? "true" : "false" };
	PGresult *res = NULL;
	if (db_begin_as(db, p) != 0 || (res = db_exec(db, &stmt_office, 4, params)) == NULL) {
		db_rollback(db);
		return -1;
	}
	out->case_analyses = atoll(PQgetvalue(res, 0, 0));
	out->topics = atoll(PQgetvalue(res, 0, 1));
	out->skipped = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	PQclear(res);
	if (dry_run) {
		db_rollback(db);
		return 0;
	}
	if (db_commit(db) != 0) {
		db_rollback(db); /* a failed COMMIT leaves the handle in the transaction */
		return -1;
	}
	return 0;
}

int
retention_run(struct db *db, const struct principal *p, long years, bool dry_run,
    volatile sig_atomic_t *stop, retention_office_fn each, void *arg,
    struct retention_totals *totals)
{
	char years_text[24];
	snprintf(years_text, sizeof(years_text), "%ld", years);
	memset(totals, 0, sizeof(*totals));
	PGresult *offices = due_offices(db, p, years_text, totals->horizon);
	if (offices == NULL)
		return -1;
	int rc = 0;
	for (int i = 0; i < PQntuples(offices) && rc == 0; i++) {
		if (stop != NULL && *stop)
			break;
		struct retention_office office = { .skipped = false };
		snprintf(
		    office.office_id, sizeof(office.office_id), "%s", PQgetvalue(offices, i, 0));
		if (one_office(db, p, years_text, dry_run, &office) != 0) {
			rc = -1;
			break;
		}
		totals->offices++;
		totals->case_analyses += office.case_analyses;
		totals->topics += office.topics;
		totals->skipped += office.skipped;
		if (each != NULL)
			each(&office, arg);
	}
	PQclear(offices);
	return rc;
}
