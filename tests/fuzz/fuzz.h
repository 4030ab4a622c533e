/*
 * fuzz.h — what the libFuzzer targets in tests/fuzz share: the entry point's
 * prototype, input as C strings, a request body read the way kqe-api reads
 * one (services/api/http.c request_json), and the checks every error list
 * must pass. A broken invariant aborts, so libFuzzer keeps the input as a
 * crash. docs/testing.md "Fuzzing" says how to run and reproduce.
 */
#ifndef KQE_FUZZ_H
#define KQE_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kqe/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Says what broke and aborts: the input becomes a crash reproducer. */
#define FUZZ_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(                                                                   \
			    stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input as a new NUL-terminated string (cut at an embedded NUL, as C code would see it). */
static inline char *
fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Splits the input at its first '\n' into two new strings (the second "" if
 * there is none). Targets that take two values (header and media type,
 * token and URI) read them so; a seed is two lines.
 */
static inline void
fuzz_split(const uint8_t *data, size_t size, char **first, char **second)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl != NULL ? (size_t)(nl - data) : size;
	*first = fuzz_string(data, n);
	*second = nl != NULL ? fuzz_string(nl + 1, size - n - 1) : fuzz_string(data, 0);
}

/* kqe-api's default KQE_JSON_MAX_DEPTH (common/src/config.c). */
#define FUZZ_JSON_MAX_DEPTH 16

/*
 * The body as request_json() hands it to a handler: JSON with duplicate keys
 * refused, nesting at most FUZZ_JSON_MAX_DEPTH deep, an object. NULL where
 * kqe-api answers 400 or 422 before any handler runs.
 */
static inline json_t *
fuzz_body_json(const uint8_t *data, size_t size)
{
	json_error_t err;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
	if (body == NULL)
		return NULL;
	if (json_depth(body, FUZZ_JSON_MAX_DEPTH + 1) > FUZZ_JSON_MAX_DEPTH ||
	    !json_is_object(body)) {
		json_decref(body);
		return NULL;
	}
	return body;
}

/*
 * Every entry of an error list is {"pointer"|"parameter": text, "code":
 * text, "message": text}, and a pointer is "" or starts with prefix + "/"
 * (RFC 6901). from: the entries before it were there already.
 */
static inline void
fuzz_check_errors(const json_t *errors, size_t from, const char *prefix)
{
	FUZZ_ASSERT(json_is_array(errors));
	for (size_t i = from; i < json_array_size(errors); i++) {
		const json_t *e = json_array_get(errors, i);
		FUZZ_ASSERT(json_is_object(e));
		FUZZ_ASSERT(json_is_string(json_object_get(e, "code")));
		FUZZ_ASSERT(json_is_string(json_object_get(e, "message")));
		const char *ptr = json_string_value(json_object_get(e, "pointer"));
		const char *param = json_string_value(json_object_get(e, "parameter"));
		FUZZ_ASSERT((ptr != NULL) != (param != NULL));
		/* At the document itself (prefix: a batch item that is not an object) or under it.
		 */
		if (ptr != NULL && ptr[0] != '\0')
			FUZZ_ASSERT(strncmp(ptr, prefix, strlen(prefix)) == 0 &&
			            (ptr[strlen(prefix)] == '/' || ptr[strlen(prefix)] == '\0'));
	}
}

#endif
