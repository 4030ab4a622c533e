/*
 * The office directory (docs/domain.md, module 1): every youth welfare
 * office with its kind, region and population under 18. Directory facts are
 * public to every role; the list is ordered by id. It holds the offices of
 * other Länder that take part in a nationwide programme too (state other than
 * NW, region null): they live in their own table and never enter NRW's
 * statistics (migration 0023_programmes.sql).
 */
#include "handlers.h"

#define OFFICE_JSON                                                                                 \
	"json_build_object('id', id, 'name', name, 'kind', kind, 'state', state, 'region', region," \
	" 'population_under_18', population_under_18, 'synthetic', synthetic,"                      \
	" 'version', version, 'created_at', kqe_ts(created_at),"                                    \
	" 'updated_at', kqe_ts(updated_at))::text"

static const struct db_stmt stmt_get = { "offices_get",
	"SELECT id, " OFFICE_JSON " FROM directory WHERE id = $1" };
/* $1 region, $2 kind, $3 state, $4 cursor, $5 limit */
static const struct db_stmt stmt_list = { "offices_list",
	"SELECT id, id, " OFFICE_JSON " FROM directory"
	" WHERE ($1::text IS NULL OR region = $1) AND ($2::text IS NULL OR kind = $2)"
	" AND ($3::text IS NULL OR state = $3) AND ($4::text IS NULL OR id > $4)"
	" ORDER BY id LIMIT $5" };

static const char *const csv_columns[] = { "id", "name", "kind", "state", "region",
	"population_under_18", "synthetic", "version", "created_at", "updated_at", NULL };

const struct resource offices_resource = { .name = "office",
	.title = "office",
	.collection = "/v1/offices",
	.scope = SCOPE_NONE,
	.get = &stmt_get,
	.list = &stmt_list,
	.keys = { KEY_TEXT },
	.nkeys = 1,
	.csv_columns = csv_columns };
