/*
 * kqe audit verify — recomputes the audit log's hash chain in C, independent
 * of the SQL that wrote it, and names the first broken entry (audit_chain.h
 * says what is checked). Reads in one REPEATABLE READ snapshot so appends
 * running meanwhile neither break the walk nor move the head under it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_chain.h"
#include "cli.h"
#include "commands.h"
#include "kqe/db.h"

/* Rows per round trip: a few MB at most, and few round trips for a long log. */
#define AUDIT_VERIFY_BATCH 5000

static const struct db_stmt stmt_batch = { "audit_verify_batch",
	"SELECT id, prev_hash, hash, kqe_audit_canonical(a) FROM audit_log a"
	" WHERE id > $1::bigint ORDER BY id LIMIT $2::integer" };

static const struct db_stmt stmt_head = { "audit_verify_head",
	"SELECT last_id, last_hash FROM audit_head" };

/* Parses a bigint column; a NULL or garbage value cannot come from PostgreSQL's bigint. */
static int64_t
column_int64(const PGresult *res, int row, int col)
{
	char *end;
	errno = 0;
	long long v = strtoll(PQgetvalue(res, row, col), &end, 10);
	if (errno != 0 || *end != '\0' || end == PQgetvalue(res, row, col)) {
		fprintf(stderr, "kqe audit verify: unexpected value \"%s\" in a bigint column\n",
		    PQgetvalue(res, row, col));
		abort();
	}
	return (int64_t)v;
}

/*
 * Feeds every entry to the chain in id order. 0 when the walk finished (the
 * chain may still be broken: see c->intact), -1 on a database error.
 */
static int
verify_entries(struct db *db, struct audit_chain *c)
{
	char after[24] = "-9223372036854775808"; /* below every id, so no row is skipped */
	char limit[16];

	snprintf(limit, sizeof(limit), "%d", AUDIT_VERIFY_BATCH);
	for (;;) {
		const char *params[] = { after, limit };
		PGresult *res = db_exec(db, &stmt_batch, 2, params);
		if (res == NULL)
			return -1;
		int n = PQntuples(res);
		for (int row = 0; row < n && c->intact; row++) {
			int64_t id = column_int64(res, row, 0);
			if (audit_chain_add(c, id, PQgetvalue(res, row, 1), PQgetvalue(res, row, 2),
			        PQgetvalue(res, row, 3), (size_t)PQgetlength(res, row, 3)) != 0)
				break;
			snprintf(after, sizeof(after), "%" PRId64, id);
		}
		PQclear(res);
		if (!c->intact || n < AUDIT_VERIFY_BATCH)
			return 0;
	}
}

static int
audit_verify(const struct config *cfg)
{
	struct db *db = db_new(cfg->database_admin_url, cfg->statement_timeout_ms, "kqe-audit");
	struct audit_chain chain;
	PGresult *head = NULL;
	int rc = 1;

	audit_chain_init(&chain);
	if (cli_db_connect(db, "kqe audit verify") != 0)
		goto out;
	if (db_begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0 ||
	    verify_entries(db, &chain) != 0 || (head = db_exec(db, &stmt_head, 0, NULL)) == NULL) {
		cli_db_error("kqe audit verify", db);
		goto out;
	}
	if (chain.intact) {
		if (PQntuples(head) != 1) {
			fprintf(stderr, "audit: the chain head (audit_head) is missing\n");
			goto out;
		}
		if (audit_chain_finish(&chain, column_int64(head, 0, 0), PQgetvalue(head, 0, 1)) ==
		    0) {
			printf("audit: %" PRId64 " entries verified, chain intact\n", chain.count);
			rc = 0;
			goto out;
		}
	}
	fprintf(stderr, "audit: entry %" PRId64 " is broken: %s\n", chain.broken, chain.reason);
out:
	db_rollback(db); /* read only: nothing to keep */
	PQclear(head);
	db_free(db);
	return rc;
}

int
cmd_audit(int argc, char **argv, const struct config *cfg)
{
	if (argc == 2 && strcmp(argv[1], "verify") == 0)
		return audit_verify(cfg);
	fprintf(stderr, "usage: kqe audit verify\n");
	return 2;
}
