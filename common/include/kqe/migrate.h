/*
 * migrate — the numbered SQL files of proto/migrations, compiled into every
 * binary, applied in order, each in its own transaction, recorded in
 * schema_migrations with a checksum. A PostgreSQL advisory lock serialises
 * concurrent runs so two instances starting together cannot race.
 */
#ifndef KQE_MIGRATE_H
#define KQE_MIGRATE_H

#include "kqe/db.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

/* Version of the newest migration this binary knows. */
int migrate_latest(void);

/*
 * Applies every migration not yet applied. *applied gets how many were.
 * Fails if an applied migration's checksum differs from the compiled one.
 */
int migrate_run(struct db *db, int *applied) KQE_MUSTCHECK;

/* Highest applied version (0 if none). -1 if the database cannot be read. */
int migrate_current(struct db *db, int *version) KQE_MUSTCHECK;

#endif
