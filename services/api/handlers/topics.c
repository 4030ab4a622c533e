/*
 * Quality-development topics (Qualitätsentwicklungsthemen): what a § 8
 * procedure concluded the office should work on — a theme from the learning
 * themes' frame, a priority, a description and where the work stands
 * (identified → in_progress → implemented | dropped, or identified →
 * dropped; every status change audited with from and to). The description
 * is free text that may name people: it is stored encrypted and decrypted
 * only for the owning office and the procedure's institute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/crypto.h"
#include "kqe/log.h"

#define DESCRIPTION_MAX 5000 /* characters */

static const struct field_spec fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID, .required = true, .immutable = true },
	FIELD_SPEC_CODE("theme", codelist_learning_theme_values),
	FIELD_SPEC_CODE("priority", codelist_topic_priority_values),
	{ .name = "description",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .min = 1,
	    .max = DESCRIPTION_MAX },
	/* Defaults to identified; then moves along moves[]. */
	{ .name = "status", .type = FIELD_ENUM, .values = codelist_topic_status_values },
	{ .name = "follow_up_date", .type = FIELD_DATE, .nullable = true },
};

/* Where a topic may go from each status, by anyone who may write it; the others are final. */
#define WRITERS                                                                                    \
	(ROLE_BIT(ROLE_OFFICE_STAFF) | ROLE_BIT(ROLE_OFFICE_LEAD) | ROLE_BIT(ROLE_INSTITUTE))
static const struct move moves[] = {
	{ "identified", "in_progress", WRITERS },
	{ "identified", "dropped", WRITERS },
	{ "in_progress", "implemented", WRITERS },
	{ "in_progress", "dropped", WRITERS },
};

/*
 * The representation, built by PostgreSQL. description_enc is replaced by
 * the decrypted description (or null) before it leaves the server.
 */
#define TOPIC_JSON                                                                                 \
	"json_build_object('id', t.id, 'procedure_id', t.procedure_id, 'office_id', t.office_id,"  \
	" 'theme', t.theme, 'priority', t.priority, 'status', t.status,"                           \
	" 'description_enc', t.description_enc, 'follow_up_date', t.follow_up_date,"               \
	" 'version', t.version, 'created_at', kqe_ts(t.created_at),"                               \
	" 'updated_at', kqe_ts(t.updated_at))::text"

#define TOPIC_SCOPE SUBMISSION_SCOPE("t")
#define TOPIC_FROM " FROM topics t WHERE"

static const struct db_stmt stmt_get = { "topic_get",
	"SELECT t.office_id, " TOPIC_JSON TOPIC_FROM TOPIC_SCOPE " AND t.id = $3::uuid" };
/* scope, $3 office_id, $4 procedure_id, $5 status, $6 updated_since, $7 $8 cursor, $9 limit */
static const struct db_stmt stmt_list = { "topic_list",
	"SELECT kqe_ts(t.updated_at), t.id::text, t.office_id, " TOPIC_JSON TOPIC_FROM TOPIC_SCOPE
	" AND ($3::text IS NULL OR t.office_id = $3) AND ($4::uuid IS NULL OR t.procedure_id = $4)"
	" AND ($5::text IS NULL OR t.status = $5)"
	" AND ($6::timestamptz IS NULL OR t.updated_at >= $6)"
	" AND ($7::timestamptz IS NULL OR (t.updated_at, t.id) > ($7, $8::uuid))"
	" ORDER BY t.updated_at, t.id LIMIT $9" };
static const struct db_stmt stmt_lock = { "topic_lock",
	"SELECT t.office_id, t.version, " TOPIC_JSON ", p.phase"
	" FROM topics t JOIN procedures p ON p.id = t.procedure_id WHERE" TOPIC_SCOPE
	" AND t.id = $3::uuid FOR UPDATE OF t FOR SHARE OF p" };
static const struct db_stmt stmt_insert = {
	"topic_insert",
	"INSERT INTO topics (id, procedure_id, office_id, theme, priority, status,"
	" description_enc, follow_up_date) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8::date)"
};
static const struct db_stmt stmt_update = { "topic_update",
	"UPDATE topics SET theme = $2, priority = $3, status = $4, description_enc = $5,"
	" follow_up_date = $6::date, version = version + 1, updated_at = now()"
	" WHERE id = $1::uuid" };

static int
topic_create(struct write *w)
{
	if (write_refused_by_procedure(w, "The procedure is completed; it takes no more topics."))
		return 0;
	uuid_v4(w->id);
	const char *status = doc_text(w, "status") ? doc_text(w, "status") : "identified";
	json_object_set_new(w->details, "status", json_string(status));
	const char *params[] = { w->id, doc_text(w, "procedure_id"), w->office,
		doc_text(w, "theme"), doc_text(w, "priority"), status,
		write_encrypted(w, "description"), doc_text(w, "follow_up_date") };
	return write_exec(w, &stmt_insert, 8, params);
}

/*
 * Topics are what the office works on after its procedure: once the
 * procedure is completed, their status and follow-up date still move, but
 * what was concluded (theme, priority, description) is fixed.
 */
static int
topic_update(struct write *w)
{
	const json_t *changed = json_object_get(w->details, "fields");
	size_t i;
	json_t *name;
	json_array_foreach(changed, i, name)
	{
		const char *n = json_string_value(name);
		if (strcmp(row_value(w, 3), "completed") == 0 && strcmp(n, "status") != 0 &&
		    strcmp(n, "follow_up_date") != 0) {
			write_refuse(w, 409, "/procedure_id", "completed",
			    "The procedure is completed: only status and follow_up_date of its "
			    "topics can change.");
			return 0;
		}
	}
	if (write_move(w, "status", moves, ARRAY_LEN(moves), "A topic") < 0)
		return 0;
	const char *params[] = { w->id, doc_text(w, "theme"), doc_text(w, "priority"),
		doc_text(w, "status"), write_encrypted(w, "description"),
		doc_text(w, "follow_up_date") };
	return write_exec(w, &stmt_update, 6, params);
}

/* The representation: description_enc becomes description, in place. Takes ownership of t. */
static json_t *
render(struct request *r, json_t *t)
{
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(t, key, v)
	{
		if (strcmp(key, "description_enc") == 0)
			json_object_set_new(
			    out, "description", free_text(r, "topic", t, "description", v));
		else
			json_object_set(out, key, v);
	}
	json_decref(t);
	return out;
}

static const char *const csv_columns[] = { "id", "procedure_id", "office_id", "theme", "priority",
	"status", "description", "follow_up_date", "version", "created_at", "updated_at", NULL };

const struct resource topics_resource = { OFFICE_DATA("topic", "topic", "/v1/topics"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.render = render, .fields = fields, .nfields = ARRAY_LEN(fields),
	.refs = { PROCEDURE_REFERENCE }, .create = topic_create, .update = topic_update };
