#include "kqe/principal.h"

#include <stdlib.h>
#include <string.h>

static const char *const role_names[ROLE_COUNT] = {
	[ROLE_NONE] = "anonymous",
	[ROLE_OFFICE_STAFF] = "office_staff",
	[ROLE_OFFICE_LEAD] = "office_lead",
	[ROLE_INSTITUTE] = "institute",
	[ROLE_ADVISOR] = "advisor",
	[ROLE_MINISTRY] = "ministry",
	[ROLE_ADMIN] = "admin",
	[ROLE_PROVIDER_STAFF] = "provider_staff",
	[ROLE_PROGRAMME_TEAM] = "programme_team",
	[ROLE_PROFESSIONAL] = "professional",
	[ROLE_SYSTEM] = "system",
};

const char *
role_name(enum role role)
{
	return role < ROLE_COUNT ? role_names[role] : "anonymous";
}

int
role_parse(const char *name, enum role *out)
{
	for (int r = ROLE_API_FIRST; r <= ROLE_API_LAST; r++) {
		if (strcmp(name, role_names[r]) == 0) {
			*out = (enum role)r;
			return 0;
		}
	}
	return -1;
}

bool
role_is_office(enum role role)
{
	return role == ROLE_OFFICE_STAFF || role == ROLE_OFFICE_LEAD;
}

static const struct db_stmt stmt_context = { "principal_context",
	"SELECT set_config('kqe.role', $1, true), set_config('kqe.office_id', $2, true),"
	" set_config('kqe.region', $3, true), set_config('kqe.institute_id', $4, true),"
	" set_config('kqe.provider_id', $5, true), set_config('kqe.programme_id', $6, true),"
	" set_config('kqe.professional_id', $7, true)" };

/* The parameters of stmt_context for p. */
static void
context_params(const struct principal *p, const char *params[7])
{
	params[0] = role_name(p->role);
	params[1] = p->office_id;
	params[2] = p->region;
	params[3] = p->institute_id;
	params[4] = p->provider_id;
	params[5] = p->programme_id;
	params[6] = p->professional_id;
}

int
db_set_principal(struct db *db, const struct principal *p)
{
	const char *params[7];
	context_params(p, params);
	PGresult *res = db_exec(db, &stmt_context, 7, params);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_begin_as(struct db *db, const struct principal *p)
{
	const char *params[7];
	context_params(p, params);
	return db_begin_setup(db, "BEGIN", &stmt_context, 7, params);
}

static const struct db_stmt stmt_append = { "audit_append",
	"SELECT kqe_audit_append($1, $2, $3, $4, $5, $6, $7, $8::jsonb)" };

int
audit_append(struct db *db, const struct principal *p, const char *action, const char *resource,
    const char *resource_id, const char *office_id, const char *request_id, const json_t *details)
{
	char *text = details != NULL ? json_dumps(details, JSON_COMPACT) : NULL;
	const char *params[] = { p->actor, role_name(p->role), office_id, action, resource,
		resource_id, request_id, text != NULL ? text : "{}" };
	PGresult *res = db_exec(db, &stmt_append, 8, params);
	free(text);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}
