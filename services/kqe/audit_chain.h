/*
 * audit_chain — checks the hash chain of the audit log (audit_log and
 * audit_head, migrations 0003 and 0033) the way `kqe audit verify` reads it.
 * Pure: the caller feeds the sealed entries in the order of their chain
 * positions (audit_log.seq), then the head; the first problem stops the check
 * and names the broken position and why.
 *
 * The chain: positions run 1, 2, 3, ... without gaps; entry 1's prev_hash is
 * 64 zeros and every later prev_hash is the hash of the entry before; hash is
 * the lowercase hex SHA-256 of prev_hash followed by the entry's canonical
 * text (kqe_audit_canonical(), UTF-8); the head holds the last position and
 * hash, so a deleted tail shows too. (Entries written before 0033 have their
 * id as their position.)
 */
#ifndef KQE_ADMIN_AUDIT_CHAIN_H
#define KQE_ADMIN_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kqe/util.h"

#define AUDIT_HASH_LEN 64

struct audit_chain {
	int64_t count; /* entries checked and found intact */
	int64_t last_id; /* the last position checked; 0 before the first entry */
	char last_hash[AUDIT_HASH_LEN + 1]; /* 64 zeros before the first entry */
	bool intact;
	int64_t broken; /* once !intact: the first broken entry (0: head of an empty log) */
	char reason[160]; /* once !intact: why */
};

void audit_chain_init(struct audit_chain *c);

/* Writes the lowercase hex SHA-256 of prev_hash || canonical[0..len) into out. */
void audit_chain_hash(
    const char *prev_hash, const char *canonical, size_t len, char out[AUDIT_HASH_LEN + 1]);

/*
 * Checks the next entry (the one after the last added). Returns 0 if it is
 * intact, else -1 with intact cleared and broken and reason set; once broken, every call
 * returns -1 without looking at its arguments.
 */
int audit_chain_add(struct audit_chain *c, int64_t id, const char *prev_hash, const char *hash,
    const char *canonical, size_t len) KQE_MUSTCHECK;

/* Checks the head against the last entry added. 0 or -1 like audit_chain_add. */
int audit_chain_finish(struct audit_chain *c, int64_t head_id, const char *head_hash) KQE_MUSTCHECK;

#endif
