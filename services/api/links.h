/*
 * links — short-lived signed download links. A browser follows an <a href>
 * without the bearer token, so a frontend asks POST /v1/download-links for a
 * link to one download (a report's HTML or CSV, a list as CSV); the link
 * carries who asked and until when, signed with HMAC-SHA256 under a key
 * derived from KQE_PSEUDONYM_KEY, so every kqe-api instance accepts it.
 *
 * A link is "<path>?<query>&link=<token>" (or "<path>?link=<token>"): the
 * token signs exactly the URI before it, so no parameter can be changed or
 * added. token = base64url(claims JSON) "." base64url(HMAC(claims "\n" URI)).
 */
#ifndef KQE_API_LINKS_H
#define KQE_API_LINKS_H

#include <time.h>

#include "kqe/principal.h"

#define LINK_KEY_LEN 32
#define LINK_TTL_S 300

/* A new token (caller frees) for uri, acting as p, valid until expires. */
char *link_sign(
    const unsigned char *key, const char *uri, const struct principal *p, time_t expires);

/* Verifies token for uri at now and fills p with who it acts as. 0, or -1 with p all zero. */
int link_verify(const unsigned char *key, const char *token, const char *uri, time_t now,
    struct principal *p) KQE_MUSTCHECK;

#endif
