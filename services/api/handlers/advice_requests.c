/*
 * § 7 quality advice (Qualitätsberatung, docs/advice.md): an office asks the
 * Landesjugendamt of its region for advice on one case (case_specific: the
 * case named only by the pseudonym of its file number) or on a problem
 * constellation across cases (structural). The advisors of the region take
 * it up and answer through a message thread (/messages); the office keeps its
 * case and its data: an advisor changes nothing but the status. The question
 * and the messages may name people: stored encrypted, read by the office and
 * the region's advisors only. Invariants: migration 0019_advice_requests.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/crypto.h"
#include "kqe/problem.h"

#define TEXT_MAX 10000 /* characters, of the question and of a message */

static const struct field_spec fields[] = {
	{ .name = "kind",
	    .type = FIELD_ENUM,
	    .required = true,
	    .immutable = true,
	    .values = codelist_advice_kind_values },
	/* The office's file number of the case: turned into case_pseudonym, never stored. */
	{ .name = "case_reference", .type = FIELD_STRING, .immutable = true, .min = 1, .max = 100 },
	FIELD_SPEC_CODE("topic", codelist_advice_topic_values),
	FIELD_SPEC_CODE("urgency", codelist_advice_urgency_values),
	{ .name = "question", .type = FIELD_STRING, .required = true, .min = 1, .max = TEXT_MAX },
	/* A quality topic of the office's § 8 procedure the advice builds on. */
	{ .name = "topic_id", .type = FIELD_UUID, .nullable = true },
	{ .name = "status",
	    .type = FIELD_ENUM,
	    .update_only = true,
	    .values = codelist_advice_status_values },
	{ .name = "decline_reason",
	    .type = FIELD_ENUM,
	    .nullable = true,
	    .update_only = true,
	    .values = codelist_advice_decline_reason_values },
};

#define OFFICE (ROLE_BIT(ROLE_OFFICE_STAFF) | ROLE_BIT(ROLE_OFFICE_LEAD))
#define ADVISOR ROLE_BIT(ROLE_ADVISOR)

/* The workflow (invariant 2): the advisors take a request up; the office may withdraw it
 * until then, and close it once answered, as its advisor may. */
static const struct move moves[] = {
	{ "submitted", "accepted", ADVISOR },
	{ "submitted", "declined", ADVISOR },
	{ "submitted", "withdrawn", OFFICE },
	{ "accepted", "in_progress", ADVISOR },
	{ "accepted", "declined", ADVISOR },
	{ "in_progress", "answered", ADVISOR },
	{ "answered", "closed", ADVISOR | OFFICE },
};

/* Cross-field rules (pipeline.h): a case-specific request names its case, a structural one
 * none; declining needs a reason (that a reason goes with nothing else is checked after the
 * move, so a move out of declined is the 409 it is). */
static void
check_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	const json_t *reference = json_object_get(doc, "case_reference");
	if (kind != NULL && strcmp(kind, "case_specific") == 0 && creating && reference == NULL)
		rule_error(errors, prefix, "/case_reference", "required",
		    "is required for a case-specific request");
	if (kind != NULL && strcmp(kind, "structural") == 0 && reference != NULL)
		rule_error(errors, prefix, "/case_reference", "forbidden",
		    "must be left out of a structural request: it names no case");

	const char *status = json_string_value(json_object_get(doc, "status"));
	const json_t *reason = json_object_get(doc, "decline_reason");
	if (status != NULL && strcmp(status, "declined") == 0 && !json_is_string(reason))
		rule_error(errors, prefix, "/decline_reason", "required",
		    "is required to decline a request");
}

/* The representation; question_enc becomes question for those who may read it (render). */
#define REQUEST_JSON                                                                               \
	"json_build_object('id', a.id, 'office_id', a.office_id, 'region', a.region,"              \
	" 'kind', a.kind, 'case_pseudonym', a.case_pseudonym, 'topic', a.topic,"                   \
	" 'urgency', a.urgency, 'topic_id', a.topic_id, 'question_enc', a.question_enc,"           \
	" 'status', a.status, 'decline_reason', a.decline_reason,"                                 \
	" 'respond_by', kqe_ts(a.respond_by), 'overdue', " OVERDUE ","                             \
	" 'submitted_at', kqe_ts(a.submitted_at),"                                                 \
	" 'first_response_at', kqe_ts(a.first_response_at),"                                       \
	" 'accepted_at', kqe_ts(a.accepted_at), 'answered_at', kqe_ts(a.answered_at),"             \
	" 'ended_at', kqe_ts(a.ended_at), 'version', a.version,"                                   \
	" 'created_at', kqe_ts(a.created_at), 'updated_at', kqe_ts(a.updated_at))::text"
/* Waiting for its first response past the target. */
#define OVERDUE "(a.first_response_at IS NULL AND a.status = 'submitted' AND a.respond_by < now())"
/* The scope, applied by PostgreSQL (row-level security applies it again). */
#define READER " kqe_advice_reader(a.office_id, a.region)"

static const struct db_stmt stmt_get = { "advice_request_get",
	"SELECT a.office_id, " REQUEST_JSON " FROM advice_requests a WHERE" READER
	" AND a.id = $1::uuid" };
/* $1 office_id, $2 status, $3 kind, $4 topic, $5 urgency, $6 overdue, $7 updated_since,
 * $8 $9 cursor, $10 limit */
static const struct db_stmt stmt_list = { "advice_request_list",
	"SELECT kqe_ts(a.updated_at), a.id::text, a.office_id, " REQUEST_JSON
	" FROM advice_requests a WHERE" READER " AND ($1::text IS NULL OR a.office_id = $1)"
	" AND ($2::text IS NULL OR a.status = $2) AND ($3::text IS NULL OR a.kind = $3)"
	" AND ($4::text IS NULL OR a.topic = $4) AND ($5::text IS NULL OR a.urgency = $5)"
	" AND ($6::boolean IS NULL OR " OVERDUE " = $6)"
	" AND ($7::timestamptz IS NULL OR a.updated_at >= $7)"
	" AND ($8::timestamptz IS NULL OR (a.updated_at, a.id) > ($8, $9::uuid))"
	" ORDER BY a.updated_at, a.id LIMIT $10" };
static const struct db_stmt stmt_lock = { "advice_request_lock",
	"SELECT a.office_id, a.version, " REQUEST_JSON " FROM advice_requests a WHERE" READER
	" AND a.id = $1::uuid FOR UPDATE" };
/* A topic of the caller's own office (an office role: $1). */
static const struct db_stmt stmt_topic = {
	"advice_request_topic",
	"SELECT office_id FROM topics WHERE office_id = $1 AND $2::text IS NULL AND id = $3::uuid"
};
static const struct db_stmt stmt_insert = { "advice_request_insert",
	"INSERT INTO advice_requests (id, office_id, region, kind, case_pseudonym, topic, urgency,"
	" topic_id, question_enc, respond_by)"
	" VALUES ($1::uuid, $2, kqe_advice_region(), $3, $4, $5, $6, $7::uuid, $8,"
	" now() + $9::integer * interval '1 day')" };
/* $5 the new question's ciphertext, NULL to keep it; $8 an advisor acts: its first response. */
static const struct db_stmt stmt_update = { "advice_request_update",
	"UPDATE advice_requests SET topic = $2, urgency = $3, topic_id = $4::uuid,"
	" question_enc = coalesce($5, question_enc), status = $6, decline_reason = $7,"
	" first_response_at = CASE WHEN $8::boolean THEN coalesce(first_response_at, now())"
	"  ELSE first_response_at END,"
	" accepted_at = CASE WHEN $6 = 'accepted' THEN coalesce(accepted_at, now())"
	"  ELSE accepted_at END,"
	" answered_at = CASE WHEN $6 = 'answered' THEN coalesce(answered_at, now())"
	"  ELSE answered_at END,"
	" ended_at = CASE WHEN $6 IN ('closed', 'declined', 'withdrawn')"
	"  THEN coalesce(ended_at, now()) ELSE ended_at END,"
	" version = version + 1, updated_at = now() WHERE id = $1::uuid" };

static int
request_create(struct write *w)
{
	const struct request *r = w->r;
	char pseudo[PSEUDONYM_LEN + 1], days[24];
	snprintf(w->office, sizeof(w->office), "%s", r->principal.office_id);
	uuid_v4(w->id);
	const char *reference = doc_text(w, "case_reference");
	if (reference != NULL)
		pseudonym(r->worker->pseudonymizer, w->office, reference, pseudo);
	snprintf(days, sizeof(days), "%ld", r->worker->cfg->advice_response_days);
	const char *kind = doc_text(w, "kind");
	json_object_set_new(w->details, "kind", json_string(kind));
	const char *params[] = { w->id, w->office, kind, reference ? pseudo : NULL,
		doc_text(w, "topic"), doc_text(w, "urgency"), doc_text(w, "topic_id"),
		write_encrypted(w, "question"), days };
	return write_exec(w, &stmt_insert, 9, params);
}

/* Whether this write changes what the office asked: a field other than status and the
 * advisor's decline_reason. */
static bool
content_changed(const struct write *w)
{
	size_t i;
	json_t *name;
	json_array_foreach(json_object_get(w->details, "fields"), i, name)
	{
		const char *n = json_string_value(name);
		if (strcmp(n, "status") != 0 && strcmp(n, "decline_reason") != 0)
			return true;
	}
	return false;
}

/*
 * Advice is advice (invariant 3): an advisor moves the status, nothing else; the office
 * edits its request while it is submitted, and then writes messages.
 */
static int
request_update(struct write *w)
{
	bool advisor = w->r->principal.role == ROLE_ADVISOR;
	const char *from = json_text(json_object_get(w->current, "status"));
	/* The move first: a move that does not exist is a 409 whatever else the patch says. */
	int moved = write_move(w, "status", moves, ARRAY_LEN(moves), "An advice request");
	if (moved < 0)
		return 0;
	if (!advisor && write_changes(w, "decline_reason")) {
		write_refuse(w, 403, "/decline_reason", "forbidden",
		    "The reason a request was declined is the advisor's.");
		return 0;
	}
	if (content_changed(w)) {
		if (advisor) {
			write_refuse(w, 403, "/status", "forbidden",
			    "Advice is advice: an advisor changes the status of a request, not what "
			    "the office asked.");
			return 0;
		}
		if (strcmp(from, "submitted") != 0) {
			write_refuse(w, 409, "/status", "taken_up",
			    "The request has been taken up; add to it through its messages.");
			return 0;
		}
	}
	if (strcmp(doc_text(w, "status"), "declined") != 0 &&
	    doc_text(w, "decline_reason") != NULL) {
		write_error(w, "/decline_reason", "forbidden", "goes only with status declined");
		return 0;
	}
	const char *params[] = { w->id, doc_text(w, "topic"), doc_text(w, "urgency"),
		doc_text(w, "topic_id"),
		write_changes(w, "question") ? write_encrypted(w, "question") : NULL,
		doc_text(w, "status"), doc_text(w, "decline_reason"),
		advisor && moved ? "true" : "false" };
	return write_exec(w, &stmt_update, 8, params);
}

/* The question and the messages are read by the office and its region's advisors. */
static bool
reads_text(const struct request *r)
{
	return role_is_office(r->principal.role) || r->principal.role == ROLE_ADVISOR;
}

/* One encrypted member <field>_enc of rep becomes <field>, in place. */
static void
decrypt_member(struct request *r, json_t *rep, const char *resource, const char *field)
{
	char key[40];
	snprintf(key, sizeof(key), "%s_enc", field);
	json_t *text = reads_text(r) ? free_text_decrypt(r, resource,
	                                   json_string_value(json_object_get(rep, "id")), field,
	                                   json_object_get(rep, key))
	                             : json_null();
	json_object_del(rep, key);
	json_object_set_new(rep, field, text);
}

static json_t *
render(struct request *r, json_t *rep)
{
	decrypt_member(r, rep, "advice_request", "question");
	return rep;
}

static const char *const csv_columns[] = { "id", "office_id", "region", "kind", "case_pseudonym",
	"topic", "urgency", "topic_id", "question", "status", "decline_reason", "respond_by",
	"overdue", "submitted_at", "first_response_at", "accepted_at", "answered_at", "ended_at",
	"version", "created_at", "updated_at", NULL };

const struct resource advice_requests_resource = { CALLER_SCOPED("advice_request", "advice request",
	                                               "/v1/advice-requests"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.render = render, .fields = fields, .nfields = ARRAY_LEN(fields), .rules = check_rules,
	.refs = { { "topic_id", &stmt_topic, SCOPE_OFFICE, "is not a topic of your office" } },
	.create = request_create, .update = request_update };

/* ---- the message thread: /v1/advice-requests/{id}/messages ---- */

static const struct field_spec message_fields[] = {
	{ .name = "request_id", .type = FIELD_UUID, .required = true, .immutable = true },
	{ .name = "text", .type = FIELD_STRING, .required = true, .min = 1, .max = TEXT_MAX },
};

#define MESSAGE_JSON                                                                               \
	"json_build_object('id', m.id, 'request_id', m.request_id, 'office_id', m.office_id,"      \
	" 'author_role', m.author_role, 'text_enc', m.text_enc, 'version', m.version,"             \
	" 'created_at', kqe_ts(m.created_at), 'updated_at', kqe_ts(m.updated_at))::text"

static const struct db_stmt stmt_message_get = { "advice_message_get",
	"SELECT m.office_id, " MESSAGE_JSON " FROM advice_messages m"
	" WHERE kqe_advice_reader(m.office_id, m.region) AND m.id = $1::uuid" };
/* $1 the request, $2 updated_since, $3 $4 cursor, $5 limit */
static const struct db_stmt stmt_message_list = { "advice_message_list",
	"SELECT kqe_ts(m.updated_at), m.id::text, m.office_id, " MESSAGE_JSON
	" FROM advice_messages m WHERE kqe_advice_reader(m.office_id, m.region)"
	" AND m.request_id = $1::uuid AND ($2::timestamptz IS NULL OR m.updated_at >= $2)"
	" AND ($3::timestamptz IS NULL OR (m.updated_at, m.id) > ($3, $4::uuid))"
	" ORDER BY m.updated_at, m.id LIMIT $5" };
/* The request of the thread, if the caller reads it: office, region, status. */
static const struct db_stmt stmt_message_request = { "advice_message_request",
	"SELECT a.office_id, a.region, a.status FROM advice_requests a WHERE" READER
	" AND a.id = $1::uuid" };
static const struct db_stmt stmt_message_insert = { "advice_message_insert",
	"INSERT INTO advice_messages (id, request_id, office_id, region, author_role, text_enc)"
	" VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6)" };
/* An advisor's first message is the request's first response (invariant 5). */
static const struct db_stmt stmt_first_response = { "advice_first_response",
	"UPDATE advice_requests SET first_response_at = now(), version = version + 1,"
	" updated_at = now() WHERE id = $1::uuid AND first_response_at IS NULL" };

static int
message_create(struct write *w)
{
	const char *status = ref_value(w, 0, 2);
	if (strcmp(status, "closed") == 0 || strcmp(status, "declined") == 0 ||
	    strcmp(status, "withdrawn") == 0) {
		char detail[160];
		snprintf(detail, sizeof(detail),
		    "The advice request is %s; its thread takes no more messages.", status);
		write_refuse(w, 409, "/request_id", "ended", detail);
		return 0;
	}
	uuid_v4(w->id);
	snprintf(w->office, sizeof(w->office), "%s", ref_value(w, 0, 0));
	const char *params[] = { w->id, doc_text(w, "request_id"), w->office, ref_value(w, 0, 1),
		role_name(w->r->principal.role), write_encrypted(w, "text") };
	PGresult *res = db_exec(w->r->db, &stmt_message_insert, 6, params);
	if (res == NULL)
		return -1;
	PQclear(res);
	if (w->r->principal.role != ROLE_ADVISOR)
		return 0;
	res = db_exec(w->r->db, &stmt_first_response, 1, params + 1);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

static json_t *
message_render(struct request *r, json_t *rep)
{
	decrypt_member(r, rep, "advice_message", "text");
	return rep;
}

static const char *const message_csv_columns[] = { "id", "request_id", "office_id", "author_role",
	"text", "version", "created_at", "updated_at", NULL };

const struct resource advice_messages_resource = { CALLER_SCOPED("advice_message", "advice message",
	                                               "/v1/advice-requests"),
	.parent = "request_id", .sub = "messages", .get = &stmt_message_get,
	.list = &stmt_message_list, .csv_columns = message_csv_columns, .render = message_render,
	.fields = message_fields, .nfields = ARRAY_LEN(message_fields),
	.refs = { { "request_id", &stmt_message_request, SCOPE_NONE,
	    "is not an advice request of yours" } },
	.create = message_create };
