/*
 * disclosure — statistical disclosure control (Geheimhaltung) for published and
 * Ministry tables: no figure may let anyone learn about one child, one case or
 * one office.
 *
 * Primary suppression hides a count below the minimum and a count dominated by
 * one office; secondary suppression hides further cells so that a suppressed
 * value cannot be recomputed from published row and column totals. The module
 * is pure: it owns no memory, it only reads and marks the cells of a table the
 * caller owns. The method is described in docs/disclosure.md.
 */
#ifndef KQE_DISCLOSURE_H
#define KQE_DISCLOSURE_H

#include <stdbool.h>
#include <stddef.h>

#include "kqe/util.h"

/* Thresholds are configuration; sdc_rules_default gives the documented defaults. */
struct sdc_rules {
	long long min_count; /* counts 1 .. min_count-1 are suppressed (default 3) */
	double dominance; /* suppressed if largest office share > this (default 0.85) */
	int min_offices; /* comparison values need this many offices (default 5) */
};

#define SDC_DEFAULT_MIN_COUNT 3
#define SDC_DEFAULT_DOMINANCE 0.85
#define SDC_DEFAULT_MIN_OFFICES 5

enum sdc_reason {
	SDC_NONE = 0, /* published */
	SDC_MIN_COUNT, /* primary: 0 < value < min_count */
	SDC_DOMINANCE, /* primary: top / value > dominance */
	SDC_SECONDARY, /* hidden so that another suppressed figure cannot be recomputed */
};

/*
 * One figure. value is the count, top the largest single office's
 * contribution to it (0 <= top <= value), offices the number of contributing
 * offices. suppressed is output, set by sdc_apply.
 */
struct sdc_cell {
	long long value;
	long long top;
	int offices;
	enum sdc_reason suppressed;
};

/*
 * A rows × cols table; all arrays are borrowed from the caller. cells[r * cols
 * + c]. row_totals[rows] and col_totals[cols] are the margins, grand their
 * sum. A NULL margin array means totals in that direction do not exist (a
 * 1-D table is rows = 1 with col_totals = NULL: its one line's total is
 * row_totals[0]); grand takes part only when both margin arrays are present.
 * totals_published says whether the totals are printed: only then do totals
 * get primary suppression and does secondary suppression run.
 */
struct sdc_table {
	size_t rows, cols;
	struct sdc_cell *cells;
	struct sdc_cell *row_totals, *col_totals;
	struct sdc_cell grand;
	bool totals_published;
};

void sdc_rules_default(struct sdc_rules *rules);

/*
 * Computes the present margins and grand from the cells: value is the sum,
 * offices the sum of the cells' offices (an upper bound: one office may
 * contribute to several cells), top the largest cell's top (a lower bound of
 * the largest office's share of the total). Callers who know the exact
 * office count and top of a total should set them instead.
 */
void sdc_fill_totals(struct sdc_table *t);

/*
 * Marks every figure of t (cells and present totals) as published or
 * suppressed, from scratch: earlier marks are overwritten, so applying twice
 * gives the same result. Returns -1 and changes nothing if the rules or the
 * table are invalid: an empty table, a negative value, top outside 0..value, a non-zero value
 * without an office or with a top too small for its office count, or
 * published totals that do not add up.
 */
int sdc_apply(struct sdc_table *t, const struct sdc_rules *rules) KQE_MUSTCHECK;

/* True if a comparison value (median, quartiles, mean) over offices may be published. */
bool sdc_comparison_allowed(const struct sdc_rules *rules, int offices);

/* "." for a suppressed figure, "–" (U+2013) for exactly zero, NULL to print the value. */
const char *sdc_symbol(const struct sdc_cell *cell);

/* "min_count", "dominance", "secondary"; NULL for SDC_NONE. */
const char *sdc_reason_name(enum sdc_reason reason);

#endif
