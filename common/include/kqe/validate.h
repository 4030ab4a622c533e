/*
 * validate — declarative field specs for JSON request bodies. One table per
 * resource describes its fields; validate_object() checks types, required
 * fields, code lists, ranges, string lengths and rejects unknown fields,
 * appending one {pointer, code, message} entry per problem (never stopping at
 * the first). Cross-field rules live next to the resource and append to the
 * same error array.
 *
 * Error codes: required, unknown_field, type, enum, range, length, format,
 * duplicate (a code listed twice in an array), forbidden (a field this
 * operation may not set).
 */
#ifndef KQE_VALIDATE_H
#define KQE_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum field_type {
	FIELD_STRING, /* min/max: length in characters (code points) */
	FIELD_INTEGER, /* min/max: value */
	FIELD_NUMBER, /* integer or decimal; min/max: value (whole numbers) */
	FIELD_BOOLEAN,
	FIELD_ENUM, /* a string from values[] */
	FIELD_OBJECT, /* nested fields[] */
	FIELD_UUID, /* a UUID string */
	FIELD_DATE, /* "YYYY-MM-DD", a real calendar date */
	FIELD_MONTH, /* "YYYY-MM" */
	FIELD_CODES, /* array of distinct strings from values[] (NULL: ids, as slug_id_valid);
	                min/max: item count */
	FIELD_RATINGS, /* object: keys from values[], each an integer from min to max */
	FIELD_TIMESTAMP, /* an RFC 3339 date-time with Z or an offset (not a bare date) */
	FIELD_LIST, /* array of objects, each checked against fields[]; min/max: item count */
	FIELD_FLAGS, /* array of booleans; min/max: item count */
	FIELD_MAP, /* object keyed by ids (slug_id_valid), each value a boolean or a string
	              of at most max characters; the domain checks keys and values against
	              its own (which keys, which type, whether empty) */
};

struct field_spec {
	const char *name;
	enum field_type type;
	bool required;
	bool nullable;
	/*
	 * Set when the record is created and never changed: an update may leave
	 * it out or repeat the current value (the caller compares; see
	 * services/api/pipeline.c), so it is not required when updating.
	 */
	bool immutable;
	/* A state only an update sets (e.g. locked): refused, and not required, when creating. */
	bool update_only;
	long long min, max; /* 0, 0 = unbounded */
	const char *const *values; /* FIELD_ENUM, _CODES, _RATINGS: NULL-terminated codes */
	const struct field_spec *fields; /* FIELD_OBJECT */
	size_t nfields;
	/* Optional extra check of a well-typed value: returns NULL if fine, else a message. */
	const char *(*check)(const json_t *value);
};

/* Shorthands for the specs most documents are made of. */
#define FIELD_SPEC_CODE(n, codes)                                                                  \
	{                                                                                          \
		.name = (n), .type = FIELD_ENUM, .required = true, .values = (codes)               \
	}
#define FIELD_SPEC_FLAG(n)                                                                         \
	{                                                                                          \
		.name = (n), .type = FIELD_BOOLEAN, .nullable = true                               \
	}
#define FIELD_SPEC_OBJECT(n, specs, req)                                                           \
	{                                                                                          \
		.name = (n), .type = FIELD_OBJECT, .required = (req), .nullable = !(req),          \
		.fields = (specs), .nfields = ARRAY_LEN(specs)                                     \
	}

/*
 * Validates obj against specs. pointer is the JSON pointer of obj ("" for the
 * document root). Appends errors to `errors` (a JSON array). Returns the
 * number of errors appended. validate_object checks a document being
 * created; validate_fields with creating false checks the whole document of
 * an update, where immutable fields are not required and update_only fields
 * are allowed (error code "forbidden" for an update_only field on create).
 */
size_t validate_object(const json_t *obj, const struct field_spec *specs, size_t nspecs,
    const char *pointer, json_t *errors);
size_t validate_fields(const json_t *obj, const struct field_spec *specs, size_t nspecs,
    const char *pointer, bool creating, json_t *errors);

/* Depth of nested arrays/objects (a scalar is 0). Stops counting past limit. */
int json_depth(const json_t *v, int limit);

/* True if s is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
bool utf8_valid(const char *s);

/* True if s has the shape of an office or institute id: ^[a-z0-9][a-z0-9-]{0,63}$. */
bool slug_id_valid(const char *s);

/* Parses "YYYY-MM" (year 1900-2100) into a month count year*12+month-1; -1 if invalid. */
int month_parse(const char *s);

/* True if s is "YYYY-MM-DD" and a real calendar date (years 1900-2100). */
bool date_valid(const char *s);

/* RFC 3339 date-time (Z or offset, up to 6 fraction digits) or a date YYYY-MM-DD. */
bool timestamp_valid(const char *s);

/*
 * A check (field_spec.check) for an e-mail address as a person types it: local@domain.tld,
 * at most 254 characters, no spaces, controls or the characters that separate addresses.
 */
const char *email_address_check(const json_t *value);

/* A check for a member naming an office, a provider, …: slug_id_valid(), as a field check. */
const char *slug_id_check(const json_t *value);

/* A check for a link people follow: an absolute https URL, as libcurl's URL parser reads it. */
const char *https_url_check(const json_t *value);

/*
 * A check for the name a downloaded file is saved under: no path (/ or \), no
 * quotes or control characters, not "." or "..".
 */
const char *file_name_check(const json_t *value);

/* Number of Unicode code points in a valid UTF-8 string. */
size_t utf8_length(const char *s, size_t bytes);

#endif
