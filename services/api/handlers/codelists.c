/*
 * GET /v1/codelists and /v1/codelists/{id}: the German and English labels of
 * every code (PRODUCT.md "Labels"), so frontends never hard-code them.
 *
 * The lists are static data, so the answer depends on nothing but the build:
 * its ETag is a hash of the body, equal on every instance, and a client that
 * sends it back in If-None-Match gets 304 without a body.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/problem.h"

#define ETAG_HEX 16

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

/* Writes the quoted strong ETag of body ("\"" + 16 hex + "\"") into out. */
static void
etag_of(const char *body, size_t len, char out[ETAG_HEX + 3])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, mdlen, hex);
	out[0] = '"';
	memcpy(out + 1, hex, ETAG_HEX);
	out[ETAG_HEX + 1] = '"';
	out[ETAG_HEX + 2] = '\0';
}

/* Answers 200 with body (taken over) and its ETag, or 304 if the client has it already. */
static void
reply_cacheable(struct request *r, json_t *body)
{
	char etag[ETAG_HEX + 3];
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len = strlen(text);

	json_decref(body);
	etag_of(text, len, etag);
	reply_header(r, "ETag", etag);
	if (etag_listed(
	        evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match"),
	        etag))
		reply_bytes(r, 304, "application/json; charset=utf-8", "", 0);
	else
		reply_bytes(r, 200, "application/json; charset=utf-8", text, len);
	free(text);
}

void
codelists_list(struct request *r)
{
	static const char *const allowed[] = { "list", NULL };
	json_t *errors = json_array();

	query_parse(r, allowed, errors);
	const char *id = query_get(r, "list");
	const struct codelist *only = codelist_find(id);
	if (id != NULL && only == NULL)
		error_at_parameter(errors, "list", "enum", "is not a known code list");
	if (reply_query_errors(r, errors) != 0)
		return;

	json_t *items = json_array();
	for (size_t i = 0; i < codelists_count; i++)
		if (only == NULL || codelists[i] == only)
			json_array_append_new(items, codelist_json(codelists[i]));
	reply_cacheable(r, json_pack("{s:o}", "items", items));
}

void
codelists_get(struct request *r)
{
	static const char *const allowed[] = { NULL };
	if (query_accept(r, allowed) != 0)
		return;
	const struct codelist *list = codelist_find(r->params[0]);
	if (list == NULL) {
		reply_not_found(r);
		return;
	}
	reply_cacheable(r, codelist_json(list));
}
