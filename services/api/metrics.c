#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <event2/http.h>

#include "kqe/jobs_stream.h"
#include "kqe/redis.h"

static const struct route *routes;
static int routes_count;

void
metrics_init(const struct route *table, int count)
{
	routes = table;
	routes_count = count;
}

#define MAX_ROUTES 64
static const int tracked_status[] = { 200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409, 412,
	413, 415, 422, 428, 429, 431, 500, 503 };
#define NSTATUS (sizeof(tracked_status) / sizeof(tracked_status[0]) + 1) /* + "other" */
static const double bucket_seconds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5 };
#define NBUCKETS (sizeof(bucket_seconds) / sizeof(bucket_seconds[0]))

static _Atomic unsigned long requests[MAX_ROUTES + 1][NSTATUS];
static _Atomic unsigned long buckets[MAX_ROUTES + 1][NBUCKETS];
static _Atomic unsigned long count[MAX_ROUTES + 1];
static _Atomic unsigned long sum_us[MAX_ROUTES + 1];

static size_t
slot(int route_index)
{
	return route_index < 0 || route_index >= MAX_ROUTES ? MAX_ROUTES : (size_t)route_index;
}

void
metrics_observe(int route_index, int status, uint64_t duration_ns)
{
	size_t r = slot(route_index), s;
	for (s = 0; s < NSTATUS - 1; s++)
		if (tracked_status[s] == status)
			break;
	atomic_fetch_add_explicit(&requests[r][s], 1, memory_order_relaxed);
	double seconds = (double)duration_ns / 1e9;
	for (size_t b = 0; b < NBUCKETS; b++)
		if (seconds <= bucket_seconds[b])
			atomic_fetch_add_explicit(&buckets[r][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&count[r], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sum_us[r], duration_ns / 1000, memory_order_relaxed);
}

static const char *
route_label(size_t r)
{
	return r < (size_t)routes_count ? routes[r].pattern : "unmatched";
}

static const char *
method_label(size_t r)
{
	if (r >= (size_t)routes_count)
		return "any";
	switch (routes[r].method) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "other";
	}
}

void
metrics_render(struct evbuffer *buf)
{
	evbuffer_add_printf(buf, "# HELP kqe_http_requests_total HTTP requests answered.\n"
	                         "# TYPE kqe_http_requests_total counter\n");
	for (size_t r = 0; r <= MAX_ROUTES; r++) {
		if (r < MAX_ROUTES && r >= (size_t)routes_count)
			continue;
		for (size_t s = 0; s < NSTATUS; s++) {
			unsigned long n = atomic_load(&requests[r][s]);
			if (n == 0)
				continue;
			if (s < NSTATUS - 1)
				evbuffer_add_printf(buf,
				    "kqe_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %lu\n",
				    method_label(r), route_label(r), tracked_status[s], n);
			else
				evbuffer_add_printf(buf,
				    "kqe_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} %lu\n",
				    method_label(r), route_label(r), n);
		}
	}
	evbuffer_add_printf(buf, "# HELP kqe_http_request_duration_seconds Time to answer.\n"
	                         "# TYPE kqe_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r <= MAX_ROUTES; r++) {
		if (r < MAX_ROUTES && r >= (size_t)routes_count)
			continue;
		unsigned long c = atomic_load(&count[r]);
		if (c == 0)
			continue;
		for (size_t b = 0; b < NBUCKETS; b++)
			evbuffer_add_printf(buf,
			    "kqe_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %lu\n",
			    method_label(r), route_label(r), bucket_seconds[b],
			    atomic_load(&buckets[r][b]));
		evbuffer_add_printf(buf,
		    "kqe_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %lu\n"
		    "kqe_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
		    "kqe_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lu\n",
		    method_label(r), route_label(r), c, method_label(r), route_label(r),
		    (double)atomic_load(&sum_us[r]) / 1e6, method_label(r), route_label(r), c);
	}
}

/* ---- the sampler ---- */

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool started, stopping;
	struct redis *redis;
	_Atomic int redis_up; /* -1: not sampled yet */
	/* -1: unknown (Redis did not answer): a scrape then leaves them out, never says 0 */
	_Atomic long long length, backlog, pending, dead;
} sampler = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.redis_up = -1,
	.length = -1,
	.backlog = -1,
	.pending = -1,
	.dead = -1 };

static void
sample(void)
{
	struct jobs_stream_state s;
	bool up = jobs_stream_state(sampler.redis, &s) == 0;
	atomic_store(&sampler.redis_up, up);
	atomic_store(&sampler.length, up ? s.length : -1);
	atomic_store(&sampler.backlog, up ? s.backlog : -1);
	atomic_store(&sampler.pending, up ? s.pending : -1);
	atomic_store(&sampler.dead, up ? s.dead : -1);
}

static void *
sampler_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&sampler.lock);
	while (!sampler.stopping) {
		pthread_mutex_unlock(&sampler.lock);
		sample();
		pthread_mutex_lock(&sampler.lock);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 5;
		while (!sampler.stopping &&
		       pthread_cond_timedwait(&sampler.wake, &sampler.lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&sampler.lock);
	return NULL;
}

void
metrics_sampler_start(const struct config *cfg, struct breaker *redis_breaker)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sampler.wake, &ca);
	pthread_condattr_destroy(&ca);
	struct redis_settings rs = config_redis_settings(cfg);
	sampler.redis = redis_open(&rs);
	redis_set_breaker(sampler.redis, redis_breaker);
	sampler.started = pthread_create(&sampler.thread, NULL, sampler_main, NULL) == 0;
}

void
metrics_sampler_stop(void)
{
	if (!sampler.started)
		return;
	pthread_mutex_lock(&sampler.lock);
	sampler.stopping = true;
	pthread_cond_signal(&sampler.wake);
	pthread_mutex_unlock(&sampler.lock);
	pthread_join(sampler.thread, NULL);
	pthread_cond_destroy(&sampler.wake);
	redis_free(sampler.redis);
	sampler.started = false;
}

void
metrics_render_samples(struct evbuffer *buf)
{
	static const struct {
		const char *name, *help;
	} gauges[] = {
		{ "kqe_jobs_backlog",
		    "Jobs in the stream not done yet: undelivered plus delivered and unacknowledged "
		    "(alert when it stays high)." },
		{ "kqe_jobs_pending", "Jobs delivered to an aggregator and not acknowledged yet." },
		{ "kqe_jobs_dead", "Entries in the dead-letter stream kqe:jobs:dead." },
		{ "kqe_jobs_stream_length",
		    "Entries the job stream holds (XLEN): the backlog plus done entries not trimmed "
		    "yet." },
	};
	long long values[] = { atomic_load(&sampler.backlog), atomic_load(&sampler.pending),
		atomic_load(&sampler.dead), atomic_load(&sampler.length) };
	int up = atomic_load(&sampler.redis_up);
	if (up >= 0)
		evbuffer_add_printf(buf,
		    "# HELP kqe_redis_up Whether Redis answered the last sample (every 5 s).\n"
		    "# TYPE kqe_redis_up gauge\nkqe_redis_up %d\n",
		    up);
	for (size_t i = 0; i < ARRAY_LEN(gauges); i++)
		if (values[i] >= 0)
			evbuffer_add_printf(buf, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n",
			    gauges[i].name, gauges[i].help, gauges[i].name, gauges[i].name,
			    values[i]);
}
