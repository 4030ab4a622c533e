/*
 * retention — the aggregator's schedule for deleting case-level data older
 * than KQE_RETENTION_YEARS (docs/retention.md): once at start and then every
 * KQE_RETENTION_INTERVAL_S, from the main loop. It needs only PostgreSQL, so
 * it runs while Redis is down too. Several aggregators may run it at once:
 * each office is one transaction under an advisory lock that a second runner
 * skips (kqe_retention_office() in SQL). The work itself is shared with
 * `kqe retention run` (common/src/retention.c).
 */
#include <stdio.h>

#include "aggregator.h"
#include "kqe/log.h"
#include "kqe/principal.h"
#include "kqe/retention.h"

/* After a failed run (database down) the next attempt comes sooner than the interval. */
#define RETENTION_RETRY_NS 60000000000ull

static const struct principal system_principal = { .role = ROLE_SYSTEM,
	.actor = "system:aggregator" };

static void
log_office(const struct retention_office *o, void *arg)
{
	(void)arg;
	if (o->skipped)
		log_info(NULL, "retention skipped office: another run holds it",
		    json_pack("{s:s}", "office_id", o->office_id));
	else
		log_info(NULL, "retention deleted",
		    json_pack("{s:s,s:I,s:I}", "office_id", o->office_id, "case_analyses",
		        (json_int_t)o->case_analyses, "topics", (json_int_t)o->topics));
}

void
retention_announce(const struct config *cfg)
{
	if (cfg->retention_years == 0)
		log_info(NULL, "retention off", json_pack("{s:i}", "retention_years", 0));
	else
		log_info(NULL, "retention on",
		    json_pack("{s:i,s:i}", "retention_years", (int)cfg->retention_years,
		        "interval_s", (int)cfg->retention_interval_s));
}

void
retention_tick(struct aggregator *a)
{
	uint64_t started = now_ns();
	if (a->cfg->retention_years == 0 || started < a->retention_next_ns)
		return;
	uint64_t interval = (uint64_t)a->cfg->retention_interval_s * 1000000000ull;
	struct retention_totals t;
	if (retention_run(a->db, &system_principal, a->cfg->retention_years, false, a->stop,
	        log_office, NULL, &t) != 0) {
		uint64_t retry = interval < RETENTION_RETRY_NS ? interval : RETENTION_RETRY_NS;
		a->retention_next_ns = now_ns() + retry;
		log_warn(NULL, "retention failed; retrying",
		    json_pack("{s:s,s:I}", "sqlstate", db_error_sqlstate(a->db), "retry_in_s",
		        (json_int_t)(retry / 1000000000ull)));
		return;
	}
	a->retention_next_ns = started + interval;
	log_info(NULL, "retention run",
	    json_pack("{s:i,s:s,s:i,s:I,s:I,s:i,s:f}", "retention_years",
	        (int)a->cfg->retention_years, "horizon", t.horizon, "offices", (int)t.offices,
	        "case_analyses", (json_int_t)t.case_analyses, "topics", (json_int_t)t.topics,
	        "skipped", (int)t.skipped, "ms", (double)(now_ns() - started) / 1e6));
}
