/*
 * The connection guard's header block scanner (services/api/conn.c
 * head_scan_feed) and the framing check on parsed headers (services/api/
 * http.c http_framing_problem). Input: the bytes a client sends. The scan
 * must not depend on how the bytes arrive (whole or byte by byte), must read
 * the request line's version wherever it ends, and where it lets a block
 * through whole, the framing check on the same headers must agree.
 */
#include <sys/queue.h>

#include "conn.h"
#include "fuzz.h"
#include "http.h"

#define LIMIT 2048

struct outcome {
	enum head_result result;
	const char *problem;
	int minor;
	size_t end; /* bytes of the input the block took (HEAD_DONE, HEAD_BAD) */
};

static struct outcome
scan(const uint8_t *data, size_t size, size_t chunk)
{
	struct head_scan s;
	struct outcome o = { HEAD_MORE, NULL, -1, 0 };
	head_scan_reset(&s);
	for (size_t at = 0; at < size; at += chunk) {
		size_t n = size - at < chunk ? size - at : chunk, used;
		o.result = head_scan_feed(&s, (const char *)data + at, n, LIMIT, &used);
		if (o.result != HEAD_MORE) {
			o.end = at + used;
			break;
		}
	}
	o.problem = s.problem;
	o.minor = s.minor;
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole = scan(data, size, size > 0 ? size : 1), bytewise = scan(data, size, 1);
	FUZZ_ASSERT(whole.result == bytewise.result && whole.problem == bytewise.problem &&
	            whole.minor == bytewise.minor);
	FUZZ_ASSERT(whole.result == HEAD_TOO_LARGE || whole.end == bytewise.end);
	FUZZ_ASSERT((whole.result == HEAD_BAD) == (whole.problem != NULL));
	if (whole.result != HEAD_DONE && whole.result != HEAD_BAD)
		return 0;

	/* The block as lines, CRs dropped as the scan drops them. */
	char *block = malloc(whole.end + 1);
	FUZZ_ASSERT(block != NULL);
	size_t len = 0;
	for (size_t i = 0; i < whole.end; i++)
		if (data[i] != '\r')
			block[len++] = (char)data[i];
	block[len] = '\0';
	if (memchr(block, '\0', len) != NULL) { /* lines are C strings from here on */
		free(block);
		return 0;
	}

	char *line = block, *request_line = NULL;
	struct evkeyvalq headers;
	TAILQ_INIT(&headers);
	bool comparable = whole.result == HEAD_DONE;
	while (line < block + len) {
		char *nl = strchr(line, '\n');
		FUZZ_ASSERT(nl != NULL); /* the block ends with a line break */
		*nl = '\0';
		if (request_line == NULL && line[0] != '\0') {
			request_line = line;
		} else if (request_line != NULL && line[0] != '\0') {
			char *colon = strchr(line, ':');
			comparable = comparable && colon != NULL && strlen(line) < HEAD_LINE_KEPT;
			if (comparable) {
				*colon = '\0';
				char *v = colon + 1 + strspn(colon + 1, " \t");
				for (size_t n = strlen(v); n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t');)
					v[--n] = '\0';
				comparable = evhttp_add_header(&headers, line, v) == 0;
			}
		}
		line = nl + 1;
	}
	/* The version is read off the end of the request line, however long it is. */
	if (request_line != NULL) {
		size_t n = strlen(request_line);
		int minor = n >= 8 && strncmp(request_line + n - 8, "HTTP/1.", 7) == 0 &&
		                    (request_line[n - 1] == '0' || request_line[n - 1] == '1')
		                ? request_line[n - 1] - '0'
		                : -1;
		FUZZ_ASSERT(whole.minor == minor);
	}
	/* A block the guard lets through, the router's framing check lets through too. */
	if (comparable)
		FUZZ_ASSERT(http_framing_problem(&headers, whole.minor) == NULL);
	for (int minor = -1; minor <= 1; minor++)
		(void)http_framing_problem(&headers, minor);
	evhttp_clear_headers(&headers);
	free(block);
	return 0;
}
