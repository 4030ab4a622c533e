/*
 * The attack harness (docs/disclosure.md, "What an attacker gains"): generated
 * records through the real statistics code (stats_build, the tables of every
 * report), then the attacks an adversary who can obtain every report would run,
 * with their success beside a baseline. Exits 1 if an attack beats its bound.
 *
 *   A1  the same question again, and again: every answer must be identical
 *       (averaging gains nothing).
 *   sums  every figure the sum of the perturbed atoms (region × kind × year ×
 *       category) it covers, checked figure by figure: then a difference of
 *       published figures is a sum of published atoms and says nothing new.
 *   A2/A3  a region's count of a category in a year whose true value is 1 or 2,
 *       named from the region's figure alone, then from everything published:
 *       given the sums, its three atoms by kind (every other estimate — the
 *       state's total minus the other region, the region's total minus its
 *       other categories, the cycle minus the other years — is those atoms
 *       again, plus atoms of other records). The attacker is Bayesian: it knows
 *       the perturbation table, the distribution of true small counts, and
 *       treats every other count as unknown. Bound: the combination names the
 *       true value at most 10 percentage points more often than the region's
 *       figure alone, and is never certain.
 *   A4  an office that knows its own contribution to these cells names its
 *       peers' count (true 1 or 2): the same bound.
 *   A2x/A4x  the same targets, with every other dimension combined too: the
 *       totals of the sex, result, age-group and reporter tables of a region and
 *       kind all count the same records, so each other dimension's atoms say how
 *       many records the target's dimension holds in all, and with its other
 *       categories, how many its target category holds. The same bound.
 *   A0  two releases of an open year around one new case: as a release refreshes
 *       a group of offices' case tables only once RELEASE_MIN_CHANGES of its case
 *       analyses changed, the attacker sees the new case among that many; it
 *       names the case's sex, result and age group from which atoms of its region
 *       and kind of office moved (an atom whose records did not change keeps its
 *       published value exactly) and what grew most.
 *       Bound: at most 10 points above naming the most common category.
 *   A0mix  the same, but the new case comes with RELEASE_MIN_CHANGES - 1 records
 *       of other sources (topics, advice requests, surveys, ...) of its group, and
 *       the attacker compares the releases before and after the first one whose
 *       case tables changed. Under the rule before migration 0032, which counted
 *       every source together, that release took in the one case alone.
 *
 * Usage: attacks [datasets [D V V_large js]] (default 48 data sets, the reports' own
 * perturbation table). Deterministic: the records come from a fixed seed. Environment:
 * SDC_SEED another seed; SDC_RELEASE_RULE=pooled plays the release rule before migration
 * 0032 (every source counted together) instead of the rule per source; SDC_ATTACKS=a0 runs
 * the A0 attacks only.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "aggregator.h"
#include "kqe/ckm.h"
#include "kqe/codelists.h"
#include "kqe/disclosure.h"
#include "kqe/report_params.h"

#define OFFICES 186
#define LVR_OFFICES 95
#define YEARS 5 /* 2023 .. 2027: the cycle 2023-2028 */
#define FIRST_YEAR 2023
#define XT 40 /* the range of a target's true value the attacker considers */
#define BOUND 0.10

/* The perturbation table under attack: the reports' own, or one given on the command line. */
static const struct ckm_table *T;

/* ---- generated records ---- */

static uint64_t seed = 0x6b71652d73646321ull, a0_seed = 0x6130207265636f72ull;

static uint64_t
rnd(void)
{
	uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
unif(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int
pick(const double *w, int n)
{
	double u = unif(), acc = 0;
	for (int i = 0; i < n; i++)
		if (u < (acc += w[i]))
			return i;
	return n - 1;
}

/* The dimensions attacked: rollup dimension, report table, column, codes, weights. */
static const struct dim {
	const char *dimension, *table, *column;
	const char *const *codes;
	double w[16];
} dims[] = {
	{ "child_sex", "case_sex", "sex", codelist_sex_values, { 0.49, 0.47, 0.015, 0.025 } },
	{ "result", "case_results", "result", codelist_assessment_result_values,
	    { 0.18, 0.27, 0.37, 0.18 } },
	{ "age_group", "case_age_groups", "age_group", stats_age_groups,
	    { 0.2, 0.16, 0.15, 0.15, 0.12, 0.12, 0.1 } },
	{ "reported_by", "case_reporters", "reported_by", codelist_reporter_values,
	    { 0.24, 0.15, 0.1, 0.08, 0.05, 0.05, 0.08, 0.03, 0.08, 0.03, 0.05, 0.02, 0.04 } },
};
#define DIMS 4
#define MAXCAT 16

static int
ncodes(const char *const *codes)
{
	int n = 0;
	while (codes[n] != NULL)
		n++;
	return n;
}

/* Per office, year, dimension, category: the true count and the sum of its record keys. */
struct cellsum {
	long long n;
	uint32_t key;
};
static struct cellsum data[OFFICES][YEARS][DIMS][MAXCAT];
static const char *office_region[OFFICES], *office_kind[OFFICES];

static void
generate(void)
{
	memset(data, 0, sizeof(data));
	for (int o = 0; o < OFFICES; o++) {
		office_region[o] = o < LVR_OFFICES ? "LVR" : "LWL";
		office_kind[o] = codelist_office_kind_values[o % 3];
		double size = 0.3 + 1.7 * unif();
		for (int y = 0; y < YEARS; y++) {
			/* About 1.5 case analyses an office a year, as a § 8 procedure samples. */
			double mean = 1.5 * size, l = exp(-mean), p = 1;
			int cases = -1;
			do {
				cases++;
				p *= unif();
			} while (p > l);
			for (int c = 0; c < cases; c++) {
				uint32_t key = (uint32_t)rnd();
				for (int d = 0; d < DIMS; d++) {
					struct cellsum *s =
					    &data[o][y][d][pick(dims[d].w, ncodes(dims[d].codes))];
					s->n++;
					s->key = ckm_key_add(s->key, key);
				}
			}
		}
	}
}

/* ---- the statistics code's input, made in memory ---- */

static PGresult *
result_new(int ncols, const char *const *names)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att[8];
	memset(att, 0, sizeof(att));
	for (int i = 0; i < ncols; i++) {
		att[i].name = (char *)names[i];
		att[i].format = 0;
		att[i].typid = 25; /* text */
		att[i].typlen = -1;
	}
	PQsetResultAttrs(res, ncols, att);
	return res;
}

static void
put(PGresult *res, int row, int col, const char *v)
{
	PQsetvalue(res, row, col, (char *)v, (int)strlen(v));
}

/* The source of a report over [y0, y1] for region (NULL: the state). */
static void
source(struct stats_source *src, const char *region, int y0, int y1)
{
	static const char *const off_cols[] = { "id", "region", "kind" };
	static const char *const cnt_cols[] = { "office_id", "dimension", "category", "n", "keysum",
		"part" };
	static const char *const str_cols[] = { "office_id", "indicator", "value" };
	src->offices = result_new(3, off_cols);
	src->counts = result_new(6, cnt_cols);
	src->structure = result_new(3, str_cols);
	src->coverage = NULL;
	src->concepts = NULL;
	src->programmes = NULL;
	src->programme_figures = NULL;
	int orow = 0, crow = 0;
	char id[16], buf[32];
	for (int o = 0; o < OFFICES; o++) {
		if (region && strcmp(region, office_region[o]) != 0)
			continue;
		snprintf(id, sizeof(id), "o%03d", o);
		put(src->offices, orow, 0, id);
		put(src->offices, orow, 1, office_region[o]);
		put(src->offices, orow, 2, office_kind[o]);
		orow++;
		for (int y = y0; y <= y1; y++)
			for (int d = 0; d < DIMS; d++)
				for (int c = 0; dims[d].codes[c] != NULL; c++) {
					struct cellsum s = data[o][y][d][c];
					if (s.n == 0)
						continue;
					put(src->counts, crow, 0, id);
					put(src->counts, crow, 1, dims[d].dimension);
					put(src->counts, crow, 2, dims[d].codes[c]);
					snprintf(buf, sizeof(buf), "%lld", s.n);
					put(src->counts, crow, 3, buf);
					snprintf(buf, sizeof(buf), "%u", s.key);
					put(src->counts, crow, 4, buf);
					snprintf(buf, sizeof(buf), "%d/%d-%d", FIRST_YEAR + y,
					    FIRST_YEAR, FIRST_YEAR + 5);
					put(src->counts, crow, 5, buf);
					crow++;
				}
	}
}

static long long fig(const json_t *tables, const char *table_id, const char *gkey, const char *gval,
    const char *ckey, const char *cval);

/* Report tables: [scope 0 state, 1 LVR, 2 LWL][period 0..YEARS-1 years, YEARS the cycle]. */
static json_t *published[3][YEARS + 1];
static const char *const scope_region[] = { NULL, "LVR", "LWL" };

/* The tables of the report of scope s (0 state, 1 LVR, 2 LWL) and period per, as published. */
static json_t *
build(const struct sdc_rules *rules, int s, int per)
{
	char period[16];
	if (per < YEARS)
		snprintf(period, sizeof(period), "%d", FIRST_YEAR + per);
	else
		snprintf(period, sizeof(period), "%d-%d", FIRST_YEAR, FIRST_YEAR + 5);
	json_t *body = json_pack("{s:s,s:s,s:s?}", "scope", s ? "region" : "state", "period",
	    period, "region", scope_region[s]);
	struct report_params p;
	if (report_params_parse(body, &p) != 0)
		abort();
	json_decref(body);
	struct stats_source src;
	source(&src, scope_region[s], per < YEARS ? per : 0, per < YEARS ? per : YEARS - 1);
	json_t *tables = json_array();
	if (stats_build(&src, &p, rules, T, tables) != 0)
		abort();
	stats_source_clear(&src);
	return tables;
}

static void
build_all(const struct sdc_rules *rules, int *a1_differ, int *a1_figures)
{
	for (int s = 0; s < 3; s++)
		for (int per = 0; per <= YEARS; per++) {
			published[s][per] = build(rules, s, per);
			json_t *again = build(rules, s, per);
			/* A1: the same question, the same answer, figure by figure. */
			size_t i, j;
			json_t *t;
			json_array_foreach(published[s][per], i, t)
			{
				json_t *cell;
				json_array_foreach(json_object_get(t, "cells"), j, cell)
				{
					json_t *other = json_array_get(
					    json_object_get(json_array_get(again, i), "cells"), j);
					(*a1_figures)++;
					*a1_differ += !json_equal(json_object_get(cell, "value"),
					    json_object_get(other, "value"));
				}
			}
			json_decref(again);
		}
}

/* A1 across reports: a region's cell in the state report and in the region's own report. */
static void
same_cells_same_figures(int *differ, int *figures)
{
	for (int r = 1; r <= 2; r++)
		for (int per = 0; per <= YEARS; per++)
			for (int d = 0; d < DIMS; d++) {
				char id[64];
				snprintf(id, sizeof(id), "%s_by_region", dims[d].table);
				for (int c = 0; dims[d].codes[c] != NULL; c++) {
					(*figures)++;
					*differ +=
					    fig(published[0][per], id, "region", scope_region[r],
					        dims[d].column, dims[d].codes[c]) !=
					    fig(published[r][per], id, "region", scope_region[r],
					        dims[d].column, dims[d].codes[c]);
				}
			}
}

static void
free_all(void)
{
	for (int s = 0; s < 3; s++)
		for (int per = 0; per <= YEARS; per++)
			json_decref(published[s][per]);
}

/* A figure of a table: group (region or kind) and column values; NULL is a total. */
static long long
fig(const json_t *tables, const char *table_id, const char *gkey, const char *gval,
    const char *ckey, const char *cval)
{
	size_t i, j;
	json_t *t, *cell;
	json_array_foreach(tables, i, t)
	{
		if (strcmp(json_string_value(json_object_get(t, "id")), table_id) != 0)
			continue;
		json_array_foreach(json_object_get(t, "cells"), j, cell)
		{
			const char *g = json_string_value(json_object_get(cell, gkey));
			const char *c = json_string_value(json_object_get(cell, ckey));
			if (((g == NULL && gval == NULL) || (g && gval && strcmp(g, gval) == 0)) &&
			    ((c == NULL && cval == NULL) || (c && cval && strcmp(c, cval) == 0)))
				return json_integer_value(json_object_get(cell, "value"));
		}
	}
	return -1;
}

/* ---- additivity: every figure a sum of the same perturbed atoms ---- */

/*
 * What makes combining useless: each published count is the sum of the atoms it covers
 * (region × kind × year × category), so a difference of two figures is a sum of atoms the
 * attacker already holds. Checked on every report, figure by figure: the state's cells are
 * the sums of the regions' by-kind cells, totals the sums of their parts, the cycle the sum of
 * its years. Returns the number of figures that are not.
 */
static int
not_additive(int *figures)
{
	int bad = 0;
	for (int d = 0; d < DIMS; d++) {
		const struct dim *dm = &dims[d];
		char by_region[64], by_kind[64];
		snprintf(by_region, sizeof(by_region), "%s_by_region", dm->table);
		snprintf(by_kind, sizeof(by_kind), "%s_by_kind", dm->table);
		for (int per = 0; per <= YEARS; per++)
			for (int c = -1; dm->codes[c < 0 ? 0 : c] != NULL; c++) {
				const char *code = c < 0 ? NULL : dm->codes[c];
				long long state = 0;
				for (int r = 1; r <= 2; r++) {
					long long region = 0;
					for (int k = 0; k < 3; k++) {
						const char *kind = codelist_office_kind_values[k];
						long long atom = fig(published[r][per], by_kind,
						    "kind", kind, dm->column, code);
						if (code != NULL) {
							/* An atom of the cycle: the sum of its
							 * years'. */
							long long years = 0;
							for (int y = 0; per == YEARS && y < YEARS;
							     y++)
								years += fig(published[r][y],
								    by_kind, "kind", kind,
								    dm->column, code);
							bad += per == YEARS && atom != years;
							*figures += per == YEARS;
						}
						region += atom;
					}
					/* A total over categories: the sum of the categories'
					 * figures. */
					long long cats = 0;
					for (int k = 0; code == NULL && dm->codes[k] != NULL; k++)
						cats += fig(published[0][per], by_region, "region",
						    scope_region[r], dm->column, dm->codes[k]);
					long long cell = fig(published[0][per], by_region, "region",
					    scope_region[r], dm->column, code);
					if (code == NULL && cell < 0)
						continue; /* not exclusive: no total published */
					bad += cell != region || (code == NULL && cell != cats);
					*figures += 1;
					state += cell;
				}
				/* The state's by-kind cells: the sums of the regions' atoms. */
				for (int k = 0; k < 3; k++) {
					const char *kind = codelist_office_kind_values[k];
					long long cell = fig(published[0][per], by_kind, "kind",
					    kind, dm->column, code);
					if (cell < 0)
						continue; /* no total of a non-exclusive dimension
						           */
					bad += cell != fig(published[1][per], by_kind, "kind", kind,
					                   dm->column, code) +
					                   fig(published[2][per], by_kind, "kind",
					                       kind, dm->column, code);
					*figures += 1;
				}
				long long total = fig(
				    published[0][per], by_region, "region", NULL, dm->column, code);
				if (total >= 0) {
					bad += total != state;
					*figures += 1;
				}
			}
	}
	return bad;
}

/* ---- the attacker's arithmetic ---- */

static double
lik(long long x, long long pub)
{
	return ckm_probability(T, x, pub);
}

/*
 * What the atoms of the target's region, the by-kind figures pubs[k], say of x, the
 * records of the region not the attacker's own (own[k] in kind k): the sum over the ways
 * x falls on the kinds (equally likely) of Π P(pubs[k] | x_k + own[k]).
 */
static double
lik_kinds(const long long *pubs, const long long *own, long long x)
{
	/* g[s] = Σ over x_1..x_j summing to s of Π P(pubs[k] | x_k + own[k]) / x_k!. */
	double g[XT], h[XT];
	if (x >= XT)
		return 0;
	memset(g, 0, sizeof(g));
	g[0] = 1;
	for (int k = 0; k < 3; k++) {
		memset(h, 0, sizeof(h));
		for (long long s = 0; s <= x; s++) {
			double fact = 1;
			for (long long v = 0; g[s] != 0 && s + v <= x; v++) {
				if (v > 0)
					fact *= (double)v;
				h[s + v] += g[s] * lik(v + own[k], pubs[k]) / fact;
			}
		}
		memcpy(g, h, sizeof(g));
	}
	/* Which kind each of the x records is in: n! / Π x_k! · 3^-n. */
	double fact = 1;
	for (long long v = 2; v <= x; v++)
		fact *= (double)v;
	return g[x] * fact * pow(1.0 / 3, (double)x);
}

/*
 * What the region's figure alone says of x: it is the sum of the three perturbed atoms,
 * so P(pub | x) sums over the ways x falls on the kinds and over the atoms' published
 * values adding up to pub. out[x] for every x < XT at once.
 */
#define MAXPUB 160
static void
lik_sum(long long pub, const long long *own, double *out)
{
	static double g[XT][MAXPUB], h[XT][MAXPUB];
	int D = T->params.max_deviation;
	if (pub < 0 || pub >= MAXPUB)
		abort(); /* too large a figure for this harness */
	memset(g, 0, sizeof(g));
	g[0][0] = 1;
	for (int k = 0; k < 3; k++) {
		memset(h, 0, sizeof(h));
		for (int s = 0; s < XT; s++)
			for (long long t = 0; t <= pub; t++) {
				if (g[s][t] == 0)
					continue;
				double fact = 1;
				for (int v = 0; s + v < XT; v++) {
					if (v > 0)
						fact *= (double)v;
					long long n = v + own[k];
					long long lo = n - D > 0 ? n - D : 0;
					for (long long q = lo; q <= n + D && t + q <= pub; q++)
						h[s + v][t + q] += g[s][t] * lik(n, q) / fact;
				}
			}
		memcpy(g, h, sizeof(g));
	}
	double fact = 1;
	for (int x = 0; x < XT; x++) {
		if (x > 1)
			fact *= (double)x;
		out[x] = g[x][pub] * fact * pow(1.0 / 3, (double)x);
	}
}

/* ---- the attacks ---- */

struct score {
	long trials, single_right, combined_right, certain, other_answer;
	/* The highest posterior of any answer; the sums of the posteriors the one figure and
	 * the combination give the true value (a measure that does not hinge on the MAP). */
	double max_posterior, single_mass, combined_mass;
};

static long long
map_of(const double *post, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (post[i] > post[best])
			best = i;
	return best;
}

static void
judge(struct score *sc, const double *single, const double *combined, long long truth_value)
{
	double z = 0;
	for (int i = 0; i < XT; i++)
		z += combined[i];
	double top = 0;
	for (int i = 0; i < XT; i++)
		if (z > 0)
			top = fmax(top, combined[i] / z);
	double zs = 0;
	for (int i = 0; i < XT; i++)
		zs += single[i];
	sc->trials++;
	sc->single_mass += zs > 0 ? single[truth_value] / zs : 0;
	sc->combined_mass += z > 0 ? combined[truth_value] / z : 0;
	sc->single_right += map_of(single, XT) == truth_value;
	sc->combined_right += map_of(combined, XT) == truth_value;
	sc->other_answer += map_of(combined, XT) != map_of(single, XT);
	sc->certain += top > 1 - 1e-9;
	sc->max_posterior = fmax(sc->max_posterior, top);
}

/* The true count of (region, year, dim, category) without office skip (-1: none). */
static long long
true_count(const char *region, int y0, int y1, int d, int c, const char *kind, int skip)
{
	long long n = 0;
	for (int o = 0; o < OFFICES; o++)
		if ((region == NULL || strcmp(region, office_region[o]) == 0) &&
		    (kind == NULL || strcmp(kind, office_kind[o]) == 0) && o != skip)
			for (int y = y0; y <= y1; y++)
				n += data[o][y][d][c].n;
	return n;
}

/*
 * The count of region r, year y, dim d, category c, less the attacking office o's own
 * records (o < 0: an outsider): single[x] from the region's figure alone, combined[x]
 * from everything published. With every figure a sum of atoms (not_additive() == 0),
 * everything published that involves this count is its three by-kind atoms: every other
 * estimate of it (the state's total minus the other region, the region's total minus its
 * other categories, the cycle minus the other years) is those atoms again, plus atoms of
 * other records.
 */
static void
estimates(int r, int y, int d, int c, int o, const double *prior, double *single, double *combined)
{
	const struct dim *dm = &dims[d];
	char by_region[64], by_kind[64];
	snprintf(by_region, sizeof(by_region), "%s_by_region", dm->table);
	snprintf(by_kind, sizeof(by_kind), "%s_by_kind", dm->table);
	const json_t *state = published[0][y], *regional = published[r][y];
	long long direct =
	    fig(state, by_region, "region", scope_region[r], dm->column, dm->codes[c]);
	long long kind_pub[3], own[3];
	for (int k = 0; k < 3; k++) {
		kind_pub[k] = fig(regional, by_kind, "kind", codelist_office_kind_values[k],
		    dm->column, dm->codes[c]);
		own[k] = o >= 0 && strcmp(office_kind[o], codelist_office_kind_values[k]) == 0
		             ? data[o][y][d][c].n
		             : 0;
	}
	double from_sum[XT];
	lik_sum(direct, own, from_sum);
	for (int x = 0; x < XT; x++) {
		single[x] = prior[x] * from_sum[x];
		combined[x] = prior[x] * lik_kinds(kind_pub, own, x);
	}
}

/* ---- A2x, A4x: combining dimensions ---- */

/*
 * Every case counts once in each of the sex, result, age-group and reporter tables, so a
 * region and kind's atoms of any of them add up, but for their noise, to the same number of
 * records. The attacker of A2x/A4x uses that: it models the records of the target's region,
 * kind and year that are not its own as a Poisson number with the data set's own mean for
 * that region and kind (generous), each with its categories drawn independently with the
 * generator's weights (generous again), so that every category's count is an independent
 * Poisson count; and it weighs every dimension's published atoms of the kind.
 */
#define SMAX 256 /* the records of one region, kind and year the attacker considers */

static double
poisson(long long z, double mu)
{
	return exp((double)z * log(mu) - mu - lgamma((double)z + 1));
}

/*
 * out[S] for S < SMAX: the sum over the counts z_j of the categories j of dimension d (but
 * skip; -1: none) that add up to S, of Π_j Pois(z_j; λ w_j) P(pub_j | z_j + own_j) — how
 * likely the atoms pub are, jointly with S records in those categories.
 */
static void
conv_dim(int d, const long long *pub, const long long *own, int skip, double lambda, double *out)
{
	double h[SMAX];
	int D = T->params.max_deviation;
	memset(out, 0, SMAX * sizeof(double));
	out[0] = 1;
	for (int j = 0; dims[d].codes[j] != NULL; j++) {
		if (j == skip)
			continue;
		double mu = lambda * dims[d].w[j];
		memset(h, 0, sizeof(h));
		/* The published value lies within D of the true one. */
		for (long long z = pub[j] - own[j] - D < 0 ? 0 : pub[j] - own[j] - D;
		     z <= pub[j] - own[j] + D && z < SMAX; z++) {
			double pz = poisson(z, mu) * lik(z + own[j], pub[j]);
			for (long long t = 0; pz > 0 && t + z < SMAX; t++)
				h[t + z] += out[t] * pz;
		}
		memcpy(out, h, sizeof(h));
	}
}

/*
 * What every dimension's atoms of region r, kind k and year y say of v, the records of
 * dimension d's category c there that are not the attacker's (own counts of office o; -1: an
 * outsider): out[v] = P(all those atoms | v) for v < XT.
 */
static void
lik_all_dims(int r, int k, int y, int d, int c, int o, double *out)
{
	const char *kind = codelist_office_kind_values[k];
	long long pub[DIMS][MAXCAT], own[DIMS][MAXCAT];
	long long own_total = 0;
	bool mine = o >= 0 && strcmp(office_kind[o], kind) == 0;
	for (int e = 0; e < DIMS; e++) {
		char by_kind[64];
		snprintf(by_kind, sizeof(by_kind), "%s_by_kind", dims[e].table);
		for (int j = 0; dims[e].codes[j] != NULL; j++) {
			pub[e][j] = fig(published[r][y], by_kind, "kind", kind, dims[e].column,
			    dims[e].codes[j]);
			own[e][j] = mine ? data[o][y][e][j].n : 0;
			own_total += e == 0 ? own[e][j] : 0;
		}
	}
	/* The attacker's mean: the region and kind's records a year, less its own. */
	long long all = 0;
	for (int q = 0; q < OFFICES; q++)
		if (strcmp(office_region[q], scope_region[r]) == 0 &&
		    strcmp(office_kind[q], kind) == 0)
			for (int yy = 0; yy < YEARS; yy++)
				for (int j = 0; dims[0].codes[j] != NULL; j++)
					all += data[q][yy][0][j].n;
	double lambda = fmax((double)all / YEARS - (double)own_total, 0.5);
	static double rest[SMAX], given[DIMS][SMAX];
	conv_dim(d, pub[d], own[d], c, lambda, rest);
	for (int e = 0; e < DIMS; e++) {
		if (e == d)
			continue;
		conv_dim(e, pub[e], own[e], -1, lambda, given[e]);
		for (int t = 0; t < SMAX; t++) {
			double p = poisson(t, lambda); /* given[e][t] / P(t records) */
			given[e][t] = p > 1e-280 ? given[e][t] / p : 0;
		}
	}
	for (int v = 0; v < XT; v++) {
		double sum = 0;
		for (int t = 0; v + t < SMAX; t++) {
			double term = rest[t];
			for (int e = 0; e < DIMS && term > 0; e++)
				if (e != d)
					term *= given[e][v + t];
			sum += term;
		}
		out[v] = lik(v + own[d][c], pub[d][c]) * sum;
	}
}

/*
 * combined[x]: the prior of x times the likelihood of every atom of the region's kinds in
 * every dimension, the x records split over the kinds as in lik_kinds.
 */
static void
across_dims(int r, int y, int d, int c, int o, const double *prior, double *combined)
{
	double l[3][XT], g[XT], h[XT];
	for (int k = 0; k < 3; k++)
		lik_all_dims(r, k, y, d, c, o, l[k]);
	memset(g, 0, sizeof(g));
	g[0] = 1;
	for (int k = 0; k < 3; k++) {
		memset(h, 0, sizeof(h));
		for (int t = 0; t < XT; t++) {
			double fact = 1;
			for (int v = 0; g[t] != 0 && t + v < XT; v++) {
				if (v > 0)
					fact *= (double)v;
				h[t + v] += g[t] * l[k][v] / fact;
			}
		}
		memcpy(g, h, sizeof(g));
	}
	double fact = 1;
	for (int x = 0; x < XT; x++) {
		if (x > 1)
			fact *= (double)x;
		combined[x] = prior[x] * g[x] * fact * pow(1.0 / 3, (double)x);
	}
}

static void
attack(const double *prior, const double *peer_prior, struct score *a23, struct score *a4,
    struct score *a2x, struct score *a4x)
{
	double single[XT], combined[XT], across[XT];
	for (int r = 1; r <= 2; r++)
		for (int y = 0; y < YEARS; y++)
			for (int d = 0; d < DIMS; d++)
				for (int c = 0; dims[d].codes[c] != NULL; c++) {
					const char *reg = scope_region[r];
					long long t = true_count(reg, y, y, d, c, NULL, -1);
					if (t == 1 || t == 2) {
						estimates(r, y, d, c, -1, prior, single, combined);
						judge(a23, single, combined, t);
						across_dims(r, y, d, c, -1, prior, across);
						judge(a2x, single, across, t);
					}
					/* A4: each office of the region whose peers hold 1 or 2. */
					for (int o = 0; o < OFFICES && t >= 2; o++) {
						long long own = data[o][y][d][c].n;
						long long peers = t - own;
						if (own == 0 ||
						    strcmp(office_region[o], reg) != 0 ||
						    (peers != 1 && peers != 2))
							continue;
						estimates(
						    r, y, d, c, o, peer_prior, single, combined);
						judge(a4, single, combined, peers);
						across_dims(r, y, d, c, o, peer_prior, across);
						judge(a4x, single, across, peers);
					}
				}
}

static void
normalise(double *p)
{
	double z = 0;
	for (int x = 0; x < XT; x++)
		z += p[x];
	for (int x = 0; x < XT; x++)
		p[x] /= z;
}

/*
 * The attacker's prior, as well informed as it can be: how often each value
 * occurs among the region cells (an outsider's target), and among the peers'
 * parts of the cells an office contributes to (an office's target).
 */
static void
prior_of_cells(double *prior, double *peer_prior)
{
	for (int x = 0; x < XT; x++)
		prior[x] = peer_prior[x] = 1; /* each value seen once: the prior rules none out */
	for (int r = 1; r <= 2; r++)
		for (int y = 0; y < YEARS; y++)
			for (int d = 0; d < DIMS; d++)
				for (int c = 0; dims[d].codes[c] != NULL; c++) {
					const char *reg = r == 1 ? "LVR" : "LWL";
					long long t = true_count(reg, y, y, d, c, NULL, -1);
					if (t < XT)
						prior[t] += 1;
					for (int o = 0; o < OFFICES; o++) {
						long long own = data[o][y][d][c].n;
						if (own > 0 && strcmp(office_region[o], reg) == 0 &&
						    t - own < XT)
							peer_prior[t - own] += 1;
					}
				}
	normalise(peer_prior);
	normalise(prior);
}

/* ---- A0: differencing two releases around new records ---- */

/*
 * KQE_RELEASE_MIN_CHANGES' default: a release refreshes a source's tables of a group's part
 * of a period only once this many of that source's records changed (migrations
 * 0016_releases.sql, 0032_release_sources.sql), so two different published states of a
 * group's case tables lie at least this many case analyses apart.
 */
#define RELEASE_MIN_CHANGES 30
#define A0_DIMS 3 /* sex, result, age group: what the attacker names */

/* The release rule played: per source (migration 0032), or pooled (0016, 0020). */
static bool pooled_rule;

/*
 * Whether a release refreshes a group's case tables after case_changes of its case analyses
 * and other_changes records of its other sources changed: per source, only once its case
 * analyses alone are RELEASE_MIN_CHANGES; pooled, once all its records together were.
 */
static bool
case_tables_due(int case_changes, int other_changes)
{
	return case_changes + (pooled_rule ? other_changes : 0) >= RELEASE_MIN_CHANGES;
}

struct a0_score {
	long trials, right[A0_DIMS], baseline[A0_DIMS];
};

/* Adds (sign +1) or removes (-1) one case at office o in year y with categories cat[d]. */
static void
add_case(int o, int y, const int *cat, uint32_t key, int sign)
{
	for (int d = 0; d < DIMS; d++) {
		struct cellsum *s = &data[o][y][d][cat[d]];
		s->n += sign;
		s->key = sign > 0 ? ckm_key_add(s->key, key) : (uint32_t)(s->key - key);
	}
}

static int
most_common(int d)
{
	int best = 0;
	for (int c = 1; dims[d].codes[c] != NULL; c++)
		if (dims[d].w[c] > dims[d].w[best])
			best = c;
	return best;
}

/*
 * The attacker's guess of the target's category of dimension d, from the state's and the
 * target's region's reports before and after: among the categories whose atom of the target's
 * region and kind moved at all (an atom whose records did not change keeps its published
 * value exactly), the one whose figures grew most in the region row, the kind row and the
 * atom together (ties: the more common); if no atom moved, the most common category.
 */
static int
a0_guess(int d, json_t *const *before, const json_t *state, const json_t *regional, int r,
    const char *kind)
{
	const struct dim *dm = &dims[d];
	char by_region[64], by_kind[64];
	snprintf(by_region, sizeof(by_region), "%s_by_region", dm->table);
	snprintf(by_kind, sizeof(by_kind), "%s_by_kind", dm->table);
	int guess = -1;
	long long best = 0;
	for (int c = 0; dm->codes[c] != NULL; c++) {
		const char *code = dm->codes[c];
		long long atom = fig(regional, by_kind, "kind", kind, dm->column, code) -
		                 fig(before[r], by_kind, "kind", kind, dm->column, code);
		if (atom == 0)
			continue;
		long long grew =
		    fig(state, by_region, "region", scope_region[r], dm->column, code) -
		    fig(before[0], by_region, "region", scope_region[r], dm->column, code) +
		    fig(state, by_kind, "kind", kind, dm->column, code) -
		    fig(before[0], by_kind, "kind", kind, dm->column, code) + atom;
		if (guess < 0 || grew > best || (grew == best && dm->w[c] > dm->w[guess])) {
			best = grew;
			guess = c;
		}
	}
	return guess < 0 ? most_common(d) : guess;
}

/*
 * The attacker holds the state's and the target's region's reports of an open year from
 * before the target case and from the first release after it whose case tables of the
 * target's group (its region and kind) changed, and knows the target's office (so its region
 * and kind). That release took in the target case and the other changes of the group that made
 * its case tables due: RELEASE_MIN_CHANGES - 1 further case analyses at once; or, `mixed`,
 * RELEASE_MIN_CHANGES - 1 records of other sources (which touch no case table) and then the
 * group's next case analyses, one by one, until the case tables were due.
 */
static void
a0(const struct sdc_rules *rules, struct a0_score *sc, int trials, bool mixed)
{
	const int y = YEARS - 1; /* the open year */
	static const int attacked[A0_DIMS] = { 0, 1, 2 }; /* indices into dims */
	const int other = mixed ? RELEASE_MIN_CHANGES - 1 : 0;
	json_t *before[3];
	for (int s = 0; s < 3; s++)
		before[s] = build(rules, s, y);
	for (int t = 0; t < trials; t++) {
		int office[RELEASE_MIN_CHANGES], cat[RELEASE_MIN_CHANGES][DIMS];
		uint32_t key[RELEASE_MIN_CHANGES];
		int cases = 0;
		do {
			/* The target, then others of its group (region and kind). */
			int k = cases++;
			do
				office[k] = (int)(rnd() % OFFICES);
			while (k > 0 && (office_region[office[k]] != office_region[office[0]] ||
			                    office_kind[office[k]] != office_kind[office[0]]));
			key[k] = (uint32_t)rnd();
			for (int d = 0; d < DIMS; d++)
				cat[k][d] = pick(dims[d].w, ncodes(dims[d].codes));
			add_case(office[k], y, cat[k], key[k], +1);
		} while (!case_tables_due(cases, other));
		const int o = office[0]; /* the target */
		const int r = office_region[o][1] == 'V' ? 1 : 2;
		json_t *state = build(rules, 0, y), *regional = build(rules, r, y);
		for (int a = 0; a < A0_DIMS; a++) {
			int d = attacked[a];
			sc->right[a] +=
			    a0_guess(d, before, state, regional, r, office_kind[o]) == cat[0][d];
			sc->baseline[a] += most_common(d) == cat[0][d];
		}
		sc->trials++;
		json_decref(state);
		json_decref(regional);
		for (int k = cases - 1; k >= 0; k--)
			add_case(office[k], y, cat[k], key[k], -1);
	}
	for (int s = 0; s < 3; s++)
		json_decref(before[s]);
}

static bool
report_a0(const char *name, const struct a0_score *s)
{
	bool ok = s->trials >= 200;
	static const char *const names[A0_DIMS] = { "sex", "result", "age group" };
	for (int a = 0; a < A0_DIMS; a++) {
		double right = (double)s->right[a] / (double)s->trials;
		double base = (double)s->baseline[a] / (double)s->trials;
		bool fine = right - base <= BOUND;
		ok &= fine;
		printf(
		    "%-6s %-9s of one new case from two releases: named right %5.1f %%, the most "
		    "common category %5.1f %% (gain %+5.1f points, bound %+.0f), %ld trials  %s\n",
		    name, names[a], 100 * right, 100 * base, 100 * (right - base), 100 * BOUND,
		    s->trials, fine && s->trials >= 200 ? "ok" : "FAIL");
	}
	return ok;
}

/* Fails above BOUND points of gain, on a certain posterior, or with too few targets. */
static bool
report(const char *name, const struct score *s)
{
	double single = s->trials ? (double)s->single_right / (double)s->trials : 0;
	double combined = s->trials ? (double)s->combined_right / (double)s->trials : 0;
	bool ok = s->trials >= 200 && combined - single <= BOUND && s->certain == 0;
	double n = s->trials ? (double)s->trials : 1;
	printf("%-6s trials %5ld  named right: one figure %5.1f %%, everything combined %5.1f %% "
	       "(gain %+5.1f points, bound %+.0f; %ld answers changed)  certain %ld, highest "
	       "posterior %.3f, mean posterior on the truth %.3f -> %.3f  %s\n",
	    name, s->trials, 100 * single, 100 * combined, 100 * (combined - single), 100 * BOUND,
	    s->other_answer, s->certain, s->max_posterior, s->single_mass / n, s->combined_mass / n,
	    ok ? "ok" : "FAIL");
	return ok;
}

int
main(int argc, char **argv)
{
	int datasets = argc > 1 ? atoi(argv[1]) : 48;
	if (getenv("SDC_SEED"))
		seed = strtoull(getenv("SDC_SEED"), NULL, 0);
	struct ckm_table other;
	T = ckm_default();
	if (argc == 6) { /* parameters to try: D V V_large js */
		char err[200];
		struct ckm_params p = { atoi(argv[2]), atof(argv[3]), atof(argv[4]),
			atoi(argv[5]) };
		if (ckm_table_build(&p, &other, err, sizeof(err)) != 0) {
			fprintf(stderr, "attacks: %s\n", err);
			return 2;
		}
		T = &other;
	}
	struct sdc_rules rules;
	sdc_rules_default(&rules);
	const char *rule = getenv("SDC_RELEASE_RULE");
	pooled_rule = rule != NULL && strcmp(rule, "pooled") == 0;
	const char *only = getenv("SDC_ATTACKS");
	bool all = only == NULL || strcmp(only, "a0") != 0;
	const struct ckm_params *cp = &T->params;
	printf("cell-key method: D = %d, V = %g (counts from %d on: %g), js = %d; %d generated "
	       "data sets of %d offices, %d years; releases refresh %s\n",
	    cp->max_deviation, cp->variance, T->rows - 1,
	    cp->variance_large > 0 ? cp->variance_large : cp->variance, cp->js, datasets, OFFICES,
	    YEARS,
	    pooled_rule ? "once any records changed (pooled: the rule before migration 0032)"
	                : "per source (migration 0032)");
	struct score a23 = { 0 }, a4 = { 0 }, a2x = { 0 }, a4x = { 0 };
	struct a0_score a0s = { 0 }, a0m = { 0 };
	int differ = 0, figures = 0, unadditive = 0, sums = 0;
	double prior[XT], peer_prior[XT];
	for (int k = 0; k < datasets; k++) {
		generate();
		if (all) {
			build_all(&rules, &differ, &figures);
			same_cells_same_figures(&differ, &figures);
			unadditive += not_additive(&sums);
			prior_of_cells(prior, peer_prior);
			attack(prior, peer_prior, &a23, &a4, &a2x, &a4x);
			free_all();
		}
		/* A0 draws from a stream of its own: the other attacks' data stay as they are. */
		uint64_t kept = seed;
		seed = a0_seed;
		a0(&rules, &a0s, 20, false);
		a0(&rules, &a0m, 20, true);
		a0_seed = seed;
		seed = kept;
	}
	bool ok = true;
	if (all) {
		ok = differ == 0;
		printf("A1     %d figures asked twice or in two reports, %d answered differently: "
		       "averaging gains nothing  %s\n",
		    figures, differ, ok ? "ok" : "FAIL");
		printf("sums   %d figures compared with the sum of their atoms, %d differ: every "
		       "figure is a sum of the same perturbed atoms  %s\n",
		    sums, unadditive, unadditive == 0 ? "ok" : "FAIL");
		ok &= unadditive == 0;
		ok &= report("A2/A3", &a23);
		ok &= report("A4", &a4);
		ok &= report("A2x", &a2x);
		ok &= report("A4x", &a4x);
	}
	ok &= report_a0("A0", &a0s);
	ok &= report_a0("A0mix", &a0m);
	if (T == &other)
		ckm_table_free(&other);
	return ok ? 0 : 1;
}
