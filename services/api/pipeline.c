#include "pipeline.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>

#include "http.h"
#include "idempotency.h"
#include "kqe/crypto.h"
#include "kqe/cursor.h"
#include "kqe/log.h"
#include "kqe/problem.h"
#include "kqe/report_params.h"

/* ---- helpers every path shares ---- */

int
scope_params(const struct request *r, enum scope scope, const char **params)
{
	const struct principal *p = &r->principal;
	switch (scope) {
	case SCOPE_OFFICE:
		params[0] = role_is_office(p->role) ? p->office_id : NULL;
		params[1] = p->role == ROLE_INSTITUTE ? p->institute_id : NULL;
		return 2;
	case SCOPE_REGION:
		params[0] = p->role == ROLE_ADVISOR ? p->region : NULL;
		return 1;
	case SCOPE_REQUESTER:
		params[0] = p->role == ROLE_ADVISOR ? p->actor : NULL;
		return 1;
	case SCOPE_NONE:
		break;
	}
	return 0;
}

/* Reads of case-level data by anyone but the owning office are audited. */
static bool
audited(const struct request *r, const struct resource *res)
{
	return res->audited && !role_is_office(r->principal.role);
}

static int
begin(struct request *r, const struct resource *res)
{
	return res->as_caller ? db_begin_as(r->db, &r->principal) : 0;
}

static int
commit(struct request *r, const struct resource *res)
{
	return res->as_caller ? db_commit(r->db) : 0;
}

static void
fail(struct request *r)
{
	db_rollback(r->db);
	reply_db_error(r);
}

static int
audit(struct request *r, const struct resource *res, const char *verb, const char *id,
    const char *office, const json_t *details)
{
	char action[64];
	snprintf(action, sizeof(action), "%s.%s", res->name, verb);
	return audit_append(r->db, &r->principal, action, res->name, id, office, r->id, details);
}

json_t *
read_one(
    struct request *r, const struct resource *res, const char *id, char office[65], int *failed)
{
	const char *params[3];
	int n = scope_params(r, res->scope, params);
	params[n++] = id;
	PGresult *row = db_exec(r->db, res->get, n, params);
	*failed = row == NULL;
	if (row == NULL || PQntuples(row) == 0) {
		PQclear(row);
		return NULL;
	}
	snprintf(office, 65, "%s", PQgetvalue(row, 0, 0));
	json_t *rep = pg_json(row, 0, 1);
	PQclear(row);
	return res->render != NULL ? res->render(r, rep) : rep;
}

/* A versioned representation answers with its ETag, anything else as plain JSON. */
static void
reply_representation(struct request *r, int status, json_t *rep)
{
	if (json_is_integer(json_object_get(rep, "version")))
		reply_resource(r, status, rep);
	else
		reply_json(r, status, rep);
}

int
request_begin(struct request *r)
{
	struct db *db = r->db;
	int rc = db_begin_as(db, &r->principal) != 0 ? -1 : idempotency_claim(r);
	if (rc != 0) {
		db_rollback(db);
		if (rc < 0)
			reply_db_error(r);
	}
	return rc;
}

int
request_commit(struct request *r, int status, const char *location, const char *body)
{
	if (idempotency_record(r, status, location, body) != 0)
		return -1;
	return db_commit(r->db);
}

PGresult *
query_as_caller(
    struct request *r, const struct db_stmt *stmt, int nparams, const char *const *params)
{
	struct db *db = r->db;
	PGresult *res = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (res = db_exec(db, stmt, nparams, params)) == NULL || db_commit(db) != 0) {
		PQclear(res);
		fail(r);
		return NULL;
	}
	return res;
}

PGresult *
query_found(struct request *r, const struct db_stmt *stmt, int nparams, const char *const *params)
{
	PGresult *res = query_as_caller(r, stmt, nparams, params);
	if (res != NULL && PQntuples(res) == 0) {
		PQclear(res);
		reply_not_found(r);
		return NULL;
	}
	return res;
}

int
office_changed(struct db *db, const char *office, struct outbox_event *ev)
{
	char payload[128];
	snprintf(payload, sizeof(payload), "{\"office_id\":\"%s\"}", office);
	return outbox_add_event(db, "office_changed", payload, ev);
}

void
publish(struct request *r, const struct outbox_event *ev)
{
	if (outbox_publish(r->db, r->redis, ev) != 0)
		log_warn(r->id, "event not published; the outbox relay will",
		    json_pack("{s:s}", "kind", ev->kind));
}

const char *
json_text(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * Where a record is: collection/id[item_suffix], or collection/parent/sub/id
 * for a collection under another resource's items.
 */
static void
item_location(
    const struct resource *res, const char *parent, const char *id, char *out, size_t size)
{
	if (res->parent != NULL)
		snprintf(
		    out, size, "%s/%s/%s/%s", res->collection, parent ? parent : "", res->sub, id);
	else
		snprintf(out, size, "%s/%s%s", res->collection, id,
		    res->item_suffix ? res->item_suffix : "");
}

/*
 * For a collection under another resource's items: whether the parent of the
 * path (the route's first parameter) is there for the caller, by the parent's
 * reference, inside the caller's transaction. 1 yes, 0 no, -1 failed.
 */
static int
parent_visible(struct request *r, const struct resource *res)
{
	const struct reference *ref = &res->refs[0];
	const char *params[3];
	int n = scope_params(r, ref->scope, params);
	params[n++] = r->params[0];
	PGresult *row = db_exec(r->db, ref->stmt, n, params);
	if (row == NULL)
		return -1;
	int found = PQntuples(row) > 0;
	PQclear(row);
	return found;
}

/* ---- read ---- */

void
path_read(struct request *r)
{
	const struct resource *res = r->route->resource;
	const char *id = r->params[r->nparams - 1];
	char office[65];
	int failed;

	if (begin(r, res) != 0) {
		fail(r);
		return;
	}
	json_t *rep = read_one(r, res, id, office, &failed);
	if (failed) {
		fail(r);
		return;
	}
	/* Under its parent only: another parent's id in the path is not this record. */
	const char *parent = rep != NULL && res->parent != NULL
	                         ? json_text(json_object_get(rep, res->parent))
	                         : NULL;
	if (rep != NULL && res->parent != NULL &&
	    (parent == NULL || strcmp(parent, r->params[0]) != 0)) {
		json_decref(rep);
		rep = NULL;
	}
	if (rep == NULL) {
		db_rollback(r->db);
		reply_not_found(r);
		return;
	}
	request_own(r, rep);
	if ((audited(r, res) && audit(r, res, "read", id, office, NULL) != 0) ||
	    commit(r, res) != 0) {
		fail(r);
		return;
	}
	if (r->route->present != NULL)
		r->route->present(r, rep);
	else
		reply_representation(r, 200, json_incref(rep));
}

/* ---- list ---- */

/* The route "/v1/case-analyses.csv" → "case-analyses.csv": the name the client asked for. */
static void
csv_filename(const struct route *route, char *out, size_t size)
{
	const char *base = strrchr(route->pattern, '/');
	snprintf(out, size, "%s", base != NULL ? base + 1 : route->pattern);
}

/*
 * The parameters of a list statement (pipeline.h): scope, parent, the
 * route's query filters in declared order, the cursor's keys, the limit (one
 * more than a page, to see whether another follows; written to limit).
 * Returns how many.
 */
static int
list_statement_params(
    struct request *r, const struct resource *res, const char **params, char limit[24])
{
	int n = scope_params(r, res->scope, params);
	if (res->parent != NULL)
		params[n++] = r->params[0];
	for (const struct query_param *q = r->route->query; q->name != NULL; q++)
		params[n++] = query_get(r, q->name);
	for (int k = 0; k < res->nkeys; k++)
		params[n++] =
		    r->after ? json_string_value(json_array_get(r->after, (size_t)k)) : NULL;
	snprintf(limit, 24, "%ld", r->limit + 1);
	params[n++] = limit;
	return n;
}

void
path_list(struct request *r)
{
	const struct resource *res = r->route->resource;
	const char *params[4 + ROUTE_MAX_QUERY + 2];
	char limit[24], filename[64];
	int n = list_statement_params(r, res, params, limit);

	struct db *db = r->db;
	PGresult *rows = NULL;
	int visible = 1;
	if (begin(r, res) != 0 || (res->parent != NULL && (visible = parent_visible(r, res)) < 0)) {
		fail(r);
		return;
	}
	if (!visible) {
		db_rollback(db);
		reply_not_found(r);
		return;
	}
	if ((rows = db_exec(db, res->list, n, params)) == NULL) {
		fail(r);
		return;
	}
	int total = PQntuples(rows);
	int shown = total > r->limit ? (int)r->limit : total;
	json_t *details = json_pack("{s:i}", "count", shown);
	int rc = audited(r, res) && shown > 0
	             ? audit(r, res, "list", NULL, query_get(r, "office_id"), details)
	             : 0;
	json_decref(details);
	if (rc != 0 || commit(r, res) != 0) {
		PQclear(rows);
		fail(r);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < shown; i++) {
		json_t *rep = pg_json(rows, i, res->nkeys + 1);
		json_array_append_new(items, res->render != NULL ? res->render(r, rep) : rep);
	}
	json_t *next = NULL;
	if (total > r->limit) {
		next = json_array();
		for (int k = 0; k < res->nkeys; k++)
			json_array_append_new(next, json_string(PQgetvalue(rows, shown - 1, k)));
	}
	PQclear(rows);
	csv_filename(r->route, filename, sizeof(filename));
	reply_list(r, items, next, res->csv_columns, filename);
}

/* ---- write ---- */

void
rule_error(
    json_t *errors, const char *prefix, const char *pointer, const char *code, const char *message)
{
	char full[320];
	snprintf(full, sizeof(full), "%s%s", prefix, pointer);
	error_at_pointer(errors, full, code, message);
}

void
write_error(struct write *w, const char *pointer, const char *code, const char *message)
{
	rule_error(w->errors, w->prefix, pointer, code, message);
}

bool
write_stopped(const struct write *w)
{
	return w->refusal != 0 || json_array_size(w->errors) > 0;
}

void
write_refuse(struct write *w, int status, const char *pointer, const char *code, const char *detail)
{
	w->refusal = status;
	w->refusal_pointer = pointer;
	w->refusal_code = code;
	snprintf(w->refusal_detail, sizeof(w->refusal_detail), "%s", detail);
}

int
write_move(struct write *w, const char *field, const struct move *moves, size_t n, const char *noun)
{
	const char *from = json_text(json_object_get(w->current, field));
	const char *to = doc_text(w, field);
	if (from == NULL || to == NULL || strcmp(from, to) == 0)
		return 0;
	unsigned mine = ROLE_BIT(w->r->principal.role);
	const struct move *found = NULL;
	json_t *allowed = json_array();
	char list[160] = "", detail[256];
	for (size_t i = 0; i < n; i++) {
		if (strcmp(moves[i].from, from) != 0)
			continue;
		if (strcmp(moves[i].to, to) == 0)
			found = &moves[i];
		if ((moves[i].roles & mine) == 0)
			continue;
		size_t len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s%s", len ? " or " : "", moves[i].to);
		json_array_append_new(allowed, json_string(moves[i].to));
	}
	/* The refusal keeps the pointer: the request owns it. */
	const char *pointer = request_own_string(w->r, xasprintf("/%s", field));
	if (found != NULL && (found->roles & mine) == 0) {
		json_decref(allowed);
		snprintf(detail, sizeof(detail), "%s in %s %s is not moved to %s by your role.",
		    noun, field, from, to);
		write_refuse(w, 403, pointer, "forbidden", detail);
		return -1;
	}
	if (found == NULL) {
		bool final = true;
		for (size_t i = 0; i < n && final; i++)
			final = strcmp(moves[i].from, from) != 0;
		if (list[0] == '\0')
			snprintf(detail, sizeof(detail), "%s in %s %s %s %s.", noun, field, from,
			    final ? "is final; it cannot move to"
			          : "cannot be moved by your role to",
			    to);
		else
			snprintf(detail, sizeof(detail), "%s in %s %s can only move to %s.", noun,
			    field, from, list);
		write_refuse(w, 409, pointer, "transition", detail);
		w->refusal_members = json_pack("{s:o}", "allowed_next", allowed);
		return -1;
	}
	json_decref(allowed);
	w->action = request_own_string(w->r, xasprintf("%s.%s", w->res->name, field));
	json_object_set_new(w->details, "from", json_string(from));
	json_object_set_new(w->details, "to", json_string(to));
	return 1;
}

/* The spec of a top-level field of the resource, or NULL. */
static const struct field_spec *
field_of(const struct resource *res, const char *name)
{
	for (size_t i = 0; i < res->nfields; i++)
		if (strcmp(res->fields[i].name, name) == 0)
			return &res->fields[i];
	return NULL;
}

/* A member of the document; an update may leave an immutable field out: it is what it was. */
static const json_t *
doc_member(const struct write *w, const char *name)
{
	const json_t *v = json_object_get(w->doc, name);
	const struct field_spec *f = field_of(w->res, name);
	if ((v == NULL || json_is_null(v)) && w->current != NULL && f != NULL && f->immutable)
		v = json_object_get(w->current, name);
	return v;
}

const char *
doc_text(const struct write *w, const char *name)
{
	return json_text(doc_member(w, name));
}

const char *
doc_json(struct write *w, const char *name)
{
	return request_own_string(w->r, json_dumps(json_object_get(w->doc, name), JSON_COMPACT));
}

/* A member as a statement parameter, by the type of its field (see write_document()). */
static const char *
doc_param(struct write *w, const char *name)
{
	const json_t *v = doc_member(w, name);
	const struct field_spec *f = field_of(w->res, name);
	assert(f != NULL);
	if (v == NULL || json_is_null(v))
		return NULL;
	switch (f->type) {
	case FIELD_BOOLEAN:
		return json_is_true(v) ? "true" : "false";
	case FIELD_INTEGER:
	case FIELD_NUMBER:
		return request_own_string(
		    w->r, json_is_integer(v) ? xasprintf("%lld", (long long)json_integer_value(v))
		                             : xasprintf("%.17g", json_number_value(v)));
	case FIELD_OBJECT:
	case FIELD_CODES:
	case FIELD_RATINGS:
	case FIELD_LIST:
	case FIELD_FLAGS:
	case FIELD_MAP:
		return request_own_string(w->r, json_dumps(v, JSON_COMPACT));
	default:
		return json_text(v);
	}
}

int
write_document(struct write *w, const struct db_stmt *stmt, const char *const *members)
{
	const char *params[WRITE_DOCUMENT_MAX + 1] = { w->id };
	int n = 1;
	for (; members[n - 1] != NULL; n++) {
		assert(n <= WRITE_DOCUMENT_MAX);
		params[n] = doc_param(w, members[n - 1]);
	}
	return write_exec(w, stmt, n, params);
}

int
write_conflict(struct write *w, const struct db_stmt *stmt, int nparams, const char *const *params,
    const char *pointer, const char *detail)
{
	PGresult *res = db_exec(w->r->db, stmt, nparams, params);
	if (res == NULL)
		return -1;
	const char *existing = PQntuples(res) ? PQgetvalue(res, 0, 0) : "";
	item_location(w->res, w->res->parent ? doc_text(w, w->res->parent) : NULL, existing,
	    w->location, sizeof(w->location));
	w->refusal_members = json_pack("{s:s}", "existing_id", existing);
	PQclear(res);
	write_refuse(w, 409, pointer, "conflict", detail);
	return 0;
}

const char *
write_encrypted(struct write *w, const char *field)
{
	const json_t *text = json_object_get(w->doc, field);
	char aad[160];
	snprintf(aad, sizeof(aad), "%s:%s:%s", w->res->name, w->id, field);
	if (json_is_object(text)) {
		char *dump = json_dumps(text, JSON_COMPACT | JSON_SORT_KEYS);
		char *sealed = keyring_encrypt(w->r->worker->keyring, dump, strlen(dump), aad);
		free(dump);
		return request_own_string(w->r, sealed);
	}
	if (!json_is_string(text) || json_string_length(text) == 0)
		return NULL;
	/* json_string_length: the text may hold \u0000, which strlen would cut at. */
	return request_own_string(
	    w->r, keyring_encrypt(w->r->worker->keyring, json_string_value(text),
	              json_string_length(text), aad));
}

json_t *
free_text(struct request *r, const char *resource, const json_t *rep, const char *field,
    const json_t *envelope)
{
	if (!(role_is_office(r->principal.role) || r->principal.role == ROLE_INSTITUTE))
		return json_null();
	return free_text_decrypt(
	    r, resource, json_string_value(json_object_get(rep, "id")), field, envelope);
}

json_t *
free_text_decrypt(struct request *r, const char *resource, const char *id, const char *field,
    const json_t *envelope)
{
	if (!json_is_string(envelope) || id == NULL)
		return json_null();
	char aad[160];
	size_t len;
	snprintf(aad, sizeof(aad), "%s:%s:%s", resource, id, field);
	char *text = keyring_decrypt(r->worker->keyring, json_string_value(envelope), aad, &len);
	if (text == NULL) {
		log_error(r->id, "free text cannot be decrypted",
		    json_pack("{s:s,s:s,s:s}", "resource", resource, "id", id, "field", field));
		return json_null();
	}
	json_t *v = json_stringn(text, len);
	free(text);
	return v != NULL ? v : json_null();
}

bool
write_refused_by_procedure(struct write *w, const char *detail)
{
	snprintf(w->office, sizeof(w->office), "%s", ref_value(w, 0, 0));
	if (strcmp(ref_value(w, 0, 2), "completed") != 0)
		return false;
	write_refuse(w, 409, "/procedure_id", "completed", detail);
	return true;
}

const char *
write_email_key(struct write *w, const char *scope)
{
	const char *email =
	    json_string_value(json_object_get(json_object_get(w->doc, "person"), "email"));
	char *lower = xstrdup(email);
	for (char *c = lower; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	char *key = xcalloc(1, PSEUDONYM_LEN + 1);
	pseudonym(w->r->worker->pseudonymizer, scope, lower, key);
	free(lower);
	return request_own_string(w->r, key);
}

static const struct db_stmt stmt_mail = { "pipeline_mail",
	"INSERT INTO mails (id, kind, recipient_enc, subject, body_enc)"
	" VALUES ($1::uuid, $2, $3, $4, $5)" };

int
write_mail(struct write *w, const char *kind, const char *to, const char *subject, const char *body)
{
	char id[37], aad[96];
	uuid_v4(id);
	snprintf(aad, sizeof(aad), "mail:%s:recipient", id);
	char *recipient = keyring_encrypt(w->r->worker->keyring, to, strlen(to), aad);
	snprintf(aad, sizeof(aad), "mail:%s:body", id);
	char *text = keyring_encrypt(w->r->worker->keyring, body, strlen(body), aad);
	const char *params[] = { id, kind, recipient, subject, text };
	int rc = recipient != NULL && text != NULL ? write_exec(w, &stmt_mail, 5, params) : -1;
	free(recipient);
	free(text);
	return rc;
}

int
write_exec(struct write *w, const struct db_stmt *stmt, int nparams, const char *const *params)
{
	PGresult *res = db_exec(w->r->db, stmt, nparams, params);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

static const struct db_stmt stmt_lock_key = { "pipeline_lock_key",
	"SELECT pg_advisory_xact_lock(hashtextextended($1, 0))" };

int
write_lock_key(struct write *w, const char *key)
{
	const char *params[] = { key };
	return write_exec(w, &stmt_lock_key, 1, params);
}

bool
write_changes(const struct write *w, const char *field)
{
	size_t i;
	json_t *name;
	json_array_foreach(json_object_get(w->details, "fields"), i, name)
	{
		if (strcmp(json_string_value(name), field) == 0)
			return true;
	}
	return false;
}

const char *
ref_value(const struct write *w, int ref, int col)
{
	return w->refs[ref] != NULL ? PQgetvalue(w->refs[ref], 0, col) : NULL;
}

const char *
row_value(const struct write *w, int col)
{
	return PQgetvalue(w->row, 0, col);
}

/* True if the member passes its own field spec (checked alone, without reporting). */
static bool
field_valid(const struct write *w, const struct field_spec *f, const json_t *v)
{
	json_t *scratch = json_array(), *one = json_pack("{s:O}", f->name, v);
	validate_fields(one, f, 1, "", w->current == NULL, scratch);
	bool ok = json_array_size(scratch) == 0;
	json_decref(one);
	json_decref(scratch);
	return ok;
}

/*
 * Checks the references of the document that pass their field spec (on an
 * update only those that changed): a record the caller may not use is a 422
 * at its field, the same answer whether it does not exist or is not theirs.
 * They come first, so the answer names them before the other fields.
 */
static int
check_references(struct write *w)
{
	const struct resource *res = w->res;
	for (int i = 0; i < WRITE_MAX_REFS && res->refs[i].field != NULL; i++) {
		const struct reference *ref = &res->refs[i];
		const json_t *v = json_object_get(w->doc, ref->field);
		char ptr[128];
		snprintf(ptr, sizeof(ptr), "%s/%s", w->prefix, ref->field);
		if (!json_is_string(v) || !field_valid(w, field_of(res, ref->field), v) ||
		    (w->current != NULL && json_equal(v, json_object_get(w->current, ref->field))))
			continue;
		const char *params[3];
		int n = scope_params(w->r, ref->scope, params);
		params[n++] = json_string_value(v);
		PGresult *row = db_exec(w->r->db, ref->stmt, n, params);
		if (row == NULL)
			return -1;
		if (PQntuples(row) == 0) {
			PQclear(row);
			error_at_pointer(w->errors, ptr, "not_found", ref->message);
			continue;
		}
		w->refs[i] = row;
	}
	return 0;
}

/*
 * What cross-field rules judge: doc with every member that failed its spec
 * (errors lists them) replaced by null, so a rule never reads a value of the
 * wrong type, tells "left out" (absent) from "unusable" (null), and every
 * bad field is still reported in one answer.
 */
static json_t *valid_items(
    const json_t *v, const struct field_spec *f, const char *ptr, const json_t *errors);

static json_t *
valid_part(const json_t *doc, const struct field_spec *specs, size_t n, const char *pointer,
    const json_t *errors)
{
	json_t *out = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(doc, specs[i].name);
		char ptr[256];
		snprintf(ptr, sizeof(ptr), "%s", pointer);
		pointer_append(ptr, sizeof(ptr), specs[i].name);
		size_t len = strlen(ptr), k;
		bool bad = false;
		json_t *e;
		json_array_foreach(errors, k, e)
		{
			const char *at = json_string_value(json_object_get(e, "pointer"));
			bad = bad || (at != NULL && strncmp(at, ptr, len) == 0 &&
			                 (at[len] == '\0' || at[len] == '/'));
		}
		if (v == NULL)
			continue;
		json_object_set_new(out, specs[i].name,
		    !bad ? json_incref(v)
		    : specs[i].type == FIELD_OBJECT && json_is_object(v)
		        ? valid_part(v, specs[i].fields, specs[i].nfields, ptr, errors)
		    : specs[i].type == FIELD_LIST && json_is_array(v)
		        ? valid_items(v, &specs[i], ptr, errors)
		        : json_null());
	}
	return out;
}

/* The items of a list, each an object as valid_part makes it (or null if no object). */
static json_t *
valid_items(const json_t *v, const struct field_spec *f, const char *ptr, const json_t *errors)
{
	json_t *out = json_array(), *e;
	size_t i;
	json_array_foreach(v, i, e)
	{
		char item[300];
		snprintf(item, sizeof(item), "%s/%zu", ptr, i);
		json_array_append_new(out, json_is_object(e)
		                               ? valid_part(e, f->fields, f->nfields, item, errors)
		                               : json_null());
	}
	return out;
}

size_t
pipeline_check_document(const struct resource *res, const json_t *doc, bool creating,
    const char *prefix, json_t *errors)
{
	validate_fields(doc, res->fields, res->nfields, prefix, creating, errors);
	if (res->rules != NULL) {
		json_t *valid = valid_part(doc, res->fields, res->nfields, prefix, errors);
		res->rules(valid, creating, prefix, errors);
		json_decref(valid);
	}
	return json_array_size(errors);
}

/* References, fields, rules, then the domain step. */
static enum write_outcome
write_run(struct write *w, bool creating)
{
	const struct resource *res = w->res;
	if (check_references(w) != 0)
		return WRITE_FAILED;
	if (pipeline_check_document(res, w->doc, creating, w->prefix, w->errors) > 0)
		return WRITE_INVALID;
	if (!creating && json_array_size(json_object_get(w->details, "fields")) == 0)
		return WRITE_UNCHANGED;
	if ((creating ? res->create(w) : res->update(w)) != 0)
		return WRITE_FAILED;
	if (w->refusal != 0)
		return WRITE_REFUSED;
	return json_array_size(w->errors) > 0 ? WRITE_INVALID : WRITE_DONE;
}

static void
write_init(
    struct write *w, struct request *r, const struct resource *res, json_t *doc, const char *prefix)
{
	memset(w, 0, sizeof(*w));
	w->r = r;
	w->res = res;
	w->doc = doc;
	w->prefix = prefix;
	w->errors = json_array();
	w->details = json_object();
}

void
write_release(struct write *w)
{
	json_decref(w->doc);
	json_decref(w->current);
	json_decref(w->errors);
	json_decref(w->details);
	json_decref(w->refusal_members);
	PQclear(w->row);
	for (int i = 0; i < WRITE_MAX_REFS; i++)
		PQclear(w->refs[i]);
	memset(w, 0, sizeof(*w));
}

enum write_outcome
write_create_one(
    struct request *r, const struct resource *res, json_t *doc, const char *prefix, struct write *w)
{
	write_init(w, r, res, doc, prefix);
	return write_run(w, true);
}

/* Answers a write that did not happen; the transaction is rolled back. */
static void
reply_not_written(struct write *w, enum write_outcome o)
{
	struct request *r = w->r;
	char detail[128];
	db_rollback(r->db);
	switch (o) {
	case WRITE_INVALID:
		snprintf(detail, sizeof(detail), "The %s has invalid fields.", w->res->title);
		reply_problem(r, 422, detail, json_incref(w->errors));
		break;
	case WRITE_REFUSED:
		if (w->location[0] != '\0')
			reply_header(r, "Location", w->location);
		/* The member the refusal is about, as a field error names its field. */
		if (w->refusal_pointer != NULL) {
			if (w->refusal_members == NULL)
				w->refusal_members = json_object();
			json_t *one = json_array();
			error_at_pointer(
			    one, w->refusal_pointer, w->refusal_code, w->refusal_detail);
			json_object_set_new(w->refusal_members, "errors", one);
		}
		reply_problem_with(
		    r, w->refusal, w->refusal_detail, json_incref(w->refusal_members));
		break;
	case WRITE_UNCHANGED: /* the answer is the record as it is */
		reply_resource(r, 200, json_incref(w->current));
		break;
	case WRITE_FAILED:
	case WRITE_DONE:
		reply_db_error(r);
		break;
	}
}

/*
 * The common end of every write: audit, office_changed, read back, commit,
 * publish, answer. A dry run reads back and rolls back instead; an update's
 * dry run keeps the current version, so its ETag stays valid for the write.
 */
static void
write_finish(struct write *w, int status, long version)
{
	struct request *r = w->r;
	const struct resource *res = w->res;
	struct db *db = r->db;
	struct outbox_event ev = { 0 };
	char office[65];
	int failed;

	if (r->dry_run) {
		json_t *rep = read_one(r, res, w->id, office, &failed);
		db_rollback(db);
		if (rep == NULL) {
			reply_db_error(r);
			return;
		}
		if (version == 0) {
			reply_json(r, 200, rep);
			return;
		}
		json_object_set_new(rep, "version", json_integer(version));
		reply_resource(r, 200, rep);
		return;
	}
	/* A directory record (a provider) is no office's data: no office in its audit entry, no
	 * office_changed event. */
	const char *owner = w->office[0] != '\0' ? w->office : NULL;
	if (w->action != NULL ? audit_append(db, &r->principal, w->action, res->name, w->id, owner,
	                            r->id, w->details) != 0
	                      : audit(r, res, version == 0 ? "create" : "update", w->id, owner,
	                            w->details) != 0) {
		fail(r);
		return;
	}
	json_t *rep;
	char location[128] = "";
	if (version == 0)
		item_location(res, res->parent ? doc_text(w, res->parent) : NULL, w->id, location,
		    sizeof(location));
	if ((owner != NULL && office_changed(db, owner, &ev) != 0) ||
	    (rep = read_one(r, res, w->id, office, &failed)) == NULL) {
		fail(r);
		return;
	}
	if (request_commit(r, status, version == 0 ? location : NULL, NULL) != 0) {
		json_decref(rep);
		fail(r);
		return;
	}
	if (owner != NULL)
		publish(r, &ev);
	if (version == 0)
		reply_header(r, "Location", location);
	reply_resource(r, status, rep);
}

void
path_create(struct request *r)
{
	const struct resource *res = r->route->resource;
	struct write w;
	if (request_begin(r) != 0)
		return;
	json_t *doc = json_incref(r->body);
	bool elsewhere = false;
	if (res->parent != NULL) {
		/* The parent is the path's; a body may repeat it, not name another. */
		int visible = parent_visible(r, res);
		if (visible <= 0) {
			json_decref(doc);
			if (visible < 0)
				fail(r);
			else {
				db_rollback(r->db);
				reply_not_found(r);
			}
			return;
		}
		if (json_is_object(doc)) {
			const json_t *given = json_object_get(doc, res->parent);
			elsewhere = given != NULL &&
			            !(json_is_string(given) &&
			                strcasecmp(json_string_value(given), r->params[0]) == 0);
			json_decref(doc);
			doc = json_deep_copy(r->body);
			json_object_set_new(doc, res->parent, json_string(r->params[0]));
		}
	}
	enum write_outcome o = write_create_one(r, res, doc, "", &w);
	if (elsewhere && o != WRITE_FAILED) {
		char ptr[64];
		snprintf(ptr, sizeof(ptr), "/%s", res->parent);
		write_error(
		    &w, ptr, "immutable", "is given by the path; may be repeated only unchanged");
		o = WRITE_INVALID;
	}
	if (o == WRITE_DONE)
		write_finish(&w, 201, 0);
	else
		reply_not_written(&w, o);
	write_release(&w);
}

/* The members of v that specs describe, recursively: a representation's writable part. */
static json_t *
project(const json_t *v, const struct field_spec *specs, size_t n)
{
	json_t *out = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_object_get(v, specs[i].name);
		if (m == NULL)
			continue;
		json_object_set_new(out, specs[i].name,
		    specs[i].type == FIELD_OBJECT && json_is_object(m)
		        ? project(m, specs[i].fields, specs[i].nfields)
		        : json_deep_copy(m));
	}
	return out;
}

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
			json_object_set_new(target, k, json_deep_copy(v));
		}
	}
}

/*
 * In a merge patch null removes a member: allowed for nullable fields only
 * (anything else must be given a value: [] or {} empties a list). Returns a
 * copy of the patch without the nulls it reports; a null for a member that
 * does not exist is reported here too, since merging it leaves no trace for
 * the field check to find.
 */
static json_t *
patch_nulls_checked(const json_t *patch, const struct field_spec *specs, size_t n,
    const char *pointer, json_t *errors)
{
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)patch, key, v)
	{
		const struct field_spec *f = NULL;
		for (size_t i = 0; i < n && f == NULL; i++)
			if (strcmp(specs[i].name, key) == 0)
				f = &specs[i];
		char ptr[256];
		snprintf(ptr, sizeof(ptr), "%s", pointer);
		pointer_append(ptr, sizeof(ptr), key);
		if (json_is_null(v) && (f == NULL || !f->nullable))
			error_at_pointer(errors, ptr, f == NULL ? "unknown_field" : "type",
			    f == NULL ? "is not a known field" : "must not be null");
		else if (f != NULL && f->type == FIELD_OBJECT && json_is_object(v))
			json_object_set_new(
			    out, key, patch_nulls_checked(v, f->fields, f->nfields, ptr, errors));
		else
			json_object_set(out, key, v);
	}
	return out;
}

json_t *
pipeline_merge_patch(
    const struct resource *res, const json_t *before, const json_t *patch, json_t *errors)
{
	json_t *checked = patch_nulls_checked(patch, res->fields, res->nfields, "", errors);
	json_t *doc = json_deep_copy(before);
	merge_patch(doc, checked);
	json_decref(checked);
	return doc;
}

/*
 * The document an update stores: PATCH merges the request into the current
 * writable document, PUT replaces it. Immutable fields may be repeated
 * unchanged; the names of the fields that change go into the audit entry
 * (names only: values may be personal data).
 */
/* An upload's bytes and declared type into the write; the document stays as it is. */
static void
upload_document(struct write *w, json_t *before)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(w->r->req);
	w->upload_len = evbuffer_get_length(in);
	w->upload = evbuffer_pullup(in, -1);
	const char *ct =
	    evhttp_find_header(evhttp_request_get_input_headers(w->r->req), "Content-Type");
	size_t n = 0;
	for (; ct != NULL && ct[n] != '\0' && ct[n] != ';' && n + 1 < sizeof(w->upload_type); n++)
		w->upload_type[n] = (char)tolower((unsigned char)ct[n]);
	while (n > 0 && w->upload_type[n - 1] == ' ')
		n--;
	w->upload_type[n] = '\0';
	w->doc = before;
	json_object_set_new(w->details, "fields", json_pack("[s]", "file"));
}

static void
update_document(struct write *w)
{
	const struct resource *res = w->res;
	json_t *before = project(w->current, res->fields, res->nfields);
	if (w->r->route->flags & ROUTE_UPLOAD) {
		upload_document(w, before);
		return;
	}
	if (evhttp_request_get_command(w->r->req) == EVHTTP_REQ_PATCH) {
		w->doc = pipeline_merge_patch(res, before, w->r->body, w->errors);
	} else {
		w->doc = json_deep_copy(w->r->body);
	}
	json_t *changed = json_array();
	for (size_t i = 0; i < res->nfields; i++) {
		const struct field_spec *f = &res->fields[i];
		json_t *now = json_object_get(w->doc, f->name),
		       *was = json_object_get(before, f->name);
		if (now == NULL && f->immutable)
			continue;
		if (now != NULL && was != NULL &&
		    (json_equal(now, was) ||
		        (f->type == FIELD_UUID && json_is_string(now) && json_is_string(was) &&
		            strcasecmp(json_string_value(now), json_string_value(was)) == 0)))
			continue;
		if (now == NULL && was == NULL)
			continue;
		char ptr[96];
		snprintf(ptr, sizeof(ptr), "/%s", f->name);
		if (f->immutable) {
			error_at_pointer(w->errors, ptr, "immutable", "cannot be changed");
			json_object_del(w->doc, f->name); /* one error for it, not a second */
		} else
			json_array_append_new(changed, json_string(f->name));
	}
	json_object_set_new(w->details, "fields", changed);
	json_decref(before);
}

/*
 * BEGIN as the caller and lock the record of the path through res->lock,
 * scoped to the caller: the locked row, or NULL after answering — 404 if it
 * is not there or not the caller's, 412 with the current ETag if its version
 * is not the expected one.
 */
static PGresult *
update_lock(struct request *r, const struct resource *res, long expected)
{
	struct db *db = r->db;
	const char *params[3];
	int n = scope_params(r, res->scope, params);
	params[n++] = r->params[0];
	PGresult *row = NULL;
	if (db_begin_as(db, &r->principal) != 0 ||
	    (row = db_exec(db, res->lock, n, params)) == NULL) {
		fail(r);
		return NULL;
	}
	if (PQntuples(row) == 0) {
		PQclear(row);
		db_rollback(db);
		reply_not_found(r);
		return NULL;
	}
	long version = atol(PQgetvalue(row, 0, 1));
	if (version == expected)
		return row;
	char etag[32], detail[128];
	snprintf(etag, sizeof(etag), "\"v%ld\"", version);
	PQclear(row);
	db_rollback(db);
	reply_header(r, "ETag", etag);
	snprintf(
	    detail, sizeof(detail), "The %s changed since your read; read it again.", res->title);
	reply_problem(r, 412, detail, NULL);
	return NULL;
}

void
path_update(struct request *r)
{
	const struct resource *res = r->route->resource;
	struct write w;
	long expected;
	PGresult *row;

	if (if_match_version(r, &expected) != 0 || (row = update_lock(r, res, expected)) == NULL)
		return;
	write_init(&w, r, res, NULL, "");
	w.row = row;
	snprintf(w.id, sizeof(w.id), "%s", r->params[0]);
	snprintf(w.office, sizeof(w.office), "%s", PQgetvalue(row, 0, 0));
	json_t *rep = pg_json(row, 0, 2);
	w.current = res->render != NULL ? res->render(r, rep) : rep;
	update_document(&w);
	enum write_outcome o = write_run(&w, false);
	if (o == WRITE_DONE)
		write_finish(&w, 200, expected);
	else
		reply_not_written(&w, o);
	write_release(&w);
}

/* ---- the query ---- */

static const struct query_param list_params[] = {
	{ "limit", QUERY_TEXT, NULL },
	{ "cursor", QUERY_TEXT, NULL },
};
static const char *const dialects[] = { "rfc4180", "excel", NULL };
static const struct query_param csv_params[] = { { "dialect", QUERY_ENUM, dialects } };
static const struct query_param dry_run_params[] = { { "dry_run", QUERY_BOOL, NULL } };

/* The declaration of a parameter of this route, or NULL. */
static const struct query_param *
query_declared(const struct route *route, const char *name)
{
	for (const struct query_param *q = route->query; q->name != NULL; q++)
		if (strcmp(q->name, name) == 0)
			return q;
	const struct {
		unsigned flag;
		const struct query_param *params;
		size_t n;
	} implicit[] = {
		{ ROUTE_LIST, list_params, ARRAY_LEN(list_params) },
		{ ROUTE_CSV, csv_params, ARRAY_LEN(csv_params) },
		{ ROUTE_DRY_RUN, dry_run_params, ARRAY_LEN(dry_run_params) },
	};
	for (size_t i = 0; i < ARRAY_LEN(implicit); i++)
		for (size_t k = 0; (route->flags & implicit[i].flag) && k < implicit[i].n; k++)
			if (strcmp(implicit[i].params[k].name, name) == 0)
				return &implicit[i].params[k];
	return NULL;
}

static bool
key_valid(enum key_kind kind, const char *v)
{
	switch (kind) {
	case KEY_UUID:
		return uuid_valid(v);
	case KEY_TIMESTAMP:
		return timestamp_valid(v);
	case KEY_INTEGER:
		return *v != '\0' && strspn(v, "0123456789") == strlen(v) && strlen(v) < 19;
	case KEY_TEXT:
		break;
	}
	return utf8_valid(v) && strlen(v) <= 200;
}

/* limit and cursor of a list. */
static void
check_paging(const struct route *route, const struct evkeyvalq *query, long *limit_out,
    json_t **after, json_t *errors)
{
	const struct resource *res = route->resource;
	const char *limit = evhttp_find_header(query, "limit"),
	           *cursor = evhttp_find_header(query, "cursor");
	*limit_out = LIST_DEFAULT_LIMIT;
	if (limit != NULL) {
		char *end;
		long n = strtol(limit, &end, 10);
		if (*limit == '\0' || *end != '\0' || n < 1 || n > LIST_MAX_LIMIT)
			error_at_parameter(
			    errors, "limit", "range", "must be an integer from 1 to 500");
		else
			*limit_out = n;
	}
	if (cursor == NULL)
		return;
	json_t *keys = cursor_decode(cursor, (size_t)res->nkeys);
	for (int k = 0; keys != NULL && k < res->nkeys; k++)
		if (!key_valid(res->keys[k], json_string_value(json_array_get(keys, (size_t)k)))) {
			json_decref(keys);
			keys = NULL;
		}
	if (keys == NULL)
		error_at_parameter(
		    errors, "cursor", "invalid_cursor", "is not a cursor this list issued");
	*after = keys;
}

/* Checks one parameter by its kind; a UUID is lower-cased in place. */
static void
check_value(const struct query_param *q, char *v, json_t *errors)
{
	char msg[256];
	switch (q->kind) {
	case QUERY_UUID:
		if (!uuid_valid(v))
			error_at_parameter(errors, q->name, "format", "must be a UUID");
		for (char *c = v; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
		break;
	case QUERY_SLUG:
		if (!slug_id_valid(v))
			error_at_parameter(errors, q->name, "format", "is not an id");
		break;
	case QUERY_TIMESTAMP:
		if (!timestamp_valid(v))
			error_at_parameter(errors, q->name, "format",
			    "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
		break;
	case QUERY_BOOL:
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			error_at_parameter(errors, q->name, "enum", "must be true or false");
		break;
	case QUERY_ENUM: {
		size_t n = (size_t)snprintf(msg, sizeof(msg), "must be one of:");
		const char *const *c;
		for (c = q->values; *c != NULL && strcmp(*c, v) != 0; c++)
			;
		if (*c != NULL)
			break;
		for (c = q->values; *c != NULL && n < sizeof(msg); c++)
			n += (size_t)snprintf(msg + n, sizeof(msg) - n, " %s", *c);
		error_at_parameter(errors, q->name, "enum", msg);
		break;
	}
	case QUERY_TEXT:
		if (*v == '\0' || !utf8_valid(v) || utf8_length(v, strlen(v)) > 100)
			error_at_parameter(
			    errors, q->name, "format", "must be 1 to 100 characters of UTF-8");
		break;
	case QUERY_PERIOD:
		if (!period_valid(v))
			error_at_parameter(errors, q->name, "format",
			    "must be a year YYYY or a five-year cycle YYYY-YYYY starting 2023, 2028, ...");
		break;
	}
}

void
query_parse(const struct route *route, const char *text, struct evkeyvalq *query, long *limit,
    json_t **after, json_t *errors)
{
	struct evkeyval *kv;

	TAILQ_INIT(query);
	*limit = LIST_DEFAULT_LIMIT;
	*after = NULL;
	if (text != NULL && evhttp_parse_query_str(text, query) != 0)
		error_at_parameter(errors, "", "malformed", "the query string cannot be decoded");
	TAILQ_FOREACH(kv, query, next)
	{
		const struct query_param *decl = query_declared(route, kv->key);
		struct evkeyval *prev = TAILQ_FIRST(query);
		while (prev != kv && strcmp(prev->key, kv->key) != 0)
			prev = TAILQ_NEXT(prev, next);
		if (decl == NULL)
			error_at_parameter(errors, kv->key, "unknown_parameter",
			    "is not a parameter of this route");
		else if (prev != kv)
			error_at_parameter(
			    errors, kv->key, "duplicate_parameter", "may be given only once");
		else if (decl != &list_params[0] && decl != &list_params[1])
			check_value(decl, kv->value, errors);
	}
	if (route->flags & ROUTE_LIST)
		check_paging(route, query, limit, after, errors);
}

int
query_check(struct request *r)
{
	const char *q = r->link != NULL
	                    ? r->query_text
	                    : evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
	json_t *errors = json_array();

	query_parse(r->route, q, &r->query, &r->limit, &r->after, errors);
	r->query_parsed = true;
	r->dry_run = (r->route->flags & ROUTE_DRY_RUN) && query_get(r, "dry_run") != NULL &&
	             strcmp(query_get(r, "dry_run"), "true") == 0;
	r->excel = (r->route->flags & ROUTE_CSV) && query_get(r, "dialect") != NULL &&
	           strcmp(query_get(r, "dialect"), "excel") == 0;
	if (json_array_size(errors) == 0) {
		json_decref(errors);
		return 0;
	}
	reply_problem(r, 400, "The query has invalid parameters.", errors);
	return -1;
}
