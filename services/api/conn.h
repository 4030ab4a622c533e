/*
 * conn — the guard in front of evhttp for every client connection.
 *
 * libevent 2.1's evhttp has one timeout that restarts with every byte, no cap
 * on connections, and answers an oversized header block with an HTML page.
 * So the guard makes each connection's bufferevent itself (plain or TLS,
 * through evhttp_set_bevcb()), keeps a reference to it, and watches its input
 * buffer with an evbuffer callback, which sees every byte before evhttp reads
 * it. (A filter bufferevent would be the obvious wrapper, but libevent 2.1's
 * filter never writes data added while its EV_WRITE is off, which evhttp
 * does with every answer.) The guard:
 *
 *  - gives every request a deadline for its headers and body together
 *    (KQE_HTTP_REQUEST_READ_MS from its first byte, however slowly it
 *    trickles in); a sweep shuts down connections past it;
 *  - counts connections per process and per client address; a connection
 *    beyond KQE_MAX_CONNECTIONS or KQE_MAX_CONNECTIONS_PER_CLIENT gets a
 *    one-second deadline and, if it completes a request, a 503;
 *  - scans each request's header block (head_scan, a pure function) for its
 *    size — beyond KQE_MAX_HEADER_BYTES it answers problem+json 431 itself —
 *    and for framing a proxy might read differently, answered 400 the same
 *    way; in both cases evhttp never sees the request.
 *
 * Pipelined requests (sent before the previous answer) are passed on but
 * scanned from where the previous answer left off, so their limits are only
 * evhttp's own ceilings.
 *
 * Threading: a guard belongs to one worker's event loop; the per-address
 * counts are shared by all workers (struct conn_shared, behind a mutex).
 */
#ifndef KQE_API_CONN_H
#define KQE_API_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "kqe/config.h"

/* ---- the header block scanner (pure, fuzzed) ---- */

enum head_result {
	HEAD_MORE, /* the header block goes on */
	HEAD_DONE, /* the block ended (an empty line); *used bytes of this chunk belong to it */
	HEAD_TOO_LARGE, /* it is longer than the limit */
	HEAD_BAD, /* its framing cannot be trusted: s->problem says why */
};

#define HEAD_LINE_KEPT 256 /* of each header line, enough for any name and framing value */

/*
 * Reads a request's header block as it streams in, without copying it: its
 * size, the request line's HTTP version, and whether its framing can be
 * trusted (RFC 9112 3.2, 5.2, 6.1, 6.3) — a header name that is not a token
 * ("Transfer-Encoding :"), a folded line, two Content-Length values that
 * differ, a Transfer-Encoding other than exactly "chunked" or together with
 * Content-Length, two Authorization headers, HTTP/1.1 without Host. A proxy in
 * front might read such a request differently (request smuggling); evhttp
 * would answer some of them with an HTML page and read others wrongly.
 */
struct head_scan {
	size_t bytes; /* of the block so far */
	size_t line; /* length of the current line, CR excluded */
	bool first_line; /* still in the request line */
	bool seen_line; /* a non-empty line has ended */
	char kept[HEAD_LINE_KEPT + 1]; /* the start of the current line */
	char tail[9]; /* the request line's last 8 bytes, where its version is */
	int minor; /* the x of HTTP/1.x in the request line, -1 if unknown */
	char length[32]; /* the first Content-Length */
	int authorizations;
	bool chunked, host, done;
	const char *problem; /* why HEAD_BAD, a static string */
};

void head_scan_reset(struct head_scan *s);

/* Feeds n bytes of a request; see enum head_result. A finished scan keeps its result. */
enum head_result head_scan_feed(
    struct head_scan *s, const char *p, size_t n, size_t limit, size_t *used);

/* ---- connections ---- */

struct conn;
struct conn_shared;
struct conn_guard;

/* The process-wide counts; NULL never (allocation failure aborts). */
struct conn_shared *conn_shared_new(const struct config *cfg);
void conn_shared_free(struct conn_shared *s);

/* Connections open in the process (for /metrics). */
long conn_shared_open(const struct conn_shared *s);
long conn_guard_open(const struct conn_guard *g);

/* One worker's guard; tls NULL for plain HTTP. Starts the sweep on base. */
struct conn_guard *conn_guard_new(
    struct event_base *base, struct conn_shared *shared, const struct config *cfg, SSL_CTX *tls);
void conn_guard_free(struct conn_guard *g);

/*
 * Watches the worker's listener: on an accept() failure (descriptors used
 * up) it drops one waiting connection, pauses accepting (50 ms doubling to
 * 1 s) and logs at most once per 10 s, instead of spinning.
 */
struct evconnlistener;
void conn_guard_listen(struct conn_guard *g, struct evconnlistener *l);

/* The evhttp_set_bevcb() callback; arg is the guard. */
struct bufferevent *conn_guard_bevcb(struct event_base *base, void *arg);

/* The connection a request arrived on, or NULL. */
struct conn *conn_of(struct conn_guard *g, struct evhttp_request *req);

/*
 * The request req is read whole and in the pipeline: its deadline no longer runs. The
 * connection leaves the counts of open connections as soon as evhttp closes it.
 */
void conn_request_read(struct conn *c, struct evhttp_request *req);

/* Its answer is sent: the next request's deadline starts with its first byte. */
void conn_request_answered(struct conn *c);

/* True if the connection is beyond a cap: answer 503 and close. */
bool conn_over_cap(const struct conn *c);

/* The x of HTTP/1.x of the request being read, or -1 if unknown. */
int conn_http_minor(const struct conn *c);

#endif
