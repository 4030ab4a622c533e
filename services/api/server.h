/*
 * server — the types every part of kqe-api shares: a worker (one thread with
 * its own event_base, evhttp, database and Redis connection) and a request
 * context that lives for the duration of one handler call.
 *
 * Threading: evhttp is not thread-safe, so nothing here is shared between
 * workers except the read-only configuration and the atomic metrics.
 * Handlers run synchronously on their worker's loop; a slow query stalls only
 * that worker (bounded by statement_timeout), never another one.
 */
#ifndef KQE_API_SERVER_H
#define KQE_API_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "kqe/config.h"
#include "kqe/db.h"
#include "kqe/principal.h"
#include "kqe/redis.h"

struct worker {
	int index;
	const struct config *cfg;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct db *db;
	struct redis *redis;
	struct jwks_source *jwks; /* NULL: JWTs are not accepted */
	const struct pseudonymizer *pseudonymizer; /* case references → pseudonyms */
	const struct keyring *keyring; /* free text at rest */
	bool draining;
};

struct route;
struct jwks_source;
struct pseudonymizer;
struct keyring;

#define ROUTE_MAX_PARAMS 4

struct request {
	struct evhttp_request *req;
	struct worker *worker;
	const struct route *route; /* NULL when no route matched */
	int route_index;
	const char *method; /* "GET", "POST", … */
	char id[72];
	char *params[ROUTE_MAX_PARAMS]; /* decoded path parameters, owned */
	int nparams;
	struct evkeyvalq query;
	bool query_parsed;
	struct principal principal; /* decided in exactly one place: auth_identify() */
	uint64_t start_ns;
	bool replied;
	int status; /* of the answer, once replied */
	char *idempotency_key; /* reserved Idempotency-Key, owned; NULL if none */
	bool idempotency_keep_body; /* the answer holds no personal data: store it for replay */
	int replay_status; /* a replay answers 200s under this status instead */
	const char *query_override; /* parse this instead of the URI's query ("" = none) */
	enum { LIST_JSON, LIST_CSV, LIST_CSV_EXCEL } list_format; /* how reply_list answers */
};

#endif
