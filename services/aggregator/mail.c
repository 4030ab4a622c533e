/*
 * The mail worker (migration 0025_mails.sql): every MAIL_INTERVAL it claims
 * the queued mails that are due — a lease of MAIL_LEASE, committed before
 * anything is sent, so several aggregators share the queue (SKIP LOCKED) and
 * a crash only delays a mail — decrypts address and text, hands each to the
 * SMTP server (kqe/mail.h) and records the outcome: sent, or tried again after
 * KQE_MAIL_RETRY_MS doubling per attempt (at most an hour), failed after
 * KQE_MAIL_ATTEMPTS. Nothing of a mail's address or text is logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator.h"
#include "kqe/crypto.h"
#include "kqe/log.h"
#include "kqe/mail.h"
#include "kqe/principal.h"

#define MAIL_INTERVAL_NS 500000000ull /* look twice a second */
#define MAIL_BATCH "20"

static const struct principal worker = { .role = ROLE_SYSTEM, .actor = "system:mail" };

static const struct db_stmt stmt_claim = { "mail_claim",
	"UPDATE mails m SET attempts = m.attempts + 1,"
	" next_attempt_at = now() + interval '5 minutes'"
	" WHERE m.id IN (SELECT id FROM mails WHERE status = 'queued' AND next_attempt_at <= now()"
	"  ORDER BY next_attempt_at LIMIT " MAIL_BATCH " FOR UPDATE SKIP LOCKED)"
	" RETURNING m.id::text, m.kind, m.recipient_enc, m.subject, m.body_enc, m.attempts" };
static const struct db_stmt stmt_sent = { "mail_sent",
	"UPDATE mails SET status = 'sent', sent_at = now(), last_error = NULL"
	" WHERE id = $1::uuid" };
/* $2 the reason, $3 the base delay in ms, $4 the attempts allowed */
static const struct db_stmt stmt_failed = { "mail_failed",
	"UPDATE mails SET last_error = left($2, 300),"
	" status = CASE WHEN attempts >= $4::integer THEN 'failed' ELSE 'queued' END,"
	" next_attempt_at = now() + least(interval '1 hour',"
	"  $3::bigint * power(2, least(attempts - 1, 20)) * interval '1 millisecond')"
	" WHERE id = $1::uuid" };

/* One statement as the worker in its own transaction; 0 or -1. */
static int
as_worker(
    struct db *db, const struct db_stmt *stmt, int n, const char *const *params, PGresult **out)
{
	if (db_begin_as(db, &worker) != 0)
		return -1;
	PGresult *res = db_exec(db, stmt, n, params);
	if (res == NULL || db_commit(db) != 0) {
		PQclear(res);
		db_rollback(db);
		return -1;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return 0;
}

static char *
open_field(const struct keyring *k, const char *id, const char *field, const char *sealed)
{
	char aad[96];
	size_t len;
	snprintf(aad, sizeof(aad), "mail:%s:%s", id, field);
	return keyring_decrypt(k, sealed, aad, &len);
}

/* Sends one claimed mail and records what became of it. */
static void
send_one(struct aggregator *a, PGresult *res, int i)
{
	const char *id = PQgetvalue(res, i, 0), *kind = PQgetvalue(res, i, 1);
	char *to = open_field(a->keyring, id, "recipient", PQgetvalue(res, i, 2));
	char *body = open_field(a->keyring, id, "body", PQgetvalue(res, i, 4));
	char err[256] = "";
	int rc = -1;
	if (to == NULL || body == NULL) {
		snprintf(err, sizeof(err), "cannot be decrypted with KQE_DATA_KEYS");
	} else {
		char *message = mail_message(
		    a->cfg->mail_from, to, PQgetvalue(res, i, 3), body, id, time(NULL));
		if (message == NULL)
			snprintf(err, sizeof(err), "not a valid address");
		else
			rc = mail_send(a->cfg->smtp_url, a->cfg->mail_from, to, message,
			    a->cfg->smtp_timeout_ms, err, sizeof(err));
		free(message);
	}
	free(to);
	free(body);
	char base[24], attempts[24];
	snprintf(base, sizeof(base), "%ld", a->cfg->mail_retry_ms);
	snprintf(attempts, sizeof(attempts), "%ld", a->cfg->mail_attempts);
	const char *params[] = { id, err, base, attempts };
	int recorded = rc == 0 ? as_worker(a->db, &stmt_sent, 1, params, NULL)
	                       : as_worker(a->db, &stmt_failed, 4, params, NULL);
	if (rc == 0)
		log_info(NULL, "mail sent", json_pack("{s:s,s:s}", "mail_id", id, "kind", kind));
	else
		log_warn(NULL, "mail not sent",
		    json_pack("{s:s,s:s,s:s,s:i}", "mail_id", id, "kind", kind, "reason", err,
		        "attempt", atoi(PQgetvalue(res, i, 5))));
	if (recorded != 0)
		log_warn(NULL,
		    "mail outcome not recorded; the lease runs out and it is tried again",
		    json_pack("{s:s,s:s}", "mail_id", id, "sqlstate", db_error_sqlstate(a->db)));
}

void
mail_tick(struct aggregator *a, uint64_t now)
{
	if (a->keyring == NULL || strcmp(a->cfg->smtp_url, "-") == 0 || now < a->mail_next_ns)
		return;
	a->mail_next_ns = now + MAIL_INTERVAL_NS;
	PGresult *res = NULL;
	if (as_worker(a->db, &stmt_claim, 0, NULL, &res) != 0) {
		log_warn(NULL, "mail queue not readable; retrying",
		    json_pack("{s:s}", "sqlstate", db_error_sqlstate(a->db)));
		return;
	}
	for (int i = 0; i < PQntuples(res) && !*a->stop; i++)
		send_one(a, res, i);
	PQclear(res);
}
