/*
 * Applications to a programme's call and the selection (docs/programmes.md):
 * an office's lead applies once per call, answering its criteria, until the
 * deadline; the programme's team enters applications that came by other
 * ways (an office outside NRW holds no account), and after the deadline
 * decides — selected for a role, waiting list, not selected — helped by a
 * ranked list with a diversity view (GET /v1/calls/{id}/ranking) that
 * supports the decision and does not make it. Places are never exceeded;
 * every decision is audited, and the office reads it on its application.
 * Invariants: migration 0023_programmes.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/problem.h"

#define ANSWER_MAX 4000 /* characters of a free-text answer */

static const struct field_spec fields[] = {
	{ .name = "call_id", .type = FIELD_UUID, .required = true, .immutable = true },
	/* The applying office: the caller's own (an office), or named by the programme team. */
	{ .name = "office_id", .type = FIELD_STRING, .immutable = true, .check = slug_id_check },
	FIELD_SPEC_CODE("preferred_role", codelist_programme_role_values),
	/* criterion id → true/false (yes_no) or text (text) */
	{ .name = "answers", .type = FIELD_MAP, .required = true, .max = ANSWER_MAX },
	{ .name = "status",
	    .type = FIELD_ENUM,
	    .update_only = true,
	    .values = codelist_application_status_values },
	{ .name = "role",
	    .type = FIELD_ENUM,
	    .nullable = true,
	    .update_only = true,
	    .values = codelist_programme_role_values },
	/* The programme team's assessment, for the ranking; the office does not see it. */
	{ .name = "score",
	    .type = FIELD_INTEGER,
	    .nullable = true,
	    .update_only = true,
	    .min = 0,
	    .max = 100 },
};

#define OFFICE ROLE_BIT(ROLE_OFFICE_LEAD)
#define TEAM ROLE_BIT(ROLE_PROGRAMME_TEAM)

static const struct move moves[] = {
	{ "submitted", "waitlisted", TEAM },
	{ "submitted", "selected", TEAM },
	{ "submitted", "rejected", TEAM },
	{ "waitlisted", "selected", TEAM },
	{ "waitlisted", "rejected", TEAM },
	{ "submitted", "withdrawn", OFFICE | TEAM },
	{ "waitlisted", "withdrawn", OFFICE | TEAM },
	/* A participant that drops out frees its place (and leaves its cluster). */
	{ "selected", "withdrawn", OFFICE | TEAM },
	/* An office that withdrew by mistake, while the call is open. */
	{ "withdrawn", "submitted", OFFICE },
};

/* Selected for a role, and for nothing else. */
static void
check_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	const char *status = json_string_value(json_object_get(doc, "status"));
	const json_t *role = json_object_get(doc, "role");
	if (status != NULL && strcmp(status, "selected") == 0 && !json_is_string(role))
		rule_error(errors, prefix, "/role", "required", "is required to select an office");
}

/* The representation; answers_enc becomes answers for those who may read it (render). */
#define APPLICATION_JSON                                                                           \
	"json_build_object('id', a.id, 'call_id', a.call_id, 'programme_id', a.programme_id,"      \
	" 'office_id', a.office_id, 'preferred_role', a.preferred_role,"                           \
	" 'answers_enc', a.answers_enc, 'points', a.points, 'status', a.status, 'role', a.role,"   \
	" 'score', a.score, 'entered_by', a.entered_by, 'decided_at', kqe_ts(a.decided_at),"       \
	" 'version', a.version, 'created_at', kqe_ts(a.created_at),"                               \
	" 'updated_at', kqe_ts(a.updated_at))::text"
#define READER " kqe_application_reader(a.office_id, a.programme_id)"
/* The call of an application: deadline passed, criteria, places, whether NRW-only. */
#define CALL_COLUMNS                                                                               \
	"(c.deadline <= now())::text, c.criteria::text, c.places::text, p.nrw_only::text,"         \
	" kqe_ts(c.deadline)"

static const struct db_stmt stmt_get = { "application_get",
	"SELECT a.office_id, " APPLICATION_JSON " FROM applications a WHERE" READER
	" AND a.id = $1::uuid" };
/* $1 office_id, $2 call_id, $3 programme_id, $4 status, $5 updated_since, $6 $7 cursor,
 * $8 limit */
static const struct db_stmt stmt_list = { "application_list",
	"SELECT kqe_ts(a.updated_at), a.id::text, a.office_id, " APPLICATION_JSON
	" FROM applications a WHERE" READER " AND ($1::text IS NULL OR a.office_id = $1)"
	" AND ($2::uuid IS NULL OR a.call_id = $2) AND ($3::uuid IS NULL OR a.programme_id = $3)"
	" AND ($4::text IS NULL OR a.status = $4)"
	" AND ($5::timestamptz IS NULL OR a.updated_at >= $5)"
	" AND ($6::timestamptz IS NULL OR (a.updated_at, a.id) > ($6, $7::uuid))"
	" ORDER BY a.updated_at, a.id LIMIT $8" };
static const struct db_stmt stmt_lock = { "application_lock",
	"SELECT a.office_id, a.version, " APPLICATION_JSON ", " CALL_COLUMNS
	" FROM applications a JOIN calls c ON c.id = a.call_id"
	" JOIN programmes p ON p.id = c.programme_id WHERE" READER
	" AND a.id = $1::uuid FOR UPDATE OF a" };
/* A call the caller may apply to: an office any, the programme team its programme's. */
static const struct db_stmt stmt_call = { "application_call",
	"SELECT c.programme_id, " CALL_COLUMNS " FROM calls c"
	" JOIN programmes p ON p.id = c.programme_id WHERE c.id = $1::uuid"
	" AND (kqe_ctx('role') = 'office_lead' OR kqe_programme_team(c.programme_id))" };
static const struct db_stmt stmt_office_state = { "application_office_state",
	"SELECT state FROM directory WHERE id = $1" };
static const struct db_stmt stmt_insert = { "application_insert",
	"INSERT INTO applications (id, call_id, programme_id, office_id, preferred_role,"
	" answers_enc, points, entered_by)"
	" VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7::integer, $8)"
	" ON CONFLICT (call_id, office_id) DO NOTHING" };
static const struct db_stmt stmt_existing = { "application_existing",
	"SELECT id FROM applications WHERE call_id = $1::uuid AND office_id = $2" };
/* $5 the answers' ciphertext, NULL to keep them. */
static const struct db_stmt stmt_update = { "application_update",
	"UPDATE applications SET preferred_role = $2, status = $3, role = $4,"
	" answers_enc = coalesce($5, answers_enc), points = coalesce($6::integer, points),"
	" score = $7::smallint,"
	" decided_at = CASE WHEN $3 IN ('waitlisted', 'selected', 'rejected')"
	"  AND $3 IS DISTINCT FROM status THEN now() ELSE decided_at END,"
	" version = version + 1, updated_at = now() WHERE id = $1::uuid" };

static const struct db_stmt stmt_selected = { "application_selected",
	"SELECT kqe_call_selected($1::uuid)::text" };

/*
 * The answers against the call's criteria (JSON text): every criterion answered as it
 * asks, nothing else. Returns the points (the weights of the yes_no criteria answered
 * yes), errors appended for every bad answer.
 */
static long
answers_check(struct write *w, const char *criteria_text)
{
	json_t *criteria = json_loads(criteria_text, 0, NULL), *c;
	const json_t *answers = json_object_get(w->doc, "answers");
	long points = 0;
	size_t i;
	char ptr[128];
	json_array_foreach(criteria, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		bool yes_no =
		    strcmp(json_string_value(json_object_get(c, "answer")), "yes_no") == 0;
		const json_t *a = json_object_get(answers, id);
		snprintf(ptr, sizeof(ptr), "/answers/%s", id);
		if (a == NULL)
			write_error(w, ptr, "required", "is a criterion of the call: answer it");
		else if (yes_no && !json_is_boolean(a))
			write_error(w, ptr, "type", "is a yes/no criterion: answer true or false");
		else if (!yes_no && !json_is_string(a))
			write_error(w, ptr, "type", "asks for a text");
		else if (!yes_no && json_string_length(a) == 0)
			write_error(w, ptr, "length", "must not be empty");
		else if (json_is_true(a))
			points += (long)json_integer_value(json_object_get(c, "weight"));
	}
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)answers, key, v)
	{
		bool known = false;
		json_array_foreach(criteria, i, c)
		{
			known =
			    known || strcmp(json_string_value(json_object_get(c, "id")), key) == 0;
		}
		if (!known) {
			snprintf(ptr, sizeof(ptr), "/answers/%s", key);
			write_error(w, ptr, "unknown_field", "is not a criterion of the call");
		}
	}
	json_decref(criteria);
	return points;
}

static void
refuse_closed(struct write *w, const char *deadline, const char *what)
{
	char detail[200];
	snprintf(detail, sizeof(detail), "The call closed at %s; %s.", deadline, what);
	write_refuse(w, 409, "/call_id", "closed", detail);
}

/*
 * The applying office, into w->office: the caller's own, or named by the
 * programme team; one of the directory, and in NRW if the programme takes
 * offices in NRW only.
 */
static int
application_office(struct write *w)
{
	const struct principal *p = &w->r->principal;
	bool team = p->role == ROLE_PROGRAMME_TEAM;
	const char *office = doc_text(w, "office_id");
	if (team && office == NULL) {
		write_error(w, "/office_id", "required", "names the office the team applies for");
		return 0;
	}
	if (!team && office != NULL && strcmp(office, p->office_id) != 0) {
		write_error(w, "/office_id", "forbidden", "an office applies for itself");
		return 0;
	}
	snprintf(w->office, sizeof(w->office), "%s", team ? office : p->office_id);
	const char *params[] = { w->office };
	PGresult *res = db_exec(w->r->db, &stmt_office_state, 1, params);
	if (res == NULL)
		return -1;
	char state[3] = "";
	if (PQntuples(res) == 1)
		snprintf(state, sizeof(state), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (state[0] == '\0')
		write_error(w, "/office_id", "not_found", "is not an office of the directory");
	else if (strcmp(ref_value(w, 0, 4), "true") == 0 && strcmp(state, "NW") != 0)
		write_error(w, "/office_id", "forbidden",
		    "is an office outside NRW; the programme takes offices in NRW only");
	return 0;
}

static int
application_create(struct write *w)
{
	if (application_office(w) != 0)
		return -1;
	if (write_stopped(w))
		return 0;
	long points = answers_check(w, ref_value(w, 0, 2));
	if (json_array_size(w->errors) > 0)
		return 0;
	/* Invariant 2: the deadline, read under the call's lock. */
	if (write_lock_key(w, doc_text(w, "call_id")) != 0)
		return -1;
	if (strcmp(ref_value(w, 0, 1), "true") == 0) {
		refuse_closed(w, ref_value(w, 0, 5), "it takes no more applications");
		return 0;
	}
	uuid_v4(w->id);
	char npoints[24];
	snprintf(npoints, sizeof(npoints), "%ld", points);
	bool team = w->r->principal.role == ROLE_PROGRAMME_TEAM;
	const char *insert[] = { w->id, doc_text(w, "call_id"), ref_value(w, 0, 0), w->office,
		doc_text(w, "preferred_role"), write_encrypted(w, "answers"), npoints,
		team ? "programme_team" : "office" };
	PGresult *res = db_exec(w->r->db, &stmt_insert, 8, insert);
	if (res == NULL)
		return -1;
	int inserted = atoi(PQcmdTuples(res)) == 1;
	PQclear(res);
	if (!inserted)
		return write_conflict(w, &stmt_existing, 2,
		    (const char *[]){ insert[1], w->office }, "/call_id",
		    "The office has applied to this call already (see Location).");
	json_object_set_new(w->details, "call_id", json_string(insert[1]));
	return 0;
}

/* Whether the patch itself names field (not merely the merged document). */
static bool
patch_names(const struct write *w, const char *field)
{
	const json_t *v = json_object_get(w->r->body, field);
	return v != NULL && !json_is_null(v);
}

/* Refuses selecting beyond the call's places for the role; 1 if refused, -1 on failure. */
static int
places_refused(struct write *w, const char *role)
{
	json_t *places = json_loads(row_value(w, 5), 0, NULL);
	json_int_t have = json_integer_value(json_object_get(places, role));
	json_decref(places);
	if (have == 0) {
		write_error(w, "/role", "enum", "has no places in this call");
		return 1;
	}
	/* Invariant 3, under the call's lock: every decision of the call takes it. */
	if (write_lock_key(w, doc_text(w, "call_id")) != 0)
		return -1;
	const char *params[] = { doc_text(w, "call_id") };
	PGresult *res = db_exec(w->r->db, &stmt_selected, 1, params);
	if (res == NULL)
		return -1;
	json_t *selected = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	PQclear(res);
	json_int_t taken = json_integer_value(json_object_get(selected, role));
	json_decref(selected);
	if (taken < have)
		return 0;
	char detail[200];
	snprintf(
	    detail, sizeof(detail), "All %lld places for %s are taken.", (long long)have, role);
	write_refuse(w, 409, "/role", "full", detail);
	return 1;
}

/*
 * Who changes what, and when: the selection (role, score) is the team's, the
 * answers the office's while submitted and the call open; decisions come
 * after the deadline; a role goes only with status selected.
 */
static void
application_change_check(struct write *w, const char *to, int moved, bool closed)
{
	bool team = w->r->principal.role == ROLE_PROGRAMME_TEAM;
	bool content = write_changes(w, "answers") || write_changes(w, "preferred_role");
	if (!team && (write_changes(w, "role") || write_changes(w, "score")))
		write_refuse(w, 403, write_changes(w, "role") ? "/role" : "/score", "forbidden",
		    "The selection is the programme team's.");
	else if (team && content)
		write_refuse(w, 403, "/answers", "forbidden",
		    "The answers are the office's; the team decides on them.");
	else if ((content || (moved && strcmp(to, "submitted") == 0)) && closed)
		refuse_closed(w, row_value(w, 7), "the application cannot change any more");
	else if (content &&
	         strcmp(json_text(json_object_get(w->current, "status")), "submitted") != 0)
		write_refuse(w, 409, "/status", "decided",
		    "Only a submitted application changes its answers.");
	else if (moved && strcmp(to, "withdrawn") != 0 && !closed)
		write_refuse(w, 409, "/status", "open",
		    "The call is still open; decide after its deadline.");
	else if (strcmp(to, "selected") != 0 && patch_names(w, "role"))
		write_error(w, "/role", "forbidden", "goes only with status selected");
}

static int
application_update(struct write *w)
{
	const char *to = doc_text(w, "status");
	int moved = write_move(w, "status", moves, ARRAY_LEN(moves), "An application");
	if (moved < 0)
		return 0;
	application_change_check(w, to, moved, strcmp(row_value(w, 3), "true") == 0);
	if (write_stopped(w))
		return 0;
	const char *role = strcmp(to, "selected") == 0 ? doc_text(w, "role") : NULL;
	if (role != NULL && (moved || write_changes(w, "role"))) {
		int refused = places_refused(w, role);
		if (refused != 0)
			return refused < 0 ? -1 : 0;
	}
	long points = 0;
	bool answers = write_changes(w, "answers");
	if (answers) {
		points = answers_check(w, row_value(w, 4));
		if (json_array_size(w->errors) > 0)
			return 0;
	}
	char npoints[24], nscore[24];
	snprintf(npoints, sizeof(npoints), "%ld", points);
	const json_t *score = json_object_get(w->doc, "score");
	snprintf(nscore, sizeof(nscore), "%lld", (long long)json_integer_value(score));
	const char *params[] = { w->id, doc_text(w, "preferred_role"), to, role,
		answers ? write_encrypted(w, "answers") : NULL, answers ? npoints : NULL,
		json_is_integer(score) ? nscore : NULL };
	return write_exec(w, &stmt_update, 7, params);
}

/* The answers for the office and the programme's team; the team's score for the team. */
static json_t *
render(struct request *r, json_t *rep)
{
	enum role role = r->principal.role;
	json_t *answers = json_null();
	if (role_is_office(role) || role == ROLE_PROGRAMME_TEAM) {
		json_t *text = free_text_decrypt(r, "application",
		    json_string_value(json_object_get(rep, "id")), "answers",
		    json_object_get(rep, "answers_enc"));
		if (json_is_string(text))
			answers = json_loads(json_string_value(text), 0, NULL);
		json_decref(text);
	}
	json_object_del(rep, "answers_enc");
	json_object_set_new(rep, "answers", answers != NULL ? answers : json_null());
	if (role_is_office(role))
		json_object_set_new(rep, "score", json_null());
	return rep;
}

static const char *const csv_columns[] = { "id", "call_id", "programme_id", "office_id",
	"preferred_role", "answers", "points", "status", "role", "score", "entered_by",
	"decided_at", "version", "created_at", "updated_at", NULL };

const struct resource applications_resource = { CALLER_SCOPED("application", "application",
	                                            "/v1/applications"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.render = render, .fields = fields, .nfields = ARRAY_LEN(fields), .rules = check_rules,
	.refs = { { "call_id", &stmt_call, SCOPE_NONE, "is not a call you may apply to" } },
	.create = application_create, .update = application_update };

/* ---- GET /v1/calls/{id}/ranking: the selection's working list ---- */

/* The call, if the caller runs its programme (or is admin): places, selected per role. */
static const struct db_stmt stmt_ranking_call = { "ranking_call",
	"SELECT c.places::text, kqe_call_selected(c.id)::text FROM calls c WHERE c.id = $1::uuid"
	" AND (kqe_programme_team(c.programme_id) OR kqe_ctx('role') = 'admin')" };
/* Every application not withdrawn, best first: the team's score, then the points. */
static const struct db_stmt stmt_ranking = { "ranking_rows",
	"SELECT a.id, a.office_id, d.name, d.state, coalesce(d.region, ''), d.kind,"
	" CASE WHEN d.population_under_18 IS NULL THEN 'unknown'"
	"  WHEN d.population_under_18 < 20000 THEN 'small'"
	"  WHEN d.population_under_18 < 50000 THEN 'medium' ELSE 'large' END,"
	" a.preferred_role, a.points, coalesce(a.score::text, ''), a.status, coalesce(a.role, '')"
	" FROM applications a JOIN directory d ON d.id = a.office_id"
	" WHERE a.call_id = $1::uuid AND" READER " AND a.status <> 'withdrawn'"
	" ORDER BY a.score DESC NULLS LAST, a.points DESC, a.created_at, a.id" };

/* The dimensions of the diversity view: column of stmt_ranking, name. */
static const struct {
	int col;
	const char *name;
} dimensions[] = { { 3, "state" }, { 4, "region" }, { 5, "kind" }, { 6, "size" } };

static void
count_up(json_t *counts, const char *key)
{
	json_object_set_new(
	    counts, key, json_integer(json_integer_value(json_object_get(counts, key)) + 1));
}

/* What the selected offices of the ranking's rows already bring: dimension → value → count. */
static json_t *
ranking_brought(const PGresult *res)
{
	json_t *brought = json_object();
	for (size_t d = 0; d < ARRAY_LEN(dimensions); d++)
		json_object_set_new(brought, dimensions[d].name, json_object());
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 10), "selected") != 0)
			continue;
		for (size_t d = 0; d < ARRAY_LEN(dimensions); d++) {
			const char *v = PQgetvalue(res, i, dimensions[d].col);
			if (v[0] != '\0')
				count_up(json_object_get(brought, dimensions[d].name), v);
		}
	}
	return brought;
}

/* Row i of the ranking, with the dimensions an office not selected would add. */
static json_t *
ranking_item(const PGresult *res, int i, const json_t *brought)
{
	json_t *adds = json_array();
	bool is_selected = strcmp(PQgetvalue(res, i, 10), "selected") == 0;
	for (size_t d = 0; d < ARRAY_LEN(dimensions) && !is_selected; d++) {
		const char *v = PQgetvalue(res, i, dimensions[d].col);
		if (v[0] != '\0' &&
		    json_object_get(json_object_get(brought, dimensions[d].name), v) == NULL)
			json_array_append_new(adds, json_string(dimensions[d].name));
	}
	const char *score = PQgetvalue(res, i, 9), *role = PQgetvalue(res, i, 11);
	const char *region = PQgetvalue(res, i, 4);
	return json_pack("{s:i,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:i,s:o,s:s,s:o,s:o}", "rank", i + 1,
	    "application_id", PQgetvalue(res, i, 0), "office_id", PQgetvalue(res, i, 1),
	    "office_name", PQgetvalue(res, i, 2), "state", PQgetvalue(res, i, 3), "region",
	    region[0] ? json_string(region) : json_null(), "kind", PQgetvalue(res, i, 5), "size",
	    PQgetvalue(res, i, 6), "preferred_role", PQgetvalue(res, i, 7), "points",
	    atoi(PQgetvalue(res, i, 8)), "score",
	    score[0] ? json_integer(atoi(score)) : json_null(), "status", PQgetvalue(res, i, 10),
	    "role", role[0] ? json_string(role) : json_null(), "adds", adds);
}

/* The call's places per role (JSON text), how many are selected and how many remain. */
static json_t *
ranking_places(const char *places_text, const char *selected_text)
{
	json_t *places = json_loads(places_text, 0, NULL);
	json_t *selected = json_loads(selected_text, 0, NULL);
	json_t *roles = json_array();
	const char *role;
	json_t *n;
	json_object_foreach(places, role, n)
	{
		json_int_t taken = json_integer_value(json_object_get(selected, role));
		json_array_append_new(roles,
		    json_pack("{s:s,s:I,s:I,s:I}", "role", role, "places", json_integer_value(n),
		        "selected", taken, "remaining", json_integer_value(n) - taken));
	}
	json_decref(places);
	json_decref(selected);
	return roles;
}

void
call_ranking(struct request *r)
{
	const char *params[] = { r->params[0] };
	PGresult *call = query_found(r, &stmt_ranking_call, 1, params);
	if (call == NULL)
		return;
	json_t *roles = ranking_places(PQgetvalue(call, 0, 0), PQgetvalue(call, 0, 1));
	PQclear(call);
	PGresult *res = query_as_caller(r, &stmt_ranking, 1, params);
	if (res == NULL) {
		json_decref(roles);
		return;
	}
	json_t *brought = ranking_brought(res), *items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(items, ranking_item(res, i, brought));
	PQclear(res);
	reply_json(r, 200,
	    json_pack("{s:s,s:o,s:o,s:o}", "call_id", r->params[0], "places", roles, "selected",
	        brought, "items", items));
}
