/*
 * router — the one table of routes and the dispatcher that runs every
 * request through the same steps (docs/architecture.md walks one through):
 *
 *   request id → draining / header limit → route (404, 405 with Allow,
 *   OPTIONS and CORS preflight) → path parameters by kind (404) → Accept
 *   (406) → identity (401, 503) → rate limit (429) → permission (403) →
 *   query (400) → body (415, 413, 400, 422) → Idempotency-Key (replay,
 *   409, 422) → handler → conditional GET (304) → idempotency record →
 *   headers every answer carries → send (HEAD without body) → metrics and
 *   access log → everything the request owned is released.
 *
 * It sits on top of every other module of kqe-api; none of them includes it.
 */
#ifndef KQE_API_ROUTER_H
#define KQE_API_ROUTER_H

#include <stdio.h>

#include "server.h"

extern const struct route routes[];
extern const int routes_count;

/*
 * Finds the route for method+path. Returns its index (and fills params with
 * new strings for "{…}" segments, as they are in the path) or -1 if no
 * pattern matches, -2 if a pattern matches but not the method; then *allow
 * gets the allowed methods' mask.
 */
int router_match(
    enum evhttp_cmd_type method, const char *path, char **params, int *nparams, unsigned *allow);

/*
 * The body of POST /v1/download-links, {"href": "<path>?<query>"}: the index
 * of the download route (ROUTE_DOWNLOAD) href names, or -1 with an error
 * appended to errors. Whether the caller may make that download is the
 * handler's to check.
 */
int download_link_route(const json_t *body, json_t *errors);

/* The evhttp generic callback; arg is the struct worker. */
/*
 * The evhttp callback (arg: the worker): the steps that need nothing but the
 * request run on the loop; the rest goes to the pool (pool.h), which calls
 * router_run() and hands the request back to the loop's mailbox, whose
 * delivery is router_finish().
 */
void router_dispatch_cb(struct evhttp_request *req, void *arg);

/* In a pool thread: authentication, rate limit, permission, query, body, the handler. */
void router_run(struct request *r);

/* On the request's loop: sends the answer, counts and logs it, frees the request. */
void router_finish(struct request *r);

/* Frees a request that can no longer be answered (its loop has stopped). */
void router_discard(struct request *r);

/* Prints the route table with permissions as Markdown (kqe-api --permissions). */
void router_print_permissions(FILE *out);

#endif
