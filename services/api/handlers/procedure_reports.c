/*
 * § 8 procedure reports (docs/procedure-reports.md): one per procedure, at
 * /v1/procedures/{id}/report. kqe writes the figures from the procedure's own
 * data (kqe_procedure_report_data(), live while a draft, frozen when
 * finalised); the procedure's institute or an advisor of the office's region
 * writes four sections (assessment, strengths, development needs,
 * recommendations), stored encrypted. status moves draft → finalised (the
 * authors, in phase report; the procedure then is completed) → accepted (the
 * office lead). The office's staff read it and comment
 * (/v1/report-comments); the ministry lists only that a finalised report
 * exists and when it was finalised. Invariants: migration
 * 0017_procedure_reports.sql (and 0031).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/log.h"
#include "report_html.h"

#define SECTION_MAX 20000 /* characters */

static const char *const statuses[] = { "draft", "finalised", "accepted", NULL };

#define SECTION_SPEC(n)                                                                            \
	{                                                                                          \
		.name = (n), .type = FIELD_STRING, .nullable = true, .min = 1, .max = SECTION_MAX  \
	}

static const struct field_spec fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID, .required = true, .immutable = true },
	SECTION_SPEC("assessment"),
	SECTION_SPEC("strengths"),
	SECTION_SPEC("development_needs"),
	SECTION_SPEC("recommendations"),
	{ .name = "status", .type = FIELD_ENUM, .update_only = true, .values = statuses },
};

/* The representation; *_enc become the text for those who may read it (render). */
#define REPORT_JSON                                                                                \
	"json_build_object('procedure_id', r.procedure_id, 'office_id', r.office_id,"              \
	" 'cycle', r.cycle, 'status', r.status, 'assessment_enc', r.assessment_enc,"               \
	" 'strengths_enc', r.strengths_enc, 'development_needs_enc', r.development_needs_enc,"     \
	" 'recommendations_enc', r.recommendations_enc,"                                           \
	" 'generated', coalesce(r.generated, kqe_procedure_report_data(r.procedure_id)),"          \
	" 'comments', (SELECT coalesce(json_agg(json_build_object('id', c.id, 'author_role',"      \
	"   c.author_role, 'text_enc', c.text_enc, 'created_at', kqe_ts(c.created_at))"            \
	"   ORDER BY c.created_at, c.id), '[]') FROM procedure_report_comments c"                  \
	"   WHERE c.procedure_id = r.procedure_id),"                                               \
	" 'finalised_at', kqe_ts(r.finalised_at), 'accepted_at', kqe_ts(r.accepted_at),"           \
	" 'version', r.version, 'created_at', kqe_ts(r.created_at),"                               \
	" 'updated_at', kqe_ts(r.updated_at))::text"
/*
 * What a list shows: that a report exists and its state. The ministry sees
 * only that it exists and when it was finalised — finalised reports only
 * (row-level security applies that too, migration 0031), ordered and
 * filtered by the time of finalisation instead of the last change, and its
 * `status` filter sees every such report as finalised, so that neither an
 * answer nor a cursor tells it a draft, an acceptance or a later change.
 */
#define MINISTRY "kqe_ctx('role') = 'ministry'"
#define LIST_KEY "(CASE WHEN " MINISTRY " THEN r.finalised_at ELSE r.updated_at END)"
#define REPORT_SUMMARY_JSON                                                                        \
	"(CASE WHEN " MINISTRY " THEN json_build_object('procedure_id', r.procedure_id,"           \
	" 'office_id', r.office_id, 'cycle', r.cycle, 'finalised_at', kqe_ts(r.finalised_at))"     \
	" ELSE json_build_object('procedure_id', r.procedure_id, 'office_id', r.office_id,"        \
	" 'cycle', r.cycle, 'status', r.status, 'finalised_at', kqe_ts(r.finalised_at),"           \
	" 'accepted_at', kqe_ts(r.accepted_at), 'version', r.version,"                             \
	" 'created_at', kqe_ts(r.created_at), 'updated_at', kqe_ts(r.updated_at)) END)::text"
/* The scope, applied by PostgreSQL (advisors by region; RLS applies it again). */
#define READER " kqe_report_reader(r.office_id, r.procedure_id)"

static const struct db_stmt stmt_get = { "procedure_report_get",
	"SELECT r.office_id, " REPORT_JSON " FROM procedure_reports r WHERE" READER
	" AND r.procedure_id = $1::uuid" };
/* $1 office_id, $2 status, $3 updated_since, $4 $5 cursor, $6 limit */
static const struct db_stmt stmt_list = { "procedure_report_list",
	"SELECT kqe_ts(" LIST_KEY "), r.procedure_id::text, r.office_id, " REPORT_SUMMARY_JSON
	" FROM procedure_reports r WHERE (" READER " OR (" MINISTRY " AND r.status <> 'draft'))"
	" AND ($1::text IS NULL OR r.office_id = $1)"
	" AND ($2::text IS NULL OR (CASE WHEN " MINISTRY
	" THEN 'finalised' ELSE r.status END) = $2)"
	" AND ($3::timestamptz IS NULL OR " LIST_KEY " >= $3)"
	" AND ($4::timestamptz IS NULL OR (" LIST_KEY ", r.procedure_id) > ($4, $5::uuid))"
	" ORDER BY " LIST_KEY ", r.procedure_id LIMIT $6" };
/* The report, and the procedure's phase for those who may finalise (else null). */
static const struct db_stmt stmt_lock = { "procedure_report_lock",
	"SELECT r.office_id, r.version, " REPORT_JSON ","
	" (SELECT phase FROM kqe_report_procedure(r.procedure_id))"
	" FROM procedure_reports r WHERE" READER " AND r.procedure_id = $1::uuid FOR UPDATE OF r" };
static const struct db_stmt stmt_procedure = { "procedure_report_procedure",
	"SELECT office_id, cycle, phase FROM kqe_report_procedure($1::uuid)" };
static const struct db_stmt stmt_insert = { "procedure_report_insert",
	"INSERT INTO procedure_reports (procedure_id, office_id, cycle, assessment_enc,"
	" strengths_enc, development_needs_enc, recommendations_enc)"
	" VALUES ($1::uuid, $2, $3, $4, $5, $6, $7) ON CONFLICT (procedure_id) DO NOTHING" };
static const struct db_stmt stmt_existing = { "procedure_report_existing",
	"SELECT procedure_id::text FROM procedure_reports WHERE procedure_id = $1::uuid" };
static const struct db_stmt stmt_update = { "procedure_report_update",
	"UPDATE procedure_reports SET assessment_enc = $2, strengths_enc = $3,"
	" development_needs_enc = $4, recommendations_enc = $5, version = version + 1,"
	" updated_at = now() WHERE procedure_id = $1::uuid" };
/* The sections as in stmt_update: a PATCH may change them and finalise at once. */
static const struct db_stmt stmt_finalise = { "procedure_report_finalise",
	"WITH done AS (SELECT kqe_report_complete_procedure($1::uuid))"
	" UPDATE procedure_reports SET status = 'finalised', finalised_at = now(),"
	" assessment_enc = $2, strengths_enc = $3, development_needs_enc = $4,"
	" recommendations_enc = $5, generated = kqe_procedure_report_data($1::uuid),"
	" version = version + 1, updated_at = now() FROM done WHERE procedure_id = $1::uuid" };
static const struct db_stmt stmt_accept = { "procedure_report_accept",
	"UPDATE procedure_reports SET status = 'accepted', accepted_at = now(),"
	" version = version + 1, updated_at = now() WHERE procedure_id = $1::uuid" };

/* Who writes the sections (admin reads the figures only, not the text). */
static bool
may_write_text(enum role role)
{
	return role == ROLE_INSTITUTE || role == ROLE_ADVISOR;
}

static int
report_create(struct write *w)
{
	const char *phase = ref_value(w, 0, 2);
	if (strcmp(phase, "evaluation") != 0 && strcmp(phase, "report") != 0) {
		char detail[200];
		snprintf(detail, sizeof(detail),
		    "The procedure is in phase %s; its report is drafted in phase evaluation or "
		    "report.",
		    phase);
		write_refuse(w, 409, "/procedure_id", "phase", detail);
		return 0;
	}
	snprintf(w->id, sizeof(w->id), "%s", doc_text(w, "procedure_id"));
	snprintf(w->office, sizeof(w->office), "%s", ref_value(w, 0, 0));
	const char *params[] = { w->id, w->office, ref_value(w, 0, 1),
		write_encrypted(w, "assessment"), write_encrypted(w, "strengths"),
		write_encrypted(w, "development_needs"), write_encrypted(w, "recommendations") };
	PGresult *res = db_exec(w->r->db, &stmt_insert, 7, params);
	if (res == NULL)
		return -1;
	int inserted = atoi(PQcmdTuples(res)) == 1;
	PQclear(res);
	if (inserted)
		return 0;
	return write_conflict(w, &stmt_existing, 1, params, "/procedure_id",
	    "The procedure has its report already (see Location); edit it there.");
}

/* 409 for a status the workflow does not allow from here, naming the allowed one. */
static void
refuse_move(struct write *w, const char *from, const char *allowed, const char *why)
{
	char detail[256];
	snprintf(detail, sizeof(detail), "A report in status %s %s.", from, why);
	write_refuse(w, 409, "/status", "transition", detail);
	w->refusal_members = json_pack("{s:[]}", "allowed_next");
	if (allowed != NULL)
		json_array_append_new(
		    json_object_get(w->refusal_members, "allowed_next"), json_string(allowed));
}

static bool
sections_changed(const struct write *w)
{
	const json_t *changed = json_object_get(w->details, "fields");
	size_t i;
	json_t *name;
	json_array_foreach(changed, i, name)
	{
		if (strcmp(json_string_value(name), "status") != 0)
			return true;
	}
	return false;
}

static int
report_update(struct write *w)
{
	enum role role = w->r->principal.role;
	const char *from = json_text(json_object_get(w->current, "status"));
	const char *to = doc_text(w, "status") ? doc_text(w, "status") : from;
	const char *phase = row_value(w, 3);
	if (sections_changed(w) && !may_write_text(role)) {
		write_refuse(w, 403, "/status", "forbidden",
		    "The office accepts the report; its text is written by the institute or the "
		    "Landesjugendamt.");
		return 0;
	}
	if (sections_changed(w) && strcmp(from, "draft") != 0) {
		write_refuse(w, 409, "/status", "final",
		    "The report is finalised; it cannot change any more.");
		return 0;
	}
	const char *params[] = { w->id, write_encrypted(w, "assessment"),
		write_encrypted(w, "strengths"), write_encrypted(w, "development_needs"),
		write_encrypted(w, "recommendations") };
	if (strcmp(from, to) == 0) {
		return write_exec(w, &stmt_update, 5, params);
	}
	const struct db_stmt *move = NULL;
	if (strcmp(from, "draft") == 0 && strcmp(to, "finalised") == 0) {
		if (!may_write_text(role)) {
			write_refuse(w, 403, "/status", "forbidden",
			    "A report is finalised by the institute or the Landesjugendamt.");
			return 0;
		}
		if (phase[0] == '\0' || strcmp(phase, "report") != 0) {
			refuse_move(w, from, NULL,
			    "is finalised when its procedure is in phase report; move the "
			    "procedure there first");
			return 0;
		}
		move = &stmt_finalise;
		w->action = "procedure_report.finalise";
		/* The procedure's move to completed is part of this write: its entry says so. */
		json_object_set_new(w->details, "procedure_phase",
		    json_pack("{s:s,s:s}", "from", "report", "to", "completed"));
	} else if (strcmp(from, "finalised") == 0 && strcmp(to, "accepted") == 0) {
		if (role != ROLE_OFFICE_LEAD) {
			write_refuse(w, 403, "/status", "forbidden",
			    "A report is accepted by the office's lead.");
			return 0;
		}
		move = &stmt_accept;
		w->action = "procedure_report.accept";
	} else {
		const char *next = strcmp(from, "draft") == 0       ? "finalised"
		                   : strcmp(from, "finalised") == 0 ? "accepted"
		                                                    : NULL;
		char why[96];
		snprintf(why, sizeof(why), "%s%s", next ? "can only move to " : "is final",
		    next ? next : "");
		refuse_move(w, from, next, why);
		return 0;
	}
	json_object_set_new(w->details, "from", json_string(from));
	json_object_set_new(w->details, "to", json_string(to));
	return write_exec(w, move, move == &stmt_finalise ? 5 : 1, params);
}

/* Free text of a report is read by the office, the institute and the advisors, not admin. */
static bool
reads_text(const struct request *r)
{
	enum role role = r->principal.role;
	return role_is_office(role) || role == ROLE_INSTITUTE || role == ROLE_ADVISOR;
}

/* A comment's text_enc becomes text, in place. */
static void
comment_text(struct request *r, json_t *c)
{
	json_t *text = reads_text(r) ? free_text_decrypt(r, "report_comment",
	                                   json_string_value(json_object_get(c, "id")), "text",
	                                   json_object_get(c, "text_enc"))
	                             : json_null();
	json_object_del(c, "text_enc");
	json_object_set_new(c, "text", text);
}

/*
 * The shares: every count of generated.counts as a percentage of the
 * procedure's case analyses ({dimension: {category: share}}). Computed when
 * read, from the counts (frozen with them once finalised), so reports
 * finalised before there were shares have them too.
 */
static void
add_shares(json_t *gen)
{
	long long cases = json_integer_value(json_object_get(gen, "case_analyses"));
	json_t *shares = json_object(), *categories, *n;
	const char *dim, *category;
	json_object_foreach(json_object_get(gen, "counts"), dim, categories)
	{
		json_t *line = json_object();
		json_object_foreach(categories, category, n)
		{
			json_object_set_new(line, category,
			    json_real(procedure_report_share(json_integer_value(n), cases)));
		}
		json_object_set_new(shares, dim, line);
	}
	json_object_set_new(gen, "shares", shares);
}

/*
 * The representation: the sections decrypted for the office, the institute
 * and the advisors (admin sees the figures, not the text); the shares added;
 * peer-group quartiles of fewer than KQE_SDC_MIN_OFFICES offices removed.
 * Takes rep.
 */
static json_t *
render(struct request *r, json_t *rep)
{
	const char *id = json_string_value(json_object_get(rep, "procedure_id"));
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(rep, key, v)
	{
		size_t len = strlen(key);
		if (len > 4 && strcmp(key + len - 4, "_enc") == 0) {
			char field[32];
			snprintf(field, sizeof(field), "%.*s", (int)(len - 4), key);
			json_object_set_new(out, field,
			    reads_text(r) ? free_text_decrypt(r, "procedure_report", id, field, v)
			                  : json_null());
		} else {
			json_object_set(out, key, v);
		}
	}
	json_t *comment;
	size_t i;
	json_array_foreach(json_object_get(out, "comments"), i, comment)
	{
		comment_text(r, comment);
	}
	json_t *row, *gen = json_object_get(out, "generated");
	if (json_is_object(gen))
		add_shares(gen);
	json_array_foreach(json_object_get(gen, "structure"), i, row)
	{
		bool enough = json_integer_value(json_object_get(row, "peers")) >=
		              r->worker->cfg->sdc_min_offices;
		json_object_set_new(row, "suppressed", json_boolean(!enough));
		if (!enough) {
			json_object_set_new(row, "q1", json_null());
			json_object_set_new(row, "median", json_null());
			json_object_set_new(row, "q3", json_null());
		}
	}
	json_decref(rep);
	return out;
}

static const char *const csv_columns[] = { "procedure_id", "office_id", "cycle", "status",
	"finalised_at", "accepted_at", "version", "created_at", "updated_at", NULL };

const struct resource procedure_reports_resource = { CALLER_SCOPED("procedure_report",
	                                                 "procedure report", "/v1/procedures"),
	.item_suffix = "/report", .get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock,
	.csv_columns = csv_columns, .render = render, .fields = fields,
	.nfields = ARRAY_LEN(fields),
	.refs = { { "procedure_id", &stmt_procedure, SCOPE_NONE,
	    "is not a procedure you write the report of" } },
	.create = report_create, .update = report_update };

/*
 * GET /v1/procedures/{id}/report.html?version=full|committee: the report in
 * German, for the office (full, the default) or for its youth welfare
 * committee (committee: no case-level detail, no comments).
 */
void
procedure_report_html_reply(struct request *r, const json_t *rep)
{
	const char *version = query_get(r, "version");
	bool committee = version != NULL && strcmp(version, "committee") == 0;
	char *html = procedure_report_html(
	    rep, committee, r->worker->cfg->sdc_min_count, r->worker->cfg->sdc_min_offices);
	reply_header(r, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
	reply_bytes(r, 200, "text/html; charset=utf-8", html, strlen(html));
	free(html);
}

/* ---- comments: the office's (and the authors') remarks on a report ---- */

#define COMMENT_MAX 5000

static const struct field_spec comment_fields[] = {
	{ .name = "procedure_id", .type = FIELD_UUID, .required = true, .immutable = true },
	{ .name = "text", .type = FIELD_STRING, .required = true, .min = 1, .max = COMMENT_MAX },
};

#define COMMENT_JSON                                                                               \
	"json_build_object('id', c.id, 'procedure_id', c.procedure_id, 'office_id', c.office_id,"  \
	" 'author_role', c.author_role, 'text_enc', c.text_enc, 'version', c.version,"             \
	" 'created_at', kqe_ts(c.created_at), 'updated_at', kqe_ts(c.updated_at))::text"

static const struct db_stmt stmt_comment_get = { "report_comment_get",
	"SELECT c.office_id, " COMMENT_JSON " FROM procedure_report_comments c"
	" WHERE kqe_report_reader(c.office_id, c.procedure_id) AND c.id = $1::uuid" };
/* $1 procedure_id, $2 updated_since, $3 $4 cursor, $5 limit */
static const struct db_stmt stmt_comment_list = { "report_comment_list",
	"SELECT kqe_ts(c.updated_at), c.id::text, c.office_id, " COMMENT_JSON
	" FROM procedure_report_comments c WHERE kqe_report_reader(c.office_id, c.procedure_id)"
	" AND ($1::uuid IS NULL OR c.procedure_id = $1)"
	" AND ($2::timestamptz IS NULL OR c.updated_at >= $2)"
	" AND ($3::timestamptz IS NULL OR (c.updated_at, c.id) > ($3, $4::uuid))"
	" ORDER BY c.updated_at, c.id LIMIT $5" };
/* The report commented on, if the caller may read it: office. (Not locked: the readers
 * who comment may not update it, and a comment may come in any status.) */
static const struct db_stmt stmt_comment_report = { "report_comment_report",
	"SELECT r.office_id FROM procedure_reports r"
	" WHERE kqe_report_reader(r.office_id, r.procedure_id) AND r.procedure_id = $1::uuid" };
static const struct db_stmt stmt_comment_insert = { "report_comment_insert",
	"INSERT INTO procedure_report_comments (id, procedure_id, office_id, author_role, text_enc)"
	" VALUES ($1::uuid, $2::uuid, $3, $4, $5)" };

static int
comment_create(struct write *w)
{
	uuid_v4(w->id);
	snprintf(w->office, sizeof(w->office), "%s", ref_value(w, 0, 0));
	const char *params[] = { w->id, doc_text(w, "procedure_id"), w->office,
		role_name(w->r->principal.role), write_encrypted(w, "text") };
	return write_exec(w, &stmt_comment_insert, 5, params);
}

static json_t *
comment_render(struct request *r, json_t *c)
{
	comment_text(r, c);
	return c;
}

static const char *const comment_csv_columns[] = { "id", "procedure_id", "office_id", "author_role",
	"text", "version", "created_at", "updated_at", NULL };

const struct resource report_comments_resource = { CALLER_SCOPED("report_comment", "report comment",
	                                               "/v1/report-comments"),
	.get = &stmt_comment_get, .list = &stmt_comment_list, .csv_columns = comment_csv_columns,
	.render = comment_render, .fields = comment_fields, .nfields = ARRAY_LEN(comment_fields),
	.refs = { { "procedure_id", &stmt_comment_report, SCOPE_NONE,
	    "is not a procedure whose report you read" } },
	.create = comment_create };
