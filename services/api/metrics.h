/*
 * metrics — process-wide request counters and latency histograms per route
 * and status, kept in atomics so workers never lock, rendered in the
 * Prometheus text format by GET /metrics.
 */
#ifndef KQE_API_METRICS_H
#define KQE_API_METRICS_H

#include <stdint.h>

#include <event2/buffer.h>

#include "server.h"

/* The route table the counters are kept for (labels: method and pattern); once, at start. */
void metrics_init(const struct route *routes, int count);

/* route_index -1 means "no route matched". */
void metrics_observe(int route_index, int status, uint64_t duration_ns);

/* Appends the exposition text to buf. */
void metrics_render(struct evbuffer *buf);

/*
 * The sampler: a thread with its own Redis connection (behind the shared
 * breaker) that reads the job stream's state every 5 seconds, so that
 * GET /metrics is answered on the event loop without waiting on Redis.
 */
struct breaker;
void metrics_sampler_start(const struct config *cfg, struct breaker *redis_breaker);
void metrics_sampler_stop(void);

/* Appends the last sample (Redis up, the job stream) to buf. */
void metrics_render_samples(struct evbuffer *buf);

#endif
