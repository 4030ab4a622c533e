/* The office directory (PRODUCT.md module 1): list and read. */
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/problem.h"
#include "kqe/validate.h"

#define OFFICE_JSON                                                                                \
	"json_build_object('id', id, 'name', name, 'kind', kind, 'region', region,"                \
	" 'population_under_18', population_under_18, 'synthetic', synthetic,"                     \
	" 'version', version, 'created_at', kqe_ts(created_at),"                                   \
	" 'updated_at', kqe_ts(updated_at))::text"

static const struct db_stmt stmt_list = { "offices_list",
	"SELECT id, " OFFICE_JSON " FROM offices"
	" WHERE ($1::text IS NULL OR id > $1) AND ($2::text IS NULL OR region = $2)"
	" AND ($3::text IS NULL OR kind = $3) ORDER BY id LIMIT $4" };
static const struct db_stmt stmt_get = { "offices_get",
	"SELECT id, " OFFICE_JSON " FROM offices WHERE id = $1" };

static const char *const regions[] = { "LVR", "LWL", NULL };
static const char *const kinds[] = { "kreisfreie_stadt", "kreis", "kreisangehoerige_stadt", NULL };

static void
check_code(const char *value, const char *name, const char *const *codes, json_t *errors)
{
	if (value == NULL)
		return;
	for (const char *const *c = codes; *c; c++)
		if (strcmp(*c, value) == 0)
			return;
	error_at_parameter(errors, name, "enum", "is not a known code");
}

void
offices_list(struct request *r)
{
	static const char *const allowed[] = { LIST_PARAMS, "region", "kind", NULL };
	struct list_params lp;
	json_t *errors = json_array();
	char limit[24];

	query_parse(r, allowed, errors);
	list_params_parse(r, 1, &lp, errors);
	check_code(query_get(r, "region"), "region", regions, errors);
	check_code(query_get(r, "kind"), "kind", kinds, errors);
	if (reply_query_errors(r, errors) != 0) {
		list_params_free(&lp);
		return;
	}
	snprintf(limit, sizeof(limit), "%ld", lp.limit + 1);
	const char *params[] = { lp.after ? json_string_value(json_array_get(lp.after, 0)) : NULL,
		query_get(r, "region"), query_get(r, "kind"), limit };
	PGresult *res = db_exec(r->worker->db, &stmt_list, 4, params);
	list_params_free(&lp);
	if (res == NULL) {
		reply_db_error(r);
		return;
	}
	int n = PQntuples(res);
	int shown = n > lp.limit ? (int)lp.limit : n;
	json_t *items = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(items, pg_json(res, i, 1));
	json_t *next = n > lp.limit ? json_pack("[s]", PQgetvalue(res, shown - 1, 0)) : NULL;
	PQclear(res);
	reply_list(r, items, next);
}

void
offices_get(struct request *r)
{
	static const char *const allowed[] = { NULL };
	if (query_accept(r, allowed) != 0)
		return;
	if (!slug_id_valid(r->params[0])) {
		reply_not_found(r);
		return;
	}
	const char *params[] = { r->params[0] };
	PGresult *res = db_exec(r->worker->db, &stmt_get, 1, params);
	if (res == NULL) {
		reply_db_error(r);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		reply_not_found(r);
		return;
	}
	json_t *office = pg_json(res, 0, 1);
	PQclear(res);
	reply_resource(r, 200, office);
}
