/*
 * retention — deletes case-level data older than KQE_RETENTION_YEARS
 * (docs/retention.md), one transaction per office, through
 * kqe_retention_office() in SQL (proto/migrations/0012_retention.sql), which
 * keeps the rollups of what it deletes and audits each office. kqe-aggregator
 * runs it on a timer, `kqe retention run` by hand; both share this code.
 */
#ifndef KQE_RETENTION_H
#define KQE_RETENTION_H

#include <signal.h>
#include <stdbool.h>

#include "kqe/db.h"
#include "kqe/principal.h"

/* What one office's transaction did (or, in a dry run, would do). */
struct retention_office {
	char office_id[65];
	long long case_analyses, topics;
	bool skipped; /* another run was working on the office: nothing done here */
};

/* A whole run. */
struct retention_totals {
	char horizon[11]; /* YYYY-MM-DD: records dated before it were due */
	long offices; /* offices with records due (each visited once) */
	long long case_analyses, topics;
	long skipped;
};

typedef void (*retention_office_fn)(const struct retention_office *office, void *arg);

/*
 * Runs retention with a period of `years` (1..100) as principal p (the
 * aggregator's 'system' or the admin at the command line; p->actor goes into
 * the audit log). A dry run counts per office and changes nothing. each (may
 * be NULL) is called for every office with records due, after its
 * transaction ended. Stops between offices once *stop is set (stop may be
 * NULL). 0, or -1 on a database error: offices already done stay done, the
 * failing one is rolled back.
 */
int retention_run(struct db *db, const struct principal *p, long years, bool dry_run,
    volatile sig_atomic_t *stop, retention_office_fn each, void *arg,
    struct retention_totals *totals) KQE_MUSTCHECK;

#endif
