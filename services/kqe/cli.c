#include "cli.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
cli_db_error(const char *where, struct db *db)
{
	const char *msg = db_error_message(db);
	int len = (int)strcspn(msg, "\n");
	const char *state = db_error_sqlstate(db);

	if (state[0] != '\0')
		fprintf(stderr, "%s: database: %.*s (SQLSTATE %s)\n", where, len, msg, state);
	else
		fprintf(stderr, "%s: database: %.*s\n", where, len, msg);
}

int
cli_db_connect(struct db *db, const char *where)
{
	if (db_connect(db) != 0 || db_exec_script(db, "SET client_encoding = 'UTF8'") != 0) {
		char prefix[128];
		snprintf(prefix, sizeof(prefix), "%s: cannot connect", where);
		cli_db_error(prefix, db);
		return -1;
	}
	return 0;
}

void
cli_principal(struct principal *p)
{
	/* The effective user: who can act with this process's rights, whatever $USER says. */
	const struct passwd *pw = getpwuid(geteuid());

	memset(p, 0, sizeof(*p));
	p->role = ROLE_ADMIN;
	snprintf(p->actor, sizeof(p->actor), "cli:%s",
	    pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0' ? pw->pw_name : "unknown");
}
