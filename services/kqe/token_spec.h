/*
 * token_spec — the pure part of `kqe token`: what a token request means, what
 * a token looks like and what is stored of it. No I/O and no database, so it
 * is unit-tested directly (tests/unit/test_tokens.c); token.c does the rest.
 *
 * A token is "kqe_" followed by 32 random bytes in base64url without padding
 * (43 characters). Only the lowercase hex SHA-256 of the whole string, prefix
 * included, is stored (api_tokens.token_hash); the value itself exists only
 * in the output of `kqe token create`.
 */
#ifndef KQE_ADMIN_TOKEN_SPEC_H
#define KQE_ADMIN_TOKEN_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "kqe/api_key.h"
#include "kqe/principal.h"
#include "kqe/util.h"

#define TOKEN_NAME_MAX 100 /* characters (code points); the schema's CHECK */

/* What a role is bound to; the schema's CHECKs allow exactly one per role. */
enum token_binding {
	TOKEN_BINDING_NONE, /* ministry, admin */
	TOKEN_BINDING_OFFICE, /* office_staff, office_lead */
	TOKEN_BINDING_REGION, /* advisor */
	TOKEN_BINDING_INSTITUTE, /* institute */
	TOKEN_BINDING_PROVIDER, /* provider_staff */
	TOKEN_BINDING_PROGRAMME, /* programme_team */
};

/* A checked `kqe token create` request. Strings are borrowed from argv (region: static). */
struct token_request {
	const char *name;
	enum role role;
	const char *office_id; /* NULL unless the role is bound to an office */
	const char *region; /* "LVR" or "LWL"; NULL unless advisor */
	const char *institute_id; /* NULL unless institute */
	const char *provider_id; /* NULL unless provider_staff */
	const char *programme_id; /* a UUID; NULL unless programme_team */
	const char *expires; /* "YYYY-MM-DD" at 00:00 UTC, after now; NULL: never */
};

/* The binding a token role needs. */
enum token_binding token_role_binding(enum role role);

/*
 * Parses the options of `kqe token create` (argv[0..argc) are the words after
 * "create") against the clock value now (seconds since the epoch, UTC).
 * Returns 0 with *req filled, or -1 with a one-line reason in err: unknown or
 * repeated option, missing value, unknown role, a binding the role does not
 * take or lacks, a bad or past date, an empty, too long or non-printable name.
 */
int token_request_parse(int argc, char *const *argv, int64_t now, struct token_request *req,
    char *err, size_t errsize) KQE_MUSTCHECK;

/*
 * Reads "YYYY-MM-DD" (exactly that shape, a real calendar date, years
 * 1970..9999) and sets *at to its 00:00 UTC in seconds since the epoch.
 * 0 or -1.
 */
int token_date_parse(const char *s, int64_t *at) KQE_MUSTCHECK;

#endif
