/*
 * Case analyses (Fallanalysen) of closed § 8a risk assessments, within a § 8
 * procedure. Fields align with the official § 8a statistics (§ 99 (6) SGB
 * VIII). The office's file number arrives as case_reference and is replaced
 * here, at the edge, by its pseudonym; it is never stored or logged. The
 * free-text findings are stored encrypted and decrypted only for the owning
 * office and the procedure's institute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caller.h"
#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/crypto.h"
#include "kqe/log.h"
#include "kqe/outbox.h"
#include "kqe/problem.h"
#include "kqe/validate.h"

#define FINDINGS_MAX 20000 /* characters */

static const struct field_spec child_fields[] = {
	{ .name = "sex", .type = FIELD_ENUM, .required = true, .values = codelist_sex_values },
	{ .name = "birth_month", .type = FIELD_MONTH, .required = true },
};

static const struct field_spec process_fields[] = {
	{ .name = "days_to_first_contact",
	    .type = FIELD_INTEGER,
	    .required = true,
	    .min = 0,
	    .max = 3650 },
	{ .name = "direct_impression", .type = FIELD_BOOLEAN, .required = true },
	{ .name = "several_professionals", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "child_involved", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "parents_involved", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "insofa_consulted", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "family_court_called", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "taken_into_care", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "services_before", .type = FIELD_BOOLEAN, .nullable = true },
	{ .name = "services_after", .type = FIELD_BOOLEAN, .nullable = true },
};

/*
 * The first CREATE_ONLY entries can only be given on creation; an update
 * validates the rest (case_fields + CREATE_ONLY).
 */
#define CREATE_ONLY 2
static const struct field_spec case_fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID, .required = true },
	{ .name = "case_reference", .type = FIELD_STRING, .required = true, .min = 1, .max = 100 },
	{ .name = "selection",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_selection_values },
	{ .name = "closed_month", .type = FIELD_MONTH, .required = true },
	{ .name = "child",
	    .type = FIELD_OBJECT,
	    .required = true,
	    .fields = child_fields,
	    .nfields = ARRAY_LEN(child_fields) },
	{ .name = "parents_age_group",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_parents_age_group_values },
	{ .name = "reported_by",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_reporter_values },
	{ .name = "result",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_assessment_result_values },
	{ .name = "endangerment_forms",
	    .type = FIELD_CODES,
	    .values = codelist_endangerment_form_values,
	    .max = 4 },
	{ .name = "process",
	    .type = FIELD_OBJECT,
	    .required = true,
	    .fields = process_fields,
	    .nfields = ARRAY_LEN(process_fields) },
	{ .name = "ratings",
	    .type = FIELD_RATINGS,
	    .values = codelist_quality_dimension_values,
	    .min = 1,
	    .max = 4 },
	{ .name = "learning_themes",
	    .type = FIELD_CODES,
	    .values = codelist_learning_theme_values,
	    .max = 18 },
	{ .name = "findings", .type = FIELD_STRING, .nullable = true, .max = FINDINGS_MAX },
};

/*
 * The representation, built by PostgreSQL. findings_enc is replaced by the
 * decrypted findings (or null) before it leaves the server.
 */
#define CASE_JSON                                                                                  \
	"json_build_object('id', c.id, 'procedure_id', c.procedure_id, 'office_id', c.office_id,"  \
	" 'case_pseudonym', c.case_pseudonym, 'selection', c.selection,"                           \
	" 'closed_month', to_char(c.closed_month, 'YYYY-MM'),"                                     \
	" 'child', json_build_object('sex', c.child_sex,"                                          \
	"   'birth_month', to_char(c.child_birth_month, 'YYYY-MM'),"                               \
	"   'age_group', kqe_age_group(c.child_birth_month, c.closed_month)),"                     \
	" 'parents_age_group', c.parents_age_group, 'reported_by', c.reported_by,"                 \
	" 'result', c.result, 'endangerment_forms', to_json(c.endangerment_forms),"                \
	" 'process', json_build_object('days_to_first_contact', c.days_to_first_contact,"          \
	"   'direct_impression', c.direct_impression,"                                             \
	"   'several_professionals', c.several_professionals,"                                     \
	"   'child_involved', c.child_involved, 'parents_involved', c.parents_involved,"           \
	"   'insofa_consulted', c.insofa_consulted,"                                               \
	"   'family_court_called', c.family_court_called,"                                         \
	"   'taken_into_care', c.taken_into_care, 'services_before', c.services_before,"           \
	"   'services_after', c.services_after),"                                                  \
	" 'ratings', c.ratings, 'learning_themes', to_json(c.learning_themes),"                    \
	" 'findings_enc', c.findings_enc, 'locked', c.locked, 'version', c.version,"               \
	" 'created_at', kqe_ts(c.created_at), 'updated_at', kqe_ts(c.updated_at))::text"

/* $1 office scope, $2 institute scope: the API's tenant filter (RLS applies as well). */
#define CASE_SCOPE                                                                                 \
	" ($1::text IS NULL OR c.office_id = $1) AND ($2::text IS NULL OR p.institute_id = $2)"

static const struct db_stmt stmt_procedure = { "case_procedure",
	"SELECT p.office_id, p.cycle, p.phase FROM procedures p"
	" WHERE ($1::text IS NULL OR p.office_id = $1) AND ($2::text IS NULL OR p.institute_id = $2)"
	" AND p.id = $3::uuid FOR SHARE" };
static const struct db_stmt stmt_insert = { "case_insert",
	"INSERT INTO case_analyses (id, procedure_id, office_id, case_pseudonym, selection,"
	" closed_month, child_sex, child_birth_month, parents_age_group, reported_by, result,"
	" endangerment_forms, days_to_first_contact, direct_impression, several_professionals,"
	" child_involved, parents_involved, insofa_consulted, family_court_called,"
	" taken_into_care, services_before, services_after, ratings, learning_themes,"
	" findings_enc)"
	" SELECT $1::uuid, $2::uuid, $3, $4, b->>'selection', (b->>'closed_month' || '-01')::date,"
	" b->'child'->>'sex', (b->'child'->>'birth_month' || '-01')::date,"
	" b->>'parents_age_group', b->>'reported_by', b->>'result',"
	" ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'endangerment_forms', '[]'))),"
	" (b->'process'->>'days_to_first_contact')::int,"
	" (b->'process'->>'direct_impression')::boolean,"
	" (b->'process'->>'several_professionals')::boolean,"
	" (b->'process'->>'child_involved')::boolean,"
	" (b->'process'->>'parents_involved')::boolean,"
	" (b->'process'->>'insofa_consulted')::boolean,"
	" (b->'process'->>'family_court_called')::boolean,"
	" (b->'process'->>'taken_into_care')::boolean,"
	" (b->'process'->>'services_before')::boolean,"
	" (b->'process'->>'services_after')::boolean,"
	" coalesce(b->'ratings', '{}'),"
	" ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'learning_themes', '[]'))), $6"
	" FROM (SELECT $5::jsonb AS b) AS body"
	" ON CONFLICT (office_id, case_pseudonym) DO NOTHING RETURNING id" };
static const struct db_stmt stmt_existing = { "case_existing",
	"SELECT id FROM case_analyses WHERE office_id = $1 AND case_pseudonym = $2" };
static const struct db_stmt stmt_get = { "case_get",
	"SELECT c.office_id, " CASE_JSON " FROM case_analyses c JOIN procedures p"
	" ON p.id = c.procedure_id WHERE" CASE_SCOPE " AND c.id = $3::uuid" };
static const struct db_stmt stmt_list = { "case_list",
	"SELECT kqe_ts(c.updated_at), c.id::text, c.office_id, " CASE_JSON
	" FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id WHERE" CASE_SCOPE
	" AND ($3::timestamptz IS NULL OR (c.updated_at, c.id) > ($3::timestamptz, $4::uuid))"
	" AND ($5::text IS NULL OR c.office_id = $5) AND ($6::uuid IS NULL OR c.procedure_id = $6)"
	" AND ($7::timestamptz IS NULL OR c.updated_at >= $7::timestamptz)"
	" ORDER BY c.updated_at, c.id LIMIT $8" };

/*
 * The closing month must lie in the procedure's window: from July five years
 * before its cycle starts (the five years of § 8a assessments a procedure at
 * the start of the cycle draws from) to June of the cycle's last year — and
 * not in the future.
 */
static int
closed_month_in_window(int closed, const char *cycle, int now_month)
{
	int first_year, last_year;
	if (sscanf(cycle, "%4d-%4d", &first_year, &last_year) != 2)
		return 0;
	int from = (first_year - 5) * 12 + 6; /* July */
	int to = last_year * 12 + 5; /* June */
	return closed >= from && closed <= to && closed <= now_month;
}

static int
current_month(void)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

static int
in_codes(const char *const *codes, const char *s)
{
	for (; *codes; codes++)
		if (strcmp(*codes, s) == 0)
			return 1;
	return 0;
}

/* Cross-field rules that the field specs cannot express. */
static void
check_rules(const json_t *body, json_t *errors)
{
	const char *result = json_string_value(json_object_get(body, "result"));
	const json_t *forms = json_object_get(body, "endangerment_forms");
	/* Only judged against a valid result: an invalid one is reported on its own. */
	if (result != NULL && !in_codes(codelist_assessment_result_values, result))
		result = NULL;
	int endangered = result != NULL && (strcmp(result, "akute_gefaehrdung") == 0 ||
	                                       strcmp(result, "latente_gefaehrdung") == 0);
	if (result != NULL && endangered && (!json_is_array(forms) || json_array_size(forms) == 0))
		error_at_pointer(errors, "/endangerment_forms", "required",
		    "is required when the result is an acute or latent endangerment");
	if (result != NULL && !endangered && json_is_array(forms) && json_array_size(forms) > 0)
		error_at_pointer(errors, "/endangerment_forms", "forbidden",
		    "must be empty unless the result is an acute or latent endangerment");

	const char *closed = json_string_value(json_object_get(body, "closed_month"));
	const char *born =
	    json_string_value(json_object_get(json_object_get(body, "child"), "birth_month"));
	int c = closed ? month_parse(closed) : -1, b = born ? month_parse(born) : -1;
	if (c >= 0 && b >= 0 && b > c)
		error_at_pointer(
		    errors, "/child/birth_month", "range", "must not be after the closing month");
	else if (c >= 0 && b >= 0 && c - b >= 18 * 12)
		error_at_pointer(errors, "/child/birth_month", "range",
		    "the child must be under 18 in the closing month");
}

/* Replaces findings_enc by the decrypted findings (or null where the caller may not read them). */
static json_t *
render(struct request *r, json_t *c)
{
	const char *env = json_string_value(json_object_get(c, "findings_enc"));
	json_t *findings = json_null();
	/* Free text only for the owning office and the procedure's institute. */
	if (env != NULL &&
	    (role_is_office(r->principal.role) || r->principal.role == ROLE_INSTITUTE)) {
		char aad[96];
		size_t len;
		snprintf(aad, sizeof(aad), "case_analysis:%s:findings",
		    json_string_value(json_object_get(c, "id")));
		char *text = keyring_decrypt(r->worker->keyring, env, aad, &len);
		if (text != NULL) {
			findings = json_stringn(text, len);
			free(text);
		} else {
			log_error(r->id, "findings cannot be decrypted",
			    json_pack("{s:O}", "case_analysis", json_object_get(c, "id")));
		}
	}
	json_object_del(c, "findings_enc");
	json_object_set_new(c, "findings", findings ? findings : json_null());
	return c;
}

/* Reads one case analysis in the open transaction; NULL if not there or not the caller's. */
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
	json_t *c = pg_json(res, 0, 1);
	PQclear(res);
	return c;
}

/* What became of one submitted case analysis. */
enum outcome { CREATED, INVALID, CONFLICT, COMPLETED, FAILED };

struct created {
	char id[37];
	char office[65];
	char existing[37]; /* CONFLICT: the record this one duplicates */
};

/* Appends an error whose pointer is prefix + ptr (prefix "" or "/items/N"). */
static void
error_at(json_t *errors, const char *prefix, const char *ptr, const char *code, const char *msg)
{
	char full[320];
	snprintf(full, sizeof(full), "%s%s", prefix, ptr);
	error_at_pointer(errors, full, code, msg);
}

/*
 * Validates one case analysis and inserts it in the caller's open
 * transaction (as the caller: RLS applies). Problems go to errors with
 * pointers under prefix. body is modified (reference and findings removed).
 */
static enum outcome
create_one(struct request *r, json_t *body, const char *prefix, json_t *errors, struct created *out)
{
	struct db *db = r->worker->db;
	size_t before = json_array_size(errors);
	char pseudo[PSEUDONYM_LEN + 1];
	char *findings_enc = NULL, *stored = NULL;
	enum outcome result = FAILED;
	PGresult *res = NULL;

	validate_object(body, case_fields, ARRAY_LEN(case_fields), prefix, errors);
	json_t *rules = json_array();
	check_rules(body, rules);
	size_t i;
	json_t *e;
	json_array_foreach(rules, i, e)
	    error_at(errors, prefix, json_string_value(json_object_get(e, "pointer")),
	        json_string_value(json_object_get(e, "code")),
	        json_string_value(json_object_get(e, "message")));
	json_decref(rules);
	if (json_array_size(errors) > before)
		return INVALID;

	const char *office_scope, *institute_scope;
	caller_scope(&r->principal, &office_scope, &institute_scope);
	const char *procedure_id = json_string_value(json_object_get(body, "procedure_id"));
	const char *pparams[] = { office_scope, institute_scope, procedure_id };
	if ((res = db_exec(db, &stmt_procedure, 3, pparams)) == NULL)
		return FAILED;
	if (PQntuples(res) == 0) {
		/* Not there or not the caller's: the same answer either way. */
		PQclear(res);
		error_at(
		    errors, prefix, "/procedure_id", "not_found", "is not a procedure of yours");
		return INVALID;
	}
	snprintf(out->office, sizeof(out->office), "%s", PQgetvalue(res, 0, 0));
	int closed = month_parse(json_string_value(json_object_get(body, "closed_month")));
	int in_window = closed_month_in_window(closed, PQgetvalue(res, 0, 1), current_month());
	int completed = strcmp(PQgetvalue(res, 0, 2), "completed") == 0;
	PQclear(res);
	res = NULL;
	if (!in_window) {
		error_at(errors, prefix, "/closed_month", "range",
		    "must lie in the procedure's window (July five years before its cycle to the "
		    "cycle's end) and not in the future");
		return INVALID;
	}
	if (completed)
		return COMPLETED;

	/* The file number becomes a pseudonym here and goes no further. */
	pseudonym(r->worker->pseudonymizer, out->office,
	    json_string_value(json_object_get(body, "case_reference")), pseudo);
	json_object_del(body, "case_reference");
	uuid_v4(out->id);
	const json_t *findings = json_object_get(body, "findings");
	if (json_is_string(findings) && json_string_length(findings) > 0) {
		char aad[96];
		snprintf(aad, sizeof(aad), "case_analysis:%s:findings", out->id);
		/* json_string_length: the text may hold \u0000, which strlen would cut at. */
		findings_enc = keyring_encrypt(r->worker->keyring, json_string_value(findings),
		    json_string_length(findings), aad);
		if (findings_enc == NULL)
			goto out;
	}
	json_object_del(body, "findings");
	stored = json_dumps(body, JSON_COMPACT);
	const char *iparams[] = { out->id, procedure_id, out->office, pseudo, stored,
		findings_enc };
	if ((res = db_exec(db, &stmt_insert, 6, iparams)) == NULL)
		goto out;
	if (PQntuples(res) > 0) {
		result = CREATED;
		goto out;
	}
	PQclear(res);
	const char *eparams[] = { out->office, pseudo };
	if ((res = db_exec(db, &stmt_existing, 2, eparams)) == NULL)
		goto out;
	snprintf(out->existing, sizeof(out->existing), "%s",
	    PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	error_at(errors, prefix, "/case_reference", "conflict",
	    "this office already has a case analysis for this case reference");
	result = CONFLICT;
out:
	PQclear(res);
	free(findings_enc);
	free(stored);
	return result;
}

void
case_analyses_create(struct request *r)
{
	static const char *const allowed[] = { "dry_run", NULL };
	int dry_run = 0;
	struct created c = { 0 };
	struct outbox_event ev;

	if (write_params(r, allowed, &dry_run, NULL) != 0)
		return;
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *errors = json_array();
	struct db *db = r->worker->db;
	if (db_begin_as(db, &r->principal) != 0)
		goto fail;
	switch (create_one(r, body, "", errors, &c)) {
	case INVALID:
		db_rollback(db);
		reply_problem(r, 422, "The case analysis has invalid fields.", errors);
		errors = NULL;
		goto out;
	case COMPLETED:
		db_rollback(db);
		reply_problem(
		    r, 409, "The procedure is completed; it takes no more case analyses.", NULL);
		goto out;
	case CONFLICT: {
		db_rollback(db);
		char location[64];
		snprintf(location, sizeof(location), "/v1/case-analyses/%s", c.existing);
		reply_header(r, "Location", location);
		json_t *p = problem_new(
		    409, "This office already has a case analysis for this case reference.", r->id);
		json_object_set_new(p, "existing_id", json_string(c.existing));
		char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(p);
		reply_bytes(r, 409, "application/problem+json; charset=utf-8", text, strlen(text));
		free(text);
		goto out;
	}
	case FAILED:
		goto fail;
	case CREATED:
		break;
	}
	if (dry_run) {
		db_rollback(db);
		reply_json(r, 200, json_pack("{s:b,s:s}", "valid", 1, "would", "create"));
		goto out;
	}
	char office_read[65];
	int failed;
	json_t *rep;
	if (audit_append(db, &r->principal, "case_analysis.create", "case_analysis", c.id, c.office,
	        r->id, NULL) != 0 ||
	    office_changed(db, c.office, &ev) != 0 ||
	    (rep = read_one(r, c.id, office_read, sizeof(office_read), &failed)) == NULL)
		goto fail;
	if (db_commit(db) != 0) {
		json_decref(rep);
		goto fail;
	}
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	char location[64];
	snprintf(location, sizeof(location), "/v1/case-analyses/%s", c.id);
	reply_header(r, "Location", location);
	reply_resource(r, 201, render(r, rep));
	goto out;
fail:
	db_rollback(db);
	reply_db_error(r);
out:
	json_decref(errors);
	json_decref(body);
}

#define BATCH_MAX 1000

static int
savepoint(struct db *db, const char *sql)
{
	return db_exec_script(db, sql);
}

/*
 * POST /v1/case-analyses:batch {"items": [...]} — up to 1,000 case analyses.
 * All-or-nothing by default; ?atomic=false keeps the valid ones. Answers an
 * import summary: counts, the created ids, and per rejected item its index
 * and errors (pointers into the batch document).
 */
void
case_analyses_batch(struct request *r)
{
	static const char *const allowed[] = { "dry_run", "atomic", NULL };
	int dry_run = 0, atomic = 1;
	struct db *db = r->worker->db;

	if (write_params(r, allowed, &dry_run, &atomic) != 0)
		return;
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *items = json_object_get(body, "items");
	json_t *errors = json_array();
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) if (strcmp(key, "items") != 0)
	{
		char ptr[300] = "";
		pointer_append(ptr, sizeof(ptr), key);
		error_at_pointer(errors, ptr, "unknown_field", "is not a known field");
	}
	if (!json_is_array(items))
		error_at_pointer(errors, "/items", items ? "type" : "required",
		    "must be an array of case analyses");
	else if (json_array_size(items) == 0 || json_array_size(items) > BATCH_MAX)
		error_at_pointer(errors, "/items", "length", "must hold 1 to 1000 case analyses");
	if (json_array_size(errors) > 0) {
		json_decref(body);
		reply_problem(r, 422, "The batch is not well formed.", errors);
		return;
	}
	json_decref(errors);

	json_t *created = json_array(), *rejected = json_array(), *offices = json_object();
	if (db_begin_as(db, &r->principal) != 0)
		goto fail;
	size_t i;
	json_array_foreach(items, i, v)
	{
		char prefix[32];
		struct created c = { 0 };
		json_t *item_errors = json_array();
		snprintf(prefix, sizeof(prefix), "/items/%zu", i);
		/* Each item in its own savepoint: a failure undoes only that item. */
		if (savepoint(db, "SAVEPOINT item") != 0) {
			json_decref(item_errors);
			goto fail;
		}
		enum outcome o =
		    json_is_object(v) ? create_one(r, v, prefix, item_errors, &c) : INVALID;
		if (!json_is_object(v))
			error_at_pointer(item_errors, prefix, "type", "must be an object");
		if (o == COMPLETED)
			error_at(item_errors, prefix, "/procedure_id", "completed",
			    "the procedure is completed");
		if (o == FAILED) {
			json_decref(item_errors);
			goto fail;
		}
		if (o == CREATED) {
			json_array_append_new(created, json_string(c.id));
			json_object_set_new(offices, c.office, json_true());
			json_decref(item_errors);
			if (savepoint(db, "RELEASE SAVEPOINT item") != 0)
				goto fail;
			continue;
		}
		json_t *entry =
		    json_pack("{s:I,s:o}", "index", (json_int_t)i, "errors", item_errors);
		if (o == CONFLICT)
			json_object_set_new(entry, "existing_id", json_string(c.existing));
		json_array_append_new(rejected, entry);
		if (savepoint(db, "ROLLBACK TO SAVEPOINT item") != 0)
			goto fail;
	}

	size_t nrejected = json_array_size(rejected);
	int keep = json_array_size(created) > 0 && (!atomic || nrejected == 0) && !dry_run;
	if (keep) {
		struct outbox_event ev[8];
		int nev = 0;
		json_t *details = json_pack("{s:O}", "ids", created);
		int rc = audit_append(db, &r->principal, "case_analysis.batch_create",
		    "case_analysis", NULL, NULL, r->id, details);
		json_decref(details);
		if (rc != 0)
			goto fail;
		/* One office_changed per office touched: the aggregator recomputes each once. */
		json_object_foreach(offices, key, v)
		{
			struct outbox_event one;
			if (office_changed(db, key, &one) != 0)
				goto fail;
			if (nev < (int)ARRAY_LEN(ev))
				ev[nev++] = one;
		}
		if (db_commit(db) != 0)
			goto fail;
		for (int k = 0; k < nev; k++)
			if (outbox_publish(db, r->worker->redis, &ev[k]) != 0)
				log_warn(r->id, "event not published; the outbox relay will", NULL);
	} else {
		db_rollback(db);
	}
	/* The summary is counts, ids and error codes only: safe to keep for a replay. */
	r->idempotency_keep_body = true;
	json_t *summary =
	    json_pack("{s:I,s:I,s:I,s:b,s:b}", "received", (json_int_t)json_array_size(items),
	        "created", (json_int_t)(keep ? json_array_size(created) : 0), "rejected",
	        (json_int_t)nrejected, "atomic", atomic, "dry_run", dry_run);
	json_object_set_new(summary, "updated", json_integer(0));
	json_object_set_new(summary, "created_ids", keep ? json_incref(created) : json_array());
	json_object_set_new(summary, "rejected_items", rejected);
	rejected = NULL;
	if (nrejected > 0 && (atomic || json_array_size(created) == 0)) {
		/* Nothing was stored: a problem, with the summary as its extension members. */
		json_t *p = problem_new(422,
		    atomic ? "The batch was rejected whole; nothing was stored."
		           : "No item of the batch was valid.",
		    r->id);
		json_object_update(p, summary);
		json_decref(summary);
		char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(p);
		reply_bytes(r, 422, "application/problem+json; charset=utf-8", text, strlen(text));
		free(text);
	} else {
		reply_json(r, dry_run ? 200 : (nrejected > 0 ? 200 : 201), summary);
	}
	goto out;
fail:
	db_rollback(db);
	reply_db_error(r);
out:
	json_decref(created);
	json_decref(rejected);
	json_decref(offices);
	json_decref(body);
}

void
case_analyses_get(struct request *r)
{
	static const char *const allowed[] = { NULL };

	if (query_accept(r, allowed) != 0)
		return;
	if (!uuid_valid(r->params[0])) {
		reply_not_found(r);
		return;
	}
	reply_read_audited(
	    r, r->params[0], read_one, render, "case_analysis.read", "case_analysis");
}

void
case_analyses_list(struct request *r)
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
	if (after_id != NULL && (!uuid_valid(after_id) || !timestamp_valid(after_ts)))
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
		int rc = audit_append(db, &r->principal, "case_analysis.list", "case_analysis",
		    NULL, office_filter, r->id, details);
		json_decref(details);
		if (rc != 0)
			goto fail;
	}
	if (db_commit(db) != 0)
		goto fail;
	json_t *items = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(items, render(r, pg_json(res, i, 3)));
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

/* ---- update and lock ---- */

static const struct db_stmt stmt_for_update = { "case_for_update",
	"SELECT c.office_id, c.locked, c.version, p.cycle, p.phase, " CASE_JSON
	" FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id WHERE" CASE_SCOPE
	" AND c.id = $3::uuid FOR UPDATE OF c" };
static const struct db_stmt stmt_update = { "case_update",
	"UPDATE case_analyses SET selection = b->>'selection',"
	" closed_month = (b->>'closed_month' || '-01')::date, child_sex = b->'child'->>'sex',"
	" child_birth_month = (b->'child'->>'birth_month' || '-01')::date,"
	" parents_age_group = b->>'parents_age_group', reported_by = b->>'reported_by',"
	" result = b->>'result',"
	" endangerment_forms = ARRAY(SELECT jsonb_array_elements_text("
	"   coalesce(b->'endangerment_forms', '[]'))),"
	" days_to_first_contact = (b->'process'->>'days_to_first_contact')::int,"
	" direct_impression = (b->'process'->>'direct_impression')::boolean,"
	" several_professionals = (b->'process'->>'several_professionals')::boolean,"
	" child_involved = (b->'process'->>'child_involved')::boolean,"
	" parents_involved = (b->'process'->>'parents_involved')::boolean,"
	" insofa_consulted = (b->'process'->>'insofa_consulted')::boolean,"
	" family_court_called = (b->'process'->>'family_court_called')::boolean,"
	" taken_into_care = (b->'process'->>'taken_into_care')::boolean,"
	" services_before = (b->'process'->>'services_before')::boolean,"
	" services_after = (b->'process'->>'services_after')::boolean,"
	" ratings = coalesce(b->'ratings', '{}'),"
	" learning_themes = ARRAY(SELECT jsonb_array_elements_text("
	"   coalesce(b->'learning_themes', '[]'))),"
	" findings_enc = $3, locked = $4::boolean, version = version + 1, updated_at = now()"
	" FROM (SELECT $2::jsonb AS b) AS body WHERE id = $1::uuid AND version = $5::int" };

/* RFC 7386 JSON merge patch of patch into target (both objects; target modified). */
static void
merge_patch(json_t *target, const json_t *patch)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)patch, k, v)
	{
		json_t *t = json_object_get(target, k);
		if (json_is_null(v)) {
			json_object_del(target, k);
		} else if (json_is_object(v)) {
			if (!json_is_object(t)) {
				t = json_object();
				json_object_set_new(target, k, t);
			}
			merge_patch(t, v);
		} else {
			json_object_set(target, k, v);
		}
	}
}

/* The stored representation turned back into the writable shape (findings decrypted). */
static json_t *
writable(struct request *r, json_t *c)
{
	render(r, c);
	const char *const drop[] = { "id", "procedure_id", "office_id", "case_pseudonym", "locked",
		"version", "created_at", "updated_at" };
	for (size_t i = 0; i < ARRAY_LEN(drop); i++)
		json_object_del(c, drop[i]);
	json_object_del(json_object_get(c, "child"), "age_group");
	if (json_is_null(json_object_get(c, "findings")))
		json_object_del(c, "findings");
	return c;
}

static void
reply_422(struct request *r, json_t *errors)
{
	reply_problem(r, 422, "The case analysis has invalid fields.", errors);
}

/*
 * PATCH /v1/case-analyses/{id} — JSON merge patch with If-Match. The file
 * reference and the procedure cannot change. {"locked": true} locks the
 * record (office lead only; Abschluss der Fallanalyse): a locked case
 * analysis is read-only and stays so.
 */
void
case_analyses_patch(struct request *r)
{
	static const char *const allowed[] = { NULL };
	struct db *db = r->worker->db;
	struct outbox_event ev;
	PGresult *res = NULL;
	long expected;
	json_t *current = NULL, *errors = NULL;
	char *stored = NULL, *findings_enc = NULL;

	if (query_accept(r, allowed) != 0)
		return;
	if (!uuid_valid(r->params[0])) {
		reply_not_found(r);
		return;
	}
	json_t *patch = request_json(r);
	if (patch == NULL)
		return;
	errors = json_array();
	const char *const immutable[] = { "procedure_id", "case_reference" };
	for (size_t i = 0; i < ARRAY_LEN(immutable); i++)
		if (json_object_get(patch, immutable[i]) != NULL) {
			char ptr[40];
			snprintf(ptr, sizeof(ptr), "/%s", immutable[i]);
			error_at_pointer(errors, ptr, "immutable", "cannot be changed");
		}
	const json_t *lock = json_object_get(patch, "locked");
	if (lock != NULL && !json_is_true(lock))
		error_at_pointer(errors, "/locked", "enum", "can only be set to true");
	else if (lock != NULL && r->principal.role != ROLE_OFFICE_LEAD)
		error_at_pointer(errors, "/locked", "forbidden", "only the office lead locks");
	if (json_array_size(errors) > 0) {
		reply_422(r, errors);
		errors = NULL;
		goto out;
	}
	if (if_match_version(r, &expected) != 0)
		goto out;

	const char *office_scope, *institute_scope;
	caller_scope(&r->principal, &office_scope, &institute_scope);
	const char *params[] = { office_scope, institute_scope, r->params[0] };
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_for_update, 3, params)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		db_rollback(db);
		reply_not_found(r);
		goto out;
	}
	char office[65], cycle[16], version[16];
	snprintf(office, sizeof(office), "%s", PQgetvalue(res, 0, 0));
	int locked = PQgetvalue(res, 0, 1)[0] == 't';
	long current_version = atol(PQgetvalue(res, 0, 2));
	snprintf(cycle, sizeof(cycle), "%s", PQgetvalue(res, 0, 3));
	int completed = strcmp(PQgetvalue(res, 0, 4), "completed") == 0;
	current = pg_json(res, 0, 5);
	PQclear(res);
	res = NULL;
	if (current_version != expected) {
		db_rollback(db);
		char etag[32];
		snprintf(etag, sizeof(etag), "\"v%ld\"", current_version);
		reply_header(r, "ETag", etag);
		reply_problem(
		    r, 412, "The case analysis changed since your read; read it again.", NULL);
		goto out;
	}
	if (locked || completed) {
		db_rollback(db);
		reply_problem(r, 409,
		    locked ? "The case analysis is locked and read-only."
		           : "The procedure is completed; its case analyses are read-only.",
		    NULL);
		goto out;
	}
	json_t *merged = writable(r, current);
	current = NULL;
	json_t *patch_fields = json_deep_copy(patch);
	json_object_del(patch_fields, "locked");
	merge_patch(merged, patch_fields);
	json_decref(patch_fields);
	validate_object(
	    merged, case_fields + CREATE_ONLY, ARRAY_LEN(case_fields) - CREATE_ONLY, "", errors);
	check_rules(merged, errors);
	int closed = month_parse(json_string_value(json_object_get(merged, "closed_month")));
	if (json_array_size(errors) == 0 && !closed_month_in_window(closed, cycle, current_month()))
		error_at_pointer(errors, "/closed_month", "range",
		    "must lie in the procedure's window and not in the future");
	if (json_array_size(errors) > 0) {
		db_rollback(db);
		json_decref(merged);
		reply_422(r, errors);
		errors = NULL;
		goto out;
	}
	const json_t *findings = json_object_get(merged, "findings");
	if (json_is_string(findings) && json_string_length(findings) > 0) {
		char aad[96];
		snprintf(aad, sizeof(aad), "case_analysis:%s:findings", r->params[0]);
		findings_enc = keyring_encrypt(r->worker->keyring, json_string_value(findings),
		    json_string_length(findings), aad);
	}
	json_object_del(merged, "findings");
	stored = json_dumps(merged, JSON_COMPACT);
	json_decref(merged);
	snprintf(version, sizeof(version), "%ld", expected);
	const char *uparams[] = { r->params[0], stored, findings_enc, lock ? "true" : "false",
		version };
	if ((res = db_exec(db, &stmt_update, 5, uparams)) == NULL ||
	    strcmp(PQcmdTuples(res), "1") != 0)
		goto fail;
	PQclear(res);
	res = NULL;
	int failed;
	char office_read[65];
	if (audit_append(db, &r->principal, lock ? "case_analysis.lock" : "case_analysis.update",
	        "case_analysis", r->params[0], office, r->id, NULL) != 0 ||
	    office_changed(db, office, &ev) != 0 ||
	    (current = read_one(r, r->params[0], office_read, sizeof(office_read), &failed)) ==
	        NULL ||
	    db_commit(db) != 0)
		goto fail;
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	reply_resource(r, 200, render(r, current));
	current = NULL;
	goto out;
fail:
	PQclear(res);
	db_rollback(db);
	reply_db_error(r);
out:
	json_decref(current);
	json_decref(errors);
	json_decref(patch);
	free(stored);
	free(findings_enc);
}
