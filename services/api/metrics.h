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

#endif
