/*
 * The demo state's case analyses, structure surveys and topics (see
 * seed_cases.h). The distributions follow the official NRW § 8a statistics
 * of 2022 (§ 99 (6) SGB VIII: 56,914 assessments) where they name one, and
 * are plausible guesses elsewhere; they make the statistics and report pages
 * look like a real state, not a uniform one.
 */
#include "seed_cases.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/codelists.h"
#include "offices_csv.h"

#define DEMO_CASES_SEED 0x6b71652d63617365u /* "kqe-case" */
#define DEMO_SURVEYS_SEED 0x6b71652d73757276u /* "kqe-surv" */
#define DEMO_TOPICS_SEED 0x6b71652d746f7063u /* "kqe-topc" */

/* Rows per INSERT: one round trip each, small enough for any statement timeout. */
#define DEMO_BATCH 200

uint64_t
seed_prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

long
seed_prng_range(uint64_t *state, long lo, long hi)
{
	return lo + (long)(seed_prng_next(state) % (uint64_t)(hi - lo + 1));
}

/*
 * The generator of one row: the step's seed, the office (FNV-1a) and the
 * row's number, so a row does not depend on which other rows exist.
 *
 * Below, every draw from a generator is its own statement (or a call's only
 * draw): C leaves the order of a call's arguments and of an operator's
 * operands open, and the demo must not depend on the compiler.
 */
static uint64_t
row_rng(uint64_t step_seed, const char *office, long n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (const unsigned char *p = (const unsigned char *)office; *p; p++)
		h = (h ^ *p) * 0x100000001b3u;
	uint64_t state = step_seed ^ h ^ ((uint64_t)n * 0xd1342543de82ef95u);
	(void)seed_prng_next(&state);
	return state;
}

static bool
chance(uint64_t *rng, long percent)
{
	return seed_prng_range(rng, 0, 99) < percent;
}

/* A code with its weight; a table's weights need not add up to anything. */
struct weighted {
	const char *code;
	unsigned weight;
};

static size_t
pick(uint64_t *rng, const struct weighted *w, size_t n)
{
	long total = 0;
	for (size_t i = 0; i < n; i++)
		total += w[i].weight;
	long r = seed_prng_range(rng, 0, total - 1);
	for (size_t i = 0; i < n; i++) {
		if (r < (long)w[i].weight)
			return i;
		r -= (long)w[i].weight;
	}
	return n - 1;
}

#define PICK(rng, table) pick((rng), (table), ARRAY_LEN(table))
#define PICK_CODE(rng, table) ((table)[PICK(rng, table)].code)
/* One of an array of strings, uniformly. */
#define PICK_PHRASE(rng, array) ((array)[seed_prng_range((rng), 0, (long)ARRAY_LEN(array) - 1)])

/* ---- distributions ---- */

/* NRW 2022: assessments by result; the index is used below (0 acute, 1 latent). */
static const struct weighted demo_results[] = {
	{ "akute_gefaehrdung", 8149 },
	{ "latente_gefaehrdung", 6262 },
	{ "hilfebedarf_ohne_gefaehrdung", 19670 },
	{ "weder_gefaehrdung_noch_hilfebedarf", 22833 },
};
enum { RESULT_ACUTE, RESULT_LATENT, RESULT_HELP, RESULT_NEITHER };

/*
 * Forms, in the code list's order. Their shares of endangerments are 58, 26,
 * 33 and 5 % (several may apply): the first form is drawn by these weights
 * and a second one in DEMO_SECOND_FORM % of cases, which together give about
 * those shares.
 */
static const struct weighted demo_forms[] = {
	{ "vernachlaessigung", 61 },
	{ "koerperliche_misshandlung", 24 },
	{ "psychische_misshandlung", 31 },
	{ "sexuelle_gewalt", 5 },
};
#define DEMO_SECOND_FORM 22

static const struct weighted demo_sexes[] = {
	{ "maennlich", 495 },
	{ "weiblich", 495 },
	{ "divers", 3 },
	{ "ohne_angabe", 7 },
};

/* Age in years at closing, 0..17, per mille: young children are most of the assessments. */
static const unsigned demo_age_weights[18] = { 85, 70, 65, 63, 63, 64, 60, 60, 60, 53, 53, 54, 50,
	50, 45, 45, 30, 30 };

static const struct weighted demo_parents_ages[] = {
	{ "unter_18", 1 },
	{ "18_bis_unter_27", 15 },
	{ "27_und_aelter", 78 },
	{ "unbekannt", 6 },
};

static const struct weighted demo_reporters[] = {
	{ "polizei_gericht_staatsanwaltschaft", 28 },
	{ "schule", 12 },
	{ "kita_kindertagespflege", 5 },
	{ "gesundheitswesen", 7 },
	{ "verwandte", 5 },
	{ "bekannte_nachbarn", 7 },
	{ "eltern", 6 },
	{ "minderjaehrige_selbst", 3 },
	{ "soziale_dienste_jugendamt", 8 },
	{ "beratungsstelle", 2 },
	{ "einrichtung_jugendhilfe", 5 },
	{ "anonym", 6 },
	{ "sonstige", 6 },
};

static const struct weighted demo_selections[] = {
	{ "random", 80 },
	{ "added_by_office", 20 },
};

/* Ratings 1 (fully met) .. 4 (not met), mostly 2. */
static const struct weighted demo_ratings[] = {
	{ "1", 25 },
	{ "2", 45 },
	{ "3", 22 },
	{ "4", 8 },
};

/* How many learning themes a case analysis names. */
static const struct weighted demo_theme_counts[] = {
	{ "0", 25 },
	{ "1", 35 },
	{ "2", 25 },
	{ "3", 15 },
};

/* Percent true by result (acute, latent, help, neither). */
struct by_result {
	const char *name;
	long percent[4];
};

static const struct by_result demo_process[] = {
	{ "direct_impression", { 97, 88, 85, 78 } },
	{ "several_professionals", { 90, 80, 70, 70 } },
	{ "child_involved", { 70, 70, 70, 70 } },
	{ "parents_involved", { 90, 90, 90, 90 } },
	{ "insofa_consulted", { 60, 55, 35, 30 } },
	{ "family_court_called", { 45, 18, 6, 2 } },
	{ "taken_into_care", { 40, 6, 3, 1 } },
	{ "services_before", { 45, 45, 40, 35 } },
	{ "services_after", { 90, 85, 80, 10 } },
};

/* Closing months: the procedure's window (July five years before the cycle on), before 2023-07. */
#define DEMO_CLOSED_FIRST (2018 * 12 + 6)
#define DEMO_CLOSED_LAST (2023 * 12 + 5)

#define DEMO_CASES_SELECTION 5 /* per procedure still selecting its cases */
#define DEMO_CASES_MIN 18 /* per procedure from case_analysis on */
#define DEMO_CASES_MAX 22

/* Findings: one sentence from each list. */
static const char *const demo_findings_done[] = {
	"Die Meldung wurde am Tag des Eingangs vollständig erfasst",
	"Die Ersteinschätzung erfolgte im Zusammenwirken zweier Fachkräfte",
	"Der Hausbesuch fand zeitnah und unangekündigt statt",
	"Die Gefährdungseinschätzung wurde nach dem Hausbesuch fortgeschrieben",
	"Das Kind wurde altersgerecht in die Einschätzung einbezogen",
	"Die Eltern wurden früh und transparent beteiligt",
};
static const char *const demo_findings_gaps[] = {
	"die Sicht des Kindes ist in der Akte kaum nachvollziehbar",
	"die Abstimmung mit der Schule verlief verzögert",
	"die Schutzvereinbarung wurde nicht schriftlich festgehalten",
	"die insoweit erfahrene Fachkraft wurde erst spät hinzugezogen",
	"die Übergabe an den Folgedienst blieb unvollständig",
	"die Begründung der Risikoeinschätzung ist lückenhaft dokumentiert",
};
static const char *const demo_findings_advice[] = {
	"Empfehlung: Checkliste für die Fallübergabe nutzen.",
	"Empfehlung: kollegiale Beratung früher einplanen.",
	"Empfehlung: Gespräche mit dem Kind gesondert dokumentieren.",
	"Empfehlung: Absprachen mit Polizei und Schule auffrischen.",
	"Empfehlung: Schutzvereinbarungen schriftlich fassen und nachhalten.",
};

/* Topics: what is to be done about a theme, and the priorities and statuses. */
static const char *const demo_topic_actions[] = {
	"Qualitätszirkel zum Thema",
	"Fortbildung für das ASD-Team zum Thema",
	"Überarbeitung der Arbeitshilfe zum Thema",
	"Fallwerkstatt mit den Kooperationspartnern zum Thema",
};
static const char *const demo_topic_outcomes[] = {
	"Ergebnisse im Jugendhilfeausschuss vorstellen.",
	"Umsetzung in der Fachaufsicht nachhalten.",
	"Wirkung in der nächsten Fallanalyse prüfen.",
};

static const struct weighted demo_priorities[] = {
	{ "high", 30 },
	{ "medium", 50 },
	{ "low", 20 },
};

/* Topic statuses by the procedure's phase: further along the more is done. */
static const struct weighted demo_status_evaluation[] = {
	{ "identified", 70 },
	{ "in_progress", 30 },
};
static const struct weighted demo_status_report[] = {
	{ "identified", 40 },
	{ "in_progress", 50 },
	{ "dropped", 10 },
};
static const struct weighted demo_status_completed[] = {
	{ "in_progress", 35 },
	{ "implemented", 50 },
	{ "dropped", 15 },
};

/* A table's codes must be in their code list, or the API would reject the rows it reads. */
static int
check_codes(const char *list, const struct weighted *w, size_t n, char *summary, size_t size)
{
	const struct codelist *cl = codelist_find(list);
	for (size_t i = 0; i < n; i++) {
		if (!codelist_has(cl, w[i].code)) {
			snprintf(summary, size, "code %s is not in code list %s", w[i].code, list);
			return -1;
		}
	}
	return 0;
}

#define CHECK_CODES(list, table, summary, size)                                                    \
	check_codes((list), (table), ARRAY_LEN(table), (summary), (size))

/* ---- ids, months ---- */

/* DEMO_UUID_SQL('demo-<kind>:' || office || ':' || n), as PostgreSQL writes it. */
int
demo_uuid(const char *kind, const char *office, long n, char out[37])
{
	char name[128], hex[33];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	int w = snprintf(name, sizeof(name), "demo-%s:%s:%ld", kind, office, n);
	if (w < 0 || (size_t)w >= sizeof(name) ||
	    EVP_Digest(name, (size_t)w, md, &len, EVP_md5(), NULL) != 1 || len != 16)
		return -1;
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x80); /* version 8 */
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* variant 10 */
	hex_encode(md, 16, hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
	return 0;
}

/* A month as year * 12 + (month - 1) (of years 0..9999), written as the date of its day 1..28. */
static void
month_date(long month, long day, char out[11])
{
	unsigned long m = (unsigned long)month, d = (unsigned long)day;
	snprintf(out, 11, "%04lu-%02lu-%02lu", m / 12 % 10000, m % 12 + 1, d % 100);
}

/* ---- the demo procedures ---- */

static const struct db_stmt stmt_procedures = { "seed_demo_procedures",
	"SELECT p.id::text, p.office_id, p.phase, coalesce(o.population_under_18, 0)"
	" FROM procedures p JOIN offices o ON o.id = p.office_id"
	" WHERE p.cycle = $1 AND p.id = " DEMO_UUID_SQL(
	    "'demo-procedure:' || p.office_id || ':1'") " ORDER BY p.office_id" };

/* Index of phase in the procedure's order, or -1. */
static int
phase_rank(const char *phase)
{
	for (int i = 0; codelist_procedure_phase_values[i] != NULL; i++)
		if (strcmp(codelist_procedure_phase_values[i], phase) == 0)
			return i;
	return -1;
}

/*
 * The demo procedures as they are now (the demo may have moved them on):
 * columns id, office_id, phase, population under 18. A new result the caller
 * PQclears, or NULL with summary set.
 */
PGresult *
demo_procedures(struct demo_seed *s, char *summary, size_t size)
{
	const char *params[] = { DEMO_CYCLE };
	PGresult *res = db_exec(s->db, &stmt_procedures, 1, params);
	if (res == NULL)
		snprintf(summary, size, "reading the demo procedures");
	return res;
}

/* ---- batches ---- */

/* Rows for one statement that takes them as a jsonb array ($1). */
struct batch {
	const struct db_stmt *stmt;
	json_t *rows;
};

static int
batch_flush(struct demo_seed *s, struct batch *b)
{
	if (json_array_size(b->rows) == 0)
		return 0;
	char *text = json_dumps(b->rows, JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (text == NULL)
		return -1;
	const char *params[] = { text };
	PGresult *res = db_exec(s->db, b->stmt, 1, params);
	free(text);
	json_array_clear(b->rows);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Takes ownership of row. */
static int
batch_add(struct demo_seed *s, struct batch *b, json_t *row)
{
	if (row == NULL || json_array_append_new(b->rows, row) != 0)
		return -1;
	return json_array_size(b->rows) >= DEMO_BATCH ? batch_flush(s, b) : 0;
}

/* The envelope of text, encrypted as kqe-api does for record id's field (AAD "kind:id:field"). */
static json_t *
encrypted(
    struct demo_seed *s, const char *text, const char *kind, const char *id, const char *field)
{
	char aad[128];
	snprintf(aad, sizeof(aad), "%s:%s:%s", kind, id, field);
	char *env = keyring_encrypt(s->keyring, text, strlen(text), aad);
	json_t *v = env != NULL ? json_string(env) : NULL;
	free(env);
	return v;
}

/* ---- case analyses ---- */

/* Columns of a case analysis row, in the order of the jsonb recordset below. */
static const struct db_stmt stmt_cases_insert = { "seed_cases_insert",
	"INSERT INTO case_analyses (id, procedure_id, office_id, case_pseudonym, selection,"
	" closed_month, child_sex, child_birth_month, parents_age_group, reported_by, result,"
	" endangerment_forms, days_to_first_contact, direct_impression, several_professionals,"
	" child_involved, parents_involved, insofa_consulted, family_court_called,"
	" taken_into_care, services_before, services_after, ratings, learning_themes,"
	" findings_enc)"
	" SELECT x.* FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, procedure_id uuid,"
	" office_id text, case_pseudonym text, selection text, closed_month date, child_sex text,"
	" child_birth_month date, parents_age_group text, reported_by text, result text,"
	" endangerment_forms text[], days_to_first_contact integer, direct_impression boolean,"
	" several_professionals boolean, child_involved boolean, parents_involved boolean,"
	" insofa_consulted boolean, family_court_called boolean, taken_into_care boolean,"
	" services_before boolean, services_after boolean, ratings jsonb, learning_themes text[],"
	" findings_enc text)"
	" ON CONFLICT DO NOTHING" };

/* One or two forms of endangerment, in the code list's order. */
static json_t *
demo_case_forms(uint64_t *rng)
{
	bool chosen[ARRAY_LEN(demo_forms)] = { false };
	chosen[PICK(rng, demo_forms)] = true;
	if (chance(rng, DEMO_SECOND_FORM)) {
		size_t second;
		do
			second = PICK(rng, demo_forms);
		while (chosen[second]);
		chosen[second] = true;
	}
	json_t *forms = json_array();
	for (size_t i = 0; i < ARRAY_LEN(demo_forms); i++)
		if (chosen[i])
			json_array_append_new(forms, json_string(demo_forms[i].code));
	return forms;
}

/* Ratings for most dimensions; case transfer only where there was one. */
static json_t *
demo_case_ratings(uint64_t *rng)
{
	json_t *ratings = json_object();
	for (const char *const *d = codelist_quality_dimension_values; *d != NULL; d++) {
		if (!chance(rng, strcmp(*d, "case_transfer") == 0 ? 35 : 92))
			continue;
		json_object_set_new(
		    ratings, *d, json_integer(strtol(PICK_CODE(rng, demo_ratings), NULL, 10)));
	}
	return ratings;
}

/* count distinct codes of a NULL-terminated list, in the list's order. */
static json_t *
distinct_codes(uint64_t *rng, const char *const *codes, long count)
{
	size_t n = 0;
	while (codes[n] != NULL)
		n++;
	bool chosen[32] = { false };
	if (n > ARRAY_LEN(chosen))
		n = ARRAY_LEN(chosen);
	for (long k = 0; k < count && k < (long)n; k++) {
		size_t i;
		do
			i = (size_t)seed_prng_range(rng, 0, (long)n - 1);
		while (chosen[i]);
		chosen[i] = true;
	}
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++)
		if (chosen[i])
			json_array_append_new(out, json_string(codes[i]));
	return out;
}

static long
demo_first_contact_days(uint64_t *rng, size_t result)
{
	static const unsigned acute[] = { 60, 25, 6, 4, 3, 2 };
	static const unsigned other[] = { 25, 25, 15, 15, 10, 10 };
	const unsigned *w = result == RESULT_ACUTE ? acute : other;
	if (result != RESULT_ACUTE && chance(rng, 15))
		return seed_prng_range(rng, 6, 30);
	long r = seed_prng_range(rng, 0, 99);
	for (long d = 0; d < 6; d++) {
		if (r < (long)w[d])
			return d;
		r -= (long)w[d];
	}
	return 5;
}

static long
demo_age_years(uint64_t *rng)
{
	long r = seed_prng_range(rng, 0, 999);
	for (long age = 0; age < 18; age++) {
		if (r < (long)demo_age_weights[age])
			return age;
		r -= (long)demo_age_weights[age];
	}
	return 17;
}

/* Case n of the procedure as a row for stmt_cases_insert; NULL if encryption fails. */
json_t *
demo_case(struct demo_seed *s, const char *procedure, const char *office, long n, const char *id)
{
	uint64_t rng = row_rng(DEMO_CASES_SEED, office, n);
	char closed[11], born[11], reference[48], pseudo[PSEUDONYM_LEN + 1], findings[512];

	long closed_month = seed_prng_range(&rng, DEMO_CLOSED_FIRST, DEMO_CLOSED_LAST);
	/* Under 18 in the closing month and born no later than it. */
	long age_months = demo_age_years(&rng) * 12;
	age_months += seed_prng_range(&rng, 0, 11);
	month_date(closed_month, 1, closed);
	month_date(closed_month - age_months, 1, born);
	/* A made-up file number; only its pseudonym is stored. */
	snprintf(reference, sizeof(reference), "DEMO-51/%ld-%04ld", closed_month / 12, n);
	pseudonym(s->pseudonymizer, office, reference, pseudo);

	/* One draw after the other: the order of a call's arguments is unspecified. */
	const char *selection = PICK_CODE(&rng, demo_selections);
	const char *sex = PICK_CODE(&rng, demo_sexes);
	const char *parents_age = PICK_CODE(&rng, demo_parents_ages);
	const char *reporter = PICK_CODE(&rng, demo_reporters);
	size_t result = PICK(&rng, demo_results);
	bool endangered = result == RESULT_ACUTE || result == RESULT_LATENT;
	json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id,
	    "procedure_id", procedure, "office_id", office, "case_pseudonym", pseudo, "selection",
	    selection, "closed_month", closed, "child_sex", sex, "child_birth_month", born,
	    "parents_age_group", parents_age, "reported_by", reporter, "result",
	    demo_results[result].code);
	if (row == NULL)
		return NULL;
	json_object_set_new(
	    row, "endangerment_forms", endangered ? demo_case_forms(&rng) : json_array());
	json_object_set_new(
	    row, "days_to_first_contact", json_integer(demo_first_contact_days(&rng, result)));
	for (size_t i = 0; i < ARRAY_LEN(demo_process); i++)
		json_object_set_new(row, demo_process[i].name,
		    json_boolean(chance(&rng, demo_process[i].percent[result])));
	json_object_set_new(row, "ratings", demo_case_ratings(&rng));
	long themes = strtol(PICK_CODE(&rng, demo_theme_counts), NULL, 10);
	json_object_set_new(
	    row, "learning_themes", distinct_codes(&rng, codelist_learning_theme_values, themes));

	const char *done = PICK_PHRASE(&rng, demo_findings_done);
	const char *gap = PICK_PHRASE(&rng, demo_findings_gaps);
	const char *advice = PICK_PHRASE(&rng, demo_findings_advice);
	snprintf(findings, sizeof(findings), "%s; %s. %s (synthetisch)", done, gap, advice);
	json_t *env = encrypted(s, findings, "case_analysis", id, "findings");
	if (env == NULL) {
		json_decref(row);
		return NULL;
	}
	json_object_set_new(row, "findings_enc", env);
	return row;
}

static int
check_case_codes(char *summary, size_t size)
{
	if (CHECK_CODES("assessment_result", demo_results, summary, size) != 0 ||
	    CHECK_CODES("endangerment_form", demo_forms, summary, size) != 0 ||
	    CHECK_CODES("sex", demo_sexes, summary, size) != 0 ||
	    CHECK_CODES("parents_age_group", demo_parents_ages, summary, size) != 0 ||
	    CHECK_CODES("reporter", demo_reporters, summary, size) != 0 ||
	    CHECK_CODES("selection", demo_selections, summary, size) != 0 ||
	    CHECK_CODES("rating", demo_ratings, summary, size) != 0)
		return -1;
	return 0;
}

int
seed_case_analyses(struct demo_seed *s, char *summary, size_t size)
{
	struct batch b = { &stmt_cases_insert, json_array() };
	const int selecting = phase_rank("case_selection");
	const int analysing = phase_rank("case_analysis");
	char id[37];
	int rc = -1;

	summary[0] = '\0';
	s->case_analyses = 0;
	if (check_case_codes(summary, size) != 0) {
		json_decref(b.rows);
		return -1;
	}
	PGresult *res = demo_procedures(s, summary, size);
	if (res == NULL) {
		json_decref(b.rows);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *procedure = PQgetvalue(res, i, 0), *office = PQgetvalue(res, i, 1);
		int rank = phase_rank(PQgetvalue(res, i, 2));
		if (rank < selecting)
			continue;
		uint64_t rng = row_rng(DEMO_CASES_SEED, office, 0);
		long count = rank < analysing
		                 ? DEMO_CASES_SELECTION
		                 : seed_prng_range(&rng, DEMO_CASES_MIN, DEMO_CASES_MAX);
		for (long n = 1; n <= count; n++) {
			json_t *row = NULL;
			if (demo_uuid("case", office, n, id) != 0 ||
			    (row = demo_case(s, procedure, office, n, id)) == NULL) {
				snprintf(
				    summary, size, "case analysis %ld of office %s", n, office);
				goto out;
			}
			if (batch_add(s, &b, row) != 0) {
				snprintf(summary, size, "case analyses up to %ld of office %s", n,
				    office);
				goto out;
			}
			s->case_analyses++;
		}
	}
	if (batch_flush(s, &b) != 0) {
		snprintf(summary, size, "the last case analyses");
		goto out;
	}
	rc = 0;
out:
	PQclear(res);
	json_decref(b.rows);
	return rc;
}

/* ---- structure surveys ---- */

static const struct db_stmt stmt_surveys_insert = { "seed_surveys_insert",
	"INSERT INTO structure_surveys (id, procedure_id, office_id, body)"
	" SELECT x.* FROM jsonb_to_recordset($1::jsonb)"
	" AS x(id uuid, procedure_id uuid, office_id text, body jsonb)"
	" ON CONFLICT DO NOTHING" };

/* A reference date from September 2023 (the cycle started in July) to June 2025: past, fixed. */
#define DEMO_REFERENCE_FIRST (2023 * 12 + 8)
#define DEMO_REFERENCE_LAST (2025 * 12 + 5)

static long
clamp(long v, long lo, long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Tenths as a JSON number with one decimal. */
static json_t *
tenths(long v)
{
	return json_real((double)v / 10.0);
}

/*
 * The survey body, every field the API stores (null where not reported).
 * Staff scales with the population under 18: one FTE per 1,000–2,000.
 */
static json_t *
demo_survey_body(const char *office, long population)
{
	uint64_t rng = row_rng(DEMO_SURVEYS_SEED, office, 1);
	char reference[11], revised[11];

	long month = seed_prng_range(&rng, DEMO_REFERENCE_FIRST, DEMO_REFERENCE_LAST);
	month_date(month, seed_prng_range(&rng, 1, 28), reference);
	long staff = clamp(population * 10 / seed_prng_range(&rng, 1000, 2000), 30, 20000);
	bool written = chance(&rng, 95);
	long revised_month = month - seed_prng_range(&rng, 1, 84);
	month_date(revised_month, seed_prng_range(&rng, 1, 28), revised);

	json_t *body = json_object();
	json_object_set_new(body, "reference_date", json_string(reference));
	json_object_set_new(body, "asd_staff_fte", tenths(staff));
	json_object_set_new(
	    body, "vacancies_fte", tenths(staff * seed_prng_range(&rng, 0, 15) / 100));
	json_object_set_new(body, "staff_turnover_12m",
	    json_integer((staff * seed_prng_range(&rng, 5, 25) + 500) / 1000));
	json_object_set_new(
	    body, "share_experience_under_2y_percent", tenths(seed_prng_range(&rng, 0, 600)));
	json_object_set_new(body, "cases_per_fte", tenths(seed_prng_range(&rng, 200, 800)));
	json_object_set_new(body, "written_8a_procedure", json_boolean(written));
	json_object_set_new(
	    body, "written_8a_last_revised", written ? json_string(revised) : json_null());
	json_object_set_new(body, "on_call_24_7", json_boolean(chance(&rng, 70)));
	json_object_set_new(body, "agreements_8a4_count",
	    json_integer(clamp(population / seed_prng_range(&rng, 250, 800), 5, 300)));
	long insofa = population / seed_prng_range(&rng, 3000, 6000);
	insofa += seed_prng_range(&rng, 0, 3);
	json_object_set_new(body, "insofa_pool_size", json_integer(clamp(insofa, 1, 40)));
	json_object_set_new(body, "supervision", json_boolean(chance(&rng, 85)));
	json_object_set_new(body, "training_hours_per_fte", tenths(seed_prng_range(&rng, 50, 600)));
	json_object_set_new(body, "standard_risk_instrument", json_boolean(chance(&rng, 80)));
	json_t *coop = json_object();
	json_object_set_new(coop, "police", json_boolean(chance(&rng, 85)));
	json_object_set_new(coop, "health", json_boolean(chance(&rng, 70)));
	json_object_set_new(coop, "schools", json_boolean(chance(&rng, 65)));
	json_object_set_new(coop, "family_court", json_boolean(chance(&rng, 75)));
	json_object_set_new(body, "cooperation", coop);
	json_object_set_new(body, "child_complaint_procedure", json_boolean(chance(&rng, 55)));
	return body;
}

int
seed_structure_surveys(struct demo_seed *s, char *summary, size_t size)
{
	struct batch b = { &stmt_surveys_insert, json_array() };
	const int surveying = phase_rank("structure_analysis");
	char id[37];
	int rc = -1;

	summary[0] = '\0';
	s->structure_surveys = 0;
	PGresult *res = demo_procedures(s, summary, size);
	if (res == NULL) {
		json_decref(b.rows);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *procedure = PQgetvalue(res, i, 0), *office = PQgetvalue(res, i, 1);
		if (phase_rank(PQgetvalue(res, i, 2)) < surveying)
			continue;
		if (demo_uuid("survey", office, 1, id) != 0) {
			snprintf(summary, size, "structure survey of office %s", office);
			goto out;
		}
		json_t *row = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "procedure_id", procedure,
		    "office_id", office, "body",
		    demo_survey_body(office, strtol(PQgetvalue(res, i, 3), NULL, 10)));
		if (batch_add(s, &b, row) != 0) {
			snprintf(summary, size, "structure surveys up to office %s", office);
			goto out;
		}
		s->structure_surveys++;
	}
	if (batch_flush(s, &b) != 0) {
		snprintf(summary, size, "the last structure surveys");
		goto out;
	}
	rc = 0;
out:
	PQclear(res);
	json_decref(b.rows);
	return rc;
}

/* ---- topics ---- */

static const struct db_stmt stmt_topics_insert = { "seed_topics_insert",
	"INSERT INTO topics (id, procedure_id, office_id, theme, priority, status,"
	" description_enc, follow_up_date)"
	" SELECT x.* FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, procedure_id uuid,"
	" office_id text, theme text, priority text, status text, description_enc text,"
	" follow_up_date date)"
	" ON CONFLICT DO NOTHING" };

/*
 * The follow-up: open topics are looked at again in 2026/27, implemented
 * ones were checked in 2024–2026, dropped ones have none.
 */
static json_t *
demo_follow_up(uint64_t *rng, const char *status)
{
	char date[11];
	long month;
	if (strcmp(status, "dropped") == 0)
		return json_null();
	if (strcmp(status, "implemented") == 0)
		month = seed_prng_range(rng, 2024 * 12 + 6, 2026 * 12 + 5);
	else
		month = seed_prng_range(rng, 2026 * 12, 2027 * 12 + 11);
	month_date(month, seed_prng_range(rng, 1, 28), date);
	return json_string(date);
}

/* Topic n of a procedure in phase rank; NULL if encryption fails. */
static json_t *
demo_topic(struct demo_seed *s, const char *procedure, const char *office, long n, const char *id,
    const char *theme, int rank)
{
	uint64_t rng = row_rng(DEMO_TOPICS_SEED, office, n);
	const char *status;
	char text[512];

	if (rank >= phase_rank("completed"))
		status = PICK_CODE(&rng, demo_status_completed);
	else if (rank >= phase_rank("report"))
		status = PICK_CODE(&rng, demo_status_report);
	else
		status = PICK_CODE(&rng, demo_status_evaluation);
	const char *priority = PICK_CODE(&rng, demo_priorities);
	const char *action = PICK_PHRASE(&rng, demo_topic_actions);
	const char *outcome = PICK_PHRASE(&rng, demo_topic_outcomes);
	json_t *follow_up = demo_follow_up(&rng, status);
	const struct code *label = codelist_code(codelist_find("learning_theme"), theme);
	snprintf(text, sizeof(text), "%s „%s“; %s (synthetisch)", action,
	    label != NULL ? label->label_de : theme, outcome);
	json_t *env = encrypted(s, text, "topic", id, "description");
	if (env == NULL) {
		json_decref(follow_up);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", id, "procedure_id",
	    procedure, "office_id", office, "theme", theme, "priority", priority, "status", status,
	    "description_enc", env, "follow_up_date", follow_up);
}

static int
check_topic_codes(char *summary, size_t size)
{
	if (CHECK_CODES("topic_priority", demo_priorities, summary, size) != 0 ||
	    CHECK_CODES("topic_status", demo_status_evaluation, summary, size) != 0 ||
	    CHECK_CODES("topic_status", demo_status_report, summary, size) != 0 ||
	    CHECK_CODES("topic_status", demo_status_completed, summary, size) != 0)
		return -1;
	return 0;
}

int
seed_topics(struct demo_seed *s, char *summary, size_t size)
{
	struct batch b = { &stmt_topics_insert, json_array() };
	const int evaluating = phase_rank("evaluation");
	char id[37];
	int rc = -1;

	summary[0] = '\0';
	s->topics = 0;
	if (check_topic_codes(summary, size) != 0) {
		json_decref(b.rows);
		return -1;
	}
	PGresult *res = demo_procedures(s, summary, size);
	if (res == NULL) {
		json_decref(b.rows);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *procedure = PQgetvalue(res, i, 0), *office = PQgetvalue(res, i, 1);
		int rank = phase_rank(PQgetvalue(res, i, 2));
		if (rank < evaluating)
			continue;
		/* The procedure's 2–4 themes, distinct; topic n gets the n-th. */
		uint64_t rng = row_rng(DEMO_TOPICS_SEED, office, 0);
		json_t *themes = distinct_codes(
		    &rng, codelist_learning_theme_values, seed_prng_range(&rng, 2, 4));
		for (size_t n = 1; n <= json_array_size(themes); n++) {
			const char *theme = json_string_value(json_array_get(themes, n - 1));
			json_t *row = NULL;
			if (demo_uuid("topic", office, (long)n, id) != 0 ||
			    (row = demo_topic(s, procedure, office, (long)n, id, theme, rank)) ==
			        NULL) {
				json_decref(themes);
				snprintf(summary, size, "topic %zu of office %s", n, office);
				goto out;
			}
			if (batch_add(s, &b, row) != 0) {
				json_decref(themes);
				snprintf(summary, size, "topics up to %zu of office %s", n, office);
				goto out;
			}
			s->topics++;
		}
		json_decref(themes);
	}
	if (batch_flush(s, &b) != 0) {
		snprintf(summary, size, "the last topics");
		goto out;
	}
	snprintf(summary, size, "demo: %ld case analyses, %ld structure surveys, %ld topics",
	    s->case_analyses, s->structure_surveys, s->topics);
	rc = 0;
out:
	PQclear(res);
	json_decref(b.rows);
	return rc;
}

/* ---- § 8 procedure reports ---- */

#define DEMO_REPORTS_SEED 0x6b71652d72657074u /* "kqe-rept" */

static const char *const demo_report_assessments[] = {
	"Das Jugendamt setzt die Gefährdungseinschätzung nach § 8a SGB VIII überwiegend "
	"fachgerecht um; Eingang und Ersteinschätzung sind verlässlich geregelt.",
	"Die Verfahren sind schriftlich geregelt und werden im Alltag weitgehend eingehalten; "
	"die Dokumentation ist uneinheitlich.",
	"Die Fallanalysen zeigen ein engagiertes Team unter hoher Belastung; die Beteiligung "
	"von Kindern gelingt nicht durchgängig.",
};
static const char *const demo_report_strengths[] = {
	"Verbindliches Vier-Augen-Prinzip bei der Einschätzung.",
	"Gut erreichbare Rufbereitschaft und klare Zuständigkeiten.",
	"Enge Kooperation mit Schulen und Kitas.",
};
static const char *const demo_report_needs[] = {
	"Beteiligung der Kinder und Jugendlichen verbindlich verankern.",
	"Übergaben bei Zuständigkeitswechseln standardisieren.",
	"Einarbeitung neuer Fachkräfte strukturieren.",
};
static const char *const demo_report_recommendations[] = {
	"Kollegiale Fallberatung monatlich einplanen und dokumentieren.",
	"Arbeitshilfe zur Beteiligung von Kindern erstellen und schulen.",
	"Checkliste für Zuständigkeitswechsel einführen.",
};

/*
 * Finalised and accepted; the figures frozen from the procedure's data as
 * kqe_procedure_report_data() gives them to the aggregator ('system'), before
 * any release (so without peer-group quartiles).
 */
static const struct db_stmt stmt_reports_insert = { "seed_reports_insert",
	"INSERT INTO procedure_reports (procedure_id, office_id, cycle, status, assessment_enc,"
	" strengths_enc, development_needs_enc, recommendations_enc, generated, finalised_at,"
	" accepted_at)"
	" SELECT x.procedure_id, x.office_id, '" DEMO_CYCLE "', 'accepted', x.assessment_enc,"
	" x.strengths_enc, x.development_needs_enc, x.recommendations_enc,"
	" kqe_procedure_report_data(x.procedure_id), x.finalised_at::timestamptz,"
	" x.finalised_at::timestamptz + interval '21 days'"
	" FROM jsonb_to_recordset($1::jsonb) AS x(procedure_id uuid, office_id text,"
	" assessment_enc text, strengths_enc text, development_needs_enc text,"
	" recommendations_enc text, finalised_at date)"
	" ON CONFLICT DO NOTHING" };
static const struct db_stmt stmt_reports_role = { "seed_reports_role",
	"SELECT set_config('kqe.role', 'system', true)" };

static json_t *
demo_report(struct demo_seed *s, const char *procedure, const char *office)
{
	uint64_t rng = row_rng(DEMO_REPORTS_SEED, office, 1);
	static const char *const fields[] = { "assessment", "strengths", "development_needs",
		"recommendations" };
	const char *texts[] = { PICK_PHRASE(&rng, demo_report_assessments),
		PICK_PHRASE(&rng, demo_report_strengths), PICK_PHRASE(&rng, demo_report_needs),
		PICK_PHRASE(&rng, demo_report_recommendations) };
	char date[11];
	month_date(
	    seed_prng_range(&rng, 2025 * 12, 2026 * 12 + 5), seed_prng_range(&rng, 1, 28), date);
	json_t *row = json_pack(
	    "{s:s,s:s,s:s}", "procedure_id", procedure, "office_id", office, "finalised_at", date);
	for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
		char text[512], key[32];
		snprintf(text, sizeof(text), "%s (synthetisch)", texts[i]);
		json_t *env = encrypted(s, text, "procedure_report", procedure, fields[i]);
		if (env == NULL) {
			json_decref(row);
			return NULL;
		}
		snprintf(key, sizeof(key), "%s_enc", fields[i]);
		json_object_set_new(row, key, env);
	}
	return row;
}

int
seed_procedure_reports(struct demo_seed *s, char *summary, size_t size)
{
	struct batch b = { &stmt_reports_insert, json_array() };
	long reports = 0;
	int rc = -1;

	summary[0] = '\0';
	PGresult *role = db_exec(s->db, &stmt_reports_role, 0, NULL);
	PGresult *res = role != NULL ? demo_procedures(s, summary, size) : NULL;
	PQclear(role);
	if (res == NULL) {
		json_decref(b.rows);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *procedure = PQgetvalue(res, i, 0), *office = PQgetvalue(res, i, 1);
		if (phase_rank(PQgetvalue(res, i, 2)) < phase_rank("completed"))
			continue;
		json_t *row = demo_report(s, procedure, office);
		if (row == NULL || batch_add(s, &b, row) != 0) {
			snprintf(summary, size, "the report of office %s", office);
			goto out;
		}
		reports++;
	}
	if (batch_flush(s, &b) != 0) {
		snprintf(summary, size, "the last reports");
		goto out;
	}
	snprintf(summary, size, "demo: %ld procedure reports (finalised and accepted)", reports);
	rc = 0;
out:
	PQclear(res);
	json_decref(b.rows);
	return rc;
}

/* ---- § 7 advice requests ---- */

#define DEMO_ADVICE_SEED 0x6b71652d61647663u /* "kqe-advc" */

static const char *const demo_advice_questions[] = {
	"Wie beziehen wir ein Kind im Grundschulalter in die Gefährdungseinschätzung ein, wenn "
	"die Eltern Gespräche ohne sie ablehnen?",
	"Wann ist bei einer Meldung der Schule ein Hausbesuch am selben Tag geboten?",
	"Wie dokumentieren wir das Zusammenwirken mehrerer Fachkräfte, wenn die Einschätzungen "
	"auseinandergehen?",
	"Wie gestalten wir die Fallübergabe bei Umzug einer Familie in einen anderen Kreis?",
	"Welche Erfahrungen gibt es mit Schutzplänen bei häuslicher Gewalt?",
	"Wie arbeiten andere Jugendämter mit Kliniken bei Säuglingen mit Verdacht auf "
	"Misshandlung zusammen?",
};
static const char *const demo_advice_answers[] = {
	"Wir empfehlen ein vorbereitetes Gespräch in vertrauter Umgebung; die Eltern werden "
	"vorher informiert.",
	"Die Arbeitshilfe des Landesjugendamts zur Ersteinschätzung gibt dafür Kriterien; wir "
	"besprechen sie gern im Team.",
	"Eine kurze gemeinsame Fallbesprechung mit festgehaltenem Ergebnis hat sich bewährt.",
	"Eine persönliche Übergabe mit der Familie ist der schriftlichen vorzuziehen.",
};

/* How far a demo request has got, with its weight. */
static const struct weighted demo_advice_statuses[] = {
	{ "closed", 45 },
	{ "answered", 10 },
	{ "in_progress", 10 },
	{ "accepted", 5 },
	{ "submitted", 10 },
	{ "declined", 10 },
	{ "withdrawn", 5 },
};
static const struct weighted demo_advice_urgencies[] = {
	{ "routine", 60 },
	{ "soon", 30 },
	{ "urgent", 10 },
};

/* The times follow from the status, the day it was asked, and the days to the first response
 * and then to the answer. */
static const struct db_stmt stmt_advice_insert = { "seed_advice_insert",
	"INSERT INTO advice_requests (id, office_id, region, kind, topic, urgency, case_pseudonym,"
	" question_enc, status, decline_reason, respond_by, submitted_at, first_response_at,"
	" accepted_at, answered_at, ended_at, created_at, updated_at)"
	" SELECT x.id, x.office_id, o.region, x.kind, x.topic, x.urgency, x.case_pseudonym,"
	" x.question_enc, x.status, x.decline_reason,"
	" t.asked + interval '5 days'," /* KQE_ADVICE_RESPONSE_DAYS' default */
	" t.asked, t.first, t.accepted, t.answered, t.ended, t.asked,"
	" coalesce(t.ended, t.answered, t.first, t.asked)"
	" FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, office_id text, kind text, topic text,"
	" urgency text, case_pseudonym text, question_enc text, status text, decline_reason text,"
	" day date, respond integer, work integer)"
	" JOIN offices o ON o.id = x.office_id"
	" CROSS JOIN LATERAL (SELECT (x.day + time '09:00') AT TIME ZONE 'Europe/Berlin' AS asked)"
	"  AS a"
	" CROSS JOIN LATERAL (SELECT a.asked,"
	"  CASE WHEN x.status NOT IN ('submitted', 'withdrawn')"
	"   THEN a.asked + make_interval(days => x.respond, hours => 2) END AS first,"
	"  CASE WHEN x.status IN ('accepted', 'in_progress', 'answered', 'closed')"
	"   THEN a.asked + make_interval(days => x.respond, hours => 2) END AS accepted,"
	"  CASE WHEN x.status IN ('answered', 'closed')"
	"   THEN a.asked + make_interval(days => x.respond + x.work, hours => 4) END AS answered,"
	"  CASE x.status WHEN 'closed'"
	"   THEN a.asked + make_interval(days => x.respond + x.work + 7)"
	"   WHEN 'declined' THEN a.asked + make_interval(days => x.respond, hours => 2)"
	"   WHEN 'withdrawn' THEN a.asked + interval '1 day' END AS ended) AS t"
	" ON CONFLICT (id) DO NOTHING" };
/* The advisor's answer, written when the request was answered. */
static const struct db_stmt stmt_advice_messages_insert = {
	"seed_advice_messages_insert",
	"INSERT INTO advice_messages (id, request_id, office_id, region, author_role, text_enc,"
	" created_at, updated_at)"
	" SELECT x.id, x.request_id, a.office_id, a.region, 'advisor', x.text_enc, a.answered_at,"
	" a.answered_at FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, request_id uuid,"
	" text_enc text) JOIN advice_requests a ON a.id = x.request_id ON CONFLICT (id) DO NOTHING"
};

/* One demo request (number n of office) and, if it was answered, the advisor's message
 * (appended to messages, written after every request). */
static int
demo_advice(
    struct demo_seed *s, const char *office, long n, struct batch *requests, json_t *messages)
{
	uint64_t rng = row_rng(DEMO_ADVICE_SEED, office, n);
	char id[37], mid[37], date[11], pseudo[PSEUDONYM_LEN + 1], reference[48], text[512];
	if (demo_uuid("advice", office, n, id) != 0 ||
	    demo_uuid("advice-message", office, n, mid) != 0)
		return -1;
	bool specific = chance(&rng, 60);
	const char *status = PICK_CODE(&rng, demo_advice_statuses);
	const char *urgency = PICK_CODE(&rng, demo_advice_urgencies);
	long topic = seed_prng_range(&rng, 0, 12);
	long month = seed_prng_range(&rng, 2024 * 12, 2026 * 12 + 9);
	long day = seed_prng_range(&rng, 1, 28);
	long respond = seed_prng_range(&rng, 0, 9);
	long work = seed_prng_range(&rng, 3, 40);
	const char *question = PICK_PHRASE(&rng, demo_advice_questions);
	const char *answer = PICK_PHRASE(&rng, demo_advice_answers);
	/* Requests still open are recent ones; the older ones have ended. */
	if (strcmp(status, "closed") != 0 && strcmp(status, "declined") != 0 &&
	    strcmp(status, "withdrawn") != 0)
		month = 2026 * 12 + 7 + month % 3;
	month_date(month, day, date);
	json_t *row = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "id", id, "office_id",
	    office, "kind", specific ? "case_specific" : "structural", "topic",
	    codelist_advice_topic_values[topic], "urgency", urgency, "status", status, "day", date,
	    "respond", (json_int_t)respond, "work", (json_int_t)work);
	if (specific) {
		snprintf(reference, sizeof(reference), "DEMO-ADV-%ld", n);
		pseudonym(s->pseudonymizer, office, reference, pseudo);
		json_object_set_new(row, "case_pseudonym", json_string(pseudo));
	}
	if (strcmp(status, "declined") == 0)
		json_object_set_new(row, "decline_reason", json_string("outside_remit"));
	snprintf(text, sizeof(text), "%s (synthetisch)", question);
	json_t *env = encrypted(s, text, "advice_request", id, "question");
	if (env == NULL || json_object_set_new(row, "question_enc", env) != 0 ||
	    batch_add(s, requests, row) != 0)
		return -1;
	if (strcmp(status, "answered") != 0 && strcmp(status, "closed") != 0)
		return 0;
	snprintf(text, sizeof(text), "%s (synthetisch)", answer);
	env = encrypted(s, text, "advice_message", mid, "text");
	if (env == NULL)
		return -1;
	return json_array_append_new(
	    messages, json_pack("{s:s,s:s,s:o}", "id", mid, "request_id", id, "text_enc", env));
}

int
seed_advice_requests(struct demo_seed *s, char *summary, size_t size)
{
	struct batch requests = { &stmt_advice_insert, json_array() };
	struct batch messages = { &stmt_advice_messages_insert, json_array() };
	long count = 0;
	int rc = -1;

	summary[0] = '\0';
	PGresult *res = demo_procedures(s, summary, size);
	if (res == NULL)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *office = PQgetvalue(res, i, 1);
		uint64_t rng = row_rng(DEMO_ADVICE_SEED, office, 0);
		long n = chance(&rng, 40) ? seed_prng_range(&rng, 1, 3) : 0;
		for (long k = 1; k <= n; k++) {
			if (demo_advice(s, office, k, &requests, messages.rows) != 0) {
				snprintf(summary, size, "an advice request of office %s", office);
				goto out;
			}
			count++;
		}
	}
	/* The requests first: a message joins its request. */
	if (batch_flush(s, &requests) != 0 || batch_flush(s, &messages) != 0) {
		snprintf(summary, size, "the last advice requests");
		goto out;
	}
	snprintf(summary, size, "demo: %ld advice requests", count);
	rc = 0;
out:
	PQclear(res);
	json_decref(requests.rows);
	json_decref(messages.rows);
	return rc;
}
