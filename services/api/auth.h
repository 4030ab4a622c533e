/*
 * auth — who is calling and what they may do. This is the single place in the
 * request path where identity is decided (auth_identify) and permissions are
 * checked (auth_allows). Authentication arrives with the next issue; until then
 * every caller is an anonymous principal and every permission is granted.
 */
#ifndef KQE_API_AUTH_H
#define KQE_API_AUTH_H

#include <stdbool.h>

#include "server.h"

enum permission {
	PERM_PUBLIC, /* health, metrics */
	PERM_OFFICES_READ, /* the office directory */
	PERM_REPORTS_CREATE,
	PERM_REPORTS_READ,
	PERM_JOBS_READ,
};

/* Fills r->principal. Returns 0, or -1 after answering 401. */
int auth_identify(struct request *r);

bool auth_allows(const struct principal *p, enum permission perm);

#endif
