/*
 * kqe seed --demo — loads the deterministic synthetic demo state: a made-up
 * NRW with the real shape (186 offices, 95 LVR and 91 LWL, the real mix of
 * kinds), every name marked "(synthetisch)" and every row synthetic = true;
 * three research institutes and one § 8 procedure of the 2023-2028 cycle per
 * office, about two thirds of them assigned to an institute; and, as far as
 * each procedure's phase has got, its case analyses, structure survey and
 * quality-development topics (seed_cases.c). Case references are
 * pseudonymised and free text encrypted with the keys kqe-api uses
 * (KQE_PSEUDONYM_KEY, KQE_DATA_KEYS), so the API reads the demo like real
 * submissions; without them the seed refuses to run.
 *
 * The state is a list of steps run in one transaction. Each step derives its
 * content only from its own fixed PRNG seed and writes with upserts that skip
 * unchanged rows, so the same binary always produces the same state, a second
 * run changes nothing, and adding a step (procedures, case analyses, ...) does
 * not change what earlier steps produce.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kqe/crypto.h"
#include "kqe/db.h"
#include "offices_csv.h"
#include "seed_cases.h"
#include "kqe/codelists.h"

/* ---- offices ---- */

#define DEMO_OFFICES_SEED 0x6b71652d6f666663u /* "kqe-offc" */

/* Blocks in id order: demo-lvr-001..013 are kreisfreie Städte, and so on. */
static const struct {
	const char *region;
	const char *kind;
	int count;
} demo_blocks[] = {
	{ "LVR", "kreisfreie_stadt", 13 },
	{ "LVR", "kreis", 12 },
	{ "LVR", "kreisangehoerige_stadt", 70 },
	{ "LWL", "kreisfreie_stadt", 9 },
	{ "LWL", "kreis", 18 },
	{ "LWL", "kreisangehoerige_stadt", 64 },
};

/* Plausible population under 18 per kind, and how the name starts. */
static const struct {
	const char *kind;
	long population_min, population_max;
	const char *title;
} demo_kinds[] = {
	{ "kreisfreie_stadt", 30000, 180000, "Stadt" },
	{ "kreis", 40000, 110000, "Kreis" },
	{ "kreisangehoerige_stadt", 6000, 35000, "Stadt" },
};

/*
 * Place names are a stem and an ending. DEMO_NAME_STEP is coprime to the
 * 14 * 14 = 196 combinations, so offices 0..185 get distinct, well mixed ones.
 */
static const char *const demo_stems[] = { "Muster", "Beispiel", "Linden", "Eichen", "Birken",
	"Tannen", "Mühlen", "Schön", "Rosen", "Wiesen", "Erlen", "Wald", "Sonnen", "Buchen" };
static const char *const demo_endings[] = { "stadt", "burg", "hausen", "feld", "heim", "dorf",
	"bach", "hagen", "brück", "au", "rode", "tal", "kirchen", "hof" };
#define DEMO_NAME_STEP 37

/* The id of the region_serial-th office (1-based) of block's region. */
static void
demo_office_id(size_t block, int region_serial, char id[OFFICES_ID_MAX + 1])
{
	snprintf(id, OFFICES_ID_MAX + 1, "demo-%s-%03d",
	    strcmp(demo_blocks[block].region, "LVR") == 0 ? "lvr" : "lwl", region_serial);
}

static void
demo_office(int serial, int region_serial, size_t block, uint64_t *rng, struct office *o)
{
	const char *title = "Stadt";
	long lo = 0, hi = 0;

	for (size_t k = 0; k < ARRAY_LEN(demo_kinds); k++) {
		if (strcmp(demo_kinds[k].kind, demo_blocks[block].kind) == 0) {
			title = demo_kinds[k].title;
			lo = demo_kinds[k].population_min;
			hi = demo_kinds[k].population_max;
		}
	}
	size_t combo =
	    ((size_t)serial * DEMO_NAME_STEP) % (ARRAY_LEN(demo_stems) * ARRAY_LEN(demo_endings));
	memset(o, 0, sizeof(*o));
	demo_office_id(block, region_serial, o->id);
	snprintf(o->name, sizeof(o->name), "%s %s%s (synthetisch)", title,
	    demo_stems[combo % ARRAY_LEN(demo_stems)], demo_endings[combo / ARRAY_LEN(demo_stems)]);
	o->kind = demo_blocks[block].kind;
	o->region = demo_blocks[block].region;
	o->population_under_18 = seed_prng_range(rng, lo, hi);
	o->synthetic = true;
}

static int
seed_offices(struct demo_seed *s, char *summary, size_t size)
{
	uint64_t rng = DEMO_OFFICES_SEED;
	struct offices_counts counts = { 0, 0, 0 };
	struct office o;
	int serial = 0, lvr = 0, lwl = 0;

	for (size_t b = 0; b < ARRAY_LEN(demo_blocks); b++) {
		int *region_count = strcmp(demo_blocks[b].region, "LVR") == 0 ? &lvr : &lwl;
		for (int i = 0; i < demo_blocks[b].count; i++) {
			demo_office(serial++, ++*region_count, b, &rng, &o);
			if (offices_upsert(s->db, &o, &counts) != 0) {
				snprintf(summary, size, "office %s", o.id);
				return -1;
			}
		}
	}
	snprintf(summary, size, "demo: %d offices (%d LVR, %d LWL)", serial, lvr, lwl);
	return 0;
}

/* ---- institutes ---- */

/* Fixed, no PRNG: the procedures step rotates over them in this order. */
static const struct {
	const char *id;
	const char *name;
} demo_institutes[] = {
	{ "demo-institut-1", "Institut für Kinderschutzforschung Nord (synthetisch)" },
	{ "demo-institut-2", "Institut für sozialpädagogische Qualitätsentwicklung (synthetisch)" },
	{ "demo-institut-3", "Forschungsstelle Hilfen zur Erziehung Westfalen (synthetisch)" },
};

static const struct db_stmt stmt_institute_upsert = { "seed_institute_upsert",
	"INSERT INTO institutes AS i (id, name) VALUES ($1, $2)"
	" ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"
	" WHERE i.name IS DISTINCT FROM EXCLUDED.name" };

/* Its line is printed by the procedures step, which depends on it. */
static int
seed_institutes(struct demo_seed *s, char *summary, size_t size)
{
	for (size_t i = 0; i < ARRAY_LEN(demo_institutes); i++) {
		const char *params[] = { demo_institutes[i].id, demo_institutes[i].name };
		PGresult *res = db_exec(s->db, &stmt_institute_upsert, 2, params);
		if (res == NULL) {
			snprintf(summary, size, "institute %s", demo_institutes[i].id);
			return -1;
		}
		PQclear(res);
	}
	summary[0] = '\0';
	return 0;
}

/* ---- procedures ---- */

#define DEMO_PROCEDURES_SEED 0x6b71652d70726f63u /* "kqe-proc" */
/* Due dates are 2024-01-01 plus 0..DEMO_DUE_DAYS days, i.e. up to 2028-06-30. */
#define DEMO_DUE_DAYS 1642

static const char *const demo_phases[] = { "planned", "case_selection", "case_analysis",
	"structure_analysis", "evaluation", "report", "completed" };

/*
 * The id is derived from the office and the procedure's number, so a second
 * run finds the same rows; DO NOTHING leaves procedures alone once they exist
 * (the demo may have moved them on).
 */
static const struct db_stmt stmt_procedure_insert = { "seed_procedure_insert",
	"INSERT INTO procedures (id, office_id, cycle, institute_id, phase, due_date)"
	" VALUES (" DEMO_UUID_SQL(
	    "'demo-procedure:' || $1 || ':1'") ", $1, $2, $3, $4,"
	                                       " DATE '2024-01-01' + $5::integer)"
	                                       " ON CONFLICT DO NOTHING" };

static int
seed_procedures(struct demo_seed *s, char *summary, size_t size)
{
	uint64_t rng = DEMO_PROCEDURES_SEED;
	char office_id[OFFICES_ID_MAX + 1], due[16];
	int count = 0, lvr = 0, lwl = 0;
	size_t assigned = 0;

	for (size_t b = 0; b < ARRAY_LEN(demo_blocks); b++) {
		int *region_count = strcmp(demo_blocks[b].region, "LVR") == 0 ? &lvr : &lwl;
		for (int i = 0; i < demo_blocks[b].count; i++) {
			const char *institute = NULL;
			demo_office_id(b, ++*region_count, office_id);
			const char *phase =
			    demo_phases[seed_prng_range(&rng, 0, ARRAY_LEN(demo_phases) - 1)];
			if (seed_prng_range(&rng, 0, 2) != 0) /* two in three */
				institute =
				    demo_institutes[assigned++ % ARRAY_LEN(demo_institutes)].id;
			snprintf(due, sizeof(due), "%ld", seed_prng_range(&rng, 0, DEMO_DUE_DAYS));
			const char *params[] = { office_id, DEMO_CYCLE, institute, phase, due };
			PGresult *res = db_exec(s->db, &stmt_procedure_insert, 5, params);
			if (res == NULL) {
				snprintf(summary, size, "procedure of office %s", office_id);
				return -1;
			}
			PQclear(res);
			count++;
		}
	}
	snprintf(summary, size, "demo: %zu institutes, %d procedures", ARRAY_LEN(demo_institutes),
	    count);
	return 0;
}

/* ---- § 10: foster-care providers and protection concepts ---- */

/*
 * Ten providers per region, each working for every tenth office of it (so every demo
 * office has one), named and seated synthetically. A number from md5 of the owner decides
 * the rest, so a second run writes the same: three in five offices and one in two providers
 * have a concept, adopted 2021 to 2025 and to be reviewed two years later (so a good part
 * is overdue), each element present four times in five, young people taking part in two
 * of three.
 */
#define DEMO_HASH(text) "('x' || substr(md5(" text "), 1, 8))::bit(32)::bigint"
static const struct db_stmt stmt_providers_insert = { "seed_providers_insert",
	"INSERT INTO providers (id, name, seat, region, synthetic)"
	" SELECT 'demo-traeger-' || lower(r) || '-' || lpad(n::text, 2, '0'),"
	" 'Pflegekinderdienst ' || r || ' ' || n || ' e. V. (synthetisch)',"
	" 'Demo-Ort ' || r || ' ' || n, r, true"
	" FROM unnest(ARRAY['LVR', 'LWL']) AS r, generate_series(1, 10) AS n"
	" ON CONFLICT (id) DO NOTHING" };
static const struct db_stmt stmt_provider_offices_insert = { "seed_provider_offices_insert",
	"INSERT INTO provider_offices (provider_id, office_id)"
	" SELECT 'demo-traeger-' || lower(o.region) || '-' || lpad((o.n % 10 + 1)::text, 2, '0'),"
	" o.id FROM (SELECT id, region, row_number() OVER (PARTITION BY region ORDER BY id) AS n"
	"  FROM offices WHERE id LIKE 'demo-%') AS o"
	" ON CONFLICT DO NOTHING" };
static const struct db_stmt stmt_concepts_insert = {
	"seed_concepts_insert",
	"INSERT INTO protection_concepts (id, office_id, provider_id, region, adopted_on,"
	" next_review_on, elements, participants, created_at, updated_at)"
	" SELECT " DEMO_UUID_SQL(
	    "'demo-concept:' || x.owner") ", x.office_id, x.provider_id,"
	                                  " x.region, x.adopted, x.adopted + interval '2 years',"
	                                  " (SELECT jsonb_object_agg(e, " DEMO_HASH(
	                                      "x.owner || e") " % 5 <> 0)"
	                                                      "  FROM unnest($1::text[]) AS e),"
	                                                      " ARRAY['foster_carers', 'professionals'] || CASE WHEN " DEMO_HASH(
	                                                          "x.owner || 'young'") " % 3 <> 0 THEN ARRAY['young_people'] ELSE '{}' END,"
	                                                                                " x.adopted::timestamptz, x.adopted::timestamptz"
	                                                                                " FROM (SELECT owner, office_id, provider_id, region,"
	                                                                                "   DATE '2021-01-01' + (" DEMO_HASH(
	                                                                                    "owner || 'adopted'") " % 1800)::int AS adopted,"
	                                                                                                          "   " DEMO_HASH(
	                                                                                                              "owner") " % 10 AS h, share"
	                                                                                                                       "  FROM (SELECT 'office:' || id AS owner, id AS office_id, NULL AS provider_id, region,"
	                                                                                                                       "    6 AS share FROM offices WHERE id LIKE 'demo-%'"
	                                                                                                                       "   UNION ALL SELECT 'provider:' || id, NULL, id, region, 5 FROM providers"
	                                                                                                                       "    WHERE id LIKE 'demo-traeger-%') AS o) AS x"
	                                                                                                                       " WHERE x.h < x.share ON CONFLICT DO NOTHING"
};

static int
seed_foster_care(struct demo_seed *s, char *summary, size_t size)
{
	static const struct db_stmt *const steps[] = { &stmt_providers_insert,
		&stmt_provider_offices_insert, &stmt_concepts_insert };
	/* The elements as a PostgreSQL array literal, from the code list. */
	char elements[512] = "{";
	for (const char *const *e = codelist_concept_element_values; *e != NULL; e++) {
		size_t n = strlen(elements);
		snprintf(elements + n, sizeof(elements) - n, "%s%s", n > 1 ? "," : "", *e);
	}
	strncat(elements, "}", sizeof(elements) - strlen(elements) - 1);
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		const char *params[] = { elements };
		PGresult *res = db_exec(s->db, steps[i], steps[i] == &stmt_concepts_insert ? 1 : 0,
		    steps[i] == &stmt_concepts_insert ? params : NULL);
		if (res == NULL) {
			snprintf(summary, size, "%s", steps[i]->name);
			return -1;
		}
		PQclear(res);
	}
	snprintf(summary, size, "demo: 20 foster-care providers and their protection concepts");
	return 0;
}

/* ---- the demo state ---- */

/*
 * Steps run in this order in one transaction. On success summary is the line
 * printed after commit ("" prints nothing); on failure it names what failed.
 */
static const struct {
	const char *name;
	int (*run)(struct demo_seed *s, char *summary, size_t size);
} demo_steps[] = {
	{ "offices", seed_offices },
	{ "institutes", seed_institutes },
	{ "procedures", seed_procedures },
	{ "case analyses", seed_case_analyses },
	{ "structure surveys", seed_structure_surveys },
	{ "topics", seed_topics },
	{ "procedure reports", seed_procedure_reports },
	{ "advice requests", seed_advice_requests },
	{ "foster care", seed_foster_care },
	{ "programmes", seed_programmes },
	{ "synthetic case analyses", seed_synthetic_cases },
};

/* What to seed beyond the demo: kqe seed --synthetic --offices K --cases N. */
struct synthetic {
	long offices, cases;
};

static int
seed_demo(const struct config *cfg, const struct pseudonymizer *pseudonymizer,
    const struct keyring *keyring, const struct synthetic *syn)
{
	char summaries[ARRAY_LEN(demo_steps)][128];
	char failed[512] = "begin";
	struct db *db = db_new(cfg->database_admin_url, cfg->statement_timeout_ms, "kqe-seed");
	struct demo_seed s = { .db = db,
		.pseudonymizer = pseudonymizer,
		.keyring = keyring,
		.synthetic_offices = syn->offices,
		.synthetic_cases = syn->cases };
	int rc = 1;

	if (db_connect(db) != 0) {
		fprintf(stderr, "kqe seed: cannot connect to the database: %.*s\n",
		    (int)strcspn(db_error_message(db), "\n"), db_error_message(db));
		goto out;
	}
	if (db_begin(db) != 0)
		goto fail;
	if (syn->cases > 0) {
		/* The demo's steps over a large state take long, and would add nothing. */
		int done = seed_synthetic_done(&s);
		if (done != 0) {
			snprintf(failed, sizeof(failed), "looking for earlier synthetic cases");
			if (done < 0)
				goto fail;
			db_rollback(db);
			printf("synthetic: already seeded, nothing added\n");
			rc = 0;
			goto out;
		}
	}
	for (size_t i = 0; i < ARRAY_LEN(demo_steps); i++) {
		summaries[i][0] = '\0';
		if (demo_steps[i].run(&s, summaries[i], sizeof(summaries[i])) != 0) {
			snprintf(failed, sizeof(failed), "%s: %.*s", demo_steps[i].name,
			    (int)sizeof(summaries[i]), summaries[i]);
			goto fail;
		}
	}
	if (db_commit(db) != 0) {
		snprintf(failed, sizeof(failed), "commit");
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_LEN(demo_steps); i++)
		if (summaries[i][0] != '\0')
			printf("%s\n", summaries[i]);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "kqe seed: %s: database: %.*s (SQLSTATE %s); nothing seeded\n", failed,
	    (int)strcspn(db_error_message(db), "\n"), db_error_message(db), db_error_sqlstate(db));
	db_rollback(db);
out:
	db_free(db);
	return rc;
}

/*
 * The demo's case data is pseudonymised and encrypted like real submissions,
 * so the seed needs the API's keys; a missing or bad key is a configuration
 * error (exit 2) found before anything is written.
 */
static int
seed_with_keys(const struct config *cfg, const struct synthetic *syn)
{
	struct pseudonymizer *pseudonymizer = NULL;
	struct keyring *keyring = NULL;
	char err[256];
	int rc = 2;

	if (strcmp(cfg->pseudonym_key, "-") == 0 || strcmp(cfg->data_keys, "-") == 0) {
		fprintf(stderr,
		    "kqe seed: %s must be set (as for kqe-api): the demo's case data is "
		    "pseudonymised and encrypted with the API's keys\n",
		    strcmp(cfg->pseudonym_key, "-") == 0 ? "KQE_PSEUDONYM_KEY" : "KQE_DATA_KEYS");
		return 2;
	}
	if ((pseudonymizer = pseudonymizer_new(cfg->pseudonym_key, err, sizeof(err))) == NULL) {
		fprintf(stderr, "kqe seed: KQE_PSEUDONYM_KEY: %s\n", err);
		goto out;
	}
	if ((keyring = keyring_new(cfg->data_keys, err, sizeof(err))) == NULL) {
		fprintf(stderr, "kqe seed: KQE_DATA_KEYS: %s\n", err);
		goto out;
	}
	rc = seed_demo(cfg, pseudonymizer, keyring, syn);
out:
	keyring_free(keyring);
	pseudonymizer_free(pseudonymizer);
	return rc;
}

/* A count option's value: 1..max, else -1. */
static long
count_arg(const char *text, long max)
{
	char *end;
	long v = strtol(text, &end, 10);
	return *text != '\0' && *end == '\0' && v >= 1 && v <= max ? v : -1;
}

int
cmd_seed(int argc, char **argv, const struct config *cfg)
{
	static const char usage[] =
	    "usage: kqe seed --demo\n"
	    "       kqe seed --synthetic [--offices K] [--cases N]   (K of the demo's 186 offices,"
	    " default 186; N more case analyses, default 1000000)\n";
	struct synthetic syn = { 0, 0 };
	if (argc == 2 && strcmp(argv[1], "--demo") == 0)
		return seed_with_keys(cfg, &syn);
	if (argc < 2 || strcmp(argv[1], "--synthetic") != 0 || argc % 2 != 0) {
		fputs(usage, stderr);
		return 2;
	}
	syn = (struct synthetic){ 186, 1000000 };
	for (int i = 2; i + 1 < argc; i += 2) {
		long *field = strcmp(argv[i], "--offices") == 0 ? &syn.offices
		              : strcmp(argv[i], "--cases") == 0 ? &syn.cases
		                                                : NULL;
		long max = field == &syn.offices ? 186 : 100000000;
		if (field == NULL || (*field = count_arg(argv[i + 1], max)) < 0) {
			fprintf(stderr, "kqe seed: %s: %s\n", argv[i],
			    field == NULL ? "unknown option" : "not a count in range");
			fputs(usage, stderr);
			return 2;
		}
	}
	return seed_with_keys(cfg, &syn);
}
