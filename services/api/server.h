/*
 * server — the types every part of kqe-api shares, and nothing else: a worker
 * (one thread with its own event_base, evhttp, database and Redis
 * connection), a route (what the route table declares about one method and
 * path) and a request (what the pipeline knows about one request while it is
 * answered). Every other file of kqe-api includes this header; it includes
 * none of them, so the modules import downwards only:
 *
 *     server.h  ←  http  ←  auth, jwt, idempotency, metrics, links, pipeline
 *               ←  handlers/<resource>.c  ←  router (table + dispatcher)  ←  main
 *
 * Threading: a worker is an event loop doing HTTP only; evhttp is not
 * thread-safe, so no evhttp object is touched by another thread. Requests
 * that need PostgreSQL or Redis run on the pool (pool.h), which reads a
 * request's parsed input but writes only the request's own fields, and hands
 * it back to its worker to answer. Shared read-only: the configuration, the
 * key material, the JWKS source (thread-safe, jwt.h); the metrics are
 * atomics.
 *
 * Memory: a request owns its path and query parameters, its parsed body, its
 * answer and whatever a handler hands it with request_own(); the dispatcher
 * releases all of it when the answer has been sent. A handler frees nothing
 * it did not allocate itself.
 */
#ifndef KQE_API_SERVER_H
#define KQE_API_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "kqe/config.h"
#include "kqe/db.h"
#include "kqe/principal.h"
#include "kqe/redis.h"

struct jwks_source;
struct conn_guard;
struct pseudonymizer;
struct keyring;
struct resource;
struct pool;
struct mailbox;

struct worker {
	int index;
	const struct config *cfg;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct pool *pool; /* shared by every worker: runs what needs PostgreSQL or Redis */
	struct mailbox *mailbox; /* where the pool hands this loop's requests back */
	struct jwks_source *jwks; /* NULL: JWTs are not accepted */
	const struct pseudonymizer *pseudonymizer; /* case references → pseudonyms */
	const struct keyring *keyring; /* free text at rest */
	const unsigned char *link_key; /* signs download links (32 bytes) */
	struct conn_guard *guard; /* deadlines and caps of this worker's connections */
	bool draining;
};

/*
 * Permissions: every route names one; auth.c holds the one table of which
 * roles have each (default deny).
 */
enum permission {
	PERM_PUBLIC, /* health, readiness, metrics, the contract: no token needed */
	PERM_SELF_READ,
	PERM_LINKS_CREATE,
	PERM_OFFICES_READ,
	PERM_REPORTS_CREATE,
	PERM_REPORTS_READ,
	PERM_JOBS_READ,
	PERM_CYCLES_READ,
	PERM_PROCEDURES_READ,
	PERM_PROCEDURES_CREATE,
	PERM_PROCEDURES_UPDATE,
	PERM_AUDIT_READ,
	PERM_CODELISTS_READ,
	PERM_CASES_READ,
	PERM_CASES_WRITE,
	PERM_BENCHMARK_READ,
	PERM_BATCHES_CREATE,
	PERM_PROCEDURE_REPORTS_LIST,
	PERM_PROCEDURE_REPORTS_READ,
	PERM_PROCEDURE_REPORTS_CREATE,
	PERM_PROCEDURE_REPORTS_UPDATE,
	PERM_REPORT_COMMENTS_READ,
	PERM_REPORT_COMMENTS_CREATE,
	PERM_ADVICE_READ,
	PERM_ADVICE_CREATE,
	PERM_ADVICE_UPDATE,
	PERM_ADVICE_MESSAGES_CREATE,
	PERM_PROVIDERS_READ,
	PERM_PROVIDERS_WRITE,
	PERM_CONCEPTS_READ,
	PERM_CONCEPTS_WRITE,
	PERM_CONCEPTS_COVERAGE,
	PERM_PROGRAMMES_READ,
	PERM_PROGRAMMES_WRITE,
	PERM_CALLS_WRITE,
	PERM_CLUSTERS_WRITE,
	PERM_APPLICATIONS_READ,
	PERM_APPLICATIONS_CREATE,
	PERM_APPLICATIONS_UPDATE,
	PERM_SELECTION_READ,
	PERM_EVENTS_WRITE,
	PERM_REGISTRATIONS_READ,
	PERM_REGISTRATIONS_WRITE,
	PERM_SIGNUP, /* without a token, rate-limited per client address */
	PERM_PROFESSIONALS_READ,
	PERM_PROFESSIONALS_DECIDE,
	PERM_SERVICE_READ,
	PERM_SERVICE_ASK,
	PERM_SERVICE_UPDATE,
	PERM_MATERIALS_READ, /* with a token or without one: then the public ones only */
	PERM_MATERIALS_WRITE,
	PERM_COUNT
};

/*
 * What a path parameter is. The router checks it before anything else runs
 * (anything else is a 404, never a database error) and hands the handler its
 * canonical form: a UUID in lower case, a cycle "2023" as "2023-2028".
 */
enum param_kind {
	PARAM_UUID,
	PARAM_SLUG, /* an office or institute id */
	PARAM_NAME, /* a code list id: [a-z0-9_], up to 64 */
	PARAM_CYCLE, /* a five-year § 8 cycle */
};

/* What a query parameter is; the pipeline checks every one before the handler runs. */
enum query_kind {
	QUERY_UUID, /* lower-cased */
	QUERY_SLUG,
	QUERY_TIMESTAMP, /* RFC 3339 or YYYY-MM-DD */
	QUERY_BOOL, /* true | false */
	QUERY_ENUM, /* one of values[] */
	QUERY_TEXT, /* 1–100 characters of UTF-8 */
	QUERY_PERIOD, /* a year YYYY or a five-year cycle YYYY-YYYY */
};

struct query_param {
	const char *name;
	enum query_kind kind;
	const char *const *values; /* QUERY_ENUM: NULL-terminated */
};

struct request;
typedef void (*handler_fn)(struct request *r);

#define ROUTE_MAX_PARAMS 2
#define ROUTE_MAX_QUERY 8

/* Route flags. */
enum {
	ROUTE_BODY = 1 << 0, /* reads a JSON object body (415/413/400/422 before the handler) */
	ROUTE_LIST = 1 << 1, /* keyset list: limit, cursor */
	ROUTE_CSV = 1 << 2, /* answers text/csv: dialect; a download link may sign it */
	ROUTE_DRY_RUN = 1 << 3, /* takes ?dry_run=true */
	ROUTE_ETAG = 1 << 4, /* immutable or static content: ETag is a hash of the body */
	ROUTE_DOWNLOAD = 1 << 5, /* a file a browser downloads: a download link may sign it */
	ROUTE_INLINE = 1 << 6, /* public, needs no dependency: answered on the event loop */
	ROUTE_HEAVY = 1 << 7, /* holds a pool thread long (batches): at most half the pool */
	ROUTE_UPLOAD = 1 << 8, /* PUT of a file's bytes: path_update hands them to the resource */
};

struct route {
	enum evhttp_cmd_type method;
	const char *pattern; /* as in the OpenAPI: "/v1/case-analyses/{id}" */
	enum permission permission;
	handler_fn handler;
	enum param_kind params[ROUTE_MAX_PARAMS]; /* one per "{…}" in pattern */
	struct query_param query[ROUTE_MAX_QUERY]; /* the route's own; name NULL ends */
	unsigned flags;
	const struct resource *resource; /* the pipeline's read/list/write paths use it */
	/* path_read: answers the (borrowed) representation otherwise than as JSON (HTML). */
	void (*present)(struct request *r, const json_t *rep);
	const char *media; /* what it answers; NULL: application/json */
};

/* The answer, built by the reply functions (http.h) and sent once by the dispatcher. */
struct response {
	int status; /* 0: not answered yet */
	const char *content_type; /* static */
	struct evbuffer *body;
	struct evkeyvalq headers; /* set by reply_header(); http_send() hands them to evhttp */
};

struct request {
	struct evhttp_request *req; /* written to on the worker's loop only (pool.h) */
	struct worker *worker; /* the loop it arrived on and is answered from */
	TAILQ_ENTRY(request) next; /* in the pool's queue or a mailbox */
	uint64_t deadline_ns; /* now_ns() time: no wait for the pool or PostgreSQL goes past it */
	uint64_t client_key; /* who is asking, for the pool's fairness */
	bool expired; /* the pool gave it up at its deadline: answer 503 */
	struct db *db; /* the pool thread's connections while it runs the request; else NULL */
	struct redis *redis;
	const struct route *route; /* NULL when no route matched */
	int route_index;
	const char *method; /* "GET", "POST", … */
	char id[72];
	char *params[ROUTE_MAX_PARAMS]; /* canonical path parameters, owned */
	int nparams;
	/*
	 * A download link ("…&link=<token>" as the last parameter): the token,
	 * what it signs (the URI before it) and the query without it, all in
	 * link_buf (owned). NULL when the request carries none.
	 */
	char *link_buf;
	const char *link, *link_signed, *query_text;
	struct evkeyvalq query; /* parsed and checked query parameters */
	bool query_parsed;
	json_t *body; /* the parsed body of a ROUTE_BODY route, owned */
	long limit; /* ROUTE_LIST: ?limit= */
	json_t
	    *after; /* ROUTE_LIST: the decoded ?cursor= (its sort keys), owned; NULL: first page */
	bool dry_run; /* ROUTE_DRY_RUN: ?dry_run=true */
	bool excel; /* ROUTE_CSV: ?dialect=excel */
	struct principal principal; /* decided in exactly one place: auth_identify() */
	struct {
		long limit, remaining, reset; /* limit 0: not known (Redis did not answer) */
	} rate;
	uint64_t start_ns;
	struct response resp;
	char *idempotency_key; /* the POST's Idempotency-Key, owned; NULL if none */
	char idempotency_hash[65]; /* of method, URI and body: what "the same request" is */
	bool idempotency_lost; /* another request holds or took the key: the dispatcher answers */
	int replay_status; /* a replay answers 200s under this status instead */
	json_t *owned; /* released with the request (request_own) */
};

/* The request owns v from now on (released when the request ends); returns v. */
json_t *request_own(struct request *r, json_t *v);

/* The same for a string from malloc (NULL stays NULL): freed now, a copy lives on. */
const char *request_own_string(struct request *r, char *s);

#endif
