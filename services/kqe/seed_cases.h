/*
 * seed_cases — the § 8 submissions of the demo state (docs/domain.md, modules
 * 3–5): case analyses (Fallanalysen), structural-quality surveys and
 * quality-development topics for the demo procedures, each as far as the
 * procedure's phase has got. Steps of kqe seed --demo: seed.c owns the step
 * list, the transaction and the secrets; this file owns what the three steps
 * write.
 *
 * Every row is a function of the step's fixed seed, the office and the row's
 * number only, and its id is DEMO_UUID_SQL('demo-<kind>:' || office || ':' || n),
 * so a second run finds the same rows (ON CONFLICT DO NOTHING) and a
 * procedure that moved on later only gains rows. Free text is made of
 * phrase lists, marked "(synthetisch)" and encrypted as kqe-api does it.
 */
#ifndef KQE_ADMIN_SEED_CASES_H
#define KQE_ADMIN_SEED_CASES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kqe/crypto.h"
#include "kqe/db.h"
#include "kqe/util.h"

/*
 * The demo's ids as SQL: md5('demo-<kind>:' || <office> || ':' || <n>) made an
 * RFC 9562 UUID of version 8 ("custom": a name-based id of our own) with the
 * variant bits 10, as strict UUID validators want; seed_cases.c computes the
 * same in C (demo_uuid).
 */
#define DEMO_UUID_SQL(name)                                                                             \
	"(SELECT (substr(h, 1, 12) || '8' || substr(h, 14, 3)"                                          \
	" || substr('89ab', ('x' || substr(h, 17, 1))::bit(4)::int % 4 + 1, 1) || substr(h, 18))::uuid" \
	" FROM md5(" name ") AS h)"

/* The cycle of the demo procedures (one per office, number 1). */
#define DEMO_CYCLE "2023-2028"

/* What every step of the demo state works with. */
struct demo_seed {
	struct db *db; /* in the seed's open transaction */
	const struct pseudonymizer *pseudonymizer; /* borrowed for the run */
	const struct keyring *keyring; /* borrowed for the run */
	/* Rows the submission steps stand for (existing or new), for the summary line. */
	long case_analyses;
	long structure_surveys;
	long topics;
	/* kqe seed --synthetic: case analyses added over the first offices (seed_synthetic.c). */
	long synthetic_offices, synthetic_cases;
};

/* splitmix64: small, well mixed, and the same on every platform (unlike rand()). */
uint64_t seed_prng_next(uint64_t *state);

/* Uniform enough in [lo, hi] for demo data (the modulo bias is below 1e-13). */
long seed_prng_range(uint64_t *state, long lo, long hi);

/* The demo's id of row n of kind for office (DEMO_UUID_SQL in C). 0, or -1. */
int demo_uuid(const char *kind, const char *office, long n, char out[37]) KQE_MUSTCHECK;

/*
 * The demo procedures as they are now: columns id, office_id, phase,
 * population under 18, by office. A result to PQclear, or NULL with summary set.
 */
PGresult *demo_procedures(struct demo_seed *s, char *summary, size_t size);

/*
 * Case analysis n of the procedure, with the demo's distributions: a JSON
 * object of the case_analyses columns (findings encrypted as kqe-api does),
 * or NULL if encryption failed.
 */
json_t *demo_case(
    struct demo_seed *s, const char *procedure, const char *office, long n, const char *id);

/*
 * The steps, run in this order after the procedures. Each returns 0, or -1
 * with summary naming what failed. The topics step writes the one summary
 * line of all three ("demo: N case analyses, M structure surveys, K
 * topics"); the others leave summary empty.
 */
int seed_case_analyses(struct demo_seed *s, char *summary, size_t size) KQE_MUSTCHECK;
int seed_structure_surveys(struct demo_seed *s, char *summary, size_t size) KQE_MUSTCHECK;
int seed_topics(struct demo_seed *s, char *summary, size_t size) KQE_MUSTCHECK;
/* The completed procedures' reports, finalised and accepted; its own summary line. */
int seed_procedure_reports(struct demo_seed *s, char *summary, size_t size) KQE_MUSTCHECK;
/* § 7 advice requests of two in five offices, in every status, with the advisors' answers. */
int seed_advice_requests(struct demo_seed *s, char *summary, size_t size) KQE_MUSTCHECK;
/* The three founding programmes, their calls, applications and clusters (seed_programmes.c). */
int seed_programmes(struct demo_seed *s, char *summary, size_t size) KQE_MUSTCHECK;
/* kqe seed --synthetic: s->synthetic_cases more case analyses through COPY (none if 0). */
int seed_synthetic_cases(struct demo_seed *s, char *summary, size_t size) KQE_MUSTCHECK;
/* Whether an earlier kqe seed --synthetic committed its cases: 1, 0, or -1 (failed). */
int seed_synthetic_done(struct demo_seed *s) KQE_MUSTCHECK;

#endif
