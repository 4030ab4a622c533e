/*
 * disclosure — the rules for comparison values (medians, quartiles, means over
 * offices) in published and Ministry tables. Counts are protected by the
 * cell-key method instead (kqe/ckm.h); docs/disclosure.md has both.
 *
 * A comparison value over few offices would let each of them narrow down the
 * others' values, and a median dominated by one office is that office's own
 * figure; such values are not shown (printed ".").
 */
#ifndef KQE_DISCLOSURE_H
#define KQE_DISCLOSURE_H

#include <stdbool.h>

#include "kqe/util.h"

/* Thresholds are configuration; sdc_rules_default gives the documented defaults. */
struct sdc_rules {
	long long min_count; /* a median needs this many cases (default 3) */
	double dominance; /* ... and no office holding more than this share of them (0.85) */
	int min_offices; /* comparison values need this many offices (default 5) */
};

#define SDC_DEFAULT_MIN_COUNT 3
#define SDC_DEFAULT_DOMINANCE 0.85
#define SDC_DEFAULT_MIN_OFFICES 5

void sdc_rules_default(struct sdc_rules *rules);

/* True if a comparison value (median, quartiles, mean) over offices may be published. */
bool sdc_comparison_allowed(const struct sdc_rules *rules, int offices);

/*
 * Why a median of cases over offices may not be published — "min_offices"
 * (fewer than min_offices contribute), "min_count" (fewer than min_count
 * cases), "dominance" (the largest office holds more than the dominance share,
 * strictly) — or NULL if it may. Checked in that order.
 */
const char *sdc_median_blocked(
    const struct sdc_rules *rules, int offices, long long cases, long long top);

#endif
