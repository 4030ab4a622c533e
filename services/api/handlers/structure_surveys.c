/*
 * Structural-quality surveys (Erhebung der Strukturqualität), one per § 8
 * procedure: staffing of the general social service (ASD), the written § 8a
 * procedure, on-call service, § 8a (4) agreements, the pool of insoweit
 * erfahrene Fachkräfte, cooperation agreements. Figures and yes/no answers
 * only, no free text: the validated document is stored as jsonb, normalised
 * so that every field is present (null where not reported), and it reads the
 * same for every role that may see the procedure. PUT replaces it whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "http.h"
#include "kqe/problem.h"

/* Cooperation agreements (Kooperationsvereinbarungen) the office has in place. */
static const struct field_spec cooperation_fields[] = {
	FIELD_SPEC_FLAG("police"),
	FIELD_SPEC_FLAG("health"),
	FIELD_SPEC_FLAG("schools"),
	FIELD_SPEC_FLAG("family_court"),
};

/*
 * The survey, in the order of its representation. Units are in the names:
 * _fte = full-time equivalents, _percent = 0..100, _12m = in the 12 months
 * before reference_date, _count / _size = number of. The ranges are what one
 * office can plausibly report (the largest NRW office has some 400 ASD
 * staff); anything beyond is a typing error. Optional fields may be null
 * (not reported), so a representation read with GET can be PUT back.
 */
static const struct field_spec fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID, .required = true, .immutable = true },
	/* The day the figures describe; not in the future (check_rules). */
	{ .name = "reference_date", .type = FIELD_DATE, .required = true },
	/* ASD staff in full-time equivalents, 0..2000 FTE. */
	{ .name = "asd_staff_fte", .type = FIELD_NUMBER, .required = true, .min = 0, .max = 2000 },
	/* Vacant ASD posts, 0..500 FTE. */
	{ .name = "vacancies_fte", .type = FIELD_NUMBER, .nullable = true, .min = 0, .max = 500 },
	/* Staff who left the ASD in the last 12 months, 0..2000 persons. */
	{ .name = "staff_turnover_12m",
	    .type = FIELD_INTEGER,
	    .nullable = true,
	    .min = 0,
	    .max = 2000 },
	/* Share of ASD staff with less than 2 years' experience, 0..100 %. */
	{ .name = "share_experience_under_2y_percent",
	    .type = FIELD_NUMBER,
	    .nullable = true,
	    .min = 0,
	    .max = 100 },
	/* Open cases per full-time equivalent, 0..1000 cases/FTE. */
	{ .name = "cases_per_fte", .type = FIELD_NUMBER, .nullable = true, .min = 0, .max = 1000 },
	/* A written procedure for § 8a risk assessments exists. */
	{ .name = "written_8a_procedure", .type = FIELD_BOOLEAN, .required = true },
	/* Its last revision; only with a written procedure, not after reference_date. */
	{ .name = "written_8a_last_revised", .type = FIELD_DATE, .nullable = true },
	/* 24/7 on-call service (Rufbereitschaft). */
	FIELD_SPEC_FLAG("on_call_24_7"),
	/* § 8a (4) SGB VIII agreements with providers, 0..10000 agreements. */
	{ .name = "agreements_8a4_count",
	    .type = FIELD_INTEGER,
	    .nullable = true,
	    .min = 0,
	    .max = 10000 },
	/* Insoweit erfahrene Fachkräfte available to consult, 0..1000 persons. */
	{ .name = "insofa_pool_size",
	    .type = FIELD_INTEGER,
	    .nullable = true,
	    .min = 0,
	    .max = 1000 },
	/* Regular external supervision for ASD staff. */
	FIELD_SPEC_FLAG("supervision"),
	/* Training per FTE in the last 12 months, 0..1000 hours/FTE. */
	{ .name = "training_hours_per_fte",
	    .type = FIELD_NUMBER,
	    .nullable = true,
	    .min = 0,
	    .max = 1000 },
	/* A standard risk-assessment instrument is used. */
	FIELD_SPEC_FLAG("standard_risk_instrument"),
	FIELD_SPEC_OBJECT("cooperation", cooperation_fields, false),
	/* A complaint procedure children know about. */
	FIELD_SPEC_FLAG("child_complaint_procedure"),
};

/* Everything but the body, and the body as stored; render() makes one object of them. */
#define SURVEY_JSON                                                                                \
	"json_build_object('id', s.id, 'procedure_id', s.procedure_id, 'office_id', s.office_id,"  \
	" 'body', s.body, 'version', s.version, 'created_at', kqe_ts(s.created_at),"               \
	" 'updated_at', kqe_ts(s.updated_at))::text"

#define SURVEY_SCOPE SUBMISSION_SCOPE("s")
#define SURVEY_FROM " FROM structure_surveys s WHERE"

static const struct db_stmt stmt_get = { "survey_get",
	"SELECT s.office_id, " SURVEY_JSON SURVEY_FROM SURVEY_SCOPE " AND s.id = $3::uuid" };
/* scope, $3 office_id, $4 procedure_id, $5 updated_since, $6 $7 cursor, $8 limit */
static const struct db_stmt stmt_list = { "survey_list",
	"SELECT kqe_ts(s.updated_at), s.id::text, s.office_id, " SURVEY_JSON SURVEY_FROM
	    SURVEY_SCOPE
	" AND ($3::text IS NULL OR s.office_id = $3) AND ($4::uuid IS NULL OR s.procedure_id = $4)"
	" AND ($5::timestamptz IS NULL OR s.updated_at >= $5)"
	" AND ($6::timestamptz IS NULL OR (s.updated_at, s.id) > ($6, $7::uuid))"
	" ORDER BY s.updated_at, s.id LIMIT $8" };
static const struct db_stmt stmt_lock = { "survey_lock",
	"SELECT s.office_id, s.version, " SURVEY_JSON ", p.phase"
	" FROM structure_surveys s JOIN procedures p ON p.id = s.procedure_id WHERE" SURVEY_SCOPE
	" AND s.id = $3::uuid FOR UPDATE OF s FOR SHARE OF p" };
static const struct db_stmt stmt_insert = { "survey_insert",
	"INSERT INTO structure_surveys (id, procedure_id, office_id, body)"
	" VALUES ($1::uuid, $2::uuid, $3, $4::jsonb)"
	" ON CONFLICT (procedure_id) DO NOTHING RETURNING id" };
static const struct db_stmt stmt_existing = { "survey_existing",
	"SELECT id::text FROM structure_surveys WHERE procedure_id = $1::uuid" };
static const struct db_stmt stmt_update = { "survey_update",
	"UPDATE structure_surveys SET body = $2::jsonb, version = version + 1, updated_at = now()"
	" WHERE id = $1::uuid" };

/* Cross-field rules over the valid members (pipeline.h); dates compare as strings. */
static void
check_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	char now[11];
	time_t t = time(NULL);
	struct tm tm;
	strftime(now, sizeof(now), "%Y-%m-%d", gmtime_r(&t, &tm));
	const char *reference = json_string_value(json_object_get(doc, "reference_date"));
	if (reference != NULL && strcmp(reference, now) > 0)
		rule_error(errors, prefix, "/reference_date", "range", "must not be in the future");
	const char *revised = json_string_value(json_object_get(doc, "written_8a_last_revised"));
	if (revised == NULL)
		return;
	if (json_is_false(json_object_get(doc, "written_8a_procedure")))
		rule_error(errors, prefix, "/written_8a_last_revised", "forbidden",
		    "is only allowed when written_8a_procedure is true");
	else if (reference != NULL && strcmp(revised, reference) > 0)
		rule_error(errors, prefix, "/written_8a_last_revised", "range",
		    "must not be after reference_date");
}

/*
 * The survey body as stored and shown: every field but procedure_id, in
 * order, null where absent (cooperation likewise). Returns a new reference.
 */
static json_t *
normalise(const json_t *in)
{
	json_t *out = json_object();
	for (size_t i = 1; i < ARRAY_LEN(fields); i++) {
		const struct field_spec *f = &fields[i];
		json_t *v = json_object_get(in, f->name);
		if (f->type == FIELD_OBJECT && json_is_object(v)) {
			json_t *o = json_object();
			for (size_t k = 0; k < f->nfields; k++) {
				json_t *x = json_object_get(v, f->fields[k].name);
				json_object_set_new(
				    o, f->fields[k].name, x ? json_incref(x) : json_null());
			}
			json_object_set_new(out, f->name, o);
		} else {
			json_object_set_new(out, f->name, v ? json_incref(v) : json_null());
		}
	}
	return out;
}

/* The stored document of the write, as JSON text owned by the request. */
static const char *
stored_document(struct write *w)
{
	json_t *normal = normalise(w->doc);
	const char *text =
	    request_own_string(w->r, json_dumps(normal, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(normal);
	return text;
}

static int
survey_create(struct write *w)
{
	if (write_refused_by_procedure(w, "The procedure is completed; it takes no survey."))
		return 0;
	uuid_v4(w->id);
	const char *params[] = { w->id, doc_text(w, "procedure_id"), w->office,
		stored_document(w) };
	PGresult *res = db_exec(w->r->db, &stmt_insert, 4, params);
	if (res == NULL)
		return -1;
	int inserted = PQntuples(res);
	PQclear(res);
	return inserted ? 0
	                : write_conflict(w, &stmt_existing, 1, params + 1, "/procedure_id",
	                      "This procedure has its structure survey already (see Location); "
	                      "change it with PUT.");
}

static int
survey_update(struct write *w)
{
	if (strcmp(row_value(w, 3), "completed") == 0) {
		write_refuse(w, 409, "/procedure_id", "completed",
		    "The procedure is completed; its survey cannot change.");
		return 0;
	}
	const char *params[] = { w->id, stored_document(w) };
	return write_exec(w, &stmt_update, 2, params);
}

/* id, procedure_id, office_id, the normalised body, version and times: one object. */
static json_t *
render(struct request *r, json_t *row)
{
	(void)r;
	json_t *s = json_object();
	const char *head[] = { "id", "procedure_id", "office_id" };
	const char *tail[] = { "version", "created_at", "updated_at" };
	for (size_t i = 0; i < ARRAY_LEN(head); i++)
		json_object_set(s, head[i], json_object_get(row, head[i]));
	json_t *body = normalise(json_object_get(row, "body"));
	json_object_update(s, body);
	json_decref(body);
	for (size_t i = 0; i < ARRAY_LEN(tail); i++)
		json_object_set(s, tail[i], json_object_get(row, tail[i]));
	json_decref(row);
	return s;
}

static const char *const csv_columns[] = { "id", "procedure_id", "office_id", "reference_date",
	"asd_staff_fte", "vacancies_fte", "staff_turnover_12m", "share_experience_under_2y_percent",
	"cases_per_fte", "written_8a_procedure", "written_8a_last_revised", "on_call_24_7",
	"agreements_8a4_count", "insofa_pool_size", "supervision", "training_hours_per_fte",
	"standard_risk_instrument", "cooperation.police", "cooperation.health",
	"cooperation.schools", "cooperation.family_court", "child_complaint_procedure", "version",
	"created_at", "updated_at", NULL };

const struct resource structure_surveys_resource = {
	OFFICE_DATA("structure_survey", "structure survey", "/v1/structure-surveys"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.render = render, .fields = fields, .nfields = ARRAY_LEN(fields), .rules = check_rules,
	.refs = { PROCEDURE_REFERENCE }, .create = survey_create, .update = survey_update
};
