/*
 * GET /openapi.json and GET /docs: the API contract. proto/openapi.yaml is
 * converted to JSON and rendered to a self-contained HTML reference at build
 * time (scripts/openapi_docs.py) and compiled in (cmake/embed_files.cmake), so
 * the binary always serves the contract it was built with. Both are public:
 * a frontend vendor reads them without a token.
 *
 * The bytes never change within a build: the ETag is a build-time hash of the
 * body, and a client that sends it back in If-None-Match gets 304.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "handlers.h"
#include "http.h"

/* Defined in the generated spec_data.c. */
extern const unsigned char kqe_spec_openapi_json[];
extern const size_t kqe_spec_openapi_json_len;
extern const char kqe_spec_openapi_json_etag[];
extern const unsigned char kqe_spec_docs_html[];
extern const size_t kqe_spec_docs_html_len;
extern const char kqe_spec_docs_html_etag[];

static void
reply_static(struct request *r, const char *content_type, const unsigned char *data, size_t len,
    const char *etag, bool html)
{
	reply_header(r, "ETag", etag);
	if (html) {
		/* No script, no external resource: the page needs nothing but its inline style. */
		reply_header(r, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
		    "form-action 'none'; frame-ancestors 'none'");
		reply_header(r, "X-Content-Type-Options", "nosniff");
	}
	reply_bytes(r, 200, content_type, (const char *)data, len);
}

void
spec_openapi(struct request *r)
{
	reply_static(r, "application/json; charset=utf-8", kqe_spec_openapi_json,
	    kqe_spec_openapi_json_len, kqe_spec_openapi_json_etag, false);
}

void
spec_docs(struct request *r)
{
	reply_static(r, "text/html; charset=utf-8", kqe_spec_docs_html, kqe_spec_docs_html_len,
	    kqe_spec_docs_html_etag, true);
}
