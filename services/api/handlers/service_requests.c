/*
 * The service desk of a programme (docs/programmes.md, Service desk): offices
 * and registered professionals ask the programme's team questions that are not
 * about a case; the team answers, closes, and may publish an answered question
 * as an entry of the programme's FAQ in words it writes for everyone (GET
 * /v1/faq, no token). Invariants: migration 0027_service_requests.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/problem.h"

static const struct field_spec fields[] = {
	{ .name = "programme_id", .type = FIELD_UUID, .required = true, .immutable = true },
	{ .name = "subject", .type = FIELD_STRING, .required = true, .min = 1, .max = 200 },
	{ .name = "question", .type = FIELD_STRING, .required = true, .min = 1, .max = 5000 },
	{ .name = "status",
	    .type = FIELD_ENUM,
	    .update_only = true,
	    .values = codelist_service_request_status_values },
	{ .name = "answer",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .update_only = true,
	    .min = 1,
	    .max = 5000 },
	/* The FAQ entry: the team's words for everyone, never the asker's. */
	{ .name = "faq_question",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .update_only = true,
	    .min = 1,
	    .max = 500 },
	{ .name = "faq_answer",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .update_only = true,
	    .min = 1,
	    .max = 5000 },
	{ .name = "faq_published", .type = FIELD_BOOLEAN, .update_only = true },
};

#define ASKER                                                                                      \
	(ROLE_BIT(ROLE_OFFICE_STAFF) | ROLE_BIT(ROLE_OFFICE_LEAD) | ROLE_BIT(ROLE_PROFESSIONAL))
#define TEAM ROLE_BIT(ROLE_PROGRAMME_TEAM)
static const struct move moves[] = {
	{ "open", "answered", TEAM },
	{ "open", "closed", TEAM | ASKER },
	{ "answered", "closed", TEAM | ASKER },
};

/* An answer goes with answered; a published FAQ entry has both of its texts. */
static void
check_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	const char *status = json_string_value(json_object_get(doc, "status"));
	if (status != NULL && strcmp(status, "answered") == 0 &&
	    !json_is_string(json_object_get(doc, "answer")))
		rule_error(
		    errors, prefix, "/answer", "required", "is required to answer a question");
	if (json_is_true(json_object_get(doc, "faq_published"))) {
		static const char *const faq[] = { "/faq_question", "/faq_answer" };
		for (size_t i = 0; i < ARRAY_LEN(faq); i++)
			if (!json_is_string(json_object_get(doc, faq[i] + 1)))
				rule_error(errors, prefix, faq[i], "required",
				    "is required to publish the entry");
	}
}

#define REQUEST_JSON                                                                               \
	"json_build_object('id', s.id, 'programme_id', s.programme_id, 'office_id', s.office_id,"  \
	" 'professional_id', s.professional_id, 'subject', s.subject,"                             \
	" 'question_enc', s.question_enc, 'answer_enc', s.answer_enc, 'status', s.status,"         \
	" 'answered_at', kqe_ts(s.answered_at), 'faq_question', s.faq_question,"                   \
	" 'faq_answer', s.faq_answer, 'faq_published', s.faq_published_at IS NOT NULL,"            \
	" 'faq_published_at', kqe_ts(s.faq_published_at), 'version', s.version,"                   \
	" 'created_at', kqe_ts(s.created_at), 'updated_at', kqe_ts(s.updated_at))::text"
#define READER " kqe_service_request_reader(s.office_id, s.professional_id, s.programme_id)"

static const struct db_stmt stmt_get = { "service_request_get",
	"SELECT coalesce(s.office_id, ''), " REQUEST_JSON " FROM service_requests s WHERE" READER
	" AND s.id = $1::uuid" };
/* $1 programme_id, $2 status, $3 updated_since, $4 $5 cursor, $6 limit */
static const struct db_stmt stmt_list = { "service_request_list",
	"SELECT kqe_ts(s.updated_at), s.id::text, coalesce(s.office_id, ''), " REQUEST_JSON
	" FROM service_requests s WHERE" READER " AND ($1::uuid IS NULL OR s.programme_id = $1)"
	" AND ($2::text IS NULL OR s.status = $2)"
	" AND ($3::timestamptz IS NULL OR s.updated_at >= $3)"
	" AND ($4::timestamptz IS NULL OR (s.updated_at, s.id) > ($4, $5::uuid))"
	" ORDER BY s.updated_at, s.id LIMIT $6" };
static const struct db_stmt stmt_lock = { "service_request_lock",
	"SELECT coalesce(s.office_id, ''), s.version, " REQUEST_JSON
	" FROM service_requests s WHERE" READER " AND s.id = $1::uuid FOR UPDATE" };
/* A programme the caller may ask: any for an office, its own for a professional. */
static const struct db_stmt stmt_programme = { "service_request_programme",
	"SELECT p.id FROM programmes p WHERE p.id = $1::uuid"
	" AND (kqe_ctx('role') <> 'professional' OR p.id::text = kqe_ctx('programme_id'))" };
static const struct db_stmt stmt_insert = { "service_request_insert",
	"INSERT INTO service_requests (id, programme_id, office_id, professional_id, subject,"
	" question_enc) VALUES ($1::uuid, $2::uuid, $3, $4::uuid, $5, $6)" };
/* $4 the new question's ciphertext (NULL: keep), $5 the answer's (NULL: keep) */
static const struct db_stmt stmt_update = { "service_request_update",
	"UPDATE service_requests SET subject = $2, status = $3,"
	" question_enc = coalesce($4, question_enc), answer_enc = coalesce($5, answer_enc),"
	" answered_at = CASE WHEN $3 = 'answered' THEN coalesce(answered_at, now())"
	"  ELSE answered_at END, faq_question = $6, faq_answer = $7,"
	" faq_published_at = CASE WHEN $8::boolean THEN coalesce(faq_published_at, now()) END,"
	" version = version + 1, updated_at = now() WHERE id = $1::uuid" };

static int
request_create(struct write *w)
{
	const struct principal *p = &w->r->principal;
	bool professional = p->role == ROLE_PROFESSIONAL;
	if (!professional)
		snprintf(w->office, sizeof(w->office), "%s", p->office_id);
	uuid_v4(w->id);
	const char *params[] = { w->id, doc_text(w, "programme_id"),
		professional ? NULL : p->office_id, professional ? p->professional_id : NULL,
		doc_text(w, "subject"), write_encrypted(w, "question") };
	return write_exec(w, &stmt_insert, 6, params);
}

static int
request_update(struct write *w)
{
	bool team = w->r->principal.role == ROLE_PROGRAMME_TEAM;
	const char *from = json_text(json_object_get(w->current, "status"));
	int moved = write_move(w, "status", moves, ARRAY_LEN(moves), "A question");
	if (moved < 0)
		return 0;
	bool asked = write_changes(w, "subject") || write_changes(w, "question");
	bool answered = write_changes(w, "answer") || write_changes(w, "faq_question") ||
	                write_changes(w, "faq_answer") || write_changes(w, "faq_published");
	if (team && asked) {
		write_refuse(w, 403, write_changes(w, "subject") ? "/subject" : "/question",
		    "forbidden", "The question is the asker's; the team answers it.");
		return 0;
	}
	if (!team && answered) {
		write_refuse(w, 403, "/answer", "forbidden", "The answer is the programme team's.");
		return 0;
	}
	if (asked && strcmp(from, "open") != 0) {
		write_refuse(w, 409, "/status", "answered",
		    "The question has been answered or closed; ask a new one.");
		return 0;
	}
	if (json_is_true(json_object_get(w->doc, "faq_published")) &&
	    strcmp(doc_text(w, "status"), "open") == 0) {
		write_refuse(w, 409, "/faq_published", "open",
		    "Only an answered question becomes an entry of the FAQ.");
		return 0;
	}
	const char *params[] = { w->id, doc_text(w, "subject"), doc_text(w, "status"),
		write_changes(w, "question") ? write_encrypted(w, "question") : NULL,
		write_changes(w, "answer") ? write_encrypted(w, "answer") : NULL,
		doc_text(w, "faq_question"), doc_text(w, "faq_answer"),
		json_is_true(json_object_get(w->doc, "faq_published")) ? "true" : "false" };
	return write_exec(w, &stmt_update, 8, params);
}

/* Question and answer for the asker and the team; admin sees that a question exists. */
static json_t *
render(struct request *r, json_t *rep)
{
	enum role role = r->principal.role;
	bool reads =
	    role_is_office(role) || role == ROLE_PROFESSIONAL || role == ROLE_PROGRAMME_TEAM;
	const char *id = json_string_value(json_object_get(rep, "id"));
	static const char *const texts[] = { "question", "answer" };
	for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
		char key[32];
		snprintf(key, sizeof(key), "%s_enc", texts[i]);
		json_t *text = reads ? free_text_decrypt(r, "service_request", id, texts[i],
		                           json_object_get(rep, key))
		                     : json_null();
		json_object_del(rep, key);
		json_object_set_new(rep, texts[i], text);
	}
	return rep;
}

static const char *const csv_columns[] = { "id", "programme_id", "office_id", "professional_id",
	"subject", "question", "answer", "status", "answered_at", "faq_question", "faq_answer",
	"faq_published", "faq_published_at", "version", "created_at", "updated_at", NULL };

const struct resource service_requests_resource = { CALLER_SCOPED("service_request", "question",
	                                                "/v1/service-requests"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.render = render, .fields = fields, .nfields = ARRAY_LEN(fields), .rules = check_rules,
	.refs = { { "programme_id", &stmt_programme, SCOPE_NONE,
	    "is not a programme you may ask" } },
	.create = request_create, .update = request_update };

/* ---- GET /v1/faq: the published entries, for everyone ---- */

static const struct db_stmt stmt_faq = { "faq_list",
	"SELECT json_build_object('id', id, 'programme_id', programme_id, 'question', question,"
	" 'answer', answer, 'published_at', kqe_ts(published_at))::text FROM kqe_faq($1::uuid)" };

void
faq_list(struct request *r)
{
	const char *params[] = { query_get(r, "programme_id") };
	PGresult *res = query_as_caller(r, &stmt_faq, 1, params);
	if (res == NULL)
		return;
	json_t *items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(items, json_loads(PQgetvalue(res, i, 0), 0, NULL));
	PQclear(res);
	reply_json(r, 200, json_pack("{s:o}", "items", items));
}
