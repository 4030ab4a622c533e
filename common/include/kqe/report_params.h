/*
 * report_params — what a report covers: its scope (state or one region) and
 * period (a calendar year "2024" or a five-year § 8 cycle "2023-2028"; cycles
 * start on 1 July 2023 and every five years after). The API validates a
 * request with it; the aggregator parses the stored parameters with it.
 */
#ifndef KQE_REPORT_PARAMS_H
#define KQE_REPORT_PARAMS_H

#include <jansson.h>
#include <stdbool.h>

#include "kqe/util.h"

struct report_params {
	char scope[8]; /* "state" | "region" */
	char region[4]; /* "LVR" | "LWL" when scope is "region", else "" */
	char period[16];
	int first_year, last_year; /* calendar years the period touches */
};

/* True if s is a year YYYY (2000-2100) or a five-year cycle YYYY-YYYY starting 2023, 2028, … */
bool period_valid(const char *s);

/* A field_spec check for a period; NULL if fine, else the message. */
const char *period_check(const json_t *v);

/*
 * A five-year § 8 cycle named as "YYYY-YYYY" or by its start year "YYYY":
 * writes the canonical "YYYY-YYYY" into out and returns true, or false.
 */
bool cycle_canonical(const char *s, char out[10]);

/* Appends every problem of a request body to errors; returns how many. */
size_t report_params_validate(const json_t *body, json_t *errors);

/* Parses already-validated parameters. 0 or -1. */
int report_params_parse(const json_t *body, struct report_params *out) KQE_MUSTCHECK;

#endif
