/*
 * Case analyses (Fallanalysen) of closed § 8a risk assessments, within a § 8
 * procedure. Fields align with the official § 8a statistics (§ 99 (6) SGB
 * VIII). The office's file number arrives as case_reference and is replaced
 * here, at the edge, by its pseudonym; it is never stored or logged. The
 * free-text findings are stored encrypted and decrypted only for the owning
 * office and the procedure's institute. The office lead locks a finished
 * case analysis (Abschluss der Fallanalyse): it is read-only from then on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/crypto.h"
#include "kqe/log.h"
#include "kqe/problem.h"

#define FINDINGS_MAX 20000 /* characters */

static const struct field_spec child_fields[] = {
	FIELD_SPEC_CODE("sex", codelist_sex_values),
	{ .name = "birth_month", .type = FIELD_MONTH, .required = true },
};

static const struct field_spec process_fields[] = {
	{ .name = "days_to_first_contact",
	    .type = FIELD_INTEGER,
	    .required = true,
	    .min = 0,
	    .max = 3650 },
	{ .name = "direct_impression", .type = FIELD_BOOLEAN, .required = true },
	FIELD_SPEC_FLAG("several_professionals"),
	FIELD_SPEC_FLAG("child_involved"),
	FIELD_SPEC_FLAG("parents_involved"),
	FIELD_SPEC_FLAG("insofa_consulted"),
	FIELD_SPEC_FLAG("family_court_called"),
	FIELD_SPEC_FLAG("taken_into_care"),
	FIELD_SPEC_FLAG("services_before"),
	FIELD_SPEC_FLAG("services_after"),
};

static const struct field_spec fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID, .required = true, .immutable = true },
	/* The file number: turned into case_pseudonym on arrival, never stored. */
	{ .name = "case_reference",
	    .type = FIELD_STRING,
	    .required = true,
	    .immutable = true,
	    .min = 1,
	    .max = 100 },
	FIELD_SPEC_CODE("selection", codelist_selection_values),
	{ .name = "closed_month", .type = FIELD_MONTH, .required = true },
	FIELD_SPEC_OBJECT("child", child_fields, true),
	FIELD_SPEC_CODE("parents_age_group", codelist_parents_age_group_values),
	FIELD_SPEC_CODE("reported_by", codelist_reporter_values),
	FIELD_SPEC_CODE("result", codelist_assessment_result_values),
	{ .name = "endangerment_forms",
	    .type = FIELD_CODES,
	    .values = codelist_endangerment_form_values,
	    .max = 4 },
	FIELD_SPEC_OBJECT("process", process_fields, true),
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
	/* Only true, only by the office lead, and only once. */
	{ .name = "locked", .type = FIELD_BOOLEAN, .required = true, .update_only = true },
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

#define CASE_SCOPE SUBMISSION_SCOPE("c")
#define CASE_FROM " FROM case_analyses c WHERE"

/* The columns of the body both INSERT and UPDATE take from the document b. */
#define CASE_VALUES(X)                                                                             \
	X("selection", "b->>'selection'")                                                          \
	X("closed_month", "(b->>'closed_month' || '-01')::date")                                   \
	X("child_sex", "b->'child'->>'sex'")                                                       \
	X("child_birth_month", "(b->'child'->>'birth_month' || '-01')::date")                      \
	X("parents_age_group", "b->>'parents_age_group'")                                          \
	X("reported_by", "b->>'reported_by'")                                                      \
	X("result", "b->>'result'")                                                                \
	X("endangerment_forms",                                                                    \
	    "ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'endangerment_forms', '[]')))")    \
	X("days_to_first_contact", "(b->'process'->>'days_to_first_contact')::int")                \
	X("direct_impression", "(b->'process'->>'direct_impression')::boolean")                    \
	X("several_professionals", "(b->'process'->>'several_professionals')::boolean")            \
	X("child_involved", "(b->'process'->>'child_involved')::boolean")                          \
	X("parents_involved", "(b->'process'->>'parents_involved')::boolean")                      \
	X("insofa_consulted", "(b->'process'->>'insofa_consulted')::boolean")                      \
	X("family_court_called", "(b->'process'->>'family_court_called')::boolean")                \
	X("taken_into_care", "(b->'process'->>'taken_into_care')::boolean")                        \
	X("services_before", "(b->'process'->>'services_before')::boolean")                        \
	X("services_after", "(b->'process'->>'services_after')::boolean")                          \
	X("ratings", "coalesce(b->'ratings', '{}')")                                               \
	X("learning_themes",                                                                       \
	    "ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'learning_themes', '[]')))")
#define COLUMN_NAME(column, expr) column ", "
#define COLUMN_EXPR(column, expr) expr ", "
#define COLUMN_SET(column, expr) column " = " expr ", "

static const struct db_stmt stmt_get = { "case_get",
	"SELECT c.office_id, " CASE_JSON CASE_FROM CASE_SCOPE " AND c.id = $3::uuid" };
/* scope, $3 office_id, $4 procedure_id, $5 updated_since, $6 $7 cursor, $8 limit */
static const struct db_stmt stmt_list = { "case_list",
	"SELECT kqe_ts(c.updated_at), c.id::text, c.office_id, " CASE_JSON CASE_FROM CASE_SCOPE
	" AND ($3::text IS NULL OR c.office_id = $3) AND ($4::uuid IS NULL OR c.procedure_id = $4)"
	" AND ($5::timestamptz IS NULL OR c.updated_at >= $5)"
	" AND ($6::timestamptz IS NULL OR (c.updated_at, c.id) > ($6, $7::uuid))"
	" ORDER BY c.updated_at, c.id LIMIT $8" };
static const struct db_stmt stmt_lock = { "case_lock",
	"SELECT c.office_id, c.version, " CASE_JSON ", p.cycle, p.phase"
	" FROM case_analyses c JOIN procedures p ON p.id = c.procedure_id WHERE" CASE_SCOPE
	" AND c.id = $3::uuid FOR UPDATE OF c" };
static const struct db_stmt stmt_insert = {
	"case_insert",
	"INSERT INTO case_analyses (id, procedure_id, office_id, case_pseudonym, " CASE_VALUES(
	    COLUMN_NAME) "findings_enc) SELECT $1::uuid, $2::uuid, $3, $4, " CASE_VALUES(COLUMN_EXPR) "$6 FROM (SELECT $5::jsonb AS b) AS body"
	                                                                                              " ON CONFLICT (procedure_id, case_pseudonym) DO NOTHING RETURNING id"
};
static const struct db_stmt stmt_existing = { "case_existing",
	"SELECT id FROM case_analyses WHERE procedure_id = $1 AND case_pseudonym = $2" };
static const struct db_stmt stmt_update = { "case_update",
	"UPDATE case_analyses SET " CASE_VALUES(
	    COLUMN_SET) "findings_enc = $3, locked = $4::boolean,"
	                " version = version + 1, updated_at = now() FROM (SELECT $2::jsonb AS b) AS body"
	                " WHERE id = $1::uuid" };

/* Cross-field rules, over the members that passed their field specs. */
static void
check_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	const char *result = json_string_value(json_object_get(doc, "result"));
	const json_t *forms = json_object_get(doc, "endangerment_forms");
	size_t nforms = json_array_size(forms);
	if (result != NULL && !json_is_null(forms)) {
		bool endangered = strcmp(result, "akute_gefaehrdung") == 0 ||
		                  strcmp(result, "latente_gefaehrdung") == 0;
		if (endangered && nforms == 0)
			rule_error(errors, prefix, "/endangerment_forms", "required",
			    "is required when the result is an acute or latent endangerment");
		if (!endangered && nforms > 0)
			rule_error(errors, prefix, "/endangerment_forms", "forbidden",
			    "must be empty unless the result is an acute or latent endangerment");
	}
	const char *closed = json_string_value(json_object_get(doc, "closed_month"));
	const char *born =
	    json_string_value(json_object_get(json_object_get(doc, "child"), "birth_month"));
	if (closed == NULL || born == NULL)
		return;
	int c = month_parse(closed), b = month_parse(born);
	if (b > c)
		rule_error(errors, prefix, "/child/birth_month", "range",
		    "must not be after the closing month");
	else if (c - b >= 18 * 12)
		rule_error(errors, prefix, "/child/birth_month", "range",
		    "the child must be under 18 in the closing month");
}

/*
 * The closing month must lie in the procedure's window: from July five years
 * before its cycle starts (the five years of § 8a assessments a procedure at
 * the start of the cycle draws from) to June of the cycle's last year — and
 * not in the future.
 */
static void
check_window(struct write *w, const char *cycle)
{
	int first_year, last_year;
	int closed = month_parse(json_string_value(json_object_get(w->doc, "closed_month")));
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	if (sscanf(cycle, "%4d-%4d", &first_year, &last_year) != 2 ||
	    closed < (first_year - 5) * 12 + 6 || closed > last_year * 12 + 5 ||
	    closed > (tm.tm_year + 1900) * 12 + tm.tm_mon)
		write_error(w, "/closed_month", "range",
		    "must lie in the procedure's window (July five years before its cycle to June of "
		    "its last year) and not in the future");
}

/* The document as the INSERT/UPDATE reads it: without the file number and the free text. */
static const char *
stored_document(struct write *w)
{
	json_t *doc = json_deep_copy(w->doc);
	json_object_del(doc, "case_reference");
	json_object_del(doc, "findings");
	const char *text = request_own_string(w->r, json_dumps(doc, JSON_COMPACT));
	json_decref(doc);
	return text;
}

static int
case_create(struct write *w)
{
	char pseudo[PSEUDONYM_LEN + 1];
	if (write_refused_by_procedure(
	        w, "The procedure is completed; it takes no more case analyses."))
		return 0;
	check_window(w, ref_value(w, 0, 1));
	if (json_array_size(w->errors) > 0)
		return 0;
	/* The file number becomes a pseudonym here and goes no further. */
	pseudonym(w->r->worker->pseudonymizer, w->office, doc_text(w, "case_reference"), pseudo);
	uuid_v4(w->id);
	const char *params[] = { w->id, doc_text(w, "procedure_id"), w->office, pseudo,
		stored_document(w), write_encrypted(w, "findings") };
	PGresult *res = db_exec(w->r->db, &stmt_insert, 6, params);
	if (res == NULL)
		return -1;
	int inserted = PQntuples(res);
	PQclear(res);
	/* Unique per procedure: whoever may write into it may read the one that exists. */
	const char *existing[] = { doc_text(w, "procedure_id"), pseudo };
	return inserted
	           ? 0
	           : write_conflict(w, &stmt_existing, 2, existing, "/case_reference",
	                 "This procedure already has a case analysis for this case reference.");
}

static int
case_update(struct write *w)
{
	bool was_locked = json_is_true(json_object_get(w->current, "locked"));
	bool locks = json_is_true(json_object_get(w->doc, "locked")) && !was_locked;
	if (was_locked || strcmp(row_value(w, 4), "completed") == 0) {
		write_refuse(w, 409, "/locked", "locked",
		    was_locked ? "The case analysis is locked and read-only."
		               : "The procedure is completed; its case analyses are read-only.");
		return 0;
	}
	if (locks && w->r->principal.role != ROLE_OFFICE_LEAD) {
		write_refuse(
		    w, 403, "/locked", "forbidden", "Only the office lead locks a case analysis.");
		return 0;
	}
	check_window(w, row_value(w, 3));
	if (json_array_size(w->errors) > 0)
		return 0;
	if (locks)
		w->action = "case_analysis.lock";
	const char *params[] = { w->id, stored_document(w), write_encrypted(w, "findings"),
		locks ? "true" : "false" };
	return write_exec(w, &stmt_update, 4, params);
}

/* Replaces findings_enc by the findings, for those who may read them. Takes c. */
static json_t *
render(struct request *r, json_t *c)
{
	json_object_set_new(c, "findings",
	    free_text(r, "case_analysis", c, "findings", json_object_get(c, "findings_enc")));
	json_object_del(c, "findings_enc");
	return c;
}

static const char *const csv_columns[] = { "id", "procedure_id", "office_id", "case_pseudonym",
	"selection", "closed_month", "child.sex", "child.birth_month", "child.age_group",
	"parents_age_group", "reported_by", "result", "endangerment_forms",
	"process.days_to_first_contact", "process.direct_impression",
	"process.several_professionals", "process.child_involved", "process.parents_involved",
	"process.insofa_consulted", "process.family_court_called", "process.taken_into_care",
	"process.services_before", "process.services_after", "ratings.intake",
	"ratings.first_assessment", "ratings.direct_contact", "ratings.four_eyes_assessment",
	"ratings.child_participation", "ratings.parent_participation", "ratings.safety_planning",
	"ratings.help_planning", "ratings.cooperation", "ratings.documentation",
	"ratings.case_transfer", "learning_themes", "findings", "locked", "version", "created_at",
	"updated_at", NULL };

const struct resource case_analyses_resource = { OFFICE_DATA("case_analysis", "case analysis",
	                                             "/v1/case-analyses"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.render = render, .fields = fields, .nfields = ARRAY_LEN(fields), .rules = check_rules,
	.refs = { PROCEDURE_REFERENCE }, .create = case_create, .update = case_update };

#define BATCH_MAX 1000

/* One item of a batch in its own savepoint: a failure undoes only that item. */
static enum write_outcome
batch_item(struct request *r, json_t *item, size_t i, json_t *created, json_t *rejected)
{
	struct db *db = r->db;
	char prefix[32];
	struct write w;
	snprintf(prefix, sizeof(prefix), "/items/%zu", i);
	if (db_exec_script(db, "SAVEPOINT item") != 0)
		return WRITE_FAILED;
	enum write_outcome o =
	    write_create_one(r, &case_analyses_resource, json_incref(item), prefix, &w);
	if (o == WRITE_REFUSED)
		write_error(&w, w.refusal_pointer, w.refusal_code, w.refusal_detail);
	if (o == WRITE_DONE)
		json_array_append_new(
		    created, json_pack("{s:s,s:s}", "id", w.id, "office_id", w.office));
	else if (o != WRITE_FAILED)
		json_array_append_new(
		    rejected, json_pack("{s:I,s:O}", "index", (json_int_t)i, "errors", w.errors));
	if (o == WRITE_REFUSED && json_object_get(w.refusal_members, "existing_id") != NULL)
		json_object_set(json_array_get(rejected, json_array_size(rejected) - 1),
		    "existing_id", json_object_get(w.refusal_members, "existing_id"));
	write_release(&w);
	if (o != WRITE_FAILED &&
	    db_exec_script(
	        db, o == WRITE_DONE ? "RELEASE SAVEPOINT item" : "ROLLBACK TO SAVEPOINT item") != 0)
		return WRITE_FAILED;
	return o;
}

/*
 * Commits what a batch created: per office touched one audit entry with the
 * ids created there (so the office's audit trail finds them) and one
 * office_changed event (the aggregator recomputes each office once).
 */
static int
batch_commit(struct request *r, json_t *created, int status, const json_t *summary)
{
	struct db *db = r->db;
	json_t *offices = request_own(r, json_object());
	size_t i;
	json_t *c;
	json_array_foreach(created, i, c)
	{
		const char *office = json_string_value(json_object_get(c, "office_id"));
		json_t *ids = json_object_get(offices, office);
		if (ids == NULL)
			json_object_set_new(offices, office, ids = json_array());
		json_array_append(ids, json_object_get(c, "id"));
	}
	struct outbox_event *ev = xcalloc(json_object_size(offices), sizeof(*ev));
	size_t n = 0;
	const char *office;
	json_t *ids;
	int rc = 0;
	json_object_foreach(offices, office, ids)
	{
		json_t *details = json_pack("{s:O}", "ids", ids);
		if (rc == 0)
			rc = audit_append(db, &r->principal, "case_analysis.batch_create",
			    "case_analysis", NULL, office, r->id, details);
		json_decref(details);
		if (rc == 0)
			rc = office_changed(db, office, &ev[n++]);
	}
	/* The summary is counts, ids and error codes only: safe to keep for a replay. */
	char *text = rc == 0 ? json_answer_text(summary) : NULL;
	if (rc == 0 && (rc = request_commit(r, status, NULL, text)) == 0)
		for (size_t k = 0; k < n; k++)
			publish(r, &ev[k]);
	free(text);
	free(ev);
	return rc;
}

/* The batch document holds items, 1 to BATCH_MAX of them, and nothing else; else a 422. */
static bool
batch_well_formed(struct request *r, const json_t *items)
{
	json_t *errors = json_array();
	const char *key;
	json_t *v;
	json_object_foreach(r->body, key, v) if (strcmp(key, "items") != 0)
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
	if (json_array_size(errors) == 0) {
		json_decref(errors);
		return true;
	}
	reply_problem(r, 422, "The batch is not well formed.", errors);
	return false;
}

/*
 * POST /v1/case-analyses:batch {"items": [...]} — up to 1,000 case analyses.
 * All-or-nothing by default; ?atomic=false keeps the valid ones. Answers an
 * import summary: counts, the created ids, and per rejected item its index
 * and errors (pointers into the batch document); when nothing was stored, as
 * a 422 problem carrying the same summary.
 */
void
case_analyses_batch(struct request *r)
{
	json_t *items = json_object_get(r->body, "items");
	if (!batch_well_formed(r, items))
		return;
	bool atomic = query_get(r, "atomic") == NULL || strcmp(query_get(r, "atomic"), "true") == 0;
	json_t *created = request_own(r, json_array()), *rejected = request_own(r, json_array());
	struct db *db = r->db;
	size_t i;
	json_t *item;
	if (request_begin(r) != 0)
		return;
	json_array_foreach(
	    items, i, item) if (batch_item(r, item, i, created, rejected) == WRITE_FAILED)
	{
		db_rollback(db);
		reply_db_error(r);
		return;
	}
	size_t ncreated = json_array_size(created), nrejected = json_array_size(rejected);
	bool keep = ncreated > 0 && (!atomic || nrejected == 0) && !r->dry_run;
	json_t *ids = json_array();
	json_array_foreach(created, i, item) if (keep)
	    json_array_append(ids, json_object_get(item, "id"));
	json_t *summary = json_pack("{s:I,s:I,s:I,s:I,s:b,s:b,s:o,s:O}", "received",
	    (json_int_t)json_array_size(items), "created", (json_int_t)(keep ? ncreated : 0),
	    "updated", (json_int_t)0, "rejected", (json_int_t)nrejected, "atomic", atomic,
	    "dry_run", r->dry_run, "created_ids", ids, "rejected_items", rejected);
	int status = r->dry_run || nrejected > 0 ? 200 : 201;
	/* Whatever is not kept rolls back, with its Idempotency-Key: a dry run's key stays free. */
	if (!keep) {
		db_rollback(db);
	} else if (batch_commit(r, created, status, summary) != 0) {
		json_decref(summary);
		db_rollback(db);
		reply_db_error(r);
		return;
	}
	if (nrejected > 0 && (atomic || ncreated == 0))
		reply_problem_with(r, 422,
		    atomic ? "The batch was rejected whole; nothing was stored."
		           : "No item of the batch was valid.",
		    summary);
	else
		reply_json(r, status, summary);
}
