/*
 * cli — what the kqe subcommands share: how a database error reaches the
 * operator and who the operator is in the audit log.
 */
#ifndef KQE_ADMIN_CLI_H
#define KQE_ADMIN_CLI_H

#include "kqe/db.h"
#include "kqe/principal.h"

/*
 * Prints "where: database: MESSAGE (SQLSTATE XXXXX)" on stderr: the server's
 * primary message only (no DETAIL, which may quote the values written).
 */
void cli_db_error(const char *where, struct db *db);

/*
 * Connects db and sets the client encoding to UTF-8 (names are UTF-8, and the
 * audit chain hashes UTF-8 bytes). Prints why on stderr, prefixed with where,
 * if it cannot. 0 or -1.
 */
int cli_db_connect(struct db *db, const char *where) KQE_MUSTCHECK;

/* Fills p as the admin at this terminal: role admin, actor "cli:<login name>". */
void cli_principal(struct principal *p);

#endif
