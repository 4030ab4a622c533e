#include "kqe/problem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 409, "Conflict" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 415, "Unsupported Media Type" },
	{ 422, "Unprocessable Content" },
	{ 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 503, "Service Unavailable" },
};

const char *
http_reason(int status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

json_t *
problem_new(int status, const char *detail, const char *request_id)
{
	const char *title = http_reason(status);
	char type[96] = "https://kqe.nrw/problems/";
	size_t n = strlen(type);
	for (const char *p = title; *p && n + 1 < sizeof(type); p++)
		type[n++] = *p == ' ' ? '-' : (char)tolower((unsigned char)*p);
	type[n] = '\0';

	json_t *p = json_object();
	json_object_set_new(p, "type", json_string(type));
	json_object_set_new(p, "title", json_string(title));
	json_object_set_new(p, "status", json_integer(status));
	if (detail != NULL)
		json_object_set_new(p, "detail", json_string(detail));
	if (request_id != NULL)
		json_object_set_new(p, "request_id", json_string(request_id));
	return p;
}

/* Bytes of the well-formed UTF-8 character s starts with (never past a NUL), or 0. */
static size_t
utf8_char(const unsigned char *s)
{
	unsigned c = s[0], cp, min;
	size_t n;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		n = 2, min = 0x80, cp = c & 0x1f;
	else if ((c & 0xf0) == 0xe0)
		n = 3, min = 0x800, cp = c & 0x0f;
	else if ((c & 0xf8) == 0xf0)
		n = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

/*
 * s as a JSON string. A parameter name comes from the query string as it was
 * sent, so it may be any bytes: what is not UTF-8 becomes U+FFFD, since
 * jansson refuses such a string and the error entry would be lost with it.
 */
static json_t *
text(const char *s)
{
	json_t *v = json_string(s);
	if (v != NULL)
		return v;
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(3 * strlen(s) + 1), *o = out;
	if (out == NULL)
		abort();
	while (*p) {
		size_t k = utf8_char(p);
		if (k == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(o, p, k);
		o += k;
		p += k;
	}
	*o = '\0';
	v = json_string(out);
	free(out);
	return v;
}

static void
append(json_t *errors, const char *key, const char *where, const char *code, const char *message)
{
	json_array_append_new(
	    errors, json_pack("{s:o,s:s,s:s}", key, text(where), "code", code, "message", message));
}

void
error_at_pointer(json_t *errors, const char *pointer, const char *code, const char *message)
{
	append(errors, "pointer", pointer, code, message);
}

void
error_at_parameter(json_t *errors, const char *name, const char *code, const char *message)
{
	append(errors, "parameter", name, code, message);
}

void
pointer_append(char *buf, size_t bufsize, const char *token)
{
	size_t n = strlen(buf);
	if (n + 1 < bufsize)
		buf[n++] = '/';
	/* Whole characters only: a cut one would make the pointer invalid UTF-8. */
	for (const char *p = token; *p;) {
		size_t k = utf8_char((const unsigned char *)p);
		const char *bytes = *p == '~' ? "~0" : *p == '/' ? "~1" : p;
		size_t len = *p == '~' || *p == '/' ? 2 : k > 0 ? k : 1;
		if (n + len >= bufsize)
			break;
		memcpy(buf + n, bytes, len);
		n += len;
		p += k > 0 ? k : 1;
	}
	buf[n] = '\0';
}
