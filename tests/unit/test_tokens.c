/*
 * Unit tests of the pure parts of `kqe token` and `kqe audit verify`
 * (services/kqe/token_spec.c, services/kqe/audit_chain.c): option parsing and
 * role bindings, expiry dates, the token's encoding and stored hash, and the
 * audit chain check. Expected encodings, hashes and epoch seconds were worked
 * out independently (Python's base64, hashlib and calendar.timegm).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "audit_chain.h"
#include "token_spec.h"

#define MAX_ARGS 12
#define NOW 1749988800 /* 2025-06-15T12:00:00Z */

/* ---- token_request_parse ---- */

struct request_case {
	const char *what;
	const char *args[MAX_ARGS]; /* NULL-terminated */
	/* on success: */
	enum role role;
	const char *office_id, *region, *institute_id, *expires;
	/* on failure: a substring of the reason, else NULL */
	const char *error;
};

static const char name_100[] = /* 100 characters: at the limit */
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "012345678901234567890123456789";
static const char name_101[] = /* 101 characters: over */
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890";
/* 100 umlauts are 200 bytes but 100 characters: the limit counts characters. */
#define U10 "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
static const char name_100_umlauts[] = U10 U10 U10 U10 U10 U10 U10 U10 U10 U10;

static const struct request_case request_cases[] = {
	{ "office_staff with its office",
	    { "--name", "n", "--role", "office_staff", "--office", "demo-lvr-001", NULL },
	    ROLE_OFFICE_STAFF, "demo-lvr-001", NULL, NULL, NULL, NULL },
	{ "office_lead, --opt=value form", { "--name=n", "--role=office_lead", "--office=x", NULL },
	    ROLE_OFFICE_LEAD, "x", NULL, NULL, NULL, NULL },
	{ "institute",
	    { "--role", "institute", "--institute", "demo-institut-1", "--name", "n", NULL },
	    ROLE_INSTITUTE, NULL, NULL, "demo-institut-1", NULL, NULL },
	{ "advisor, region in any case",
	    { "--name", "n", "--role", "advisor", "--region", "lwl", NULL }, ROLE_ADVISOR, NULL,
	    "LWL", NULL, NULL, NULL },
	{ "ministry with an expiry tomorrow",
	    { "--name", "n", "--role", "ministry", "--expires", "2025-06-16", NULL }, ROLE_MINISTRY,
	    NULL, NULL, NULL, "2025-06-16", NULL },
	{ "admin", { "--name", "n", "--role", "admin", NULL }, ROLE_ADMIN, NULL, NULL, NULL, NULL,
	    NULL },
	{ "provider_staff without a provider", { "--name", "n", "--role", "provider_staff", NULL },
	    0, NULL, NULL, NULL, NULL, "role provider_staff needs --provider" },
	{ "professional: issued by the API only", { "--name", "n", "--role", "professional", NULL },
	    0, NULL, NULL, NULL, NULL,
	    "role professional: its keys are issued when the programme's team approves a "
	    "registration (docs/programmes.md)" },
	{ "programme_team without a programme", { "--name", "n", "--role", "programme_team", NULL },
	    0, NULL, NULL, NULL, NULL, "role programme_team needs --programme" },
	{ "programme_team with a programme that is no id",
	    { "--name", "n", "--role", "programme_team", "--programme", "nzfh", NULL }, 0, NULL,
	    NULL, NULL, NULL, "--programme must be a programme's id (a UUID), not \"nzfh\"" },
	{ "office role with a programme",
	    { "--name", "n", "--role", "office_lead", "--office", "x", "--programme",
	        "0f8fad5b-d9cb-469f-a165-70867728950e", NULL },
	    0, NULL, NULL, NULL, NULL, "role office_lead takes no --programme" },
	{ "office role with a provider",
	    { "--name", "n", "--role", "office_staff", "--office", "x", "--provider", "y", NULL },
	    0, NULL, NULL, NULL, NULL, "role office_staff takes no --provider" },
	{ "name of 100 characters", { "--name", name_100, "--role", "admin", NULL }, ROLE_ADMIN,
	    NULL, NULL, NULL, NULL, NULL },
	{ "name of 100 umlauts (200 bytes)",
	    { "--name", name_100_umlauts, "--role", "admin", NULL }, ROLE_ADMIN, NULL, NULL, NULL,
	    NULL, NULL },

	{ "office role without an office", { "--name", "n", "--role", "office_staff", NULL }, 0,
	    NULL, NULL, NULL, NULL, "role office_staff needs --office" },
	{ "advisor without a region", { "--name", "n", "--role", "advisor", NULL }, 0, NULL, NULL,
	    NULL, NULL, "role advisor needs --region" },
	{ "institute without an institute", { "--name", "n", "--role", "institute", NULL }, 0, NULL,
	    NULL, NULL, NULL, "role institute needs --institute" },
	{ "ministry with an office", { "--name", "n", "--role", "ministry", "--office", "x", NULL },
	    0, NULL, NULL, NULL, NULL, "role ministry takes no --office" },
	{ "admin with a region", { "--name", "n", "--role", "admin", "--region", "LVR", NULL }, 0,
	    NULL, NULL, NULL, NULL, "role admin takes no --region" },
	{ "office role with a second binding",
	    { "--name", "n", "--role", "office_lead", "--office", "x", "--institute", "y", NULL },
	    0, NULL, NULL, NULL, NULL, "role office_lead takes no --institute" },
	{ "advisor with an office instead",
	    { "--name", "n", "--role", "advisor", "--office", "x", NULL }, 0, NULL, NULL, NULL,
	    NULL, "role advisor needs --region LVR|LWL, not --office" },
	{ "unknown region", { "--name", "n", "--role", "advisor", "--region", "BY", NULL }, 0, NULL,
	    NULL, NULL, NULL, "--region must be LVR or LWL" },
	{ "unknown role", { "--name", "n", "--role", "root", NULL }, 0, NULL, NULL, NULL, NULL,
	    "unknown role \"root\"" },
	{ "system is not a token role", { "--name", "n", "--role", "system", NULL }, 0, NULL, NULL,
	    NULL, NULL, "unknown role" },
	{ "no role", { "--name", "n", NULL }, 0, NULL, NULL, NULL, NULL,
	    "--role ROLE is required" },
	{ "no name", { "--role", "admin", NULL }, 0, NULL, NULL, NULL, NULL,
	    "--name NAME is required" },
	{ "empty name", { "--name", "", "--role", "admin", NULL }, 0, NULL, NULL, NULL, NULL,
	    "--name must not be empty" },
	{ "name of 101 characters", { "--name", name_101, "--role", "admin", NULL }, 0, NULL, NULL,
	    NULL, NULL, "longer than 100" },
	{ "name with a tab", { "--name", "a\tb", "--role", "admin", NULL }, 0, NULL, NULL, NULL,
	    NULL, "control characters" },
	{ "name with a C1 control", { "--name", "a\xc2\x85", "--role", "admin", NULL }, 0, NULL,
	    NULL, NULL, NULL, "control characters" },
	{ "name not UTF-8", { "--name", "K\xf6ln", "--role", "admin", NULL }, 0, NULL, NULL, NULL,
	    NULL, "not valid UTF-8" },
	{ "option given twice", { "--name", "n", "--role", "admin", "--role", "admin", NULL }, 0,
	    NULL, NULL, NULL, NULL, "--role given twice" },
	{ "option without its value", { "--role", "admin", "--name", NULL }, 0, NULL, NULL, NULL,
	    NULL, "--name needs a value" },
	{ "empty office", { "--name", "n", "--role", "office_staff", "--office", "", NULL }, 0,
	    NULL, NULL, NULL, NULL, "--office: empty value" },
	{ "unknown option", { "--name", "n", "--role", "admin", "--force", NULL }, 0, NULL, NULL,
	    NULL, NULL, "unknown argument \"--force\"" },
	{ "prefix of an option is not the option", { "--nam", "n", "--role", "admin", NULL }, 0,
	    NULL, NULL, NULL, NULL, "unknown argument \"--nam\"" },
	{ "stray word", { "--name", "n", "--role", "admin", "extra", NULL }, 0, NULL, NULL, NULL,
	    NULL, "unknown argument \"extra\"" },
	{ "expiry today (00:00 UTC has passed)",
	    { "--name", "n", "--role", "admin", "--expires", "2025-06-15", NULL }, 0, NULL, NULL,
	    NULL, NULL, "not in the future" },
	{ "expiry in the past",
	    { "--name", "n", "--role", "admin", "--expires", "2020-01-01", NULL }, 0, NULL, NULL,
	    NULL, NULL, "not in the future" },
	{ "expiry not a date",
	    { "--name", "n", "--role", "admin", "--expires", "2026-02-29", NULL }, 0, NULL, NULL,
	    NULL, NULL, "not a date" },
	{ "expiry in another format",
	    { "--name", "n", "--role", "admin", "--expires", "16.06.2025", NULL }, 0, NULL, NULL,
	    NULL, NULL, "not a date" },
};

static void
test_request_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(request_cases); i++) {
		const struct request_case *c = &request_cases[i];
		struct token_request req;
		char err[256] = "";
		int argc = 0;
		while (c->args[argc] != NULL)
			argc++;
		print_message("case: %s\n", c->what);
		int rc =
		    token_request_parse(argc, (char *const *)c->args, NOW, &req, err, sizeof(err));
		if (c->error != NULL) {
			assert_int_equal(rc, -1);
			if (strstr(err, c->error) == NULL)
				fail_msg("\"%s\" does not contain \"%s\"", err, c->error);
			continue;
		}
		if (rc != 0)
			fail_msg("unexpected error: %s", err);
		assert_int_equal(req.role, c->role);
		assert_non_null(req.name);
		const char *got[] = { req.office_id, req.region, req.institute_id, req.expires };
		const char *want[] = { c->office_id, c->region, c->institute_id, c->expires };
		assert_null(req.provider_id);
		for (size_t k = 0; k < ARRAY_LEN(got); k++) {
			if (want[k] == NULL)
				assert_null(got[k]);
			else
				assert_string_equal(got[k], want[k]);
		}
	}
}

/* provider_staff is bound to its provider, and only it. */
static void
test_provider_request(void **state)
{
	(void)state;
	char *const args[] = { "--name", "n", "--role", "provider_staff", "--provider",
		"demo-traeger-lvr-01", NULL };
	struct token_request req;
	char err[256];
	assert_int_equal(token_request_parse(6, args, NOW, &req, err, sizeof(err)), 0);
	assert_int_equal(req.role, ROLE_PROVIDER_STAFF);
	assert_string_equal(req.provider_id, "demo-traeger-lvr-01");
	assert_null(req.office_id);
	assert_null(req.institute_id);
}

static void
test_role_binding(void **state)
{
	(void)state;
	assert_int_equal(token_role_binding(ROLE_OFFICE_STAFF), TOKEN_BINDING_OFFICE);
	assert_int_equal(token_role_binding(ROLE_OFFICE_LEAD), TOKEN_BINDING_OFFICE);
	assert_int_equal(token_role_binding(ROLE_INSTITUTE), TOKEN_BINDING_INSTITUTE);
	assert_int_equal(token_role_binding(ROLE_ADVISOR), TOKEN_BINDING_REGION);
	assert_int_equal(token_role_binding(ROLE_MINISTRY), TOKEN_BINDING_NONE);
	assert_int_equal(token_role_binding(ROLE_ADMIN), TOKEN_BINDING_NONE);
	assert_int_equal(token_role_binding(ROLE_PROVIDER_STAFF), TOKEN_BINDING_PROVIDER);
	assert_int_equal(token_role_binding(ROLE_PROGRAMME_TEAM), TOKEN_BINDING_PROGRAMME);
}

/* ---- token_date_parse ---- */

static const struct {
	const char *text;
	int ok;
	int64_t at;
} date_cases[] = {
	{ "1970-01-01", 1, 0 },
	{ "2000-03-01", 1, 951868800 },
	{ "2024-02-29", 1, 1709164800 }, /* leap year */
	{ "2100-03-01", 1, 4107542400 }, /* 2100 is not a leap year */
	{ "9999-12-31", 1, 253402214400 },
	{ "2025-06-16", 1, 1750032000 },
	{ "2023-02-29", 0, 0 },
	{ "2100-02-29", 0, 0 },
	{ "2024-04-31", 0, 0 },
	{ "2024-13-01", 0, 0 },
	{ "2024-00-10", 0, 0 },
	{ "2024-01-00", 0, 0 },
	{ "1969-12-31", 0, 0 },
	{ "2024-1-01", 0, 0 },
	{ "2024-01-011", 0, 0 },
	{ "2024/01/01", 0, 0 },
	{ " 2024-01-01", 0, 0 },
	{ "2024-01-01T00:00", 0, 0 },
	{ "", 0, 0 },
};

static void
test_date_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(date_cases); i++) {
		int64_t at = -1;
		print_message("date: \"%s\"\n", date_cases[i].text);
		int rc = token_date_parse(date_cases[i].text, &at);
		assert_int_equal(rc, date_cases[i].ok ? 0 : -1);
		if (date_cases[i].ok)
			assert_int_equal(at, date_cases[i].at);
	}
}

/* ---- the token ---- */

static void
test_encode_and_hash(void **state)
{
	(void)state;
	unsigned char raw[TOKEN_RANDOM_BYTES];
	char token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];

	memset(raw, 0, sizeof(raw));
	token_encode(raw, token);
	assert_string_equal(token, "kqe_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	token_hash(token, hash);
	assert_string_equal(
	    hash, "4b54efbf512c860a9ca98330e7e7210eab17429733f7e9ea80b5502571e43a8c");

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)i;
	token_encode(raw, token);
	assert_string_equal(token, "kqe_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
	token_hash(token, hash);
	assert_string_equal(
	    hash, "5eafa3be6c815b01e8ba7edb33ceea2a34a48f5e603176395f2d32132cc1f796");

	/* The URL-safe alphabet's last two letters, and the two-byte tail. */
	memset(raw, 0xff, sizeof(raw));
	token_encode(raw, token);
	assert_string_equal(token, "kqe___________________________________________8");
}

static void
test_generate(void **state)
{
	(void)state;
	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];

	token_generate(a);
	token_generate(b);
	assert_int_equal(strlen(a), 47);
	assert_int_equal(TOKEN_LEN, 47);
	assert_memory_equal(a, "kqe_", 4);
	assert_int_equal(strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                               "0123456789-_"),
	    43);
	assert_string_not_equal(a, b);
}

/* ---- audit_chain ---- */

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"
#define H1 "419d3568671c57c73d212155586588f482c00fcf171e2eea05474d90410e08e1"
#define H2 "247a3283b37d162adcdc2e60458aefd03f6b027e4b67cd32cecd11be706e4f78"
#define H3 "495b7e35684b8774f62f68379ff26fcaa21dd23ad7a1c44a7fa57b2d4fd18eff"

/* Canonical texts as kqe_audit_canonical() writes them (fields joined by U+001F). */
static const struct entry {
	int64_t id;
	const char *prev_hash, *hash, *canonical;
} chain3[] = {
	{ 1, ZEROS, H1,
	    "1\x1f"
	    "2025-01-01T00:00:00.000000Z\x1f"
	    "cli:root\x1f"
	    "admin\x1f\x1f"
	    "token.create\x1f"
	    "token\x1f"
	    "t-1\x1f\x1f"
	    "{\"name\": \"a\", \"role\": \"admin\"}" },
	{ 2, H1, H2,
	    "2\x1f"
	    "2025-01-01T00:00:01.000000Z\x1f"
	    "cli:root\x1f"
	    "admin\x1f"
	    "demo-lvr-001\x1f"
	    "token.revoke\x1f"
	    "token\x1f"
	    "t-2\x1f\x1f"
	    "{\"name\": \"Jugendamt K\xc3\xb6ln\"}" },
	{ 3, H2, H3,
	    "3\x1f"
	    "2025-01-01T00:00:02.000000Z\x1f"
	    "token:t-1\x1f"
	    "advisor\x1f\x1f"
	    "report.request\x1f"
	    "report\x1f"
	    "r-1\x1f"
	    "req-1\x1f"
	    "{}" },
};

static int
add(struct audit_chain *c, const struct entry *e)
{
	return audit_chain_add(c, e->id, e->prev_hash, e->hash, e->canonical, strlen(e->canonical));
}

static void
test_chain_hash(void **state)
{
	(void)state;
	char out[AUDIT_HASH_LEN + 1];
	for (size_t i = 0; i < ARRAY_LEN(chain3); i++) {
		audit_chain_hash(
		    chain3[i].prev_hash, chain3[i].canonical, strlen(chain3[i].canonical), out);
		assert_string_equal(out, chain3[i].hash);
	}
}

static void
test_chain_intact(void **state)
{
	(void)state;
	struct audit_chain c;

	audit_chain_init(&c);
	assert_int_equal(audit_chain_finish(&c, 0, ZEROS), 0); /* empty log, fresh head */
	assert_true(c.intact);
	assert_int_equal(c.count, 0);

	audit_chain_init(&c);
	for (size_t i = 0; i < ARRAY_LEN(chain3); i++)
		assert_int_equal(add(&c, &chain3[i]), 0);
	assert_int_equal(audit_chain_finish(&c, 3, H3), 0);
	assert_true(c.intact);
	assert_int_equal(c.count, 3);
}

/* Runs chain3 with entry `which` replaced by *changed, then the head; expects entry broken. */
struct broken_case {
	const char *what;
	size_t which; /* index into chain3 to replace, or SIZE_MAX for none */
	struct entry changed;
	int64_t head_id;
	const char *head_hash;
	int64_t broken;
	const char *reason;
};

static const struct broken_case broken_cases[] = {
	{ "content changed (action)", 1,
	    { 2, H1, H2,
	        "2\x1f"
	        "2025-01-01T00:00:01.000000Z\x1f"
	        "cli:root\x1f"
	        "admin\x1f"
	        "demo-lvr-001\x1f"
	        "x\x1f"
	        "token\x1f"
	        "t-2\x1f\x1f"
	        "{\"name\": \"Jugendamt K\xc3\xb6ln\"}" },
	    3, H3, 2, "hash does not match its content" },
	{ "hash rewritten to another value", 2, { 3, H2, H1, NULL }, 3, H1, 3,
	    "hash does not match its content" },
	{ "link broken", 1, { 2, H3, H2, NULL }, 3, H3, 2, "prev_hash does not link to entry 1" },
	{ "first entry not linked to the start", 0, { 1, H3, H1, NULL }, 3, H3, 1,
	    "prev_hash does not link to entry 0 (the chain start, 64 zeros)" },
	{ "entry missing", 1, { 4, H1, H2, NULL }, 3, H3, 2,
	    "missing (positions jump from 1 to 4)" },
	{ "first entry missing", 0, { 2, ZEROS, H1, NULL }, 3, H3, 1,
	    "missing (positions jump from 0 to 2)" },
	{ "id below the start", 0, { 0, ZEROS, H1, NULL }, 3, H3, 1,
	    "unexpected position 0 (positions start at 1)" },
	{ "tail deleted", SIZE_MAX, { 0 }, 4, H3, 4,
	    "head points to entry 4 but the log ends at 3" },
	{ "head behind the log", SIZE_MAX, { 0 }, 2, H2, 3,
	    "head points to entry 2 but the log ends at 3" },
	{ "head hash differs", SIZE_MAX, { 0 }, 3, H2, 3, "head holds a different hash for it" },
};

static void
test_chain_broken(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(broken_cases); i++) {
		const struct broken_case *bc = &broken_cases[i];
		struct audit_chain c;
		int failed = 0;
		print_message("case: %s\n", bc->what);
		audit_chain_init(&c);
		for (size_t k = 0; k < ARRAY_LEN(chain3) && !failed; k++) {
			struct entry e = chain3[k];
			if (k == bc->which) {
				e.id = bc->changed.id;
				e.prev_hash = bc->changed.prev_hash;
				e.hash = bc->changed.hash;
				if (bc->changed.canonical != NULL)
					e.canonical = bc->changed.canonical;
			}
			failed = add(&c, &e) != 0;
		}
		if (!failed)
			failed = audit_chain_finish(&c, bc->head_id, bc->head_hash) != 0;
		assert_true(failed);
		assert_false(c.intact);
		assert_int_equal(c.broken, bc->broken);
		assert_string_equal(c.reason, bc->reason);
		/* Once broken, it stays broken. */
		assert_int_equal(add(&c, &chain3[0]), -1);
		assert_int_equal(audit_chain_finish(&c, 0, ZEROS), -1);
		assert_int_equal(c.broken, bc->broken);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_parse),
		cmocka_unit_test(test_provider_request),
		cmocka_unit_test(test_role_binding),
		cmocka_unit_test(test_date_parse),
		cmocka_unit_test(test_encode_and_hash),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_chain_hash),
		cmocka_unit_test(test_chain_intact),
		cmocka_unit_test(test_chain_broken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
