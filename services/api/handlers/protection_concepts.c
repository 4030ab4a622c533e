/*
 * § 10 protection concepts in foster care (Schutzkonzepte, docs/foster-care.md):
 * each office and each free provider of foster-care services has one concept
 * that secures the child's rights and protects against violence — which
 * elements it has, who took part in making it, when it was adopted and when
 * it is to be reviewed. The owner writes it (the caller's own office or
 * provider: the body names no owner); the advisors of the owner's region and
 * admin read it; the ministry sees counts only (GET
 * /v1/protection-concept-coverage). Invariants: migration
 * 0022_protection_concepts.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/problem.h"
#include "pipeline.h"

/* The elements, as the code list concept_element names them: each present or not. */
#define ELEMENT(n)                                                                                 \
	{                                                                                          \
		.name = (n), .type = FIELD_BOOLEAN, .required = true                               \
	}
static const struct field_spec element_fields[] = {
	ELEMENT("childrens_rights"),
	ELEMENT("foster_carer_participation"),
	ELEMENT("young_people_participation"),
	ELEMENT("complaint_internal"),
	ELEMENT("complaint_external"),
	ELEMENT("risk_analysis"),
	ELEMENT("suspicion_procedure"),
	ELEMENT("contact_persons"),
	ELEMENT("training"),
	ELEMENT("review"),
};

static const struct field_spec fields[] = {
	{ .name = "adopted_on", .type = FIELD_DATE, .required = true },
	{ .name = "next_review_on", .type = FIELD_DATE, .required = true },
	FIELD_SPEC_OBJECT("elements", element_fields, true),
	{ .name = "participants",
	    .type = FIELD_CODES,
	    .values = codelist_concept_participant_values,
	    .max = 5 },
};

/* A review is due after the concept was adopted (dates compare as strings). */
static void
check_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	const char *adopted = json_string_value(json_object_get(doc, "adopted_on"));
	const char *review = json_string_value(json_object_get(doc, "next_review_on"));
	if (adopted != NULL && review != NULL && strcmp(review, adopted) <= 0)
		rule_error(errors, prefix, "/next_review_on", "range", "must be after adopted_on");
}

#define CONCEPT_JSON                                                                               \
	"json_build_object('id', c.id, 'owner_kind', CASE WHEN c.office_id IS NOT NULL"            \
	" THEN 'office' ELSE 'provider' END, 'office_id', c.office_id,"                            \
	" 'provider_id', c.provider_id, 'region', c.region, 'adopted_on', c.adopted_on,"           \
	" 'next_review_on', c.next_review_on, 'status', CASE WHEN c.next_review_on < current_date" \
	" THEN 'review_overdue' ELSE 'current' END, 'elements', c.elements,"                       \
	" 'participants', to_json(c.participants), 'version', c.version,"                          \
	" 'created_at', kqe_ts(c.created_at), 'updated_at', kqe_ts(c.updated_at))::text"
#define READER " kqe_concept_reader(c.office_id, c.provider_id, c.region)"

static const struct db_stmt stmt_get = { "concept_get",
	"SELECT coalesce(c.office_id, ''), " CONCEPT_JSON " FROM protection_concepts c WHERE" READER
	" AND c.id = $1::uuid" };
/* $1 office_id, $2 provider_id, $3 updated_since, $4 $5 cursor, $6 limit */
static const struct db_stmt stmt_list = { "concept_list",
	"SELECT kqe_ts(c.updated_at), c.id::text, coalesce(c.office_id, ''), " CONCEPT_JSON
	" FROM protection_concepts c WHERE" READER " AND ($1::text IS NULL OR c.office_id = $1)"
	" AND ($2::text IS NULL OR c.provider_id = $2)"
	" AND ($3::timestamptz IS NULL OR c.updated_at >= $3)"
	" AND ($4::timestamptz IS NULL OR (c.updated_at, c.id) > ($4, $5::uuid))"
	" ORDER BY c.updated_at, c.id LIMIT $6" };
static const struct db_stmt stmt_lock = { "concept_lock",
	"SELECT coalesce(c.office_id, ''), c.version, " CONCEPT_JSON
	" FROM protection_concepts c WHERE" READER " AND c.id = $1::uuid FOR UPDATE" };
/* $2 office or $3 provider: the caller's own. */
static const struct db_stmt stmt_insert = { "concept_insert",
	"INSERT INTO protection_concepts (id, office_id, provider_id, region, adopted_on,"
	" next_review_on, elements, participants)"
	" SELECT $1::uuid, $2, $3, kqe_concept_owner_region(), $4::date, $5::date, $6::jsonb,"
	" ARRAY(SELECT json_array_elements_text($7::json)) ON CONFLICT DO NOTHING" };
static const struct db_stmt stmt_existing = { "concept_existing",
	"SELECT id::text FROM protection_concepts WHERE office_id = $1 OR provider_id = $2" };
static const struct db_stmt stmt_update = { "concept_update",
	"UPDATE protection_concepts SET adopted_on = $2::date, next_review_on = $3::date,"
	" elements = $4::jsonb, participants = ARRAY(SELECT json_array_elements_text($5::json)),"
	" version = version + 1, updated_at = now() WHERE id = $1::uuid" };

/* A member of the document as JSON text, owned by the request ([] if absent). */
static const char *
member_json(struct write *w, const char *name)
{
	const json_t *v = json_object_get(w->doc, name);
	return request_own_string(w->r, v != NULL ? json_dumps(v, JSON_COMPACT) : xstrdup("[]"));
}

static int
concept_create(struct write *w)
{
	const struct principal *p = &w->r->principal;
	bool office = role_is_office(p->role);
	uuid_v4(w->id);
	snprintf(w->office, sizeof(w->office), "%s", office ? p->office_id : "");
	if (!office)
		json_object_set_new(w->details, "provider_id", json_string(p->provider_id));
	const char *params[] = { w->id, office ? p->office_id : NULL,
		office ? NULL : p->provider_id, doc_text(w, "adopted_on"),
		doc_text(w, "next_review_on"), member_json(w, "elements"),
		member_json(w, "participants") };
	PGresult *res = db_exec(w->r->db, &stmt_insert, 7, params);
	if (res == NULL)
		return -1;
	int inserted = atoi(PQcmdTuples(res)) == 1;
	PQclear(res);
	if (inserted)
		return 0;
	return write_conflict(w, &stmt_existing, 2, params + 1, "",
	    "You have a protection concept already (see Location): a new version is a change "
	    "of it.");
}

static int
concept_update(struct write *w)
{
	const char *params[] = { w->id, doc_text(w, "adopted_on"), doc_text(w, "next_review_on"),
		member_json(w, "elements"), member_json(w, "participants") };
	return write_exec(w, &stmt_update, 5, params);
}

static const char *const csv_columns[] = { "id", "owner_kind", "office_id", "provider_id", "region",
	"adopted_on", "next_review_on", "status", "elements.childrens_rights",
	"elements.foster_carer_participation", "elements.young_people_participation",
	"elements.complaint_internal", "elements.complaint_external", "elements.risk_analysis",
	"elements.suspicion_procedure", "elements.contact_persons", "elements.training",
	"elements.review", "participants", "version", "created_at", "updated_at", NULL };

const struct resource protection_concepts_resource = {
	CALLER_SCOPED("protection_concept", "protection concept", "/v1/protection-concepts"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.fields = fields, .nfields = ARRAY_LEN(fields), .rules = check_rules,
	.create = concept_create, .update = concept_update
};

/* ---- the versions of a concept: /v1/protection-concepts/{id}/versions ---- */

/* The concept of the path, if the caller reads it. */
static const struct db_stmt stmt_version_concept = { "concept_version_concept",
	"SELECT coalesce(c.office_id, '') FROM protection_concepts c WHERE" READER
	" AND c.id = $1::uuid" };
/* $1 the concept, $2 cursor (version), $3 limit; oldest first. */
static const struct db_stmt stmt_versions = { "concept_versions",
	"SELECT v.version::text, coalesce(c.office_id, ''),"
	" json_build_object('concept_id', v.concept_id, 'version', v.version,"
	" 'adopted_on', v.adopted_on, 'next_review_on', v.next_review_on,"
	" 'elements', v.elements, 'participants', to_json(v.participants),"
	" 'at', kqe_ts(v.at))::text"
	" FROM protection_concept_versions v JOIN protection_concepts c ON c.id = v.concept_id"
	" WHERE" READER " AND v.concept_id = $1::uuid AND ($2::int IS NULL OR v.version > $2)"
	" ORDER BY v.version LIMIT $3" };

const struct resource protection_concept_versions_resource = {
	.name = "protection_concept_version",
	.title = "protection concept version",
	.collection = "/v1/protection-concepts",
	.parent = "concept_id",
	.sub = "versions",
	.scope = SCOPE_NONE,
	.as_caller = true,
	.audited = true,
	.list = &stmt_versions,
	.keys = { KEY_INTEGER },
	.nkeys = 1,
	.refs = { { "concept_id", &stmt_version_concept, SCOPE_NONE,
	    "is not a concept you read" } },
};

/* ---- coverage: who has a current concept, whose review is overdue, who has none ---- */

/* $1 status, $2 region, $3 owner_kind */
static const struct db_stmt stmt_coverage = { "concept_coverage",
	"SELECT owner_kind, owner_id, region, status, coalesce(next_review_on::text, '')"
	" FROM kqe_concept_status(current_date) WHERE ($1::text IS NULL OR status = $1)"
	" AND ($2::text IS NULL OR region = $2) AND ($3::text IS NULL OR owner_kind = $3)"
	" ORDER BY owner_kind, owner_id" };

/*
 * GET /v1/protection-concept-coverage?status=&region=&owner_kind=: offices
 * and providers with the state of their concept today. Advisors see their
 * region's, admin all, each owner by id; the ministry the counts only.
 */
void
concept_coverage(struct request *r)
{
	const char *params[] = { query_get(r, "status"), query_get(r, "region"),
		query_get(r, "owner_kind") };
	PGresult *res = query_as_caller(r, &stmt_coverage, 3, params);
	if (res == NULL)
		return;
	bool counts_only = r->principal.role == ROLE_MINISTRY;
	json_t *counts = json_object(), *items = counts_only ? json_null() : json_array();
	for (const char *const *s = codelist_concept_status_values; *s != NULL; s++)
		json_object_set_new(counts, *s, json_integer(0));
	for (int i = 0; i < PQntuples(res); i++) {
		const char *status = PQgetvalue(res, i, 3);
		json_object_set_new(counts, status,
		    json_integer(json_integer_value(json_object_get(counts, status)) + 1));
		if (counts_only)
			continue;
		const char *review = PQgetvalue(res, i, 4);
		json_array_append_new(
		    items, json_pack("{s:s,s:s,s:s,s:s,s:o}", "owner_kind", PQgetvalue(res, i, 0),
		               "owner_id", PQgetvalue(res, i, 1), "region", PQgetvalue(res, i, 2),
		               "status", status, "next_review_on",
		               review[0] ? json_string(review) : json_null()));
	}
	PQclear(res);
	reply_json(r, 200, json_pack("{s:o,s:o}", "counts", counts, "items", items));
}
