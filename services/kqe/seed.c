/*
 * kqe seed --demo — loads the deterministic synthetic demo state: a made-up
 * NRW with the real shape (186 offices, 95 LVR and 91 LWL, the real mix of
 * kinds), every name marked "(synthetisch)" and every row synthetic = true.
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
#include "kqe/db.h"
#include "offices_csv.h"

/* splitmix64: small, well mixed, and the same on every platform (unlike rand()). */
static uint64_t
prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Uniform enough in [lo, hi] for demo data (the modulo bias is below 1e-13). */
static long
prng_range(uint64_t *state, long lo, long hi)
{
	return lo + (long)(prng_next(state) % (uint64_t)(hi - lo + 1));
}

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
	snprintf(o->id, sizeof(o->id), "demo-%s-%03d",
	    strcmp(demo_blocks[block].region, "LVR") == 0 ? "lvr" : "lwl", region_serial);
	snprintf(o->name, sizeof(o->name), "%s %s%s (synthetisch)", title,
	    demo_stems[combo % ARRAY_LEN(demo_stems)], demo_endings[combo / ARRAY_LEN(demo_stems)]);
	o->kind = demo_blocks[block].kind;
	o->region = demo_blocks[block].region;
	o->population_under_18 = prng_range(rng, lo, hi);
	o->synthetic = true;
}

static int
seed_offices(struct db *db, char *summary, size_t size)
{
	uint64_t rng = DEMO_OFFICES_SEED;
	struct offices_counts counts = { 0, 0, 0 };
	struct office o;
	int serial = 0, lvr = 0, lwl = 0;

	for (size_t b = 0; b < ARRAY_LEN(demo_blocks); b++) {
		int *region_count = strcmp(demo_blocks[b].region, "LVR") == 0 ? &lvr : &lwl;
		for (int i = 0; i < demo_blocks[b].count; i++) {
			demo_office(serial++, ++*region_count, b, &rng, &o);
			if (offices_upsert(db, &o, &counts) != 0) {
				snprintf(summary, size, "office %s", o.id);
				return -1;
			}
		}
	}
	snprintf(summary, size, "demo: %d offices (%d LVR, %d LWL)", serial, lvr, lwl);
	return 0;
}

/* ---- the demo state ---- */

/*
 * Steps run in this order in one transaction. On success summary is the line
 * printed after commit; on failure it names what failed.
 */
static const struct {
	const char *name;
	int (*run)(struct db *db, char *summary, size_t size);
} demo_steps[] = {
	{ "offices", seed_offices },
};

static int
seed_demo(const struct config *cfg)
{
	char summaries[ARRAY_LEN(demo_steps)][128];
	char failed[200] = "begin";
	struct db *db = db_new(cfg->database_url, cfg->statement_timeout_ms, "kqe-seed");
	int rc = 1;

	if (db_connect(db) != 0) {
		fprintf(stderr, "kqe seed: cannot connect to the database: %.*s\n",
		    (int)strcspn(db_error_message(db), "\n"), db_error_message(db));
		goto out;
	}
	if (db_begin(db) != 0)
		goto fail;
	for (size_t i = 0; i < ARRAY_LEN(demo_steps); i++) {
		summaries[i][0] = '\0';
		if (demo_steps[i].run(db, summaries[i], sizeof(summaries[i])) != 0) {
			snprintf(
			    failed, sizeof(failed), "%s: %s", demo_steps[i].name, summaries[i]);
			goto fail;
		}
	}
	if (db_commit(db) != 0) {
		snprintf(failed, sizeof(failed), "commit");
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_LEN(demo_steps); i++)
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

int
cmd_seed(int argc, char **argv, const struct config *cfg)
{
	if (argc != 2 || strcmp(argv[1], "--demo") != 0) {
		fprintf(stderr, "usage: kqe seed --demo\n");
		return 2;
	}
	return seed_demo(cfg);
}
