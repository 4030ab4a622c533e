/*
 * ckm — the cell-key method: consistent random perturbation of published counts
 * (docs/disclosure.md).
 *
 * Every record (case analysis, topic, procedure) carries a random 32-bit record
 * key, set when it is inserted and never shown. A cell's key is the sum of the
 * record keys of the records it counts, modulo 2^32, so the same records always
 * give the same key — in every table, every report and every release — and the
 * same key always gives the same noise. The noise comes from a perturbation
 * table: for each true count i, the probabilities of publishing i + v for
 * v = -D … D. Each row is the distribution of maximum entropy with mean 0 and
 * variance V on the values it may take: none below 0, none in 1 … js (so no
 * published count lies between 1 and js), and a true 0 stays 0. Rows from
 * D + js + 1 on are the same symmetric distribution. The cell key picks the
 * noise: the row's cumulative probabilities split [0, 2^32) into intervals.
 */
#ifndef KQE_CKM_H
#define KQE_CKM_H

#include <stddef.h>
#include <stdint.h>

struct ckm_params {
	int max_deviation; /* D: |noise| <= D */
	double variance; /* V: the noise's variance in every row but the last */
	double variance_large; /* the last row's (every count from D + js + 1 on); 0: V */
	int js; /* no published count in 1 .. js */
};

/* The documented defaults (docs/disclosure.md says why these). */
#define CKM_DEFAULT_D 5
#define CKM_DEFAULT_V 3.0
#define CKM_DEFAULT_V_LARGE 3.0
#define CKM_DEFAULT_JS 2

/* One row of the table: the noise values in increasing order and the upper ends
 * of their key intervals (in units of 2^-32; the last is 2^32). */
#define CKM_MAX_D 20

struct ckm_row {
	int n;
	int v[2 * CKM_MAX_D + 1];
	uint64_t ub[2 * CKM_MAX_D + 1];
	double p[2 * CKM_MAX_D + 1]; /* what the intervals stand for: (ub - previous ub) / 2^32 */
};

struct ckm_table {
	struct ckm_params params;
	int rows; /* rows 0 .. rows-1; the last serves every larger count */
	struct ckm_row *row;
};

/*
 * Builds the table for p into t. Returns 0, or -1 with a reason in err when the
 * parameters admit no such table (D < js + 1, D > CKM_MAX_D, V outside what a row's
 * values allow with mean 0): the reason names the row.
 */
int ckm_table_build(const struct ckm_params *p, struct ckm_table *t, char *err, size_t errlen);
void ckm_table_free(struct ckm_table *t);

/* The table of the documented defaults, built once (thread-safe); never freed. */
const struct ckm_table *ckm_default(void);

/* The row that serves a true count n (n >= 0). */
const struct ckm_row *ckm_row_for(const struct ckm_table *t, long long n);

/* The published count for a true count n >= 0 in a cell with key cell_key. */
long long ckm_perturb(const struct ckm_table *t, long long n, uint32_t cell_key);

/* The probability that a true count n is published as j (the table's own, as quantised). */
double ckm_probability(const struct ckm_table *t, long long n, long long j);

/* A record key's contribution to a cell key: keys add modulo 2^32. */
static inline uint32_t
ckm_key_add(uint32_t cell_key, uint64_t record_key_sum)
{
	return (uint32_t)(cell_key + (uint32_t)record_key_sum);
}

#endif
