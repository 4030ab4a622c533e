#include "kqe/base64url.h"
#include "token_spec.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kqe/validate.h"
#include "offices_csv.h"

enum token_binding
token_role_binding(enum role role)
{
	switch (role) {
	case ROLE_OFFICE_STAFF:
	case ROLE_OFFICE_LEAD:
		return TOKEN_BINDING_OFFICE;
	case ROLE_ADVISOR:
		return TOKEN_BINDING_REGION;
	case ROLE_INSTITUTE:
		return TOKEN_BINDING_INSTITUTE;
	case ROLE_PROVIDER_STAFF:
		return TOKEN_BINDING_PROVIDER;
	case ROLE_PROGRAMME_TEAM:
		return TOKEN_BINDING_PROGRAMME;
	default:
		return TOKEN_BINDING_NONE;
	}
}

/* ---- options ---- */

enum token_option {
	OPT_NAME,
	OPT_ROLE,
	OPT_OFFICE,
	OPT_REGION,
	OPT_INSTITUTE,
	OPT_PROVIDER,
	OPT_PROGRAMME,
	OPT_EXPIRES
};

static const struct {
	const char *flag;
	const char *metavar;
	enum token_binding binding; /* the binding this option gives, or NONE */
} token_options[] = {
	[OPT_NAME] = { "--name", "NAME", TOKEN_BINDING_NONE },
	[OPT_ROLE] = { "--role", "ROLE", TOKEN_BINDING_NONE },
	[OPT_OFFICE] = { "--office", "ID", TOKEN_BINDING_OFFICE },
	[OPT_REGION] = { "--region", "LVR|LWL", TOKEN_BINDING_REGION },
	[OPT_INSTITUTE] = { "--institute", "ID", TOKEN_BINDING_INSTITUTE },
	[OPT_PROVIDER] = { "--provider", "ID", TOKEN_BINDING_PROVIDER },
	[OPT_PROGRAMME] = { "--programme", "UUID", TOKEN_BINDING_PROGRAMME },
	[OPT_EXPIRES] = { "--expires", "YYYY-MM-DD", TOKEN_BINDING_NONE },
};

/* The option word names ("--name" or "--name=VALUE", which sets *inline_value), or -1. */
static int
option_find(const char *word, const char **inline_value)
{
	*inline_value = NULL;
	for (size_t i = 0; i < ARRAY_LEN(token_options); i++) {
		size_t n = strlen(token_options[i].flag);
		if (strncmp(word, token_options[i].flag, n) != 0)
			continue;
		if (word[n] == '\0')
			return (int)i;
		if (word[n] == '=') {
			*inline_value = word + n + 1;
			return (int)i;
		}
	}
	return -1;
}

/* NULL if the name fits the schema and prints on one line, else why not. */
static const char *
name_problem(const char *name)
{
	const unsigned char *s = (const unsigned char *)name;

	if (name[0] == '\0')
		return "must not be empty";
	if (!utf8_valid(name))
		return "is not valid UTF-8";
	if (utf8_length(name, strlen(name)) > TOKEN_NAME_MAX)
		return "is longer than 100 characters";
	for (size_t i = 0; s[i] != '\0'; i++) {
		/* C0, DEL and C1 (U+0080..U+009F = C2 80..C2 9F) would break `list`. */
		if (s[i] < 0x20 || s[i] == 0x7f ||
		    (s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f))
			return "must not contain control characters";
	}
	return NULL;
}

int
token_request_parse(
    int argc, char *const *argv, int64_t now, struct token_request *req, char *err, size_t errsize)
{
	const char *values[ARRAY_LEN(token_options)] = { NULL };
	const char *problem;

	for (int i = 0; i < argc; i++) {
		const char *value;
		int opt = option_find(argv[i], &value);
		if (opt < 0) {
			snprintf(err, errsize, "unknown argument \"%s\"", argv[i]);
			return -1;
		}
		if (value == NULL) {
			if (i + 1 == argc) {
				snprintf(err, errsize, "%s needs a value (%s)",
				    token_options[opt].flag, token_options[opt].metavar);
				return -1;
			}
			value = argv[++i];
		}
		if (values[opt] != NULL) {
			snprintf(err, errsize, "%s given twice", token_options[opt].flag);
			return -1;
		}
		if (value[0] == '\0' && opt != OPT_NAME) {
			snprintf(err, errsize, "%s: empty value", token_options[opt].flag);
			return -1;
		}
		values[opt] = value;
	}

	memset(req, 0, sizeof(*req));
	for (int opt = OPT_NAME; opt <= OPT_ROLE; opt++) {
		if (values[opt] == NULL) {
			snprintf(err, errsize, "%s %s is required", token_options[opt].flag,
			    token_options[opt].metavar);
			return -1;
		}
	}
	if ((problem = name_problem(values[OPT_NAME])) != NULL) {
		snprintf(err, errsize, "--name %s", problem);
		return -1;
	}
	req->name = values[OPT_NAME];
	if (strcmp(values[OPT_ROLE], "professional") == 0) {
		snprintf(err, errsize,
		    "role professional: its keys are issued when the programme's team approves a "
		    "registration (docs/programmes.md)");
		return -1;
	}
	if (role_parse(values[OPT_ROLE], &req->role) != 0) {
		snprintf(err, errsize,
		    "unknown role \"%s\" (office_staff, office_lead, institute, advisor, ministry, "
		    "admin, provider_staff, programme_team)",
		    values[OPT_ROLE]);
		return -1;
	}

	/* Exactly the binding the role needs: the schema's CHECKs, said before the insert. */
	enum token_binding needs = token_role_binding(req->role);
	int missing = -1, extra = -1;
	for (size_t opt = 0; opt < ARRAY_LEN(token_options); opt++) {
		enum token_binding gives = token_options[opt].binding;
		if (gives == TOKEN_BINDING_NONE)
			continue;
		if (gives == needs && values[opt] == NULL)
			missing = (int)opt;
		if (gives != needs && values[opt] != NULL && extra < 0)
			extra = (int)opt;
	}
	if (missing >= 0) {
		snprintf(err, errsize, "role %s needs %s %s%s%s", role_name(req->role),
		    token_options[missing].flag, token_options[missing].metavar,
		    extra >= 0 ? ", not " : "", extra >= 0 ? token_options[extra].flag : "");
		return -1;
	}
	if (extra >= 0) {
		snprintf(err, errsize, "role %s takes no %s", role_name(req->role),
		    token_options[extra].flag);
		return -1;
	}
	req->office_id = values[OPT_OFFICE];
	req->institute_id = values[OPT_INSTITUTE];
	req->provider_id = values[OPT_PROVIDER];
	req->programme_id = values[OPT_PROGRAMME];
	if (req->programme_id != NULL && !uuid_valid(req->programme_id)) {
		snprintf(err, errsize, "--programme must be a programme's id (a UUID), not \"%s\"",
		    req->programme_id);
		return -1;
	}
	if (values[OPT_REGION] != NULL &&
	    (req->region = offices_region_parse(values[OPT_REGION])) == NULL) {
		snprintf(
		    err, errsize, "--region must be LVR or LWL, not \"%s\"", values[OPT_REGION]);
		return -1;
	}

	if (values[OPT_EXPIRES] != NULL) {
		int64_t at;
		if (token_date_parse(values[OPT_EXPIRES], &at) != 0) {
			snprintf(err, errsize, "--expires: \"%s\" is not a date (YYYY-MM-DD)",
			    values[OPT_EXPIRES]);
			return -1;
		}
		if (at <= now) {
			snprintf(err, errsize, "--expires: %s (00:00 UTC) is not in the future",
			    values[OPT_EXPIRES]);
			return -1;
		}
		req->expires = values[OPT_EXPIRES];
	}
	return 0;
}

/* ---- dates ---- */

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
token_date_parse(const char *s, int64_t *at)
{
	static const int month_days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t part[3] = { 0, 0, 0 };
	static const int width[3] = { 4, 2, 2 };
	const char *p = s;

	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < width[k]; i++, p++) {
			if (*p < '0' || *p > '9')
				return -1;
			part[k] = part[k] * 10 + (*p - '0');
		}
		if (*p != (k < 2 ? '-' : '\0'))
			return -1;
		p++;
	}
	int64_t y = part[0], m = part[1], d = part[2];
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return -1;
	if (d > month_days[m - 1] + (m == 2 && is_leap(y)))
		return -1;
	*at = days_from_civil(y, m, d) * 86400;
	return 0;
}

/* ---- the token ---- */
