/*
 * Request headers kqe-api interprets itself (services/api/http.c): Accept
 * (accept_allows, against each media type a route answers in) and
 * If-None-Match / If-Match lists (etag_listed). Input: the header value, a
 * newline, then an ETag to look for (a seed is two lines).
 */
#include "fuzz.h"
#include "http.h"

static const char *const media[] = { "application/json", "text/csv", "text/html",
	"text/plain", "application/problem+json" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *header, *etag;
	fuzz_split(data, size, &header, &etag);
	for (size_t i = 0; i < sizeof(media) / sizeof(media[0]); i++)
		(void)accept_allows(header, media[i]);
	(void)accept_allows(header, etag);
	FUZZ_ASSERT(accept_allows(NULL, etag));
	bool listed = etag_listed(header, etag);
	/* "*" and the exact tag always match; nothing matches a missing header. */
	FUZZ_ASSERT(!etag_listed(NULL, etag));
	if (strcmp(header, "*") == 0 || (etag[0] != '\0' && strchr(etag, ',') == NULL &&
	                                    etag[0] != ' ' && etag[0] != '\t' &&
	                                    strcmp(header, etag) == 0 &&
	                                    etag[strlen(etag) - 1] != ' ' &&
	                                    etag[strlen(etag) - 1] != '\t' &&
	                                    strncmp(etag, "W/", 2) != 0))
		FUZZ_ASSERT(listed);
	free(header);
	free(etag);
	return 0;
}
