/*
 * pipeline — the one read path, the one list path and the one write path of
 * kqe-api. A resource describes itself once (struct resource: its SQL, how
 * it renders, its writable fields and its domain steps); routes point at
 * the generic handlers below, which do everything that is not the domain:
 *
 *   read    scope → SELECT as the caller → 404 → audit (outside the office)
 *           → ETag → answer
 *   list    filters, keyset cursor → SELECT as the caller → audit → JSON or
 *           CSV with the resource's fixed columns, Link to the next page
 *   write   validate the document → check its references → domain step →
 *           audit → office_changed → read back → commit → publish → answer
 *           (201 + Location for a create, 200 for an update; ?dry_run=true
 *           answers the same representation and keeps nothing)
 *
 * SQL conventions, so the generic paths can bind parameters:
 *   - scope parameters come first: SCOPE_OFFICE binds $1 the caller's office
 *     (office roles, else NULL) and $2 its institute (institutes, else
 *     NULL); SCOPE_REGION binds $1 the advisor's region (else NULL);
 *     SCOPE_REQUESTER binds $1 the advisor's actor (else NULL), for records
 *     an advisor reads only if it asked for them (jobs); SCOPE_NONE binds
 *     nothing. Row-level security applies the same scope
 *     again in PostgreSQL whenever the resource reads as_caller.
 *   - get:   scope…, id                         → office_id, representation
 *   - list:  scope…, the route's query filters in declared order, the cursor
 *            keys, limit                        → keys…, office_id, representation
 *   - lock:  scope…, id  (… FOR UPDATE)         → office_id, version,
 *            representation, then columns of the resource's own
 *   Representations are JSON text built by PostgreSQL; render() turns one
 *   into the answer (decrypting free text for those who may read it).
 */
#ifndef KQE_API_PIPELINE_H
#define KQE_API_PIPELINE_H

#include "kqe/outbox.h"
#include "kqe/validate.h"
#include "server.h"

enum scope {
	SCOPE_NONE,
	SCOPE_OFFICE, /* $1 office, $2 institute */
	SCOPE_REGION, /* $1 advisor region */
	SCOPE_REQUESTER, /* $1 the advisor's actor: what it asked for (jobs) */
};

enum key_kind { KEY_TEXT, KEY_UUID, KEY_TIMESTAMP, KEY_INTEGER };

/* A field of the document that names another record the caller must be able to use. */
struct reference {
	const char *field; /* a top-level member */
	const struct db_stmt *stmt; /* scope…, value → a row if it may be used, else none */
	enum scope scope;
	const char *message; /* the 422 message, e.g. "is not a procedure of yours" */
};

#define WRITE_MAX_REFS 2

/*
 * The reference every record of a § 8 procedure has: procedure_id must name a
 * procedure of the caller's (its office's, or assigned to its institute). Its
 * row: office_id, cycle, phase (locked FOR SHARE). handlers/procedures.c.
 */
extern const struct db_stmt procedure_of_caller;
#define PROCEDURE_REFERENCE                                                                        \
	{                                                                                          \
		"procedure_id", &procedure_of_caller, SCOPE_OFFICE, "is not a procedure of yours"  \
	}

/* One write in progress: what the domain step reads and fills in. */
struct write {
	struct request *r;
	const struct resource *res;
	json_t *doc; /* the whole validated document (create: the body; PATCH: current ⊕ patch) */
	json_t *current; /* update: the representation before, rendered; NULL on create */
	PGresult *row; /* update: the locked row (the resource's own columns from 3 on) */
	PGresult *refs[WRITE_MAX_REFS]; /* the row each reference found (NULL if absent) */
	json_t *errors; /* 422 entries: the step appends with error_at() */
	const char *prefix; /* pointer prefix of the document ("" or "/items/N") */
	char id[37]; /* the record; a create step sets it */
	char office[65]; /* the office whose data it is; a create step sets it */
	const char *action; /* audit action; default "<name>.create" or "<name>.update" */
	json_t *details; /* audit details (no personal data); the step may add to it */
	/* A refusal other than invalid fields (write_refuse), e.g. a 409. */
	int refusal;
	char refusal_detail[256];
	const char *refusal_pointer, *refusal_code;
	json_t *refusal_members; /* extension members of the problem, e.g. existing_id */
	char location[128]; /* a Location for the refusal (the record it conflicts with) */
	/* An upload (ROUTE_UPLOAD): the body's bytes and its declared media type, lower case
	 * and without parameters ("" if none); the document stays as it is. */
	const unsigned char *upload;
	size_t upload_len;
	char upload_type[128];
};

struct resource {
	const char *name; /* audit resource and action prefix: "case_analysis" */
	const char *title; /* in problem details: "case analysis" */
	const char *collection; /* "/v1/case-analyses": Location is collection/id */
	const char *item_suffix; /* after collection/id in Location ("/report"), or NULL */
	/*
	 * A collection under another resource's items, collection/{parent}/sub/{id}
	 * (the messages of an advice request): parent is the member naming the
	 * parent record, given by the route's first path parameter, and refs[0]
	 * its reference. A parent the caller cannot use is a 404 for the whole
	 * collection, as the parent itself would be.
	 */
	const char *parent, *sub;
	enum scope scope;
	bool as_caller; /* reads run as the caller (BEGIN + principal: RLS applies) */
	bool audited; /* reads and lists by anyone outside the owning office are audited */
	const struct db_stmt *get, *list, *lock;
	enum key_kind keys[2]; /* the list's sort key, nkeys of them */
	int nkeys;
	const char *const *csv_columns; /* NULL-terminated */
	/* The representation from PostgreSQL's JSON to the answer; takes rep. NULL: as is. */
	json_t *(*render)(struct request *r, json_t *rep);

	/* Writes: the writable document and the domain. */
	const struct field_spec *fields;
	size_t nfields;
	/*
	 * Cross-field rules; pure. They see the document with every member that
	 * failed its field spec replaced by null, so a rule judges only values
	 * that are absent (left out) or valid, and skips null ones. creating: a
	 * create (an update's document lacks what is never stored, e.g. a file number).
	 */
	void (*rules)(const json_t *doc, bool creating, const char *prefix, json_t *errors);
	struct reference refs[WRITE_MAX_REFS];
	/*
	 * The domain steps, inside the caller's transaction, after the document
	 * passed its fields, rules and references: check what only the domain
	 * knows (errors or write_refuse), then INSERT / UPDATE. Return 0, or -1
	 * when the database failed. An update must change the row (version + 1).
	 */
	int (*create)(struct write *w);
	int (*update)(struct write *w);
};

/*
 * Parses and checks the query against the route's declared parameters (and
 * limit/cursor of lists, dialect of CSV routes, dry_run of writes that take
 * it): unknown, repeated or malformed parameters are one 400 naming each.
 * Returns 0, or -1 after answering.
 */
int query_check(struct request *r) KQE_MUSTCHECK;

/*
 * The part of query_check that needs no request: parses text (the query
 * string without '?'; NULL: none) into query (initialised here; the caller
 * clears it with evhttp_clear_headers, whatever the outcome) and appends to
 * errors every unknown, repeated or malformed parameter of route (a UUID is
 * lower-cased in place). On a list route also limit and cursor: *limit (else
 * the default) and *after (the cursor's keys, a new array; NULL if none or
 * invalid).
 */
void query_parse(const struct route *route, const char *text, struct evkeyvalq *query, long *limit,
    json_t **after, json_t *errors);

/*
 * What every resource of an office's own data shares: scoped to the caller's
 * office or institute, read as the caller (RLS), audited when read from
 * outside the office, listed by update time. n, t, c: name, title, collection.
 */
#define OFFICE_DATA(n, t, c)                                                                       \
	.name = (n), .title = (t), .collection = (c), .scope = SCOPE_OFFICE, .as_caller = true,    \
	.audited = true, .keys = { KEY_TIMESTAMP, KEY_UUID }, .nkeys = 2

/*
 * A workflow: the moves a record's status may make, and who may make each
 * (ROLE_BIT()s). Moves not listed do not exist.
 */
struct move {
	const char *from, *to;
	unsigned roles;
};

/*
 * Checks the write's move of field from the current value to the document's
 * against moves[0..n): a move that does not exist is a 409 naming the ones
 * the caller may make from here (allowed_next), one the caller's role may not
 * make a 403. A move becomes the audit action "<name>.<field>" with from and
 * to. noun: "An advice request". Returns 1 if it moves, 0 if it stays, -1 if
 * refused.
 */
int write_move(
    struct write *w, const char *field, const struct move *moves, size_t n, const char *noun);

/*
 * What every resource whose readers its own SQL decides shares (a reader
 * function such as kqe_advice_reader in the WHERE; row-level security applies
 * it again): read as the caller, audited when read from outside the office,
 * listed by update time. n, t, c: name, title, collection.
 */
#define CALLER_SCOPED(n, t, c)                                                                     \
	.name = (n), .title = (t), .collection = (c), .scope = SCOPE_NONE, .as_caller = true,      \
	.audited = true, .keys = { KEY_TIMESTAMP, KEY_UUID }, .nkeys = 2

/*
 * What every resource that every caller reads shares (programmes, calls,
 * clusters): no scope in its SQL, written as the caller (row-level security
 * decides who may write), listed by update time. n, t, c: name, title,
 * collection.
 */
#define SHARED_DATA(n, t, c)                                                                       \
	.name = (n), .title = (t), .collection = (c), .scope = SCOPE_NONE, .as_caller = true,      \
	.keys = { KEY_TIMESTAMP, KEY_UUID }, .nkeys = 2

/* The generic handlers routes point at. */
void path_read(struct request *r);
void path_list(struct request *r);
void path_create(struct request *r);
void path_update(struct request *r); /* PATCH a document, or PUT a file (ROUTE_UPLOAD) */

/*
 * The part of every write that needs neither request nor database (write
 * runs it after the references): doc against res's field specs (creating: a
 * create; else the whole document of an update, where immutable fields may
 * be left out), then res->rules over doc with every member that failed its
 * spec replaced by null. Appends to errors, pointers under prefix; returns
 * how many entries errors then holds (0: the document may be written).
 */
size_t pipeline_check_document(const struct resource *res, const json_t *doc, bool creating,
    const char *prefix, json_t *errors);

/*
 * The document a PATCH makes: patch (a JSON merge patch, RFC 7386) applied to
 * before, the current writable document (both borrowed). A null for a field
 * that is not nullable or not known is reported to errors and not applied.
 * Returns a new document for pipeline_check_document(…, false, …).
 */
json_t *pipeline_merge_patch(
    const struct resource *res, const json_t *before, const json_t *patch, json_t *errors);

/* What became of one create, for handlers that write several records (batches). */
enum write_outcome {
	WRITE_DONE,
	WRITE_INVALID,
	WRITE_REFUSED,
	WRITE_FAILED,
	WRITE_UNCHANGED, /* an update whose document equals the current one: nothing to write */
};

/*
 * Validates doc (taken over) and runs the create step inside the open
 * transaction, with error pointers under prefix. Nothing is committed. Call
 * write_release() afterwards.
 */
enum write_outcome write_create_one(struct request *r, const struct resource *res, json_t *doc,
    const char *prefix, struct write *w);
void write_release(struct write *w);

/* The step refuses the write: status (409, 403), detail, and for batches pointer + code. */
void write_refuse(
    struct write *w, int status, const char *pointer, const char *code, const char *detail);

/*
 * The step refuses the write as a duplicate of an existing record: runs stmt
 * (params, its first column is the existing record's id) and answers 409 with
 * detail, Location and existing_id naming that record. 0, or -1 if the
 * database failed.
 */
int write_conflict(struct write *w, const struct db_stmt *stmt, int nparams,
    const char *const *params, const char *pointer, const char *detail) KQE_MUSTCHECK;

/*
 * For a record of a procedure (PROCEDURE_REFERENCE first in refs): takes
 * the office from the procedure and refuses the write (409, detail) when the
 * procedure is completed. True if refused.
 */
bool write_refused_by_procedure(struct write *w, const char *detail);

/*
 * Free text at rest: the text member field of the document encrypted for
 * this record (AES-256-GCM under the current key, associated data
 * "<resource>:<id>:<field>", so a ciphertext cannot be moved to another
 * record or field), owned by the request; NULL if absent, null or empty. A
 * member that is an object is encrypted as its compact JSON.
 */
const char *write_encrypted(struct write *w, const char *field);

/*
 * The same back to text (a new reference) for those who may read it — the
 * owning office and the procedure's institute — else null; null too (and a
 * log line naming the record) if it cannot be decrypted.
 */
json_t *free_text(struct request *r, const char *resource, const json_t *rep, const char *field,
    const json_t *envelope);

/* The decryption alone, for a resource whose readers differ (id: the record's). */
json_t *free_text_decrypt(struct request *r, const char *resource, const char *id,
    const char *field, const json_t *envelope);

/* Appends an error at w->prefix + pointer. */
void write_error(struct write *w, const char *pointer, const char *code, const char *message);

/* The same for a resource's rules, which see no write: at prefix + pointer ("/place"). */
void rule_error(
    json_t *errors, const char *prefix, const char *pointer, const char *code, const char *message);

/*
 * Whether a step has refused the write (write_refuse) or found errors
 * (write_error): a step split into several stops after the one that did,
 * returning 0.
 */
bool write_stopped(const struct write *w);

/*
 * Queues a mail in the write's transaction (migration 0025_mails.sql): kind
 * (e.g. "event_registered"), the address, a subject that names no one, the
 * text; address and text are stored encrypted. kqe-aggregator sends it once
 * the write has committed. 0, or -1 if the database failed.
 */
int write_mail(struct write *w, const char *kind, const char *to, const char *subject,
    const char *body) KQE_MUSTCHECK;

/*
 * The field specs of a person the API registers (an event's participant, a
 * programme's professional): first name, name and e-mail address, for a
 * resource's own person table: { PERSON_FIELDS, …more… }.
 */
#define PERSON_FIELDS                                                                              \
	{ .name = "first_name", .type = FIELD_STRING, .required = true, .min = 1, .max = 100 },    \
	    { .name = "last_name", .type = FIELD_STRING, .required = true, .min = 1, .max = 100 }, \
	{                                                                                          \
		.name = "email", .type = FIELD_STRING, .required = true, .min = 3, .max = 254,     \
		.check = email_address_check                                                       \
	}

/*
 * The keyed hash of the document's person.email in lower case, within scope
 * (an office, a programme): what a duplicate address is found by without
 * storing it. Owned by the request.
 */
const char *write_email_key(struct write *w, const char *scope);

/* The statement in the write's transaction: 0, or -1 if the database failed. */
int write_exec(struct write *w, const struct db_stmt *stmt, int nparams,
    const char *const *params) KQE_MUSTCHECK;

/*
 * The statement of a record written from its document alone: $1 the
 * record's id, then the members named (top-level fields of the resource;
 * NULL-terminated, at most WRITE_DOCUMENT_MAX) in order, each as its field
 * type reads in SQL: text as it is, a boolean "true" or "false", a number in
 * decimal, an object or array as compact JSON; absent or null as NULL. An
 * immutable member an update left out is the current one, as doc_text()
 * reads it. 0, or -1 if the database failed.
 */
#define WRITE_DOCUMENT_MAX 16
int write_document(
    struct write *w, const struct db_stmt *stmt, const char *const *members) KQE_MUSTCHECK;

/*
 * Serialises the writes that name key until the transaction ends (an
 * advisory lock): for a rule over several rows, such as the places of a call
 * or the members of a programme's clusters. 0, or -1 if the database failed.
 */
int write_lock_key(struct write *w, const char *key) KQE_MUSTCHECK;

/* Whether an update changes field (its name is in the audit entry's fields). */
bool write_changes(const struct write *w, const char *field);

/* The value of a member of the document, current representation or a reference row. */
const char *doc_text(const struct write *w, const char *name);
/* A member of the document as compact JSON text the request owns (NULL if absent). */
const char *doc_json(struct write *w, const char *name);
const char *ref_value(const struct write *w, int ref, int col);
const char *row_value(const struct write *w, int col);

/* The scope parameters of the caller (see above); returns how many were written. */
int scope_params(const struct request *r, enum scope scope, const char **params);

/*
 * Reads one record as the caller through res->get (scope and id), inside
 * the caller's open transaction or as a plain statement. Returns the
 * rendered representation (a new reference) and the owning office, NULL if
 * it is not there or not the caller's (*failed 0), or NULL with *failed 1.
 */
json_t *read_one(
    struct request *r, const struct resource *res, const char *id, char office[65], int *failed);

/*
 * The transaction of a write: BEGIN as the caller and claim the request's
 * Idempotency-Key in it (idempotency.h). 0 to go on; otherwise the
 * transaction is rolled back and the request is answered (a database
 * failure), or left for the dispatcher to answer (the key is taken).
 */
int request_begin(struct request *r) KQE_MUSTCHECK;

/*
 * Records the outcome a retry with the same Idempotency-Key replays — status
 * and Location, or body where the answer holds no personal data — and
 * commits. -1 if either failed (the caller rolls back and answers 503).
 */
int request_commit(
    struct request *r, int status, const char *location, const char *body) KQE_MUSTCHECK;

/*
 * One statement as the caller (BEGIN, principal, the statement, COMMIT):
 * a new result, or NULL after answering the database error.
 */
PGresult *query_as_caller(struct request *r, const struct db_stmt *stmt, int nparams,
    const char *const *params) KQE_MUSTCHECK;

/*
 * The same for a statement that must find something: a new result with at
 * least one row, or NULL after answering — the database error, or 404 when
 * it finds nothing (not there, or not the caller's).
 */
PGresult *query_found(struct request *r, const struct db_stmt *stmt, int nparams,
    const char *const *params) KQE_MUSTCHECK;

/* Inside the write's transaction: the office_changed event the aggregator recomputes from. */
int office_changed(struct db *db, const char *office, struct outbox_event *ev) KQE_MUSTCHECK;

/* After commit: publishes the event; a failure is left to the outbox relay. */
void publish(struct request *r, const struct outbox_event *ev);

/* The string value of v, or NULL if v is not a string. */
const char *json_text(const json_t *v);

#endif
