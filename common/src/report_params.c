#include "kqe/report_params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/problem.h"
#include "kqe/validate.h"

#define FIRST_CYCLE_START 2023
#define CYCLE_YEARS 5

static const char *const scopes[] = { "state", "region", NULL };
static const char *const regions[] = { "LVR", "LWL", NULL };

static int
parse_period(const char *s, int *first, int *last)
{
	int a, b, n = 0;
	if (strlen(s) == 4 && sscanf(s, "%4d%n", &a, &n) == 1 && n == 4) {
		if (a < 2000 || a > 2100)
			return -1;
		*first = *last = a;
		return 0;
	}
	if (strlen(s) == 9 && sscanf(s, "%4d-%4d%n", &a, &b, &n) == 2 && n == 9) {
		if (a < FIRST_CYCLE_START || a > 2100 ||
		    (a - FIRST_CYCLE_START) % CYCLE_YEARS != 0 || b != a + CYCLE_YEARS)
			return -1;
		*first = a;
		*last = b;
		return 0;
	}
	return -1;
}

bool
period_valid(const char *s)
{
	int first, last;
	return s != NULL && parse_period(s, &first, &last) == 0;
}

const char *
period_check(const json_t *v)
{
	if (!period_valid(json_string_value(v)))
		return "must be a year YYYY (2000-2100) or a five-year cycle YYYY-YYYY starting "
		       "2023, 2028, ...";
	return NULL;
}

bool
cycle_canonical(const char *s, char out[10])
{
	int first, last;
	char full[16];
	if (s == NULL || strlen(s) > 9)
		return false;
	if (strlen(s) == 4) {
		if (sscanf(s, "%4d", &first) != 1)
			return false;
		snprintf(full, sizeof(full), "%d-%d", first, first + CYCLE_YEARS);
		s = full;
	}
	if (strlen(s) != 9 || parse_period(s, &first, &last) != 0)
		return false;
	memcpy(out, s, 10);
	return true;
}

static const struct field_spec report_fields[] = {
	{ .name = "scope", .type = FIELD_ENUM, .required = true, .values = scopes },
	{ .name = "period",
	    .type = FIELD_STRING,
	    .required = true,
	    .min = 4,
	    .max = 9,
	    .check = period_check },
	{ .name = "region", .type = FIELD_ENUM, .values = regions },
};

size_t
report_params_validate(const json_t *body, json_t *errors)
{
	size_t bad = validate_object(body, report_fields, ARRAY_LEN(report_fields), "", errors);
	const char *scope = json_string_value(json_object_get(body, "scope"));
	const json_t *region = json_object_get(body, "region");
	if (scope != NULL && strcmp(scope, "region") == 0 && region == NULL) {
		error_at_pointer(errors, "/region", "required", "is required when scope is region");
		bad++;
	} else if (scope != NULL && strcmp(scope, "state") == 0 && region != NULL) {
		error_at_pointer(
		    errors, "/region", "forbidden", "must be left out when scope is state");
		bad++;
	}
	return bad;
}

int
report_params_parse(const json_t *body, struct report_params *out)
{
	const char *scope = json_string_value(json_object_get(body, "scope"));
	const char *period = json_string_value(json_object_get(body, "period"));
	const char *region = json_string_value(json_object_get(body, "region"));
	memset(out, 0, sizeof(*out));
	if (scope == NULL || period == NULL || strlen(period) >= sizeof(out->period) ||
	    parse_period(period, &out->first_year, &out->last_year) != 0)
		return -1;
	if (strcmp(scope, "state") == 0 && region == NULL) {
		strcpy(out->scope, "state");
	} else if (strcmp(scope, "region") == 0 && region != NULL &&
	           (strcmp(region, "LVR") == 0 || strcmp(region, "LWL") == 0)) {
		strcpy(out->scope, "region");
		strcpy(out->region, region);
	} else {
		return -1;
	}
	strcpy(out->period, period);
	return 0;
}
