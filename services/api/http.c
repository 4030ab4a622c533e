#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>

#include "kqe/cursor.h"
#include "kqe/log.h"
#include "kqe/problem.h"
#include "kqe/validate.h"
#include "idempotency.h"
#include "metrics.h"
#include "router.h"

void
reply_header(struct request *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

static void
reply_buffer(struct request *r, int status, const char *content_type, struct evbuffer *body)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	size_t bytes = evbuffer_get_length(body);

	if (r->replied) {
		/* A handler bug: answering twice would corrupt the connection. */
		log_error(r->id, "second reply suppressed", json_pack("{s:i}", "status", status));
		return;
	}
	r->replied = true;
	if (r->replay_status != 0 && status == 200) {
		status = r->replay_status;
		evhttp_add_header(out, "Idempotency-Replayed", "true");
	}
	r->status = status;
	evhttp_remove_header(out, "Content-Type");
	evhttp_add_header(out, "Content-Type", content_type);
	evhttp_add_header(out, "X-Request-Id", r->id);
	/* Answers may hold personal data: no cache (browser, proxy) may keep them. */
	evhttp_add_header(out, "Cache-Control", "no-store");
	const char *origin = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Origin");
	if (origin != NULL && cors_origin_allowed(r->worker->cfg, origin)) {
		evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(out, "Access-Control-Expose-Headers",
		    "Location, Link, ETag, X-Request-Id, Retry-After, WWW-Authenticate");
		evhttp_add_header(out, "Vary", "Origin");
	}
	if (r->worker->draining)
		evhttp_add_header(out, "Connection", "close");
	/*
	 * Record the Idempotency-Key outcome before the answer leaves: a client
	 * retrying at once must find it recorded, not still reserved.
	 */
	if (r->idempotency_key != NULL)
		idempotency_finish(r,
		    r->idempotency_keep_body ? (const char *)evbuffer_pullup(body, -1) : NULL,
		    bytes);
	evhttp_send_reply(r->req, status, http_reason(status), body);

	uint64_t dur = now_ns() - r->start_ns;
	metrics_observe(r->route_index, status, dur);
	log_info(r->id, "request",
	    json_pack("{s:s,s:s,s:i,s:f,s:I}", "method", r->method, "route",
	        r->route ? r->route->pattern : "unmatched", "status", status, "duration_ms",
	        (double)dur / 1e6, "bytes", (json_int_t)bytes));
}

void
reply_bytes(struct request *r, int status, const char *content_type, const char *data, size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	evbuffer_add(buf, data, len);
	reply_buffer(r, status, content_type, buf);
	evbuffer_free(buf);
}

static void
reply_json_typed(struct request *r, int status, const char *type, json_t *body)
{
	/* 15 significant digits: 18.2 stays 18.2 instead of 18.199999999999999. */
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	json_decref(body);
	reply_bytes(r, status, type, text, strlen(text));
	free(text);
}

void
reply_json(struct request *r, int status, json_t *body)
{
	reply_json_typed(r, status, "application/json; charset=utf-8", body);
}

void
reply_problem(struct request *r, int status, const char *detail, json_t *errors)
{
	json_t *p = problem_new(status, detail, r->id);
	if (errors != NULL)
		json_object_set_new(p, "errors", errors);
	reply_json_typed(r, status, "application/problem+json; charset=utf-8", p);
}

void
reply_db_error(struct request *r)
{
	if (db_error_kind(r->worker->db) == DB_UNAVAILABLE) {
		reply_header(r, "Retry-After", "5");
		reply_problem(r, 503, "The database is unavailable; try again shortly.", NULL);
		return;
	}
	log_error(r->id, "database failure",
	    json_pack("{s:s}", "sqlstate", db_error_sqlstate(r->worker->db)));
	reply_problem(r, 500, "An internal error occurred; it has been logged.", NULL);
}

void
query_parse(struct request *r, const char *const *allowed, json_t *errors)
{
	const char *q = r->query_override != NULL
	                    ? r->query_override
	                    : evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
	struct evkeyval *kv;

	TAILQ_INIT(&r->query);
	r->query_parsed = true;
	if (q != NULL && evhttp_parse_query_str(q, &r->query) != 0) {
		error_at_parameter(errors, "", "malformed", "the query string cannot be decoded");
		return;
	}
	TAILQ_FOREACH(kv, &r->query, next)
	{
		const char *const *a;
		for (a = allowed; *a != NULL; a++)
			if (strcmp(*a, kv->key) == 0)
				break;
		if (*a == NULL) {
			error_at_parameter(errors, kv->key, "unknown_parameter",
			    "is not a parameter of this route");
			continue;
		}
		for (struct evkeyval *prev = TAILQ_FIRST(&r->query); prev != kv;
		     prev = TAILQ_NEXT(prev, next))
			if (strcmp(prev->key, kv->key) == 0) {
				error_at_parameter(errors, kv->key, "duplicate_parameter",
				    "may be given only once");
				break;
			}
	}
}

int
reply_query_errors(struct request *r, json_t *errors)
{
	if (json_array_size(errors) == 0) {
		json_decref(errors);
		return 0;
	}
	reply_problem(r, 400, "The query has invalid parameters.", errors);
	return -1;
}

int
query_accept(struct request *r, const char *const *allowed)
{
	json_t *errors = json_array();
	query_parse(r, allowed, errors);
	return reply_query_errors(r, errors);
}

const char *
query_get(const struct request *r, const char *name)
{
	if (!r->query_parsed)
		return NULL;
	return evhttp_find_header(&r->query, name);
}

const char *
nullable(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

static int
is_json_type(const char *ct)
{
	if (ct == NULL)
		return 0;
	size_t n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	/* application/merge-patch+json (RFC 7386) is JSON too; PATCH bodies may say so. */
	if (!(n == strlen("application/json") && strncasecmp(ct, "application/json", n) == 0) &&
	    !(n == strlen("application/merge-patch+json") &&
	        strncasecmp(ct, "application/merge-patch+json", n) == 0))
		return 0;
	/* Only UTF-8 is accepted; a charset parameter, if any, must say so. */
	for (const char *p = ct + n; *p; p++) {
		if (strncasecmp(p, "charset=", 8) != 0)
			continue;
		p += 8;
		if (*p == '"')
			p++;
		return strncasecmp(p, "utf-8", 5) == 0;
	}
	return 1;
}

json_t *
request_json(struct request *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	const struct config *cfg = r->worker->cfg;
	char detail[128];

	if ((long)len > cfg->max_body_bytes) {
		snprintf(detail, sizeof(detail), "The body is larger than %ld bytes.",
		    cfg->max_body_bytes);
		reply_header(r, "Connection", "close");
		reply_problem(r, 413, detail, NULL);
		return NULL;
	}
	if (!is_json_type(
	        evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type"))) {
		reply_problem(r, 415, "Send the body as application/json (UTF-8).", NULL);
		return NULL;
	}
	json_error_t err;
	json_t *body =
	    json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &err);
	if (body == NULL) {
		json_t *errors = json_array();
		const char *code = json_error_code(&err) == json_error_invalid_utf8 ? "invalid_utf8"
		                   : json_error_code(&err) == json_error_duplicate_key
		                       ? "duplicate_key"
		                       : "syntax";
		json_array_append_new(
		    errors, json_pack("{s:s,s:s,s:I,s:I}", "code", code, "message", err.text,
		                "line", (json_int_t)err.line, "column", (json_int_t)err.column));
		reply_problem(r, 400, "The body is not valid JSON.", errors);
		return NULL;
	}
	if (json_depth(body, (int)cfg->json_max_depth + 1) > cfg->json_max_depth) {
		json_decref(body);
		snprintf(detail, sizeof(detail), "The body nests deeper than %ld levels.",
		    cfg->json_max_depth);
		reply_problem(r, 400, detail, NULL);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_t *errors = json_array();
		error_at_pointer(errors, "", "type", "must be an object");
		json_decref(body);
		reply_problem(r, 422, "The body must be a JSON object.", errors);
		return NULL;
	}
	return body;
}

void
list_params_parse(struct request *r, size_t nkeys, struct list_params *lp, json_t *errors)
{
	const char *limit = query_get(r, "limit");
	const char *cursor = query_get(r, "cursor");

	lp->limit = LIST_DEFAULT_LIMIT;
	lp->after = NULL;
	const char *format = query_get(r, "format");
	const char *dialect = query_get(r, "dialect");
	const char *accept = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Accept");
	int csv = format != NULL ? strcmp(format, "csv") == 0
	                         : accept != NULL && strncasecmp(accept, "text/csv", 8) == 0;
	if (format != NULL && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
		error_at_parameter(errors, "format", "enum", "must be json or csv");
	if (dialect != NULL && strcmp(dialect, "excel") != 0 && strcmp(dialect, "rfc4180") != 0)
		error_at_parameter(errors, "dialect", "enum", "must be rfc4180 or excel");
	else if (dialect != NULL && !csv)
		error_at_parameter(errors, "dialect", "forbidden", "applies to format=csv only");
	r->list_format = !csv                                               ? LIST_JSON
	                 : dialect != NULL && strcmp(dialect, "excel") == 0 ? LIST_CSV_EXCEL
	                                                                    : LIST_CSV;
	if (limit != NULL) {
		char *end;
		long n = strtol(limit, &end, 10);
		if (*limit == '\0' || *end != '\0' || n < 1 || n > LIST_MAX_LIMIT) {
			error_at_parameter(
			    errors, "limit", "range", "must be an integer from 1 to 500");
		} else {
			lp->limit = n;
		}
	}
	if (cursor != NULL) {
		lp->after = cursor_decode(cursor, nkeys);
		if (lp->after == NULL)
			error_at_parameter(
			    errors, "cursor", "invalid_cursor", "is not a cursor this list issued");
	}
}

void
list_params_free(struct list_params *lp)
{
	json_decref(lp->after);
	lp->after = NULL;
}

/* Flattens a value into "a.b" columns: objects by key, arrays joined with "|". */
static void
flatten(const char *prefix, const json_t *v, json_t *row)
{
	if (json_is_object(v)) {
		const char *k;
		json_t *child;
		json_object_foreach((json_t *)v, k, child)
		{
			char *name = prefix[0] ? xasprintf("%s.%s", prefix, k) : xstrdup(k);
			flatten(name, child, row);
			free(name);
		}
		return;
	}
	if (json_is_array(v)) {
		struct evbuffer *b = evbuffer_new();
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			char *t = json_is_string(e) ? xstrdup(json_string_value(e))
			                            : json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
			evbuffer_add_printf(b, "%s%s", i ? "|" : "", t);
			free(t);
		}
		evbuffer_add(b, "", 1);
		json_object_set_new(row, prefix, json_string((const char *)evbuffer_pullup(b, -1)));
		evbuffer_free(b);
		return;
	}
	json_object_set(row, prefix, (json_t *)v);
}

static void
csv_cell(struct evbuffer *out, const json_t *v, int excel)
{
	char buf[64];
	const char *text = "";

	if (json_is_string(v)) {
		text = json_string_value(v);
	} else if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		text = buf;
	} else if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
		if (excel) /* decimal comma for German spreadsheets */
			for (char *p = buf; *p; p++)
				if (*p == '.')
					*p = ',';
		text = buf;
	} else if (json_is_boolean(v)) {
		text = json_is_true(v) ? "true" : "false";
	}
	/* Spreadsheets run cells starting with these as formulas (CSV injection). */
	int formula =
	    excel && json_is_string(v) && strchr("=+-@\t\r", text[0]) != NULL && text[0] != '\0';
	int quote = formula || strpbrk(text, excel ? ";\"\r\n" : ",\"\r\n") != NULL;
	if (!quote) {
		evbuffer_add(out, text, strlen(text));
		return;
	}
	evbuffer_add(out, "\"", 1);
	if (formula)
		evbuffer_add(out, "'", 1);
	for (const char *p = text; *p; p++) {
		if (*p == '"')
			evbuffer_add(out, "\"", 1);
		evbuffer_add(out, p, 1);
	}
	evbuffer_add(out, "\"", 1);
}

/* items (taken over) as CSV: header from the union of columns in first-seen order. */
static void
reply_csv(struct request *r, json_t *items)
{
	int excel = r->list_format == LIST_CSV_EXCEL;
	const char *sep = excel ? ";" : ",";
	json_t *rows = json_array(), *columns = json_array(), *seen = json_object();
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item)
	{
		json_t *row = json_object();
		flatten("", item, row);
		const char *k;
		json_t *v;
		json_object_foreach(row, k, v) if (json_object_get(seen, k) == NULL)
		{
			json_object_set_new(seen, k, json_true());
			json_array_append_new(columns, json_string(k));
		}
		json_array_append_new(rows, row);
	}
	struct evbuffer *out = evbuffer_new();
	if (excel)
		evbuffer_add(out, "\xef\xbb\xbf", 3); /* BOM: Excel then reads UTF-8 */
	json_t *c;
	json_array_foreach(columns, i, c)
	{
		if (i)
			evbuffer_add(out, sep, 1);
		csv_cell(out, c, excel);
	}
	evbuffer_add(out, "\r\n", 2);
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		size_t j;
		json_array_foreach(columns, j, c)
		{
			if (j)
				evbuffer_add(out, sep, 1);
			csv_cell(out, json_object_get(row, json_string_value(c)), excel);
		}
		evbuffer_add(out, "\r\n", 2);
	}
	size_t len = evbuffer_get_length(out);
	reply_header(r, "Content-Disposition", "attachment; filename=\"export.csv\"");
	reply_bytes(r, 200, "text/csv; charset=utf-8; header=present",
	    (const char *)evbuffer_pullup(out, -1), len);
	evbuffer_free(out);
	json_decref(rows);
	json_decref(columns);
	json_decref(seen);
	json_decref(items);
}

void
reply_list(struct request *r, json_t *items, json_t *next_keys)
{
	char *cursor = NULL;
	if (next_keys != NULL) {
		cursor = cursor_encode(next_keys);
		json_decref(next_keys);

		/* Link: the same path and filters, with the new cursor. */
		struct evbuffer *link = evbuffer_new();
		struct evkeyval *kv;
		char sep = '?';
		evbuffer_add_printf(
		    link, "<%s", evhttp_uri_get_path(evhttp_request_get_evhttp_uri(r->req)));
		TAILQ_FOREACH(kv, &r->query, next)
		{
			if (strcmp(kv->key, "cursor") == 0)
				continue;
			char *v = evhttp_encode_uri(kv->value);
			evbuffer_add_printf(link, "%c%s=%s", sep, kv->key, v);
			free(v);
			sep = '&';
		}
		evbuffer_add_printf(link, "%ccursor=%s>; rel=\"next\"", sep, cursor);
		evbuffer_add(link, "", 1);
		reply_header(r, "Link", (const char *)evbuffer_pullup(link, -1));
		evbuffer_free(link);
	}
	if (r->list_format != LIST_JSON) {
		free(cursor);
		reply_csv(r, items);
		return;
	}
	json_t *body = json_object();
	json_object_set_new(body, "items", items);
	json_object_set_new(body, "next_cursor", cursor ? json_string(cursor) : json_null());
	free(cursor);
	reply_json(r, 200, body);
}

bool
etag_listed(const char *h, const char *etag)
{
	size_t etag_len = strlen(etag);
	if (h == NULL)
		return false;
	for (const char *p = h; *p;) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ",");
		size_t tail = len;
		while (tail > 0 && (p[tail - 1] == ' ' || p[tail - 1] == '\t'))
			tail--;
		const char *tag = p;
		if (tail >= 2 && strncmp(tag, "W/", 2) == 0) {
			tag += 2;
			tail -= 2;
		}
		if ((tail == 1 && tag[0] == '*') ||
		    (tail == etag_len && memcmp(tag, etag, tail) == 0))
			return true;
		p += len;
	}
	return false;
}

void
reply_resource(struct request *r, int status, json_t *body)
{
	char etag[32];
	snprintf(etag, sizeof(etag), "\"v%lld\"",
	    (long long)json_integer_value(json_object_get(body, "version")));
	reply_header(r, "ETag", etag);
	/* 304 only answers a read: a write has happened and must say so. */
	enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);
	if (status == 200 && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) &&
	    etag_listed(
	        evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match"),
	        etag)) {
		json_decref(body);
		reply_bytes(r, 304, "application/json; charset=utf-8", "", 0);
		return;
	}
	reply_json(r, status, body);
}

int
if_match_version(struct request *r, long *version)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-Match");
	if (h == NULL) {
		reply_problem(r, 428, "Send If-Match with the ETag of your last read.", NULL);
		return -1;
	}
	const char *p = h;
	if (strncmp(p, "W/", 2) == 0)
		p += 2;
	char *end;
	if (strncmp(p, "\"v", 2) != 0 || (*version = strtol(p + 2, &end, 10)) < 1 ||
	    strcmp(end, "\"") != 0) {
		reply_problem(r, 412, "If-Match does not match the resource's current ETag.", NULL);
		return -1;
	}
	return 0;
}

bool
cors_origin_allowed(const struct config *cfg, const char *origin)
{
	size_t n = strlen(origin);
	for (const char *p = cfg->cors_origins; *p;) {
		size_t len = strcspn(p, ",");
		while (len > 0 && *p == ' ')
			p++, len--;
		size_t tail = len;
		while (tail > 0 && p[tail - 1] == ' ')
			tail--;
		if (tail == n && tail > 0 && strncmp(p, origin, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

json_t *
pg_json(const PGresult *res, int row, int col)
{
	json_error_t err;
	json_t *v = json_loads(PQgetvalue(res, row, col), 0, &err);
	if (v == NULL) {
		log_error(NULL, "database returned invalid JSON", NULL);
		return json_null();
	}
	return v;
}

void
reply_not_found(struct request *r)
{
	reply_problem(r, 404, "No such resource.", NULL);
}
