#include "caller.h"

#include <stdio.h>
#include <string.h>

#include "http.h"
#include "kqe/problem.h"

void
caller_scope(const struct principal *p, const char **office, const char **institute)
{
	*office = role_is_office(p->role) ? p->office_id : NULL;
	*institute = p->role == ROLE_INSTITUTE ? p->institute_id : NULL;
}

bool
caller_outside_office(const struct principal *p)
{
	return !role_is_office(p->role);
}

int
office_changed(struct db *db, const char *office, struct outbox_event *ev)
{
	char payload[128];
	snprintf(payload, sizeof(payload), "{\"office_id\":\"%s\"}", office);
	return outbox_add_event(db, "office_changed", payload, ev);
}

int
write_params(struct request *r, const char *const *allowed, int *dry_run, int *atomic)
{
	json_t *errors = json_array();
	*dry_run = 0; /* atomic keeps the caller's default */
	query_parse(r, allowed, errors);
	const char *names[] = { "dry_run", "atomic" };
	int *flags[] = { dry_run, atomic };
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		const char *v = query_get(r, names[i]);
		if (v == NULL)
			continue;
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			error_at_parameter(errors, names[i], "enum", "must be true or false");
		else if (flags[i] != NULL)
			*flags[i] = strcmp(v, "true") == 0;
	}
	return reply_query_errors(r, errors);
}

const char *
json_text(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

void
reply_read_audited(struct request *r, const char *id, caller_read_fn read, caller_render_fn render,
    const char *action, const char *resource)
{
	struct db *db = r->worker->db;
	char office[65];
	int failed;
	json_t *c = NULL;

	if (db_begin_as(db, &r->principal) != 0)
		goto fail;
	c = read(r, id, office, sizeof(office), &failed);
	if (failed)
		goto fail;
	if (c == NULL) {
		db_rollback(db);
		reply_not_found(r);
		return;
	}
	if (caller_outside_office(&r->principal) &&
	    audit_append(db, &r->principal, action, resource, id, office, r->id, NULL) != 0)
		goto fail;
	if (db_commit(db) != 0)
		goto fail;
	reply_resource(r, 200, render != NULL ? render(r, c) : c);
	return;
fail:
	json_decref(c);
	db_rollback(db);
	reply_db_error(r);
}
