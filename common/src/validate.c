#include "kqe/validate.h"

#include <curl/curl.h>

#include <stdio.h>
#include <string.h>

#include "kqe/problem.h"
#include "kqe/util.h"

bool
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		int n;
		unsigned min;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, min = 0x10000, c &= 0x07;
		} else {
			return false;
		}
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (p[i] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

bool
slug_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* RFC 3339 date-time in UTC or with offset, or a date YYYY-MM-DD. */
bool
timestamp_valid(const char *s)
{
	char date[11];
	if (s == NULL || strlen(s) < 10)
		return false;
	memcpy(date, s, 10);
	date[10] = '\0';
	if (!date_valid(date))
		return false;
	if (s[10] == '\0')
		return true;
	/* "THH:MM:SS", every character checked: PostgreSQL must never be the one to refuse. */
	static const char shape[] = "T00:00:00";
	for (int k = 0; k < 9; k++) {
		char c = s[10 + k];
		if (shape[k] == '0' ? (c < '0' || c > '9') : c != shape[k])
			return false;
	}
	int h = (s[11] - '0') * 10 + s[12] - '0', mi = (s[14] - '0') * 10 + s[15] - '0';
	int se = (s[17] - '0') * 10 + s[18] - '0';
	if (h > 23 || mi > 59 || se > 59)
		return false;
	const char *rest = s + 19;
	if (*rest == '.') {
		rest++;
		size_t digits = strspn(rest, "0123456789");
		if (digits == 0 || digits > 6)
			return false;
		rest += digits;
	}
	if (strcmp(rest, "Z") == 0)
		return true;
	if ((rest[0] != '+' && rest[0] != '-') || strlen(rest) != 6 || rest[3] != ':')
		return false;
	for (int k = 1; k < 6; k++)
		if (k != 3 && (rest[k] < '0' || rest[k] > '9'))
			return false;
	return (rest[1] - '0') * 10 + rest[2] - '0' <= 14 && rest[4] <= '5';
}

size_t
utf8_length(const char *s, size_t bytes)
{
	size_t n = 0;
	for (size_t i = 0; i < bytes; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

int
json_depth(const json_t *v, int limit)
{
	int deepest = 0;
	if (limit < 0)
		return 0;
	if (json_is_object(v)) {
		const char *k;
		const json_t *child;
		json_object_foreach((json_t *)v, k, child)
		{
			int d = json_depth(child, limit - 1);
			if (d > deepest)
				deepest = d;
			if (deepest >= limit)
				break;
		}
		return deepest + 1;
	}
	if (json_is_array(v)) {
		size_t i;
		const json_t *child;
		json_array_foreach(v, i, child)
		{
			int d = json_depth(child, limit - 1);
			if (d > deepest)
				deepest = d;
			if (deepest >= limit)
				break;
		}
		return deepest + 1;
	}
	return 0;
}

int
month_parse(const char *s)
{
	int y, m, n = 0;
	if (strlen(s) != 7 || sscanf(s, "%4d-%2d%n", &y, &m, &n) != 2 || n != 7 || s[4] != '-' ||
	    s[0] < '0' || s[0] > '9' || s[5] < '0' || s[5] > '9' || y < 1900 || y > 2100 || m < 1 ||
	    m > 12)
		return -1;
	return y * 12 + m - 1;
}

bool
date_valid(const char *s)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d, n = 0;
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || s[8] < '0' || s[8] > '9' ||
	    sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10)
		return false;
	char month[8];
	memcpy(month, s, 7);
	month[7] = '\0';
	if (month_parse(month) < 0 || d < 1)
		return false;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= days[m - 1] + (m == 2 && leap);
}

static const char *
type_name(enum field_type t)
{
	switch (t) {
	case FIELD_STRING:
	case FIELD_ENUM:
	case FIELD_UUID:
	case FIELD_DATE:
	case FIELD_MONTH:
		return "string";
	case FIELD_INTEGER:
		return "integer";
	case FIELD_NUMBER:
		return "number";
	case FIELD_BOOLEAN:
		return "boolean";
	case FIELD_OBJECT:
	case FIELD_RATINGS:
	case FIELD_MAP:
		return "object";
	case FIELD_CODES:
	case FIELD_LIST:
	case FIELD_FLAGS:
		return "array";
	case FIELD_TIMESTAMP:
		return "string";
	}
	return "value";
}

static int
type_ok(const json_t *v, enum field_type t)
{
	switch (t) {
	case FIELD_STRING:
	case FIELD_ENUM:
	case FIELD_UUID:
	case FIELD_DATE:
	case FIELD_MONTH:
	case FIELD_TIMESTAMP:
		return json_is_string(v);
	case FIELD_INTEGER:
		return json_is_integer(v);
	case FIELD_NUMBER:
		return json_is_number(v);
	case FIELD_BOOLEAN:
		return json_is_boolean(v);
	case FIELD_OBJECT:
	case FIELD_RATINGS:
	case FIELD_MAP:
		return json_is_object(v);
	case FIELD_CODES:
	case FIELD_LIST:
	case FIELD_FLAGS:
		return json_is_array(v);
	}
	return 0;
}

static int
in_list(const char *const *values, const char *s)
{
	for (const char *const *c = values; *c; c++)
		if (strcmp(*c, s) == 0)
			return 1;
	return 0;
}

static void
enum_message(const char *const *values, char *msg, size_t size)
{
	size_t n = (size_t)snprintf(msg, size, "must be one of:");
	for (const char *const *c = values; *c && n < size; c++)
		n += (size_t)snprintf(msg + n, size - n, " %s", *c);
}

/* The item count of array v against f->min/f->max (0: unbounded); false after reporting. */
static bool
count_ok(
    const json_t *v, const struct field_spec *f, const char *ptr, const char *noun, json_t *errors)
{
	long long n = (long long)json_array_size(v);
	if ((f->min && n < f->min) || (f->max && n > f->max)) {
		char msg[160];
		snprintf(msg, sizeof(msg), "must %s %lld to %lld %s",
		    strcmp(noun, "codes") == 0 ? "list" : "hold", f->min, f->max, noun);
		error_at_pointer(errors, ptr, "length", msg);
		return false;
	}
	return true;
}

/* An array of distinct codes: every bad item is reported at its own pointer. */
static size_t
validate_codes(const json_t *v, const struct field_spec *f, const char *ptr, json_t *errors)
{
	char msg[400], item[300];
	size_t bad = 0, i;
	const json_t *e;

	if (!count_ok(v, f, ptr, "codes", errors))
		return 1;
	json_array_foreach(v, i, e)
	{
		snprintf(item, sizeof(item), "%s/%zu", ptr, i);
		if (!json_is_string(e)) {
			error_at_pointer(errors, item, "type", "must be a string");
			bad++;
			continue;
		}
		if (f->values == NULL && !slug_id_valid(json_string_value(e))) {
			error_at_pointer(errors, item, "format", "is not an id");
			bad++;
			continue;
		}
		if (f->values != NULL && !in_list(f->values, json_string_value(e))) {
			enum_message(f->values, msg, sizeof(msg));
			error_at_pointer(errors, item, "enum", msg);
			bad++;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_array_get(v, j), e)) {
				error_at_pointer(errors, item, "duplicate", "is listed twice");
				bad++;
				break;
			}
	}
	return bad;
}

/* An object keyed by codes, each value an integer in [min, max]. */
static size_t
validate_ratings(const json_t *v, const struct field_spec *f, const char *ptr, json_t *errors)
{
	char msg[160], item[272];
	size_t bad = 0;
	const char *key;
	const json_t *e;
	json_object_foreach((json_t *)v, key, e)
	{
		snprintf(item, sizeof(item), "%s", ptr);
		pointer_append(item, sizeof(item), key);
		if (!in_list(f->values, key)) {
			error_at_pointer(errors, item, "unknown_field", "is not a known code");
			bad++;
		} else if (!json_is_integer(e)) {
			error_at_pointer(errors, item, "type", "must be an integer");
			bad++;
		} else if (json_integer_value(e) < f->min || json_integer_value(e) > f->max) {
			snprintf(msg, sizeof(msg), "must be from %lld to %lld", f->min, f->max);
			error_at_pointer(errors, item, "range", msg);
			bad++;
		}
	}
	return bad;
}

/* An array of objects, each against f->fields. */
static size_t
validate_list(
    const json_t *v, const struct field_spec *f, const char *ptr, bool creating, json_t *errors)
{
	char item[300];
	size_t bad = 0, i;
	const json_t *e;
	if (!count_ok(v, f, ptr, "items", errors))
		return 1;
	json_array_foreach(v, i, e)
	{
		snprintf(item, sizeof(item), "%s/%zu", ptr, i);
		bad += validate_fields(e, f->fields, f->nfields, item, creating, errors);
	}
	return bad;
}

/* An array of booleans. */
static size_t
validate_flags(const json_t *v, const struct field_spec *f, const char *ptr, json_t *errors)
{
	char item[300];
	size_t bad = 0, i;
	const json_t *e;
	if (!count_ok(v, f, ptr, "items", errors))
		return 1;
	json_array_foreach(v, i, e)
	{
		if (!json_is_boolean(e)) {
			snprintf(item, sizeof(item), "%s/%zu", ptr, i);
			error_at_pointer(errors, item, "type", "must be a boolean");
			bad++;
		}
	}
	return bad;
}

/* An object keyed by ids, each value a boolean or a string of 1 to f->max characters. */
static size_t
validate_map(const json_t *v, const struct field_spec *f, const char *ptr, json_t *errors)
{
	char msg[160], item[300];
	size_t bad = 0;
	const char *key;
	const json_t *e;
	json_object_foreach((json_t *)v, key, e)
	{
		snprintf(item, sizeof(item), "%s", ptr);
		pointer_append(item, sizeof(item), key);
		if (!slug_id_valid(key)) {
			error_at_pointer(errors, item, "unknown_field", "is not an id");
			bad++;
		} else if (json_is_string(e)) {
			size_t len = utf8_length(json_string_value(e), json_string_length(e));
			if (f->max && (long long)len > f->max) {
				snprintf(msg, sizeof(msg), "length must be at most %lld characters",
				    f->max);
				error_at_pointer(errors, item, "length", msg);
				bad++;
			}
		} else if (!json_is_boolean(e)) {
			error_at_pointer(errors, item, "type", "must be a boolean or a string");
			bad++;
		}
	}
	return bad;
}

static size_t
validate_value(
    const json_t *v, const struct field_spec *f, const char *ptr, bool creating, json_t *errors)
{
	char msg[160];

	if (json_is_null(v)) {
		if (f->nullable)
			return 0;
		snprintf(msg, sizeof(msg), "must not be null");
		error_at_pointer(errors, ptr, "type", msg);
		return 1;
	}
	if (!type_ok(v, f->type)) {
		snprintf(msg, sizeof(msg), "must be a%s %s",
		    f->type == FIELD_INTEGER || f->type == FIELD_OBJECT ||
		            f->type == FIELD_RATINGS || f->type == FIELD_CODES ||
		            f->type == FIELD_LIST || f->type == FIELD_MAP || f->type == FIELD_FLAGS
		        ? "n"
		        : "",
		    type_name(f->type));
		error_at_pointer(errors, ptr, "type", msg);
		return 1;
	}
	switch (f->type) {
	case FIELD_STRING: {
		size_t len = utf8_length(json_string_value(v), json_string_length(v));
		if ((f->min && (long long)len < f->min) || (f->max && (long long)len > f->max)) {
			snprintf(msg, sizeof(msg), "length must be %lld to %lld characters", f->min,
			    f->max);
			error_at_pointer(errors, ptr, "length", msg);
			return 1;
		}
		break;
	}
	case FIELD_INTEGER: {
		json_int_t n = json_integer_value(v);
		if ((f->min || f->max) && (n < f->min || n > f->max)) {
			snprintf(msg, sizeof(msg), "must be from %lld to %lld", f->min, f->max);
			error_at_pointer(errors, ptr, "range", msg);
			return 1;
		}
		break;
	}
	case FIELD_ENUM:
		if (!in_list(f->values, json_string_value(v))) {
			char list[400];
			enum_message(f->values, list, sizeof(list));
			error_at_pointer(errors, ptr, "enum", list);
			return 1;
		}
		break;
	case FIELD_NUMBER: {
		double x = json_number_value(v);
		if ((f->min || f->max) && (x < (double)f->min || x > (double)f->max)) {
			snprintf(msg, sizeof(msg), "must be from %lld to %lld", f->min, f->max);
			error_at_pointer(errors, ptr, "range", msg);
			return 1;
		}
		break;
	}
	case FIELD_UUID:
		if (!uuid_valid(json_string_value(v))) {
			error_at_pointer(errors, ptr, "format", "must be a UUID");
			return 1;
		}
		break;
	case FIELD_DATE:
		if (!date_valid(json_string_value(v))) {
			error_at_pointer(errors, ptr, "format", "must be a date YYYY-MM-DD");
			return 1;
		}
		break;
	case FIELD_MONTH:
		if (month_parse(json_string_value(v)) < 0) {
			error_at_pointer(errors, ptr, "format", "must be a month YYYY-MM");
			return 1;
		}
		break;
	case FIELD_TIMESTAMP: {
		const char *t = json_string_value(v);
		if (!timestamp_valid(t) || strlen(t) < 20) {
			error_at_pointer(errors, ptr, "format",
			    "must be a date-time (RFC 3339) with Z or an offset");
			return 1;
		}
		break;
	}
	case FIELD_LIST:
		return validate_list(v, f, ptr, creating, errors);
	case FIELD_FLAGS:
		return validate_flags(v, f, ptr, errors);
	case FIELD_MAP:
		return validate_map(v, f, ptr, errors);
	case FIELD_CODES:
		return validate_codes(v, f, ptr, errors);
	case FIELD_RATINGS:
		return validate_ratings(v, f, ptr, errors);
	case FIELD_OBJECT:
		return validate_fields(v, f->fields, f->nfields, ptr, creating, errors);
	case FIELD_BOOLEAN:
		break;
	}
	if (f->check != NULL) {
		const char *why = f->check(v);
		if (why != NULL) {
			error_at_pointer(errors, ptr, "format", why);
			return 1;
		}
	}
	return 0;
}

size_t
validate_object(const json_t *obj, const struct field_spec *specs, size_t nspecs,
    const char *pointer, json_t *errors)
{
	return validate_fields(obj, specs, nspecs, pointer, true, errors);
}

size_t
validate_fields(const json_t *obj, const struct field_spec *specs, size_t nspecs,
    const char *pointer, bool creating, json_t *errors)
{
	char ptr[256];
	size_t bad = 0;

	if (!json_is_object(obj)) {
		error_at_pointer(errors, pointer, "type", "must be an object");
		return 1;
	}
	for (size_t i = 0; i < nspecs; i++) {
		const struct field_spec *f = &specs[i];
		const json_t *v = json_object_get(obj, f->name);
		snprintf(ptr, sizeof(ptr), "%s", pointer);
		pointer_append(ptr, sizeof(ptr), f->name);
		if (v == NULL) {
			if (f->required && (creating ? !f->update_only : !f->immutable)) {
				error_at_pointer(errors, ptr, "required", "is required");
				bad++;
			}
			continue;
		}
		if (creating && f->update_only) {
			error_at_pointer(
			    errors, ptr, "forbidden", "can only be set on an existing record");
			bad++;
			continue;
		}
		bad += validate_value(v, f, ptr, creating, errors);
	}
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;
		for (i = 0; i < nspecs; i++)
			if (strcmp(specs[i].name, key) == 0)
				break;
		if (i < nspecs)
			continue;
		snprintf(ptr, sizeof(ptr), "%s", pointer);
		pointer_append(ptr, sizeof(ptr), key);
		error_at_pointer(errors, ptr, "unknown_field", "is not a known field");
		bad++;
	}
	return bad;
}

const char *
email_address_check(const json_t *v)
{
	const char *s = json_string_value(v);
	const char *at = s != NULL ? strchr(s, '@') : NULL;
	if (at == NULL || at == s || strchr(at + 1, '@') != NULL || strlen(s) > 254)
		return "must be an e-mail address";
	const char *dot = strrchr(at + 1, '.');
	if (dot == NULL || dot == at + 1 || dot[1] == '\0')
		return "must be an e-mail address";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= ' ' || *c == 0x7f || *c == ',' || *c == ';' || *c == '<' || *c == '>')
			return "must be an e-mail address";
	return NULL;
}

const char *
slug_id_check(const json_t *v)
{
	const char *s = json_string_value(v);
	return s != NULL && slug_id_valid(s)
	           ? NULL
	           : "must be an id: lower-case letters, digits and '-', at most 64";
}

const char *
https_url_check(const json_t *v)
{
	const char *s = json_string_value(v);
	const char *bad = "must be an https URL";
	if (s == NULL || strncmp(s, "https://", 8) != 0) /* as written, lower case */
		return bad;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c <= ' ' || *c == 0x7f)
			return bad;
	CURLU *u = curl_url();
	char *host = NULL;
	bool ok = u != NULL && curl_url_set(u, CURLUPART_URL, s, 0) == CURLUE_OK &&
	          curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0';
	curl_free(host);
	curl_url_cleanup(u);
	return ok ? NULL : bad;
}

const char *
file_name_check(const json_t *v)
{
	const char *s = json_string_value(v);
	if (s == NULL || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return "must be a file name";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < ' ' || *c == 0x7f || *c == '/' || *c == '\\' || *c == '"')
			return "must be a file name, without a path, quotes or control characters";
	return NULL;
}
