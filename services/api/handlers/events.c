/*
 * Events of programmes and registrations for them (docs/programmes.md,
 * Events): a workshop, an online seminar, a network meeting, … on one date or
 * a series of dates; places, a limit per office, a waiting list that moves up
 * when a place frees, cancellation, attendance per date and a short feedback
 * after the event. The programme's team keeps the events; offices register
 * their people (and the team anyone). Invariants: migration 0024_events.sql.
 * The calendar export: handlers/calendar.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/crypto.h"
#include "kqe/problem.h"

static const char *const event_statuses[] = { "scheduled", "cancelled", NULL };

static const struct field_spec date_fields[] = {
	{ .name = "starts_at", .type = FIELD_TIMESTAMP, .required = true },
	{ .name = "ends_at", .type = FIELD_TIMESTAMP, .required = true },
};

#define DATES_MAX 24
static const struct field_spec event_fields[] = {
	{ .name = "programme_id", .type = FIELD_UUID, .required = true, .immutable = true },
	FIELD_SPEC_CODE("kind", codelist_event_kind_values),
	{ .name = "title", .type = FIELD_STRING, .required = true, .min = 1, .max = 200 },
	{ .name = "description", .type = FIELD_STRING, .nullable = true, .min = 1, .max = 5000 },
	{ .name = "online", .type = FIELD_BOOLEAN, .required = true },
	/* Where it takes place; required unless online. */
	{ .name = "place", .type = FIELD_STRING, .nullable = true, .min = 1, .max = 200 },
	{ .name = "capacity", .type = FIELD_INTEGER, .required = true, .min = 1, .max = 10000 },
	/* At most this many people from one office (e.g. 30 per model municipality). */
	{ .name = "per_office_limit",
	    .type = FIELD_INTEGER,
	    .nullable = true,
	    .min = 1,
	    .max = 10000 },
	/* Open only to offices selected in the programme. */
	{ .name = "participants_only", .type = FIELD_BOOLEAN, .required = true },
	/* One date, or a series: five two-day meetings, one every two months. */
	{ .name = "dates",
	    .type = FIELD_LIST,
	    .required = true,
	    .min = 1,
	    .max = DATES_MAX,
	    .fields = date_fields,
	    .nfields = ARRAY_LEN(date_fields) },
	{ .name = "status", .type = FIELD_ENUM, .update_only = true, .values = event_statuses },
};

static void
event_rules(const json_t *doc, bool creating, const char *prefix, json_t *errors)
{
	(void)creating;
	if (json_is_false(json_object_get(doc, "online")) &&
	    !json_is_string(json_object_get(doc, "place")))
		rule_error(
		    errors, prefix, "/place", "required", "is required for an event not online");
}

#define EVENT_JSON                                                                                 \
	"json_build_object('id', e.id, 'programme_id', e.programme_id, 'kind', e.kind,"            \
	" 'title', e.title, 'description', e.description, 'online', e.online, 'place', e.place,"   \
	" 'capacity', e.capacity, 'per_office_limit', e.per_office_limit,"                         \
	" 'participants_only', e.participants_only, 'dates', e.dates,"                             \
	" 'starts_at', kqe_ts(e.starts_at), 'ends_at', kqe_ts(e.ends_at), 'status', e.status,"     \
	" 'registered', c.registered, 'waitlisted', c.waitlisted, 'version', e.version,"           \
	" 'created_at', kqe_ts(e.created_at), 'updated_at', kqe_ts(e.updated_at))::text"
#define EVENT_FROM " FROM events e, kqe_event_counts(e.id, NULL) c"

static const struct db_stmt stmt_event_get = { "event_get",
	"SELECT '', " EVENT_JSON EVENT_FROM " WHERE e.id = $1::uuid" };
/* $1 programme_id, $2 kind, $3 from (ends after), $4 updated_since, $5 $6 cursor, $7 limit */
static const struct db_stmt stmt_event_list = { "event_list",
	"SELECT kqe_ts(e.updated_at), e.id::text, '', " EVENT_JSON EVENT_FROM
	" WHERE ($1::uuid IS NULL OR e.programme_id = $1) AND ($2::text IS NULL OR e.kind = $2)"
	" AND ($3::timestamptz IS NULL OR e.ends_at >= $3)"
	" AND ($4::timestamptz IS NULL OR e.updated_at >= $4)"
	" AND ($5::timestamptz IS NULL OR (e.updated_at, e.id) > ($5, $6::uuid))"
	" ORDER BY e.updated_at, e.id LIMIT $7" };
/* Then: the largest number registered from one office; whether attendance was recorded. */
static const struct db_stmt stmt_event_lock = { "event_lock",
	"SELECT '', e.version, " EVENT_JSON ","
	" (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM event_registrations r"
	"  WHERE r.event_id = e.id AND r.status = 'registered' AND r.office_id IS NOT NULL"
	"  GROUP BY r.office_id) o),"
	" EXISTS (SELECT FROM event_registrations r WHERE r.event_id = e.id"
	"  AND true = ANY (r.attended))" EVENT_FROM " WHERE e.id = $1::uuid FOR UPDATE OF e" };
/* Dates out of order ($1 the dates): index and which end is wrong. */
static const struct db_stmt stmt_dates_check = { "event_dates_check",
	"SELECT (n - 1)::text, CASE WHEN e <= s THEN 'ends_at' ELSE 'starts_at' END FROM"
	" (SELECT n, (d->>'starts_at')::timestamptz AS s, (d->>'ends_at')::timestamptz AS e,"
	"  lag((d->>'ends_at')::timestamptz) OVER (ORDER BY n) AS prev"
	"  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(d, n)) y"
	" WHERE e <= s OR s < prev ORDER BY n" };
/* The dates in UTC as the API writes timestamps, the first start and the last end. */
#define EVENT_DATES                                                                                 \
	"(SELECT jsonb_agg(jsonb_build_object('starts_at', kqe_ts((d->>'starts_at')::timestamptz)," \
	" 'ends_at', kqe_ts((d->>'ends_at')::timestamptz)) ORDER BY n)"                             \
	" FROM jsonb_array_elements($9::jsonb) WITH ORDINALITY AS x(d, n)),"                        \
	" (SELECT min((d->>'starts_at')::timestamptz) FROM jsonb_array_elements($9::jsonb) d),"     \
	" (SELECT max((d->>'ends_at')::timestamptz) FROM jsonb_array_elements($9::jsonb) d)"
static const struct db_stmt stmt_event_insert = { "event_insert",
	"INSERT INTO events (id, programme_id, kind, title, description, online, place, capacity,"
	" per_office_limit, participants_only, dates, starts_at, ends_at, status)"
	" SELECT $1::uuid, $2::uuid, $3, $4, $5, $6::boolean, $7, $8::integer, $10::integer,"
	" $11::boolean, " EVENT_DATES ", coalesce($12, 'scheduled')" };
static const struct db_stmt stmt_event_update = { "event_update",
	"UPDATE events SET (kind, title, description, online, place, capacity, per_office_limit,"
	" participants_only, dates, starts_at, ends_at, status, version, updated_at) ="
	" (SELECT $3, $4, $5, $6::boolean, $7, $8::integer, $10::integer, $11::boolean, " EVENT_DATES
	", coalesce($12, 'scheduled'), version + 1, now())"
	" WHERE id = $1::uuid AND programme_id = $2::uuid" };
static const struct db_stmt stmt_move_up = { "event_move_up",
	"SELECT id::text, person_enc FROM kqe_event_move_up($1::uuid)" };

/* The dates follow each other, each ending after it starts; 0, or -1 if the database failed. */
static int
dates_check(struct write *w, const char *dates)
{
	const char *params[] = { dates };
	PGresult *res = db_exec(w->r->db, &stmt_dates_check, 1, params);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		char ptr[64];
		bool end = strcmp(PQgetvalue(res, i, 1), "ends_at") == 0;
		snprintf(
		    ptr, sizeof(ptr), "/dates/%s/%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		write_error(w, ptr, "range",
		    end ? "must be after starts_at"
		        : "must not be before the end of the date before it");
	}
	PQclear(res);
	return 0;
}

static const struct db_stmt stmt_mail_event = { "event_mail_facts",
	"SELECT e.title, to_char(e.starts_at AT TIME ZONE 'Europe/Berlin', 'DD.MM.YYYY HH24:MI'),"
	" jsonb_array_length(e.dates), CASE WHEN e.online THEN 'online' ELSE e.place END,"
	" kqe_waitlist_position($2::uuid)"
	" FROM events e WHERE e.id = $1::uuid" };

/* What a registration's person is told, by the kind of mail. */
static const struct registration_text {
	const char *kind, *mail_kind, *headline, *what;
} registration_texts[] = {
	{ "registered", "event_registered", "Anmeldung bestätigt",
	    "Sie sind für die folgende Veranstaltung angemeldet." },
	{ "waitlisted", "event_waitlisted", "Warteliste",
	    "Die Veranstaltung ist ausgebucht; Sie stehen auf der Warteliste. Wird ein Platz "
	    "frei, rücken Sie in der Reihenfolge der Anmeldung nach und erhalten eine "
	    "Nachricht." },
	{ "moved_up", "event_moved_up", "Platz frei geworden",
	    "Ein Platz ist frei geworden: Sie sind jetzt für die folgende Veranstaltung "
	    "angemeldet." },
};

/*
 * The person of registration id: the JSON of person_enc (the stored
 * envelope) or, if NULL, the document's. A new reference; NULL if an
 * envelope cannot be opened (decryption logs it).
 */
static json_t *
registration_addressee(struct write *w, const char *id, const char *person_enc)
{
	if (person_enc == NULL)
		return json_incref(json_object_get(w->doc, "person"));
	char aad[96];
	size_t len;
	snprintf(aad, sizeof(aad), "event_registration:%s:person", id);
	char *text = keyring_decrypt(w->r->worker->keyring, person_enc, aad, &len);
	json_t *person = text != NULL ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return person;
}

/*
 * The mail a registration's person gets (kind: registered, waitlisted, moved_up), to the
 * address of person (its JSON) or, if NULL, of person_enc (the stored envelope).
 */
static int
registration_mail(struct write *w, const char *id, const char *person_enc, const char *kind)
{
	const struct registration_text *t = &registration_texts[0];
	while (strcmp(t->kind, kind) != 0)
		t++;
	json_t *person = registration_addressee(w, id, person_enc);
	const char *event = doc_text(w, "event_id");
	if (event == NULL)
		event = w->id; /* an event's own update moved people up */
	const char *params[] = { event, id };
	PGresult *res = db_exec(w->r->db, &stmt_mail_event, 2, params);
	if (res == NULL || PQntuples(res) != 1 || person == NULL) {
		PQclear(res);
		json_decref(person);
		return res == NULL ? -1 : 0; /* an envelope that cannot be opened was logged */
	}
	const char *title = PQgetvalue(res, 0, 0), *place = PQgetvalue(res, 0, 3);
	int dates = atoi(PQgetvalue(res, 0, 2));
	char subject[160], when[96];
	if (dates > 1)
		snprintf(when, sizeof(when), "%s Uhr (erster von %d Terminen)",
		    PQgetvalue(res, 0, 1), dates);
	else
		snprintf(when, sizeof(when), "%s Uhr", PQgetvalue(res, 0, 1));
	snprintf(subject, sizeof(subject), "%s: %.100s", t->headline, title);
	char *body = xasprintf("Guten Tag %s %s,\n\n%s\n\nVeranstaltung: %s\nBeginn: %s\n"
	                       "Ort: %s\nAnmeldung: %s\n\nAbmelden können Sie sich über Ihr "
	                       "Jugendamt oder das Programmteam.\n",
	    json_string_value(json_object_get(person, "first_name")),
	    json_string_value(json_object_get(person, "last_name")), t->what, title, when, place,
	    id);
	int rc = write_mail(
	    w, t->mail_kind, json_string_value(json_object_get(person, "email")), subject, body);
	free(body);
	PQclear(res);
	json_decref(person);
	return rc;
}

/* Places freed: who waits and fits moves up, in order; their ids go into the audit entry. */
static int
event_move_up(struct write *w, const char *event)
{
	json_t *moved = json_array();
	for (int i = 0; i < 10000; i++) {
		const char *params[] = { event };
		PGresult *res = db_exec(w->r->db, &stmt_move_up, 1, params);
		if (res == NULL) {
			json_decref(moved);
			return -1;
		}
		bool none = PQntuples(res) == 0;
		if (!none) {
			json_array_append_new(moved, json_string(PQgetvalue(res, 0, 0)));
			if (registration_mail(
			        w, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), "moved_up") != 0) {
				PQclear(res);
				json_decref(moved);
				return -1;
			}
		}
		PQclear(res);
		if (none)
			break;
	}
	if (json_array_size(moved) > 0)
		json_object_set(w->details, "moved_up", moved);
	json_decref(moved);
	return 0;
}

/* $2… of stmt_event_insert and stmt_event_update. */
static const char *const event_columns[] = { "programme_id", "kind", "title", "description",
	"online", "place", "capacity", "dates", "per_office_limit", "participants_only", "status",
	NULL };

static int
event_write(struct write *w, const struct db_stmt *stmt)
{
	if (dates_check(w, doc_json(w, "dates")) != 0)
		return -1;
	if (json_array_size(w->errors) > 0)
		return 0;
	return write_document(w, stmt, event_columns);
}

static int
event_create(struct write *w)
{
	uuid_v4(w->id);
	return event_write(w, &stmt_event_insert);
}

/*
 * Nobody registered loses a place: capacity and the per-office limit never drop below
 * who is registered; once attendance is recorded the number of dates stays. More places
 * let the waiting list move up.
 */
static int
event_update(struct write *w)
{
	if (write_lock_key(w, w->id) != 0)
		return -1;
	json_int_t registered = json_integer_value(json_object_get(w->current, "registered"));
	json_int_t capacity = json_integer_value(json_object_get(w->doc, "capacity"));
	const json_t *limit = json_object_get(w->doc, "per_office_limit");
	char detail[200];
	if (capacity < registered) {
		snprintf(detail, sizeof(detail),
		    "%lld people are registered; the places cannot be fewer.",
		    (long long)registered);
		write_refuse(w, 409, "/capacity", "registered", detail);
		return 0;
	}
	if (json_is_integer(limit) && json_integer_value(limit) < atoll(row_value(w, 3))) {
		snprintf(detail, sizeof(detail),
		    "%s people from one office are registered; the limit cannot be lower.",
		    row_value(w, 3));
		write_refuse(w, 409, "/per_office_limit", "registered", detail);
		return 0;
	}
	if (write_changes(w, "dates") && strcmp(row_value(w, 4), "t") == 0 &&
	    json_array_size(json_object_get(w->doc, "dates")) !=
	        json_array_size(json_object_get(w->current, "dates"))) {
		write_refuse(w, 409, "/dates", "attended",
		    "Attendance is recorded per date; the number of dates cannot change.");
		return 0;
	}
	int rc = event_write(w, &stmt_event_update);
	if (rc != 0 || json_array_size(w->errors) > 0)
		return rc;
	return event_move_up(w, w->id);
}

static const char *const event_csv_columns[] = { "id", "programme_id", "kind", "title",
	"description", "online", "place", "capacity", "per_office_limit", "participants_only",
	"dates", "starts_at", "ends_at", "status", "registered", "waitlisted", "version",
	"created_at", "updated_at", NULL };

const struct resource events_resource = { SHARED_DATA("event", "event", "/v1/events"),
	.get = &stmt_event_get, .list = &stmt_event_list, .lock = &stmt_event_lock,
	.csv_columns = event_csv_columns, .fields = event_fields,
	.nfields = ARRAY_LEN(event_fields), .rules = event_rules, .refs = { OWN_PROGRAMME },
	.create = event_create, .update = event_update };

/* ---- /v1/event-registrations ---- */

static const struct field_spec person_fields[] = { PERSON_FIELDS };

static const struct field_spec registration_fields[] = {
	{ .name = "event_id", .type = FIELD_UUID, .required = true, .immutable = true },
	/* The office the person comes from: the caller's own (an office), or named by the team;
	 * null for a professional's own registration and for a person of no office. */
	{ .name = "office_id",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .immutable = true,
	    .check = slug_id_check },
	/* Required but of a professional, who registers under its own registration's name. */
	{ .name = "person",
	    .type = FIELD_OBJECT,
	    .immutable = true,
	    .fields = person_fields,
	    .nfields = ARRAY_LEN(person_fields) },
	{ .name = "status",
	    .type = FIELD_ENUM,
	    .update_only = true,
	    .values = codelist_registration_status_values },
	/* Per date of the event, recorded by the programme's team. */
	{ .name = "attended", .type = FIELD_FLAGS, .update_only = true, .max = DATES_MAX },
	{ .name = "feedback_rating",
	    .type = FIELD_INTEGER,
	    .nullable = true,
	    .update_only = true,
	    .min = 1,
	    .max = 5 },
	{ .name = "feedback_comment",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .update_only = true,
	    .min = 1,
	    .max = 2000 },
};

#define OFFICE (ROLE_BIT(ROLE_OFFICE_STAFF) | ROLE_BIT(ROLE_OFFICE_LEAD))
#define TEAM ROLE_BIT(ROLE_PROGRAMME_TEAM)
#define PRO ROLE_BIT(ROLE_PROFESSIONAL)
/* Registered and waiting move between each other by themselves (the waiting list). */
static const struct move registration_moves[] = {
	{ "registered", "cancelled", OFFICE | TEAM | PRO },
	{ "waitlisted", "cancelled", OFFICE | TEAM | PRO },
};

#define REGISTRATION_JSON                                                                          \
	"json_build_object('id', r.id, 'event_id', r.event_id, 'programme_id', r.programme_id,"    \
	" 'office_id', r.office_id, 'professional_id', r.professional_id,"                         \
	" 'person_enc', r.person_enc, 'status', r.status,"                                         \
	" 'waitlist_position', kqe_waitlist_position(r.id), 'attended', to_json(r.attended),"      \
	" 'feedback_rating', r.feedback_rating, 'feedback_comment_enc', r.feedback_enc,"           \
	" 'registered_by', r.registered_by, 'version', r.version,"                                 \
	" 'created_at', kqe_ts(r.created_at), 'updated_at', kqe_ts(r.updated_at))::text"
#define READER " kqe_event_registration_reader(r.office_id, r.professional_id, r.programme_id)"
/* The event of a registration: status, begun, ended, number of dates, participants only,
 * programme. */
#define EVENT_COLUMNS                                                                              \
	"e.status, (e.starts_at <= now())::text, (e.ends_at <= now())::text,"                      \
	" jsonb_array_length(e.dates)::text, e.participants_only::text, e.programme_id"

static const struct db_stmt stmt_reg_get = { "registration_get",
	"SELECT coalesce(r.office_id, ''), " REGISTRATION_JSON
	" FROM event_registrations r WHERE" READER " AND r.id = $1::uuid" };
/* $1 event_id, $2 office_id, $3 status, $4 updated_since, $5 $6 cursor, $7 limit */
static const struct db_stmt stmt_reg_list = { "registration_list",
	"SELECT kqe_ts(r.updated_at), r.id::text, coalesce(r.office_id, ''), " REGISTRATION_JSON
	" FROM event_registrations r WHERE" READER " AND ($1::uuid IS NULL OR r.event_id = $1)"
	" AND ($2::text IS NULL OR r.office_id = $2) AND ($3::text IS NULL OR r.status = $3)"
	" AND ($4::timestamptz IS NULL OR r.updated_at >= $4)"
	" AND ($5::timestamptz IS NULL OR (r.updated_at, r.id) > ($5, $6::uuid))"
	" ORDER BY r.updated_at, r.id LIMIT $7" };
static const struct db_stmt stmt_reg_lock = { "registration_lock",
	"SELECT coalesce(r.office_id, ''), r.version, " REGISTRATION_JSON ", " EVENT_COLUMNS
	" FROM event_registrations r JOIN events e ON e.id = r.event_id WHERE" READER
	" AND r.id = $1::uuid FOR UPDATE OF r" };
/* An event the caller may register people for: offices any, the team and professionals
 * their programme's. */
static const struct db_stmt stmt_reg_event = {
	"registration_event",
	"SELECT " EVENT_COLUMNS " FROM events e WHERE e.id = $1::uuid AND"
	" (kqe_ctx('role') IN ('office_staff', 'office_lead')"
	"  OR kqe_programme_team(e.programme_id)"
	"  OR (kqe_ctx('role') = 'professional' AND e.programme_id::text = kqe_ctx('programme_id')))"
};
/* A professional's own name and address, as it registered them. */
static const struct db_stmt stmt_reg_professional = { "registration_professional",
	"SELECT person_enc FROM professionals WHERE id::text = kqe_ctx('professional_id')"
	" AND status = 'approved'" };
static const struct db_stmt stmt_reg_office = { "registration_office",
	"SELECT EXISTS (SELECT FROM directory WHERE id = $2),"
	" EXISTS (SELECT FROM applications WHERE programme_id = $1::uuid AND office_id = $2"
	"  AND status = 'selected')" };
static const struct db_stmt stmt_reg_counts = { "registration_counts",
	"SELECT c.registered, c.from_office, e.capacity, coalesce(e.per_office_limit, 0)"
	" FROM events e, kqe_event_counts(e.id, $2) c WHERE e.id = $1::uuid" };
static const struct db_stmt stmt_reg_insert = { "registration_insert",
	"INSERT INTO event_registrations (id, event_id, programme_id, office_id, person_enc,"
	" email_key, status, attended, registered_by, professional_id)"
	" SELECT $1::uuid, e.id, e.programme_id, $3, $4, $5, $6,"
	" array_fill(false, ARRAY[jsonb_array_length(e.dates)]), $7, $8::uuid FROM events e"
	" WHERE e.id = $2::uuid"
	" ON CONFLICT (event_id, email_key) WHERE status <> 'cancelled' DO NOTHING" };
static const struct db_stmt stmt_reg_existing = { "registration_existing",
	"SELECT id FROM event_registrations WHERE event_id = $1::uuid AND email_key = $2"
	" AND status <> 'cancelled'" };
static const struct db_stmt stmt_reg_update = { "registration_update",
	"UPDATE event_registrations SET status = $2,"
	" attended = CASE WHEN $3::json IS NULL THEN attended"
	"  ELSE ARRAY(SELECT json_array_elements_text($3::json)::boolean) END,"
	" feedback_rating = $4::smallint, feedback_enc = CASE WHEN $6::boolean THEN $5"
	"  ELSE feedback_enc END, version = version + 1, updated_at = now() WHERE id = $1::uuid" };

/*
 * The person of a professional's own registration: the name and address it
 * registered for the programme with (a given person is refused: it would be
 * someone else). Into the document, as an office would have sent it.
 */
static int
professional_person(struct write *w)
{
	if (json_object_get(w->doc, "person") != NULL || doc_text(w, "office_id") != NULL) {
		write_error(w, json_object_get(w->doc, "person") ? "/person" : "/office_id",
		    "forbidden",
		    "is taken from your registration: a professional registers itself");
		return 0;
	}
	PGresult *res = db_exec(w->r->db, &stmt_reg_professional, 0, NULL);
	if (res == NULL)
		return -1;
	json_t *envelope = PQntuples(res) == 1 ? json_string(PQgetvalue(res, 0, 0)) : NULL;
	PQclear(res);
	json_t *text = envelope != NULL ? free_text_decrypt(w->r, "professional",
	                                      w->r->principal.professional_id, "person", envelope)
	                                : json_null();
	json_decref(envelope);
	json_t *all = json_is_string(text) ? json_loads(json_string_value(text), 0, NULL) : NULL;
	json_decref(text);
	if (all == NULL) {
		write_refuse(w, 409, NULL, "not_approved",
		    "Your registration cannot be read; ask the programme's team.");
		return 0;
	}
	static const char *const keep[] = { "first_name", "last_name", "email" };
	json_t *person = json_object();
	for (size_t i = 0; i < ARRAY_LEN(keep); i++)
		json_object_set(person, keep[i], json_object_get(all, keep[i]));
	json_decref(all);
	json_object_set_new(w->doc, "person", person);
	return 0;
}

/*
 * Who is registered, and from which office (NULL: none): a professional
 * itself, under its own registration's name; an office its own people; the
 * team anyone, naming the office. Errors go to the write.
 */
static int
registration_person(struct write *w, const char *office)
{
	enum role role = w->r->principal.role;
	if (role == ROLE_PROFESSIONAL)
		return professional_person(w);
	if (json_object_get(w->doc, "person") == NULL) {
		write_error(w, "/person", "required", "is required");
		return 0;
	}
	if (role != ROLE_PROGRAMME_TEAM && doc_text(w, "office_id") != NULL &&
	    strcmp(doc_text(w, "office_id"), office)) {
		write_error(w, "/office_id", "forbidden", "an office registers its own people");
		return 0;
	}
	return 0;
}

/* The event takes registrations: not cancelled, not begun, and from whom it is for. */
static void
registration_open(struct write *w, const char *office, bool participants_only)
{
	if (strcmp(ref_value(w, 0, 0), "cancelled") == 0) {
		write_refuse(w, 409, "/event_id", "cancelled", "The event is cancelled.");
	} else if (strcmp(ref_value(w, 0, 1), "true") == 0) {
		write_refuse(
		    w, 409, "/event_id", "begun", "The event has begun; registration is closed.");
	} else if (participants_only && w->r->principal.role == ROLE_PROFESSIONAL) {
		write_refuse(w, 409, "/event_id", "participants_only",
		    "The event is for the programme's participating offices; they register their "
		    "people.");
	} else if (participants_only && office == NULL) {
		write_error(w, "/office_id", "required",
		    "names the participating office: the event is for participants only");
	}
}

/* The office is one of the directory, and selected in the programme if the event wants it. */
static int
registration_office(struct write *w, const char *office, bool participants_only)
{
	const char *params[] = { ref_value(w, 0, 5), office };
	PGresult *res = db_exec(w->r->db, &stmt_reg_office, 2, params);
	if (res == NULL)
		return -1;
	bool known = PQgetvalue(res, 0, 0)[0] == 't', selected = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	if (!known)
		write_error(w, "/office_id", "not_found", "is not an office of the directory");
	else if (participants_only && !selected)
		write_error(w, "/office_id", "not_selected",
		    "is not an office selected in the programme: the event is for its "
		    "participants only");
	else
		snprintf(w->office, sizeof(w->office), "%s", office);
	return 0;
}

/* Invariant 1, under the event's lock: whether a place is free for someone of office. */
static int
registration_fits(struct write *w, const char *event, const char *office, bool *fits)
{
	if (write_lock_key(w, event) != 0)
		return -1;
	const char *params[] = { event, office };
	PGresult *res = db_exec(w->r->db, &stmt_reg_counts, 2, params);
	if (res == NULL)
		return -1;
	long registered = atol(PQgetvalue(res, 0, 0)), from_office = atol(PQgetvalue(res, 0, 1));
	long capacity = atol(PQgetvalue(res, 0, 2)), limit = atol(PQgetvalue(res, 0, 3));
	PQclear(res);
	*fits = registered < capacity && (limit == 0 || office == NULL || from_office < limit);
	return 0;
}

/* The registration, with a place or on the waiting list; a person registered already: 409. */
static int
registration_insert(struct write *w, const char *event, const char *office, bool fits)
{
	const struct principal *p = &w->r->principal;
	bool team = p->role == ROLE_PROGRAMME_TEAM, pro = p->role == ROLE_PROFESSIONAL;
	uuid_v4(w->id);
	/* Keyed by the office (or "-"): a 409 names only a registration the caller reads. */
	char scope[64];
	snprintf(scope, sizeof(scope), "professional:%s", p->professional_id);
	const char *key = write_email_key(w, pro ? scope : office ? office : "-");
	const char *status = fits ? "registered" : "waitlisted";
	const char *params[] = { w->id, event, office, write_encrypted(w, "person"), key, status,
		team  ? "programme_team"
		: pro ? "professional"
		      : "office",
		pro ? p->professional_id : NULL };
	PGresult *res = db_exec(w->r->db, &stmt_reg_insert, 8, params);
	if (res == NULL)
		return -1;
	int inserted = atoi(PQcmdTuples(res)) == 1;
	PQclear(res);
	if (!inserted)
		return write_conflict(w, &stmt_reg_existing, 2, (const char *[]){ event, key },
		    "/person/email",
		    "This person is registered for the event already (see Location).");
	json_object_set_new(w->details, "event_id", json_string(event));
	json_object_set_new(w->details, "status", json_string(status));
	return registration_mail(w, w->id, NULL, status);
}

static int
registration_create(struct write *w)
{
	const struct principal *p = &w->r->principal;
	const char *office = p->role == ROLE_PROGRAMME_TEAM ? doc_text(w, "office_id")
	                     : p->role == ROLE_PROFESSIONAL ? NULL
	                                                    : p->office_id;
	bool participants_only = strcmp(ref_value(w, 0, 4), "true") == 0, fits = false;
	if (registration_person(w, office) != 0)
		return -1;
	if (!write_stopped(w))
		registration_open(w, office, participants_only);
	if (!write_stopped(w) && office != NULL &&
	    registration_office(w, office, participants_only) != 0)
		return -1;
	if (write_stopped(w))
		return 0;
	const char *event = doc_text(w, "event_id");
	if (registration_fits(w, event, office, &fits) != 0)
		return -1;
	return registration_insert(w, event, office, fits);
}

/*
 * Attendance is the team's to record and feedback the participant's to give,
 * both only for a registration with a place: attendance once the event has
 * begun, one entry per date; feedback once it has ended.
 */
static void
registration_record_check(struct write *w, const char *from, bool attendance, bool feedback)
{
	bool team = w->r->principal.role == ROLE_PROGRAMME_TEAM;
	const char *dates = row_value(w, 6);
	if (attendance && !team) {
		write_refuse(w, 403, "/attended", "forbidden",
		    "Attendance is recorded by the programme's team.");
	} else if (feedback && team) {
		write_refuse(w, 403, "/feedback_rating", "forbidden",
		    "The feedback is the participant's, given by itself or through its office.");
	} else if ((attendance || feedback) && strcmp(from, "registered") != 0) {
		write_refuse(w, 409, attendance ? "/attended" : "/feedback_rating",
		    "not_registered",
		    "Only a registration with a place records attendance and feedback.");
	} else if (attendance && strcmp(row_value(w, 4), "true") != 0) {
		write_refuse(w, 409, "/attended", "not_begun", "The event has not begun.");
	} else if (feedback && strcmp(row_value(w, 5), "true") != 0) {
		write_refuse(w, 409, "/feedback_rating", "not_ended",
		    "Feedback is given after the event has ended.");
	} else if (attendance &&
	           json_array_size(json_object_get(w->doc, "attended")) != (size_t)atol(dates)) {
		char message[96];
		snprintf(message, sizeof(message), "must hold one entry per date of the event (%s)",
		    dates);
		write_error(w, "/attended", "length", message);
	}
}

static int
registration_update(struct write *w)
{
	const char *from = json_text(json_object_get(w->current, "status"));
	int moved = write_move(
	    w, "status", registration_moves, ARRAY_LEN(registration_moves), "A registration");
	if (moved < 0)
		return 0;
	bool attendance = write_changes(w, "attended");
	bool feedback = write_changes(w, "feedback_rating") || write_changes(w, "feedback_comment");
	registration_record_check(w, from, attendance, feedback);
	if (write_stopped(w))
		return 0;
	char rating[8];
	const json_t *r = json_object_get(w->doc, "feedback_rating");
	snprintf(rating, sizeof(rating), "%lld", (long long)json_integer_value(r));
	bool comment = write_changes(w, "feedback_comment");
	const char *params[] = { w->id, doc_text(w, "status"),
		attendance ? doc_json(w, "attended") : NULL, json_is_integer(r) ? rating : NULL,
		comment ? write_encrypted(w, "feedback_comment") : NULL,
		comment ? "true" : "false" };
	if (write_exec(w, &stmt_reg_update, 6, params) != 0)
		return -1;
	/* A freed place: the waiting list moves up, under the event's lock. */
	if (moved && strcmp(from, "registered") == 0) {
		const char *event = json_text(json_object_get(w->current, "event_id"));
		if (write_lock_key(w, event) != 0)
			return -1;
		return event_move_up(w, event);
	}
	return 0;
}

/* Name, address and comment for the registering office and the programme's team. */
static json_t *
registration_render(struct request *r, json_t *rep)
{
	enum role role = r->principal.role;
	bool reads =
	    role_is_office(role) || role == ROLE_PROGRAMME_TEAM || role == ROLE_PROFESSIONAL;
	const char *id = json_string_value(json_object_get(rep, "id"));
	json_t *person = json_null(), *comment = json_null();
	if (reads) {
		json_t *text = free_text_decrypt(
		    r, "event_registration", id, "person", json_object_get(rep, "person_enc"));
		if (json_is_string(text)) {
			json_t *parsed = json_loads(json_string_value(text), 0, NULL);
			if (parsed != NULL)
				person = parsed;
		}
		json_decref(text);
		comment = free_text_decrypt(r, "event_registration", id, "feedback_comment",
		    json_object_get(rep, "feedback_comment_enc"));
	}
	json_object_del(rep, "person_enc");
	json_object_del(rep, "feedback_comment_enc");
	json_object_set_new(rep, "person", person);
	json_object_set_new(rep, "feedback_comment", comment);
	return rep;
}

static const char *const registration_csv_columns[] = { "id", "event_id", "programme_id",
	"office_id", "professional_id", "person", "status", "waitlist_position", "attended",
	"feedback_rating", "feedback_comment", "registered_by", "version", "created_at",
	"updated_at", NULL };

const struct resource event_registrations_resource = {
	CALLER_SCOPED("event_registration", "registration", "/v1/event-registrations"),
	.get = &stmt_reg_get, .list = &stmt_reg_list, .lock = &stmt_reg_lock,
	.csv_columns = registration_csv_columns, .render = registration_render,
	.fields = registration_fields, .nfields = ARRAY_LEN(registration_fields),
	.refs = { { "event_id", &stmt_reg_event, SCOPE_NONE,
	    "is not an event you may register for" } },
	.create = registration_create, .update = registration_update
};
