#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "kqe/log.h"

TAILQ_HEAD(request_list, request);

struct mailbox {
	pthread_mutex_t lock;
	struct request_list items;
	struct event *ev;
	void (*deliver)(struct request *r);
};

struct pool_thread {
	struct pool *pool;
	pthread_t id;
	struct db *db;
	struct redis *redis;
	struct request *running; /* NULL when idle */
};

struct pool {
	const struct config *cfg;
	void (*run)(struct request *r);
	struct breaker *db_breaker, *redis_breaker;
	pthread_mutex_t lock;
	pthread_cond_t work; /* a request was queued or a thread freed up */
	pthread_cond_t idle; /* the pool may have become empty (drain) */
	pthread_cond_t reap; /* the head of the queue changed (the reaper) */
	struct request_list queue;
	long queued, busy, heavy_busy;
	long per_client, heavy_max; /* the fairness caps */
	bool stopping;
	pthread_t reaper;
	struct pool_thread *threads;
	long nthreads;
	_Atomic unsigned long rejected, expired;
};

/* ---- mailboxes ---- */

static void
mailbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mailbox *m = arg;
	struct request_list items = TAILQ_HEAD_INITIALIZER(items);
	(void)fd;
	(void)what;
	pthread_mutex_lock(&m->lock);
	TAILQ_CONCAT(&items, &m->items, next);
	pthread_mutex_unlock(&m->lock);
	struct request *r;
	while ((r = TAILQ_FIRST(&items)) != NULL) {
		TAILQ_REMOVE(&items, r, next);
		m->deliver(r);
	}
}

struct mailbox *
mailbox_new(struct event_base *base, void (*deliver)(struct request *r))
{
	struct mailbox *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	TAILQ_INIT(&m->items);
	m->deliver = deliver;
	m->ev = event_new(base, -1, 0, mailbox_cb, m);
	return m;
}

static void
mailbox_post(struct mailbox *m, struct request *r)
{
	pthread_mutex_lock(&m->lock);
	TAILQ_INSERT_TAIL(&m->items, r, next);
	pthread_mutex_unlock(&m->lock);
	event_active(m->ev, 0, 0); /* thread-safe: evthread_use_pthreads() ran first */
}

void
mailbox_free(struct mailbox *m, void (*discard)(struct request *r))
{
	if (m == NULL)
		return;
	struct request *r;
	while ((r = TAILQ_FIRST(&m->items)) != NULL) {
		TAILQ_REMOVE(&m->items, r, next);
		discard(r);
	}
	event_free(m->ev);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---- the pool ---- */

static bool
is_heavy(const struct request *r)
{
	return r->route != NULL && (r->route->flags & ROUTE_HEAVY);
}

/* The first queued request whose client and kind are under their caps. Under p->lock. */
static struct request *
next_eligible(struct pool *p)
{
	struct request *r;
	TAILQ_FOREACH(r, &p->queue, next)
	{
		if (is_heavy(r) && p->heavy_busy >= p->heavy_max)
			continue;
		long same = 0;
		for (long i = 0; i < p->nthreads; i++)
			same += p->threads[i].running != NULL &&
			        p->threads[i].running->client_key == r->client_key;
		if (same < p->per_client)
			return r;
	}
	return NULL;
}

static void *
pool_thread_main(void *arg)
{
	struct pool_thread *t = arg;
	struct pool *p = t->pool;
	/* Connect early so the first request does not pay for it; failure is retried later. */
	if (db_connect(t->db) != 0)
		log_warn(NULL, "database not reachable yet", NULL);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct request *r = next_eligible(p);
		if (r == NULL) {
			if (p->stopping)
				break;
			pthread_cond_wait(&p->work, &p->lock);
			continue;
		}
		bool head = r == TAILQ_FIRST(&p->queue);
		TAILQ_REMOVE(&p->queue, r, next);
		p->queued--;
		p->busy++;
		p->heavy_busy += is_heavy(r);
		t->running = r;
		if (head)
			pthread_cond_signal(&p->reap);
		if (p->busy < p->nthreads && next_eligible(p) != NULL)
			pthread_cond_signal(&p->work); /* for an idle thread */
		pthread_mutex_unlock(&p->lock);

		if (now_ns() >= r->deadline_ns) { /* its time ran out while it waited */
			r->expired = true;
			atomic_fetch_add(&p->expired, 1);
		} else {
			r->db = t->db;
			r->redis = t->redis;
			db_set_deadline(t->db, r->deadline_ns);
			p->run(r);
			db_set_deadline(t->db, 0);
			r->db = NULL;
			r->redis = NULL;
		}

		pthread_mutex_lock(&p->lock);
		t->running = NULL;
		p->busy--;
		p->heavy_busy -= is_heavy(r);
		mailbox_post(r->worker->mailbox, r);
		/*
		 * No broadcast: this thread takes the next eligible request itself at the top of
		 * the loop, and wakes one more thread there if another became eligible as well
		 * (waking every idle thread after each request cost more CPU than the request).
		 */
		if (p->busy == 0 && p->queued == 0)
			pthread_cond_broadcast(&p->idle); /* pool_drain */
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static struct timespec
timespec_at(uint64_t ns_from_now_ns, uint64_t now)
{
	/* pthread_cond_timedwait reads CLOCK_MONOTONIC (set in pool_new), as now_ns() does. */
	uint64_t at = ns_from_now_ns > now ? ns_from_now_ns : now;
	struct timespec ts = { .tv_sec = (time_t)(at / 1000000000u),
		.tv_nsec = (long)(at % 1000000000u) };
	return ts;
}

/*
 * Gives up queued requests at their deadline, so that a request never waits
 * past it even while every pool thread is stuck on a dependency. The queue
 * is in arrival order, so the head has the earliest deadline.
 */
static void *
reaper_main(void *arg)
{
	struct pool *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stopping || !TAILQ_EMPTY(&p->queue)) {
		struct request *r = TAILQ_FIRST(&p->queue);
		uint64_t now = now_ns();
		if (r != NULL && (r->deadline_ns <= now || p->stopping)) {
			TAILQ_REMOVE(&p->queue, r, next);
			p->queued--;
			r->expired = true;
			atomic_fetch_add(&p->expired, 1);
			mailbox_post(r->worker->mailbox, r);
			pthread_cond_broadcast(&p->idle);
			continue;
		}
		if (p->stopping)
			break;
		struct timespec ts =
		    timespec_at(r != NULL ? r->deadline_ns : now + 1000000000u, now);
		pthread_cond_timedwait(&p->reap, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *
pool_new(const struct config *cfg, void (*run)(struct request *r), struct breaker *db_breaker,
    struct breaker *redis_breaker)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	p->cfg = cfg;
	p->run = run;
	p->db_breaker = db_breaker;
	p->redis_breaker = redis_breaker;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->work, &ca);
	pthread_cond_init(&p->idle, &ca);
	pthread_cond_init(&p->reap, &ca);
	pthread_condattr_destroy(&ca);
	TAILQ_INIT(&p->queue);
	p->nthreads = cfg->db_pool;
	p->per_client = p->nthreads > 1 ? p->nthreads / 2 : 1;
	p->heavy_max = p->per_client;
	p->threads = xcalloc((size_t)p->nthreads, sizeof(*p->threads));
	for (long i = 0; i < p->nthreads; i++) {
		struct pool_thread *t = &p->threads[i];
		t->pool = p;
		t->db = db_new(cfg->database_url, cfg->statement_timeout_ms, "kqe-api");
		db_no_jit(t->db); /* the API runs short statements only */
		db_set_breaker(t->db, db_breaker);
		struct redis_settings rs = config_redis_settings(cfg);
		t->redis = redis_open(&rs);
		redis_set_breaker(t->redis, redis_breaker);
		pthread_create(&t->id, NULL, pool_thread_main, t);
	}
	pthread_create(&p->reaper, NULL, reaper_main, p);
	return p;
}

bool
pool_submit(struct pool *p, struct request *r)
{
	pthread_mutex_lock(&p->lock);
	bool taken = !p->stopping && p->queued < p->cfg->db_queue;
	if (taken) {
		bool was_empty = TAILQ_EMPTY(&p->queue);
		TAILQ_INSERT_TAIL(&p->queue, r, next);
		p->queued++;
		pthread_cond_signal(&p->work);
		if (was_empty)
			pthread_cond_signal(&p->reap);
	}
	pthread_mutex_unlock(&p->lock);
	if (!taken)
		atomic_fetch_add(&p->rejected, 1);
	return taken;
}

void
pool_stats(struct pool *p, struct pool_stats *out)
{
	pthread_mutex_lock(&p->lock);
	out->threads = p->nthreads;
	out->busy = p->busy;
	out->queued = p->queued;
	pthread_mutex_unlock(&p->lock);
	out->rejected = atomic_load(&p->rejected);
	out->expired = atomic_load(&p->expired);
	out->db_open = breaker_is_open(p->db_breaker);
	out->redis_open = breaker_is_open(p->redis_breaker);
	out->db_trips = atomic_load(&p->db_breaker->trips);
	out->redis_trips = atomic_load(&p->redis_breaker->trips);
}

void
pool_drain(struct pool *p, long timeout_ms)
{
	uint64_t until = now_ns() + (uint64_t)timeout_ms * 1000000u;
	pthread_mutex_lock(&p->lock);
	while ((p->queued > 0 || p->busy > 0) && now_ns() < until) {
		struct timespec ts = timespec_at(until, now_ns());
		pthread_cond_timedwait(&p->idle, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	pthread_cond_signal(&p->reap);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->reaper, NULL); /* it gives up what is still queued */
	for (long i = 0; i < p->nthreads; i++) {
		pthread_join(p->threads[i].id, NULL);
		db_free(p->threads[i].db);
		redis_free(p->threads[i].redis);
	}
	free(p->threads);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->reap);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
