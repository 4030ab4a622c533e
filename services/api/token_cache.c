#include "token_cache.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "kqe/log.h"
#include "kqe/util.h"

/* Slots per pool thread, chosen by the key's hash; a newer key takes an older one's slot. */
#define SLOTS 128
/* How often the listener looks up from its socket to see whether it should stop. */
#define POLL_MS 250
/* Between attempts to connect when PostgreSQL cannot be reached. */
#define RETRY_S 1

struct entry {
	unsigned char hash[32];
	uint64_t generation; /* 0: empty */
	int64_t until; /* Unix seconds */
	struct principal principal;
};

static _Thread_local struct entry cache[SLOTS];

static struct {
	_Atomic uint64_t generation;
	_Atomic bool listening;
	_Atomic bool stopping;
	_Atomic unsigned long invalidations, hits;
	pthread_t thread;
	bool started;
	char *url;
} listener = { .generation = 1 };

uint64_t
token_cache_generation(void)
{
	return atomic_load(&listener.generation);
}

static struct entry *
slot(const unsigned char hash[32])
{
	unsigned v;
	memcpy(&v, hash, sizeof(v));
	return &cache[v % SLOTS];
}

bool
token_cache_get(const unsigned char hash[32], struct principal *out)
{
	if (!atomic_load(&listener.listening))
		return false;
	struct entry *e = slot(hash);
	if (e->generation != atomic_load(&listener.generation) || time(NULL) >= e->until ||
	    memcmp(e->hash, hash, sizeof(e->hash)) != 0)
		return false;
	*out = e->principal;
	atomic_fetch_add_explicit(&listener.hits, 1, memory_order_relaxed);
	return true;
}

void
token_cache_put(const unsigned char hash[32], const struct principal *p, uint64_t generation,
    int64_t expires_at)
{
	if (!atomic_load(&listener.listening))
		return;
	struct entry *e = slot(hash);
	int64_t until = (int64_t)time(NULL) + TOKEN_CACHE_TTL_S;
	memcpy(e->hash, hash, sizeof(e->hash));
	e->generation = generation;
	e->until = expires_at != 0 && expires_at < until ? expires_at : until;
	e->principal = *p;
}

/* Every key remembered anywhere in the process is stale from now on. */
static void
invalidate(void)
{
	atomic_fetch_add(&listener.generation, 1);
	atomic_fetch_add(&listener.invalidations, 1);
}

static PGconn *
listen_connect(void)
{
	const char *keys[] = { "dbname", "application_name", "connect_timeout", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count", NULL };
	const char *vals[] = { listener.url, "kqe-api tokens", "3", "1", "10", "5", "3", NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	PGresult *res = PQexec(c, "LISTEN kqe_api_tokens");
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Until the connection breaks or the process stops: each notification invalidates. */
static void
listen_until_lost(PGconn *c)
{
	while (!atomic_load(&listener.stopping)) {
		struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
		int rc = poll(&p, 1, POLL_MS);
		if (rc < 0 || (rc > 0 && PQconsumeInput(c) == 0))
			return;
		bool changed = false;
		PGnotify *n;
		while ((n = PQnotifies(c)) != NULL) {
			changed = true;
			PQfreemem(n);
		}
		if (changed)
			invalidate();
		if (PQstatus(c) != CONNECTION_OK)
			return;
	}
}

static void *
listener_main(void *arg)
{
	(void)arg;
	bool warned = false;
	while (!atomic_load(&listener.stopping)) {
		PGconn *c = listen_connect();
		if (c == NULL) {
			if (!warned)
				log_warn(
				    NULL, "token cache off: cannot listen for key changes", NULL);
			warned = true;
			for (int i = 0;
			     i < RETRY_S * 1000 / POLL_MS && !atomic_load(&listener.stopping); i++)
				poll(NULL, 0, POLL_MS);
			continue;
		}
		/* A change made before LISTEN took effect was not notified: forget everything. */
		invalidate();
		atomic_store(&listener.listening, true);
		if (warned)
			log_info(NULL, "token cache on again", NULL);
		warned = false;
		listen_until_lost(c);
		atomic_store(&listener.listening, false);
		invalidate();
		PQfinish(c);
	}
	return NULL;
}

void
token_cache_start(const struct config *cfg)
{
	listener.url = xstrdup(cfg->database_url);
	atomic_store(&listener.stopping, false);
	if (pthread_create(&listener.thread, NULL, listener_main, NULL) != 0) {
		log_warn(NULL, "token cache off: no listener thread", NULL);
		return;
	}
	listener.started = true;
}

void
token_cache_stop(void)
{
	if (listener.started) {
		atomic_store(&listener.stopping, true);
		pthread_join(listener.thread, NULL);
		listener.started = false;
	}
	atomic_store(&listener.listening, false);
	free(listener.url);
	listener.url = NULL;
}

void
token_cache_stats(unsigned long *invalidations, unsigned long *hits)
{
	*invalidations = atomic_load(&listener.invalidations);
	*hits = atomic_load(&listener.hits);
}
