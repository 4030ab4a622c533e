/*
 * GET /v1/offices/{id}/benchmark — an office's own figures beside its peer
 * groups' (offices of the same kind; of the same region): number of peers,
 * mean, quartiles and median, each only where at least KQE_SDC_MIN_OFFICES
 * peers contribute. The office sees its own figures unsuppressed; peers
 * appear only as aggregates (kqe_benchmark() in SQL computes them as the
 * owner and returns nothing else).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/validate.h"

static const struct db_stmt stmt_benchmark = { "benchmark",
	"SELECT indicator, unit, own::text, peer_group, peers, mean::text, q1::text,"
	" median::text, q3::text FROM kqe_benchmark($1, $2::int)" };

static json_t *
number_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null()
	                                  : json_real(strtod(PQgetvalue(res, row, col), NULL));
}

void
benchmark_get(struct request *r)
{
	const char *office = r->params[0];

	/* An office's benchmark is its own: another office's is as if it did not exist. */
	if (role_is_office(r->principal.role) && strcmp(office, r->principal.office_id) != 0) {
		reply_not_found(r);
		return;
	}
	char min[16];
	snprintf(min, sizeof(min), "%ld", r->worker->cfg->sdc_min_offices);
	const char *params[] = { office, min };
	PGresult *res = query_found(r, &stmt_benchmark, 2, params);
	if (res == NULL)
		return;
	json_t *indicators = json_array(), *current = NULL;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		if (current == NULL ||
		    strcmp(json_string_value(json_object_get(current, "indicator")), name) != 0) {
			current = json_pack("{s:s,s:s,s:o,s:{}}", "indicator", name, "unit",
			    PQgetvalue(res, i, 1), "own", number_or_null(res, i, 2), "peers");
			json_array_append_new(indicators, current);
		}
		json_t *group =
		    json_pack("{s:i,s:o,s:o,s:o,s:o}", "offices", atoi(PQgetvalue(res, i, 4)),
		        "mean", number_or_null(res, i, 5), "q1", number_or_null(res, i, 6),
		        "median", number_or_null(res, i, 7), "q3", number_or_null(res, i, 8));
		json_object_set_new(group, "suppressed",
		    json_boolean(atoi(PQgetvalue(res, i, 4)) < r->worker->cfg->sdc_min_offices));
		json_object_set_new(
		    json_object_get(current, "peers"), PQgetvalue(res, i, 3), group);
	}
	PQclear(res);
	reply_json(r, 200,
	    json_pack("{s:s,s:i,s:o}", "office_id", office, "min_offices",
	        (int)r->worker->cfg->sdc_min_offices, "indicators", indicators));
}
