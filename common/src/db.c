#include "kqe/db.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kqe/breaker.h"
#include "kqe/log.h"

/* How long past statement_timeout the client waits for the server's own cancel. */
#define DEADLINE_GRACE_NS 1000000000u
/* The longest a connection attempt may take (libpq's connect_timeout, and ours). */
#define CONNECT_TIMEOUT_S 3
#define CONNECT_TIMEOUT "3"
#define CONCLUSIVE_CONNECT_NS 500000000u
#define PENDING_PARAMS_MAX 8

struct db {
	char *url;
	char options[128];
	char *application_name;
	uint64_t statement_timeout_ns; /* 0: none */
	uint64_t deadline_ns; /* the caller's (a request's), now_ns() time; 0: none */
	struct breaker *breaker; /* shared by the process's connections; may be NULL */
	PGconn *conn;
	/*
	 * Set by db_begin, cleared by commit/rollback. While set, a lost
	 * connection is an error until the caller rolls back: reconnecting would
	 * silently run the rest of the transaction in autocommit.
	 */
	bool in_transaction;
	/*
	 * A transaction opened (db_begin_setup) but not yet sent: its BEGIN and setup statement
	 * go to the server in one pipeline with the next statement.
	 */
	struct {
		bool on;
		char begin_sql[64];
		const struct db_stmt *setup; /* may be NULL */
		int nparams;
		char *params[PENDING_PARAMS_MAX]; /* owned; NULL is SQL NULL */
	} pending;
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
	db->statement_timeout_ns = (uint64_t)statement_timeout_ms * 1000000u;
	/*
	 * client_connection_check_interval: a statement whose client is gone
	 * (it gave up at its deadline, or died) is cancelled within a second
	 * instead of running, and holding its locks, to its end.
	 */
	snprintf(db->options, sizeof(db->options),
	    "-c statement_timeout=%ld -c client_connection_check_interval=1000",
	    statement_timeout_ms);
	return db;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	for (int i = 0; i < db->pending.nparams; i++)
		free(db->pending.params[i]);
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

void
db_no_jit(struct db *db)
{
	size_t len = strlen(db->options);
	snprintf(db->options + len, sizeof(db->options) - len, " -c jit=off");
}

void
db_set_breaker(struct db *db, struct breaker *b)
{
	db->breaker = b;
}

void
db_set_deadline(struct db *db, uint64_t deadline_ns)
{
	db->deadline_ns = deadline_ns;
}

/* The earlier of the caller's deadline and now + extra (0: none); 0 if neither. */
static uint64_t
limit_after(const struct db *db, uint64_t extra_ns)
{
	uint64_t limit = extra_ns != 0 ? now_ns() + extra_ns : 0;
	if (db->deadline_ns != 0 && (limit == 0 || db->deadline_ns < limit))
		limit = db->deadline_ns;
	return limit;
}

/*
 * Waits until the connection's socket is ready for events or limit (a
 * now_ns() time, 0: none) passes. 1 ready, 0 timed out, -1 error.
 */
static int
wait_socket(PGconn *conn, short events, uint64_t limit)
{
	struct pollfd p = { .fd = PQsocket(conn), .events = events };
	if (p.fd < 0)
		return -1;
	for (;;) {
		int ms = -1;
		if (limit != 0) {
			uint64_t now = now_ns();
			if (now >= limit)
				return 0;
			ms = (int)((limit - now + 999999) / 1000000);
		}
		int rc = poll(&p, 1, ms);
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/*
 * The server did not answer in time: the connection is dropped (its state is
 * unknown). The breaker opens only when the server itself is in doubt — no
 * connection within the connect timeout; a statement that is merely slow
 * (a lock wait) says nothing about the others.
 */
static void
missed_deadline(struct db *db, const char *what, bool server_in_doubt)
{
	set_error(db, DB_UNAVAILABLE, "08006", NULL, what);
	disconnect(db);
	if (server_in_doubt)
		breaker_fail(db->breaker);
	log_warn(NULL, "database did not answer in time", json_pack("{s:s}", "waiting_for", what));
}

int
db_connect(struct db *db)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	disconnect(db);
	if (!breaker_allow(db->breaker)) {
		set_error(db, DB_UNAVAILABLE, "08006", NULL, "the database failed recently");
		return -1;
	}
	/*
	 * UTF-8 always: JSON answers and the audit hashes depend on it. TCP
	 * keepalives find a server that vanished under an idle connection.
	 */
	const char *keys[] = { "dbname", "options", "application_name", "connect_timeout",
		"client_encoding", "keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", NULL };
	const char *vals[] = { db->url, db->options, db->application_name, CONNECT_TIMEOUT, "UTF8",
		"1", "10", "5", "3", NULL };
	/* Connecting step by step, so the caller's deadline bounds it too. */
	db->conn = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	uint64_t start = now_ns();
	uint64_t limit = limit_after(db, (uint64_t)CONNECT_TIMEOUT_S * 1000000000u);
	/*
	 * A connection takes milliseconds: one not made in half a second puts the
	 * server in doubt. One cut short by a request with little time left does not.
	 */
	bool conclusive = limit > start && limit - start >= CONCLUSIVE_CONNECT_NS;
	while (db->conn != NULL && PQstatus(db->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		int ready =
		    wait_socket(db->conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, limit);
		if (ready == 0) {
			missed_deadline(db, "connection", conclusive);
			return -1;
		}
		st = ready > 0 ? PQconnectPoll(db->conn) : PGRES_POLLING_FAILED;
	}
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK ||
	    PQsetnonblocking(db->conn, 1) != 0) {
		set_error(db, DB_UNAVAILABLE, "08006", NULL,
		    db->conn != NULL ? PQerrorMessage(db->conn) : "out of memory");
		disconnect(db);
		breaker_fail(db->breaker);
		return -1;
	}
	breaker_ok(db->breaker);
	return 0;
}

static bool
failed(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
}

/* Sends what libpq holds, waiting no longer than limit. false: the error is recorded. */
static bool
flush_output(struct db *db, uint64_t limit)
{
	int flushed;
	while ((flushed = PQflush(db->conn)) == 1) {
		int ready = wait_socket(db->conn, POLLOUT | POLLIN, limit);
		if (ready == 0) {
			missed_deadline(db, "sending a statement", false);
			return false;
		}
		if (ready < 0 || PQconsumeInput(db->conn) == 0)
			break; /* PQgetResult reports the broken connection */
	}
	return true;
}

/*
 * The next result (or NULL, the end of one statement's results), waiting no
 * longer than limit. On a missed limit the connection is dropped and
 * *dropped set, with the error recorded.
 */
static PGresult *
next_result(struct db *db, uint64_t limit, bool *dropped)
{
	while (PQisBusy(db->conn)) {
		int ready = wait_socket(db->conn, POLLIN, limit);
		if (ready == 0) {
			missed_deadline(db, "a statement's result", false);
			*dropped = true;
			return NULL;
		}
		if (ready < 0 || PQconsumeInput(db->conn) == 0)
			break; /* PQgetResult reports the broken connection */
	}
	return PQgetResult(db->conn);
}

/* How long the results of what is sent now may take: the statement timeout plus a grace. */
static uint64_t
result_limit(const struct db *db)
{
	return limit_after(
	    db, db->statement_timeout_ns != 0 ? db->statement_timeout_ns + DEADLINE_GRACE_NS : 0);
}

/*
 * The results of what was just sent, waited for no longer than the
 * statement's own timeout plus a grace, nor past the caller's deadline: a
 * server that stopped answering (frozen, cut off) costs the caller its
 * deadline, never the thread. As PQexec: the first error, else the last
 * result. NULL with the error recorded if nothing came in time.
 */
static PGresult *
await_result(struct db *db, int sent)
{
	uint64_t limit = result_limit(db);
	if (!sent) {
		set_error(db, DB_UNAVAILABLE, "08006", NULL, PQerrorMessage(db->conn));
		return NULL;
	}
	if (!flush_output(db, limit))
		return NULL;
	PGresult *keep = NULL, *res;
	bool dropped = false;
	while ((res = next_result(db, limit, &dropped)) != NULL) {
		if (keep != NULL && failed(keep)) {
			PQclear(res);
		} else {
			PQclear(keep);
			keep = res;
		}
		if (PQstatus(db->conn) == CONNECTION_BAD)
			break;
	}
	if (dropped) {
		PQclear(keep);
		return NULL;
	}
	if (PQstatus(db->conn) != CONNECTION_BAD)
		breaker_ok(db->breaker);
	return keep;
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
	if (res == NULL && db->conn == NULL)
		return NULL; /* dropped (a missed deadline): the error is recorded */
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
	if (db->in_transaction && !db->pending.on &&
	    (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)) {
		set_error(db, DB_UNAVAILABLE, "08006", NULL, "connection lost in a transaction");
		return 0;
	}
	return db_connect(db) == 0;
}

/* A statement's binary side: lengths and formats of its parameters (NULL: all text), and
 * whether the result is binary. */
struct binary {
	const int *lengths, *formats;
	int result_format;
};

static void
mark_prepared(struct db *db, const struct db_stmt *stmt)
{
	if (db->nprepared == db->capprepared) {
		db->capprepared = db->capprepared ? 2 * db->capprepared : 32;
		db->prepared =
		    xrealloc(db->prepared, (size_t)db->capprepared * sizeof(*db->prepared));
	}
	db->prepared[db->nprepared++] = stmt;
}

/* What one command of a pipeline was, to know what its result means. */
enum piped { PIPED_BEGIN, PIPED_PREPARE_SETUP, PIPED_PREPARE_STMT, PIPED_SETUP, PIPED_STMT };

/* Queues the pending transaction's commands and stmt (may be NULL); false if libpq refused. */
static bool
send_pipeline(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params,
    const struct binary *bin, enum piped *sent, int *nsent)
{
	PGconn *c = db->conn;
	const struct db_stmt *setup = db->pending.setup;
	int n = 0;
	bool ok = PQsendQueryParams(c, db->pending.begin_sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
	sent[n++] = PIPED_BEGIN;
	if (ok && setup != NULL && !is_prepared(db, setup)) {
		ok = PQsendPrepare(c, setup->name, setup->sql, 0, NULL) == 1;
		sent[n++] = PIPED_PREPARE_SETUP;
	}
	if (ok && stmt != NULL && stmt != setup && !is_prepared(db, stmt)) {
		ok = PQsendPrepare(c, stmt->name, stmt->sql, 0, NULL) == 1;
		sent[n++] = PIPED_PREPARE_STMT;
	}
	if (ok && setup != NULL) {
		ok = PQsendQueryPrepared(c, setup->name, db->pending.nparams,
		         (const char *const *)db->pending.params, NULL, NULL, 0) == 1;
		sent[n++] = PIPED_SETUP;
	}
	if (ok && stmt != NULL) {
		ok = PQsendQueryPrepared(c, stmt->name, nparams, params, bin ? bin->lengths : NULL,
		         bin ? bin->formats : NULL, bin ? bin->result_format : 0) == 1;
		sent[n++] = PIPED_STMT;
	}
	*nsent = n;
	return ok && PQpipelineSync(c) == 1;
}

/*
 * Reads the results of a pipeline of nsent commands and its sync. Returns
 * stmt's result, or the first error; *dropped if the connection is gone.
 */
static PGresult *
read_pipeline(struct db *db, const struct db_stmt *stmt, const enum piped *sent, int nsent,
    uint64_t limit, bool *dropped)
{
	PGresult *keep = NULL, *error = NULL;
	for (int i = 0; i < nsent && !*dropped; i++) {
		PGresult *res = next_result(db, limit, dropped);
		if (res == NULL || PQstatus(db->conn) == CONNECTION_BAD) {
			PQclear(error);
			error = res; /* NULL: reported as a broken connection */
			*dropped = *dropped || res == NULL || PQstatus(db->conn) == CONNECTION_BAD;
			break;
		}
		bool ok = !failed(res);
		if (ok && sent[i] == PIPED_PREPARE_SETUP)
			mark_prepared(db, db->pending.setup);
		if (ok && sent[i] == PIPED_PREPARE_STMT)
			mark_prepared(db, stmt);
		if (!ok && PQresultStatus(res) != PGRES_PIPELINE_ABORTED && error == NULL)
			error = res;
		else if (ok && sent[i] == PIPED_STMT)
			keep = res;
		else
			PQclear(res);
		PGresult *more = next_result(db, limit, dropped); /* NULL: the command's end */
		if (more != NULL) {
			PQclear(more);
			*dropped = true; /* out of step with the server */
		}
	}
	if (!*dropped) {
		PGresult *sync = next_result(db, limit, dropped);
		*dropped = *dropped || PQresultStatus(sync) != PGRES_PIPELINE_SYNC;
		PQclear(sync);
	}
	if (error != NULL || *dropped) {
		PQclear(keep);
		return error;
	}
	return keep;
}

/*
 * Sends the pending transaction's BEGIN and setup together with stmt (NULL:
 * none) in one round trip, using libpq's pipeline mode, and returns stmt's
 * result as exec_once does (a PGRES_COMMAND_OK of the setup if stmt is NULL).
 */
static PGresult *
exec_pipelined(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params,
    const struct binary *bin)
{
	enum piped sent[5];
	int nsent = 0;
	bool dropped = false;
	db->pending.on = false;
	if (PQenterPipelineMode(db->conn) != 1 ||
	    !send_pipeline(db, stmt, nparams, params, bin, sent, &nsent)) {
		set_error(db, DB_UNAVAILABLE, "08006", NULL, PQerrorMessage(db->conn));
		disconnect(db);
		return NULL;
	}
	uint64_t limit = result_limit(db);
	if (!flush_output(db, limit))
		return NULL;
	PGresult *res = read_pipeline(db, stmt, sent, nsent, limit, &dropped);
	if (dropped && db->conn != NULL) {
		/* Broken, or out of step with the server: nothing on it can be trusted. */
		PQclear(res);
		set_error(db, DB_UNAVAILABLE, "08006", NULL, "connection lost in a pipeline");
		disconnect(db);
		return NULL;
	}
	if (db->conn == NULL) {
		PQclear(res);
		return NULL; /* the missed deadline is recorded */
	}
	PQexitPipelineMode(db->conn);
	if (res == NULL && stmt == NULL)
		res = PQmakeEmptyPGresult(db->conn, PGRES_COMMAND_OK);
	return check_result(db, res);
}

static PGresult *
exec_once(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params,
    const struct binary *bin)
{
	if (!usable(db))
		return NULL;
	if (db->pending.on)
		return exec_pipelined(db, stmt, nparams, params, bin);
	if (!is_prepared(db, stmt)) {
		PGresult *res = check_result(
		    db, await_result(db, PQsendPrepare(db->conn, stmt->name, stmt->sql, 0, NULL)));
		if (res == NULL)
			return NULL;
		PQclear(res);
		mark_prepared(db, stmt);
	}
	return check_result(
	    db, await_result(db, PQsendQueryPrepared(db->conn, stmt->name, nparams, params,
	                             bin ? bin->lengths : NULL, bin ? bin->formats : NULL,
	                             bin ? bin->result_format : 0)));
}

static PGresult *
exec_retried(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params,
    const struct binary *bin)
{
	/* Nothing of this transaction has reached the server yet (or there is none). */
	bool fresh = db->pending.on || !db->in_transaction;
	bool pending = db->pending.on;
	int idle = fresh && (db->conn == NULL || PQtransactionStatus(db->conn) == PQTRANS_IDLE);
	PGresult *res = exec_once(db, stmt, nparams, params, bin);
	if (res == NULL && idle && db->error == DB_UNAVAILABLE &&
	    (db->deadline_ns == 0 || now_ns() < db->deadline_ns) &&
	    (db->conn == NULL ? pending : PQstatus(db->conn) == CONNECTION_BAD)) {
		/* The server restarted since our last use: one retry on a new connection. */
		disconnect(db);
		db->pending.on = pending;
		res = exec_once(db, stmt, nparams, params, bin);
	}
	if (res == NULL && db->conn != NULL && PQstatus(db->conn) == CONNECTION_BAD)
		disconnect(db);
	return res;
}

PGresult *
db_exec(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params)
{
	return exec_retried(db, stmt, nparams, params, NULL);
}

PGresult *
db_exec_bytes(struct db *db, const struct db_stmt *stmt, int nparams, const char *const *params,
    const int *lengths, const int *formats, bool binary_result)
{
	const struct binary bin = { lengths, formats, binary_result ? 1 : 0 };
	return exec_retried(db, stmt, nparams, params, &bin);
}

/* Sends a pending transaction's BEGIN and setup now, before something that cannot go with them. */
static int
send_pending(struct db *db)
{
	if (!db->pending.on)
		return 0;
	PGresult *res = exec_retried(db, NULL, 0, NULL, NULL);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

PGconn *
db_conn(struct db *db)
{
	if (send_pending(db) != 0)
		return NULL;
	return db->conn;
}

int
db_exec_script(struct db *db, const char *sql)
{
	if (send_pending(db) != 0 || !usable(db))
		return -1;
	PGresult *res = check_result(db, await_result(db, PQsendQuery(db->conn, sql)));
	if (res == NULL) {
		if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_BAD)
			disconnect(db);
		return -1;
	}
	PQclear(res);
	return 0;
}

int
db_begin(struct db *db)
{
	return db_begin_setup(db, "BEGIN", NULL, 0, NULL);
}

int
db_begin_with(struct db *db, const char *begin_sql)
{
	return db_begin_setup(db, begin_sql, NULL, 0, NULL);
}

int
db_begin_setup(struct db *db, const char *begin_sql, const struct db_stmt *setup, int nparams,
    const char *const *params)
{
	if (db->in_transaction) {
		set_error(db, DB_FAILED, "25001", NULL, "transaction already open");
		return -1;
	}
	if (nparams > PENDING_PARAMS_MAX || strlen(begin_sql) >= sizeof(db->pending.begin_sql)) {
		set_error(db, DB_FAILED, "54000", NULL, "transaction setup too large");
		return -1;
	}
	for (int i = 0; i < db->pending.nparams; i++)
		free(db->pending.params[i]);
	for (int i = 0; i < nparams; i++)
		db->pending.params[i] = params[i] != NULL ? xstrdup(params[i]) : NULL;
	db->pending.nparams = nparams;
	db->pending.setup = setup;
	snprintf(db->pending.begin_sql, sizeof(db->pending.begin_sql), "%s", begin_sql);
	db->pending.on = true;
	db->in_transaction = true;
	return 0;
}

int
db_commit(struct db *db)
{
	if (db->pending.on) { /* nothing was sent: there is nothing to commit */
		db->pending.on = false;
		db->in_transaction = false;
		return 0;
	}
	if (!usable(db))
		return -1;
	PGresult *res = check_result(db, await_result(db, PQsendQuery(db->conn, "COMMIT")));
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
	db->pending.on = false;
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
