/*
 * kqe token — API keys: create, list, revoke.
 *
 * create prints the token once and stores only its SHA-256; creating and
 * revoking write the change and its audit entry in one transaction, so there
 * is never a token without its trace. Nothing here logs or prints a token
 * value or hash except the single `token:` line of create.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "commands.h"
#include "kqe/db.h"
#include "kqe/principal.h"
#include "token_spec.h"

#define TOKEN_USAGE                                                                                \
	"usage: kqe token create --name NAME --role ROLE [--office ID | --region LVR|LWL |\n"      \
	"                        --institute ID | --provider ID | --programme UUID]\n"             \
	"                        [--expires YYYY-MM-DD]\n"                                         \
	"       kqe token list\n"                                                                  \
	"       kqe token revoke ID\n"

/* ---- SQL ---- */

static const struct db_stmt stmt_insert = { "token_insert",
	"INSERT INTO api_tokens (name, token_hash, role, office_id, region, institute_id,"
	" provider_id, programme_id, expires_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $8, $9::uuid, $7::date::timestamp AT TIME ZONE 'UTC')"
	" RETURNING id" };

static const struct db_stmt stmt_list = { "token_list",
	"SELECT id, name, role, coalesce(office_id, region, institute_id, provider_id,"
	" programme_id::text, '-'),"
	" kqe_ts(created_at), coalesce(kqe_ts(expires_at), '-'),"
	" CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
	" WHEN expires_at <= now() THEN 'expired' ELSE 'active' END" /* as services/api/auth.c */
	" FROM api_tokens ORDER BY created_at, id" };

/* The row lock keeps two concurrent revokes from both writing an audit entry. */
static const struct db_stmt stmt_lock = { "token_lock",
	"SELECT id, name, role, office_id, kqe_ts(revoked_at)"
	" FROM api_tokens WHERE id = $1::uuid FOR UPDATE" };

static const struct db_stmt stmt_revoke = { "token_revoke",
	"UPDATE api_tokens SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL" };

/* ---- create ---- */

static struct db *
token_db(const struct config *cfg)
{
	return db_new(cfg->database_admin_url, cfg->statement_timeout_ms, "kqe-token");
}

/* Why an insert failed, in the operator's terms where we know them. */
static void
create_error(struct db *db, const struct token_request *req)
{
	const char *cons = db_error_constraint(db);

	if (strcmp(db_error_sqlstate(db), "23503") == 0 &&
	    strcmp(cons, "api_tokens_office_id_fkey") == 0)
		fprintf(stderr, "kqe token create: unknown office \"%s\"\n", req->office_id);
	else if (strcmp(db_error_sqlstate(db), "23503") == 0 &&
	         strcmp(cons, "api_tokens_institute_id_fkey") == 0)
		fprintf(stderr, "kqe token create: unknown institute \"%s\"\n", req->institute_id);
	else if (strcmp(db_error_sqlstate(db), "23503") == 0 &&
	         strcmp(cons, "api_tokens_provider_id_fkey") == 0)
		fprintf(stderr, "kqe token create: unknown provider \"%s\"\n", req->provider_id);
	else if (strcmp(db_error_sqlstate(db), "23503") == 0 &&
	         strcmp(cons, "api_tokens_programme_id_fkey") == 0)
		fprintf(stderr, "kqe token create: unknown programme \"%s\"\n", req->programme_id);
	else
		cli_db_error("kqe token create", db);
}

static int
token_create(int argc, char **argv, const struct config *cfg)
{
	struct token_request req;
	struct principal admin;
	char err[256], token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1], id[37];
	struct db *db = NULL;
	json_t *details = NULL;
	PGresult *res = NULL;
	int rc = 1;

	if (token_request_parse(argc - 1, argv + 1, (int64_t)time(NULL), &req, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "kqe token create: %s\n%s", err, TOKEN_USAGE);
		return 2;
	}
	token_generate(token);
	token_hash(token, hash);
	const char *params[] = { req.name, hash, role_name(req.role), req.office_id, req.region,
		req.institute_id, req.expires, req.provider_id, req.programme_id };

	db = token_db(cfg);
	cli_principal(&admin);
	if (cli_db_connect(db, "kqe token create") != 0)
		goto out;
	if (db_begin_as(db, &admin) != 0) {
		cli_db_error("kqe token create", db);
		goto out;
	}
	res = db_exec(db, &stmt_insert, 9, params);
	if (res == NULL) {
		create_error(db, &req);
		goto fail;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	details = json_pack("{s:s, s:s}", "role", role_name(req.role), "name", req.name);
	if (details == NULL) {
		fprintf(stderr, "kqe token create: cannot encode the audit details\n");
		goto fail;
	}
	if (audit_append(db, &admin, "token.create", "token", id, req.office_id, NULL, details) !=
	    0) {
		cli_db_error("kqe token create: audit", db);
		goto fail;
	}
	/*
	 * Shown before the commit: a token nobody could read must not be stored.
	 * If the commit fails after this, the value printed is simply unknown.
	 */
	printf("token: %s\nid: %s\n", token, id);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kqe token create: cannot write the token to stdout\n");
		goto fail;
	}
	if (db_commit(db) != 0) {
		cli_db_error("kqe token create: commit", db);
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	db_rollback(db);
	fprintf(stderr, "kqe token create: no token created\n");
out:
	OPENSSL_cleanse(token, sizeof(token));
	PQclear(res);
	json_decref(details);
	db_free(db);
	return rc;
}

/* ---- list ---- */

/* Prints s with control characters as '?': one token per line, whatever a name holds. */
static void
print_field(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

static int
token_list(int argc, char **argv, const struct config *cfg)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "%s", TOKEN_USAGE);
		return 2;
	}
	struct db *db = token_db(cfg);
	PGresult *res = NULL;
	if (cli_db_connect(db, "kqe token list") != 0) {
		db_free(db);
		return 1;
	}
	if ((res = db_exec(db, &stmt_list, 0, NULL)) == NULL) {
		cli_db_error("kqe token list", db);
		db_free(db);
		return 1;
	}
	printf("id\tname\trole\tbinding\tcreated_at\texpires_at\tstatus\n");
	for (int row = 0; row < PQntuples(res); row++) {
		for (int col = 0; col < PQnfields(res); col++) {
			if (col > 0)
				putchar('\t');
			print_field(PQgetvalue(res, row, col));
		}
		putchar('\n');
	}
	PQclear(res);
	db_free(db);
	return 0;
}

/* ---- revoke ---- */

static int
token_revoke(int argc, char **argv, const struct config *cfg)
{
	struct principal admin;
	struct db *db = NULL;
	PGresult *res = NULL, *updated = NULL;
	json_t *details = NULL;
	const char *office_id;
	char id[37];
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "%s", TOKEN_USAGE);
		return 2;
	}
	if (!uuid_valid(argv[1])) {
		fprintf(stderr, "kqe token revoke: \"%s\" is not a token id (a UUID)\n", argv[1]);
		return 1;
	}
	const char *params[] = { argv[1] };
	db = token_db(cfg);
	cli_principal(&admin);
	if (cli_db_connect(db, "kqe token revoke") != 0)
		goto out;
	if (db_begin_as(db, &admin) != 0) {
		cli_db_error("kqe token revoke", db);
		goto out;
	}
	if ((res = db_exec(db, &stmt_lock, 1, params)) == NULL) {
		cli_db_error("kqe token revoke", db);
		goto fail;
	}
	if (PQntuples(res) == 0) {
		fprintf(stderr, "kqe token revoke: no token with id %s\n", argv[1]);
		goto fail;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	if (!PQgetisnull(res, 0, 4)) {
		/* Idempotent: the same answer, but nothing to change and nothing to audit. */
		db_rollback(db);
		fprintf(stderr, "kqe token revoke: %s was already revoked at %s; nothing changed\n",
		    id, PQgetvalue(res, 0, 4));
		printf("revoked: %s\n", id);
		rc = 0;
		goto out;
	}
	office_id = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
	details =
	    json_pack("{s:s, s:s}", "role", PQgetvalue(res, 0, 2), "name", PQgetvalue(res, 0, 1));
	if (details == NULL) {
		fprintf(stderr, "kqe token revoke: cannot encode the audit details\n");
		goto fail;
	}
	if ((updated = db_exec(db, &stmt_revoke, 1, params)) == NULL) {
		cli_db_error("kqe token revoke", db);
		goto fail;
	}
	if (audit_append(db, &admin, "token.revoke", "token", id, office_id, NULL, details) != 0) {
		cli_db_error("kqe token revoke: audit", db);
		goto fail;
	}
	if (db_commit(db) != 0) {
		cli_db_error("kqe token revoke: commit", db);
		goto fail;
	}
	printf("revoked: %s\n", id);
	rc = 0;
	goto out;
fail:
	db_rollback(db);
out:
	PQclear(updated);
	PQclear(res);
	json_decref(details);
	db_free(db);
	return rc;
}

/* ---- dispatch ---- */

static const struct {
	const char *what;
	int (*run)(int argc, char **argv, const struct config *cfg);
} token_commands[] = {
	{ "create", token_create },
	{ "list", token_list },
	{ "revoke", token_revoke },
};

int
cmd_token(int argc, char **argv, const struct config *cfg)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("%s", TOKEN_USAGE);
		return 0;
	}
	if (argc >= 2) {
		for (size_t i = 0; i < ARRAY_LEN(token_commands); i++)
			if (strcmp(argv[1], token_commands[i].what) == 0)
				return token_commands[i].run(argc - 1, argv + 1, cfg);
	}
	fprintf(stderr, "%s", TOKEN_USAGE);
	return 2;
}
