/*
 * The demo's programmes (docs/programmes.md), after the three the platform was
 * founded on, every name marked "(synthetisch)":
 *   - the § 7 pilot: a call for expressions of interest, 14 applications, 8
 *     offices selected as pilot offices;
 *   - the foster-care quality offensive (§ 10), which offices join without a
 *     call;
 *   - a nationwide programme like "Aus Fehlern lernen": 60 applications, half
 *     of them from offices in other Länder (synthetic, in offices_elsewhere),
 *     12 model and 36 partner municipalities selected, forming 12 clusters of
 *     a model municipality and three partners.
 * Who applies is decided by md5 of the office id, the answers by the
 * applicant's position; ids are DEMO_UUID_SQL of a fixed name, so a second run
 * writes nothing new (ON CONFLICT DO NOTHING).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kqe/codelists.h"
#include "seed_cases.h"

#define PROGRAMME_ID(slug) DEMO_UUID_SQL("'demo-programme:" slug "'")
#define CALL_ID(slug) DEMO_UUID_SQL("'demo-call:" slug "'")

static const struct db_stmt stmt_programmes = {
	"seed_programmes_insert",
	"INSERT INTO programmes (id, title, legal_basis, sponsor, commissioned_by, run_by,"
	" starts_on, ends_on, nrw_only, synthetic) VALUES"
	" (" PROGRAMME_ID(
	    "lksg7-pilot") ", 'Modellprojekt Qualitätsberatung nach § 7 LKSG NRW"
	                   " (synthetisch)', '§ 7 LKSG NRW', 'Land Nordrhein-Westfalen', 'Ministerium für Kinder,"
	                   " Jugend, Familie, Gleichstellung, Flucht und Integration NRW',"
	                   " 'LVR- und LWL-Landesjugendamt', '2024-01-01', '2025-12-31', true, true),"
	                   " (" PROGRAMME_ID(
	                       "qualitaetsoffensive") ", 'Qualitätsoffensive Pflegekinderhilfe NRW"
	                                              " (synthetisch)', '§ 10 LKSG NRW, § 37b SGB VIII', 'Land Nordrhein-Westfalen', NULL,"
	                                              " 'Servicestelle Pflegekinderhilfe', '2025-01-01', '2027-12-31', true, true),"
	                                              " (" PROGRAMME_ID(
	                                                  "aus-fehlern-lernen") ", 'Aus Fehlern lernen – Qualitätsmanagement im"
	                                                                        " Kinderschutz (synthetisch)', 'Bundesprogramm Frühe Hilfen', 'Bund', 'Nationales Zentrum"
	                                                                        " Frühe Hilfen', 'Nationales Zentrum Frühe Hilfen und Partner', '2009-09-01',"
	                                                                        " '2010-12-31', false, true)"
	                                                                        " ON CONFLICT (id) DO NOTHING"
};

static const struct db_stmt stmt_calls = { "seed_calls_insert",
	"INSERT INTO calls (id, programme_id, title, description, deadline, criteria, places,"
	" created_at, updated_at) VALUES"
	" (" CALL_ID("lksg7-pilot") ", " PROGRAMME_ID(
	    "lksg7-pilot") ","
	                   " 'Interessenbekundung Modellprojekt § 7 (synthetisch)', NULL, '2024-03-31T22:00:00Z',"
	                   " '[{\"id\": \"interest\", \"text\": \"Ausdrückliches Interesse an Qualitätsentwicklung\","
	                   " \"answer\": \"yes_no\", \"weight\": 3}, {\"id\": \"capacity\", \"text\": \"Personelle"
	                   " Kapazität für die Modellphase\", \"answer\": \"yes_no\", \"weight\": 2}, {\"id\":"
	                   " \"motivation\", \"text\": \"Was möchten Sie erproben?\", \"answer\": \"text\"}]',"
	                   " '{\"pilot\": 8}', '2024-01-15', '2024-01-15'),"
	                   " (" CALL_ID("aus-fehlern-lernen") ", " PROGRAMME_ID(
	                       "aus-fehlern-lernen") ","
	                                             " 'Bewerbung als Modell- oder Partnerkommune (synthetisch)', NULL,"
	                                             " '2009-07-31T22:00:00Z',"
	                                             " '[{\"id\": \"interest\", \"text\": \"Ausdrückliches Interesse an Qualitätsentwicklung\","
	                                             " \"answer\": \"yes_no\", \"weight\": 3}, {\"id\": \"problematic-cases\", \"text\":"
	                                             " \"Erfahrung mit problematischen Fallverläufen, aus denen gelernt werden soll\","
	                                             " \"answer\": \"yes_no\", \"weight\": 2}, {\"id\": \"setting\", \"text\": \"Region und"
	                                             " Struktur (städtisch, ländlich)\", \"answer\": \"text\"}]',"
	                                             " '{\"model\": 12, \"partner\": 36}', '2009-05-01', '2009-05-01')"
	                                             " ON CONFLICT (id) DO NOTHING" };

/* Two synthetic offices in each other Land, for the nationwide programme. */
static const struct db_stmt stmt_elsewhere = { "seed_offices_elsewhere",
	"INSERT INTO offices_elsewhere (id, name, kind, state, population_under_18, synthetic)"
	" SELECT 'demo-' || lower(s) || '-' || n, 'Jugendamt Demo-Ort ' || s || ' ' || n"
	" || ' (synthetisch)', CASE WHEN n = 1 THEN 'kreisfreie_stadt' ELSE 'kreis' END, s,"
	" 15000 + 20000 * n, true"
	" FROM unnest($1::text[]) AS s, generate_series(1, 2) AS n ON CONFLICT (id) DO NOTHING" };

/* The applicants of a call: n NRW demo offices chosen by md5, and all from elsewhere. */
static const struct db_stmt stmt_applicants = { "seed_applicants",
	"SELECT id FROM (SELECT id, md5($1 || id) AS k FROM offices WHERE id LIKE 'demo-%'"
	" ORDER BY k LIMIT $2::integer) AS o"
	" UNION ALL SELECT id FROM (SELECT id FROM offices_elsewhere WHERE $3::boolean"
	" AND id LIKE 'demo-%' ORDER BY id) AS e" };
static const struct db_stmt stmt_uuid = { "seed_programme_uuid",
	"SELECT " DEMO_UUID_SQL("$1") "::text" };
static const struct db_stmt stmt_application = { "seed_application_insert",
	"INSERT INTO applications (id, call_id, programme_id, office_id, preferred_role,"
	" answers_enc, points, status, role, entered_by, decided_at, created_at, updated_at)"
	" SELECT $1::uuid, c.id, c.programme_id, $2, $3, $4, $5::integer, $6, $7,"
	" CASE WHEN $2 LIKE 'demo-lvr-%' OR $2 LIKE 'demo-lwl-%' THEN 'office'"
	"  ELSE 'programme_team' END, c.deadline + interval '3 weeks',"
	" c.deadline - interval '1 week', c.deadline + interval '3 weeks'"
	" FROM calls c WHERE c.id = $8::uuid ON CONFLICT (id) DO NOTHING" };
static const struct db_stmt stmt_cluster = { "seed_cluster_insert",
	"INSERT INTO clusters (id, programme_id, name, model_office_id, created_at, updated_at)"
	" SELECT $1::uuid, " PROGRAMME_ID(
	    "aus-fehlern-lernen") ", $2, $3, '2009-09-01',"
	                          " '2009-09-01' ON CONFLICT (id) DO NOTHING" };
static const struct db_stmt stmt_member = { "seed_cluster_member_insert",
	"INSERT INTO cluster_members (programme_id, office_id, cluster_id)"
	" SELECT " PROGRAMME_ID("aus-fehlern-lernen") ", $2, $1::uuid ON CONFLICT DO NOTHING" };

/* The demo id of name as text (owned by the caller), or NULL. */
static char *
demo_id(struct demo_seed *s, const char *name)
{
	const char *params[] = { name };
	PGresult *res = db_exec(s->db, &stmt_uuid, 1, params);
	if (res == NULL)
		return NULL;
	char *id = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return id;
}

static int
exec(struct demo_seed *s, const struct db_stmt *stmt, int n, const char *const *params)
{
	PGresult *res = db_exec(s->db, stmt, n, params);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* One call's applications: the first `selected` get role[i], the rest are not selected. */
struct demo_call {
	const char *slug; /* of the call and the programme */
	int nrw; /* NRW applicants */
	bool elsewhere; /* and all the offices elsewhere */
	const char *text_criterion; /* the id of its text criterion */
	const char *yes_no[2]; /* its yes/no criteria, weights 3 and 2 */
	int selected[2]; /* how many in the first role, then the second */
	const char *roles[2];
};

static const char *const settings[] = { "städtisch geprägt (synthetisch)",
	"ländlich geprägt (synthetisch)", "gemischt, Stadt und Umland (synthetisch)" };

static int
seed_call(struct demo_seed *s, const struct demo_call *c, char ***applicants, int *napplicants)
{
	char name[96], count[16];
	snprintf(name, sizeof(name), "demo-call:%s", c->slug);
	char *call = demo_id(s, name);
	snprintf(count, sizeof(count), "%d", c->nrw);
	const char *params[] = { c->slug, count, c->elsewhere ? "true" : "false" };
	PGresult *res = db_exec(s->db, &stmt_applicants, 3, params);
	if (call == NULL || res == NULL) {
		free(call);
		PQclear(res);
		return -1;
	}
	int n = PQntuples(res), rc = 0;
	*applicants = calloc((size_t)n, sizeof(char *));
	*napplicants = n;
	for (int i = 0; i < n && rc == 0; i++) {
		/* Interleave NRW and elsewhere so both are among the selected. */
		int row = c->elsewhere ? (i % 2 == 0 ? i / 2 : c->nrw + i / 2) : i;
		if (row >= n)
			row = i;
		const char *office = PQgetvalue(res, row, 0);
		(*applicants)[i] = xstrdup(office);
		snprintf(name, sizeof(name), "demo-application:%s:%s", c->slug, office);
		char *id = demo_id(s, name);
		if (id == NULL) {
			rc = -1;
			break;
		}
		bool yes0 = i % 5 != 4, yes1 = i % 3 != 2;
		json_t *answers = json_pack("{s:b,s:b,s:s}", c->yes_no[0], yes0, c->yes_no[1], yes1,
		    c->text_criterion, settings[i % 3]);
		char *dump = json_dumps(answers, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(answers);
		char aad[128], points[8];
		snprintf(aad, sizeof(aad), "application:%s:answers", id);
		char *sealed = keyring_encrypt(s->keyring, dump, strlen(dump), aad);
		free(dump);
		snprintf(points, sizeof(points), "%d", (yes0 ? 3 : 0) + (yes1 ? 2 : 0));
		const char *role = i < c->selected[0]                    ? c->roles[0]
		                   : i < c->selected[0] + c->selected[1] ? c->roles[1]
		                                                         : NULL;
		const char *row_params[] = { id, office, role ? role : c->roles[0], sealed, points,
			role ? "selected" : "rejected", role, call };
		rc = sealed != NULL ? exec(s, &stmt_application, 8, row_params) : -1;
		free(sealed);
		free(id);
	}
	PQclear(res);
	free(call);
	return rc;
}

static void
free_list(char **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* 12 clusters: model municipality k with partners 12 + 3k .. 12 + 3k + 2. */
static int
seed_clusters(struct demo_seed *s, char **applicants, int n)
{
	for (int k = 0; k < 12 && 12 + 3 * k + 2 < n; k++) {
		char name[64], key[96];
		snprintf(name, sizeof(name), "Cluster %d (synthetisch)", k + 1);
		snprintf(key, sizeof(key), "demo-cluster:aus-fehlern-lernen:%d", k + 1);
		char *id = demo_id(s, key);
		if (id == NULL)
			return -1;
		const char *params[] = { id, name, applicants[k] };
		int rc = exec(s, &stmt_cluster, 3, params);
		for (int m = -1; m < 3 && rc == 0; m++) {
			const char *member[] = { id,
				m < 0 ? applicants[k] : applicants[12 + 3 * k + m] };
			rc = exec(s, &stmt_member, 2, member);
		}
		free(id);
		if (rc != 0)
			return -1;
	}
	return 0;
}

int
seed_programmes(struct demo_seed *s, char *summary, size_t size)
{
	/* The Länder but NRW, as a PostgreSQL array literal, from the code list. */
	char states[128] = "{";
	for (const char *const *c = codelist_state_values; *c != NULL; c++) {
		if (strcmp(*c, "NW") == 0)
			continue;
		size_t n = strlen(states);
		snprintf(states + n, sizeof(states) - n, "%s%s", n > 1 ? "," : "", *c);
	}
	strncat(states, "}", sizeof(states) - strlen(states) - 1);
	const char *state_params[] = { states };
	if (exec(s, &stmt_elsewhere, 1, state_params) != 0 ||
	    exec(s, &stmt_programmes, 0, NULL) != 0 || exec(s, &stmt_calls, 0, NULL) != 0) {
		snprintf(summary, size, "programmes and calls");
		return -1;
	}
	static const struct demo_call pilot = { "lksg7-pilot", 14, false, "motivation",
		{ "interest", "capacity" }, { 8, 0 }, { "pilot", "pilot" } };
	static const struct demo_call nationwide = { "aus-fehlern-lernen", 30, true, "setting",
		{ "interest", "problematic-cases" }, { 12, 36 }, { "model", "partner" } };
	char **applicants = NULL;
	int n = 0;
	if (seed_call(s, &pilot, &applicants, &n) != 0) {
		free_list(applicants, n);
		snprintf(summary, size, "applications of the § 7 pilot");
		return -1;
	}
	free_list(applicants, n);
	int rc = seed_call(s, &nationwide, &applicants, &n);
	if (rc == 0)
		rc = seed_clusters(s, applicants, n);
	free_list(applicants, n);
	if (rc != 0) {
		snprintf(summary, size, "applications and clusters of the nationwide programme");
		return -1;
	}
	snprintf(summary, size,
	    "demo: 3 programmes, 2 calls, 74 applications (30 from offices outside NRW), "
	    "12 clusters");
	return 0;
}
