/*
 * problem — RFC 9457 problem details (application/problem+json) and the
 * error entries ({pointer|parameter, code, message}) that name every bad
 * field or parameter of a request.
 */
#ifndef KQE_PROBLEM_H
#define KQE_PROBLEM_H

#include <jansson.h>

/* Reason phrase for an HTTP status ("Unprocessable Content" …). */
const char *http_reason(int status);

/*
 * Returns a new problem object with type, title, status, detail and request_id.
 * detail may be NULL. The type is https://kqe.nrw/problems/<slug-of-title>.
 */
json_t *problem_new(int status, const char *detail, const char *request_id);

/* Appends {"pointer": ptr, "code", "message"} to errors (a JSON array). */
void error_at_pointer(json_t *errors, const char *pointer, const char *code, const char *message);

/* Appends {"parameter": name, "code", "message"} to errors (a JSON array). */
void error_at_parameter(json_t *errors, const char *name, const char *code, const char *message);

/* Appends the RFC 6901 escaped form of token to the pointer in buf (with '/'). */
void pointer_append(char *buf, size_t bufsize, const char *token);

#endif
