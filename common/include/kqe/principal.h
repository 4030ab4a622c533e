/*
 * principal — who acts, and how that reaches PostgreSQL.
 *
 * A principal is a role plus what the role is bound to (an office, a region,
 * an institute, a provider or a programme). db_begin_as() opens a transaction and sets the
 * principal as transaction-local settings (kqe.role, kqe.office_id, kqe.region, kqe.institute_id)
 * that the row-level security policies read, so the database enforces tenant isolation a second
 * time, independent of the filters the API puts in its queries.
 */
#ifndef KQE_PRINCIPAL_H
#define KQE_PRINCIPAL_H

#include <stdbool.h>

#include <jansson.h>

#include "kqe/db.h"
#include "kqe/util.h"

enum role {
	ROLE_NONE, /* not authenticated */
	ROLE_OFFICE_STAFF,
	ROLE_OFFICE_LEAD,
	ROLE_INSTITUTE,
	ROLE_ADVISOR,
	ROLE_MINISTRY,
	ROLE_ADMIN,
	ROLE_PROVIDER_STAFF, /* staff of a free provider of foster-care services (§ 10) */
	ROLE_PROGRAMME_TEAM, /* runs one programme: its calls, selection, clusters */
	ROLE_PROFESSIONAL, /* an approved professional of one programme (its protected area) */
	ROLE_SYSTEM, /* kqe-aggregator: reads across offices to build statistics */
	ROLE_COUNT
};

/* A set of roles as bits, for tables of who may do what. */
#define ROLE_BIT(role) (1u << (role))

struct principal {
	enum role role;
	char actor[80]; /* "token:<uuid>", "jwt:<iss>|<sub>", "cli:<user>" — never a secret */
	char office_id[65]; /* office roles */
	char region[4]; /* advisor */
	char institute_id[65]; /* institute */
	char provider_id[65]; /* provider_staff */
	char programme_id[37]; /* programme_team, professional */
	char professional_id[37]; /* professional: its registration */
};

/* The roles a token or JWT may carry, first to last. */
#define ROLE_API_FIRST ROLE_OFFICE_STAFF
#define ROLE_API_LAST ROLE_PROFESSIONAL

const char *role_name(enum role role);
/* Returns 0 and sets *out for one of the API roles; -1 otherwise. */
int role_parse(const char *name, enum role *out) KQE_MUSTCHECK;
bool role_is_office(enum role role);

/* BEGIN and set the principal for this transaction (RLS reads it), both sent with the
 * transaction's first statement (db_begin_setup). 0 or -1. */
int db_begin_as(struct db *db, const struct principal *p) KQE_MUSTCHECK;

/* Sets the principal in the transaction the caller already opened. 0 or -1. */
int db_set_principal(struct db *db, const struct principal *p) KQE_MUSTCHECK;

/*
 * Appends one hash-chained audit entry inside the caller's transaction.
 * office_id is the office whose data was touched (NULL if none);
 * details (borrowed, may be NULL) must hold no personal data.
 */
int audit_append(struct db *db, const struct principal *p, const char *action, const char *resource,
    const char *resource_id, const char *office_id, const char *request_id,
    const json_t *details) KQE_MUSTCHECK;

#endif
