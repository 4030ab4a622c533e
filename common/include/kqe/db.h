/*
 * db — one blocking libpq connection with lazily prepared statements.
 *
 * A struct db belongs to exactly one thread (each thread of kqe-api's
 * database pool owns one). It connects on first use and reconnects after the
 * server went away, so a process can start before its database is reachable.
 *
 * Nothing waits unbounded: connecting takes at most 3 s, a statement's
 * result is waited for at most statement_timeout + 1 s (the server cancels
 * it first, with a proper error) and never past the caller's deadline
 * (db_set_deadline). A server that does not answer in time — frozen, cut
 * off — loses the connection (DB_UNAVAILABLE) and opens the breaker, if one
 * is set, so the process's other connections fail at once until it probes
 * again. TCP keepalives find a server that vanished under an idle
 * connection. Statements are declared
 * once as `static const struct db_stmt` next to the code that uses them and are
 * prepared on a connection the first time they run there.
 */
#ifndef KQE_DB_H
#define KQE_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "kqe/util.h"

struct db;

struct db_stmt {
	const char *name; /* unique per process */
	const char *sql;
};

/* What went wrong, as far as a caller choosing a response needs to know. */
enum db_error {
	DB_OK = 0,
	DB_UNAVAILABLE, /* no connection, server shutting down, statement timeout, disk full */
	DB_CONFLICT, /* unique violation (23505) or serialization failure */
	DB_INVALID, /* other integrity or data errors (class 22, 23) */
	DB_FAILED, /* anything else: a bug or an operational problem */
};

/* Returns a new handle; does not connect yet. url is copied. */
struct db *db_new(const char *url, long statement_timeout_ms, const char *application_name);
void db_free(struct db *db);

/*
 * Turns PostgreSQL's JIT compilation off for this connection (before it
 * connects): for short statements whose estimated cost is high only because
 * the planner cannot see a LIMIT will end them early — a list page over a
 * million rows spent 13 of its 55 ms compiling.
 */
void db_no_jit(struct db *db);

/*
 * The circuit breaker shared by the process's connections (breaker.h);
 * NULL: none (the default).
 */
struct breaker;
void db_set_breaker(struct db *db, struct breaker *b);

/* No wait on this connection goes past deadline_ns (a now_ns() time); 0: none. */
void db_set_deadline(struct db *db, uint64_t deadline_ns);

/* Connects now if not connected. 0 or -1. */
int db_connect(struct db *db) KQE_MUSTCHECK;

/*
 * Runs a prepared statement with text parameters (NULL entries are SQL NULL).
 * Returns a new PGresult the caller must PQclear, or NULL on error (see
 * db_error_kind()). A statement outside a transaction is retried once on a
 * fresh connection if the old one had died.
 */
PGresult *db_exec(struct db *db, const struct db_stmt *stmt, int nparams,
    const char *const *params) KQE_MUSTCHECK;

/*
 * The same for bytes: lengths and formats as libpq's (format 1: the parameter
 * is lengths[i] bytes; NULL: every parameter is text), and the result in
 * binary when binary_result (a bytea column is then its bytes, not hex).
 */
PGresult *db_exec_bytes(struct db *db, const struct db_stmt *stmt, int nparams,
    const char *const *params, const int *lengths, const int *formats,
    bool binary_result) KQE_MUSTCHECK;

/* Runs SQL text (may hold several statements) without parameters. 0 or -1. */
int db_exec_script(struct db *db, const char *sql) KQE_MUSTCHECK;

/*
 * Transactions open lazily: db_begin* only records the transaction, and its
 * BEGIN (and setup statement) reach the server in one round trip with the
 * transaction's first statement (libpq's pipeline mode), so an error in
 * either shows at that statement. A transaction nothing ran in commits
 * without a round trip. If the connection turns out dead at that first
 * statement, it is retried once on a new one, as outside a transaction.
 */
int db_begin(struct db *db) KQE_MUSTCHECK;
/* Opens a transaction with the given statement, e.g. "BEGIN ISOLATION LEVEL REPEATABLE READ". */
int db_begin_with(struct db *db, const char *begin_sql) KQE_MUSTCHECK;
/* The same, then setup with text params (copied; at most 8), e.g. the caller's principal. */
int db_begin_setup(struct db *db, const char *begin_sql, const struct db_stmt *setup, int nparams,
    const char *const *params) KQE_MUSTCHECK;
int db_commit(struct db *db) KQE_MUSTCHECK;
/*
 * Ends the transaction: rolls back if one is open on the server, and in any
 * case lets the handle reconnect again. Never fails from the caller's view.
 */
void db_rollback(struct db *db);

enum db_error db_error_kind(const struct db *db);
/* SQLSTATE of the last error ("" if none) and the server's message (may hold data: do not log). */
const char *db_error_sqlstate(const struct db *db);
const char *db_error_message(const struct db *db);
/* Name of the constraint the last error was about, or "". */
const char *db_error_constraint(const struct db *db);

/*
 * The raw connection, or NULL when not connected (for COPY and other rare
 * needs); a transaction not yet sent is sent first.
 */
PGconn *db_conn(struct db *db);

#endif
