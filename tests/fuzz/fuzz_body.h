/*
 * fuzz_body.h — one request body through a writable resource the way the
 * pipeline checks it (services/api/pipeline.c): as a create (POST), as the
 * whole document of an update (PUT), and as a JSON merge patch (PATCH) over
 * a fixed current document; a body with "items" also as a batch
 * (POST /v1/case-analyses:batch checks each item as a create under
 * /items/N). References and the domain steps need the database and are left
 * out; everything before them runs: field specs, cross-field rules over the
 * valid part, the nulls of a merge patch.
 */
#ifndef KQE_FUZZ_BODY_H
#define KQE_FUZZ_BODY_H

#include "fuzz.h"
#include "handlers.h"

/* validate_fields() reports exactly as many entries as it counts, and pipeline_check_document
 * keeps them. */
static inline void
fuzz_check_document(const struct resource *res, const json_t *doc, bool creating,
    const char *prefix, json_t *errors)
{
	size_t before = json_array_size(errors);
	json_t *alone = json_array();
	size_t counted =
	    validate_fields(doc, res->fields, res->nfields, prefix, creating, alone);
	FUZZ_ASSERT(json_array_size(alone) == counted);
	json_decref(alone);
	size_t total = pipeline_check_document(res, doc, creating, prefix, errors);
	FUZZ_ASSERT(total == json_array_size(errors));
	FUZZ_ASSERT(total >= before + counted);
	fuzz_check_errors(errors, before, prefix);
}

static inline void
fuzz_body(const struct resource *res, const char *current_text, const uint8_t *data, size_t size)
{
	json_t *body = fuzz_body_json(data, size);
	if (body == NULL)
		return;

	json_t *errors = json_array();
	fuzz_check_document(res, body, true, "", errors); /* POST */
	json_decref(errors);

	errors = json_array();
	fuzz_check_document(res, body, false, "", errors); /* PUT */
	json_decref(errors);

	json_t *current = json_loads(current_text, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(current != NULL);
	errors = json_array();
	json_t *doc = pipeline_merge_patch(res, current, body, errors); /* PATCH */
	FUZZ_ASSERT(json_is_object(doc));
	fuzz_check_errors(errors, 0, "");
	fuzz_check_document(res, doc, false, "", errors);
	json_decref(doc);
	json_decref(errors);
	json_decref(current);

	const json_t *items = json_object_get(body, "items");
	size_t i;
	const json_t *item;
	json_array_foreach(items, i, item)
	{
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "/items/%zu", i);
		errors = json_array();
		fuzz_check_document(res, item, true, prefix, errors);
		json_decref(errors);
	}
	json_decref(body);
}

#endif
