/*
 * kqe-aggregator internals. consumer.c reads the job stream as one member of
 * the consumer group and dispatches entries; build_report.c computes a report
 * snapshot. Everything runs on one thread with blocking connections; several
 * aggregator processes share the work through the consumer group.
 */
#ifndef KQE_AGGREGATOR_H
#define KQE_AGGREGATOR_H

#include <signal.h>

#include "kqe/config.h"
#include "kqe/db.h"
#include "kqe/redis.h"

/* What became of one job delivery. */
enum job_outcome {
	JOB_DONE, /* committed (or nothing left to do): XACK */
	JOB_RETRY, /* transient failure (database down): leave pending, it is redelivered */
	JOB_FAILED /* permanent failure recorded on the job: XACK */
};

struct aggregator {
	const struct config *cfg;
	struct db *db;
	struct redis *redis;
	char consumer[128];
	volatile sig_atomic_t *stop;
};

/* Runs until *a->stop is set. Returns 0 on a clean stop. */
int aggregator_run(struct aggregator *a);

/* Processes one build_report job (idempotent: a job already succeeded is left alone). */
enum job_outcome build_report(struct db *db, const char *job_id);

#endif
