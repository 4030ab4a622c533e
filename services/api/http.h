/*
 * http — the edge of kqe-api: reading a request (query parameters, JSON
 * body, limits) and answering it (JSON, problem+json, lists with keyset
 * cursors). Every answer goes through reply_buffer(), which adds the request
 * id, records metrics and writes the access log line, exactly once per request.
 */
#ifndef KQE_API_HTTP_H
#define KQE_API_HTTP_H

#include "server.h"

/* Adds an output header. */
void reply_header(struct request *r, const char *name, const char *value);

/* Answers with body (takes ownership) as application/json. */
void reply_json(struct request *r, int status, json_t *body);

/* Answers RFC 9457 problem+json; errors (an array or NULL) is taken over. */
void reply_problem(struct request *r, int status, const char *detail, json_t *errors);

/* Answers with the given bytes and content type. */
void reply_bytes(
    struct request *r, int status, const char *content_type, const char *data, size_t len);

/* Maps a failed database call to 503 (unavailable, with Retry-After) or 500. */
void reply_db_error(struct request *r);

/*
 * Parses the query string and checks every parameter is one of `allowed`
 * (NULL-terminated) and appears at most once, appending one entry per bad
 * parameter to errors. Handlers then check their own parameters, adding to
 * the same array, and answer with reply_query_errors().
 */
void query_parse(struct request *r, const char *const *allowed, json_t *errors);

/* If errors is non-empty answers 400 with them and returns -1; else frees errors, returns 0. */
int reply_query_errors(struct request *r, json_t *errors) KQE_MUSTCHECK;

/* query_parse + reply_query_errors for routes whose only parameters are `allowed`. */
int query_accept(struct request *r, const char *const *allowed) KQE_MUSTCHECK;

/* Value of a parsed query parameter or NULL. */
const char *query_get(const struct request *r, const char *name);

/*
 * Reads the body as a JSON object: 415 unless Content-Type is JSON, 413 over
 * the size limit, 400 for malformed JSON / invalid UTF-8 / too deep nesting,
 * 422 if it is not an object. Returns a new reference, or NULL after answering.
 */
json_t *request_json(struct request *r);

/* Keyset list parameters shared by every list route. */
struct list_params {
	long limit;
	json_t *after; /* decoded cursor keys, or NULL for the first page */
};

#define LIST_DEFAULT_LIMIT 50
#define LIST_MAX_LIMIT 500

/* The query parameters every list accepts besides its own filters. */
#define LIST_PARAMS "limit", "cursor", "format", "dialect"

/*
 * Reads `limit`, `cursor` (a cursor of nkeys keys), and the export format
 * (`format=json|csv`, `dialect=rfc4180|excel`, or `Accept: text/csv`),
 * appending problems to errors. The caller answers 400 if errors is
 * non-empty. Free with list_params_free().
 */
void list_params_parse(struct request *r, size_t nkeys, struct list_params *lp, json_t *errors);
void list_params_free(struct list_params *lp);

/*
 * Answers 200 {"items": items, "next_cursor": …}, or the items as CSV when
 * the list was asked for as CSV (RFC 4180, UTF-8; dialect=excel: ";",
 * decimal comma, BOM, cells that a spreadsheet would run as a formula
 * prefixed with '). next_keys (taken over, may be NULL) is the sort key of
 * the last item when more rows exist; then a Link rel="next" header repeats
 * the current query with the new cursor.
 */
void reply_list(struct request *r, json_t *items, json_t *next_keys);

/* Copies a NUL-terminated parameter string for use as a SQL text param ("" → NULL). */
const char *nullable(const char *s);

/*
 * True if an If-None-Match / If-Match header value lists etag or is "*"
 * (RFC 9110 13.1: comma-separated, W/ prefix ignored). header may be NULL.
 */
bool etag_listed(const char *header, const char *etag);

/*
 * Answers 200 with a versioned resource (body taken over; its "version"
 * member makes the ETag "\"v<version>\""), or 304 when If-None-Match has it.
 */
void reply_resource(struct request *r, int status, json_t *body);

/*
 * For writes that need If-Match: fills *version from an ETag "v<n>".
 * Answers 428 when the header is missing, 412 when it cannot match, and
 * returns -1 then.
 */
int if_match_version(struct request *r, long *version) KQE_MUSTCHECK;

/* True if origin is listed exactly in KQE_CORS_ORIGINS. */
bool cors_origin_allowed(const struct config *cfg, const char *origin);

/* Parses the JSON text PostgreSQL built in (row, col) into a new value. */
json_t *pg_json(const PGresult *res, int row, int col);

/* Answers 404 for a resource id that does not exist (or is not the caller's). */
void reply_not_found(struct request *r);

#endif
