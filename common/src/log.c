#include "kqe/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

enum log_level log_threshold = LOG_INFO;
static FILE *log_stream;

void
log_set_stream(FILE *stream)
{
	log_stream = stream;
}

static const char *const level_names[] = { "debug", "info", "warn", "error", "fatal" };

int
log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_write(enum log_level level, const char *request_id, const char *msg, json_t *fields)
{
	struct timeval tv;
	struct tm tm;
	char ts[40];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

	json_t *line = json_object();
	json_object_set_new(line, "time", json_string(ts));
	json_object_set_new(line, "level", json_string(level_names[level]));
	json_object_set_new(line, "msg", json_string(msg));
	if (request_id != NULL)
		json_object_set_new(line, "request_id", json_string(request_id));
	if (fields != NULL) {
		json_object_update_missing(line, fields);
		json_decref(fields);
	}
	char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(line);
	if (text == NULL)
		return;
	/* One locked write per line so lines from several threads never interleave. */
	FILE *out = log_stream != NULL ? log_stream : stdout;
	flockfile(out);
	fputs(text, out);
	fputc('\n', out);
	fflush(out);
	funlockfile(out);
	free(text);
}
