/*
 * ckm — building the perturbation table and looking noise up in it (ckm.h).
 *
 * A row's distribution maximises entropy subject to: probabilities sum to 1,
 * mean 0, variance V, on the row's values. Its solution has the form
 * p(v) ∝ exp(a·v + b·v²); (a, b) minimise the convex dual
 * log Σ exp(a·v + b·v²) − b·V, whose gradient is (E[v], E[v²] − V) and whose
 * Hessian is the covariance of (v, v²). Newton's method with a backtracking
 * line search finds them in a few steps. The probabilities are then quantised
 * to intervals of [0, 2^32), the range of a cell key.
 */
#include "kqe/ckm.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/util.h"

#define KEY_RANGE 4294967296.0 /* 2^32 */

/* log Σ exp(a v + b v²) over vals, and E[v], E[v²], E[v³], E[v⁴] under that distribution. */
static double
moments(const int *vals, int n, double a, double b, double m[5])
{
	double top = -INFINITY;
	for (int k = 0; k < n; k++)
		top = fmax(top, a * vals[k] + b * vals[k] * vals[k]);
	double z = 0;
	for (int d = 0; d < 5; d++)
		m[d] = 0;
	for (int k = 0; k < n; k++) {
		double v = vals[k];
		double w = exp(a * v + b * v * v - top);
		z += w;
		for (int d = 1; d < 5; d++)
			m[d] += w * pow(v, d);
	}
	for (int d = 1; d < 5; d++)
		m[d] /= z;
	return top + log(z);
}

/* The dual's value at (a, b). */
static double
dual(const int *vals, int n, double variance, double a, double b)
{
	double m[5];
	return moments(vals, n, a, b, m) - b * variance;
}

/* Maximum-entropy probabilities p on vals with mean 0 and the variance; -1 if not found. */
static int
solve_row(const int *vals, int n, double variance, double *p)
{
	double a = 0, b = 0, m[5];
	for (int it = 0; it < 200; it++) {
		moments(vals, n, a, b, m);
		double g1 = m[1], g2 = m[2] - variance;
		if (fabs(g1) < 1e-13 && fabs(g2) < 1e-12)
			break;
		double h11 = m[2] - m[1] * m[1];
		double h12 = m[3] - m[1] * m[2];
		double h22 = m[4] - m[2] * m[2];
		double det = h11 * h22 - h12 * h12;
		if (!(det > 1e-300))
			return -1;
		double da = -(h22 * g1 - h12 * g2) / det;
		double db = -(h11 * g2 - h12 * g1) / det;
		/* Backtracking while far away; near the optimum the dual's changes drown in
		 * rounding, and Newton's full step converges quadratically there anyway. */
		double f0 = dual(vals, n, variance, a, b), t = 1;
		while (fabs(g1) + fabs(g2) > 1e-6 && t > 1e-12 &&
		       dual(vals, n, variance, a + t * da, b + t * db) >
		           f0 + 1e-4 * t * (g1 * da + g2 * db))
			t /= 2;
		a += t * da;
		b += t * db;
	}
	double top = -INFINITY, z = 0;
	for (int k = 0; k < n; k++)
		top = fmax(top, a * vals[k] + b * vals[k] * vals[k]);
	for (int k = 0; k < n; k++)
		z += p[k] = exp(a * vals[k] + b * vals[k] * vals[k] - top);
	double mean = 0, var = 0;
	for (int k = 0; k < n; k++) {
		p[k] /= z;
		mean += p[k] * vals[k];
		var += p[k] * vals[k] * vals[k];
	}
	return fabs(mean) < 1e-9 && fabs(var - variance) < 1e-9 ? 0 : -1;
}

/*
 * The noise values row i may take: i + v >= 0, i + v not in 1 .. js, |v| <= D.
 * Returns how many, with the smallest and largest variance a mean-0 distribution
 * on them can have (the open interval the row's V must lie in).
 */
static int
row_values(const struct ckm_params *p, int i, int *vals, double *lo, double *hi)
{
	int n = 0, below = 0, above = 0; /* the nearest negative and positive values */
	bool zero = false;
	for (int v = -p->max_deviation; v <= p->max_deviation; v++) {
		int j = i + v;
		if (j < 0 || (j >= 1 && j <= p->js))
			continue;
		vals[n++] = v;
		if (v < 0)
			below = v;
		else if (v > 0 && above == 0)
			above = v;
		else if (v == 0)
			zero = true;
	}
	*lo = zero ? 0 : -(double)below * above;
	*hi = n > 0 ? -(double)vals[0] * vals[n - 1] : 0;
	return n;
}

static void
quantise(struct ckm_row *r, const double *p)
{
	double cum = 0;
	uint64_t prev = 0;
	for (int k = 0; k < r->n; k++) {
		cum += p[k];
		uint64_t ub =
		    k == r->n - 1 ? (uint64_t)1 << 32 : (uint64_t)llround(cum * KEY_RANGE);
		if (ub < prev)
			ub = prev;
		if (ub > (uint64_t)1 << 32)
			ub = (uint64_t)1 << 32;
		r->ub[k] = ub;
		r->p[k] = (double)(ub - prev) / KEY_RANGE;
		prev = ub;
	}
}

int
ckm_table_build(const struct ckm_params *p, struct ckm_table *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (p->js < 0 || p->max_deviation < p->js + 1 || p->max_deviation > CKM_MAX_D) {
		snprintf(err, errlen,
		    "the maximum deviation D must be at least js + 1 = %d and at most %d",
		    p->js + 1, CKM_MAX_D);
		return -1;
	}
	t->params = *p;
	/* From D + js + 1 on every row has all of -D .. D: the same distribution. */
	t->rows = p->max_deviation + p->js + 2;
	t->row = xcalloc((size_t)t->rows, sizeof(*t->row));
	t->row[0].n = 1; /* a true 0 stays 0 */
	t->row[0].v[0] = 0;
	t->row[0].ub[0] = (uint64_t)1 << 32;
	t->row[0].p[0] = 1;
	for (int i = 1; i < t->rows; i++) {
		struct ckm_row *r = &t->row[i];
		double lo, hi, prob[2 * CKM_MAX_D + 1];
		double v =
		    i == t->rows - 1 && p->variance_large > 0 ? p->variance_large : p->variance;
		r->n = row_values(p, i, r->v, &lo, &hi);
		if (!(v > lo && v < hi) || solve_row(r->v, r->n, v, prob) != 0) {
			snprintf(err, errlen,
			    "no noise for a true count of %d has variance %g with mean 0 "
			    "(it must lie between %g and %g)",
			    i, v, lo, hi);
			ckm_table_free(t);
			return -1;
		}
		quantise(r, prob);
	}
	return 0;
}

void
ckm_table_free(struct ckm_table *t)
{
	free(t->row);
	t->row = NULL;
	t->rows = 0;
}

const struct ckm_row *
ckm_row_for(const struct ckm_table *t, long long n)
{
	return &t->row[n < t->rows ? n : t->rows - 1];
}

long long
ckm_perturb(const struct ckm_table *t, long long n, uint32_t cell_key)
{
	if (n <= 0)
		return n;
	const struct ckm_row *r = ckm_row_for(t, n);
	for (int k = 0; k < r->n; k++)
		if (cell_key < r->ub[k])
			return n + r->v[k];
	return n; /* not reached: the last interval ends at 2^32 */
}

double
ckm_probability(const struct ckm_table *t, long long n, long long j)
{
	if (n < 0)
		return 0;
	const struct ckm_row *r = ckm_row_for(t, n);
	for (int k = 0; k < r->n; k++)
		if (n + r->v[k] == j)
			return r->p[k];
	return 0;
}

static struct ckm_table default_table;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void
default_build(void)
{
	const struct ckm_params p = { CKM_DEFAULT_D, CKM_DEFAULT_V, CKM_DEFAULT_V_LARGE,
		CKM_DEFAULT_JS };
	char err[200];
	if (ckm_table_build(&p, &default_table, err, sizeof(err)) != 0)
		abort(); /* the defaults are tested (test_ckm.c): they always build */
}

const struct ckm_table *
ckm_default(void)
{
	pthread_once(&default_once, default_build);
	return &default_table;
}
