/*
 * router — the one table of routes. Every route names its path pattern
 * ("{}" matches one segment), its method, its handler and the permission a
 * caller needs. The dispatcher decides the caller's identity, answers 404 for
 * unknown paths, 405 (with Allow) for a known path with another method, and
 * checks limits before any handler runs.
 */
#ifndef KQE_API_ROUTER_H
#define KQE_API_ROUTER_H

#include "auth.h"
#include "server.h"

typedef void (*handler_fn)(struct request *r);

struct route {
	const char *pattern;
	enum evhttp_cmd_type method;
	handler_fn handler;
	enum permission permission;
};

extern const struct route routes[];
extern const int routes_count;

/*
 * Finds the route for method+path. Returns its index (and fills params with
 * new strings for "{}" segments) or -1 if no pattern matches, -2 if a pattern
 * matches but not the method; then *allow gets the allowed methods' mask.
 */
int router_match(
    enum evhttp_cmd_type method, const char *path, char **params, int *nparams, unsigned *allow);

/* The evhttp generic callback; arg is the struct worker. */
void router_dispatch_cb(struct evhttp_request *req, void *arg);

#endif
