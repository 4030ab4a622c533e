#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>

#include "handlers.h"
#include "idempotency.h"
#include "http.h"
#include "kqe/log.h"

const struct route routes[] = {
	{ "/healthz", EVHTTP_REQ_GET, health_live, PERM_PUBLIC },
	{ "/readyz", EVHTTP_REQ_GET, health_ready, PERM_PUBLIC },
	{ "/metrics", EVHTTP_REQ_GET, health_metrics, PERM_PUBLIC },
	{ "/openapi.json", EVHTTP_REQ_GET, spec_openapi, PERM_PUBLIC },
	{ "/docs", EVHTTP_REQ_GET, spec_docs, PERM_PUBLIC },
	{ "/v1/offices", EVHTTP_REQ_GET, offices_list, PERM_OFFICES_READ },
	{ "/v1/offices/{}", EVHTTP_REQ_GET, offices_get, PERM_OFFICES_READ },
	{ "/v1/offices/{}/benchmark", EVHTTP_REQ_GET, benchmark_get, PERM_BENCHMARK_READ },
	{ "/v1/reports", EVHTTP_REQ_POST, reports_create, PERM_REPORTS_CREATE },
	{ "/v1/reports", EVHTTP_REQ_GET, reports_list, PERM_REPORTS_READ },
	{ "/v1/reports/{}.html", EVHTTP_REQ_GET, reports_html, PERM_REPORTS_READ },
	{ "/v1/reports/{}", EVHTTP_REQ_GET, reports_get, PERM_REPORTS_READ },
	{ "/v1/ministry-batches", EVHTTP_REQ_POST, ministry_batches_create, PERM_BATCHES_CREATE },
	{ "/v1/jobs/{}", EVHTTP_REQ_GET, jobs_get, PERM_JOBS_READ },
	{ "/v1/procedures", EVHTTP_REQ_GET, procedures_list, PERM_PROCEDURES_READ },
	{ "/v1/procedures", EVHTTP_REQ_POST, procedures_create, PERM_PROCEDURES_WRITE },
	{ "/v1/procedures/{}", EVHTTP_REQ_GET, procedures_get, PERM_PROCEDURES_READ },
	{ "/v1/procedures/{}", EVHTTP_REQ_PATCH, procedures_patch, PERM_PROCEDURES_WRITE },
	{ "/v1/audit", EVHTTP_REQ_GET, audit_list, PERM_AUDIT_READ },
	{ "/v1/codelists", EVHTTP_REQ_GET, codelists_list, PERM_CODELISTS_READ },
	{ "/v1/codelists/{}", EVHTTP_REQ_GET, codelists_get, PERM_CODELISTS_READ },
	{ "/v1/case-analyses", EVHTTP_REQ_GET, case_analyses_list, PERM_CASES_READ },
	{ "/v1/case-analyses", EVHTTP_REQ_POST, case_analyses_create, PERM_CASES_WRITE },
	{ "/v1/case-analyses:batch", EVHTTP_REQ_POST, case_analyses_batch, PERM_CASES_WRITE },
	{ "/v1/case-analyses/{}", EVHTTP_REQ_GET, case_analyses_get, PERM_CASES_READ },
	{ "/v1/case-analyses/{}", EVHTTP_REQ_PATCH, case_analyses_patch, PERM_CASES_WRITE },
	{ "/v1/structure-surveys", EVHTTP_REQ_GET, structure_surveys_list, PERM_CASES_READ },
	{ "/v1/structure-surveys", EVHTTP_REQ_POST, structure_surveys_create, PERM_CASES_WRITE },
	{ "/v1/structure-surveys/{}", EVHTTP_REQ_GET, structure_surveys_get, PERM_CASES_READ },
	{ "/v1/structure-surveys/{}", EVHTTP_REQ_PUT, structure_surveys_put, PERM_CASES_WRITE },
	{ "/v1/topics", EVHTTP_REQ_GET, topics_list, PERM_CASES_READ },
	{ "/v1/topics", EVHTTP_REQ_POST, topics_create, PERM_CASES_WRITE },
	{ "/v1/topics/{}", EVHTTP_REQ_GET, topics_get, PERM_CASES_READ },
	{ "/v1/topics/{}", EVHTTP_REQ_PATCH, topics_patch, PERM_CASES_WRITE },
};
const int routes_count = (int)ARRAY_LEN(routes);

static const struct {
	enum evhttp_cmd_type cmd;
	const char *name;
} methods[] = {
	{ EVHTTP_REQ_GET, "GET" },
	{ EVHTTP_REQ_HEAD, "HEAD" },
	{ EVHTTP_REQ_POST, "POST" },
	{ EVHTTP_REQ_PUT, "PUT" },
	{ EVHTTP_REQ_PATCH, "PATCH" },
	{ EVHTTP_REQ_DELETE, "DELETE" },
	{ EVHTTP_REQ_OPTIONS, "OPTIONS" },
};

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	for (size_t i = 0; i < ARRAY_LEN(methods); i++)
		if (methods[i].cmd == cmd)
			return methods[i].name;
	return "OTHER";
}

/*
 * Matches one pattern against a path; fills params for "{}" segments. A "{}"
 * followed by a literal in the same segment ("{}.html") takes the segment
 * up to that suffix; routes with a suffix come before the bare "{}" route.
 */
static int
match(const char *pattern, const char *path, char **params, int *nparams)
{
	int n = 0;
	const char *p = pattern, *s = path;

	while (*p && *s) {
		if (p[0] == '{' && p[1] == '}') {
			size_t len = strcspn(s, "/");
			size_t suffix = strcspn(p + 2, "/");
			if (suffix > 0) {
				if (len <= suffix || strncmp(s + len - suffix, p + 2, suffix) != 0)
					goto fail;
				len -= suffix;
			}
			if (len == 0 || n == ROUTE_MAX_PARAMS)
				goto fail;
			params[n++] = xstrndup(s, len);
			s += len;
			p += 2;
		} else if (*p == *s) {
			p++;
			s++;
		} else {
			goto fail;
		}
	}
	if (*p || *s)
		goto fail;
	*nparams = n;
	return 1;
fail:
	while (n > 0)
		free(params[--n]);
	return 0;
}

int
router_match(
    enum evhttp_cmd_type method, const char *path, char **params, int *nparams, unsigned *allow)
{
	int path_known = 0;
	char *scratch[ROUTE_MAX_PARAMS];
	int nscratch;

	*allow = 0;
	*nparams = 0;
	/* HEAD is answered like GET; evhttp leaves the body out. */
	if (method == EVHTTP_REQ_HEAD)
		method = EVHTTP_REQ_GET;
	for (int i = 0; i < routes_count; i++) {
		if (routes[i].method == method && match(routes[i].pattern, path, params, nparams))
			return i;
	}
	for (int i = 0; i < routes_count; i++) {
		if (match(routes[i].pattern, path, scratch, &nscratch)) {
			path_known = 1;
			*allow |= (unsigned)routes[i].method;
			while (nscratch > 0)
				free(scratch[--nscratch]);
		}
	}
	return path_known ? -2 : -1;
}

static void
set_request_id(struct request *r)
{
	const char *given =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "X-Request-Id");
	if (given != NULL) {
		size_t n = strlen(given);
		int ok = n >= 1 && n < sizeof(r->id);
		for (size_t i = 0; ok && i < n; i++) {
			char c = given[i];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
		}
		if (ok) {
			memcpy(r->id, given, n + 1);
			return;
		}
	}
	unsigned char raw[12];
	random_bytes(raw, sizeof(raw));
	hex_encode(raw, sizeof(raw), r->id);
}

static size_t
header_bytes(struct evhttp_request *req)
{
	struct evkeyval *kv;
	size_t n = 0;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	n += strlen(kv->key) + strlen(kv->value) + 4;
	return n;
}

static void
allow_list(unsigned allow, char *list, size_t size)
{
	list[0] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(methods); i++) {
		if (!(allow & (unsigned)methods[i].cmd))
			continue;
		if (*list)
			strncat(list, ", ", size - strlen(list) - 1);
		strncat(list, methods[i].name, size - strlen(list) - 1);
		if (methods[i].cmd == EVHTTP_REQ_GET)
			strncat(list, ", HEAD", size - strlen(list) - 1);
	}
}

/*
 * OPTIONS on a known path: a CORS preflight (Origin + Access-Control-Request-Method)
 * from an allowed origin gets the CORS grant; any other OPTIONS just the Allow list.
 * Answered before authentication: browsers send no credentials with a preflight.
 */
static void
answer_options(struct request *r, unsigned allow)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *origin = evhttp_find_header(in, "Origin");
	const char *wanted = evhttp_find_header(in, "Access-Control-Request-Method");
	char list[64];

	allow_list(allow, list, sizeof(list));
	reply_header(r, "Allow", list);
	if (origin != NULL && wanted != NULL) {
		if (!cors_origin_allowed(r->worker->cfg, origin)) {
			reply_problem(r, 403, "This origin is not allowed to use the API.", NULL);
			return;
		}
		reply_header(r, "Access-Control-Allow-Methods", list);
		reply_header(r, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, "
		    "X-Request-Id");
		reply_header(r, "Access-Control-Max-Age", "600");
	}
	reply_bytes(r, 204, "application/json; charset=utf-8", "", 0);
}

static void
reply_not_allowed(struct request *r, unsigned allow)
{
	char list[64], detail[96];
	allow_list(allow, list, sizeof(list));
	reply_header(r, "Allow", list);
	snprintf(detail, sizeof(detail), "This resource allows %s.", list);
	reply_problem(r, 405, detail, NULL);
}

void
router_dispatch_cb(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	struct request r = { .req = req, .worker = w, .route_index = -1, .start_ns = now_ns() };
	unsigned allow;

	r.method = method_name(evhttp_request_get_command(req));
	set_request_id(&r);
	if (w->draining) {
		reply_header(&r, "Retry-After", "1");
		reply_problem(&r, 503, "The server is shutting down.", NULL);
		return;
	}
	if ((long)header_bytes(req) > w->cfg->max_header_bytes) {
		reply_header(&r, "Connection", "close");
		reply_problem(&r, 431, "The request headers are too large.", NULL);
		return;
	}
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	size_t decoded_len = 0;
	char *decoded = evhttp_uridecode(path ? path : "/", 0, &decoded_len);
	if (decoded != NULL && strlen(decoded) != decoded_len) {
		/* %00 in the path: a NUL would cut the id short; no resource has one. */
		decoded[0] = '\0';
	}
	int idx =
	    router_match(evhttp_request_get_command(req), decoded, r.params, &r.nparams, &allow);
	free(decoded);
	if (idx == -1) {
		reply_problem(&r, 404, "There is no resource at this path.", NULL);
		goto out;
	}
	if (idx == -2 && evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
		answer_options(&r, allow);
		goto out;
	}
	if (idx == -2) {
		reply_not_allowed(&r, allow);
		goto out;
	}
	r.route = &routes[idx];
	r.route_index = idx;
	if (auth_identify(&r) != 0)
		goto out;
	if (!auth_allows(&r.principal, r.route->permission)) {
		reply_problem(&r, 403, "Your role may not do this.", NULL);
		goto out;
	}
	if (idempotency_begin(&r) != 0)
		goto out;
	r.route->handler(&r); /* its answer records the Idempotency-Key outcome (http.c) */
	if (!r.replied) {
		log_error(
		    r.id, "handler did not answer", json_pack("{s:s}", "route", r.route->pattern));
		reply_problem(&r, 500, "An internal error occurred; it has been logged.", NULL);
	}
out:
	for (int i = 0; i < r.nparams; i++)
		free(r.params[i]);
	if (r.query_parsed)
		evhttp_clear_headers(&r.query);
}
