/*
 * Query strings (services/api/pipeline.c query_parse, the part of
 * query_check that needs no request). Input: a route of router.c's table
 * as "METHOD /pattern" (anything else: the route its first byte picks), a
 * newline, then the query as it follows '?'. So every declared parameter
 * kind is reached, lists' limit and cursor, CSV's dialect and writes'
 * dry_run. evhttp_parse_query_str decodes it; each value is checked by its
 * kind.
 */
#include <sys/queue.h>

#include "fuzz.h"
#include "http.h"
#include "pipeline.h"
#include "router.h"

static const struct route *
route_named(const char *line, unsigned char fallback)
{
	for (int i = 0; i < routes_count; i++) {
		const struct route *r = &routes[i];
		const char *m = r->method == EVHTTP_REQ_GET     ? "GET"
		                : r->method == EVHTTP_REQ_POST  ? "POST"
		                : r->method == EVHTTP_REQ_PUT   ? "PUT"
		                : r->method == EVHTTP_REQ_PATCH ? "PATCH"
		                                                : "";
		size_t n = strlen(m);
		if (strncmp(line, m, n) == 0 && line[n] == ' ' && strcmp(line + n + 1, r->pattern) == 0)
			return r;
	}
	return &routes[fallback % routes_count];
}

/* The route's own parameters and those its flags imply (pipeline.c query_declared). */
static bool
declared(const struct route *route, const char *name)
{
	for (const struct query_param *q = route->query; q->name != NULL; q++)
		if (strcmp(q->name, name) == 0)
			return true;
	return ((route->flags & ROUTE_LIST) &&
	           (strcmp(name, "limit") == 0 || strcmp(name, "cursor") == 0)) ||
	       ((route->flags & ROUTE_CSV) && strcmp(name, "dialect") == 0) ||
	       ((route->flags & ROUTE_DRY_RUN) && strcmp(name, "dry_run") == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	char *line, *text;
	fuzz_split(data, size, &line, &text);
	const struct route *route = route_named(line, data[0]);
	free(line);
	struct evkeyvalq query;
	long limit;
	json_t *after = NULL, *errors = json_array();

	query_parse(route, text, &query, &limit, &after, errors);
	fuzz_check_errors(errors, 0, "");
	FUZZ_ASSERT(limit >= 1 && limit <= LIST_MAX_LIMIT);
	if (after != NULL) {
		FUZZ_ASSERT(route->flags & ROUTE_LIST);
		FUZZ_ASSERT(json_array_size(after) == (size_t)route->resource->nkeys);
	}
	if (json_array_size(errors) == 0) {
		/* Accepted: every parameter is declared and given once. */
		struct evkeyval *kv;
		TAILQ_FOREACH(kv, &query, next)
		{
			FUZZ_ASSERT(declared(route, kv->key));
			FUZZ_ASSERT(evhttp_find_header(&query, kv->key) == kv->value);
		}
	}
	evhttp_clear_headers(&query);
	json_decref(after);
	json_decref(errors);
	free(text);
	return 0;
}
