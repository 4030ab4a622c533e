/*
 * jobs_stream: reading the job stream's state from XINFO STREAM … FULL COUNT 1
 * replies (their shape as Redis 7.0 sends them, and as 6.2 sends them without
 * lag), and stream ids. The replies are written in a small notation, turned
 * into RESP and read by hiredis's own reader, so the parser sees exactly the
 * objects it gets from a connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "kqe/jobs_stream.h"

/*
 * Notation, tokens separated by spaces: "[" … "]" an array, ":N" an integer,
 * "~" nil, anything else a bulk string. Appends the RESP of one value
 * starting at *p to out (a buffer large enough for the tests).
 */
static void
resp_value(const char **p, char *out)
{
	char tok[128];
	while (**p == ' ')
		(*p)++;
	size_t n = strcspn(*p, " ");
	assert_true(n > 0 && n < sizeof(tok));
	memcpy(tok, *p, n);
	tok[n] = '\0';
	*p += n;
	if (strcmp(tok, "[") == 0) {
		char *items = calloc(1, 65536);
		int count = 0;
		for (;;) {
			while (**p == ' ')
				(*p)++;
			assert_true(**p != '\0');
			if (**p == ']' && ((*p)[1] == ' ' || (*p)[1] == '\0')) {
				(*p)++;
				break;
			}
			resp_value(p, items + strlen(items));
			count++;
		}
		sprintf(out + strlen(out), "*%d\r\n%s", count, items);
		free(items);
	} else if (tok[0] == ':') {
		sprintf(out + strlen(out), "%s\r\n", tok);
	} else if (strcmp(tok, "~") == 0) {
		strcat(out, "$-1\r\n");
	} else {
		sprintf(out + strlen(out), "$%zu\r\n%s\r\n", n, tok);
	}
}

/* The reply hiredis reads from the notation; freeReplyObject() it. */
static redisReply *
reply(const char *notation)
{
	char *resp = calloc(1, 65536);
	const char *p = notation;
	resp_value(&p, resp);
	redisReader *rd = redisReaderCreate();
	void *rep = NULL;
	assert_int_equal(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &rep), REDIS_OK);
	assert_non_null(rep);
	redisReaderFree(rd);
	free(resp);
	return rep;
}

/* A reply of a stream of `len` entries, the first being `first`, with these groups. */
#define HEAD(len, first)                                                                           \
	"[ length :" len " radix-tree-keys :1 radix-tree-nodes :2 last-generated-id 9-0"           \
	" max-deleted-entry-id 0-0 entries-added :9 recorded-first-entry-id " first
#define STREAM(len, first, groups)                                                                 \
	HEAD(len, first)                                                                           \
	" entries [ [ " first " [ outbox_id 1 kind build_report ] ] ]"                             \
	" groups [ " groups " ] ]"
/* As STREAM, without the entries (a reply that has only recorded-first-entry-id). */
#define NO_ENTRIES(len, first, groups) HEAD(len, first) " groups [ " groups " ] ]"
#define GROUP(name, last, read, lag, pel, pending)                                                 \
	" [ name " name " last-delivered-id " last " entries-read " read " lag " lag               \
	" pel-count :" pel " pending [ " pending " ] consumers [ ] ]"
#define PENDING(id) "[ " id " host-1 :1796050356046 :1 ]"
#define OURS "kqe-aggregators"
#define MAX_ID "18446744073709551615-18446744073709551615"

static const struct {
	const char *what;
	const char *info;
	int rc;
	long long length, undelivered, pending, backlog;
	int group_exists, lag_unknown, trimmable;
	const char *keep_from; /* when trimmable */
} cases[] = {
	{ "group created at 0, nothing read yet: everything is undelivered",
	    STREAM("3", "1-0", GROUP(OURS, "0-0", "~", ":3", "0", "")), 0, 3, 3, 0, 3, 1, 0, 1,
	    "0-1" },
	{ "some read, some pending: backlog = lag + pending; keep from the oldest pending",
	    STREAM("5", "1-0", GROUP(OURS, "3-0", ":3", ":2", "2", PENDING("2-0"))), 0, 5, 2, 2, 4,
	    1, 0, 1, "2-0" },
	{ "all delivered and acknowledged: backlog 0, keep from after the last delivered",
	    STREAM("5", "1-0", GROUP(OURS, "5-0", ":5", ":0", "0", "")), 0, 5, 0, 0, 0, 1, 0, 1,
	    "5-1" },
	{ "lag nil (an undelivered entry was XDELed): counted by the caller",
	    STREAM("4", "1-0", GROUP(OURS, "3-0", ":3", "~", "2", PENDING("2-0"))), 0, 4, 0, 2, 2,
	    1, 1, 1, "2-0" },
	{ "no lag field (Redis 6.2): counted by the caller",
	    "[ length :4 radix-tree-keys :1 radix-tree-nodes :2 last-generated-id 4-0"
	    " entries [ [ 1-0 [ kind build_report ] ] ] groups [ [ name kqe-aggregators"
	    " last-delivered-id 2-0 pel-count :1 pending [ " PENDING(
	        "2-0") " ] consumers [ ] ] ] ]",
	    0, 4, 0, 1, 1, 1, 1, 1, "2-0" },
	{ "trimmed past the group: Redis 7.0 still says lag 5, but only 2 entries are left",
	    STREAM("2", "9-0", GROUP(OURS, "5-0", ":5", ":5", "5", PENDING("1-0"))), 0, 2, 2, 5, 7,
	    1, 0, 1, "1-0" },
	{ "lag nil, but every entry is after the group's position: all undelivered, no count",
	    STREAM("4", "2-0", GROUP(OURS, "0-0", "~", "~", "0", "")), 0, 4, 4, 0, 4, 1, 0, 1,
	    "0-1" },
	{ "trimmed empty past the group: nothing undelivered",
	    NO_ENTRIES("0", "0-0", GROUP(OURS, "5-0", ":5", ":5", "0", "")), 0, 0, 0, 0, 0, 1, 0, 1,
	    "5-1" },
	{ "no group yet: everything is undelivered, nothing may be trimmed", STREAM("3", "1-0", ""),
	    0, 3, 3, 0, 3, 0, 0, 0, NULL },
	{ "only another group: ours will start at 0, nothing may be trimmed",
	    STREAM("3", "1-0", GROUP("reports", "3-0", ":3", ":0", "0", "")), 0, 3, 3, 0, 3, 0, 0,
	    0, NULL },
	{ "another group behind ours holds trimming back (its last delivered + 1)",
	    STREAM("5", "1-0",
	        GROUP(OURS, "5-0", ":5", ":0", "0", "")
	            GROUP("reports", "2-0", ":2", ":3", "0", "")),
	    0, 5, 0, 0, 0, 1, 0, 1, "2-1" },
	{ "another group's old pending entry holds trimming back",
	    STREAM("5", "1-0",
	        GROUP("reports", "5-0", ":5", ":0", "1", PENDING("1-5"))
	            GROUP(OURS, "4-0", ":4", ":1", "1", PENDING("3-0"))),
	    0, 5, 1, 1, 2, 1, 0, 1, "1-5" },
	{ "a lag above the length is capped: undelivered entries are entries of the stream",
	    STREAM("4", "1-0", GROUP(OURS, "1-0", ":1", ":10", "0", "")), 0, 4, 4, 0, 4, 1, 0, 1,
	    "1-1" },
	{ "first entry from recorded-first-entry-id when entries is missing",
	    NO_ENTRIES("2", "9-0", GROUP(OURS, "5-0", ":5", ":5", "0", "")), 0, 2, 2, 0, 2, 1, 0, 1,
	    "5-1" },
	{ "delivered up to the largest id: keep that one",
	    STREAM("1", MAX_ID, GROUP(OURS, MAX_ID, ":1", ":0", "0", "")), 0, 1, 0, 0, 0, 1, 0, 1,
	    MAX_ID },
	/* Not shaped like an XINFO STREAM FULL reply: refused, out zeroed. */
	{ "not an array", "OK", -1, 0, 0, 0, 0, 0, 0, 0, NULL },
	{ "no length", "[ groups [ ] ]", -1, 0, 0, 0, 0, 0, 0, 0, NULL },
	{ "no groups", "[ length :3 ]", -1, 0, 0, 0, 0, 0, 0, 0, NULL },
	{ "a group without last-delivered-id",
	    "[ length :3 groups [ [ name kqe-aggregators pel-count :0 ] ] ]", -1, 0, 0, 0, 0, 0, 0,
	    0, NULL },
	{ "a bad last-delivered-id", STREAM("3", "1-0", GROUP(OURS, "3", ":3", ":0", "0", "")), -1,
	    0, 0, 0, 0, 0, 0, 0, NULL },
	{ "pending without its oldest entry (COUNT 0 would list all, never none)",
	    STREAM("3", "1-0", GROUP(OURS, "3-0", ":3", ":0", "2", "")), -1, 0, 0, 0, 0, 0, 0, 0,
	    NULL },
	{ "another group malformed: trimming must not guess",
	    STREAM("3", "1-0", GROUP(OURS, "3-0", ":3", ":0", "0", "") " [ name reports ]"), -1, 0,
	    0, 0, 0, 0, 0, 0, NULL },
};

static void
test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		redisReply *info = reply(cases[i].info);
		struct jobs_stream_state s;
		memset(&s, 0xa5, sizeof(s));
		int rc = jobs_stream_parse(info, JOBS_GROUP, &s);
		freeReplyObject(info);
		print_message("%s\n", cases[i].what);
		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(s.stream_exists, rc == 0);
		assert_int_equal(s.length, cases[i].length);
		assert_int_equal(s.undelivered, cases[i].undelivered);
		assert_int_equal(s.pending, cases[i].pending);
		assert_int_equal(s.backlog, cases[i].backlog);
		assert_int_equal(s.dead, 0);
		assert_int_equal(s.group_exists, cases[i].group_exists);
		assert_int_equal(s.lag_unknown, cases[i].lag_unknown);
		assert_int_equal(s.trimmable, cases[i].trimmable);
		if (cases[i].trimmable) {
			char id[JOBS_STREAM_ID_MAX];
			assert_string_equal(
			    jobs_stream_id_format(&s.keep_from, id), cases[i].keep_from);
		}
	}
}

static void
test_id_parse(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int ok;
		uint64_t ms, seq;
	} ids[] = {
		{ "0-0", 1, 0, 0 },
		{ "1526919030474-55", 1, 1526919030474u, 55 },
		{ "18446744073709551615-18446744073709551615", 1, UINT64_MAX, UINT64_MAX },
		{ "18446744073709551616-0", 0, 0, 0 },
		{ "0-18446744073709551616", 0, 0, 0 },
		{ "", 0, 0, 0 },
		{ "-", 0, 0, 0 },
		{ "1", 0, 0, 0 },
		{ "1-", 0, 0, 0 },
		{ "-1", 0, 0, 0 },
		{ "1-2-3", 0, 0, 0 },
		{ "a-1", 0, 0, 0 },
		{ " 1-2", 0, 0, 0 },
		{ "+1-2", 0, 0, 0 },
		{ "1--2", 0, 0, 0 },
		{ "1-+2", 0, 0, 0 },
		{ "1-2 ", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct jobs_stream_id id;
		print_message("%s\n", ids[i].text);
		int rc = jobs_stream_id_parse(ids[i].text, &id);
		assert_int_equal(rc, ids[i].ok ? 0 : -1);
		if (ids[i].ok) {
			char buf[JOBS_STREAM_ID_MAX];
			assert_true(id.ms == ids[i].ms && id.seq == ids[i].seq);
			assert_string_equal(jobs_stream_id_format(&id, buf), ids[i].text);
		}
	}
}

static void
test_id_next_and_order(void **state)
{
	(void)state;
	struct jobs_stream_id a = { 1, 5 }, b = { 1, UINT64_MAX }, max = { UINT64_MAX, UINT64_MAX },
	                      n;
	assert_int_equal(jobs_stream_id_next(&a, &n), 0);
	assert_true(n.ms == 1 && n.seq == 6);
	assert_int_equal(jobs_stream_id_next(&b, &n), 0);
	assert_true(n.ms == 2 && n.seq == 0);
	assert_int_equal(jobs_stream_id_next(&max, &n), -1);
	/* Order is by ms, then seq: 1-5 < 1-max < 2-0 < max-max. */
	struct jobs_stream_id c = { 2, 0 };
	assert_true(jobs_stream_id_cmp(&a, &b) < 0);
	assert_true(jobs_stream_id_cmp(&b, &c) < 0);
	assert_true(jobs_stream_id_cmp(&c, &max) < 0);
	assert_true(jobs_stream_id_cmp(&max, &a) > 0);
	assert_int_equal(jobs_stream_id_cmp(&a, &a), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_id_parse),
		cmocka_unit_test(test_id_next_and_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
