#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "kqe/log.h"
#include "kqe/util.h"

#define SWEEP_MS 250
#define OVER_CAP_DEADLINE_MS 1000
#define DISCARD_MS 2000 /* after a raw answer: read and drop input this long, then close */

/* ---- the header block scanner ---- */

void
head_scan_reset(struct head_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->first_line = true;
	s->minor = -1;
}

static bool
token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * The request line ended: "… HTTP/1.1" tells the version. Read off the
 * line's end, not off kept: a request line longer than kept (a long query)
 * is still HTTP/1.1 and still needs its Host.
 */
static void
request_line(struct head_scan *s)
{
	const char *tail = s->line >= 8 ? s->tail : "";
	s->first_line = false;
	if (strncmp(tail, "HTTP/1.", 7) == 0 && (tail[7] == '0' || tail[7] == '1'))
		s->minor = tail[7] - '0';
}

/* One header line ended: its name must be a token; note what frames the body. */
static const char *
header_line(struct head_scan *s)
{
	const char *line = s->kept, *colon = strchr(line, ':');
	if (line[0] == ' ' || line[0] == '\t')
		return "A header line is folded (obs-fold).";
	if (colon == NULL || colon == line)
		return "A header line is malformed."; /* no name, or one longer than we keep */
	for (const char *p = line; p < colon; p++)
		if (!token_char(*p))
			return "A header name is malformed.";
	size_t name = (size_t)(colon - line);
	const char *value = colon + 1 + strspn(colon + 1, " \t");
	char v[HEAD_LINE_KEPT + 1];
	snprintf(v, sizeof(v), "%s", value);
	for (size_t n = strlen(v); n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t');)
		v[--n] = '\0';
	if (name == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
		size_t len = strlen(v);
		if (len == 0 || len >= sizeof(s->length) || strspn(v, "0123456789") != len)
			return "A Content-Length is malformed.";
		if (s->length[0] != '\0' && strcmp(s->length, v) != 0)
			return "The request has two different Content-Length headers.";
		memcpy(s->length, v, len + 1);
	} else if (name == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
		if (s->chunked || strcasecmp(v, "chunked") != 0)
			return "Only Transfer-Encoding: chunked is understood.";
		s->chunked = true;
	} else if (name == 13 && strncasecmp(line, "Authorization", 13) == 0) {
		if (++s->authorizations > 1)
			return "The request has more than one Authorization header.";
	} else if (name == 4 && strncasecmp(line, "Host", 4) == 0) {
		s->host = true;
	}
	return NULL;
}

/* The empty line: the block is whole. */
static const char *
block_ended(const struct head_scan *s)
{
	if (s->length[0] != '\0' && s->chunked)
		return "A request may not have both Content-Length and Transfer-Encoding.";
	if (s->minor == 1 && !s->host)
		return "An HTTP/1.1 request needs a Host header.";
	return NULL;
}

enum head_result
head_scan_feed(struct head_scan *s, const char *p, size_t n, size_t limit, size_t *used)
{
	*used = 0;
	if (s->problem != NULL)
		return HEAD_BAD;
	if (s->done)
		return HEAD_DONE;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (++s->bytes > limit)
			return HEAD_TOO_LARGE;
		if (c == '\r')
			continue;
		if (c != '\n') {
			if (s->line < HEAD_LINE_KEPT)
				s->kept[s->line] = c;
			if (s->first_line) {
				memmove(s->tail, s->tail + 1, sizeof(s->tail) - 2);
				s->tail[sizeof(s->tail) - 2] = c;
			}
			s->line++;
			continue;
		}
		s->kept[s->line < HEAD_LINE_KEPT ? s->line : HEAD_LINE_KEPT] = '\0';
		*used = i + 1;
		if (s->line == 0 && s->seen_line) {
			s->done = true;
			s->problem = block_ended(s);
			return s->problem != NULL ? HEAD_BAD : HEAD_DONE;
		}
		if (s->line > 0 && s->first_line)
			request_line(s);
		else if (s->line > 0 && (s->problem = header_line(s)) != NULL)
			return HEAD_BAD;
		s->seen_line = s->seen_line || s->line > 0;
		s->line = 0;
	}
	return HEAD_MORE;
}

/* ---- the counts every worker shares ---- */

struct address_count {
	unsigned char key[17]; /* family + up to 16 address bytes */
	long n;
	struct address_count *next;
};

#define ADDRESS_BUCKETS 1024

/* Descriptors kept free beyond the connection cap: database, Redis, logs, the reserve. */
#define FD_RESERVE 256

struct conn_shared {
	pthread_mutex_t lock;
	long max_total, max_per_address;
	_Atomic long open;
	int reserve_fd; /* closed to accept-and-drop one connection when descriptors run out */
	struct address_count *buckets[ADDRESS_BUCKETS];
};

struct conn_shared *
conn_shared_new(const struct config *cfg)
{
	struct conn_shared *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->max_total = cfg->max_connections;
	s->max_per_address = cfg->max_connections_per_client;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur - FD_RESERVE < s->max_total) {
		s->max_total = (long)rl.rlim_cur > 2 * FD_RESERVE ? (long)rl.rlim_cur - FD_RESERVE
		                                                  : (long)rl.rlim_cur / 2;
		log_warn(NULL, "connection cap lowered to fit the descriptor limit",
		    json_pack("{s:I,s:I}", "max_connections", (json_int_t)s->max_total, "nofile",
		        (json_int_t)rl.rlim_cur));
	}
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return s;
}

void
conn_shared_free(struct conn_shared *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < ADDRESS_BUCKETS; i++)
		while (s->buckets[i] != NULL) {
			struct address_count *a = s->buckets[i];
			s->buckets[i] = a->next;
			free(a);
		}
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

long
conn_shared_open(const struct conn_shared *s)
{
	return atomic_load(&s->open);
}

static size_t
bucket_of(const unsigned char key[17])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % ADDRESS_BUCKETS;
}

/* Adds delta to the count of key; returns the new count. */
static long
address_add(struct conn_shared *s, const unsigned char key[17], long delta)
{
	pthread_mutex_lock(&s->lock);
	struct address_count **p = &s->buckets[bucket_of(key)];
	while (*p != NULL && memcmp((*p)->key, key, 17) != 0)
		p = &(*p)->next;
	if (*p == NULL) {
		*p = xcalloc(1, sizeof(**p));
		memcpy((*p)->key, key, 17);
	}
	long n = ((*p)->n += delta);
	if (n <= 0) {
		struct address_count *gone = *p;
		*p = gone->next;
		free(gone);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- one worker's connections ---- */

/*
 * A connection's bufferevent is the one evhttp uses; the guard holds a
 * reference to it, so it stays valid until the sweep sees that evhttp has
 * let go (evhttp clears its callbacks when it frees a connection) and
 * releases it. An evbuffer callback on its input sees every byte arriving.
 */
struct conn {
	struct conn_guard *guard;
	struct bufferevent *bev;
	struct evbuffer_cb_entry *watch;
	LIST_ENTRY(conn) link;
	struct head_scan scan;
	uint64_t started_ns; /* first byte of the request being read; 0: none yet */
	bool in_pipeline; /* read whole, not answered yet */
	bool over_cap;
	bool counted_address;
	bool uncounted; /* evhttp closed it: no longer in the counts, though not yet released */
	bool cut;
	unsigned char address[17];
	uint64_t discard_until_ns; /* answered on the socket itself: drop input, then close */
};

struct conn_guard {
	struct event_base *base;
	struct conn_shared *shared;
	const struct config *cfg;
	SSL_CTX *tls;
	struct event *sweep;
	/* accept() failures: the listener pauses, doubling from 50 ms to 1 s */
	struct evconnlistener *listener;
	struct event *resume;
	long pause_ms;
	uint64_t last_failure_ns, last_log_ns;
	long failures_unlogged;
	LIST_HEAD(, conn) conns;
	/* bufferevent → conn, open addressing; NULL empty, TOMBSTONE deleted */
	struct conn **slots;
	size_t nslots, used;
};

static struct conn tombstone;
#define TOMBSTONE (&tombstone)

static size_t
slot_of(const struct conn_guard *g, const void *bev)
{
	uintptr_t h = (uintptr_t)bev;
	h ^= h >> 17;
	h *= 0xed5ad4bbU;
	h ^= h >> 11;
	return (size_t)h & (g->nslots - 1);
}

static void map_put(struct conn_guard *g, struct conn *c);

static void
map_grow(struct conn_guard *g)
{
	struct conn **old = g->slots;
	size_t n = g->nslots;
	g->nslots = n ? n * 2 : 64;
	g->slots = xcalloc(g->nslots, sizeof(*g->slots));
	g->used = 0;
	for (size_t i = 0; i < n; i++)
		if (old[i] != NULL && old[i] != TOMBSTONE)
			map_put(g, old[i]);
	free(old);
}

static void
map_put(struct conn_guard *g, struct conn *c)
{
	if ((g->used + 1) * 2 > g->nslots)
		map_grow(g);
	size_t i = slot_of(g, c->bev);
	while (g->slots[i] != NULL && g->slots[i] != TOMBSTONE)
		i = (i + 1) & (g->nslots - 1);
	if (g->slots[i] == NULL)
		g->used++;
	g->slots[i] = c;
}

static size_t
map_find(const struct conn_guard *g, const void *bev)
{
	if (g->nslots == 0)
		return SIZE_MAX;
	for (size_t i = slot_of(g, bev);; i = (i + 1) & (g->nslots - 1)) {
		if (g->slots[i] == NULL)
			return SIZE_MAX;
		if (g->slots[i] != TOMBSTONE && g->slots[i]->bev == bev)
			return i;
	}
}

long
conn_guard_open(const struct conn_guard *g)
{
	return g != NULL ? conn_shared_open(g->shared) : 0;
}

/*
 * The connection leaves the counts of open connections (once): when evhttp closes it, not
 * when the sweep next comes by, or a client making many short connections one after the
 * other would be refused for connections long closed.
 */
static void
uncount(struct conn *c)
{
	if (c->uncounted)
		return;
	c->uncounted = true;
	atomic_fetch_sub(&c->guard->shared->open, 1);
	if (c->counted_address)
		address_add(c->guard->shared, c->address, -1);
}

static void
closed_cb(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	uncount(arg);
}

struct conn *
conn_of(struct conn_guard *g, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (g == NULL || evcon == NULL)
		return NULL;
	size_t i = map_find(g, evhttp_connection_get_bufferevent(evcon));
	return i == SIZE_MAX ? NULL : g->slots[i];
}

void
conn_request_read(struct conn *c, struct evhttp_request *req)
{
	if (c == NULL)
		return;
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), closed_cb, c);
	c->in_pipeline = true;
}

void
conn_request_answered(struct conn *c)
{
	if (c == NULL)
		return;
	c->in_pipeline = false;
	c->started_ns = 0;
	head_scan_reset(&c->scan);
}

bool
conn_over_cap(const struct conn *c)
{
	return c != NULL && c->over_cap;
}

int
conn_http_minor(const struct conn *c)
{
	return c != NULL ? c->scan.minor : -1;
}

/* evhttp has let go of the connection (or the worker stops): the guard lets go too. */
static void
conn_release(struct conn *c)
{
	struct conn_guard *g = c->guard;
	size_t i = map_find(g, c->bev);
	if (i != SIZE_MAX)
		g->slots[i] = TOMBSTONE;
	LIST_REMOVE(c, link);
	uncount(c);
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->watch);
	bufferevent_decref(c->bev); /* the last reference: closes the socket */
	free(c);
}

/* The client's address as a key (family + address bytes); -1 if unknown. */
static int
peer_key(evutil_socket_t fd, unsigned char key[17])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(key, 0, 17);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	key[0] = (unsigned char)ss.ss_family;
	if (ss.ss_family == AF_INET)
		memcpy(key + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	else if (ss.ss_family == AF_INET6)
		memcpy(key + 1, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	else
		return -1;
	return 0;
}

/* Shuts a connection down; evhttp sees the end of input and lets it go. */
static void
cut(struct conn *c, const char *why)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (c->cut)
		return;
	c->cut = true;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	log_debug(NULL, "connection closed by the guard", json_pack("{s:s}", "reason", why));
}

/*
 * A request evhttp must not see — a header block over the limit (431) or
 * with framing that cannot be trusted (400): answer problem+json on the
 * socket itself (evhttp would send an HTML page or misread it), hold the
 * bytes back, and drop what still comes for a while so the client reads the
 * answer rather than a reset. Over TLS the connection is just closed.
 */
static void
answer_raw(struct conn *c, int status, const char *title, const char *detail)
{
	unsigned char raw[12];
	char id[25], body[512], head[320], slug[64];
	size_t k = 0;
	for (const char *t = title; *t && k + 1 < sizeof(slug); t++)
		slug[k++] = *t == ' ' ? '-' : (char)(*t | 0x20);
	slug[k] = '\0';
	random_bytes(raw, sizeof(raw));
	hex_encode(raw, sizeof(raw), id);
	int nb = snprintf(body, sizeof(body),
	    "{\"type\":\"https://kqe.nrw/problems/%s\",\"title\":\"%s\",\"status\":%d,"
	    "\"detail\":\"%s\",\"request_id\":\"%s\"}",
	    slug, title, status, detail, id);
	int nh = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json; charset=utf-8\r\n"
	    "X-Request-Id: %s\r\nCache-Control: no-store\r\nConnection: close\r\n"
	    "Content-Length: %d\r\n\r\n",
	    status, title, id, nb);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	log_info(id, "request refused before evhttp",
	    json_pack("{s:i,s:s}", "status", status, "detail", detail));
	if (c->guard->tls != NULL || fd < 0) {
		cut(c, detail);
		return;
	}
	(void)!send(fd, head, (size_t)nh, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)!send(fd, body, (size_t)nb, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	c->discard_until_ns = now_ns() + (uint64_t)DISCARD_MS * 1000000;
}

/* Counts the connection against its address the first time bytes arrive. */
static void
count_address(struct conn *c)
{
	struct conn_shared *s = c->guard->shared;
	if (c->counted_address || peer_key(bufferevent_getfd(c->bev), c->address) != 0)
		return;
	c->counted_address = true;
	long n = address_add(s, c->address, 1);
	if (s->max_per_address > 0 && n > s->max_per_address)
		c->over_cap = true;
}

/* Every change of the input buffer: watch what arrives (evhttp reads it afterwards). */
static void
input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	if (info->n_added == 0)
		return;
	if (c->discard_until_ns != 0 || c->cut) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	count_address(c);
	if (c->started_ns == 0 && !c->in_pipeline)
		c->started_ns = now_ns();
	if (c->scan.done || c->in_pipeline)
		return;
	struct evbuffer_ptr at;
	struct evbuffer_iovec v[8];
	size_t from = evbuffer_get_length(in) - info->n_added;
	if (evbuffer_ptr_set(in, &at, from, EVBUFFER_PTR_SET) != 0)
		return;
	int nv = evbuffer_peek(in, (ev_ssize_t)info->n_added, &at, v, 8);
	for (int i = 0; i < nv && i < 8 && !c->scan.done; i++) {
		size_t used;
		enum head_result r = head_scan_feed(&c->scan, v[i].iov_base, v[i].iov_len,
		    (size_t)c->guard->cfg->max_header_bytes, &used);
		if (r == HEAD_TOO_LARGE || r == HEAD_BAD) {
			if (r == HEAD_TOO_LARGE)
				answer_raw(c, 431, "Request Header Fields Too Large",
				    "The request headers are too large.");
			else
				answer_raw(c, 400, "Bad Request", c->scan.problem);
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
	}
}

struct bufferevent *
conn_guard_bevcb(struct event_base *base, void *arg)
{
	struct conn_guard *g = arg;
	struct bufferevent *bev;
	if (g->tls != NULL) {
		SSL *ssl = SSL_new(g->tls);
		if (ssl == NULL)
			return NULL;
		/* fd -1: evhttp sets the socket later (libevent requires it this way). */
		bev = bufferevent_openssl_socket_new(
		    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL)
			SSL_free(ssl);
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL)
		return NULL;
	struct conn *c = xcalloc(1, sizeof(*c));
	c->guard = g;
	c->bev = bev;
	head_scan_reset(&c->scan);
	c->watch = evbuffer_add_cb(bufferevent_get_input(bev), input_cb, c);
	bufferevent_incref(bev);
	LIST_INSERT_HEAD(&g->conns, c, link);
	map_put(g, c);
	if (atomic_fetch_add(&g->shared->open, 1) + 1 > g->shared->max_total)
		c->over_cap = true;
	return bev;
}

/* True once evhttp has freed the connection (it clears the callbacks then). */
static bool
released(const struct conn *c)
{
	bufferevent_data_cb readcb, writecb;
	bufferevent_event_cb eventcb;
	bufferevent_getcb(c->bev, &readcb, &writecb, &eventcb, NULL);
	return readcb == NULL && writecb == NULL && eventcb == NULL;
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_guard *g = arg;
	uint64_t now = now_ns(), deadline = (uint64_t)g->cfg->request_read_ms * 1000000;
	(void)fd;
	(void)what;
	struct conn *c = LIST_FIRST(&g->conns);
	while (c != NULL) {
		struct conn *next = LIST_NEXT(c, link);
		uint64_t limit = c->over_cap ? (uint64_t)OVER_CAP_DEADLINE_MS * 1000000 : deadline;
		if (released(c))
			conn_release(c);
		else if (c->discard_until_ns != 0 && now > c->discard_until_ns)
			cut(c, "answered");
		else if (c->started_ns != 0 && !c->in_pipeline && now - c->started_ns > limit)
			cut(c, c->over_cap ? "over cap" : "request read deadline");
		c = next;
	}
}

struct conn_guard *
conn_guard_new(
    struct event_base *base, struct conn_shared *shared, const struct config *cfg, SSL_CTX *tls)
{
	struct conn_guard *g = xcalloc(1, sizeof(*g));
	g->base = base;
	g->shared = shared;
	g->cfg = cfg;
	g->tls = tls;
	LIST_INIT(&g->conns);
	g->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, g);
	struct timeval tv = { 0, SWEEP_MS * 1000 };
	event_add(g->sweep, &tv);
	return g;
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_guard *g = arg;
	(void)fd;
	(void)what;
	evconnlistener_enable(g->listener);
}

/*
 * accept() failed (EMFILE, ENFILE, ENOBUFS, …): left alone the listener would
 * be called again at once, forever (libevent #363). Drop one waiting
 * connection with the reserved descriptor, pause accepting, and log at most
 * once per 10 s with how many failures there were.
 */
/*
 * The guard of each listener. evhttp owns the listener's callback argument,
 * so the error callback finds its guard here; filled before the workers run,
 * read-only after.
 */
#define MAX_LISTENERS 64
static struct conn_guard *listening[MAX_LISTENERS];

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct conn_guard *g = NULL;
	(void)arg;
	for (size_t i = 0; i < MAX_LISTENERS && g == NULL; i++)
		if (listening[i] != NULL && listening[i]->listener == l)
			g = listening[i];
	if (g == NULL)
		return;
	int err = EVUTIL_SOCKET_ERROR();
	uint64_t now = now_ns();
	if (err == EMFILE || err == ENFILE) {
		pthread_mutex_lock(&g->shared->lock);
		if (g->shared->reserve_fd >= 0) {
			close(g->shared->reserve_fd);
			int fd = accept(evconnlistener_get_fd(l), NULL, NULL);
			if (fd >= 0)
				close(fd);
			g->shared->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		}
		pthread_mutex_unlock(&g->shared->lock);
	}
	g->pause_ms = now - g->last_failure_ns > 5000000000ULL ? 50
	              : g->pause_ms >= 500                     ? 1000
	                                                       : g->pause_ms * 2;
	g->last_failure_ns = now;
	g->failures_unlogged++;
	if (now - g->last_log_ns > 10000000000ULL) {
		log_error(NULL, "accept failed; pausing",
		    json_pack("{s:s,s:I,s:I}", "error", evutil_socket_error_to_string(err),
		        "failures", (json_int_t)g->failures_unlogged, "pause_ms",
		        (json_int_t)g->pause_ms));
		g->last_log_ns = now;
		g->failures_unlogged = 0;
	}
	evconnlistener_disable(l);
	struct timeval tv = { g->pause_ms / 1000, (g->pause_ms % 1000) * 1000 };
	event_add(g->resume, &tv);
}

void
conn_guard_listen(struct conn_guard *g, struct evconnlistener *l)
{
	g->listener = l;
	g->resume = evtimer_new(g->base, resume_cb, g);
	for (size_t i = 0; i < MAX_LISTENERS; i++)
		if (listening[i] == NULL) {
			listening[i] = g;
			break;
		}
	evconnlistener_set_error_cb(l, accept_error_cb);
}

void
conn_guard_free(struct conn_guard *g)
{
	if (g == NULL)
		return;
	if (g->sweep != NULL)
		event_free(g->sweep);
	if (g->resume != NULL)
		event_free(g->resume);
	for (size_t i = 0; i < MAX_LISTENERS; i++)
		if (listening[i] == g)
			listening[i] = NULL;
	while (!LIST_EMPTY(&g->conns))
		conn_release(LIST_FIRST(&g->conns));
	free(g->slots);
	free(g);
}
