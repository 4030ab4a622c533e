#include "kqe/db.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/log.h"

struct db {
	char *url;
	char options[64];
	char *application_name;
	PGconn *conn;
	/*
	 * Set by db_begin, cleared by commit/rollback. While set, a lost
	 * connection is an error until the caller rolls back: reconnecting would
	 * silently run the rest of the transaction in autocommit.
	 */
	bool in_transaction;
	const struct db_stmt **prepared; /* statements prepared on this connection */
	int nprepared, capprepared;
	enum db_error error;
	char sqlstate[6];
	char constraint[64];
	char message[256];
};

struct db *
db_new(const char *url, long statement_timeout_ms, const char *application_name)
{
	struct db *db = xcalloc(1, sizeof(*db));
	db->url = xstrdup(url);
	db->application_name = xstrdup(application_name);
	snprintf(
	    db->options, sizeof(db->options), "-c statement_timeout=%ld", statement_timeout_ms);
	return db;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db->prepared);
	free(db->url);
	free(db->application_name);
	free(db);
}

static void
set_error(struct db *db, enum db_error kind, const char *sqlstate, const char *constraint,
    const char *message)
{
	db->error = kind;
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", sqlstate ? sqlstate : "");
	snprintf(db->constraint, sizeof(db->constraint), "%s", constraint ? constraint : "");
	snprintf(db->message, sizeof(db->message), "%s", message ? message : "");
}

static void
disconnect(struct db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
	db->nprepared = 0;
}

int
db_connect(struct db *db)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	disconnect(db);
	/* UTF-8 always: JSON answers and the audit hashes depend on it. */
	const char *keys[] = { "dbname", "options", "application_name", "connect_timeout",
		"client_encoding", NULL };
	const char *vals[] = { db->url, db->options, db->application_name, "3", "UTF8", NULL };
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		set_error(db, DB_UNAVAILABLE, "08006", NULL, PQerrorMessage(db->conn));
		disconnect(db);
		return -1;
	}
	return 0;
}

PGconn *
db_conn(struct db *db)
{
	return db->conn;
}

static enum db_error
classify(const char *state)
{
	if (state == NULL || state[0] == '\0')
		return DB_UNAVAILABLE; /* no SQLSTATE: the connection failed */
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	    strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
	    strcmp(state, "57014") == 0)
		return DB_UNAVAILABLE;
	/*
	 * The server lacks a resource for now — disk full (53100), memory, connection
	 * slots: the same request succeeds once there is room again, so the caller
	 * answers 503 and a job is postponed, not failed. A configured limit
	 * (53400, e.g. temp_file_limit) is not: the same request would hit it again.
	 */
	if (strcmp(state, "53000") == 0 || strcmp(state, "53100") == 0 ||
	    strcmp(state, "53200") == 0 || strcmp(state, "53300") == 0)
		return DB_UNAVAILABLE;
	if (strcmp(state, "23505") == 0 || strcmp(state, "40001") == 0 ||
	    strcmp(state, "40P01") == 0)
		return DB_CONFLICT;
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		return DB_INVALID;
	return DB_FAILED;
}

/* Takes ownership of res. Returns res if it succeeded, else NULL with the error recorded. */
static PGresult *
check_result(struct db *db, PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		db->error = DB_OK;
		return res;
	}
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	const char *msg =
	    res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(db->conn);
	set_error(db, classify(state), state, cons, msg);
	if (PQstatus(db->conn) == CONNECTION_BAD)
		set_error(db, DB_UNAVAILABLE, "08006", NULL, PQerrorMessage(db->conn));
	PQclear(res);
	if (db->error == DB_FAILED)
		log_error(NULL, "database error", json_pack("{s:s}", "sqlstate", db->sqlstate));
	return NULL;
}

static int
is_prepared(const struct db *db, const struct db_stmt *stmt)
{
	for (int i = 0; i < db->nprepared; i++)
		if (db->prepared[i] == stmt)
			return 1;
	return 0;
}

static int
usable(struct db *db)
{
	if (db->in_transaction && (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)) {
		set_error(db, DB_UNAVAILABLE, "08006", NULL, "connection lost in a transaction");
		return 0;
	}
	return db_connect(db) == 0;
}

static PGresult *
exec_once(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params)
{
	if (!usable(db))
		return NULL;
	if (!is_prepared(db, stmt)) {
		PGresult *res =
		    check_result(db, PQprepare(db->conn, stmt->name, stmt->sql, 0, NULL));
		if (res == NULL)
			return NULL;
		PQclear(res);
		if (db->nprepared == db->capprepared) {
			db->capprepared = db->capprepared ? 2 * db->capprepared : 32;
			db->prepared =
			    xrealloc(db->prepared, (size_t)db->capprepared * sizeof(*db->prepared));
		}
		db->prepared[db->nprepared++] = stmt;
	}
	return check_result(
	    db, PQexecPrepared(db->conn, stmt->name, nparams, params, NULL, NULL, 0));
}

PGresult *
db_exec(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params)
{
	int idle = !db->in_transaction &&
	           (db->conn == NULL || PQtransactionStatus(db->conn) == PQTRANS_IDLE);
	PGresult *res = exec_once(db, stmt, nparams, params);
	if (res == NULL && idle && db->conn != NULL && PQstatus(db->conn) == CONNECTION_BAD) {
		/* The server restarted since our last use: one retry on a new connection. */
		disconnect(db);
		res = exec_once(db, stmt, nparams, params);
	}
	if (res == NULL && db->conn != NULL && PQstatus(db->conn) == CONNECTION_BAD)
		disconnect(db);
	return res;
}

int
db_exec_script(struct db *db, const char *sql)
{
	if (!usable(db))
		return -1;
	PGresult *res = check_result(db, PQexec(db->conn, sql));
	if (res == NULL) {
		if (PQstatus(db->conn) == CONNECTION_BAD)
			disconnect(db);
		return -1;
	}
	PQclear(res);
	return 0;
}

int
db_begin(struct db *db)
{
	return db_begin_with(db, "BEGIN");
}

int
db_begin_with(struct db *db, const char *begin_sql)
{
	if (db->in_transaction) {
		set_error(db, DB_FAILED, "25001", NULL, "transaction already open");
		return -1;
	}
	if (db_exec_script(db, begin_sql) != 0)
		return -1;
	db->in_transaction = true;
	return 0;
}

int
db_commit(struct db *db)
{
	if (!usable(db))
		return -1;
	PGresult *res = check_result(db, PQexec(db->conn, "COMMIT"));
	if (res == NULL)
		return -1;
	/* COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK. */
	int committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
	PQclear(res);
	if (!committed) {
		set_error(db, DB_FAILED, "25P02", NULL, "transaction was aborted");
		return -1;
	}
	db->in_transaction = false;
	return 0;
}

void
db_rollback(struct db *db)
{
	int open = db->in_transaction;
	db->in_transaction = false;
	if (!open || db->conn == NULL || PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	enum db_error saved = db->error;
	char state[6], cons[64], msg[256];
	memcpy(state, db->sqlstate, sizeof(state));
	memcpy(cons, db->constraint, sizeof(cons));
	memcpy(msg, db->message, sizeof(msg));
	if (db_exec_script(db, "ROLLBACK") != 0)
		disconnect(db);
	/* Keep the error that made the caller roll back. */
	set_error(db, saved, state, cons, msg);
}

enum db_error
db_error_kind(const struct db *db)
{
	return db->error;
}

const char *
db_error_sqlstate(const struct db *db)
{
	return db->sqlstate;
}

const char *
db_error_message(const struct db *db)
{
	return db->message;
}

const char *
db_error_constraint(const struct db *db)
{
	return db->constraint;
}
