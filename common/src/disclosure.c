/*
 * disclosure — primary and secondary cell suppression, see the header and
 * docs/disclosure.md.
 *
 * The table is seen as an extended (rows + 1) × (cols + 1) grid: row index
 * `rows` holds the column totals, column index `cols` the row totals, and the
 * corner the grand total. Every line of that grid (each row and each column,
 * including the totals row and the totals column) is one additive relation,
 * "inner members sum to the line's total", and every figure belongs to
 * exactly two lines. Secondary suppression then is one rule applied
 * uniformly to all lines: a line whose total is published may not hold
 * exactly one suppressed member, because that member would be the total
 * minus the visible members.
 */
#include "kqe/disclosure.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>

void
sdc_rules_default(struct sdc_rules *rules)
{
	rules->min_count = SDC_DEFAULT_MIN_COUNT;
	rules->dominance = SDC_DEFAULT_DOMINANCE;
	rules->min_offices = SDC_DEFAULT_MIN_OFFICES;
}

bool
sdc_comparison_allowed(const struct sdc_rules *rules, int offices)
{
	return offices >= rules->min_offices;
}

const char *
sdc_symbol(const struct sdc_cell *cell)
{
	if (cell->suppressed != SDC_NONE)
		return ".";
	if (cell->value == 0)
		return "\u2013";
	return NULL;
}

const char *
sdc_reason_name(enum sdc_reason reason)
{
	switch (reason) {
	case SDC_MIN_COUNT:
		return "min_count";
	case SDC_DOMINANCE:
		return "dominance";
	case SDC_SECONDARY:
		return "secondary";
	case SDC_NONE:
		break;
	}
	return NULL;
}

/* Member (i, j) of the extended grid, NULL where the table has no such figure. */
static struct sdc_cell *
member(struct sdc_table *t, size_t i, size_t j)
{
	if (i < t->rows && j < t->cols)
		return &t->cells[i * t->cols + j];
	if (i < t->rows)
		return t->row_totals != NULL ? &t->row_totals[i] : NULL;
	if (j < t->cols)
		return t->col_totals != NULL ? &t->col_totals[j] : NULL;
	return t->row_totals != NULL && t->col_totals != NULL ? &t->grand : NULL;
}

/*
 * A line of the extended grid: row `index` (0..rows, rows = the totals row)
 * or column `index` (0..cols). Its inner members are k = 0..len-1, its total
 * is k = len.
 */
struct line {
	bool is_row;
	size_t index;
};

static size_t
line_len(const struct sdc_table *t, struct line l)
{
	return l.is_row ? t->cols : t->rows;
}

static struct sdc_cell *
line_member(struct sdc_table *t, struct line l, size_t k)
{
	return l.is_row ? member(t, l.index, k) : member(t, k, l.index);
}

/* A line is a relation only if its total exists (then all its inner members exist too). */
static bool
line_active(struct sdc_table *t, struct line l)
{
	return line_member(t, l, line_len(t, l)) != NULL;
}

/*
 * Lines are numbered in the fixed order that makes secondary suppression
 * deterministic: rows 0..rows (the totals row last), then columns 0..cols.
 */
static size_t
line_count(const struct sdc_table *t)
{
	return (t->rows + 1) + (t->cols + 1);
}

static struct line
line_at(const struct sdc_table *t, size_t n)
{
	if (n <= t->rows)
		return (struct line){ .is_row = true, .index = n };
	return (struct line){ .is_row = false, .index = n - (t->rows + 1) };
}

static bool
cell_valid(const struct sdc_cell *c)
{
	if (c->value < 0 || c->top < 0 || c->top > c->value || c->offices < 0)
		return false;
	if (c->value == 0)
		return true;
	/* The largest contribution times the number of offices bounds the sum. */
	long long off = c->offices;
	return off >= 1 && c->top >= c->value / off + (c->value % off != 0);
}

static bool
rules_valid(const struct sdc_rules *r)
{
	return r->min_count >= 0 && r->dominance > 0.0 && r->dominance <= 1.0 &&
	       r->min_offices >= 0;
}

/* Checks everything sdc_apply relies on before it touches anything. */
static bool
table_valid(struct sdc_table *t)
{
	if (t->rows == 0 || t->cols == 0 || t->cells == NULL || t->rows > (SIZE_MAX - 1) / t->cols)
		return false;
	for (size_t i = 0; i < t->rows * t->cols; i++)
		if (!cell_valid(&t->cells[i]))
			return false;
	if (!t->totals_published)
		return true;
	for (size_t i = 0; i <= t->rows; i++) {
		for (size_t j = 0; j <= t->cols; j++) {
			const struct sdc_cell *c = member(t, i, j);
			if (c != NULL && !cell_valid(c))
				return false;
		}
	}
	size_t n = line_count(t);
	for (size_t k = 0; k < n; k++) {
		struct line l = line_at(t, k);
		if (!line_active(t, l))
			continue;
		size_t len = line_len(t, l);
		long long sum = 0;
		for (size_t m = 0; m < len; m++) {
			if (__builtin_add_overflow(sum, line_member(t, l, m)->value, &sum))
				return false;
		}
		if (sum != line_member(t, l, len)->value)
			return false;
	}
	return true;
}

static enum sdc_reason
primary_reason(const struct sdc_cell *c, const struct sdc_rules *r)
{
	/* Exactly zero is never suppressed: it is printed as "–". */
	if (c->value == 0)
		return SDC_NONE;
	if (c->value < r->min_count)
		return SDC_MIN_COUNT;
	/*
	 * Division, not multiplication: for a share given as a decimal (85/100)
	 * the quotient rounds to the same double as the configured 0.85, so a
	 * share exactly at the threshold stays published.
	 */
	if ((double)c->top / (double)c->value > r->dominance)
		return SDC_DOMINANCE;
	return SDC_NONE;
}

/*
 * Resolves one line: if exactly one of its members is suppressed, suppresses
 * one more and returns true. The choice is the smallest non-zero, not yet
 * suppressed inner member (ties: the lowest index, i.e. the first in
 * row-major order); a zero would hide nothing, since it is known to be zero
 * anyway. If no such member exists, the line's total is suppressed instead.
 */
static bool
line_resolve(struct sdc_table *t, struct line l)
{
	size_t len = line_len(t, l), suppressed = 0;
	for (size_t k = 0; k <= len; k++)
		suppressed += line_member(t, l, k)->suppressed != SDC_NONE;
	if (suppressed != 1)
		return false;

	struct sdc_cell *pick = NULL;
	for (size_t k = 0; k < len; k++) {
		struct sdc_cell *c = line_member(t, l, k);
		if (c->suppressed == SDC_NONE && c->value > 0 &&
		    (pick == NULL || c->value < pick->value))
			pick = c;
	}
	if (pick == NULL) {
		pick = line_member(t, l, len);
		/*
		 * The one suppressed member is an inner one: every other inner
		 * member is zero. (If it were the total, the total would be
		 * non-zero — zero is never suppressed — and, as the totals add
		 * up, some inner member would be non-zero and unsuppressed.)
		 */
		assert(pick->suppressed == SDC_NONE);
	}
	pick->suppressed = SDC_SECONDARY;
	return true;
}

/*
 * Secondary suppression. Sweeps over all active lines in a fixed order —
 * rows top to bottom (the totals row last), then columns left to right (the
 * totals column last) — resolving each line as it is reached, and repeats the
 * sweep until a whole sweep changes nothing. A member suppressed while
 * resolving one line may leave a single suppressed member in its crossing
 * line; the next sweep (or a later line of the same sweep) resolves that.
 * Each change suppresses one more of finitely many figures, so the loop
 * ends; the result depends only on the input, never on memory or timing.
 * When it ends, no active line holds exactly one suppressed member.
 */
static void
secondary(struct sdc_table *t)
{
	size_t n = line_count(t);
	bool changed;
	do {
		changed = false;
		for (size_t k = 0; k < n; k++) {
			struct line l = line_at(t, k);
			if (line_active(t, l) && line_resolve(t, l))
				changed = true;
		}
	} while (changed);
}

void
sdc_fill_totals(struct sdc_table *t)
{
	struct sdc_cell zero = { 0, 0, 0, SDC_NONE };
	if (t->row_totals != NULL)
		for (size_t r = 0; r < t->rows; r++)
			t->row_totals[r] = zero;
	if (t->col_totals != NULL)
		for (size_t c = 0; c < t->cols; c++)
			t->col_totals[c] = zero;
	t->grand = zero;
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->cols; c++) {
			const struct sdc_cell *x = &t->cells[r * t->cols + c];
			struct sdc_cell *rt = t->row_totals != NULL ? &t->row_totals[r] : NULL;
			struct sdc_cell *ct = t->col_totals != NULL ? &t->col_totals[c] : NULL;
			struct sdc_cell *sums[3] = { rt, ct, &t->grand };
			for (size_t s = 0; s < 3; s++) {
				struct sdc_cell *y = sums[s];
				if (y == NULL)
					continue;
				y->value += x->value;
				/* Saturates: an upper bound stays an upper bound. */
				y->offices = y->offices > INT_MAX - x->offices
				                 ? INT_MAX
				                 : y->offices + x->offices;
				if (x->top > y->top)
					y->top = x->top;
			}
		}
	}
}

int
sdc_apply(struct sdc_table *t, const struct sdc_rules *rules)
{
	if (!rules_valid(rules) || !table_valid(t))
		return -1;
	for (size_t i = 0; i <= t->rows; i++) {
		for (size_t j = 0; j <= t->cols; j++) {
			struct sdc_cell *c = member(t, i, j);
			if (c == NULL)
				continue;
			bool total = i == t->rows || j == t->cols;
			/* A total is a figure too, but only if it is printed. */
			c->suppressed =
			    total && !t->totals_published ? SDC_NONE : primary_reason(c, rules);
		}
	}
	if (t->totals_published)
		secondary(t);
	return 0;
}
