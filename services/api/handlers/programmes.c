/*
 * Programmes (docs/programmes.md): pilot projects and quality programmes —
 * the § 7 pilot, the foster-care quality offensive, a nationwide programme
 * like "Aus Fehlern lernen" — with their calls for applications and the
 * clusters their selected participants form. Every caller reads them (a call
 * is published); admin writes programmes, the programme's team (role
 * programme_team, bound to one programme) its calls and clusters.
 * Applications and the selection: handlers/applications.c. Invariants:
 * migration 0023_programmes.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/problem.h"

/* ---- /v1/programmes ---- */

#define TEXT_FIELD(n)                                                                              \
	{                                                                                          \
		.name = (n), .type = FIELD_STRING, .required = true, .min = 1, .max = 200          \
	}
static const struct field_spec programme_fields[] = {
	TEXT_FIELD("title"),
	/* e.g. "§ 7 LKSG NRW" or "Bundesprogramm" */
	TEXT_FIELD("legal_basis"),
	/* Träger: who funds it */
	TEXT_FIELD("sponsor"),
	{ .name = "commissioned_by", .type = FIELD_STRING, .nullable = true, .min = 1, .max = 200 },
	TEXT_FIELD("run_by"),
	{ .name = "starts_on", .type = FIELD_DATE, .required = true },
	{ .name = "ends_on", .type = FIELD_DATE, .required = true },
	/* Participants from NRW only (else offices of other Länder may take part too). */
	{ .name = "nrw_only", .type = FIELD_BOOLEAN, .required = true },
};

static void
programme_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	const char *starts = json_string_value(json_object_get(doc, "starts_on"));
	const char *ends = json_string_value(json_object_get(doc, "ends_on"));
	if (starts != NULL && ends != NULL && strcmp(ends, starts) < 0)
		rule_error(errors, prefix, "/ends_on", "range", "must not be before starts_on");
}

#define PROGRAMME_JSON                                                                             \
	"json_build_object('id', p.id, 'title', p.title, 'legal_basis', p.legal_basis,"            \
	" 'sponsor', p.sponsor, 'commissioned_by', p.commissioned_by, 'run_by', p.run_by,"         \
	" 'starts_on', p.starts_on, 'ends_on', p.ends_on, 'nrw_only', p.nrw_only,"                 \
	" 'synthetic', p.synthetic, 'version', p.version, 'created_at', kqe_ts(p.created_at),"     \
	" 'updated_at', kqe_ts(p.updated_at))::text"

static const struct db_stmt stmt_programme_get = { "programme_get",
	"SELECT '', " PROGRAMME_JSON " FROM programmes p WHERE p.id = $1::uuid" };
/* $1 updated_since, $2 $3 cursor, $4 limit */
static const struct db_stmt stmt_programme_list = { "programme_list",
	"SELECT kqe_ts(p.updated_at), p.id::text, '', " PROGRAMME_JSON " FROM programmes p"
	" WHERE ($1::timestamptz IS NULL OR p.updated_at >= $1)"
	" AND ($2::timestamptz IS NULL OR (p.updated_at, p.id) > ($2, $3::uuid))"
	" ORDER BY p.updated_at, p.id LIMIT $4" };
static const struct db_stmt stmt_programme_lock = { "programme_lock",
	"SELECT '', p.version, " PROGRAMME_JSON " FROM programmes p WHERE p.id = $1::uuid"
	" FOR UPDATE" };
static const struct db_stmt stmt_programme_insert = { "programme_insert",
	"INSERT INTO programmes (id, title, legal_basis, sponsor, commissioned_by, run_by,"
	" starts_on, ends_on, nrw_only) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)" };
static const struct db_stmt stmt_programme_update = { "programme_update",
	"UPDATE programmes SET title = $2, legal_basis = $3, sponsor = $4, commissioned_by = $5,"
	" run_by = $6, starts_on = $7, ends_on = $8, nrw_only = $9, version = version + 1,"
	" updated_at = now() WHERE id = $1::uuid" };
/* Applications from outside NRW to programme $1. */
static const struct db_stmt stmt_programme_elsewhere = { "programme_elsewhere",
	"SELECT count(*) FROM applications a WHERE a.programme_id = $1::uuid"
	" AND a.status <> 'withdrawn'"
	" AND NOT EXISTS (SELECT FROM offices o WHERE o.id = a.office_id)" };

/* $2… of stmt_programme_insert and stmt_programme_update. */
static const char *const programme_columns[] = { "title", "legal_basis", "sponsor",
	"commissioned_by", "run_by", "starts_on", "ends_on", "nrw_only", NULL };

static int
programme_create(struct write *w)
{
	uuid_v4(w->id);
	return write_document(w, &stmt_programme_insert, programme_columns);
}

static int
programme_update(struct write *w)
{
	if (write_changes(w, "nrw_only") && json_is_true(json_object_get(w->doc, "nrw_only"))) {
		const char *params[] = { w->id };
		PGresult *res = db_exec(w->r->db, &stmt_programme_elsewhere, 1, params);
		if (res == NULL)
			return -1;
		long n = atol(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (n > 0) {
			write_refuse(w, 409, "/nrw_only", "participants_elsewhere",
			    "Offices outside NRW take part in this programme; it cannot become "
			    "NRW-only.");
			return 0;
		}
	}
	return write_document(w, &stmt_programme_update, programme_columns);
}

static const char *const programme_csv_columns[] = { "id", "title", "legal_basis", "sponsor",
	"commissioned_by", "run_by", "starts_on", "ends_on", "nrw_only", "synthetic", "version",
	"created_at", "updated_at", NULL };

const struct resource programmes_resource = { SHARED_DATA(
	                                          "programme", "programme", "/v1/programmes"),
	.get = &stmt_programme_get, .list = &stmt_programme_list, .lock = &stmt_programme_lock,
	.csv_columns = programme_csv_columns, .fields = programme_fields,
	.nfields = ARRAY_LEN(programme_fields), .rules = programme_rules,
	.create = programme_create, .update = programme_update };

/* The team's own programme: the reference of its calls and clusters. */
const struct db_stmt programme_of_team = { "programme_own",
	"SELECT p.id FROM programmes p WHERE p.id = $1::uuid AND kqe_programme_team(p.id)" };

/* ---- /v1/calls ---- */

#define CRITERIA_MAX 30
static const struct field_spec criterion_fields[] = {
	{ .name = "id",
	    .type = FIELD_STRING,
	    .required = true,
	    .min = 1,
	    .max = 64,
	    .check = slug_id_check },
	{ .name = "text", .type = FIELD_STRING, .required = true, .min = 1, .max = 500 },
	FIELD_SPEC_CODE("answer", codelist_criterion_answer_values),
	/* What a "yes" counts in the ranking (yes_no criteria only). */
	{ .name = "weight", .type = FIELD_INTEGER, .min = 0, .max = 10 },
};

static const struct field_spec call_fields[] = {
	{ .name = "programme_id", .type = FIELD_UUID, .required = true, .immutable = true },
	TEXT_FIELD("title"),
	{ .name = "description", .type = FIELD_STRING, .nullable = true, .min = 1, .max = 5000 },
	{ .name = "deadline", .type = FIELD_TIMESTAMP, .required = true },
	{ .name = "criteria",
	    .type = FIELD_LIST,
	    .required = true,
	    .min = 1,
	    .max = CRITERIA_MAX,
	    .fields = criterion_fields,
	    .nfields = ARRAY_LEN(criterion_fields) },
	/* Places per participant role, e.g. {"model": 12, "partner": 36}. */
	{ .name = "places",
	    .type = FIELD_RATINGS,
	    .required = true,
	    .values = codelist_programme_role_values,
	    .min = 1,
	    .max = 1000 },
};

/* Criterion ids are distinct; only a yes/no criterion weighs; a call has places. */
static void
call_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	char ptr[300];
	const json_t *criteria = json_object_get(doc, "criteria"), *c;
	size_t i;
	json_array_foreach(criteria, i, c)
	{
		const json_t *id = json_object_get(c, "id");
		for (size_t j = 0; json_is_string(id) && j < i; j++)
			if (json_equal(json_object_get(json_array_get(criteria, j), "id"), id)) {
				snprintf(ptr, sizeof(ptr), "%s/criteria/%zu/id", prefix, i);
				error_at_pointer(
				    errors, ptr, "duplicate", "is the id of another criterion");
				break;
			}
		const char *answer = json_string_value(json_object_get(c, "answer"));
		if (answer != NULL && strcmp(answer, "text") == 0 &&
		    json_integer_value(json_object_get(c, "weight")) > 0) {
			snprintf(ptr, sizeof(ptr), "%s/criteria/%zu/weight", prefix, i);
			error_at_pointer(
			    errors, ptr, "forbidden", "counts only for a yes_no criterion");
		}
	}
	const json_t *places = json_object_get(doc, "places");
	if (json_is_object(places) && json_object_size(places) == 0)
		rule_error(errors, prefix, "/places", "length",
		    "must name the places of at least one role");
}

#define CALL_JSON                                                                                  \
	"json_build_object('id', c.id, 'programme_id', c.programme_id, 'title', c.title,"          \
	" 'description', c.description, 'deadline', kqe_ts(c.deadline),"                           \
	" 'open', c.deadline > now(), 'criteria', c.criteria, 'places', c.places,"                 \
	" 'selected', kqe_call_selected(c.id), 'version', c.version,"                              \
	" 'created_at', kqe_ts(c.created_at), 'updated_at', kqe_ts(c.updated_at))::text"

static const struct db_stmt stmt_call_get = { "call_get",
	"SELECT '', " CALL_JSON " FROM calls c WHERE c.id = $1::uuid" };
/* $1 programme_id, $2 open, $3 updated_since, $4 $5 cursor, $6 limit */
static const struct db_stmt stmt_call_list = { "call_list",
	"SELECT kqe_ts(c.updated_at), c.id::text, '', " CALL_JSON " FROM calls c"
	" WHERE ($1::uuid IS NULL OR c.programme_id = $1)"
	" AND ($2::boolean IS NULL OR (c.deadline > now()) = $2)"
	" AND ($3::timestamptz IS NULL OR c.updated_at >= $3)"
	" AND ($4::timestamptz IS NULL OR (c.updated_at, c.id) > ($4, $5::uuid))"
	" ORDER BY c.updated_at, c.id LIMIT $6" };
/* Then: how many applications answer its criteria. */
static const struct db_stmt stmt_call_lock = { "call_lock",
	"SELECT '', c.version, " CALL_JSON ","
	" (SELECT count(*) FROM applications a WHERE a.call_id = c.id)"
	" FROM calls c WHERE c.id = $1::uuid FOR UPDATE" };
static const struct db_stmt stmt_call_insert = { "call_insert",
	"INSERT INTO calls (id, programme_id, title, description, deadline, criteria, places)"
	" VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::jsonb, $7::jsonb)" };
static const struct db_stmt stmt_call_update = { "call_update",
	"UPDATE calls SET title = $3, description = $4, deadline = $5, criteria = $6::jsonb,"
	" places = $7::jsonb, version = version + 1, updated_at = now()"
	" WHERE id = $1::uuid AND programme_id = $2::uuid" };

/* $2… of stmt_call_insert and stmt_call_update. */
static const char *const call_columns[] = { "programme_id", "title", "description", "deadline",
	"criteria", "places", NULL };

static int
call_create(struct write *w)
{
	uuid_v4(w->id);
	return write_document(w, &stmt_call_insert, call_columns);
}

/*
 * Applications answer the criteria as they were: once there are any, the
 * criteria stay. Places never drop below the offices selected for a role.
 */
static int
call_update(struct write *w)
{
	if (write_changes(w, "criteria") && atol(row_value(w, 3)) > 0) {
		write_refuse(w, 409, "/criteria", "answered",
		    "Offices have applied with answers to these criteria; they cannot change.");
		return 0;
	}
	const json_t *selected = json_object_get(w->current, "selected");
	const json_t *places = json_object_get(w->doc, "places");
	const char *role;
	const json_t *n;
	json_object_foreach((json_t *)selected, role, n)
	{
		json_int_t have = json_integer_value(json_object_get(places, role));
		if (have < json_integer_value(n)) {
			char detail[200];
			snprintf(detail, sizeof(detail),
			    "%lld offices are selected as %s; the places cannot be fewer.",
			    (long long)json_integer_value(n), role);
			write_refuse(w, 409, "/places", "selected", detail);
			return 0;
		}
	}
	return write_document(w, &stmt_call_update, call_columns);
}

static const char *const call_csv_columns[] = { "id", "programme_id", "title", "description",
	"deadline", "open", "criteria", "places", "selected", "version", "created_at", "updated_at",
	NULL };

const struct resource calls_resource = { SHARED_DATA("call", "call", "/v1/calls"),
	.get = &stmt_call_get, .list = &stmt_call_list, .lock = &stmt_call_lock,
	.csv_columns = call_csv_columns, .fields = call_fields, .nfields = ARRAY_LEN(call_fields),
	.rules = call_rules, .refs = { OWN_PROGRAMME }, .create = call_create,
	.update = call_update };

/* ---- /v1/clusters: a model municipality with its partners ---- */

static const struct field_spec cluster_fields[] = {
	{ .name = "programme_id", .type = FIELD_UUID, .required = true, .immutable = true },
	TEXT_FIELD("name"),
	{ .name = "model_office_id",
	    .type = FIELD_STRING,
	    .required = true,
	    .min = 1,
	    .max = 64,
	    .check = slug_id_check },
	{ .name = "partner_office_ids", .type = FIELD_CODES, .max = 100 },
};

static void
cluster_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	const json_t *model = json_object_get(doc, "model_office_id"), *id;
	size_t i;
	json_array_foreach(json_object_get(doc, "partner_office_ids"), i, id)
	{
		if (json_is_string(model) && json_equal(id, model)) {
			char ptr[300];
			snprintf(ptr, sizeof(ptr), "%s/partner_office_ids/%zu", prefix, i);
			error_at_pointer(errors, ptr, "duplicate", "is the cluster's model");
		}
	}
}

#define CLUSTER_JSON                                                                               \
	"json_build_object('id', k.id, 'programme_id', k.programme_id, 'name', k.name,"            \
	" 'model_office_id', k.model_office_id,"                                                   \
	" 'partner_office_ids', coalesce((SELECT json_agg(m.office_id ORDER BY m.office_id)"       \
	"  FROM cluster_members m WHERE m.cluster_id = k.id"                                       \
	"  AND m.office_id <> k.model_office_id), '[]'),"                                          \
	" 'version', k.version, 'created_at', kqe_ts(k.created_at),"                               \
	" 'updated_at', kqe_ts(k.updated_at))::text"

static const struct db_stmt stmt_cluster_get = { "cluster_get",
	"SELECT '', " CLUSTER_JSON " FROM clusters k WHERE k.id = $1::uuid" };
/* $1 programme_id, $2 updated_since, $3 $4 cursor, $5 limit */
static const struct db_stmt stmt_cluster_list = { "cluster_list",
	"SELECT kqe_ts(k.updated_at), k.id::text, '', " CLUSTER_JSON " FROM clusters k"
	" WHERE ($1::uuid IS NULL OR k.programme_id = $1)"
	" AND ($2::timestamptz IS NULL OR k.updated_at >= $2)"
	" AND ($3::timestamptz IS NULL OR (k.updated_at, k.id) > ($3, $4::uuid))"
	" ORDER BY k.updated_at, k.id LIMIT $5" };
static const struct db_stmt stmt_cluster_lock = { "cluster_lock",
	"SELECT '', k.version, " CLUSTER_JSON " FROM clusters k WHERE k.id = $1::uuid FOR UPDATE" };
/*
 * Each office of $3 (a JSON array; the model first) that cannot be in cluster $2 of
 * programme $1, with its position and why: not selected in the programme for its role
 * (the model as model, partners as partner), or in another of its clusters.
 */
static const struct db_stmt stmt_cluster_unfit = { "cluster_unfit",
	"SELECT x.n - 1, CASE WHEN NOT EXISTS (SELECT FROM applications a"
	"  WHERE a.programme_id = $1::uuid AND a.office_id = x.id AND a.status = 'selected'"
	"  AND a.role = CASE WHEN x.n = 1 THEN 'model' ELSE 'partner' END) THEN 'selection'"
	" ELSE 'taken' END"
	" FROM json_array_elements_text($3::json) WITH ORDINALITY AS x(id, n)"
	" WHERE NOT EXISTS (SELECT FROM applications a WHERE a.programme_id = $1::uuid"
	"  AND a.office_id = x.id AND a.status = 'selected'"
	"  AND a.role = CASE WHEN x.n = 1 THEN 'model' ELSE 'partner' END)"
	" OR EXISTS (SELECT FROM cluster_members m WHERE m.programme_id = $1::uuid"
	"  AND m.office_id = x.id AND m.cluster_id IS DISTINCT FROM $2::uuid)"
	" ORDER BY x.n" };
static const struct db_stmt stmt_cluster_insert = { "cluster_insert",
	"INSERT INTO clusters (id, programme_id, name, model_office_id)"
	" VALUES ($1::uuid, $2::uuid, $3, $4) ON CONFLICT (programme_id, name) DO NOTHING" };
static const struct db_stmt stmt_cluster_existing = { "cluster_existing",
	"SELECT id FROM clusters WHERE programme_id = $1::uuid AND name = $2" };
static const struct db_stmt stmt_cluster_update = { "cluster_update",
	"UPDATE clusters SET name = $3, model_office_id = $4, version = version + 1,"
	" updated_at = now() WHERE id = $1::uuid AND programme_id = $2::uuid" };
/* The members of cluster $1 of programme $2 become those of $3 (a JSON array). */
static const struct db_stmt stmt_cluster_members = { "cluster_members_set",
	"WITH gone AS (DELETE FROM cluster_members WHERE cluster_id = $1::uuid"
	"  AND office_id NOT IN (SELECT json_array_elements_text($3::json)))"
	" INSERT INTO cluster_members (programme_id, office_id, cluster_id)"
	" SELECT $2::uuid, x, $1::uuid FROM json_array_elements_text($3::json) AS x"
	" ON CONFLICT DO NOTHING" };

/* The model and the partners as one JSON array (the model first), owned by the request. */
static const char *
cluster_offices(struct write *w)
{
	json_t *all = json_array();
	json_array_append_new(all, json_string(doc_text(w, "model_office_id")));
	const json_t *partners = json_object_get(w->doc, "partner_office_ids"), *id;
	size_t i;
	json_array_foreach(partners, i, id) json_array_append(all, (json_t *)id);
	const char *text = request_own_string(w->r, json_dumps(all, JSON_COMPACT));
	json_decref(all);
	return text;
}

/* Checks the members; 1 if the write may go on, 0 if refused, -1 if the database failed. */
static int
cluster_members_fit(struct write *w, const char *offices)
{
	const char *params[] = { doc_text(w, "programme_id"), w->current ? w->id : NULL, offices };
	PGresult *res = db_exec(w->r->db, &stmt_cluster_unfit, 3, params);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		int n = atoi(PQgetvalue(res, i, 0));
		bool taken = strcmp(PQgetvalue(res, i, 1), "taken") == 0;
		char ptr[64];
		if (n == 0)
			snprintf(ptr, sizeof(ptr), "/model_office_id");
		else
			snprintf(ptr, sizeof(ptr), "/partner_office_ids/%d", n - 1);
		write_error(w, ptr, taken ? "taken" : "not_selected",
		    taken    ? "is in another cluster of this programme"
		    : n == 0 ? "is not an office selected as model municipality in this programme"
		             : "is not an office selected as partner in this programme");
	}
	PQclear(res);
	return json_array_size(w->errors) == 0;
}

static int
cluster_set_members(struct write *w, const char *offices)
{
	const char *params[] = { w->id, doc_text(w, "programme_id"), offices };
	return write_exec(w, &stmt_cluster_members, 3, params);
}

static int
cluster_create(struct write *w)
{
	if (write_lock_key(w, doc_text(w, "programme_id")) != 0)
		return -1;
	const char *offices = cluster_offices(w);
	int fit = cluster_members_fit(w, offices);
	if (fit <= 0)
		return fit;
	uuid_v4(w->id);
	const char *params[] = { w->id, doc_text(w, "programme_id"), doc_text(w, "name"),
		doc_text(w, "model_office_id") };
	PGresult *res = db_exec(w->r->db, &stmt_cluster_insert, 4, params);
	if (res == NULL)
		return -1;
	int inserted = atoi(PQcmdTuples(res)) == 1;
	PQclear(res);
	if (!inserted)
		return write_conflict(w, &stmt_cluster_existing, 2, params + 1, "/name",
		    "The programme has a cluster of this name (see Location).");
	return cluster_set_members(w, offices);
}

static int
cluster_update(struct write *w)
{
	if (write_lock_key(w, doc_text(w, "programme_id")) != 0)
		return -1;
	const char *offices = cluster_offices(w);
	int fit = cluster_members_fit(w, offices);
	if (fit <= 0)
		return fit;
	const char *params[] = { w->id, doc_text(w, "programme_id"), doc_text(w, "name"),
		doc_text(w, "model_office_id") };
	if (write_changes(w, "name")) {
		PGresult *res = db_exec(w->r->db, &stmt_cluster_existing, 2, params + 1);
		if (res == NULL)
			return -1;
		int taken = PQntuples(res) > 0;
		PQclear(res);
		if (taken) {
			write_refuse(w, 409, "/name", "duplicate",
			    "The programme has another cluster of this name.");
			return 0;
		}
	}
	PGresult *res = db_exec(w->r->db, &stmt_cluster_update, 4, params);
	if (res == NULL)
		return -1;
	PQclear(res);
	return cluster_set_members(w, offices);
}

static const char *const cluster_csv_columns[] = { "id", "programme_id", "name", "model_office_id",
	"partner_office_ids", "version", "created_at", "updated_at", NULL };

const struct resource clusters_resource = { SHARED_DATA("cluster", "cluster", "/v1/clusters"),
	.get = &stmt_cluster_get, .list = &stmt_cluster_list, .lock = &stmt_cluster_lock,
	.csv_columns = cluster_csv_columns, .fields = cluster_fields,
	.nfields = ARRAY_LEN(cluster_fields), .rules = cluster_rules, .refs = { OWN_PROGRAMME },
	.create = cluster_create, .update = cluster_update };
