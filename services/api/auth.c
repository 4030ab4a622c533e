#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "http.h"
#include "jwt.h"
#include "kqe/log.h"
#include "links.h"
#include "token_cache.h"

#define R(role) ROLE_BIT(role)
#define ALL_ROLES                                                                                  \
	(R(ROLE_OFFICE_STAFF) | R(ROLE_OFFICE_LEAD) | R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) |        \
	    R(ROLE_MINISTRY) | R(ROLE_ADMIN))
#define OFFICE_ROLES (R(ROLE_OFFICE_STAFF) | R(ROLE_OFFICE_LEAD))
/* A foster-care provider's staff: the directories, published reports and its own concept. */
#define PROVIDER R(ROLE_PROVIDER_STAFF)
/* A programme's team: the directories, published reports, and its programme. */
#define TEAM R(ROLE_PROGRAMME_TEAM)
/* An approved professional: its programme's published part, and itself; nothing else. */
#define PRO R(ROLE_PROFESSIONAL)

/* The permission table. Default deny: a role not listed may not. */
static const struct {
	const char *name;
	unsigned roles;
} permissions[PERM_COUNT] = {
	[PERM_PUBLIC] = { "public", ALL_ROLES | PROVIDER | TEAM | PRO | R(ROLE_NONE) },
	/* Who am I: role, binding, permissions. */
	[PERM_SELF_READ] = { "self.read", ALL_ROLES | PROVIDER | TEAM | PRO },
	/* A signed link to a download the caller may make itself (links.h). */
	[PERM_LINKS_CREATE] = { "links.create", ALL_ROLES | PROVIDER | TEAM },
	[PERM_OFFICES_READ] = { "offices.read", ALL_ROLES | PROVIDER | TEAM },
	[PERM_REPORTS_CREATE] = { "reports.create",
	    R(ROLE_ADVISOR) | R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	[PERM_REPORTS_READ] = { "reports.read", ALL_ROLES | PROVIDER | TEAM },
	[PERM_JOBS_READ] = { "jobs.read", R(ROLE_ADVISOR) | R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	/* Which offices are due, overdue, in progress or done in a cycle: ids and a status. */
	[PERM_CYCLES_READ] = { "cycles.read", ALL_ROLES },
	/* Procedures themselves: never the advisors or the ministry (they see cycles.read). */
	[PERM_PROCEDURES_READ] = { "procedures.read",
	    OFFICE_ROLES | R(ROLE_INSTITUTE) | R(ROLE_ADMIN) },
	/* A procedure is opened by its office (or by operations for it). */
	[PERM_PROCEDURES_CREATE] = { "procedures.create", OFFICE_ROLES | R(ROLE_ADMIN) },
	[PERM_PROCEDURES_UPDATE] = { "procedures.update",
	    OFFICE_ROLES | R(ROLE_INSTITUTE) | R(ROLE_ADMIN) },
	[PERM_AUDIT_READ] = { "audit.read", R(ROLE_ADMIN) },
	[PERM_CODELISTS_READ] = { "codelists.read", ALL_ROLES | PROVIDER | TEAM | PRO },
	/* Case-level data: never the advisors or the ministry. */
	[PERM_CASES_READ] = { "cases.read", OFFICE_ROLES | R(ROLE_INSTITUTE) | R(ROLE_ADMIN) },
	[PERM_CASES_WRITE] = { "cases.write", OFFICE_ROLES | R(ROLE_INSTITUTE) },
	/* An office's own figures beside aggregated peers: the office itself, and admin. */
	[PERM_BENCHMARK_READ] = { "benchmark.read", OFFICE_ROLES | R(ROLE_ADMIN) },
	/* All reports of a period for the Ministry's batch pull. */
	[PERM_BATCHES_CREATE] = { "batches.create", R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	/* § 8 procedure reports: the ministry lists only that one is finalised, and when. */
	[PERM_PROCEDURE_REPORTS_LIST] = { "procedure_reports.list",
	    OFFICE_ROLES | R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) | R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	[PERM_PROCEDURE_REPORTS_READ] = { "procedure_reports.read",
	    OFFICE_ROLES | R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) | R(ROLE_ADMIN) },
	/* Drafted by the procedure's institute or the region's Landesjugendamt advisors. */
	[PERM_PROCEDURE_REPORTS_CREATE] = { "procedure_reports.create",
	    R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) },
	/* Edited and finalised by them; accepted by the office lead (the domain tells which). */
	[PERM_PROCEDURE_REPORTS_UPDATE] = { "procedure_reports.update",
	    R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) | R(ROLE_OFFICE_LEAD) },
	[PERM_REPORT_COMMENTS_READ] = { "report_comments.read",
	    OFFICE_ROLES | R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) | R(ROLE_ADMIN) },
	[PERM_REPORT_COMMENTS_CREATE] = { "report_comments.create",
	    OFFICE_ROLES | R(ROLE_INSTITUTE) | R(ROLE_ADVISOR) },
	/* § 7 advice: between an office and its region's advisors; admin reads without the text. */
	[PERM_ADVICE_READ] = { "advice.read", OFFICE_ROLES | R(ROLE_ADVISOR) | R(ROLE_ADMIN) },
	[PERM_ADVICE_CREATE] = { "advice.create", OFFICE_ROLES },
	[PERM_ADVICE_UPDATE] = { "advice.update", OFFICE_ROLES | R(ROLE_ADVISOR) },
	[PERM_ADVICE_MESSAGES_CREATE] = { "advice_messages.create",
	    OFFICE_ROLES | R(ROLE_ADVISOR) },
	/* The providers' directory: public like the offices'; admin keeps it. */
	[PERM_PROVIDERS_READ] = { "providers.read", ALL_ROLES | PROVIDER | TEAM },
	[PERM_PROVIDERS_WRITE] = { "providers.write", R(ROLE_ADMIN) },
	/* § 10 concepts: the owner writes; the region's advisors and admin read; the ministry
	 * and the advisors see the coverage (the ministry as counts). */
	[PERM_CONCEPTS_READ] = { "protection_concepts.read",
	    OFFICE_ROLES | PROVIDER | R(ROLE_ADVISOR) | R(ROLE_ADMIN) },
	[PERM_CONCEPTS_WRITE] = { "protection_concepts.write", OFFICE_ROLES | PROVIDER },
	[PERM_CONCEPTS_COVERAGE] = { "protection_concepts.coverage",
	    R(ROLE_ADVISOR) | R(ROLE_MINISTRY) | R(ROLE_ADMIN) },
	/* Programmes, their calls and clusters are published: every caller reads them. */
	[PERM_PROGRAMMES_READ] = { "programmes.read", ALL_ROLES | PROVIDER | TEAM | PRO },
	[PERM_PROGRAMMES_WRITE] = { "programmes.write", R(ROLE_ADMIN) },
	/* The programme's team runs it (its SQL and RLS: its own programme only). */
	[PERM_CALLS_WRITE] = { "calls.write", TEAM },
	[PERM_CLUSTERS_WRITE] = { "clusters.write", TEAM },
	/* An application: the applying office and the programme's team; admin without answers. */
	[PERM_APPLICATIONS_READ] = { "applications.read", OFFICE_ROLES | TEAM | R(ROLE_ADMIN) },
	/* An application commits the office: its lead applies (or the team, for an office
	 * outside kqe). */
	[PERM_APPLICATIONS_CREATE] = { "applications.create", R(ROLE_OFFICE_LEAD) | TEAM },
	[PERM_APPLICATIONS_UPDATE] = { "applications.update", R(ROLE_OFFICE_LEAD) | TEAM },
	[PERM_SELECTION_READ] = { "selection.read", TEAM | R(ROLE_ADMIN) },
	/* Events are the team's; offices register their people, the team anyone, an approved
	 * professional itself; a registration is read by its office (or professional) and the
	 * team (admin without names). */
	[PERM_EVENTS_WRITE] = { "events.write", TEAM },
	[PERM_REGISTRATIONS_READ] = { "event_registrations.read",
	    OFFICE_ROLES | TEAM | PRO | R(ROLE_ADMIN) },
	[PERM_REGISTRATIONS_WRITE] = { "event_registrations.write", OFFICE_ROLES | TEAM | PRO },
	/* Professionals register themselves, without a token; the team reads and decides;
	 * a professional reads its own; admin sees registrations without their persons. */
	[PERM_SIGNUP] = { "registrations.submit",
	    ALL_ROLES | PROVIDER | TEAM | PRO | R(ROLE_NONE) },
	[PERM_PROFESSIONALS_READ] = { "registrations.read", TEAM | PRO | R(ROLE_ADMIN) },
	[PERM_PROFESSIONALS_DECIDE] = { "registrations.decide", TEAM },
	/* The service desk: offices and professionals ask, the programme's team answers;
	 * admin sees that questions exist. The FAQ itself is public. */
	[PERM_SERVICE_READ] = { "service_requests.read",
	    OFFICE_ROLES | PRO | TEAM | R(ROLE_ADMIN) },
	[PERM_SERVICE_ASK] = { "service_requests.create", OFFICE_ROLES | PRO },
	[PERM_SERVICE_UPDATE] = { "service_requests.update", OFFICE_ROLES | PRO | TEAM },
	/* The materials library: the programme's participants read what is theirs, everyone
	 * (a token or none) what is public; the team keeps it. */
	[PERM_MATERIALS_READ] = { "materials.read",
	    ALL_ROLES | PROVIDER | TEAM | PRO | R(ROLE_NONE) },
	[PERM_MATERIALS_WRITE] = { "materials.write", TEAM },
};

bool
auth_allows(const struct principal *p, enum permission perm)
{
	return perm < PERM_COUNT && (permissions[perm].roles & R(p->role)) != 0;
}

const char *
auth_permission_name(enum permission perm)
{
	return perm < PERM_COUNT ? permissions[perm].name : "none";
}

bool
auth_role_has(enum role role, enum permission perm)
{
	return perm < PERM_COUNT && (permissions[perm].roles & R(role)) != 0;
}

json_t *
auth_permissions_of(enum role role)
{
	json_t *names = json_array();
	for (int perm = PERM_PUBLIC + 1; perm < PERM_COUNT; perm++)
		if (auth_role_has(role, (enum permission)perm))
			json_array_append_new(names, json_string(permissions[perm].name));
	return names;
}

static const struct db_stmt stmt_token = { "auth_token",
	"SELECT id, role, coalesce(office_id, ''), coalesce(region, ''),"
	" coalesce(institute_id, ''), revoked_at IS NOT NULL,"
	" expires_at IS NOT NULL AND expires_at <= now(), coalesce(provider_id, ''),"
	" coalesce(programme_id::text, ''), coalesce(professional_id::text, ''),"
	" coalesce(floor(extract(epoch FROM expires_at))::bigint, 0)"
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

bool
auth_api_key_shaped(const char *t)
{
	if (strncmp(t, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) != 0)
		return false;
	t += strlen(API_KEY_PREFIX);
	size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
	return n == API_KEY_CHARS && t[n] == '\0';
}

/* The principal of a key's row (stmt_token); the row's revocation and expiry are checked apart. */
static void
principal_of_row(const PGresult *res, struct principal *p)
{
	snprintf(p->actor, sizeof(p->actor), "token:%s", PQgetvalue(res, 0, 0));
	if (role_parse(PQgetvalue(res, 0, 1), &p->role) != 0)
		p->role = ROLE_NONE;
	snprintf(p->office_id, sizeof(p->office_id), "%s", PQgetvalue(res, 0, 2));
	snprintf(p->region, sizeof(p->region), "%s", PQgetvalue(res, 0, 3));
	snprintf(p->institute_id, sizeof(p->institute_id), "%s", PQgetvalue(res, 0, 4));
	snprintf(p->provider_id, sizeof(p->provider_id), "%s", PQgetvalue(res, 0, 7));
	snprintf(p->programme_id, sizeof(p->programme_id), "%s", PQgetvalue(res, 0, 8));
	snprintf(p->professional_id, sizeof(p->professional_id), "%s", PQgetvalue(res, 0, 9));
}

/* A key is looked up by its SHA-256, on this thread's cache first (token_cache.h). */
static int
identify_api_key(struct request *r, const char *token)
{
	unsigned char md[32];
	unsigned int len = 0;
	char hash[65];

	EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL);
	if (token_cache_get(md, &r->principal))
		return 0;
	uint64_t generation = token_cache_generation();
	hex_encode(md, sizeof(md), hash);
	const char *params[] = { hash };
	PGresult *res = db_exec(r->db, &stmt_token, 1, params);
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
	int64_t expires_at = strtoll(PQgetvalue(res, 0, 10), NULL, 10);
	struct principal *p = &r->principal;
	principal_of_row(res, p);
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
	token_cache_put(md, p, generation, expires_at);
	return 0;
}

/*
 * Fixed one-minute window per principal, counted in Redis so every kqe-api
 * instance shares it. If Redis cannot answer, requests are let through (a
 * rate limit must not turn a Redis outage into an API outage).
 */
int
auth_rate_limit(struct request *r)
{
	long limit = r->worker->cfg->rate_limit_per_minute;
	char who[80];
	if (r->principal.role == ROLE_NONE && r->route->permission == PERM_PUBLIC)
		return 0;
	snprintf(who, sizeof(who), "%s", r->principal.actor);
	if (r->principal.role == ROLE_NONE) {
		/* Nobody's requests count per client address (behind a proxy: the proxy's):
		 * registering by its own limit, a route that takes a token as a token does. */
		char *host = NULL;
		ev_uint16_t port;
		struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
		if (evcon != NULL)
			evhttp_connection_get_peer(evcon, &host, &port);
		bool signup = r->route->permission == PERM_SIGNUP;
		snprintf(who, sizeof(who), "%s:%s", signup ? "signup" : "addr",
		    host != NULL ? host : "unknown");
		if (signup)
			limit = r->worker->cfg->signup_rate_limit_per_minute;
	}
	if (limit == 0)
		return 0;
	time_t now = time(NULL);
	char key[128];
	snprintf(key, sizeof(key), "kqe:ratelimit:%s:%ld", who, (long)(now / 60));
	redisReply *rep = redis_cmd(r->redis, "INCR %s", key);
	if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
		if (rep != NULL)
			freeReplyObject(rep);
		return 0;
	}
	long long count = rep->integer;
	freeReplyObject(rep);
	if (count == 1 && (rep = redis_cmd(r->redis, "EXPIRE %s 120", key)) != NULL)
		freeReplyObject(rep);
	r->rate.limit = limit;
	r->rate.remaining = count < limit ? limit - (long)count : 0;
	r->rate.reset = 60 - (long)(now % 60);
	if (count <= limit)
		return 0;
	char retry[16];
	snprintf(retry, sizeof(retry), "%ld", r->rate.reset);
	reply_header(r, "Retry-After", retry);
	reply_problem(r, 429,
	    r->route->permission == PERM_SIGNUP
	        ? "Too many requests from this address; try again later."
	        : "Too many requests for this token; try again later.",
	    NULL);
	return -1;
}

/*
 * A signed download link stands in for the token, for the one download it
 * names (the router takes a link only off a download route, which is a GET).
 */
static int
identify_link(struct request *r)
{
	if (link_verify(r->worker->link_key, r->link, r->link_signed, time(NULL), &r->principal) !=
	    0) {
		memset(&r->principal, 0, sizeof(r->principal));
		reply_unauthorized(
		    r, "invalid_token", "The download link is not valid or has expired.");
		return -1;
	}
	return 0;
}

int
auth_identify(struct request *r)
{
	memset(&r->principal, 0, sizeof(r->principal));
	r->principal.role = ROLE_NONE;
	if (r->route->permission == PERM_PUBLIC)
		return 0;
	/* Registering and confirming are done as nobody, whatever credentials come along. */
	if (r->route->permission == PERM_SIGNUP) {
		snprintf(r->principal.actor, sizeof(r->principal.actor), "anonymous");
		return 0;
	}

	const char *h =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	if (h == NULL && r->link != NULL)
		return identify_link(r);
	/* A route nobody may use takes a token if one comes, and answers as nobody if none. */
	if (h == NULL && auth_role_has(ROLE_NONE, r->route->permission)) {
		snprintf(r->principal.actor, sizeof(r->principal.actor), "anonymous");
		return 0;
	}
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
	if (auth_api_key_shaped(token))
		return identify_api_key(r, token);
	if (r->worker->jwks != NULL && jwt_shaped(token)) {
		const char *why;
		if (jwks_source_verify(r->worker->jwks, r->worker->cfg, token, time(NULL),
		        &r->principal, &why) != 0) {
			log_info(r->id, "jwt refused", json_pack("{s:s}", "reason", why));
			reply_unauthorized(r, "invalid_token", "The token is not valid.");
			return -1;
		}
		return 0;
	}
	reply_unauthorized(r, "invalid_token", "The token is not known.");
	return -1;
}
