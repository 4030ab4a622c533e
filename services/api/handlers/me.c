/*
 * GET /v1/me — who the token is: its role, what the role is bound to (an
 * office, a region or an institute) and the permissions it holds, named as
 * in the OpenAPI (x-kqe-permission), so a frontend can show only what its
 * user may do.
 */
#include "auth.h"
#include "handlers.h"
#include "http.h"

static json_t *
bound(const char *value)
{
	return value[0] != '\0' ? json_string(value) : json_null();
}

void
me_get(struct request *r)
{
	const struct principal *p = &r->principal;
	reply_json(r, 200,
	    json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "actor", p->actor, "role",
	        role_name(p->role), "office_id", bound(p->office_id), "region", bound(p->region),
	        "institute_id", bound(p->institute_id), "provider_id", bound(p->provider_id),
	        "programme_id", bound(p->programme_id), "permissions",
	        auth_permissions_of(p->role)));
}
