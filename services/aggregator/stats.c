/*
 * stats — the statistical tables of a report, built from the rollups (per
 * office counts, see docs/rollups.md), the procedure coverage of the cycle
 * and the offices' structural indicators, all read in the report's snapshot.
 *
 * Every figure is computed from per-office values, so each knows how many
 * offices contribute and how much the largest one does, and every count
 * carries the sum of its records' keys (the rollups' keysum). Counts are
 * published perturbed by the cell-key method (common/ckm, docs/disclosure.md)
 * applied to the finest cells (atoms: part of the period × region × kind ×
 * category), every figure the sum of its perturbed atoms: the same records
 * always get the same noise, and no figure says more than its atoms. Comparison values (medians,
 * quartiles) are shown only where enough offices contribute. Four kinds of
 * table:
 *   count      categories × groups, with their totals, sums of perturbed atoms;
 *   share      % "yes" among cases that answered a yes/no fact, from the
 *              perturbed yes and no counts;
 *   median     of a numeric distribution (days, ratings);
 *   quantiles  quartiles and median of an indicator over offices.
 * Groups are the regions (LVR, LWL), the kinds of office, for ratings the
 * quality dimensions, or for the programme figures the programmes of the
 * period. Each table exists once per grouping it names.
 *
 * Reads as the 'system' principal: the caller's transaction must have it set.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "kqe/ckm.h"
#include "kqe/codelists.h"
#include "kqe/disclosure.h"
#include "kqe/log.h"
#include "kqe/report_params.h"

/* $1 region (NULL: both), $2 year (NULL), $3 cycle (NULL): scope and period. The owners of
 * figures: the offices, the foster-care providers (of the protection-concept tables) as
 * "provider:<id>" of kind provider, and the professionals seated in NRW (of the service
 * desk's tables and their own event registrations) as "professional:<id>" of kind
 * professional. */
static const struct db_stmt stmt_offices = { "stats_offices",
	"SELECT id, region, kind FROM offices WHERE ($1::text IS NULL OR region = $1)"
	" UNION ALL SELECT 'provider:' || id, region, 'provider' FROM providers"
	" WHERE ($1::text IS NULL OR region = $1)"
	" UNION ALL SELECT owner, region, kind FROM kqe_figure_professionals()"
	" WHERE ($1::text IS NULL OR region = $1) ORDER BY 1" };
/* $4 the release: each bucket (period part, region, kind) in the state it publishes. The
 * sixth column names the part of the period (year and cycle): atoms are per part. */
static const struct db_stmt stmt_rollups = { "stats_release_rollups",
	"SELECT r.office_id, r.dimension, r.category, sum(r.n)::bigint, kqe_keysum(sum(r.keysum)),"
	" r.year || '/' || r.cycle"
	" FROM release_buckets b JOIN offices o ON o.region = b.region AND o.kind = b.kind"
	" JOIN release_rollups r ON r.release_id = b.state_release AND r.year = b.year"
	" AND r.cycle = b.cycle AND r.office_id = o.id"
	" WHERE b.release_id = $4::int AND ($1::text IS NULL OR o.region = $1)"
	" AND ($2::int IS NULL OR b.year = $2) AND ($3::text IS NULL OR b.cycle = $3)"
	" GROUP BY 1, 2, 3, 6" };
/*
 * § 10 protection concepts as of today, one record per owner (its record key): the state of
 * its concept, and for those that have one, each element and whether young people took part
 * (yes / no). Live like the procedure coverage: a state, not a count over a period.
 */
static const struct db_stmt stmt_concepts = { "stats_concepts",
	"SELECT CASE s.owner_kind WHEN 'provider' THEN 'provider:' ELSE '' END || s.owner_id,"
	" x.dimension, x.category, 1, s.record_key, 'now'"
	" FROM kqe_concept_status(current_date) s"
	" LEFT JOIN protection_concepts c ON (s.owner_kind = 'office' AND c.office_id = s.owner_id)"
	"  OR (s.owner_kind = 'provider' AND c.provider_id = s.owner_id)"
	" CROSS JOIN LATERAL (SELECT 'concept_status' AS dimension, s.status AS category"
	"  UNION ALL SELECT e.key, CASE WHEN e.value = 'true' THEN 'yes' ELSE 'no' END"
	"   FROM jsonb_each_text(c.elements) AS e"
	"  UNION ALL SELECT 'young_people_took_part',"
	"   CASE WHEN 'young_people' = ANY (c.participants) THEN 'yes' ELSE 'no' END"
	"   WHERE c.id IS NOT NULL) AS x"
	" WHERE $1::text IS NULL OR s.region = $1" };
/*
 * The programme figures (migrations 0029 and 0032, docs/programmes.md "Figures for the
 * Ministry"): $1 year (NULL), $2 cycle (NULL), $3 the release. The programmes the report
 * lists, and every record of the figures with its programme (a seventh column): those about
 * persons (registrations, attendance, feedback, the service desk) as the release publishes
 * them, participation and events held live.
 */
static const struct db_stmt stmt_programmes = { "stats_programmes",
	"SELECT id, title FROM kqe_report_programmes($1::int, $2::text)" };
static const struct db_stmt stmt_programme_figures = { "stats_programme_figures",
	"SELECT owner, dimension, category, n, keysum, part, programme_id"
	" FROM kqe_report_programme_figures($3::int, $1::int, $2::text)" };
static const struct db_stmt stmt_coverage = { "stats_coverage",
	"SELECT s.office_id, 'procedure_status', s.status, 1, s.record_key, $2"
	" FROM kqe_procedure_status($2, current_date) s JOIN offices o ON o.id = s.office_id"
	" WHERE ($1::text IS NULL OR o.region = $1)" };
/* Each office's indicators from its latest survey in the period, as the release publishes
 * them (the buckets' states, like the rollups). */
static const struct db_stmt stmt_structure = { "stats_release_structure",
	"SELECT office_id, indicator, value::float8 FROM ("
	" SELECT s.office_id, s.indicator, s.value, rank() OVER (PARTITION BY s.office_id"
	"  ORDER BY s.reference_date DESC, s.cycle DESC) AS newest"
	" FROM release_buckets b JOIN offices o ON o.region = b.region AND o.kind = b.kind"
	" JOIN release_structure s ON s.release_id = b.state_release AND s.year = b.year"
	" AND s.cycle = b.cycle AND s.office_id = o.id"
	" WHERE b.release_id = $4::int AND ($1::text IS NULL OR o.region = $1)"
	" AND ($2::int IS NULL OR b.year = $2) AND ($3::text IS NULL OR b.cycle = $3)) AS x"
	" WHERE newest = 1" };

static const char *const regions[] = { "LVR", "LWL", NULL };
/* The age groups of the rollups (kqe_age_group() in SQL), in order. */
const char *const stats_age_groups[] = { "unter_3", "3_bis_unter_6", "6_bis_unter_9",
	"9_bis_unter_12", "12_bis_unter_14", "14_bis_unter_16", "16_bis_unter_18", NULL };
static const char *const facts[] = { "direct_impression", "several_professionals", "child_involved",
	NULL };
static const char *const yes_no[] = { "yes", "no", NULL };
static const char *const coverage[] = { "completed", "in_progress", "due", "overdue", NULL };
static const char *const indicators[] = { "asd_staff_per_10k_under_18", "cases_per_fte",
	"vacancy_percent", "turnover_percent", "training_hours_per_fte", NULL };
static const char *const statistics[] = { "offices", "q1", "median", "q3", NULL };
/* Every kind of owner of figures: the atoms' kinds (group_of). */
static const char *const all_kinds[] = { "kreisfreie_stadt", "kreis", "kreisangehoerige_stadt",
	"provider", "professional", NULL };
/* The rows by kind of the tables over offices and providers (protection concepts). */
static const char *const owner_kinds[] = { "kreisfreie_stadt", "kreis", "kreisangehoerige_stadt",
	"provider", NULL };
/* The rows by kind of the programme figures: offices and professionals seated in NRW. */
static const char *const programme_kinds[] = { "kreisfreie_stadt", "kreis",
	"kreisangehoerige_stadt", "professional", NULL };
static const char *const young_people[] = { "young_people_took_part", NULL };
static const char *const attended[] = { "attended", NULL };
static const char *const answered_fact[] = { "answered", NULL };
static const char *const feedback_ratings[] = { "1", "2", "3", "4", "5", NULL };

enum measure { M_COUNT, M_SHARE, M_MEDIAN, M_QUANTILES };
enum grouping { BY_REGION, BY_KIND, BY_QUALITY_DIMENSION, BY_PROGRAMME };

struct spec {
	const char *id, *title;
	enum measure measure;
	unsigned groupings; /* 1 << BY_… */
	const char *dimension; /* rollup dimension; BY_QUALITY_DIMENSION: "rating:" + code */
	const char *column; /* name of the category dimension in cells */
	const char *const *codes; /* the categories, in order */
	bool exclusive; /* one category per case: a line's total is a sum and is published */
	bool needs_cycle; /* only where the period lies in a § 8 cycle */
	enum source { FROM_ROLLUPS, FROM_COVERAGE, FROM_CONCEPTS, FROM_PROGRAMMES } source;
	/*
	 * Records of a programme itself, its events: in no region, so in the state's report
	 * only; and public (GET /v1/events lists them to every caller), so counted as they are —
	 * perturbing them would hide nothing and make the Ministry's table wrong.
	 */
	bool programme_own;
};

#define GROUPS (1u << BY_REGION | 1u << BY_KIND)
#define PROGRAMME_GROUPS (GROUPS | 1u << BY_PROGRAMME)

static const struct spec specs[] = {
	{ "case_results", "Fallanalysen nach Ergebnis der Gefährdungseinschätzung", M_COUNT, GROUPS,
	    "result", "result", codelist_assessment_result_values, true, false, FROM_ROLLUPS,
	    false },
	{ "case_forms", "Fallanalysen mit Kindeswohlgefährdung nach Art der Gefährdung", M_COUNT,
	    GROUPS, "form", "form", codelist_endangerment_form_values, false, false, FROM_ROLLUPS,
	    false },
	{ "case_age_groups", "Fallanalysen nach Alter des Kindes", M_COUNT, GROUPS, "age_group",
	    "age_group", stats_age_groups, true, false, FROM_ROLLUPS, false },
	{ "case_sex", "Fallanalysen nach Geschlecht des Kindes", M_COUNT, GROUPS, "child_sex",
	    "sex", codelist_sex_values, true, false, FROM_ROLLUPS, false },
	{ "case_reporters", "Fallanalysen nach bekanntmachender Stelle", M_COUNT, GROUPS,
	    "reported_by", "reported_by", codelist_reporter_values, true, false, FROM_ROLLUPS,
	    false },
	{ "case_process_facts", "Fachliches Vorgehen: Anteil der Fallanalysen (%)", M_SHARE, GROUPS,
	    NULL, "fact", facts, false, false, FROM_ROLLUPS, false },
	{ "case_days_to_first_contact", "Tage bis zum ersten Kontakt (Median)", M_MEDIAN, GROUPS,
	    "days_to_first_contact", NULL, NULL, false, false, FROM_ROLLUPS, false },
	{ "case_learning_themes", "Lernthemen der Fallanalysen", M_COUNT, GROUPS, "learning_theme",
	    "learning_theme", codelist_learning_theme_values, false, false, FROM_ROLLUPS, false },
	{ "case_ratings", "Qualitätsbewertungen nach Qualitätsdimension", M_COUNT,
	    1u << BY_QUALITY_DIMENSION, "rating:", "rating", codelist_rating_values, true, false,
	    FROM_ROLLUPS, false },
	{ "case_ratings_median", "Qualitätsbewertungen: Median je Qualitätsdimension", M_MEDIAN,
	    1u << BY_QUALITY_DIMENSION, "rating:", NULL, NULL, false, false, FROM_ROLLUPS, false },
	{ "topic_themes", "Qualitätsentwicklungsthemen nach Thema", M_COUNT, GROUPS, "topic_theme",
	    "theme", codelist_learning_theme_values, true, false, FROM_ROLLUPS, false },
	{ "topic_status", "Qualitätsentwicklungsthemen nach Stand", M_COUNT, GROUPS, "topic_status",
	    "status", codelist_topic_status_values, true, false, FROM_ROLLUPS, false },
	{ "advice_kinds", "Beratungsanfragen nach § 7 nach Art", M_COUNT, GROUPS, "advice_kind",
	    "advice_kind", codelist_advice_kind_values, true, false, FROM_ROLLUPS, false },
	{ "advice_topics", "Beratungsanfragen nach § 7 nach Thema", M_COUNT, GROUPS, "advice_topic",
	    "advice_topic", codelist_advice_topic_values, true, false, FROM_ROLLUPS, false },
	{ "advice_days_to_first_response",
	    "Beratungsanfragen: Tage bis zur ersten Reaktion (Median)", M_MEDIAN, GROUPS,
	    "advice_days_to_first_response", NULL, NULL, false, false, FROM_ROLLUPS, false },
	{ "advice_days_to_answer", "Beratungsanfragen: Tage bis zur Antwort (Median)", M_MEDIAN,
	    GROUPS, "advice_days_to_answer", NULL, NULL, false, false, FROM_ROLLUPS, false },
	{ "procedure_coverage", "Jugendämter nach Stand des Qualitätsverfahrens im Zyklus", M_COUNT,
	    GROUPS, "procedure_status", "status", coverage, true, true, FROM_COVERAGE, false },
	{ "concept_coverage", "Schutzkonzepte nach § 10: Jugendämter und freie Träger nach Stand",
	    M_COUNT, GROUPS, "concept_status", "concept_status", codelist_concept_status_values,
	    true, false, FROM_CONCEPTS, false },
	{ "concept_elements", "Schutzkonzepte: Anteil mit dem Element (%)", M_SHARE, GROUPS, NULL,
	    "concept_element", codelist_concept_element_values, false, false, FROM_CONCEPTS,
	    false },
	{ "concept_young_people",
	    "Schutzkonzepte: Anteil, an dem junge Menschen mitgewirkt haben (%)", M_SHARE, GROUPS,
	    NULL, "fact", young_people, false, false, FROM_CONCEPTS, false },
	{ "programme_participants", "Programme: ausgewählte Teilnehmende nach Rolle", M_COUNT,
	    PROGRAMME_GROUPS, "programme_role", "programme_role", codelist_programme_role_values,
	    true, false, FROM_PROGRAMMES, false },
	{ "programme_events", "Programme: durchgeführte Veranstaltungen nach Art", M_COUNT,
	    1u << BY_PROGRAMME, "event_kind", "event_kind", codelist_event_kind_values, true, false,
	    FROM_PROGRAMMES, true },
	{ "programme_registrations",
	    "Programme: Anmeldungen zu durchgeführten Veranstaltungen nach Stand", M_COUNT,
	    PROGRAMME_GROUPS, "registration_status", "registration_status",
	    codelist_registration_status_values, true, false, FROM_PROGRAMMES, false },
	{ "programme_attendance", "Programme: Anwesenheit angemeldeter Personen je Termin (%)",
	    M_SHARE, PROGRAMME_GROUPS, NULL, "fact", attended, false, false, FROM_PROGRAMMES,
	    false },
	{ "programme_feedback", "Programme: Rückmeldungen zu Veranstaltungen nach Bewertung",
	    M_COUNT, PROGRAMME_GROUPS, "feedback_rating", "feedback_rating", feedback_ratings, true,
	    false, FROM_PROGRAMMES, false },
	{ "programme_feedback_median", "Programme: Bewertung der Veranstaltungen (Median)",
	    M_MEDIAN, PROGRAMME_GROUPS, "feedback_rating", NULL, NULL, false, false,
	    FROM_PROGRAMMES, false },
	{ "programme_questions", "Servicestelle: Anfragen nach Stand", M_COUNT, PROGRAMME_GROUPS,
	    "service_request_status", "service_request_status",
	    codelist_service_request_status_values, true, false, FROM_PROGRAMMES, false },
	{ "programme_questions_answered", "Servicestelle: Anteil beantworteter Anfragen (%)",
	    M_SHARE, PROGRAMME_GROUPS, NULL, "fact", answered_fact, false, false, FROM_PROGRAMMES,
	    false },
	{ "programme_response_hours", "Servicestelle: Stunden bis zur Antwort (Median)", M_MEDIAN,
	    PROGRAMME_GROUPS, "response_hours", NULL, NULL, false, false, FROM_PROGRAMMES, false },
	{ "structure_indicators", "Strukturindikatoren: Quartile und Median über die Jugendämter",
	    M_QUANTILES, GROUPS, NULL, "indicator", indicators, false, false, FROM_ROLLUPS, false },
};

static const char *const grouping_suffix[] = { "_by_region", "_by_kind", "", "_by_programme" };
static const char *const grouping_name[] = { "region", "kind", "quality_dimension", "programme" };

/* What one report's tables are built from. */
struct input {
	const struct report_params *p;
	const struct sdc_rules *rules;
	const struct ckm_table *ckm; /* NULL: true counts (kqe sdc evaluate) */
	const PGresult *offices, *counts, *coverage, *structure, *concepts; /* stats_source */
	const PGresult *programmes, *figures; /* stats_source programmes, programme_figures */
	const char **programme_ids; /* the programmes' ids, NULL-terminated (borrowed) */
	json_t *office_index; /* office id → row in offices */
	const char *scope_regions[3];
};

static int
index_of(const char *const *list, const char *s)
{
	for (int i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

static size_t
count_of(const char *const *list)
{
	size_t n = 0;
	while (list[n] != NULL)
		n++;
	return n;
}

static const char *const *
group_codes(const struct input *in, const struct spec *s, enum grouping by)
{
	switch (by) {
	case BY_REGION:
		return in->scope_regions;
	case BY_KIND:
		return s->source == FROM_CONCEPTS     ? owner_kinds
		       : s->source == FROM_PROGRAMMES ? programme_kinds
		                                      : codelist_office_kind_values;
	case BY_PROGRAMME:
		return (const char *const *)in->programme_ids;
	default:
		return codelist_quality_dimension_values;
	}
}

static int
office_of(const struct input *in, const char *id)
{
	const json_t *at = json_object_get(in->office_index, id);
	return at ? (int)json_integer_value(at) : -1;
}

/* The group row of an office, or of a rollup dimension (quality dimensions). */
static int
row_of(
    const struct input *in, enum grouping by, int office, const char *dimension, const char *prefix)
{
	if (by == BY_REGION)
		return index_of(in->scope_regions, PQgetvalue(in->offices, office, 1));
	if (by == BY_KIND)
		return index_of(codelist_office_kind_values, PQgetvalue(in->offices, office, 2));
	size_t len = strlen(prefix);
	if (strncmp(dimension, prefix, len) != 0)
		return -1;
	return index_of(codelist_quality_dimension_values, dimension + len);
}

static bool
dimension_matches(enum grouping by, const char *dimension, const char *wanted)
{
	if (by == BY_QUALITY_DIMENSION)
		return strncmp(dimension, wanted, strlen(wanted)) == 0;
	return strcmp(dimension, wanted) == 0;
}

/*
 * The atoms of one table: the counts (and cell keys) of the finest cells any
 * report shows, per part of the period (a year of a cycle), region, kind of
 * office, row (a quality dimension; one row otherwise) and category. Every
 * published count is the sum of its atoms, each perturbed on its own
 * (docs/disclosure.md, "How counts are published").
 * v[((part * GROUPS_RK + region * KINDS + kind) * rows + row) * cols + col].
 */
#define KINDS 5 /* all_kinds: the office kinds, provider and professional */
/* The region × kind groups, and one group of records in no region (a programme's events). */
#define NO_REGION (2 * KINDS)
#define GROUPS_RK (2 * KINDS + 1)

struct matrix {
	enum grouping by;
	size_t parts, rows, cols;
	const char *const *kind_rows; /* the rows of the table by kind */
	bool exact; /* public records: published as counted (spec.programme_own) */
	long long *v;
	uint32_t *k;
};

/* The region × kind group of an office (-1: outside the code lists). */
static int
group_of(const struct input *in, int office)
{
	int r = index_of(regions, PQgetvalue(in->offices, office, 1));
	int k = index_of(all_kinds, PQgetvalue(in->offices, office, 2));
	return r < 0 || k < 0 || k >= KINDS ? -1 : r * KINDS + k;
}

/* The rows a table's counts come from. */
static const PGresult *
source_of(const struct input *in, const struct spec *s)
{
	return s->source == FROM_COVERAGE     ? in->coverage
	       : s->source == FROM_CONCEPTS   ? in->concepts
	       : s->source == FROM_PROGRAMMES ? in->figures
	                                      : in->counts;
}

/*
 * The row of record i of res in a table grouped by `by` (-1: none): its owner's region or
 * kind, its quality dimension, or its programme (the seventh column of the programme
 * figures).
 */
static int
record_row(const struct input *in, const struct spec *s, enum grouping by, const PGresult *res,
    int i, int office, const char *dimension)
{
	switch (by) {
	case BY_REGION:
		return index_of(in->scope_regions, PQgetvalue(in->offices, office, 1));
	case BY_KIND:
		return index_of(group_codes(in, s, by), PQgetvalue(in->offices, office, 2));
	case BY_PROGRAMME:
		return index_of(group_codes(in, s, by), PQgetvalue(res, i, 6));
	default:
		return row_of(in, by, office, PQgetvalue(res, i, 1), dimension);
	}
}

/*
 * Atoms are per part × group × row × category. The programme figures' atoms are per
 * programme in every grouping (rows), so that their tables by region, kind and programme
 * sum the same perturbed atoms.
 */
static void
matrix_fill(struct matrix *m, const struct input *in, const struct spec *s, enum grouping by,
    const char *dimension, const char *const *codes)
{
	const PGresult *res = source_of(in, s);
	bool per_programme = s->source == FROM_PROGRAMMES;
	json_t *parts = json_object();
	for (int i = 0; res != NULL && i < PQntuples(res); i++)
		if (json_object_get(parts, PQgetvalue(res, i, 5)) == NULL)
			json_object_set_new(parts, PQgetvalue(res, i, 5),
			    json_integer((json_int_t)json_object_size(parts)));
	m->by = by;
	m->parts = json_object_size(parts);
	m->rows = by == BY_QUALITY_DIMENSION ? count_of(codelist_quality_dimension_values)
	          : per_programme            ? count_of(group_codes(in, s, BY_PROGRAMME))
	                                     : 1;
	m->kind_rows = group_codes(in, s, BY_KIND);
	size_t n = m->parts * GROUPS_RK * m->rows * m->cols;
	m->v = xcalloc(n ? n : 1, sizeof(long long));
	m->k = xcalloc(n ? n : 1, sizeof(uint32_t));
	for (int i = 0; res != NULL && i < PQntuples(res); i++) {
		const char *dim = PQgetvalue(res, i, 1);
		if (!dimension_matches(by, dim, dimension))
			continue;
		const char *owner = PQgetvalue(res, i, 0);
		int o = office_of(in, owner);
		int c = index_of(codes, PQgetvalue(res, i, 2));
		int g = per_programme && owner[0] == '\0' ? NO_REGION
		        : o < 0                           ? -1
		                                          : group_of(in, o);
		int r = by == BY_QUALITY_DIMENSION ? row_of(in, by, o, dim, dimension)
		        : per_programme
		            ? index_of(group_codes(in, s, BY_PROGRAMME), PQgetvalue(res, i, 6))
		            : 0;
		if (g < 0 || r < 0 || c < 0)
			continue;
		size_t part =
		    (size_t)json_integer_value(json_object_get(parts, PQgetvalue(res, i, 5)));
		size_t at =
		    ((part * GROUPS_RK + (size_t)g) * m->rows + (size_t)r) * m->cols + (size_t)c;
		m->v[at] += atoll(PQgetvalue(res, i, 3));
		m->k[at] = ckm_key_add(m->k[at], strtoull(PQgetvalue(res, i, 4), NULL, 10));
	}
	json_decref(parts);
}

/* One count: its true value and what is published (the sum of its perturbed atoms). */
struct figure {
	long long value;
	long long published;
};

/* The table row (group) an atom of group g and row r falls in (-1: none in scope). */
static int
atom_row(const struct input *in, const struct matrix *m, int g, size_t r)
{
	switch (m->by) {
	case BY_REGION:
		return g == NO_REGION ? -1 : index_of(in->scope_regions, regions[g / KINDS]);
	case BY_KIND:
		return g == NO_REGION ? -1 : index_of(m->kind_rows, all_kinds[g % KINDS]);
	default:
		return (int)r;
	}
}

/*
 * The count of table row r0 × column c0 (-1: summed over): the sum of its
 * atoms, each published perturbed with its own cell key (or true without ckm),
 * so that every figure of every report is a sum of the same perturbed atoms.
 */
static struct figure
measure(const struct input *in, const struct matrix *m, long r0, long c0)
{
	struct figure f = { 0, 0 };
	for (size_t p = 0; p < m->parts; p++)
		for (int g = 0; g < GROUPS_RK; g++)
			for (size_t r = 0; r < m->rows; r++) {
				int row = atom_row(in, m, g, r);
				if (row < 0 || (r0 >= 0 && row != r0))
					continue;
				for (size_t c = 0; c < m->cols; c++) {
					if (c0 >= 0 && (size_t)c0 != c)
						continue;
					size_t at =
					    ((p * GROUPS_RK + (size_t)g) * m->rows + r) * m->cols +
					    c;
					f.value += m->v[at];
					f.published +=
					    in->ckm && !m->exact
					        ? ckm_perturb(in->ckm, m->v[at], m->k[at])
					        : m->v[at];
				}
			}
	return f;
}

static void
matrix_free(struct matrix *m)
{
	free(m->v);
	free(m->k);
}

static json_t *
cell_new(const char *group_name, const char *group, const char *column, const char *code)
{
	json_t *cell = json_object();
	json_object_set_new(cell, group_name, group ? json_string(group) : json_null());
	if (column != NULL)
		json_object_set_new(cell, column, code ? json_string(code) : json_null());
	return cell;
}

static json_t *
cell_finish(json_t *cell, json_t *value, const char *reason)
{
	json_object_set_new(cell, "value", reason ? json_null() : value);
	json_object_set_new(cell, "suppressed", json_boolean(reason != NULL));
	if (reason != NULL) {
		json_decref(value);
		json_object_set_new(cell, "reason", json_string(reason));
	}
	return cell;
}

static json_t *
count_cell(json_t *cell, struct figure f)
{
	return cell_finish(cell, json_integer(f.published), NULL);
}

static double
round_to(double x, int decimals)
{
	double f = pow(10, decimals);
	return round(x * f) / f;
}

static json_t *
table_new(const struct spec *s, enum grouping by, const char *measure_name)
{
	char id[64];
	snprintf(id, sizeof(id), "%s%s", s->id, grouping_suffix[by]);
	json_t *dims = json_pack("[s]", grouping_name[by]);
	if (s->column != NULL)
		json_array_append_new(dims, json_string(s->column));
	if (s->measure == M_QUANTILES)
		json_array_append_new(dims, json_string("statistic"));
	json_t *table = json_pack("{s:s,s:s,s:s,s:o,s:[]}", "id", id, "title", s->title, "measure",
	    measure_name, "dimensions", dims, "cells");
	if (s->programme_own) /* public records, counted as they are: say so */
		json_object_set_new(table, "exact", json_true());
	return table;
}

/* Whether a table grouped by `by` carries the totals over its rows: the by-region table,
 * or the by-programme table of figures shown by programme only. */
static bool
with_totals(const struct spec *s, enum grouping by)
{
	return by == BY_REGION || (by == BY_PROGRAMME && !(s->groupings & (1u << BY_REGION)));
}

/*
 * Counts: every cell and every total the sum of its perturbed atoms, so tables
 * add up, across tables and reports too. Row totals where the categories are
 * exclusive; the totals per category (the state's) in the
 * by-region table only: the by-kind table would repeat the same figures.
 */
static json_t *
count_table(const struct input *in, const struct spec *s, enum grouping by)
{
	const char *const *rows = group_codes(in, s, by);
	struct matrix m = { .cols = count_of(s->codes), .exact = s->programme_own };
	matrix_fill(&m, in, s, by, s->dimension, s->codes);
	json_t *table = table_new(s, by, "count");
	json_t *cells = json_object_get(table, "cells");
	const char *g = grouping_name[by];
	size_t nrows = count_of(rows);
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < m.cols; c++)
			json_array_append_new(
			    cells, count_cell(cell_new(g, rows[r], s->column, s->codes[c]),
			               measure(in, &m, (long)r, (long)c)));
	/* Totals: the summed-over dimension is null. */
	if (s->exclusive)
		for (size_t r = 0; r < nrows; r++)
			json_array_append_new(
			    cells, count_cell(cell_new(g, rows[r], s->column, NULL),
			               measure(in, &m, (long)r, -1)));
	if (with_totals(s, by)) {
		for (size_t c = 0; c < m.cols; c++)
			json_array_append_new(
			    cells, count_cell(cell_new(g, NULL, s->column, s->codes[c]),
			               measure(in, &m, -1, (long)c)));
		if (s->exclusive)
			json_array_append_new(cells, count_cell(cell_new(g, NULL, s->column, NULL),
			                                 measure(in, &m, -1, -1)));
	}
	matrix_free(&m);
	return table;
}

/* The share of yes among yes and no, from the published counts; null if none. */
static json_t *
share_cell(json_t *cell, struct figure yes, struct figure no)
{
	long long answered = yes.published + no.published;
	if (answered == 0)
		return cell_finish(cell, json_null(), NULL); /* nothing answered: no share */
	return cell_finish(
	    cell, json_real(round_to(100.0 * (double)yes.published / (double)answered, 1)), NULL);
}

/*
 * Shares of "yes" per fact, each from the perturbed yes and no counts: a share
 * and the number answered give back no more than those two perturbed counts.
 */
static json_t *
share_table(const struct input *in, const struct spec *s, enum grouping by)
{
	const char *const *rows = group_codes(in, s, by);
	json_t *table = table_new(s, by, "share");
	json_t *cells = json_object_get(table, "cells");
	const char *g = grouping_name[by];
	for (size_t f = 0; s->codes[f] != NULL; f++) {
		struct matrix m = { .cols = 2 };
		matrix_fill(&m, in, s, by, s->codes[f], yes_no);
		for (size_t r = 0; rows[r] != NULL; r++)
			json_array_append_new(
			    cells, share_cell(cell_new(g, rows[r], s->column, s->codes[f]),
			               measure(in, &m, (long)r, 0), measure(in, &m, (long)r, 1)));
		if (with_totals(s, by))
			json_array_append_new(
			    cells, share_cell(cell_new(g, NULL, s->column, s->codes[f]),
			               measure(in, &m, -1, 0), measure(in, &m, -1, 1)));
		matrix_free(&m);
	}
	return table;
}

/* One observation of a numeric distribution: n cases of value x at an office. */
struct point {
	double x;
	long long n;
	int office;
};

static int
point_cmp(const void *a, const void *b)
{
	double x = ((const struct point *)a)->x, y = ((const struct point *)b)->x;
	return (x > y) - (x < y);
}

/* The value at 1-based position k of the sorted, weighted points. */
static double
nth(const struct point *p, size_t n, long long k)
{
	long long seen = 0;
	for (size_t i = 0; i < n; i++) {
		seen += p[i].n;
		if (seen >= k)
			return p[i].x;
	}
	return n > 0 ? p[n - 1].x : 0;
}

/*
 * Why a comparison value over points may not be published, or NULL: it
 * needs min_offices offices, min_count cases and no dominating office.
 */
static const char *
comparison_blocked(const struct input *in, const struct point *p, size_t n)
{
	size_t offices = (size_t)PQntuples(in->offices);
	long long *per_office = xcalloc(offices, sizeof(long long));
	long long total = 0, top = 0;
	int contributing = 0;
	for (size_t i = 0; i < n; i++) {
		if (per_office[p[i].office] == 0)
			contributing++;
		per_office[p[i].office] += p[i].n;
		total += p[i].n;
	}
	for (size_t o = 0; o < offices; o++)
		if (per_office[o] > top)
			top = per_office[o];
	free(per_office);
	return sdc_median_blocked(in->rules, contributing, total, top);
}

static json_t *
median_cell(const struct input *in, json_t *cell, struct point *p, size_t n)
{
	const char *blocked = comparison_blocked(in, p, n);
	if (blocked != NULL)
		return cell_finish(cell, json_null(), blocked);
	qsort(p, n, sizeof(*p), point_cmp);
	long long total = 0;
	for (size_t i = 0; i < n; i++)
		total += p[i].n;
	double median = total % 2 ? nth(p, n, (total + 1) / 2)
	                          : (nth(p, n, total / 2) + nth(p, n, total / 2 + 1)) / 2;
	return cell_finish(cell, json_real(round_to(median, 1)), NULL);
}

/* Points of one group row (-1: all) of a numeric dimension of the table's source. */
static size_t
points_of(
    const struct input *in, const struct spec *s, enum grouping by, int row, struct point **out)
{
	const PGresult *res = source_of(in, s);
	size_t n = 0;
	*out = NULL;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *dim = PQgetvalue(res, i, 1);
		if (!dimension_matches(by, dim, s->dimension))
			continue;
		int o = office_of(in, PQgetvalue(res, i, 0));
		if (o < 0 || (row >= 0 && record_row(in, s, by, res, i, o, s->dimension) != row))
			continue;
		char *end;
		double x = strtod(PQgetvalue(res, i, 2), &end);
		if (*end != '\0')
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof(**out));
		(*out)[n++] = (struct point){ x, atoll(PQgetvalue(res, i, 3)), o };
	}
	return n;
}

static json_t *
median_table(const struct input *in, const struct spec *s, enum grouping by)
{
	const char *const *rows = group_codes(in, s, by);
	json_t *table = table_new(s, by, "median");
	json_t *cells = json_object_get(table, "cells");
	struct point *p;
	for (int r = 0; rows[r] != NULL; r++) {
		size_t n = points_of(in, s, by, r, &p);
		json_array_append_new(
		    cells, median_cell(in, cell_new(grouping_name[by], rows[r], NULL, NULL), p, n));
		free(p);
	}
	if (with_totals(s, by)) {
		size_t n = points_of(in, s, by, -1, &p);
		json_array_append_new(
		    cells, median_cell(in, cell_new(grouping_name[by], NULL, NULL, NULL), p, n));
		free(p);
	}
	return table;
}

static int
double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Linear interpolation between order statistics, as PostgreSQL's percentile_cont. */
static double
percentile(const double *v, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t lo = (size_t)floor(pos);
	size_t hi = lo + 1 < n ? lo + 1 : lo;
	return v[lo] + (pos - (double)lo) * (v[hi] - v[lo]);
}

/*
 * Quartiles of an indicator over the offices of a group. No minimum or
 * maximum is published: the extremes are single offices' values.
 */
static void
quantile_cells(const struct input *in, json_t *cells, enum grouping by, const char *group, int row,
    const char *indicator)
{
	size_t n = 0;
	double *v = xcalloc((size_t)PQntuples(in->structure) + 1, sizeof(double));
	for (int i = 0; i < PQntuples(in->structure); i++) {
		int o = office_of(in, PQgetvalue(in->structure, i, 0));
		if (o < 0 || strcmp(PQgetvalue(in->structure, i, 1), indicator) != 0 ||
		    (row >= 0 && row_of(in, by, o, NULL, NULL) != row))
			continue;
		v[n++] = strtod(PQgetvalue(in->structure, i, 2), NULL);
	}
	qsort(v, n, sizeof(double), double_cmp);
	bool allowed = sdc_comparison_allowed(in->rules, (int)n);
	for (size_t k = 0; statistics[k] != NULL; k++) {
		json_t *cell = cell_new(grouping_name[by], group, "indicator", indicator);
		json_object_set_new(cell, "statistic", json_string(statistics[k]));
		if (k == 0) {
			json_array_append_new(
			    cells, cell_finish(cell, json_integer((json_int_t)n), NULL));
			continue;
		}
		double q = k == 1 ? 0.25 : k == 2 ? 0.5 : 0.75;
		json_array_append_new(cells,
		    allowed ? cell_finish(cell, json_real(round_to(percentile(v, n, q), 2)), NULL)
		            : cell_finish(cell, json_null(), "min_offices"));
	}
	free(v);
}

static json_t *
quantiles_table(const struct input *in, const struct spec *s, enum grouping by)
{
	const char *const *rows = group_codes(in, s, by);
	json_t *table = table_new(s, by, "quantiles");
	json_t *cells = json_object_get(table, "cells");
	for (size_t k = 0; s->codes[k] != NULL; k++) {
		for (int r = 0; rows[r] != NULL; r++)
			quantile_cells(in, cells, by, rows[r], r, s->codes[k]);
		if (by == BY_REGION)
			quantile_cells(in, cells, by, NULL, -1, s->codes[k]);
	}
	return table;
}

/* Each cell of a table by programme names its programme's title beside its id
 * (`programme_title`), for the HTML report; the totals name none. */
static void
programme_titles(const struct input *in, json_t *table)
{
	size_t i;
	json_t *cell;
	json_array_foreach(json_object_get(table, "cells"), i, cell)
	{
		const char *id = json_string_value(json_object_get(cell, "programme"));
		int at = id ? index_of((const char *const *)in->programme_ids, id) : -1;
		if (at >= 0)
			json_object_set_new(cell, "programme_title",
			    json_string(PQgetvalue(in->programmes, at, 1)));
	}
}

/* The cycle a calendar year reports coverage for: the one running at its end. */
static void
cycle_of(const struct report_params *p, char *out, size_t size)
{
	out[0] = '\0';
	if (p->first_year != p->last_year) {
		snprintf(out, size, "%s", p->period);
	} else if (p->first_year >= 2023) {
		int start = 2023 + (p->first_year - 2023) / 5 * 5;
		snprintf(out, size, "%d-%d", start, start + 5);
	}
}

int
stats_load(
    struct db *db, const struct report_params *p, const char *release, struct stats_source *src)
{
	char year[12], cycle[24];
	snprintf(year, sizeof(year), "%d", p->first_year);
	int is_year = p->first_year == p->last_year;
	cycle_of(p, cycle, sizeof(cycle));
	const char *region = p->region[0] ? p->region : NULL;
	const char *period[] = { region, is_year ? year : NULL, is_year ? NULL : p->period,
		release };
	const char *with_cycle[] = { region, cycle };
	const char *when[] = { period[1], period[2], release };
	memset(src, 0, sizeof(*src));
	if ((src->offices = db_exec(db, &stmt_offices, 1, period)) == NULL ||
	    (src->counts = db_exec(db, &stmt_rollups, 4, period)) == NULL ||
	    (src->structure = db_exec(db, &stmt_structure, 4, period)) == NULL ||
	    (src->concepts = db_exec(db, &stmt_concepts, 1, period)) == NULL ||
	    (src->programmes = db_exec(db, &stmt_programmes, 2, when)) == NULL ||
	    (src->programme_figures = db_exec(db, &stmt_programme_figures, 3, when)) == NULL ||
	    (cycle[0] && (src->coverage = db_exec(db, &stmt_coverage, 2, with_cycle)) == NULL)) {
		stats_source_clear(src);
		return -1;
	}
	return 0;
}

void
stats_source_clear(struct stats_source *src)
{
	PQclear(src->offices);
	PQclear(src->counts);
	PQclear(src->coverage);
	PQclear(src->structure);
	PQclear(src->concepts);
	PQclear(src->programmes);
	PQclear(src->programme_figures);
	memset(src, 0, sizeof(*src));
}

int
stats_build(const struct stats_source *src, const struct report_params *p,
    const struct sdc_rules *rules, const struct ckm_table *ckm, json_t *out)
{
	struct input in = { .p = p,
		.rules = rules,
		.ckm = ckm,
		.offices = src->offices,
		.counts = src->counts,
		.coverage = src->coverage,
		.structure = src->structure,
		.concepts = src->concepts,
		.programmes = src->programmes,
		.figures = src->programme_figures,
		.office_index = json_object() };
	int rc = -1;
	size_t nregions = 0;
	for (size_t i = 0; regions[i]; i++)
		if (!p->region[0] || strcmp(p->region, regions[i]) == 0)
			in.scope_regions[nregions++] = regions[i];
	char cycle[24];
	cycle_of(p, cycle, sizeof(cycle));
	for (int i = 0; i < PQntuples(in.offices); i++)
		json_object_set_new(in.office_index, PQgetvalue(in.offices, i, 0), json_integer(i));
	int nprogrammes = in.programmes ? PQntuples(in.programmes) : 0;
	in.programme_ids = xcalloc((size_t)nprogrammes + 1, sizeof(*in.programme_ids));
	for (int i = 0; i < nprogrammes; i++)
		in.programme_ids[i] = PQgetvalue(in.programmes, i, 0);

	for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
		const struct spec *s = &specs[i];
		if (s->needs_cycle && (!cycle[0] || in.coverage == NULL))
			continue;
		if (s->source == FROM_CONCEPTS && in.concepts == NULL)
			continue;
		if (s->source == FROM_PROGRAMMES && (in.figures == NULL || in.programmes == NULL))
			continue;
		if (s->programme_own && p->region[0])
			continue;
		for (int by = BY_REGION; by <= BY_PROGRAMME; by++) {
			if (!(s->groupings & (1u << by)))
				continue;
			json_t *t = s->measure == M_COUNT   ? count_table(&in, s, (enum grouping)by)
			            : s->measure == M_SHARE ? share_table(&in, s, (enum grouping)by)
			            : s->measure == M_MEDIAN
			                ? median_table(&in, s, (enum grouping)by)
			                : quantiles_table(&in, s, (enum grouping)by);
			if (t == NULL)
				goto out;
			if (s->needs_cycle)
				json_object_set_new(t, "cycle", json_string(cycle));
			if (by == BY_PROGRAMME)
				programme_titles(&in, t);
			json_array_append_new(out, t);
		}
	}
	rc = 0;
out:
	json_decref(in.office_index);
	free(in.programme_ids);
	return rc;
}

int
stats_tables(struct db *db, const struct report_params *p, const char *release,
    const struct sdc_rules *rules, const struct ckm_table *ckm, json_t *out)
{
	struct stats_source src;
	if (stats_load(db, p, release, &src) != 0)
		return -1;
	int rc = stats_build(&src, p, rules, ckm, out);
	stats_source_clear(&src);
	return rc;
}
