/*
 * GET /v1/codelists and /v1/codelists/{id}: the German and English labels of
 * every code (docs/domain.md), so frontends never hard-code them.
 *
 * The lists are static data, so the answer depends on nothing but the build:
 * the routes are ROUTE_ETAG, so the ETag is a hash of the body, equal on every
 * instance, and a client that sends it back in If-None-Match gets 304.
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/problem.h"

/* Returns a new {"id", "title": {"de", "en"}, "codes": [{"code", "label": {"de", "en"}}]}. */
static json_t *
codelist_json(const struct codelist *list)
{
	json_t *codes = json_array();
	for (size_t i = 0; i < list->count; i++) {
		const struct code *c = &list->codes[i];
		json_array_append_new(codes, json_pack("{s:s,s:{s:s,s:s}}", "code", c->code,
		                                 "label", "de", c->label_de, "en", c->label_en));
	}
	return json_pack("{s:s,s:{s:s,s:s},s:o}", "id", list->id, "title", "de", list->title_de,
	    "en", list->title_en, "codes", codes);
}

void
codelists_list(struct request *r)
{
	const struct codelist *only = codelist_find(query_get(r, "list"));
	json_t *items = json_array();
	for (size_t i = 0; i < codelists_count; i++)
		if (only == NULL || codelists[i] == only)
			json_array_append_new(items, codelist_json(codelists[i]));
	reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void
codelists_get(struct request *r)
{
	const struct codelist *list = codelist_find(r->params[0]);
	if (list == NULL) {
		reply_not_found(r);
		return;
	}
	reply_json(r, 200, codelist_json(list));
}
