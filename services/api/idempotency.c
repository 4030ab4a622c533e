#include "idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "http.h"
#include "kqe/log.h"

#define KEY_MAX 200

static const struct db_stmt stmt_reserve = { "idem_reserve",
	"INSERT INTO idempotency_keys AS k (actor, key, request_hash, status)"
	" VALUES ($1, $2, $3, 0)"
	" ON CONFLICT (actor, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
	" status = 0, location = NULL, created_at = now()"
	" WHERE k.created_at < now() - interval '24 hours'"
	" OR (k.status = 0 AND k.created_at < now() - interval '1 minute')"
	" RETURNING 1" };
static const struct db_stmt stmt_lookup = { "idem_lookup",
	"SELECT request_hash, status, coalesce(location, ''), body FROM idempotency_keys"
	" WHERE actor = $1 AND key = $2" };
static const struct db_stmt stmt_record = { "idem_record",
	"UPDATE idempotency_keys SET status = $3, location = $4, body = $5"
	" WHERE actor = $1 AND key = $2" };
static const struct db_stmt stmt_release = { "idem_release",
	"DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2 AND status = 0" };

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
	char hash[65];

	if (key == NULL || evhttp_request_get_command(r->req) != EVHTTP_REQ_POST)
		return IDEMPOTENCY_PROCEED;
	if (!key_valid(key)) {
		reply_problem(
		    r, 400, "Idempotency-Key must be 1 to 200 visible ASCII characters.", NULL);
		return IDEMPOTENCY_ANSWERED;
	}
	request_hash(r, hash);
	const char *params[] = { r->principal.actor, key, hash };
	struct db *db = r->worker->db;
	PGresult *res = db_exec(db, &stmt_reserve, 3, params);
	if (res == NULL) {
		reply_db_error(r);
		return IDEMPOTENCY_ANSWERED;
	}
	int reserved = PQntuples(res) == 1;
	PQclear(res);
	if (reserved) {
		r->idempotency_key = xstrdup(key);
		return IDEMPOTENCY_PROCEED;
	}
	res = db_exec(db, &stmt_lookup, 2, params);
	if (res == NULL || PQntuples(res) == 0) {
		PQclear(res);
		reply_db_error(r);
		return IDEMPOTENCY_ANSWERED;
	}
	int same = strcmp(PQgetvalue(res, 0, 0), hash) == 0;
	int status = atoi(PQgetvalue(res, 0, 1));
	enum idempotency outcome = IDEMPOTENCY_ANSWERED;
	if (!same) {
		reply_problem(
		    r, 422, "This Idempotency-Key was used with a different request.", NULL);
	} else if (status == 0) {
		reply_problem(
		    r, 409, "A request with this Idempotency-Key is still in progress.", NULL);
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

void
idempotency_finish(struct request *r)
{
	if (r->idempotency_key == NULL)
		return;
	const char *location =
	    evhttp_find_header(evhttp_request_get_output_headers(r->req), "Location");
	char status[8];
	char *copy = NULL;
	if (r->idempotency_keep_body && r->resp.body != NULL)
		copy = xstrndup((const char *)evbuffer_pullup(r->resp.body, -1),
		    evbuffer_get_length(r->resp.body));
	snprintf(status, sizeof(status), "%d", r->resp.status);
	const char *params[] = { r->principal.actor, r->idempotency_key, status, location, copy };
	int keep =
	    r->resp.status >= 200 && r->resp.status < 300 && (location != NULL || copy != NULL);
	PGresult *res =
	    db_exec(r->worker->db, keep ? &stmt_record : &stmt_release, keep ? 5 : 2, params);
	if (res == NULL)
		log_warn(r->id, "idempotency key not recorded", NULL);
	PQclear(res);
	free(copy);
	free(r->idempotency_key);
	r->idempotency_key = NULL;
}
