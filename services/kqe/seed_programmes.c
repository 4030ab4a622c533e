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
 *
 * Their events: the pilot's working group (six meetings, past, with attendance
 * recorded, three people from each pilot office and two more waiting), its
 * expert workshop and transfer conference; the quality offensive's online
 * seminars, network meetings and participation workshops (2027, to come); the
 * nationwide programme's quality workshops, five two-day meetings one every
 * two months.
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

/* kind, programme, title, online, place, capacity, per-office limit, participants only,
 * dates (JSON, UTC). */
static const struct {
	const char *slug, *programme, *kind, *title;
	bool online;
	const char *place;
	int capacity, per_office_limit;
	bool participants_only;
	const char *dates;
} demo_events[] = {
	{ "pilot-working-group", "lksg7-pilot", "working_group_meeting",
	    "Arbeitsgruppe Modellprojekt § 7 (synthetisch)", false, "Köln", 24, 3, true,
	    "[{\"starts_at\":\"2024-05-14T08:00:00Z\",\"ends_at\":\"2024-05-14T14:00:00Z\"},"
	    "{\"starts_at\":\"2024-07-09T08:00:00Z\",\"ends_at\":\"2024-07-09T14:00:00Z\"},"
	    "{\"starts_at\":\"2024-09-10T08:00:00Z\",\"ends_at\":\"2024-09-10T14:00:00Z\"},"
	    "{\"starts_at\":\"2024-11-12T09:00:00Z\",\"ends_at\":\"2024-11-12T15:00:00Z\"},"
	    "{\"starts_at\":\"2025-01-14T09:00:00Z\",\"ends_at\":\"2025-01-14T15:00:00Z\"},"
	    "{\"starts_at\":\"2025-03-11T09:00:00Z\",\"ends_at\":\"2025-03-11T15:00:00Z\"}]" },
	{ "pilot-expert-workshop", "lksg7-pilot", "expert_workshop",
	    "Fachworkshop mit externen Fachleuten (synthetisch)", false, "Münster", 40, 4, true,
	    "[{\"starts_at\":\"2025-04-08T08:00:00Z\",\"ends_at\":\"2025-04-08T15:00:00Z\"}]" },
	{ "pilot-transfer", "lksg7-pilot", "transfer_conference",
	    "Transfertagung Qualitätsberatung (synthetisch)", false, "Düsseldorf", 200, 0, false,
	    "[{\"starts_at\":\"2025-11-20T08:00:00Z\",\"ends_at\":\"2025-11-20T15:00:00Z\"}]" },
	{ "qo-seminars", "qualitaetsoffensive", "online_seminar",
	    "Online-Seminare Schutzkonzepte in der Pflegekinderhilfe (synthetisch)", true, NULL,
	    100, 0, false,
	    "[{\"starts_at\":\"2027-02-03T13:00:00Z\",\"ends_at\":\"2027-02-03T15:00:00Z\"},"
	    "{\"starts_at\":\"2027-03-03T13:00:00Z\",\"ends_at\":\"2027-03-03T15:00:00Z\"},"
	    "{\"starts_at\":\"2027-04-07T12:00:00Z\",\"ends_at\":\"2027-04-07T14:00:00Z\"},"
	    "{\"starts_at\":\"2027-05-05T12:00:00Z\",\"ends_at\":\"2027-05-05T14:00:00Z\"}]" },
	{ "qo-network", "qualitaetsoffensive", "network_meeting",
	    "Netzwerktreffen Pflegekinderhilfe online (synthetisch)", true, NULL, 60, 0, false,
	    "[{\"starts_at\":\"2027-01-20T09:00:00Z\",\"ends_at\":\"2027-01-20T11:00:00Z\"},"
	    "{\"starts_at\":\"2027-04-21T08:00:00Z\",\"ends_at\":\"2027-04-21T10:00:00Z\"},"
	    "{\"starts_at\":\"2027-07-21T08:00:00Z\",\"ends_at\":\"2027-07-21T10:00:00Z\"},"
	    "{\"starts_at\":\"2027-10-20T08:00:00Z\",\"ends_at\":\"2027-10-20T10:00:00Z\"}]" },
	{ "qo-participation", "qualitaetsoffensive", "participation_workshop",
	    "Beteiligungswerkstatt mit jungen Menschen und Pflegeeltern (synthetisch)", false,
	    "Dortmund", 30, 2, false,
	    "[{\"starts_at\":\"2027-03-13T09:00:00Z\",\"ends_at\":\"2027-03-13T15:00:00Z\"},"
	    "{\"starts_at\":\"2027-09-11T08:00:00Z\",\"ends_at\":\"2027-09-11T14:00:00Z\"}]" },
	{ "afl-workshops", "aus-fehlern-lernen", "workshop", "Qualitätswerkstätten (synthetisch)",
	    false, "Köln", 360, 30, true,
	    "[{\"starts_at\":\"2009-11-05T08:00:00Z\",\"ends_at\":\"2009-11-06T15:00:00Z\"},"
	    "{\"starts_at\":\"2010-01-14T08:00:00Z\",\"ends_at\":\"2010-01-15T15:00:00Z\"},"
	    "{\"starts_at\":\"2010-03-11T08:00:00Z\",\"ends_at\":\"2010-03-12T15:00:00Z\"},"
	    "{\"starts_at\":\"2010-05-06T07:00:00Z\",\"ends_at\":\"2010-05-07T14:00:00Z\"},"
	    "{\"starts_at\":\"2010-07-08T07:00:00Z\",\"ends_at\":\"2010-07-09T14:00:00Z\"}]" },
};

/* $10 the dates as given; stored in UTC as the API writes timestamps (EVENT_DATES in
 * services/api/handlers/events.c). */
#define DEMO_EVENT_ID DEMO_UUID_SQL("'demo-event:' || $1")
#define DEMO_EVENT_PROGRAMME DEMO_UUID_SQL("'demo-programme:' || $2")
#define DEMO_DATE(which, pick) "(" pick "->>'" which "')::timestamptz"
static const struct db_stmt stmt_event = {
	"seed_event_insert",
	"INSERT INTO events (id, programme_id, kind, title, online, place, capacity,"
	" per_office_limit, participants_only, dates, starts_at, ends_at, created_at, updated_at)"
	" SELECT " DEMO_EVENT_ID ", " DEMO_EVENT_PROGRAMME ", $3, $4, $5::boolean, $6,"
	" $7::integer, nullif($8::integer, 0), $9::boolean,"
	" (SELECT jsonb_agg(jsonb_build_object('starts_at', kqe_ts(" DEMO_DATE(
	    "starts_at", "d") "), 'ends_at', kqe_ts(" DEMO_DATE("ends_at",
	    "d") ")) ORDER BY n)"
	         "  FROM jsonb_array_elements($10::jsonb) WITH ORDINALITY AS x(d, n)),"
	         " " DEMO_DATE("starts_at",
	             "$10::jsonb->0") ","
	                              " " DEMO_DATE("ends_at",
	                                  "$10::jsonb->(jsonb_array_length($10::jsonb) - 1)") ","
	                                                                                      " " DEMO_DATE(
	                                                                                          "starts_at",
	                                                                                          "$10::jsonb->0") " - interval '8 weeks',"
	                                                                                                           " " DEMO_DATE(
	                                                                                                               "starts_at",
	                                                                                                               "$10::jsonb->0") " - interval '8 weeks'"
	                                                                                                                                " ON CONFLICT (id) DO NOTHING"
};
/* The pilot offices (selected in the § 7 call), in id order. */
static const struct db_stmt stmt_pilots = { "seed_pilot_offices",
	"SELECT office_id FROM applications WHERE call_id = " CALL_ID(
	    "lksg7-pilot") " AND status = 'selected' ORDER BY office_id" };
static const struct db_stmt stmt_registration = { "seed_registration_insert",
	"INSERT INTO event_registrations (id, event_id, programme_id, office_id, person_enc,"
	" email_key, status, attended, registered_by, created_at, updated_at)"
	" SELECT $1::uuid, e.id, e.programme_id, $2, $3, $4, $5, $6::boolean[], 'office',"
	" e.created_at + $7::integer * interval '1 minute', e.ends_at"
	" FROM events e WHERE e.id = " DEMO_UUID_SQL(
	    "'demo-event:pilot-working-group'") " ON CONFLICT (id) DO NOTHING" };

/* Professionals of the quality offensive: approved, confirmed and waiting for it, and one
 * that never confirmed its address; seats are municipalities of NRW. */
static const struct db_stmt stmt_professional = { "seed_professional_insert",
	"INSERT INTO professionals (id, programme_id, person_enc, email_key, seat, seat_ags, status,"
	" confirm_hash, confirm_expires, confirmed_at, decided_at, created_at, updated_at)"
	" SELECT $1::uuid, " PROGRAMME_ID(
	    "qualitaetsoffensive") ", $2, $3, m.name, m.ags, $4, $5,"
	                           " '2025-02-08', CASE WHEN $4 <> 'unconfirmed' THEN timestamptz '2025-02-02' END,"
	                           " CASE WHEN $4 IN ('approved', 'rejected') THEN timestamptz '2025-02-05' END,"
	                           " '2025-02-01', '2025-02-05'"
	                           " FROM municipalities m WHERE m.ags = (SELECT ags FROM municipalities ORDER BY md5($1 || ags)"
	                           "  LIMIT 1) ON CONFLICT (id) DO NOTHING" };

/*
 * The materials libraries: what each programme passes on (public) and keeps for its
 * participants, a short text file each or a link to a recording.
 */
/* clang-format off */
static const struct db_stmt stmt_materials = { "seed_materials_insert",
	"INSERT INTO materials (id, programme_id, kind, title, description, link, visibility,"
	" file_name, file_type, file_size, file_sha256, file_uploaded_at, created_at, updated_at)"
	" SELECT " DEMO_UUID_SQL("'demo-material:' || m.slug") ","
	" " DEMO_UUID_SQL("'demo-programme:' || m.programme") ", m.kind, m.title, NULL, m.link,"
	" m.visibility, m.file_name, CASE WHEN m.body IS NOT NULL THEN 'text/plain' END,"
	" octet_length(convert_to(m.body, 'UTF8')), encode(sha256(convert_to(m.body, 'UTF8')), 'hex'),"
	" CASE WHEN m.body IS NOT NULL THEN timestamptz '2025-03-01' END,"
	" timestamptz '2025-03-01', timestamptz '2025-03-01'"
	" FROM (VALUES"
	" ('lksg7-pruefbogen', 'lksg7-pilot', 'instrument', 'Prüfbogen Qualitätsberatung (synthetisch)',"
	"  NULL, 'public', 'Pruefbogen.txt', 'Prüfbogen für die Qualitätsberatung nach § 7 (synthetisch)'),"
	" ('lksg7-folien', 'lksg7-pilot', 'slides', 'Folien der Transfertagung (synthetisch)',"
	"  NULL, 'programme', 'Folien-Transfertagung.txt', 'Folien der Transfertagung (synthetisch)'),"
	" ('qo-aufzeichnung', 'qualitaetsoffensive', 'recording',"
	"  'Aufzeichnung Online-Seminar Schutzkonzepte (synthetisch)',"
	"  'https://video.pflegekinderhilfe.example/online-seminar-1', 'programme', NULL, NULL),"
	" ('qo-beteiligung', 'qualitaetsoffensive', 'method',"
	"  'Methoden der Beteiligung junger Menschen (synthetisch)', NULL, 'programme',"
	"  'Beteiligung.txt', 'Methoden der Beteiligung junger Menschen (synthetisch)'),"
	" ('afl-fallanalyse', 'aus-fehlern-lernen', 'instrument',"
	"  'Instrument der Fallanalyse (synthetisch)', NULL, 'public', 'Fallanalyse.txt',"
	"  'Instrument der Fallanalyse für andere Kommunen (synthetisch)')"
	" ) AS m(slug, programme, kind, title, link, visibility, file_name, body)"
	" ON CONFLICT (id) DO NOTHING" };
static const struct db_stmt stmt_material_files = { "seed_material_files_insert",
	"INSERT INTO material_files (material_id, content)"
	" SELECT m.id, convert_to(b.body, 'UTF8') FROM (VALUES"
	" ('lksg7-pruefbogen', 'Prüfbogen für die Qualitätsberatung nach § 7 (synthetisch)'),"
	" ('lksg7-folien', 'Folien der Transfertagung (synthetisch)'),"
	" ('qo-beteiligung', 'Methoden der Beteiligung junger Menschen (synthetisch)'),"
	" ('afl-fallanalyse', 'Instrument der Fallanalyse für andere Kommunen (synthetisch)')"
	" ) AS b(slug, body) JOIN materials m ON m.id = " DEMO_UUID_SQL("'demo-material:' || b.slug")
	" ON CONFLICT (material_id) DO NOTHING" };
/* clang-format on */

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

/*
 * Three people from each pilot office in the working group (24 places, 3 per office), and
 * one more from each of the first two offices, who wait: the office's share is full.
 * Attendance of the six meetings from the person's number.
 */
static int
seed_working_group(struct demo_seed *s)
{
	PGresult *pilots = db_exec(s->db, &stmt_pilots, 0, NULL);
	if (pilots == NULL)
		return -1;
	int rc = 0, n = 0;
	for (int i = 0; i < PQntuples(pilots) && rc == 0; i++) {
		const char *office = PQgetvalue(pilots, i, 0);
		for (int k = 1; k <= (i < 2 ? 4 : 3) && rc == 0; k++, n++) {
			char name[128], email[160], key[PSEUDONYM_LEN + 1], attended[64],
			    minute[16];
			snprintf(name, sizeof(name), "demo-registration:pilot-working-group:%s:%d",
			    office, k);
			char *id = demo_id(s, name);
			if (id == NULL) {
				rc = -1;
				break;
			}
			snprintf(
			    email, sizeof(email), "fachkraft-%d.%s@example.invalid", k, office);
			pseudonym(s->pseudonymizer, office, email, key);
			json_t *person = json_pack("{s:s,s:s,s:s}", "email", email, "first_name",
			    "Fachkraft (synthetisch)", "last_name", office);
			char *dump = json_dumps(person, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(person);
			char aad[128];
			snprintf(aad, sizeof(aad), "event_registration:%s:person", id);
			char *sealed = keyring_encrypt(s->keyring, dump, strlen(dump), aad);
			free(dump);
			bool waits = k == 4;
			snprintf(attended, sizeof(attended), "{%s}",
			    waits          ? "false,false,false,false,false,false"
			    : (n % 4 == 0) ? "true,true,false,true,true,true"
			                   : "true,true,true,true,true,true");
			snprintf(minute, sizeof(minute), "%d", n);
			const char *params[] = { id, office, sealed, key,
				waits ? "waitlisted" : "registered", attended, minute };
			rc = sealed != NULL ? exec(s, &stmt_registration, 7, params) : -1;
			free(sealed);
			free(id);
		}
	}
	PQclear(pilots);
	return rc;
}

static int
seed_professionals(struct demo_seed *s)
{
	static const char *const statuses[] = { "approved", "approved", "approved", "approved",
		"approved", "approved", "confirmed", "confirmed", "unconfirmed", "rejected" };
	for (size_t i = 0; i < ARRAY_LEN(statuses); i++) {
		char name[96], email[96], key[PSEUDONYM_LEN + 1], hash[65];
		snprintf(name, sizeof(name), "demo-professional:qualitaetsoffensive:%zu", i + 1);
		char *id = demo_id(s, name);
		char *programme = demo_id(s, "demo-programme:qualitaetsoffensive");
		if (id == NULL || programme == NULL) {
			free(id);
			free(programme);
			return -1;
		}
		snprintf(email, sizeof(email), "fachkraft-%zu@pflegekinderdienst.example.invalid",
		    i + 1);
		pseudonym(s->pseudonymizer, programme, email, key);
		/* A link nobody holds: the hash of the registration's own id. */
		pseudonym(s->pseudonymizer, "demo-confirm", id, hash);
		json_t *person = json_pack("{s:s,s:s,s:s,s:s,s:s}", "email", email, "first_name",
		    "Fachkraft (synthetisch)", "institution", "Pflegekinderdienst (synthetisch)",
		    "last_name", name + strlen(name) - 1, "position",
		    "Fachberatung Pflegekinderhilfe");
		char *dump = json_dumps(person, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(person);
		char aad[128];
		snprintf(aad, sizeof(aad), "professional:%s:person", id);
		char *sealed = keyring_encrypt(s->keyring, dump, strlen(dump), aad);
		free(dump);
		const char *params[] = { id, sealed, key, statuses[i], hash };
		int rc = sealed != NULL ? exec(s, &stmt_professional, 5, params) : -1;
		free(sealed);
		free(id);
		free(programme);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int
seed_events(struct demo_seed *s)
{
	for (size_t i = 0; i < ARRAY_LEN(demo_events); i++) {
		char capacity[16], limit[16];
		snprintf(capacity, sizeof(capacity), "%d", demo_events[i].capacity);
		snprintf(limit, sizeof(limit), "%d", demo_events[i].per_office_limit);
		const char *params[] = { demo_events[i].slug, demo_events[i].programme,
			demo_events[i].kind, demo_events[i].title,
			demo_events[i].online ? "true" : "false", demo_events[i].place, capacity,
			limit, demo_events[i].participants_only ? "true" : "false",
			demo_events[i].dates };
		if (exec(s, &stmt_event, 10, params) != 0)
			return -1;
	}
	return seed_working_group(s) != 0 ? -1 : seed_professionals(s);
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
	if (seed_events(s) != 0) {
		snprintf(summary, size, "events and registrations");
		return -1;
	}
	if (exec(s, &stmt_materials, 0, NULL) != 0 || exec(s, &stmt_material_files, 0, NULL) != 0) {
		snprintf(summary, size, "materials");
		return -1;
	}
	snprintf(summary, size,
	    "demo: 3 programmes, 2 calls, 74 applications (30 from offices outside NRW), "
	    "12 clusters, 7 events, 26 registrations, 10 professionals, 5 materials");
	return 0;
}
