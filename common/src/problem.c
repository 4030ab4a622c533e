#include "kqe/problem.h"

#include <ctype.h>
#include <stdio.h>
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

static void
append(json_t *errors, const char *key, const char *where, const char *code, const char *message)
{
	json_array_append_new(
	    errors, json_pack("{s:s,s:s,s:s}", key, where, "code", code, "message", message));
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
	for (const char *p = token; *p && n + 2 < bufsize; p++) {
		if (*p == '~') {
			buf[n++] = '~';
			buf[n++] = '0';
		} else if (*p == '/') {
			buf[n++] = '~';
			buf[n++] = '1';
		} else {
			buf[n++] = *p;
		}
	}
	buf[n] = '\0';
}
