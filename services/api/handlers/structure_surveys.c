/*
 * Structural-quality surveys (Erhebung der Strukturqualität), one per § 8
 * procedure: staffing of the general social service (ASD), the written § 8a
 * procedure, on-call service, § 8a (4) agreements, the pool of insoweit
 * erfahrene Fachkräfte, cooperation agreements. Figures and yes/no answers
 * only, no free text: the validated body is stored as jsonb, normalised so
 * that every field is present (null where not reported), and it reads the
 * same for every role that may see the procedure.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "caller.h"
#include "handlers.h"
#include "http.h"
#include "kqe/log.h"
#include "kqe/outbox.h"
#include "kqe/problem.h"
#include "kqe/validate.h"

/* The query of writes that take nothing but ?dry_run=. */
static const char *const dry_run_allowed[] = { "dry_run", NULL };

/* Cooperation agreements (Kooperationsvereinbarungen) the office has in place. */
static const struct field_spec cooperation_fields[] = {
	{ .name = "police", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "health", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "schools", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "family_court", .type = FIELD_BOOLEAN, .nullable = true },
};

/*
 * The survey, in the order of its representation. Units are in the names:
 * _fte = full-time equivalents, _percent = 0..100, _12m = in the 12 months
 * before reference_date, _count / _size = number of. The ranges are what one
 * office can plausibly report (the largest NRW office has some 400 ASD
 * staff); anything beyond is a typing error. Optional fields may be null
 * (not reported), so a representation read with GET can be PUT back.
 *
 * procedure_id is required on create (checked there) and immutable: on PUT
 * it may be left out or must name the survey's procedure.
 */
static const struct field_spec survey_fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID },
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
	{ .name = "on_call_24_7", .type = FIELD_BOOLEAN, .nullable = true },
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
	{ .name = "supervision", .type = FIELD_BOOLEAN, .nullable = true },
	/* Training per FTE in the last 12 months, 0..1000 hours/FTE. */
	{ .name = "training_hours_per_fte",
	    .type = FIELD_NUMBER,
	    .nullable = true,
	    .min = 0,
	    .max = 1000 },
	/* A standard risk-assessment instrument is used. */
	{ .name = "standard_risk_instrument", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "cooperation",
	    .type = FIELD_OBJECT,
	    .nullable = true,
	    .fields = cooperation_fields,
	    .nfields = ARRAY_LEN(cooperation_fields) },
	/* A complaint procedure children know about. */
	{ .name = "child_complaint_procedure", .type = FIELD_BOOLEAN, .nullable = true },
};

/* Everything but the body, built by PostgreSQL. */
#define SURVEY_META                                                                                \
	"json_build_object('id', s.id, 'procedure_id', s.procedure_id, 'office_id', s.office_id,"  \
	" 'version', s.version, 'created_at', kqe_ts(s.created_at),"                               \
	" 'updated_at', kqe_ts(s.updated_at))::text"

/* $1 office scope, $2 institute scope: the API's tenant filter (RLS applies as well). */
#define SURVEY_SCOPE                                                                               \
	" ($1::text IS NULL OR s.office_id = $1) AND ($2::text IS NULL OR p.institute_id = $2)"

static const struct db_stmt stmt_procedure = { "survey_procedure",
	"SELECT p.office_id, p.phase FROM procedures p"
	" WHERE ($1::text IS NULL OR p.office_id = $1) AND ($2::text IS NULL OR p.institute_id = $2)"
	" AND p.id = $3::uuid FOR SHARE" };
static const struct db_stmt stmt_insert = { "survey_insert",
	"INSERT INTO structure_surveys (id, procedure_id, office_id, body)"
	" VALUES ($1::uuid, $2::uuid, $3, $4::jsonb)"
	" ON CONFLICT (procedure_id) DO NOTHING RETURNING id" };
static const struct db_stmt stmt_existing = { "survey_existing",
	"SELECT id::text FROM structure_surveys WHERE procedure_id = $1::uuid" };
static const struct db_stmt stmt_get = { "survey_get",
	"SELECT s.office_id, s.body::text, " SURVEY_META " FROM structure_surveys s"
	" JOIN procedures p ON p.id = s.procedure_id WHERE" SURVEY_SCOPE " AND s.id = $3::uuid" };
static const struct db_stmt stmt_lock = { "survey_lock",
	"SELECT s.office_id, s.procedure_id::text, s.version, p.phase, s.body::text"
	" FROM structure_surveys s JOIN procedures p ON p.id = s.procedure_id"
	" WHERE" SURVEY_SCOPE " AND s.id = $3::uuid FOR UPDATE OF s FOR SHARE OF p" };
static const struct db_stmt stmt_update = { "survey_update",
	"UPDATE structure_surveys s SET body = $2::jsonb, version = s.version + 1,"
	" updated_at = now() WHERE s.id = $1::uuid AND s.version = $3::int"
	" RETURNING s.body::text, " SURVEY_META };
static const struct db_stmt stmt_list = { "survey_list",
	"SELECT kqe_ts(s.updated_at), s.id::text, s.body::text, " SURVEY_META
	" FROM structure_surveys s JOIN procedures p ON p.id = s.procedure_id WHERE" SURVEY_SCOPE
	" AND ($3::timestamptz IS NULL OR (s.updated_at, s.id) > ($3::timestamptz, $4::uuid))"
	" AND ($5::text IS NULL OR s.office_id = $5) AND ($6::uuid IS NULL OR s.procedure_id = $6)"
	" AND ($7::timestamptz IS NULL OR s.updated_at >= $7::timestamptz)"
	" ORDER BY s.updated_at, s.id LIMIT $8" };

/* True if s is a UUID; lowercases it in place so ids (and AADs, audit entries) are canonical. */
static int
canonical_id(char *s)
{
	if (!uuid_valid(s))
		return 0;
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
	return 1;
}

/* Today (UTC) as YYYY-MM-DD: dates compare as strings. */
static void
today(char out[11])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* The value of a date field if it is a valid date, else NULL (it is reported on its own). */
static const char *
valid_date(const json_t *body, const char *name)
{
	const char *s = json_string_value(json_object_get(body, name));
	return s != NULL && date_valid(s) ? s : NULL;
}

/* Cross-field rules the field specs cannot express. */
static void
check_rules(const json_t *body, json_t *errors)
{
	char now[11];
	today(now);
	const char *reference = valid_date(body, "reference_date");
	if (reference != NULL && strcmp(reference, now) > 0)
		error_at_pointer(errors, "/reference_date", "range", "must not be in the future");

	const char *revised = valid_date(body, "written_8a_last_revised");
	const json_t *written = json_object_get(body, "written_8a_procedure");
	if (revised == NULL)
		return;
	if (json_is_false(written))
		error_at_pointer(errors, "/written_8a_last_revised", "forbidden",
		    "is only allowed when written_8a_procedure is true");
	else if (reference != NULL && strcmp(revised, reference) > 0)
		error_at_pointer(errors, "/written_8a_last_revised", "range",
		    "must not be after reference_date");
}

/*
 * The survey body as stored and shown: every field of survey_fields but
 * procedure_id, in order, null where absent (cooperation likewise). Returns
 * a new reference; in is borrowed.
 */
static json_t *
normalise(const json_t *in)
{
	json_t *out = json_object();
	for (size_t i = 1; i < ARRAY_LEN(survey_fields); i++) {
		const struct field_spec *f = &survey_fields[i];
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

/*
 * The representation from the row's meta object and body text (both from
 * PostgreSQL). Takes ownership of meta.
 */
static json_t *
render(json_t *meta, const char *body_text)
{
	json_t *stored = json_loads(body_text, 0, NULL);
	json_t *body = normalise(stored);
	json_decref(stored);
	json_t *s = json_object();
	const char *head[] = { "id", "procedure_id", "office_id" };
	const char *tail[] = { "version", "created_at", "updated_at" };
	for (size_t i = 0; i < ARRAY_LEN(head); i++)
		json_object_set(s, head[i], json_object_get(meta, head[i]));
	json_object_update(s, body);
	for (size_t i = 0; i < ARRAY_LEN(tail); i++)
		json_object_set(s, tail[i], json_object_get(meta, tail[i]));
	json_decref(body);
	json_decref(meta);
	return s;
}

/* Reads one survey in the open transaction; NULL if not there or not the caller's. */
static json_t *
read_one(struct request *r, const char *id, char *office_out, size_t office_size, int *failed)
{
	const char *office, *institute;
	caller_scope(&r->principal, &office, &institute);
	const char *params[] = { office, institute, id };
	PGresult *res = db_exec(r->worker->db, &stmt_get, 3, params);
	*failed = res == NULL;
	if (res == NULL || PQntuples(res) == 0) {
		PQclear(res);
		return NULL;
	}
	snprintf(office_out, office_size, "%s", PQgetvalue(res, 0, 0));
	json_t *s = render(pg_json(res, 0, 2), PQgetvalue(res, 0, 1));
	PQclear(res);
	return s;
}

static void
reply_invalid(struct request *r, json_t *errors)
{
	reply_problem(r, 422, "The structure survey has invalid fields.", errors);
}

/* 409 naming the procedure's survey, which exists already. */
static void
reply_duplicate(struct request *r, const char *existing)
{
	char location[80];
	snprintf(location, sizeof(location), "/v1/structure-surveys/%s", existing);
	reply_header(r, "Location", location);
	json_t *p = problem_new(409,
	    "This procedure has its structure survey already (see Location); change it with PUT.",
	    r->id);
	json_object_set_new(p, "existing_id", json_string(existing));
	char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(p);
	reply_bytes(r, 409, "application/problem+json; charset=utf-8", text, strlen(text));
	free(text);
}

/* POST /v1/structure-surveys[?dry_run=true] */
void
structure_surveys_create(struct request *r)
{
	struct db *db = r->worker->db;
	struct outbox_event ev;
	PGresult *res = NULL;
	char *stored = NULL;
	int dry_run;

	if (write_params(r, dry_run_allowed, &dry_run, NULL) != 0)
		return;
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *errors = json_array();
	if (json_object_get(body, "procedure_id") == NULL)
		error_at_pointer(errors, "/procedure_id", "required", "is required");
	if (db_begin_as(db, &r->principal) != 0)
		goto fail;
	/* The procedure is judged even when other fields are bad: every problem at once. */
	const char *procedure_id = json_string_value(json_object_get(body, "procedure_id"));
	char office[65] = "";
	int completed = 0;
	if (procedure_id != NULL && uuid_valid(procedure_id)) {
		const char *office_scope, *institute_scope;
		caller_scope(&r->principal, &office_scope, &institute_scope);
		const char *pparams[] = { office_scope, institute_scope, procedure_id };
		if ((res = db_exec(db, &stmt_procedure, 3, pparams)) == NULL)
			goto fail;
		if (PQntuples(res) == 0) {
			/* Not there or not the caller's: the same answer either way. */
			error_at_pointer(
			    errors, "/procedure_id", "not_found", "is not a procedure of yours");
		} else {
			snprintf(office, sizeof(office), "%s", PQgetvalue(res, 0, 0));
			completed = strcmp(PQgetvalue(res, 0, 1), "completed") == 0;
		}
		PQclear(res);
		res = NULL;
	}
	validate_object(body, survey_fields, ARRAY_LEN(survey_fields), "", errors);
	check_rules(body, errors);
	if (json_array_size(errors) > 0) {
		db_rollback(db);
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	if (completed) {
		db_rollback(db);
		reply_problem(r, 409, "The procedure is completed; it takes no survey.", NULL);
		goto out;
	}

	char id[37];
	uuid_v4(id);
	json_t *normal = normalise(body);
	stored = json_dumps(normal, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(normal);
	const char *iparams[] = { id, procedure_id, office, stored };
	if ((res = db_exec(db, &stmt_insert, 4, iparams)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		const char *eparams[] = { procedure_id };
		if ((res = db_exec(db, &stmt_existing, 1, eparams)) == NULL)
			goto fail;
		char existing[37];
		snprintf(
		    existing, sizeof(existing), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
		PQclear(res);
		res = NULL;
		db_rollback(db);
		reply_duplicate(r, existing);
		goto out;
	}
	PQclear(res);
	res = NULL;
	if (dry_run) {
		db_rollback(db);
		reply_json(r, 200, json_pack("{s:b,s:s}", "valid", 1, "would", "create"));
		goto out;
	}
	char office_read[65];
	int failed;
	json_t *rep;
	if (audit_append(db, &r->principal, "structure_survey.create", "structure_survey", id,
	        office, r->id, NULL) != 0 ||
	    office_changed(db, office, &ev) != 0 ||
	    (rep = read_one(r, id, office_read, sizeof(office_read), &failed)) == NULL)
		goto fail;
	if (db_commit(db) != 0) {
		json_decref(rep);
		goto fail;
	}
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	char location[80];
	snprintf(location, sizeof(location), "/v1/structure-surveys/%s", id);
	reply_header(r, "Location", location);
	reply_resource(r, 201, rep);
	goto out;
fail:
	db_rollback(db);
	reply_db_error(r);
out:
	PQclear(res);
	free(stored);
	json_decref(errors);
	json_decref(body);
}

/* Names of the body fields whose values differ (for the audit entry; values stay out). */
static json_t *
changed_fields(const json_t *before, const json_t *after)
{
	json_t *names = json_array();
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)after, key, v)
	{
		const json_t *old = json_object_get(before, key);
		if (old == NULL || !json_equal(old, v))
			json_array_append_new(names, json_string(key));
	}
	return names;
}

/*
 * PUT /v1/structure-surveys/{id} (If-Match required): replaces the survey
 * whole; fields left out become null. The procedure cannot change.
 */
void
structure_surveys_put(struct request *r)
{
	static const char *const allowed[] = { NULL };
	struct db *db = r->worker->db;
	struct outbox_event ev;
	PGresult *res = NULL;
	json_t *errors = NULL, *normal = NULL, *before = NULL;
	char *stored = NULL;
	long expected;

	if (query_accept(r, allowed) != 0)
		return;
	if (!canonical_id(r->params[0])) {
		reply_not_found(r);
		return;
	}
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	if (if_match_version(r, &expected) != 0)
		goto out;
	errors = json_array();
	const char *office_scope, *institute_scope;
	caller_scope(&r->principal, &office_scope, &institute_scope);
	const char *params[] = { office_scope, institute_scope, r->params[0] };
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_lock, 3, params)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		db_rollback(db);
		reply_not_found(r);
		goto out;
	}
	char office[65], version[16];
	snprintf(office, sizeof(office), "%s", PQgetvalue(res, 0, 0));
	long current = atol(PQgetvalue(res, 0, 2));
	int completed = strcmp(PQgetvalue(res, 0, 3), "completed") == 0;
	const char *procedure_id = json_string_value(json_object_get(body, "procedure_id"));
	if (procedure_id != NULL && uuid_valid(procedure_id) &&
	    strcasecmp(procedure_id, PQgetvalue(res, 0, 1)) != 0)
		error_at_pointer(errors, "/procedure_id", "immutable",
		    "cannot change: a survey belongs to its procedure");
	validate_object(body, survey_fields, ARRAY_LEN(survey_fields), "", errors);
	check_rules(body, errors);
	before = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
	PQclear(res);
	res = NULL;
	if (current != expected) {
		db_rollback(db);
		char etag[32];
		snprintf(etag, sizeof(etag), "\"v%ld\"", current);
		reply_header(r, "ETag", etag);
		reply_problem(r, 412, "The survey changed since your read; read it again.", NULL);
		goto out;
	}
	if (json_array_size(errors) > 0) {
		db_rollback(db);
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	if (completed) {
		db_rollback(db);
		reply_problem(
		    r, 409, "The procedure is completed; its survey cannot change.", NULL);
		goto out;
	}
	normal = normalise(body);
	stored = json_dumps(normal, JSON_COMPACT | JSON_PRESERVE_ORDER);
	snprintf(version, sizeof(version), "%ld", expected);
	const char *uparams[] = { r->params[0], stored, version };
	if ((res = db_exec(db, &stmt_update, 3, uparams)) == NULL || PQntuples(res) == 0)
		goto fail;
	json_t *old = normalise(before);
	json_t *details = json_pack("{s:o}", "fields", changed_fields(old, normal));
	json_decref(old);
	int rc = audit_append(db, &r->principal, "structure_survey.update", "structure_survey",
	    r->params[0], office, r->id, details);
	json_decref(details);
	if (rc != 0 || office_changed(db, office, &ev) != 0 || db_commit(db) != 0)
		goto fail;
	json_t *rep = render(pg_json(res, 0, 1), PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	reply_resource(r, 200, rep);
	goto out;
fail:
	db_rollback(db);
	reply_db_error(r);
out:
	PQclear(res);
	free(stored);
	json_decref(normal);
	json_decref(before);
	json_decref(errors);
	json_decref(body);
}

void
structure_surveys_get(struct request *r)
{
	static const char *const allowed[] = { NULL };

	if (query_accept(r, allowed) != 0)
		return;
	if (!canonical_id(r->params[0])) {
		reply_not_found(r);
		return;
	}
	reply_read_audited(
	    r, r->params[0], read_one, NULL, "structure_survey.read", "structure_survey");
}

void
structure_surveys_list(struct request *r)
{
	static const char *const allowed[] = { LIST_PARAMS, "office", "procedure", "updated_since",
		NULL };
	struct list_params lp;
	json_t *errors = json_array();
	char limit[24];

	query_parse(r, allowed, errors);
	list_params_parse(r, 2, &lp, errors);
	const char *after_ts = lp.after ? json_string_value(json_array_get(lp.after, 0)) : NULL;
	const char *after_id = lp.after ? json_string_value(json_array_get(lp.after, 1)) : NULL;
	if (lp.after != NULL &&
	    (!uuid_valid(after_id ? after_id : "") || !timestamp_valid(after_ts)))
		error_at_parameter(
		    errors, "cursor", "invalid_cursor", "is not a cursor this list issued");
	const char *office_filter = query_get(r, "office");
	if (office_filter != NULL && !slug_id_valid(office_filter))
		error_at_parameter(errors, "office", "format", "is not an office id");
	const char *procedure = query_get(r, "procedure");
	if (procedure != NULL && !uuid_valid(procedure))
		error_at_parameter(errors, "procedure", "format", "must be a UUID");
	const char *since = query_get(r, "updated_since");
	if (since != NULL && !timestamp_valid(since))
		error_at_parameter(errors, "updated_since", "format",
		    "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
	if (reply_query_errors(r, errors) != 0) {
		list_params_free(&lp);
		return;
	}
	const char *office, *institute;
	caller_scope(&r->principal, &office, &institute);
	snprintf(limit, sizeof(limit), "%ld", lp.limit + 1);
	const char *params[] = { office, institute, after_ts, after_id, office_filter, procedure,
		since, limit };
	struct db *db = r->worker->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_list, 8, params)) == NULL)
		goto fail;
	int n = PQntuples(res);
	int shown = n > lp.limit ? (int)lp.limit : n;
	if (!role_is_office(r->principal.role) && shown > 0) {
		json_t *details = json_pack("{s:i}", "count", shown);
		int rc = audit_append(db, &r->principal, "structure_survey.list",
		    "structure_survey", NULL, office_filter, r->id, details);
		json_decref(details);
		if (rc != 0)
			goto fail;
	}
	if (db_commit(db) != 0)
		goto fail;
	json_t *items = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(items, render(pg_json(res, i, 3), PQgetvalue(res, i, 2)));
	json_t *next = n > lp.limit ? json_pack("[s,s]", PQgetvalue(res, shown - 1, 0),
	                                  PQgetvalue(res, shown - 1, 1))
	                            : NULL;
	PQclear(res);
	list_params_free(&lp);
	reply_list(r, items, next);
	return;
fail:
	PQclear(res);
	db_rollback(db);
	list_params_free(&lp);
	reply_db_error(r);
}
