#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "http.h"
#include "jwt.h"
#include "kqe/log.h"
#include "router.h"

#define R(role) (1u << (role))
#define ALL_ROLES                                                                                  \
	(R(ROLE_OFFICE_STAFF) | R(ROLE_OFFICE_LEAD) | R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) |        \
	    R(ROLE_MINISTRY) | R(ROLE_ADMIN))

/* The permission table. Default deny: a role not listed may not. */
static const struct {
	const char *name;
	unsigned roles;
} permissions[PERM_COUNT] = {
	[PERM_PUBLIC] = { "public", ALL_ROLES | R(ROLE_NONE) },
	[PERM_OFFICES_READ] = { "offices.read", ALL_ROLES },
	[PERM_REPORTS_CREATE] = { "reports.create",
	    R(ROLE_ADVISOR) | R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	[PERM_REPORTS_READ] = { "reports.read", ALL_ROLES },
	[PERM_JOBS_READ] = { "jobs.read", R(ROLE_ADVISOR) | R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	/* Advisors and the ministry: only the cycle status view (the handler enforces it). */
	[PERM_PROCEDURES_READ] = { "procedures.read", ALL_ROLES },
	[PERM_PROCEDURES_WRITE] = { "procedures.write",
	    R(ROLE_OFFICE_STAFF) | R(ROLE_OFFICE_LEAD) | R(ROLE_INSTITUTE) | R(ROLE_ADMIN) },
	[PERM_AUDIT_READ] = { "audit.read", R(ROLE_ADMIN) },
	[PERM_CODELISTS_READ] = { "codelists.read", ALL_ROLES },
	/* Case-level data: never the advisors or the ministry. */
	[PERM_CASES_READ] = { "cases.read",
	    R(ROLE_OFFICE_STAFF) | R(ROLE_OFFICE_LEAD) | R(ROLE_INSTITUTE) | R(ROLE_ADMIN) },
	/* An office's own figures beside aggregated peers: the office itself, and admin. */
	[PERM_BENCHMARK_READ] = { "benchmark.read",
	    R(ROLE_OFFICE_STAFF) | R(ROLE_OFFICE_LEAD) | R(ROLE_ADMIN) },
	/* All reports of a year for the Ministry's batch pull. */
	[PERM_BATCHES_CREATE] = { "batches.create", R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	[PERM_CASES_WRITE] = { "cases.write",
	    R(ROLE_OFFICE_STAFF) | R(ROLE_OFFICE_LEAD) | R(ROLE_INSTITUTE) },
};

bool
auth_allows(const struct principal *p, enum permission perm)
{
	return perm < PERM_COUNT && (permissions[perm].roles & R(p->role)) != 0;
}

void
auth_print_permissions(FILE *out)
{
	fprintf(out, "| route | permission |");
	for (int role = ROLE_OFFICE_STAFF; role <= ROLE_ADMIN; role++)
		fprintf(out, " %s |", role_name((enum role)role));
	fprintf(out, "\n|---|---|");
	for (int role = ROLE_OFFICE_STAFF; role <= ROLE_ADMIN; role++)
		fprintf(out, ":-:|");
	fprintf(out, "\n");
	for (int i = 0; i < routes_count; i++) {
		const char *method = routes[i].method == EVHTTP_REQ_POST    ? "POST"
		                     : routes[i].method == EVHTTP_REQ_PATCH ? "PATCH"
		                     : routes[i].method == EVHTTP_REQ_PUT   ? "PUT"
		                                                            : "GET";
		fprintf(out, "| `%s %s` | %s |", method, routes[i].pattern,
		    permissions[routes[i].permission].name);
		for (int role = ROLE_OFFICE_STAFF; role <= ROLE_ADMIN; role++)
			fprintf(out, " %s |",
			    permissions[routes[i].permission].roles & R(role) ? "yes" : "–");
		fprintf(out, "\n");
	}
}

static const struct db_stmt stmt_token = { "auth_token",
	"SELECT id, role, coalesce(office_id, ''), coalesce(region, ''),"
	" coalesce(institute_id, ''), revoked_at IS NOT NULL,"
	" expires_at IS NOT NULL AND expires_at <= now()"
	" FROM api_tokens WHERE token_hash = $1" };

#define API_KEY_PREFIX "kqe_"
#define API_KEY_CHARS 43 /* base64url of 32 bytes, unpadded */

static void
reply_unauthorized(struct request *r, const char *error, const char *detail)
{
	char challenge[128];
	if (error != NULL)
		snprintf(challenge, sizeof(challenge), "Bearer realm=\"kqe\", error=\"%s\"", error);
	else
		snprintf(challenge, sizeof(challenge), "Bearer realm=\"kqe\"");
	reply_header(r, "WWW-Authenticate", challenge);
	reply_problem(r, 401, detail, NULL);
}

static int
well_formed_api_key(const char *t)
{
	if (strncmp(t, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) != 0)
		return 0;
	t += strlen(API_KEY_PREFIX);
	size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
	return n == API_KEY_CHARS && t[n] == '\0';
}

static int
identify_api_key(struct request *r, const char *token)
{
	unsigned char md[32];
	unsigned int len = 0;
	char hash[65];

	EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), hash);
	const char *params[] = { hash };
	PGresult *res = db_exec(r->worker->db, &stmt_token, 1, params);
	if (res == NULL) {
		reply_db_error(r);
		return -1;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		reply_unauthorized(r, "invalid_token", "The token is not known.");
		return -1;
	}
	int revoked = PQgetvalue(res, 0, 5)[0] == 't';
	int expired = PQgetvalue(res, 0, 6)[0] == 't';
	struct principal *p = &r->principal;
	snprintf(p->actor, sizeof(p->actor), "token:%s", PQgetvalue(res, 0, 0));
	if (role_parse(PQgetvalue(res, 0, 1), &p->role) != 0)
		p->role = ROLE_NONE;
	snprintf(p->office_id, sizeof(p->office_id), "%s", PQgetvalue(res, 0, 2));
	snprintf(p->region, sizeof(p->region), "%s", PQgetvalue(res, 0, 3));
	snprintf(p->institute_id, sizeof(p->institute_id), "%s", PQgetvalue(res, 0, 4));
	PQclear(res);
	if (revoked || expired) {
		log_info(r->id, "token refused",
		    json_pack(
		        "{s:s,s:s}", "actor", p->actor, "reason", revoked ? "revoked" : "expired"));
		memset(p, 0, sizeof(*p));
		reply_unauthorized(r, "invalid_token",
		    revoked ? "The token was revoked." : "The token has expired.");
		return -1;
	}
	return 0;
}

/*
 * Fixed one-minute window per principal, counted in Redis so every kqe-api
 * instance shares it. If Redis cannot answer, requests are let through (a
 * rate limit must not turn a Redis outage into an API outage).
 */
static int
rate_limited(struct request *r)
{
	long limit = r->worker->cfg->rate_limit_per_minute;
	if (limit == 0)
		return 0;
	time_t now = time(NULL);
	char key[128];
	snprintf(key, sizeof(key), "kqe:ratelimit:%s:%ld", r->principal.actor, (long)(now / 60));
	redisReply *rep = redis_cmd(r->worker->redis, "INCR %s", key);
	if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
		if (rep != NULL)
			freeReplyObject(rep);
		return 0;
	}
	long long count = rep->integer;
	freeReplyObject(rep);
	if (count == 1 && (rep = redis_cmd(r->worker->redis, "EXPIRE %s 120", key)) != NULL)
		freeReplyObject(rep);
	if (count <= limit)
		return 0;
	char retry[16];
	snprintf(retry, sizeof(retry), "%ld", 60 - (long)(now % 60));
	reply_header(r, "Retry-After", retry);
	reply_problem(r, 429, "Too many requests for this token; try again later.", NULL);
	return 1;
}

int
auth_identify(struct request *r)
{
	memset(&r->principal, 0, sizeof(r->principal));
	r->principal.role = ROLE_NONE;
	if (r->route->permission == PERM_PUBLIC)
		return 0;

	const char *h =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	if (h == NULL) {
		reply_unauthorized(r, NULL, "This resource needs a bearer token.");
		return -1;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		reply_unauthorized(r, "invalid_request", "Use the Bearer authentication scheme.");
		return -1;
	}
	const char *token = h + 7;
	while (*token == ' ')
		token++;
	if (well_formed_api_key(token)) {
		if (identify_api_key(r, token) != 0)
			return -1;
		return rate_limited(r) ? -1 : 0;
	}
	if (r->worker->jwks != NULL && jwt_shaped(token)) {
		const char *why;
		if (jwks_source_verify(r->worker->jwks, r->worker->cfg, token, time(NULL),
		        &r->principal, &why) != 0) {
			log_info(r->id, "jwt refused", json_pack("{s:s}", "reason", why));
			reply_unauthorized(r, "invalid_token", "The token is not valid.");
			return -1;
		}
		return rate_limited(r) ? -1 : 0;
	}
	reply_unauthorized(r, "invalid_token", "The token is not known.");
	return -1;
}
