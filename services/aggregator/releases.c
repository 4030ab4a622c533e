/*
 * releases — taking a release of the cross-office figures (migration
 * 0016_releases.sql, docs/disclosure.md "Releases"): the rollups catch up with
 * every committed write, then kqe_release_make() records which state of each
 * (year, cycle) bucket is published from now on. Reports are built from the
 * latest release (stats.c), never from the live rollups.
 *
 * The aggregator takes one whenever KQE_RELEASE_INTERVAL_S has passed since
 * the last (looked at once a minute), and with an interval of 0 before every
 * report job; `kqe release make` takes one by hand.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "aggregator.h"
#include "kqe/log.h"
#include "kqe/principal.h"

static const struct db_stmt stmt_make = { "release_make",
	"SELECT kqe_release_make($1::int, $2::boolean, $3)" };
static const struct db_stmt stmt_summary = { "release_summary",
	"SELECT kqe_ts(r.cut_off), count(b.*) FILTER (WHERE b.state_release = r.id),"
	" count(b.*) FILTER (WHERE b.state_release <> r.id AND NOT b.final),"
	" count(b.*) FILTER (WHERE b.final)"
	" FROM releases r LEFT JOIN release_buckets b ON b.release_id = r.id"
	" WHERE r.id = $1::int GROUP BY r.id, r.cut_off" };
static const struct db_stmt stmt_due = { "release_due",
	"SELECT coalesce(max(cut_off) <= now() - make_interval(secs => $1::int), true)"
	" FROM releases" };

#define LOOK_EVERY_NS (60ull * 1000000000ull)

int
release_make(
    struct db *db, const struct principal *who, long min_changes, bool final, int *release_id)
{
	if (rollups_refresh(db, NULL, 0) < 0)
		return -1;
	char min[24];
	snprintf(min, sizeof(min), "%ld", min_changes);
	const char *params[] = { min, final ? "true" : "false", who->actor };
	PGresult *res = NULL, *sum = NULL;
	if (db_begin_as(db, who) != 0 || (res = db_exec(db, &stmt_make, 3, params)) == NULL ||
	    (sum = db_exec(db, &stmt_summary, 1, (const char *[]){ PQgetvalue(res, 0, 0) })) ==
	        NULL ||
	    PQntuples(sum) != 1 || db_commit(db) != 0) {
		PQclear(res);
		PQclear(sum);
		db_rollback(db);
		log_warn(
		    NULL, "release failed", json_pack("{s:s}", "sqlstate", db_error_sqlstate(db)));
		return -1;
	}
	*release_id = atoi(PQgetvalue(res, 0, 0));
	log_info(NULL, "release made",
	    json_pack("{s:i,s:s,s:i,s:i,s:i,s:I}", "release", *release_id, "cut_off",
	        PQgetvalue(sum, 0, 0), "buckets_refreshed", atoi(PQgetvalue(sum, 0, 1)),
	        "buckets_carried", atoi(PQgetvalue(sum, 0, 2)), "buckets_final",
	        atoi(PQgetvalue(sum, 0, 3)), "min_changes", (json_int_t)min_changes));
	PQclear(sum);
	PQclear(res);
	return 0;
}

static const struct principal system_principal = { .role = ROLE_SYSTEM,
	.actor = "system:aggregator" };

void
release_tick(struct aggregator *a, uint64_t now)
{
	if (a->release_next_ns != 0 && now < a->release_next_ns)
		return;
	a->release_next_ns = now + LOOK_EVERY_NS;
	if (a->cfg->release_interval_s == 0)
		return; /* one before every report job instead (build_report.c) */
	char secs[24];
	snprintf(secs, sizeof(secs), "%ld", a->cfg->release_interval_s);
	const char *params[] = { secs };
	PGresult *res = NULL;
	if (db_begin_as(a->db, &system_principal) != 0 ||
	    (res = db_exec(a->db, &stmt_due, 1, params)) == NULL || db_commit(a->db) != 0) {
		PQclear(res);
		db_rollback(a->db);
		return; /* PostgreSQL away: the next look tries again */
	}
	bool due = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	int id;
	if (due && release_make(a->db, &system_principal, a->cfg->release_min_changes,
	               a->cfg->release_final != 0, &id) != 0)
		return; /* logged; the next look tries again */
}
