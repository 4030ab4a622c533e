#include "kqe/validate.h"

#include <stdio.h>
#include <string.h>

#include "kqe/problem.h"

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

static const char *
type_name(enum field_type t)
{
	switch (t) {
	case FIELD_STRING:
	case FIELD_ENUM:
		return "string";
	case FIELD_INTEGER:
		return "integer";
	case FIELD_BOOLEAN:
		return "boolean";
	case FIELD_OBJECT:
		return "object";
	}
	return "value";
}

static int
type_ok(const json_t *v, enum field_type t)
{
	switch (t) {
	case FIELD_STRING:
	case FIELD_ENUM:
		return json_is_string(v);
	case FIELD_INTEGER:
		return json_is_integer(v);
	case FIELD_BOOLEAN:
		return json_is_boolean(v);
	case FIELD_OBJECT:
		return json_is_object(v);
	}
	return 0;
}

static size_t
validate_value(const json_t *v, const struct field_spec *f, const char *ptr, json_t *errors)
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
		    f->type == FIELD_INTEGER || f->type == FIELD_OBJECT ? "n" : "",
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
	case FIELD_ENUM: {
		const char *s = json_string_value(v);
		for (const char *const *c = f->values; *c; c++)
			if (strcmp(*c, s) == 0)
				goto enum_ok;
		size_t n = (size_t)snprintf(msg, sizeof(msg), "must be one of:");
		for (const char *const *c = f->values; *c && n < sizeof(msg); c++)
			n += (size_t)snprintf(msg + n, sizeof(msg) - n, " %s", *c);
		error_at_pointer(errors, ptr, "enum", msg);
		return 1;
	enum_ok:
		break;
	}
	case FIELD_OBJECT:
		return validate_object(v, f->fields, f->nfields, ptr, errors);
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
			if (f->required) {
				error_at_pointer(errors, ptr, "required", "is required");
				bad++;
			}
			continue;
		}
		bad += validate_value(v, f, ptr, errors);
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
