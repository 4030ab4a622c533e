/*
 * kqe audit verify|seal|key — the audit log's hash chain from the command line
 * (docs/security.md, "Audit").
 *
 * verify recomputes the chain in C, independent of the SQL that sealed it, in the order of
 * the chain positions, and names the first broken entry (audit_chain.h says what is
 * checked). It also checks every signed head kept in audit_heads against the chain (and its
 * signature, with KQE_AUDIT_PUBLIC_KEY), and with --head FILE a head kept outside the
 * system (as GET /v1/audit/head gave it): a chain the database's owner rewrote and
 * re-hashed no longer has that head's hash at its position. It reads in one REPEATABLE READ
 * snapshot, so appends and seals running meanwhile neither break the walk nor move the head
 * under it.
 *
 * seal links the finished appends into the chain now (kqe-aggregator does it every
 * KQE_AUDIT_SEAL_INTERVAL_MS) and, with KQE_AUDIT_SIGNING_KEY, signs the head. key prints
 * the public key and key id of KQE_AUDIT_SIGNING_KEY.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit_chain.h"
#include "cli.h"
#include "commands.h"
#include "kqe/audit_seal.h"
#include "kqe/db.h"

/* Rows per round trip: a few MB at most, and few round trips for a long log. */
#define AUDIT_VERIFY_BATCH 5000
#define AUDIT_USAGE "usage: kqe audit verify [--head FILE] | kqe audit seal | kqe audit key\n"

static const struct db_stmt stmt_batch = { "audit_verify_batch",
	"SELECT seq, prev_hash, hash, kqe_audit_canonical(a) FROM audit_log a"
	" WHERE seq > $1::bigint ORDER BY seq LIMIT $2::integer" };
static const struct db_stmt stmt_head = { "audit_verify_head",
	"SELECT last_id, last_hash FROM audit_head" };
static const struct db_stmt stmt_heads = { "audit_verify_heads",
	"SELECT seq, hash, kqe_ts(signed_at), key_id, signature FROM audit_heads ORDER BY seq" };
static const struct db_stmt stmt_unsealed = { "audit_verify_unsealed",
	"SELECT count(*) FROM audit_log WHERE seq IS NULL" };
static const struct db_stmt stmt_entry_id = { "audit_verify_entry_id",
	"SELECT coalesce((SELECT id::text FROM audit_log WHERE seq = $1::bigint), '?')" };

/* A signed head: from audit_heads, or from a file kept outside. */
struct head {
	int64_t seq;
	char hash[AUDIT_HASH_LEN + 1];
	char signed_at[40];
	char key_id[SIGNER_KEY_ID_LEN + 1];
	char signature[100];
	const char *source; /* "signed head" or the file's name */
};

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

/* Copies a text field into dst (size n); -1 if it does not fit. */
static int
copy_field(char *dst, size_t n, const char *src)
{
	if (src == NULL || strlen(src) >= n)
		return -1;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/* A head as GET /v1/audit/head answers it (the object itself, or the answer around it). */
static int
head_from_file(const char *path, struct head *h)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr), *o = doc;
	if (o != NULL && json_object_get(o, "head") != NULL)
		o = json_object_get(o, "head");
	int rc = -1;
	if (json_is_object(o) && json_is_integer(json_object_get(o, "seq")) &&
	    copy_field(h->hash, sizeof(h->hash), json_string_value(json_object_get(o, "hash"))) ==
	        0 &&
	    copy_field(h->signed_at, sizeof(h->signed_at),
	        json_string_value(json_object_get(o, "signed_at"))) == 0 &&
	    copy_field(h->key_id, sizeof(h->key_id),
	        json_string_value(json_object_get(o, "key_id"))) == 0 &&
	    copy_field(h->signature, sizeof(h->signature),
	        json_string_value(json_object_get(o, "signature"))) == 0) {
		h->seq = (int64_t)json_integer_value(json_object_get(o, "seq"));
		h->source = path;
		rc = 0;
	} else {
		fprintf(stderr,
		    "kqe audit verify: %s is not an audit head (seq, hash, signed_at, "
		    "key_id, signature)\n",
		    path);
	}
	json_decref(doc);
	return rc;
}

/*
 * A head's signature against the configured public keys (KQE_AUDIT_PUBLIC_KEY, a comma-
 * separated list: the current key and those it replaced): NULL if it holds (or no key is
 * configured), else why not.
 */
static const char *
signature_problem(const struct config *cfg, const struct head *h)
{
	if (strcmp(cfg->audit_public_key, "-") == 0)
		return NULL;
	char *keys = xstrdup(cfg->audit_public_key), *save = NULL;
	const char *why = "signed by a key not in KQE_AUDIT_PUBLIC_KEY";
	for (char *k = strtok_r(keys, ",", &save); k != NULL; k = strtok_r(NULL, ",", &save)) {
		char id[SIGNER_KEY_ID_LEN + 1];
		if (signer_public_key_id(k, id) != 0 || strcmp(id, h->key_id) != 0)
			continue;
		char *msg = audit_head_message(h->seq, h->hash, h->signed_at);
		int ok = signature_verify(k, msg, strlen(msg), h->signature);
		free(msg);
		why = ok == 1 ? NULL : "its signature does not verify";
		break;
	}
	free(keys);
	return why;
}

/* The heads to check along the walk: audit_heads, then the outside one (sorted by seq). */
struct heads {
	struct head *v;
	size_t n, next;
};

static int
head_cmp(const void *a, const void *b)
{
	const struct head *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* After entry c->last_id: every head at that position must hold the chain's hash. */
static int
check_heads_at(struct audit_chain *c, struct heads *hs)
{
	char reason[sizeof(c->reason)];
	for (; hs->next < hs->n && hs->v[hs->next].seq <= c->last_id; hs->next++) {
		const struct head *h = &hs->v[hs->next];
		if (h->seq == c->last_id && strcmp(h->hash, c->last_hash) != 0) {
			snprintf(reason, sizeof(reason),
			    "the chain was rewritten: the %s for position %" PRId64
			    " holds another hash",
			    h->source, h->seq);
			c->intact = false;
			c->broken = h->seq;
			snprintf(c->reason, sizeof(c->reason), "%s", reason);
			return -1;
		}
	}
	return 0;
}

/*
 * Feeds every sealed entry to the chain in position order, checking the heads on the way.
 * 0 when the walk finished (the chain may still be broken: see c->intact), -1 on a database
 * error.
 */
static int
verify_entries(struct db *db, struct audit_chain *c, struct heads *hs)
{
	char after[24] = "-9223372036854775808"; /* below every position: no row is skipped */
	char limit[16];

	snprintf(limit, sizeof(limit), "%d", AUDIT_VERIFY_BATCH);
	for (;;) {
		const char *params[] = { after, limit };
		PGresult *res = db_exec(db, &stmt_batch, 2, params);
		if (res == NULL)
			return -1;
		int n = PQntuples(res);
		for (int row = 0; row < n && c->intact; row++) {
			int64_t seq = column_int64(res, row, 0);
			if (audit_chain_add(c, seq, PQgetvalue(res, row, 1),
			        PQgetvalue(res, row, 2), PQgetvalue(res, row, 3),
			        (size_t)PQgetlength(res, row, 3)) != 0 ||
			    check_heads_at(c, hs) != 0)
				break;
			snprintf(after, sizeof(after), "%" PRId64, seq);
		}
		PQclear(res);
		if (!c->intact || n < AUDIT_VERIFY_BATCH)
			return 0;
	}
}

/* audit_heads into hs (plus the outside head, if any), each signature checked. */
static int
load_heads(struct db *db, const struct config *cfg, const struct head *outside, struct heads *hs)
{
	PGresult *res = db_exec(db, &stmt_heads, 0, NULL);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	hs->v = xcalloc((size_t)n + 1, sizeof(*hs->v));
	for (int i = 0; i < n; i++) {
		struct head *h = &hs->v[hs->n];
		h->seq = column_int64(res, i, 0);
		h->source = "signed head";
		if (copy_field(h->hash, sizeof(h->hash), PQgetvalue(res, i, 1)) != 0 ||
		    copy_field(h->signed_at, sizeof(h->signed_at), PQgetvalue(res, i, 2)) != 0 ||
		    copy_field(h->key_id, sizeof(h->key_id), PQgetvalue(res, i, 3)) != 0 ||
		    copy_field(h->signature, sizeof(h->signature), PQgetvalue(res, i, 4)) != 0) {
			fprintf(stderr,
			    "audit: the signed head for position %" PRId64 " is malformed\n",
			    h->seq);
			PQclear(res);
			return 1;
		}
		hs->n++;
	}
	PQclear(res);
	if (outside != NULL)
		hs->v[hs->n++] = *outside;
	for (size_t i = 0; i < hs->n; i++) {
		const char *why = signature_problem(cfg, &hs->v[i]);
		if (why != NULL) {
			fprintf(stderr,
			    "audit: the %s for position %" PRId64 " is not genuine: %s\n",
			    hs->v[i].source, hs->v[i].seq, why);
			return 1;
		}
	}
	qsort(hs->v, hs->n, sizeof(*hs->v), head_cmp);
	return 0;
}

/* The entry id at a broken position, for the message (the API names entries by id). */
static void
report_broken(struct db *db, const struct audit_chain *c)
{
	char seq[24];
	snprintf(seq, sizeof(seq), "%" PRId64, c->broken);
	const char *params[] = { seq };
	PGresult *res = db_exec(db, &stmt_entry_id, 1, params);
	fprintf(stderr, "audit: entry %s is broken (chain position %" PRId64 "): %s\n",
	    res != NULL ? PQgetvalue(res, 0, 0) : "?", c->broken, c->reason);
	PQclear(res);
}

/* After the walk: the head row, then every head must lie within the chain. */
static int
finish(struct audit_chain *c, const PGresult *head, const struct heads *hs)
{
	if (PQntuples(head) != 1) {
		fprintf(stderr, "audit: the chain head (audit_head) is missing\n");
		return -1;
	}
	if (audit_chain_finish(c, column_int64(head, 0, 0), PQgetvalue(head, 0, 1)) != 0)
		return 0;
	if (hs->next < hs->n) {
		c->intact = false;
		c->broken = c->last_id + 1;
		snprintf(c->reason, sizeof(c->reason),
		    "the chain ends at position %" PRId64 ", before the %s for position %" PRId64,
		    c->last_id, hs->v[hs->next].source, hs->v[hs->next].seq);
	}
	return 0;
}

static int
audit_verify(const struct config *cfg, const char *head_file)
{
	struct head outside;
	if (head_file != NULL) {
		if (head_from_file(head_file, &outside) != 0)
			return 2;
		if (strcmp(cfg->audit_public_key, "-") == 0) {
			fprintf(stderr,
			    "kqe audit verify --head: set KQE_AUDIT_PUBLIC_KEY to check the "
			    "head's signature\n");
			return 2;
		}
	}
	struct db *db = db_new(cfg->database_admin_url, cfg->statement_timeout_ms, "kqe-audit");
	struct audit_chain chain;
	struct heads hs = { 0 };
	PGresult *head = NULL, *unsealed = NULL;
	int rc = 1;

	audit_chain_init(&chain);
	if (cli_db_connect(db, "kqe audit verify") != 0)
		goto out;
	if (db_begin_with(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
		goto db_error;
	int loaded = load_heads(db, cfg, head_file != NULL ? &outside : NULL, &hs);
	if (loaded < 0)
		goto db_error;
	if (loaded > 0)
		goto out;
	if (verify_entries(db, &chain, &hs) != 0 ||
	    (head = db_exec(db, &stmt_head, 0, NULL)) == NULL ||
	    (unsealed = db_exec(db, &stmt_unsealed, 0, NULL)) == NULL)
		goto db_error;
	if (chain.intact && finish(&chain, head, &hs) != 0)
		goto out;
	if (!chain.intact) {
		report_broken(db, &chain);
		goto out;
	}
	printf("audit: %" PRId64 " entries verified, chain intact; %zu signed head%s verified%s;"
	       " %s not sealed yet\n",
	    chain.count, hs.n, hs.n == 1 ? "" : "s",
	    strcmp(cfg->audit_public_key, "-") == 0 ? " against the chain (signatures not checked:"
	                                              " KQE_AUDIT_PUBLIC_KEY is not set)"
	                                            : ", signatures included",
	    PQgetvalue(unsealed, 0, 0));
	rc = 0;
	goto out;
db_error:
	cli_db_error("kqe audit verify", db);
out:
	db_rollback(db); /* read only: nothing to keep */
	PQclear(head);
	PQclear(unsealed);
	free(hs.v);
	db_free(db);
	return rc;
}

static int
audit_seal_now(const struct config *cfg)
{
	char err[128];
	struct signer *s = NULL;
	if (strcmp(cfg->audit_signing_key, "-") != 0 &&
	    (s = signer_new(cfg->audit_signing_key, err, sizeof(err))) == NULL) {
		fprintf(stderr, "kqe audit seal: KQE_AUDIT_SIGNING_KEY: %s\n", err);
		return 2;
	}
	struct db *db = db_new(cfg->database_admin_url, cfg->statement_timeout_ms, "kqe-audit");
	struct audit_head head;
	long long sealed = -1;
	int rc = 1;
	if (cli_db_connect(db, "kqe audit seal") == 0 &&
	    (sealed = audit_seal(db, 2000, &head)) >= 0 &&
	    (s == NULL || head.seq == 0 || audit_sign_head(db, s, &head) == 0)) {
		printf("audit: %lld entries sealed; head at position %lld%s\n", sealed, head.seq,
		    s != NULL && head.seq > 0 ? ", signed" : "");
		rc = 0;
	} else {
		cli_db_error("kqe audit seal", db);
	}
	db_free(db);
	signer_free(s);
	return rc;
}

static int
audit_key(const struct config *cfg)
{
	char err[128];
	struct signer *s;
	if (strcmp(cfg->audit_signing_key, "-") == 0 ||
	    (s = signer_new(cfg->audit_signing_key, err, sizeof(err))) == NULL) {
		fprintf(
		    stderr, "kqe audit key: set KQE_AUDIT_SIGNING_KEY (openssl rand -base64 32)\n");
		return 2;
	}
	printf("public_key: %s\nkey_id: %s\n", signer_public_key(s), signer_key_id(s));
	signer_free(s);
	return 0;
}

int
cmd_audit(int argc, char **argv, const struct config *cfg)
{
	if (argc == 2 && strcmp(argv[1], "verify") == 0)
		return audit_verify(cfg, NULL);
	if (argc == 4 && strcmp(argv[1], "verify") == 0 && strcmp(argv[2], "--head") == 0)
		return audit_verify(cfg, argv[3]);
	if (argc == 2 && strcmp(argv[1], "seal") == 0)
		return audit_seal_now(cfg);
	if (argc == 2 && strcmp(argv[1], "key") == 0)
		return audit_key(cfg);
	fprintf(stderr, AUDIT_USAGE);
	return 2;
}
