/*
 * audit_seal — links the audit log's appends into its hash chain once their transactions
 * have ended, and signs the chain's head (migration 0033; docs/security.md, "Audit").
 * Appends take no lock (kqe_audit_append); kqe-aggregator seals every
 * KQE_AUDIT_SEAL_INTERVAL_MS and signs a head every KQE_AUDIT_HEAD_INTERVAL_S, and
 * `kqe audit seal` does both once.
 */
#ifndef KQE_AUDIT_SEAL_H
#define KQE_AUDIT_SEAL_H

#include "kqe/crypto.h"
#include "kqe/db.h"

#define AUDIT_HASH_HEX 64

struct audit_head {
	long long seq; /* the last sealed chain position; 0 for an empty chain */
	char hash[AUDIT_HASH_HEX + 1];
};

/*
 * Seals every finished append, in rounds of at most `batch`; head gets the chain's head after
 * it. Returns how many entries were sealed, or -1 on a database error.
 */
long long audit_seal(struct db *db, int batch, struct audit_head *head) KQE_MUSTCHECK;

/*
 * Signs head with s and keeps it in audit_heads (a head already signed is kept as it was).
 * 0, or -1 on a database error.
 */
int audit_sign_head(
    struct db *db, const struct signer *s, const struct audit_head *head) KQE_MUSTCHECK;

/*
 * The text a head's signature covers: "kqe audit head v1", seq, hash and signed_at (RFC 3339
 * as the API writes it) on four lines. Returns a new string (caller frees).
 */
char *audit_head_message(long long seq, const char *hash, const char *signed_at);

#endif
