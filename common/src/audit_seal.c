#include "kqe/audit_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/util.h"

static const struct db_stmt stmt_seal = { "audit_seal",
	"SELECT sealed, last_seq, last_hash FROM kqe_audit_seal($1::integer)" };
/* The time a head is signed at, as the API writes times. */
static const struct db_stmt stmt_now = { "audit_head_now",
	"SELECT kqe_ts(date_trunc('microseconds', clock_timestamp()))" };
static const struct db_stmt stmt_publish = { "audit_head_publish",
	"SELECT kqe_audit_publish_head($1::bigint, $2, $3::timestamptz, $4, $5)" };

long long
audit_seal(struct db *db, int batch, struct audit_head *head)
{
	char limit[16];
	long long total = 0;
	snprintf(limit, sizeof(limit), "%d", batch);
	const char *params[] = { limit };
	for (;;) {
		PGresult *res = db_exec(db, &stmt_seal, 1, params);
		if (res == NULL)
			return -1;
		long long n = atoll(PQgetvalue(res, 0, 0));
		head->seq = atoll(PQgetvalue(res, 0, 1));
		snprintf(head->hash, sizeof(head->hash), "%s", PQgetvalue(res, 0, 2));
		PQclear(res);
		total += n;
		if (n < batch)
			return total;
	}
}

char *
audit_head_message(long long seq, const char *hash, const char *signed_at)
{
	return xasprintf("kqe audit head v1\n%lld\n%s\n%s", seq, hash, signed_at);
}

int
audit_sign_head(struct db *db, const struct signer *s, const struct audit_head *head)
{
	PGresult *now = db_exec(db, &stmt_now, 0, NULL);
	if (now == NULL)
		return -1;
	char *msg = audit_head_message(head->seq, head->hash, PQgetvalue(now, 0, 0));
	char *sig = signer_sign(s, msg, strlen(msg));
	char seq[24];
	snprintf(seq, sizeof(seq), "%lld", head->seq);
	const char *params[] = { seq, head->hash, PQgetvalue(now, 0, 0), signer_key_id(s), sig };
	PGresult *res = db_exec(db, &stmt_publish, 5, params);
	int rc = res != NULL ? 0 : -1;
	PQclear(res);
	PQclear(now);
	free(msg);
	free(sig);
	return rc;
}
