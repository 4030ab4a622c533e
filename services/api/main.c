/*
 * kqe-api — the REST/JSON service. main() reads the configuration, binds one
 * SO_REUSEPORT listener per worker thread (each thread runs its own
 * event_base + evhttp; evhttp is not thread-safe), starts the pool that runs
 * whatever needs PostgreSQL or Redis (pool.h) and the metrics sampler, then
 * waits for SIGTERM or SIGINT and drains: listeners close, new requests on
 * open connections get 503, the pool finishes what it holds (at most
 * KQE_REQUEST_TIMEOUT_MS), answers are flushed for KQE_SHUTDOWN_TIMEOUT_MS,
 * then the process exits. No request is ever cut off half-handled.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "jwt.h"
#include "kqe/crypto.h"
#include "kqe/log.h"
#include "links.h"
#include "metrics.h"
#include "conn.h"
#include "pool.h"
#include "router.h"
#include "server.h"
#include "token_cache.h"

static struct config cfg;
static SSL_CTX *tls; /* NULL: plain HTTP */
static struct jwks_source *jwks; /* NULL: no JWTs */
static struct pseudonymizer *pseudonymizer;
static struct keyring *keyring;
static unsigned char link_key[LINK_KEY_LEN]; /* signs download links */
static struct conn_shared *shared; /* connection counts of the process */
static struct pool *pool;
/* Shared by every connection to the dependency: one that found it gone makes the others fail fast.
 */
static struct breaker db_breaker, redis_breaker;

/* The keys for case data are required: kqe-api does not start without them. */
static int
keys_init(void)
{
	char err[256];
	if (strcmp(cfg.pseudonym_key, "-") == 0 || strcmp(cfg.data_keys, "-") == 0) {
		fprintf(stderr, "kqe-api: %s must be set\n",
		    strcmp(cfg.pseudonym_key, "-") == 0 ? "KQE_PSEUDONYM_KEY" : "KQE_DATA_KEYS");
		return -1;
	}
	pseudonymizer = pseudonymizer_new(cfg.pseudonym_key, err, sizeof(err));
	if (pseudonymizer == NULL) {
		fprintf(stderr, "kqe-api: KQE_PSEUDONYM_KEY: %s\n", err);
		return -1;
	}
	keyring = keyring_new(cfg.data_keys, err, sizeof(err));
	if (keyring == NULL) {
		fprintf(stderr, "kqe-api: KQE_DATA_KEYS: %s\n", err);
		return -1;
	}
	pseudonymizer_derive(pseudonymizer, "download-links", link_key);
	return 0;
}

/*
 * In-process HTTPS (usually TLS ends at the ingress). One SSL_CTX for all
 * workers; each connection gets its own SSL. Returns -1 with a message if
 * the certificate or key cannot be used.
 */
static int
tls_init(void)
{
	int have_cert = strcmp(cfg.tls_cert, "-") != 0, have_key = strcmp(cfg.tls_key, "-") != 0;
	if (!have_cert && !have_key)
		return 0;
	if (have_cert != have_key) {
		fprintf(stderr, "kqe-api: KQE_TLS_CERT and KQE_TLS_KEY must be set together\n");
		return -1;
	}
	tls = SSL_CTX_new(TLS_server_method());
	if (tls == NULL || SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION) != 1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(tls, cfg.tls_cert) != 1) {
		fprintf(stderr, "kqe-api: KQE_TLS_CERT: cannot use \"%s\"\n", cfg.tls_cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(tls, cfg.tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(tls) != 1) {
		fprintf(stderr, "kqe-api: KQE_TLS_KEY: cannot use \"%s\" with the certificate\n",
		    cfg.tls_key);
		goto fail;
	}
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(tls);
	tls = NULL;
	return -1;
}

/* The identity provider's keys (file or URL); issuer and audience are then required. */
static int
jwt_init(void)
{
	char err[512];
	jwks = jwks_source_new(&cfg, err, sizeof(err));
	if (jwks == NULL && err[0] != '\0') {
		fprintf(stderr, "kqe-api: %s\n", err);
		return -1;
	}
	return 0;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: kqe-api [--help] [--version] [--permissions]\n\n"
	             "Serves the kqe REST API (see proto/openapi.yaml).\n\n");
	config_print_help(out, CONFIG_API);
}

static int
worker_init(struct worker *w, int index, const struct sockaddr *sa, int salen)
{
	w->index = index;
	w->cfg = &cfg;
	w->base = event_base_new();
	w->http = evhttp_new(w->base);
	if (w->base == NULL || w->http == NULL)
		return -1;
	struct evconnlistener *l = evconnlistener_new_bind(w->base, NULL, NULL,
	    LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE |
	        LEV_OPT_CLOSE_ON_EXEC,
	    1024, sa, salen);
	if (l == NULL)
		return -1;
	w->bound = evhttp_bind_listener(w->http, l);
	if (w->bound == NULL)
		return -1;
	/* Every connection passes the guard: deadlines, caps, the header block (conn.h). */
	w->guard = conn_guard_new(w->base, shared, &cfg, tls);
	conn_guard_listen(w->guard, l);
	evhttp_set_bevcb(w->http, conn_guard_bevcb, w->guard);

	/*
	 * Our own limits are checked in the router and in request_json() so the
	 * client gets a problem+json 413/431. libevent's limits are a hard ceiling
	 * above them (it would answer with an HTML page), bounding memory for
	 * clients that send far more.
	 */
	long body_ceiling = cfg.max_body_bytes * 2 > cfg.material_max_bytes
	                        ? cfg.max_body_bytes * 2
	                        : cfg.material_max_bytes + 1;
	evhttp_set_max_body_size(w->http, (ev_ssize_t)body_ceiling);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg.max_header_bytes * 4);
	struct timeval tv = { cfg.http_timeout_ms / 1000, (cfg.http_timeout_ms % 1000) * 1000 };
	evhttp_set_timeout_tv(w->http, &tv);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
	evhttp_set_default_content_type(w->http, "application/json; charset=utf-8");
	evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_gencb(w->http, router_dispatch_cb, w);

	w->jwks = jwks;
	w->pseudonymizer = pseudonymizer;
	w->keyring = keyring;
	w->link_key = link_key;
	w->mailbox = mailbox_new(w->base, router_finish);
	return 0;
}

static void
worker_free(struct worker *w)
{
	mailbox_free(w->mailbox, router_discard);
	if (w->http != NULL)
		evhttp_free(w->http); /* frees the connections first: their guard is still there */
	conn_guard_free(w->guard);
	if (w->base != NULL)
		event_base_free(w->base);
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

/* Runs on the worker's own thread (scheduled with event_base_once). */
static void
worker_stop_accepting_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	w->draining = true;
	if (w->bound != NULL)
		evhttp_del_accept_socket(w->http, w->bound);
	w->bound = NULL;
}

/* The pool has answered what it held: flush the answers, then stop. */
static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval flush = { cfg.shutdown_timeout_ms / 1000,
		(cfg.shutdown_timeout_ms % 1000) * 1000 };
	(void)fd;
	(void)what;
	event_base_loopexit(w->base, &flush);
}

static int
listen_address(struct sockaddr_storage *ss, int *len, long port)
{
	char text[300];
	/* The address alone: evutil_parse_sockaddr_port() refuses an explicit port 0. */
	if (strchr(cfg.http_addr, ':') != NULL)
		snprintf(text, sizeof(text), "[%s]", cfg.http_addr);
	else
		snprintf(text, sizeof(text), "%s", cfg.http_addr);
	*len = (int)sizeof(*ss);
	if (evutil_parse_sockaddr_port(text, (struct sockaddr *)ss, len) != 0)
		return -1;
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	return 0;
}

static void
raise_fd_limit(void)
{
	/* accept() hitting EMFILE makes the listener spin (libevent #363). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Binds every worker's listener (port 0: the kernel picks one, the others
 * share it), runs the workers until SIGTERM or SIGINT, then drains them.
 * Returns the exit status.
 */
static int
serve(struct worker *workers, int n, struct sockaddr_storage *ss, int salen, sigset_t *stop)
{
	for (int i = 0; i < n; i++) {
		if (worker_init(&workers[i], i, (struct sockaddr *)ss, salen) != 0) {
			log_write(LOG_FATAL, NULL, "cannot listen",
			    json_pack("{s:s,s:i,s:s}", "addr", cfg.http_addr, "port",
			        (int)cfg.http_port, "error", strerror(errno)));
			return 1;
		}
		if (i == 0) {
			evutil_socket_t fd = evhttp_bound_socket_get_fd(workers[0].bound);
			socklen_t len = sizeof(*ss);
			getsockname(fd, (struct sockaddr *)ss, &len);
			salen = (int)len;
		}
	}
	int port = ntohs(ss->ss_family == AF_INET6 ? ((struct sockaddr_in6 *)ss)->sin6_port
	                                           : ((struct sockaddr_in *)ss)->sin_port);
	log_info(NULL, "listening",
	    json_pack("{s:s,s:i,s:i,s:s,s:b}", "addr", cfg.http_addr, "port", port, "threads", n,
	        "version", KQE_VERSION, "tls", tls != NULL));
	/* Listening first, then connecting: the pool's threads connect as they start. */
	pool = pool_new(&cfg, router_run, &db_breaker, &redis_breaker);
	metrics_sampler_start(&cfg, &redis_breaker);
	token_cache_start(&cfg);
	pthread_t *threads = xcalloc((size_t)n, sizeof(*threads));
	for (int i = 0; i < n; i++) {
		workers[i].pool = pool;
		pthread_create(&threads[i], NULL, worker_run, &workers[i]);
	}
	int sig = 0;
	sigwait(stop, &sig);
	log_info(NULL, "shutting down",
	    json_pack("{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
	for (int i = 0; i < n; i++)
		event_base_once(
		    workers[i].base, -1, EV_TIMEOUT, worker_stop_accepting_cb, &workers[i], NULL);
	/* Requests in the pool end by their deadline at the latest; their answers go out. */
	pool_drain(pool, cfg.request_timeout_ms);
	for (int i = 0; i < n; i++)
		event_base_once(workers[i].base, -1, EV_TIMEOUT, worker_stop_cb, &workers[i], NULL);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	log_info(NULL, "stopped", NULL);
	return 0;
}

int
main(int argc, char **argv)
{
	struct config_error err;
	struct sockaddr_storage ss;
	int salen;

	/*
	 * glibc gives each thread that allocates its own arena (up to 8 per core) and keeps
	 * what is freed there: with 16 pool threads kqe-api peaked at 90 MB in bench/run, with
	 * two arenas at 33 MB and the same throughput (docs/performance.md).
	 */
	mallopt(M_ARENA_MAX, 2);

	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("kqe-api %s\n", KQE_VERSION);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--permissions") == 0) {
		router_print_permissions(stdout);
		return 0;
	}
	if (argc > 1) {
		int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
		usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	if (config_load(&cfg, CONFIG_API, &err) != 0) {
		fprintf(stderr, "kqe-api: %s\n", err.message);
		return 2;
	}
	log_threshold = cfg.log_level;
	if (listen_address(&ss, &salen, cfg.http_port) != 0) {
		fprintf(
		    stderr, "kqe-api: KQE_HTTP_ADDR: \"%s\" is not an IP address\n", cfg.http_addr);
		return 2;
	}

	/* Before any thread: not every libcurl build has a thread-safe global init. */
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		fprintf(stderr, "kqe-api: cannot initialise libcurl\n");
		return 1;
	}
	if (keys_init() != 0 || tls_init() != 0 || jwt_init() != 0) {
		curl_global_cleanup();
		return 2;
	}
	metrics_init(routes, routes_count);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	shared = conn_shared_new(&cfg);
	evthread_use_pthreads();
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL); /* inherited by the workers */

	/* A cooldown of a second: a dependency that is back is used again within it. */
	breaker_init(&db_breaker, 1000);
	breaker_init(&redis_breaker, 2000);
	int n = (int)cfg.api_threads;
	struct worker *workers = xcalloc((size_t)n, sizeof(*workers));
	int rc = serve(workers, n, &ss, salen, &stop);
	metrics_sampler_stop();
	token_cache_stop();
	pool_free(pool); /* what it still holds goes to the mailboxes, which discard it */
	for (int i = 0; i < n; i++)
		worker_free(&workers[i]);
	free(workers);
	config_free(&cfg);
	conn_shared_free(shared);
	SSL_CTX_free(tls);
	jwks_source_free(jwks);
	pseudonymizer_free(pseudonymizer);
	keyring_free(keyring);
	curl_global_cleanup(); /* after jwks_source_free joined the fetch thread */
	libevent_global_shutdown();
	return rc;
}
