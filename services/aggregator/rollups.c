/*
 * rollups — keeps the per-office rollups current (docs/rollups.md).
 *
 * Writes mark their office dirty in PostgreSQL (a trigger, in the write's own
 * transaction); this module recomputes dirty offices, one transaction each,
 * through kqe_rollup_office(). Many office_changed events for one office in a
 * batch become one recompute, and an event whose office is no longer dirty
 * (an earlier recompute already saw its write) costs one indexed lookup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "kqe/log.h"
#include "kqe/principal.h"
#include "kqe/validate.h"

static const struct db_stmt stmt_dirty = { "rollups_dirty",
	"SELECT office_id FROM rollup_dirty WHERE ($1::text[] IS NULL OR office_id = ANY($1))"
	" ORDER BY office_id" };
static const struct db_stmt stmt_recompute = { "rollups_recompute",
	"SELECT kqe_rollup_office($1)" };

static const struct principal system_principal = { .role = ROLE_SYSTEM,
	.actor = "system:aggregator" };

static int
recompute(struct db *db, const char *office)
{
	const char *params[] = { office };
	PGresult *res = NULL;
	if (db_begin_as(db, &system_principal) != 0 ||
	    (res = db_exec(db, &stmt_recompute, 1, params)) == NULL || db_commit(db) != 0) {
		PQclear(res);
		db_rollback(db);
		log_warn(NULL, "rollup recompute failed",
		    json_pack("{s:s,s:s}", "office_id", office, "sqlstate", db_error_sqlstate(db)));
		return -1;
	}
	PQclear(res);
	return 0;
}

int
rollups_refresh(struct db *db, const char *const *offices, size_t n)
{
	/* A PostgreSQL text[] literal; office ids are slugs ([a-z0-9-]), no quoting needed. */
	char *list = NULL;
	if (offices != NULL) {
		size_t len = 3;
		for (size_t i = 0; i < n; i++)
			len += strlen(offices[i]) + 1;
		list = xcalloc(len, 1);
		strcat(list, "{");
		for (size_t i = 0; i < n; i++) {
			if (!slug_id_valid(offices[i]))
				continue;
			if (list[1] != '\0')
				strcat(list, ",");
			strcat(list, offices[i]);
		}
		strcat(list, "}");
	}
	const char *params[] = { list };
	PGresult *res = NULL;
	if (db_begin_as(db, &system_principal) != 0 ||
	    (res = db_exec(db, &stmt_dirty, 1, params)) == NULL || db_commit(db) != 0) {
		free(list);
		PQclear(res);
		db_rollback(db);
		return -1;
	}
	free(list);
	int done = 0, rc = 0;
	uint64_t started = now_ns();
	for (int i = 0; i < PQntuples(res); i++) {
		if (recompute(db, PQgetvalue(res, i, 0)) != 0) {
			rc = -1;
			break;
		}
		done++;
	}
	PQclear(res);
	if (done > 0)
		log_info(NULL, "rollups recomputed",
		    json_pack(
		        "{s:i,s:f}", "offices", done, "ms", (double)(now_ns() - started) / 1e6));
	return rc == 0 ? done : -1;
}
