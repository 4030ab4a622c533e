#include "audit_chain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

void
audit_chain_init(struct audit_chain *c)
{
	memset(c, 0, sizeof(*c));
	memset(c->last_hash, '0', AUDIT_HASH_LEN);
	c->intact = true;
}

void
audit_chain_hash(
    const char *prev_hash, const char *canonical, size_t len, char out[AUDIT_HASH_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, prev_hash, strlen(prev_hash)) != 1 ||
	    EVP_DigestUpdate(ctx, canonical, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"SHA-256 failed\"}\n");
		abort();
	}
	EVP_MD_CTX_free(ctx);
	hex_encode(md, mdlen, out);
}

static int
broken_at(struct audit_chain *c, int64_t entry, const char *reason)
{
	c->intact = false;
	c->broken = entry;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	return -1;
}

int
audit_chain_add(struct audit_chain *c, int64_t id, const char *prev_hash, const char *hash,
    const char *canonical, size_t len)
{
	char computed[AUDIT_HASH_LEN + 1];
	char reason[sizeof(c->reason)];
	int64_t expected = c->last_id + 1;

	if (!c->intact)
		return -1;
	if (id != expected) {
		if (id > expected)
			snprintf(reason, sizeof(reason),
			    "missing (positions jump from %" PRId64 " to %" PRId64 ")", c->last_id,
			    id);
		else if (c->last_id == 0)
			snprintf(reason, sizeof(reason),
			    "unexpected position %" PRId64 " (positions start at 1)", id);
		else
			snprintf(reason, sizeof(reason),
			    "out of order (position %" PRId64 " after %" PRId64 ")", id,
			    c->last_id);
		return broken_at(c, expected, reason);
	}
	if (strcmp(prev_hash, c->last_hash) != 0) {
		snprintf(reason, sizeof(reason), "prev_hash does not link to entry %" PRId64 "%s",
		    c->last_id, c->last_id == 0 ? " (the chain start, 64 zeros)" : "");
		return broken_at(c, id, reason);
	}
	audit_chain_hash(prev_hash, canonical, len, computed);
	if (strcmp(hash, computed) != 0)
		return broken_at(c, id, "hash does not match its content");
	c->last_id = id;
	memcpy(c->last_hash, computed, sizeof(c->last_hash));
	c->count++;
	return 0;
}

int
audit_chain_finish(struct audit_chain *c, int64_t head_id, const char *head_hash)
{
	char reason[sizeof(c->reason)];

	if (!c->intact)
		return -1;
	if (head_id != c->last_id) {
		snprintf(reason, sizeof(reason),
		    "head points to entry %" PRId64 " but the log ends at %" PRId64, head_id,
		    c->last_id);
		return broken_at(c, (head_id < c->last_id ? head_id : c->last_id) + 1, reason);
	}
	if (strcmp(head_hash, c->last_hash) != 0)
		return broken_at(c, c->last_id, "head holds a different hash for it");
	return 0;
}
