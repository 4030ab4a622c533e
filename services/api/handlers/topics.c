/*
 * Quality-development topics (Qualitätsentwicklungsthemen): what a § 8
 * procedure concluded the office should work on — a theme from the learning
 * themes' frame, a priority, a description and where the work stands
 * (identified → in_progress → implemented | dropped, or identified →
 * dropped; every status change audited with from and to). The description
 * is free text that may name people: it is stored encrypted and decrypted
 * only for the owning office and the procedure's institute.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caller.h"
#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/crypto.h"
#include "kqe/log.h"
#include "kqe/outbox.h"
#include "kqe/problem.h"
#include "kqe/validate.h"

/* The query of writes that take nothing but ?dry_run=. */
static const char *const dry_run_allowed[] = { "dry_run", NULL };

#define DESCRIPTION_MAX 5000 /* characters */

static const struct field_spec create_fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID, .required = true },
	{ .name = "theme",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_learning_theme_values },
	{ .name = "priority",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_topic_priority_values },
	{ .name = "description",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .min = 1,
	    .max = DESCRIPTION_MAX },
	/* Defaults to identified. */
	{ .name = "status", .type = FIELD_ENUM, .values = codelist_topic_status_values },
	{ .name = "follow_up_date", .type = FIELD_DATE, .nullable = true },
};

/* JSON merge patch: every field optional; null removes description or follow_up_date. */
static const struct field_spec patch_fields[] = {
	/* Immutable: may be sent (a representation read with GET) only unchanged. */
	{ .name = "procedure_id", .type = FIELD_UUID },
	{ .name = "theme", .type = FIELD_ENUM, .values = codelist_learning_theme_values },
	{ .name = "priority", .type = FIELD_ENUM, .values = codelist_topic_priority_values },
	{ .name = "description",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .min = 1,
	    .max = DESCRIPTION_MAX },
	{ .name = "status", .type = FIELD_ENUM, .values = codelist_topic_status_values },
	{ .name = "follow_up_date", .type = FIELD_DATE, .nullable = true },
};

/* Where a topic may go from each status; a status not listed here is final. */
static const struct {
	const char *from;
	const char *to[3];
} transitions[] = {
	{ "identified", { "in_progress", "dropped", NULL } },
	{ "in_progress", { "implemented", "dropped", NULL } },
};

static const char *const *
next_statuses(const char *from)
{
	static const char *const none[] = { NULL };
	for (size_t i = 0; i < ARRAY_LEN(transitions); i++)
		if (strcmp(transitions[i].from, from) == 0)
			return transitions[i].to;
	return none;
}

/*
 * The representation, built by PostgreSQL. description_enc is replaced by
 * the decrypted description (or null) before it leaves the server.
 */
#define TOPIC_JSON                                                                                 \
	"json_build_object('id', t.id, 'procedure_id', t.procedure_id, 'office_id', t.office_id,"  \
	" 'theme', t.theme, 'priority', t.priority, 'status', t.status,"                           \
	" 'description_enc', t.description_enc, 'follow_up_date', t.follow_up_date,"               \
	" 'version', t.version, 'created_at', kqe_ts(t.created_at),"                               \
	" 'updated_at', kqe_ts(t.updated_at))::text"

/* $1 office scope, $2 institute scope: the API's tenant filter (RLS applies as well). */
#define TOPIC_SCOPE                                                                                \
	" ($1::text IS NULL OR t.office_id = $1) AND ($2::text IS NULL OR p.institute_id = $2)"

static const struct db_stmt stmt_procedure = { "topic_procedure",
	"SELECT p.office_id, p.phase FROM procedures p"
	" WHERE ($1::text IS NULL OR p.office_id = $1) AND ($2::text IS NULL OR p.institute_id = $2)"
	" AND p.id = $3::uuid FOR SHARE" };
static const struct db_stmt stmt_insert = { "topic_insert",
	"INSERT INTO topics (id, procedure_id, office_id, theme, priority, status,"
	" description_enc, follow_up_date)"
	" VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8::date)" };
static const struct db_stmt stmt_get = { "topic_get",
	"SELECT t.office_id, " TOPIC_JSON " FROM topics t JOIN procedures p"
	" ON p.id = t.procedure_id WHERE" TOPIC_SCOPE " AND t.id = $3::uuid" };
static const struct db_stmt stmt_lock = { "topic_lock",
	"SELECT t.office_id, t.procedure_id::text, t.version, t.status, p.phase"
	" FROM topics t JOIN procedures p ON p.id = t.procedure_id"
	" WHERE" TOPIC_SCOPE " AND t.id = $3::uuid FOR UPDATE OF t FOR SHARE OF p" };
static const struct db_stmt stmt_update = { "topic_update",
	"UPDATE topics t SET theme = coalesce($2, t.theme), priority = coalesce($3, t.priority),"
	" status = coalesce($4, t.status),"
	" description_enc = CASE WHEN $5::boolean THEN $6 ELSE t.description_enc END,"
	" follow_up_date = CASE WHEN $7::boolean THEN $8::date ELSE t.follow_up_date END,"
	" version = t.version + 1, updated_at = now() WHERE t.id = $1::uuid AND t.version = $9::int"
	" RETURNING " TOPIC_JSON };
static const struct db_stmt stmt_list = { "topic_list",
	"SELECT kqe_ts(t.updated_at), t.id::text, " TOPIC_JSON
	" FROM topics t JOIN procedures p ON p.id = t.procedure_id WHERE" TOPIC_SCOPE
	" AND ($3::timestamptz IS NULL OR (t.updated_at, t.id) > ($3::timestamptz, $4::uuid))"
	" AND ($5::text IS NULL OR t.office_id = $5) AND ($6::uuid IS NULL OR t.procedure_id = $6)"
	" AND ($7::text IS NULL OR t.status = $7)"
	" AND ($8::timestamptz IS NULL OR t.updated_at >= $8::timestamptz)"
	" ORDER BY t.updated_at, t.id LIMIT $9" };

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

static void
description_aad(const char *id, char *aad, size_t size)
{
	snprintf(aad, size, "topic:%s:description", id);
}

/* The decrypted description (a new reference), or null where the caller may not read it. */
static json_t *
description(struct request *r, const json_t *t, const json_t *env)
{
	/* Free text only for the owning office and the procedure's institute. */
	if (!json_is_string(env) ||
	    !(role_is_office(r->principal.role) || r->principal.role == ROLE_INSTITUTE))
		return json_null();
	char aad[96];
	size_t len;
	description_aad(json_string_value(json_object_get(t, "id")), aad, sizeof(aad));
	char *text = keyring_decrypt(r->worker->keyring, json_string_value(env), aad, &len);
	if (text == NULL) {
		log_error(r->id, "topic description cannot be decrypted",
		    json_pack("{s:O}", "topic", json_object_get(t, "id")));
		return json_null();
	}
	json_t *v = json_stringn(text, len);
	free(text);
	return v ? v : json_null();
}

/* The representation: description_enc becomes description, in place. Takes ownership of t. */
static json_t *
render(struct request *r, json_t *t)
{
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(t, key, v)
	{
		if (strcmp(key, "description_enc") == 0)
			json_object_set_new(out, "description", description(r, t, v));
		else
			json_object_set(out, key, v);
	}
	json_decref(t);
	return out;
}

/* Reads one topic in the open transaction; NULL if not there or not the caller's. */
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
	json_t *t = pg_json(res, 0, 1);
	PQclear(res);
	return t;
}

/*
 * Encrypts the description of body (if a non-empty string) for topic id
 * into *out (a new string, or NULL). -1 only if the keyring refuses.
 */
static int
encrypt_description(struct request *r, const json_t *body, const char *id, char **out)
{
	const json_t *d = json_object_get(body, "description");
	*out = NULL;
	if (!json_is_string(d))
		return 0;
	char aad[96];
	description_aad(id, aad, sizeof(aad));
	/* json_string_length: the text may hold \u0000, which strlen would cut at. */
	*out =
	    keyring_encrypt(r->worker->keyring, json_string_value(d), json_string_length(d), aad);
	return *out != NULL ? 0 : -1;
}

static void
reply_invalid(struct request *r, json_t *errors)
{
	reply_problem(r, 422, "The topic has invalid fields.", errors);
}

/* POST /v1/topics[?dry_run=true] */
void
topics_create(struct request *r)
{
	struct db *db = r->worker->db;
	struct outbox_event ev;
	PGresult *res = NULL;
	char *description_enc = NULL;
	int dry_run;

	if (write_params(r, dry_run_allowed, &dry_run, NULL) != 0)
		return;
	json_t *body = request_json(r);
	if (body == NULL)
		return;
	json_t *errors = json_array();
	if (db_begin_as(db, &r->principal) != 0)
		goto fail;
	/* The procedure is judged even when other fields are bad: every problem at once. */
	const char *procedure_id = json_text(json_object_get(body, "procedure_id"));
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
	validate_object(body, create_fields, ARRAY_LEN(create_fields), "", errors);
	if (json_array_size(errors) > 0) {
		db_rollback(db);
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	if (completed) {
		db_rollback(db);
		reply_problem(r, 409, "The procedure is completed; it takes no more topics.", NULL);
		goto out;
	}

	char id[37];
	uuid_v4(id);
	if (encrypt_description(r, body, id, &description_enc) != 0)
		goto fail;
	const char *status = json_text(json_object_get(body, "status"));
	if (status == NULL)
		status = "identified";
	const char *iparams[] = { id, procedure_id, office,
		json_text(json_object_get(body, "theme")),
		json_text(json_object_get(body, "priority")), status, description_enc,
		json_text(json_object_get(body, "follow_up_date")) };
	if ((res = db_exec(db, &stmt_insert, 8, iparams)) == NULL)
		goto fail;
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
	json_t *details = json_pack("{s:s}", "status", status);
	int rc =
	    audit_append(db, &r->principal, "topic.create", "topic", id, office, r->id, details);
	json_decref(details);
	if (rc != 0 || office_changed(db, office, &ev) != 0 ||
	    (rep = read_one(r, id, office_read, sizeof(office_read), &failed)) == NULL)
		goto fail;
	if (db_commit(db) != 0) {
		json_decref(rep);
		goto fail;
	}
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	char location[64];
	snprintf(location, sizeof(location), "/v1/topics/%s", id);
	reply_header(r, "Location", location);
	reply_resource(r, 201, render(r, rep));
	goto out;
fail:
	db_rollback(db);
	reply_db_error(r);
out:
	PQclear(res);
	free(description_enc);
	json_decref(errors);
	json_decref(body);
}

/* 409 for a status change the topic's workflow does not allow, naming the allowed ones. */
static void
reply_illegal_move(struct request *r, const char *from, const char *to)
{
	const char *const *next = next_statuses(from);
	char detail[200], list[96] = "";
	json_t *allowed = json_array();
	for (size_t i = 0; next[i] != NULL; i++) {
		size_t n = strlen(list);
		snprintf(list + n, sizeof(list) - n, "%s%s", i ? " or " : "", next[i]);
		json_array_append_new(allowed, json_string(next[i]));
	}
	if (next[0] == NULL)
		snprintf(detail, sizeof(detail),
		    "A topic in status %s is final; it cannot move to %s.", from, to);
	else
		snprintf(detail, sizeof(detail), "A topic in status %s can only move to %s.", from,
		    list);
	json_t *p = problem_new(409, detail, r->id);
	json_object_set_new(p, "allowed_next", allowed);
	char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(p);
	reply_bytes(r, 409, "application/problem+json; charset=utf-8", text, strlen(text));
	free(text);
}

/*
 * PATCH /v1/topics/{id} (JSON merge patch, If-Match required): theme,
 * priority, description, follow-up date, and the status along its
 * workflow. The procedure cannot change.
 */
void
topics_patch(struct request *r)
{
	static const char *const allowed[] = { NULL };
	struct db *db = r->worker->db;
	struct outbox_event ev;
	PGresult *res = NULL;
	json_t *errors = NULL;
	char *description_enc = NULL;
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
	char office[65], from[32], version[16];
	snprintf(office, sizeof(office), "%s", PQgetvalue(res, 0, 0));
	long current = atol(PQgetvalue(res, 0, 2));
	snprintf(from, sizeof(from), "%s", PQgetvalue(res, 0, 3));
	int completed = strcmp(PQgetvalue(res, 0, 4), "completed") == 0;
	const char *procedure_id = json_text(json_object_get(body, "procedure_id"));
	if (procedure_id != NULL && uuid_valid(procedure_id) &&
	    strcasecmp(procedure_id, PQgetvalue(res, 0, 1)) != 0)
		error_at_pointer(errors, "/procedure_id", "immutable",
		    "cannot change: a topic belongs to its procedure");
	validate_object(body, patch_fields, ARRAY_LEN(patch_fields), "", errors);
	PQclear(res);
	res = NULL;
	if (current != expected) {
		db_rollback(db);
		char etag[32];
		snprintf(etag, sizeof(etag), "\"v%ld\"", current);
		reply_header(r, "ETag", etag);
		reply_problem(r, 412, "The topic changed since your read; read it again.", NULL);
		goto out;
	}
	if (json_array_size(errors) > 0) {
		db_rollback(db);
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	/*
	 * Topics are what the office works on after its procedure: once the
	 * procedure is completed, their status and follow-up date still move, but
	 * what was concluded (theme, priority, description) is fixed.
	 */
	if (completed) {
		const char *k;
		json_t *v;
		json_object_foreach(
		    body, k, v) if (strcmp(k, "status") != 0 && strcmp(k, "follow_up_date") != 0)
		{
			db_rollback(db);
			reply_problem(r, 409,
			    "The procedure is completed: only status and follow_up_date of its "
			    "topics can change.",
			    NULL);
			goto out;
		}
	}
	const char *to = json_text(json_object_get(body, "status"));
	int moves = to != NULL && strcmp(to, from) != 0;
	if (moves) {
		const char *const *next = next_statuses(from);
		size_t i = 0;
		while (next[i] != NULL && strcmp(next[i], to) != 0)
			i++;
		if (next[i] == NULL) {
			db_rollback(db);
			reply_illegal_move(r, from, to);
			goto out;
		}
	}
	const json_t *desc = json_object_get(body, "description");
	const json_t *follow = json_object_get(body, "follow_up_date");
	if (encrypt_description(r, body, r->params[0], &description_enc) != 0)
		goto fail;
	snprintf(version, sizeof(version), "%ld", expected);
	const char *uparams[] = { r->params[0], json_text(json_object_get(body, "theme")),
		json_text(json_object_get(body, "priority")), to, desc ? "true" : "false",
		description_enc, follow ? "true" : "false", json_text(follow), version };
	if ((res = db_exec(db, &stmt_update, 9, uparams)) == NULL || PQntuples(res) == 0)
		goto fail;
	/* Which fields the patch touched (names only: the description is personal data). */
	json_t *details = json_object();
	json_t *fields = json_array();
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v)
	{
		if (strcmp(key, "status") != 0 && strcmp(key, "procedure_id") != 0)
			json_array_append_new(fields, json_string(key));
	}
	if (moves) {
		json_object_set_new(details, "from", json_string(from));
		json_object_set_new(details, "to", json_string(to));
	}
	json_object_set_new(details, "fields", fields);
	int rc = audit_append(db, &r->principal, moves ? "topic.status" : "topic.update", "topic",
	    r->params[0], office, r->id, details);
	json_decref(details);
	if (rc != 0 || office_changed(db, office, &ev) != 0 || db_commit(db) != 0)
		goto fail;
	json_t *rep = pg_json(res, 0, 0);
	PQclear(res);
	res = NULL;
	if (outbox_publish(db, r->worker->redis, &ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will", NULL);
	reply_resource(r, 200, render(r, rep));
	goto out;
fail:
	db_rollback(db);
	reply_db_error(r);
out:
	PQclear(res);
	free(description_enc);
	json_decref(errors);
	json_decref(body);
}

void
topics_get(struct request *r)
{
	static const char *const allowed[] = { NULL };

	if (query_accept(r, allowed) != 0)
		return;
	if (!canonical_id(r->params[0])) {
		reply_not_found(r);
		return;
	}
	reply_read_audited(r, r->params[0], read_one, render, "topic.read", "topic");
}

void
topics_list(struct request *r)
{
	static const char *const allowed[] = { LIST_PARAMS, "office", "procedure", "status",
		"updated_since", NULL };
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
	const char *status = query_get(r, "status");
	if (status != NULL && !codelist_has(codelist_find("topic_status"), status))
		error_at_parameter(errors, "status", "enum",
		    "must be one of: identified in_progress implemented dropped");
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
		status, since, limit };
	struct db *db = r->worker->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, &stmt_list, 9, params)) == NULL)
		goto fail;
	int n = PQntuples(res);
	int shown = n > lp.limit ? (int)lp.limit : n;
	if (!role_is_office(r->principal.role) && shown > 0) {
		json_t *details = json_pack("{s:i}", "count", shown);
		int rc = audit_append(
		    db, &r->principal, "topic.list", "topic", NULL, office_filter, r->id, details);
		json_decref(details);
		if (rc != 0)
			goto fail;
	}
	if (db_commit(db) != 0)
		goto fail;
	json_t *items = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(items, render(r, pg_json(res, i, 2)));
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
