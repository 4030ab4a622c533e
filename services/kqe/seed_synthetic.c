/*
 * kqe seed --synthetic — a large state for benchmarks and load tests: the demo
 * state plus N more case analyses, drawn with the demo's distributions
 * (demo_case) and spread over the first K demo offices in proportion to their
 * population under 18, written with one COPY in the seed's transaction.
 * docs/performance.md, "A large state".
 *
 * Ids and pseudonyms follow the demo's scheme with numbers of their own
 * (SYNTHETIC_FIRST onwards), so they never meet the demo's rows. COPY knows
 * no ON CONFLICT: a second run finds the first synthetic row and adds
 * nothing, nor runs the demo's steps again (seed_synthetic_done; the
 * transaction makes a half-done run impossible).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed_cases.h"

/* Row numbers of synthetic cases, per office: far above the demo's few dozen. */
#define SYNTHETIC_FIRST 1000000L
/* Bytes buffered before they go to PostgreSQL. */
#define COPY_CHUNK (1 << 20)

/* The COPY columns, in order; each is a member of demo_case's object. */
static const char *const copy_columns[] = { "id", "procedure_id", "office_id", "case_pseudonym",
	"selection", "closed_month", "child_sex", "child_birth_month", "parents_age_group",
	"reported_by", "result", "endangerment_forms", "days_to_first_contact", "direct_impression",
	"several_professionals", "child_involved", "parents_involved", "insofa_consulted",
	"family_court_called", "taken_into_care", "services_before", "services_after", "ratings",
	"learning_themes", "findings_enc" };

static const struct db_stmt stmt_exists = { "seed_synthetic_exists",
	"SELECT count(*) FROM case_analyses WHERE id = $1::uuid" };
static const struct db_stmt stmt_no_timeout = { "seed_synthetic_no_timeout",
	"SELECT set_config('statement_timeout', '0', true)" };

struct out {
	char *buf;
	size_t len, cap;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->buf = xrealloc(o->buf, o->cap);
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* text in COPY's text format: backslash, tab, newline and carriage return escaped. */
static void
put_text(struct out *o, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		const char *esc = *p == '\\'   ? "\\\\"
		                  : *p == '\t' ? "\\t"
		                  : *p == '\n' ? "\\n"
		                  : *p == '\r' ? "\\r"
		                               : NULL;
		if (esc != NULL)
			put(o, esc, 2);
		else
			put(o, p, 1);
	}
}

/* One column's value: arrays of codes as a text[] literal, objects as JSON. */
static void
put_value(struct out *o, const json_t *v)
{
	char num[32];
	if (v == NULL || json_is_null(v)) {
		put(o, "\\N", 2);
	} else if (json_is_string(v)) {
		put_text(o, json_string_value(v));
	} else if (json_is_integer(v)) {
		int n = snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		put(o, num, (size_t)n);
	} else if (json_is_boolean(v)) {
		put(o, json_is_true(v) ? "t" : "f", 1);
	} else if (json_is_array(v)) { /* codes: no character that needs quoting in an array */
		put(o, "{", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i > 0)
				put(o, ",", 1);
			put_text(o, json_string_value(json_array_get(v, i)));
		}
		put(o, "}", 1);
	} else {
		char *text = json_dumps(v, JSON_COMPACT);
		put_text(o, text != NULL ? text : "{}");
		free(text);
	}
}

static int
flush_copy(PGconn *conn, struct out *o)
{
	if (o->len > 0 && PQputCopyData(conn, o->buf, (int)o->len) != 1)
		return -1;
	o->len = 0;
	return 0;
}

/* How many of total go to each procedure's office: by population, largest remainders last. */
static long *
shares(const PGresult *procs, int offices, long total)
{
	long *n = xcalloc((size_t)offices, sizeof(*n));
	double population = 0;
	for (int i = 0; i < offices; i++)
		population += atof(PQgetvalue(procs, i, 3)) + 1;
	long given = 0;
	for (int i = 0; i < offices; i++) {
		n[i] = (long)((double)total * (atof(PQgetvalue(procs, i, 3)) + 1) / population);
		given += n[i];
	}
	for (int i = 0; given < total; i = (i + 1) % offices, given++)
		n[i]++;
	return n;
}

/* Writes the rows of every office to conn (in COPY); the first failing office in summary. */
static int
copy_rows(struct demo_seed *s, PGconn *conn, const PGresult *procs, int offices, const long *n,
    char *summary, size_t size)
{
	struct out o = { 0 };
	char id[37];
	int rc = 0;
	for (int i = 0; i < offices && rc == 0; i++) {
		const char *procedure = PQgetvalue(procs, i, 0), *office = PQgetvalue(procs, i, 1);
		for (long k = 0; k < n[i] && rc == 0; k++) {
			json_t *row = NULL;
			if (demo_uuid("case", office, SYNTHETIC_FIRST + k, id) != 0 ||
			    (row = demo_case(s, procedure, office, SYNTHETIC_FIRST + k, id)) ==
			        NULL) {
				snprintf(
				    summary, size, "synthetic case %ld of office %s", k, office);
				rc = -1;
				break;
			}
			for (size_t c = 0; c < ARRAY_LEN(copy_columns); c++) {
				if (c > 0)
					put(&o, "\t", 1);
				put_value(&o, json_object_get(row, copy_columns[c]));
			}
			put(&o, "\n", 1);
			json_decref(row);
			if (o.len >= COPY_CHUNK && flush_copy(conn, &o) != 0) {
				snprintf(summary, size, "sending the synthetic cases");
				rc = -1;
			}
		}
	}
	if (rc == 0 && flush_copy(conn, &o) != 0) {
		snprintf(summary, size, "sending the synthetic cases");
		rc = -1;
	}
	free(o.buf);
	return rc;
}

/* COPY ... FROM STDIN of all rows, in the seed's transaction (libpq in blocking mode for it). */
static int
copy_all(struct demo_seed *s, const PGresult *procs, int offices, const long *n, char *summary,
    size_t size)
{
	PGconn *conn = db_conn(s->db);
	if (conn == NULL) {
		snprintf(summary, size, "no connection");
		return -1;
	}
	char sql[1024] = "COPY case_analyses (";
	for (size_t c = 0; c < ARRAY_LEN(copy_columns); c++)
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%s%s", c ? ", " : "",
		    copy_columns[c]);
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ") FROM STDIN");
	PQsetnonblocking(conn, 0);
	PGresult *res = PQexec(conn, sql);
	int rc = PQresultStatus(res) == PGRES_COPY_IN ? 0 : -1;
	PQclear(res);
	if (rc != 0) {
		snprintf(summary, size, "COPY: %s", PQerrorMessage(conn));
	} else {
		rc = copy_rows(s, conn, procs, offices, n, summary, size);
		if (PQputCopyEnd(conn, rc == 0 ? NULL : "seed failed") != 1)
			rc = -1;
		while ((res = PQgetResult(conn)) != NULL) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0) {
				snprintf(summary, size, "COPY: %.*s",
				    (int)strcspn(PQresultErrorMessage(res), "\n"),
				    PQresultErrorMessage(res));
				rc = -1;
			}
			PQclear(res);
		}
	}
	PQsetnonblocking(conn, 1);
	return rc;
}

int
seed_synthetic_done(struct demo_seed *s)
{
	PGresult *procs = demo_procedures(s, (char[8]){ 0 }, 8);
	char first[37];
	const char *params[] = { first };
	PGresult *res = NULL;
	int done = -1;
	if (procs != NULL && PQntuples(procs) > 0 &&
	    demo_uuid("case", PQgetvalue(procs, 0, 1), SYNTHETIC_FIRST, first) == 0 &&
	    (res = db_exec(s->db, &stmt_exists, 1, params)) != NULL)
		done = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
	else if (procs != NULL && PQntuples(procs) == 0)
		done = 0; /* no demo yet */
	PQclear(res);
	PQclear(procs);
	return done;
}

int
seed_synthetic_cases(struct demo_seed *s, char *summary, size_t size)
{
	summary[0] = '\0';
	if (s->synthetic_cases == 0)
		return 0;
	PGresult *procs = demo_procedures(s, summary, size);
	if (procs == NULL)
		return -1;
	int offices = PQntuples(procs);
	if (s->synthetic_offices < offices)
		offices = (int)s->synthetic_offices;
	PGresult *res = NULL;
	int rc = -1;
	if (offices == 0) {
		snprintf(summary, size, "no demo offices");
		goto out;
	}
	if ((res = db_exec(s->db, &stmt_no_timeout, 0, NULL)) == NULL) {
		snprintf(summary, size, "lifting the statement timeout for COPY");
		goto out;
	}
	long *n = shares(procs, offices, s->synthetic_cases);
	rc = copy_all(s, procs, offices, n, summary, size);
	free(n);
	if (rc == 0)
		snprintf(summary, size, "synthetic: %ld case analyses over %d offices",
		    s->synthetic_cases, offices);
out:
	PQclear(res);
	PQclear(procs);
	return rc;
}
