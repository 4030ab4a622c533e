/*
 * http — the edge of kqe-api: reading a request (query parameters, JSON
 * body, If-Match) and building its answer (JSON, problem+json, CSV, lists
 * with keyset cursors). The reply functions only record the answer in
 * r->resp; the dispatcher (router.c) adds what every answer carries and
 * sends it exactly once with http_send().
 *
 * Ownership: every reply function that takes a json_t takes it over.
 */
#ifndef KQE_API_HTTP_H
#define KQE_API_HTTP_H

#include "server.h"

#define MEDIA_JSON "application/json; charset=utf-8"
#define MEDIA_PROBLEM "application/problem+json; charset=utf-8"

/* Adds an output header. */
void reply_header(struct request *r, const char *name, const char *value);

/* Answers with the given bytes and content type (a static string). */
void reply_bytes(
    struct request *r, int status, const char *content_type, const char *data, size_t len);

/* body as the JSON text every answer uses (malloc'd): what a replay sends again. */
char *json_answer_text(const json_t *body);

/* Answers with body (taken over) as application/json. */
void reply_json(struct request *r, int status, json_t *body);

/*
 * Answers with a versioned resource (body taken over): its "version" member
 * makes the ETag "v<version>", which If-Match and If-None-Match compare.
 */
void reply_resource(struct request *r, int status, json_t *body);

/*
 * Answers RFC 9457 problem+json with detail; errors (an array of
 * {pointer|parameter, code, message}, or NULL) is taken over.
 */
void reply_problem(struct request *r, int status, const char *detail, json_t *errors);

/* reply_problem with extension members (an object, taken over), e.g. existing_id. */
void reply_problem_with(struct request *r, int status, const char *detail, json_t *members);

/* 404: not there, or not the caller's — the same answer, so nothing leaks. */
void reply_not_found(struct request *r);

/* Maps a failed database call to 503 (unavailable, with Retry-After) or 500 (logged). */
void reply_db_error(struct request *r);

/* Value of a checked query parameter, or NULL if not given. */
const char *query_get(const struct request *r, const char *name);

/*
 * Reads the body as a JSON object: 415 unless Content-Type is JSON, 413 over
 * the size limit, 400 for malformed JSON / invalid UTF-8 / too deep nesting,
 * 422 if it is not an object. Returns a new reference, or NULL after answering.
 */
json_t *request_json(struct request *r);

/*
 * The body of an upload (ROUTE_UPLOAD): 413 over KQE_MATERIAL_MAX_BYTES, 400
 * when empty. 0, or -1 after answering. What the bytes are is the
 * resource's to check (filetype.h).
 */
int request_upload_check(struct request *r);

/*
 * Answers status with the bytes of row, col of res (a binary result), which
 * the answer takes over: sent from libpq's own memory, never copied.
 */
void reply_pg_bytes(
    struct request *r, int status, const char *content_type, PGresult *res, int row, int col);

/*
 * For writes that need If-Match: fills *version from an ETag "v<n>".
 * Answers 428 when the header is missing, 412 when it cannot match, and
 * returns -1 then.
 */
int if_match_version(struct request *r, long *version) KQE_MUSTCHECK;

/*
 * True if an If-None-Match / If-Match header value lists etag or is "*"
 * (RFC 9110 13.1: comma-separated, W/ prefix ignored). header may be NULL.
 */
bool etag_listed(const char *header, const char *etag);

/* True if origin is listed exactly in KQE_CORS_ORIGINS. */
bool cors_origin_allowed(const struct config *cfg, const char *origin);

/*
 * True if an Accept header (NULL: anything) accepts media ("type/subtype"):
 * the most specific matching range decides, and q=0 refuses (RFC 9110 12.5.1).
 */
bool accept_allows(const char *accept, const char *media);

/*
 * Why the framing of a request cannot be trusted, or NULL (RFC 9112 3.2,
 * 6.1, 6.3): a header name that is not a token (e.g. "Transfer-Encoding :"),
 * two Content-Length values that differ, Transfer-Encoding with anything but
 * exactly "chunked" or together with Content-Length, two Authorization
 * headers, or an HTTP/1.1 request (http_minor 1) without Host. A proxy in
 * front might read such a request differently than kqe (request smuggling),
 * so it is answered 400 and the connection closed. Pure; static strings.
 */
const char *http_framing_problem(const struct evkeyvalq *headers, int http_minor);

/* Parses the JSON text PostgreSQL built in (row, col) into a new value. */
json_t *pg_json(const PGresult *res, int row, int col);

#define LIST_DEFAULT_LIMIT 50
#define LIST_MAX_LIMIT 500

/*
 * Answers one page of a list: 200 {"items": items, "next_cursor": …}, or on
 * a CSV route the items as CSV with exactly the given columns (flattened
 * member names such as "child.sex"; arrays joined with "|"), so that pages
 * can be concatenated. next_keys (taken over, may be NULL) is the sort key
 * of the last item when more rows exist: then a Link rel="next" header
 * repeats the request's path and query with the new cursor.
 */
void reply_list(struct request *r, json_t *items, json_t *next_keys, const char *const *columns,
    const char *filename);

/*
 * What reply_list writes on a CSV route: a header row of columns, then one
 * row per item of items (borrowed) with exactly those columns, CRLF after
 * each. excel: a BOM, ";" between cells, decimal commas, and text a
 * spreadsheet would run as a formula quoted with a leading "'".
 */
void csv_write(struct evbuffer *out, const json_t *items, const char *const *columns, bool excel);

/*
 * The last step of every request: when the answer to a GET or HEAD is 200
 * and has an ETag (or the route is ROUTE_ETAG: then a hash of the body),
 * If-None-Match turns it into a bare 304; then the headers every answer
 * carries are added and it is sent (HEAD: the GET's headers with its
 * Content-Length, no body).
 */
void http_send(struct request *r);

#endif
