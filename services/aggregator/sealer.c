/*
 * sealer — the aggregator's part of the audit log (kqe/audit_seal.h): appends take no lock,
 * so something must link them into the hash chain once their transactions have ended, and
 * sign the chain's head so it can leave the system. Any number of aggregators may run it:
 * kqe_audit_seal takes the head's row lock, so they seal one after the other.
 */
#include <stdio.h>

#include "aggregator.h"
#include "kqe/audit_seal.h"
#include "kqe/log.h"

#define SEAL_BATCH 2000

void
seal_tick(struct aggregator *a, uint64_t now)
{
	if (now < a->seal_next_ns)
		return;
	a->seal_next_ns = now + (uint64_t)a->cfg->audit_seal_interval_ms * 1000000ull;
	struct audit_head head;
	long long sealed = audit_seal(a->db, SEAL_BATCH, &head);
	if (sealed < 0) {
		log_warn(NULL, "audit seal failed; retrying later", NULL);
		return;
	}
	if (sealed > 0)
		log_debug(NULL, "audit entries sealed",
		    json_pack(
		        "{s:I,s:I}", "sealed", (json_int_t)sealed, "seq", (json_int_t)head.seq));
	if (a->signer == NULL || head.seq == 0 || head.seq == a->head_signed ||
	    now < a->head_next_ns)
		return;
	if (audit_sign_head(a->db, a->signer, &head) != 0) {
		log_warn(NULL, "audit head not signed; retrying later", NULL);
		return;
	}
	a->head_signed = head.seq;
	a->head_next_ns = now + (uint64_t)a->cfg->audit_head_interval_s * 1000000000ull;
	log_info(NULL, "audit head signed",
	    json_pack("{s:I,s:s}", "seq", (json_int_t)head.seq, "hash", head.hash));
}
