/*
 * log — one JSON object per line on stdout: time, level, msg, request_id and
 * caller-supplied fields. Privacy rule: callers pass codes, ids and counts,
 * never file numbers, names, free text or token values.
 */
#ifndef KQE_LOG_H
#define KQE_LOG_H

#include <jansson.h>
#include <stdio.h>

#include "kqe/util.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };

extern enum log_level log_threshold;

/* Where lines go: stdout for the services (default), stderr for the admin CLI. */
void log_set_stream(FILE *stream);

/* Returns 0 and sets *out for "debug", "info", "warn", "error"; -1 otherwise. */
int log_level_parse(const char *s, enum log_level *out) KQE_MUSTCHECK;

/*
 * Writes one line. fields may be NULL; log_write takes ownership of it
 * (decref'd here). request_id may be NULL.
 */
void log_write(enum log_level level, const char *request_id, const char *msg, json_t *fields);

/* The macros skip building fields entirely when the level is off. */
#define log_at(level, rid, msg, fields)                                                            \
	do {                                                                                       \
		if ((level) >= log_threshold)                                                      \
			log_write((level), (rid), (msg), (fields));                                \
	} while (0)
#define log_debug(rid, msg, fields) log_at(LOG_DEBUG, rid, msg, fields)
#define log_info(rid, msg, fields) log_at(LOG_INFO, rid, msg, fields)
#define log_warn(rid, msg, fields) log_at(LOG_WARN, rid, msg, fields)
#define log_error(rid, msg, fields) log_at(LOG_ERROR, rid, msg, fields)

#endif
