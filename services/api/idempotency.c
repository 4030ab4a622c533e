#include "idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "http.h"

#define KEY_MAX 200

/*
 * The lock is taken without waiting: a duplicate running concurrently is
 * answered 409 at once instead of holding a connection until the first ends.
 * A key row left committed with status 0 can only come from a version that
 * reserved keys outside the write's transaction; it is taken over.
 */
static const struct db_stmt stmt_lock = { "idem_lock",
	"SELECT pg_try_advisory_xact_lock(hashtextextended($1 || E'\\x1f' || $2, 7301))" };
static const struct db_stmt stmt_claim = { "idem_claim",
	"INSERT INTO idempotency_keys AS k (actor, key, request_hash, status)"
	" VALUES ($1, $2, $3, 0)"
	" ON CONFLICT (actor, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
	" status = 0, location = NULL, body = NULL, created_at = now()"
	" WHERE k.created_at < now() - interval '24 hours' OR k.status = 0"
	" RETURNING 1" };
static const struct db_stmt stmt_lookup = { "idem_lookup",
	"SELECT request_hash, status, coalesce(location, ''), body FROM idempotency_keys"
	" WHERE actor = $1 AND key = $2 AND status > 0"
	" AND created_at >= now() - interval '24 hours'" };
static const struct db_stmt stmt_record = { "idem_record",
	"UPDATE idempotency_keys SET status = $3, location = $4, body = $5"
	" WHERE actor = $1 AND key = $2" };

static int
key_valid(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return 0;
	return 1;
}

/* SHA-256 over method, URI (path and query) and body: what "the same request" means. */
static void
request_hash(struct request *r, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const char *uri = evhttp_request_get_uri(r->req);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, r->method, strlen(r->method) + 1);
	EVP_DigestUpdate(ctx, uri, strlen(uri) + 1);
	EVP_DigestUpdate(ctx, evbuffer_pullup(in, -1), evbuffer_get_length(in));
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	hex_encode(md, sizeof(md), out);
}

enum idempotency
idempotency_begin(struct request *r, char *location, size_t size, int *replay_status)
{
	const char *key =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Idempotency-Key");

	if (key == NULL || evhttp_request_get_command(r->req) != EVHTTP_REQ_POST)
		return IDEMPOTENCY_PROCEED;
	if (!key_valid(key)) {
		reply_problem(
		    r, 400, "Idempotency-Key must be 1 to 200 visible ASCII characters.", NULL);
		return IDEMPOTENCY_ANSWERED;
	}
	if (r->idempotency_key == NULL) {
		r->idempotency_key = xstrdup(key);
		request_hash(r, r->idempotency_hash);
	}
	const char *params[] = { r->principal.actor, key };
	PGresult *res = db_exec(r->db, &stmt_lookup, 2, params);
	if (res == NULL) {
		reply_db_error(r);
		return IDEMPOTENCY_ANSWERED;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		return IDEMPOTENCY_PROCEED;
	}
	int status = atoi(PQgetvalue(res, 0, 1));
	enum idempotency outcome = IDEMPOTENCY_ANSWERED;
	if (strcmp(PQgetvalue(res, 0, 0), r->idempotency_hash) != 0) {
		reply_problem(
		    r, 422, "This Idempotency-Key was used with a different request.", NULL);
	} else if (!PQgetisnull(res, 0, 3)) {
		/* An answer kept verbatim (no resource to re-read, no personal data). */
		const char *stored = PQgetvalue(res, 0, 3);
		reply_header(r, "Idempotency-Replayed", "true");
		reply_bytes(r, status, MEDIA_JSON, stored, strlen(stored));
	} else {
		snprintf(location, size, "%s", PQgetvalue(res, 0, 2));
		*replay_status = status;
		outcome = IDEMPOTENCY_REPLAY;
	}
	PQclear(res);
	return outcome;
}

int
idempotency_claim(struct request *r)
{
	if (r->idempotency_key == NULL)
		return 0;
	struct db *db = r->db;
	const char *params[] = { r->principal.actor, r->idempotency_key, r->idempotency_hash };
	PGresult *res = db_exec(db, &stmt_lock, 2, params);
	if (res == NULL)
		return -1;
	bool locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (locked) {
		if ((res = db_exec(db, &stmt_claim, 3, params)) == NULL)
			return -1;
		locked = PQntuples(res) == 1;
		PQclear(res);
	}
	r->idempotency_lost = !locked;
	return locked ? 0 : 1;
}

int
idempotency_record(struct request *r, int status, const char *location, const char *body)
{
	if (r->idempotency_key == NULL)
		return 0;
	char code[8];
	snprintf(code, sizeof(code), "%d", status);
	const char *params[] = { r->principal.actor, r->idempotency_key, code, location, body };
	PGresult *res = db_exec(r->db, &stmt_record, 5, params);
	PQclear(res);
	return res != NULL ? 0 : -1;
}
