#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "kqe/cursor.h"
#include "kqe/log.h"
#include "kqe/problem.h"
#include "kqe/validate.h"

json_t *
request_own(struct request *r, json_t *v)
{
	if (r->owned == NULL)
		r->owned = json_array();
	json_array_append_new(r->owned, v);
	return v;
}

const char *
request_own_string(struct request *r, char *s)
{
	if (s == NULL)
		return NULL;
	json_t *v = request_own(r, json_string(s));
	free(s);
	return json_string_value(v);
}

void
reply_header(struct request *r, const char *name, const char *value)
{
	/* The request's own list: a pool thread may be answering (pool.h). */
	evhttp_add_header(&r->resp.headers, name, value);
}

void
reply_bytes(struct request *r, int status, const char *content_type, const char *data, size_t len)
{
	if (r->resp.status != 0) {
		/* A handler bug: answering twice would corrupt the connection. */
		log_error(r->id, "second reply suppressed", json_pack("{s:i}", "status", status));
		return;
	}
	r->resp.status = status;
	r->resp.content_type = content_type;
	r->resp.body = evbuffer_new();
	evbuffer_add(r->resp.body, data, len);
}

static void
pg_clear_cb(const void *data, size_t len, void *res)
{
	(void)data;
	(void)len;
	PQclear(res);
}

void
reply_pg_bytes(
    struct request *r, int status, const char *content_type, PGresult *res, int row, int col)
{
	bool first = r->resp.status == 0;
	reply_bytes(r, status, content_type, NULL, 0);
	if (!first || evbuffer_add_reference(r->resp.body, PQgetvalue(res, row, col),
	                  (size_t)PQgetlength(res, row, col), pg_clear_cb, res) != 0)
		PQclear(res);
}

char *
json_answer_text(const json_t *body)
{
	/* 15 significant digits: 18.2 stays 18.2 instead of 18.199999999999999. */
	return json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
}

static void
reply_json_typed(struct request *r, int status, const char *type, json_t *body)
{
	char *text = json_answer_text(body);
	json_decref(body);
	reply_bytes(r, status, type, text, strlen(text));
	free(text);
}

void
reply_json(struct request *r, int status, json_t *body)
{
	reply_json_typed(r, status, MEDIA_JSON, body);
}

void
reply_resource(struct request *r, int status, json_t *body)
{
	char etag[32];
	snprintf(etag, sizeof(etag), "\"v%lld\"",
	    (long long)json_integer_value(json_object_get(body, "version")));
	reply_header(r, "ETag", etag);
	reply_json(r, status, body);
}

void
reply_problem_with(struct request *r, int status, const char *detail, json_t *members)
{
	json_t *p = problem_new(status, detail, r->id);
	if (members != NULL)
		json_object_update_missing(p, members);
	json_decref(members);
	reply_json_typed(r, status, MEDIA_PROBLEM, p);
}

void
reply_problem(struct request *r, int status, const char *detail, json_t *errors)
{
	reply_problem_with(
	    r, status, detail, errors != NULL ? json_pack("{s:o}", "errors", errors) : NULL);
}

void
reply_not_found(struct request *r)
{
	reply_problem(r, 404, "No such resource.", NULL);
}

void
reply_db_error(struct request *r)
{
	if (db_error_kind(r->db) == DB_UNAVAILABLE) {
		reply_header(r, "Retry-After", "5");
		reply_problem(r, 503, "The database is unavailable; try again shortly.", NULL);
		return;
	}
	log_error(
	    r->id, "database failure", json_pack("{s:s}", "sqlstate", db_error_sqlstate(r->db)));
	reply_problem(r, 500, "An internal error occurred; it has been logged.", NULL);
}

const char *
query_get(const struct request *r, const char *name)
{
	if (!r->query_parsed)
		return NULL;
	return evhttp_find_header(&r->query, name);
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
		enum json_error_code ec = json_error_code(&err);
		const char *code = ec == json_error_invalid_utf8    ? "invalid_utf8"
		                   : ec == json_error_duplicate_key ? "duplicate_key"
		                                                    : "syntax";
		reply_problem(r, 400, "The body is not valid JSON.",
		    json_pack("[{s:s,s:s,s:I,s:I}]", "code", code, "message", err.text, "line",
		        (json_int_t)err.line, "column", (json_int_t)err.column));
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

int
request_upload_check(struct request *r)
{
	size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(r->req));
	long max = r->worker->cfg->material_max_bytes;
	char detail[128];
	if ((long)len > max) {
		snprintf(detail, sizeof(detail), "The file is larger than %ld bytes.", max);
		reply_header(r, "Connection", "close");
		reply_problem(r, 413, detail, NULL);
		return -1;
	}
	if (len == 0) {
		reply_problem(r, 400, "The body holds no file: send its bytes.", NULL);
		return -1;
	}
	return 0;
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

/* The q of one media range's parameters ("; q=0.5"); 1 when absent. */
static double
media_q(const char *params, size_t len)
{
	for (const char *p = params; p < params + len; p++) {
		if ((*p == 'q' || *p == 'Q') && p[1] == '=' &&
		    (p == params || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t'))
			return strtod(p + 2, NULL);
	}
	return 1.0;
}

bool
accept_allows(const char *accept, const char *media)
{
	if (accept == NULL || strcmp(media, "*/*") == 0) /* a file answers as what it is */
		return true;
	size_t type_len = strcspn(media, "/");
	int best = -1; /* specificity of the best match: 0 * / *, 1 type/ *, 2 exact */
	double q = 0;
	for (const char *p = accept; *p;) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ","), range = strcspn(p, ";,");
		while (range > 0 && (p[range - 1] == ' ' || p[range - 1] == '\t'))
			range--;
		int spec = -1;
		if (range == 3 && strncmp(p, "*/*", 3) == 0)
			spec = 0;
		else if (range == type_len + 2 && strncasecmp(p, media, type_len + 1) == 0 &&
		         p[type_len + 1] == '*')
			spec = 1;
		else if (range == strlen(media) && strncasecmp(p, media, range) == 0)
			spec = 2;
		if (spec > best) {
			best = spec;
			q = media_q(p + range, len - range);
		}
		p += len;
	}
	return best >= 0 && q > 0;
}

static bool
is_token(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return false;
	return true;
}

const char *
http_framing_problem(const struct evkeyvalq *headers, int http_minor)
{
	const char *length = NULL, *coding = NULL;
	int authorizations = 0;
	bool host = false;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, headers, next)
	{
		if (!is_token(kv->key))
			return "A header name is malformed.";
		if (strcasecmp(kv->key, "Content-Length") == 0) {
			if (length != NULL && strcmp(length, kv->value) != 0)
				return "The request has two different Content-Length headers.";
			length = kv->value;
		} else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			if (coding != NULL || strcasecmp(kv->value, "chunked") != 0)
				return "Only Transfer-Encoding: chunked is understood.";
			coding = kv->value;
		} else if (strcasecmp(kv->key, "Authorization") == 0) {
			authorizations++;
		} else if (strcasecmp(kv->key, "Host") == 0) {
			host = true;
		}
	}
	if (length != NULL && coding != NULL)
		return "A request may not have both Content-Length and Transfer-Encoding.";
	if (authorizations > 1)
		return "The request has more than one Authorization header.";
	if (http_minor == 1 && !host)
		return "An HTTP/1.1 request needs a Host header.";
	return NULL;
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
		/* The object whole too, as JSON, for a column that names it (audit details). */
		if (prefix[0]) {
			char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
			json_object_set_new(row, prefix, json_string(text));
			free(text);
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
csv_cell(struct evbuffer *out, const json_t *v, bool excel)
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
	/*
	 * Spreadsheets run text cells starting with these as formulas (CSV
	 * injection), whichever dialect they were asked for: a plain RFC 4180
	 * file is opened in a spreadsheet just as often. Numbers stay numbers.
	 */
	bool formula = json_is_string(v) && text[0] != '\0' && strchr("=+-@\t\r", text[0]) != NULL;
	bool quote = formula || strpbrk(text, excel ? ";\"\r\n" : ",\"\r\n") != NULL;
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

void
csv_write(struct evbuffer *out, const json_t *items, const char *const *columns, bool excel)
{
	const char *sep = excel ? ";" : ",";
	json_t *name = json_string("");

	if (excel)
		evbuffer_add(out, "\xef\xbb\xbf", 3); /* BOM: Excel then reads UTF-8 */
	for (size_t c = 0; columns[c] != NULL; c++) {
		json_string_set(name, columns[c]);
		if (c > 0)
			evbuffer_add(out, sep, 1);
		csv_cell(out, name, excel);
	}
	evbuffer_add(out, "\r\n", 2);
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item)
	{
		json_t *row = json_object();
		flatten("", item, row);
		for (size_t c = 0; columns[c] != NULL; c++) {
			if (c > 0)
				evbuffer_add(out, sep, 1);
			csv_cell(out, json_object_get(row, columns[c]), excel);
		}
		evbuffer_add(out, "\r\n", 2);
		json_decref(row);
	}
	json_decref(name);
}

/* items (taken over) as CSV with exactly these columns, in this order. */
static void
reply_csv(struct request *r, json_t *items, const char *const *columns, const char *filename)
{
	struct evbuffer *out = evbuffer_new();
	csv_write(out, items, columns, r->excel);
	char *disposition = xasprintf("attachment; filename=\"%s\"", filename);
	reply_header(r, "Content-Disposition", disposition);
	free(disposition);
	size_t len = evbuffer_get_length(out);
	reply_bytes(r, 200, "text/csv; charset=utf-8; header=present",
	    (const char *)evbuffer_pullup(out, -1), len);
	evbuffer_free(out);
	json_decref(items);
}

void
reply_list(struct request *r, json_t *items, json_t *next_keys, const char *const *columns,
    const char *filename)
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
	if (r->route->flags & ROUTE_CSV) {
		free(cursor);
		reply_csv(r, items, columns, filename);
		return;
	}
	json_t *body = json_pack("{s:o}", "items", items);
	json_object_set_new(body, "next_cursor", cursor ? json_string(cursor) : json_null());
	free(cursor);
	reply_json(r, 200, body);
}

/* The strong ETag of a body that never changes for its URL: 16 hex digits of its SHA-256. */
static void
content_etag(struct evbuffer *body, char out[19])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65];
	EVP_Digest(
	    evbuffer_pullup(body, -1), evbuffer_get_length(body), md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), hex);
	snprintf(out, 19, "\"%.16s\"", hex);
}

/* RFC 9110 15.4.5: a 304 carries the validator and caching headers, no representation. */
static void
not_modified(struct request *r)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	static const char *const drop[] = { "Content-Type", "Content-Disposition",
		"Content-Security-Policy", "X-Content-Type-Options", "Link" };
	for (size_t i = 0; i < ARRAY_LEN(drop); i++)
		evhttp_remove_header(out, drop[i]);
	evbuffer_drain(r->resp.body, evbuffer_get_length(r->resp.body));
	r->resp.status = 304;
	r->resp.content_type = NULL;
}

void
http_send(struct request *r)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);
	bool read = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &r->resp.headers, next)
	evhttp_add_header(out, kv->key, kv->value);
	evhttp_clear_headers(&r->resp.headers);
	if (r->resp.body == NULL)
		r->resp.body = evbuffer_new();
	if (r->replay_status != 0 && r->resp.status == 200) {
		r->resp.status = r->replay_status;
		evhttp_add_header(out, "Idempotency-Replayed", "true");
	}
	if (read && r->resp.status == 200) {
		char hashed[19];
		const char *etag = evhttp_find_header(out, "ETag");
		if (etag == NULL && r->route != NULL && (r->route->flags & ROUTE_ETAG)) {
			content_etag(r->resp.body, hashed);
			evhttp_add_header(out, "ETag", hashed);
			etag = hashed;
		}
		if (etag != NULL && etag_listed(evhttp_find_header(in, "If-None-Match"), etag))
			not_modified(r);
	}
	evhttp_remove_header(out, "Content-Type");
	if (r->resp.content_type != NULL)
		evhttp_add_header(out, "Content-Type", r->resp.content_type);
	evhttp_add_header(out, "X-Request-Id", r->id);
	/* Answers may hold personal data: no cache (browser, proxy) may keep them. */
	evhttp_add_header(out, "Cache-Control", "no-store");
	const char *origin = evhttp_find_header(in, "Origin");
	if (origin != NULL && cors_origin_allowed(r->worker->cfg, origin)) {
		evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(out, "Access-Control-Expose-Headers",
		    "Location, Link, ETag, X-Request-Id, Retry-After, WWW-Authenticate, "
		    "Idempotency-Replayed, Content-Disposition, RateLimit-Limit, "
		    "RateLimit-Remaining, RateLimit-Reset");
		evhttp_add_header(out, "Vary", "Origin");
	}
	if (r->worker->draining)
		evhttp_add_header(out, "Connection", "close");
	if (cmd == EVHTTP_REQ_HEAD && r->resp.status != 304) {
		/* The GET's headers, its length included, and no body (RFC 9110 9.3.2). */
		char length[24];
		snprintf(length, sizeof(length), "%zu", evbuffer_get_length(r->resp.body));
		evhttp_remove_header(out, "Content-Length");
		evhttp_add_header(out, "Content-Length", length);
		evbuffer_drain(r->resp.body, evbuffer_get_length(r->resp.body));
	}
	evhttp_send_reply(r->req, r->resp.status, http_reason(r->resp.status), r->resp.body);
}
