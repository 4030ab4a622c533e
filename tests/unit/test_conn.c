/* conn: the header block scanner, fed whole and byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"

struct scan_case {
	const char *input;
	enum head_result result;
	const char *problem; /* for HEAD_BAD */
	int minor;
};

static const struct scan_case cases[] = {
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", HEAD_DONE, NULL, 1 },
	{ "GET / HTTP/1.0\r\n\r\n", HEAD_DONE, NULL, 0 },
	{ "GET / HTTP/1.1\nHost: a\n\n", HEAD_DONE, NULL, 1 }, /* bare LF, as evhttp reads it */
	{ "GET / HTTP/1.1\r\nHost: a\r\n", HEAD_MORE, NULL, 1 },
	{ "GET / HTTP/1.1\r\n\r\n", HEAD_BAD, "An HTTP/1.1 request needs a Host header.", 1 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", HEAD_BAD,
	    "A header name is malformed.", 1 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", HEAD_BAD,
	    "Only Transfer-Encoding: chunked is understood.", 1 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
	  "chunked\r\n\r\n",
	    HEAD_BAD, "Only Transfer-Encoding: chunked is understood.", 1 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED \r\n\r\n", HEAD_DONE, NULL,
	    1 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", HEAD_BAD,
	    "The request has two different Content-Length headers.", 1 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n", HEAD_DONE,
	    NULL, 1 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -4\r\n\r\n", HEAD_BAD,
	    "A Content-Length is malformed.", 1 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
	    HEAD_BAD, "A request may not have both Content-Length and Transfer-Encoding.", 1 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nauthorization: y\r\n\r\n", HEAD_BAD,
	    "The request has more than one Authorization header.", 1 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", HEAD_BAD,
	    "A header line is folded (obs-fold).", 1 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", HEAD_BAD, "A header line is malformed.",
	    1 },
	{ "GET / HTTP/1.1\r\n: empty name\r\n\r\n", HEAD_BAD, "A header line is malformed.", 1 },
	{ "GET / HTTP/2.0\r\n\r\n", HEAD_DONE, NULL, -1 },
};

static void
run_case(const struct scan_case *c, size_t chunk)
{
	struct head_scan s;
	size_t used = 0, n = strlen(c->input);
	enum head_result r = HEAD_MORE;
	head_scan_reset(&s);
	for (size_t i = 0; i < n && r == HEAD_MORE; i += chunk)
		r = head_scan_feed(&s, c->input + i, i + chunk > n ? n - i : chunk, 1024, &used);
	if (r != c->result)
		fail_msg("%s (chunk %zu): result %d, want %d", c->input, chunk, r, c->result);
	if (c->problem != NULL)
		assert_string_equal(s.problem, c->problem);
	assert_int_equal(s.minor, c->minor);
}

static void
test_cases_whole_and_byte_by_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i], strlen(cases[i].input));
		run_case(&cases[i], 1);
		run_case(&cases[i], 3);
	}
}

static void
test_size_limit_and_what_follows_the_block(void **state)
{
	(void)state;
	struct head_scan s;
	size_t used;
	const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
	head_scan_reset(&s);
	assert_int_equal(head_scan_feed(&s, req, strlen(req), 1024, &used), HEAD_DONE);
	assert_int_equal(used, strlen(req) - 4); /* the body is not the block's */
	assert_int_equal(head_scan_feed(&s, "more", 4, 1024, &used), HEAD_DONE);
	head_scan_reset(&s);
	assert_int_equal(head_scan_feed(&s, req, strlen(req), 10, &used), HEAD_TOO_LARGE);
	char big[600];
	memset(big, 'x', sizeof(big));
	head_scan_reset(&s);
	assert_int_equal(
	    head_scan_feed(&s, "GET / HTTP/1.1\r\nX-Long: ", 24, 4096, &used), HEAD_MORE);
	assert_int_equal(head_scan_feed(&s, big, sizeof(big), 4096, &used), HEAD_MORE);
	assert_int_equal(head_scan_feed(&s, "\r\nHost: a\r\n\r\n", 13, 4096, &used), HEAD_DONE);
}

/*
 * Found by tests/fuzz/fuzz_conn: the version was read off the kept start of
 * the request line, so a request line longer than HEAD_LINE_KEPT (a list's
 * query with a cursor) had no version, and an HTTP/1.1 request without Host
 * passed both the guard and the router's framing check.
 */
static void
test_long_request_line_keeps_its_version(void **state)
{
	(void)state;
	char line[HEAD_LINE_KEPT + 64], req[HEAD_LINE_KEPT + 128];
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	for (int minor = 0; minor <= 1; minor++)
		for (int host = 0; host <= 1; host++) {
			struct head_scan s;
			size_t used;
			snprintf(req, sizeof(req), "GET /v1/offices?q=%s HTTP/1.%d\r\n%s\r\n", line, minor,
			    host ? "Host: a\r\n" : "");
			head_scan_reset(&s);
			enum head_result r = head_scan_feed(&s, req, strlen(req), 4096, &used);
			assert_int_equal(s.minor, minor);
			assert_int_equal(r, minor == 1 && !host ? HEAD_BAD : HEAD_DONE);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases_whole_and_byte_by_byte),
		cmocka_unit_test(test_size_limit_and_what_follows_the_block),
		cmocka_unit_test(test_long_request_line_keeps_its_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
