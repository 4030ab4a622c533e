/*
 * The directory of free providers of foster-care services (freie Träger der
 * Pflegekinderhilfe, docs/foster-care.md): each with its seat, the region of
 * its Landesjugendamt and the offices it works for. Public to every caller
 * like the office directory; written by admin. Invariants: migration
 * 0021_providers.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"

static const char *const regions[] = { "LVR", "LWL", NULL };

static const struct field_spec fields[] = {
	{ .name = "id",
	    .type = FIELD_STRING,
	    .required = true,
	    .immutable = true,
	    .min = 1,
	    .max = 64,
	    .check = slug_id_check },
	{ .name = "name", .type = FIELD_STRING, .required = true, .min = 1, .max = 200 },
	/* Sitz: the municipality of its seat. */
	{ .name = "seat", .type = FIELD_STRING, .required = true, .min = 1, .max = 100 },
	FIELD_SPEC_CODE("region", regions),
	/* The offices it works for: ids of the office directory. */
	{ .name = "office_ids", .type = FIELD_CODES, .max = 200 },
};

#define PROVIDER_JSON                                                                              \
	"json_build_object('id', p.id, 'name', p.name, 'seat', p.seat, 'region', p.region,"        \
	" 'office_ids', coalesce((SELECT json_agg(x.office_id ORDER BY x.office_id)"               \
	"  FROM provider_offices x WHERE x.provider_id = p.id), '[]'),"                            \
	" 'synthetic', p.synthetic, 'version', p.version, 'created_at', kqe_ts(p.created_at),"     \
	" 'updated_at', kqe_ts(p.updated_at))::text"

static const struct db_stmt stmt_get = { "provider_get",
	"SELECT '', " PROVIDER_JSON " FROM providers p WHERE p.id = $1" };
/* $1 region, $2 office_id, $3 cursor, $4 limit */
static const struct db_stmt stmt_list = { "provider_list",
	"SELECT p.id, '', " PROVIDER_JSON " FROM providers p"
	" WHERE ($1::text IS NULL OR p.region = $1) AND ($2::text IS NULL OR EXISTS"
	" (SELECT FROM provider_offices x WHERE x.provider_id = p.id AND x.office_id = $2))"
	" AND ($3::text IS NULL OR p.id > $3) ORDER BY p.id LIMIT $4" };
static const struct db_stmt stmt_lock = { "provider_lock",
	"SELECT '', p.version, " PROVIDER_JSON " FROM providers p WHERE p.id = $1 FOR UPDATE" };
/* The ids of $1 (a JSON array) that name no office, with their positions. */
static const struct db_stmt stmt_unknown_offices = { "provider_unknown_offices",
	"SELECT (x.n - 1)::text FROM json_array_elements_text($1::json) WITH ORDINALITY AS x(id, n)"
	" WHERE NOT EXISTS (SELECT FROM offices o WHERE o.id = x.id) ORDER BY x.n" };
static const struct db_stmt stmt_insert = { "provider_insert",
	"INSERT INTO providers (id, name, seat, region) VALUES ($1, $2, $3, $4)"
	" ON CONFLICT (id) DO NOTHING" };
static const struct db_stmt stmt_existing = { "provider_existing",
	"SELECT id FROM providers WHERE id = $1" };
static const struct db_stmt stmt_update = { "provider_update",
	"UPDATE providers SET name = $2, seat = $3, region = $4, version = version + 1,"
	" updated_at = now() WHERE id = $1" };
/* The offices of provider $1 become those of $2 (a JSON array). */
static const struct db_stmt stmt_offices = { "provider_offices_set",
	"WITH gone AS (DELETE FROM provider_offices WHERE provider_id = $1"
	"  AND office_id NOT IN (SELECT json_array_elements_text($2::json)))"
	" INSERT INTO provider_offices (provider_id, office_id)"
	" SELECT $1, x FROM json_array_elements_text($2::json) AS x ON CONFLICT DO NOTHING" };

/* office_ids as JSON text (the request owns it), after checking each names an office. */
static const char *
checked_offices(struct write *w, int *failed)
{
	const json_t *ids = json_object_get(w->doc, "office_ids");
	char *text = ids != NULL ? json_dumps(ids, JSON_COMPACT) : xstrdup("[]");
	const char *owned = request_own_string(w->r, text);
	const char *params[] = { owned };
	PGresult *res = db_exec(w->r->db, &stmt_unknown_offices, 1, params);
	*failed = res == NULL;
	for (int i = 0; res != NULL && i < PQntuples(res); i++) {
		char ptr[64];
		snprintf(ptr, sizeof(ptr), "/office_ids/%s", PQgetvalue(res, i, 0));
		write_error(w, ptr, "not_found", "is not an office");
	}
	PQclear(res);
	return owned;
}

/*
 * The provider and its offices. A create that finds the id taken (the
 * insert does nothing on conflict) is a 409 naming the provider there.
 */
static int
provider_write(struct write *w, const struct db_stmt *stmt)
{
	int failed;
	const char *offices = checked_offices(w, &failed);
	if (failed || json_array_size(w->errors) > 0)
		return failed ? -1 : 0;
	const char *params[] = { w->id, doc_text(w, "name"), doc_text(w, "seat"),
		doc_text(w, "region") };
	PGresult *res = db_exec(w->r->db, stmt, 4, params);
	if (res == NULL)
		return -1;
	int written = atoi(PQcmdTuples(res)) == 1;
	PQclear(res);
	if (!written)
		return write_conflict(w, &stmt_existing, 1, params, "/id",
		    "A provider with this id exists already (see Location).");
	const char *set[] = { w->id, offices };
	return write_exec(w, &stmt_offices, 2, set);
}

static int
provider_create(struct write *w)
{
	snprintf(w->id, sizeof(w->id), "%s", doc_text(w, "id"));
	return provider_write(w, &stmt_insert);
}

static int
provider_update(struct write *w)
{
	return provider_write(w, &stmt_update);
}

static const char *const csv_columns[] = { "id", "name", "seat", "region", "office_ids",
	"synthetic", "version", "created_at", "updated_at", NULL };

const struct resource providers_resource = { .name = "provider",
	.title = "provider",
	.collection = "/v1/providers",
	.scope = SCOPE_NONE,
	.as_caller = true,
	.get = &stmt_get,
	.list = &stmt_list,
	.lock = &stmt_lock,
	.keys = { KEY_TEXT },
	.nkeys = 1,
	.csv_columns = csv_columns,
	.fields = fields,
	.nfields = ARRAY_LEN(fields),
	.create = provider_create,
	.update = provider_update };
