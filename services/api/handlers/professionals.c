/*
 * Professionals' registration for a programme's protected area
 * (docs/programmes.md, Professionals): anyone registers — first name, name,
 * e-mail address, institution, the seat of the institution, position — and
 * gets a mail with a link that confirms the address; the programme's team
 * approves or rejects; an approved professional gets an API key of the role
 * professional by mail. Invariants: migration 0026_professionals.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth.h"
#include "handlers.h"
#include "http.h"
#include "kqe/api_key.h"
#include "kqe/codelists.h"
#include "kqe/crypto.h"
#include "kqe/problem.h"

#define CONFIRM_DAYS "7" /* how long the link of the confirmation mail works */

static const struct field_spec person_fields[] = {
	PERSON_FIELDS,
	{ .name = "institution", .type = FIELD_STRING, .required = true, .min = 1, .max = 200 },
	/* Position or field of work (Funktion, Arbeitsfeld). */
	{ .name = "position", .type = FIELD_STRING, .required = true, .min = 1, .max = 200 },
};

static const struct field_spec fields[] = {
	{ .name = "programme_id", .type = FIELD_UUID, .required = true, .immutable = true },
	{ .name = "person",
	    .type = FIELD_OBJECT,
	    .required = true,
	    .immutable = true,
	    .fields = person_fields,
	    .nfields = ARRAY_LEN(person_fields) },
	/* The municipality the institution has its seat in. */
	{ .name = "seat",
	    .type = FIELD_STRING,
	    .required = true,
	    .immutable = true,
	    .min = 1,
	    .max = 100 },
	{ .name = "status",
	    .type = FIELD_ENUM,
	    .update_only = true,
	    .values = codelist_professional_status_values },
};

#define TEAM ROLE_BIT(ROLE_PROGRAMME_TEAM)
/* The link confirms (migration 0026: kqe_professional_confirm); the team decides. */
static const struct move moves[] = {
	{ "confirmed", "approved", TEAM },
	{ "confirmed", "rejected", TEAM },
	{ "unconfirmed", "rejected", TEAM },
};

#define PROFESSIONAL_JSON                                                                           \
	"json_build_object('id', p.id, 'programme_id', p.programme_id, 'person_enc', p.person_enc," \
	" 'seat', p.seat, 'seat_ags', p.seat_ags, 'status', p.status,"                              \
	" 'confirmed_at', kqe_ts(p.confirmed_at), 'decided_at', kqe_ts(p.decided_at),"              \
	" 'version', p.version, 'created_at', kqe_ts(p.created_at),"                                \
	" 'updated_at', kqe_ts(p.updated_at))::text"
#define READER " kqe_professional_reader(p.id, p.programme_id)"

static const struct db_stmt stmt_get = { "professional_get",
	"SELECT '', " PROFESSIONAL_JSON " FROM professionals p WHERE" READER
	" AND p.id = $1::uuid" };
/* $1 programme_id, $2 status, $3 updated_since, $4 $5 cursor, $6 limit */
static const struct db_stmt stmt_list = { "professional_list",
	"SELECT kqe_ts(p.updated_at), p.id::text, '', " PROFESSIONAL_JSON " FROM professionals p"
	" WHERE" READER " AND ($1::uuid IS NULL OR p.programme_id = $1)"
	" AND ($2::text IS NULL OR p.status = $2)"
	" AND ($3::timestamptz IS NULL OR p.updated_at >= $3)"
	" AND ($4::timestamptz IS NULL OR (p.updated_at, p.id) > ($4, $5::uuid))"
	" ORDER BY p.updated_at, p.id LIMIT $6" };
static const struct db_stmt stmt_lock = { "professional_lock",
	"SELECT '', p.version, " PROFESSIONAL_JSON ", pr.title FROM professionals p"
	" JOIN programmes pr ON pr.id = p.programme_id WHERE" READER
	" AND p.id = $1::uuid FOR UPDATE OF p" };
/* The programme registered for: whether it is NRW-only, its title. */
static const struct db_stmt stmt_programme = { "professional_programme",
	"SELECT nrw_only::text, title FROM programmes WHERE id = $1::uuid" };
static const struct db_stmt stmt_seat = { "professional_seat",
	"SELECT ags FROM municipalities WHERE lower(name) = lower($1) ORDER BY ags LIMIT 1" };
/* Lets the new registration read itself back (its reader function). */
static const struct db_stmt stmt_self = { "professional_self",
	"SELECT set_config('kqe.professional_id', $1, true)" };
static const struct db_stmt stmt_insert = { "professional_insert",
	"INSERT INTO professionals (id, programme_id, person_enc, email_key, seat, seat_ags,"
	" confirm_hash, confirm_expires) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7,"
	" now() + interval '" CONFIRM_DAYS
	" days') ON CONFLICT (programme_id, email_key) DO NOTHING" };
static const struct db_stmt stmt_update = { "professional_update",
	"UPDATE professionals SET status = $2, decided_at = now(), version = version + 1,"
	" updated_at = now() WHERE id = $1::uuid" };
static const struct db_stmt stmt_key = { "professional_key",
	"SELECT kqe_professional_key($1::uuid, $2, $3)::text" };
static const struct db_stmt stmt_confirm = { "professional_confirm",
	"SELECT id::text, status, expired::text FROM kqe_professional_confirm($1)" };

/*
 * Where the professional registers: the programme (its title into *title,
 * owned by the request) and the municipality of the seat (its key into ags,
 * "" if none). A seat outside NRW is an error for an NRW-only programme.
 */
static int
professional_where(struct write *w, const char **title, char ags[16])
{
	const char *params[] = { doc_text(w, "programme_id") };
	PGresult *res = db_exec(w->r->db, &stmt_programme, 1, params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		write_error(w, "/programme_id", "not_found", "is not a programme");
		return 0;
	}
	bool nrw_only = strcmp(PQgetvalue(res, 0, 0), "true") == 0;
	*title = request_own_string(w->r, xstrdup(PQgetvalue(res, 0, 1)));
	PQclear(res);
	const char *seat_params[] = { doc_text(w, "seat") };
	res = db_exec(w->r->db, &stmt_seat, 1, seat_params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1)
		snprintf(ags, 16, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (nrw_only && ags[0] == '\0')
		write_error(w, "/seat", "not_found",
		    "is not a municipality of NRW: the programme is for professionals from NRW");
	return 0;
}

/* The mail whose link (carrying token) confirms the address. */
static int
professional_confirm_mail(struct write *w, const char *token, const char *title)
{
	const json_t *person = json_object_get(w->doc, "person");
	char *link =
	    xasprintf("%s/v1/registrations/confirm?token=%s", w->r->worker->cfg->public_url, token);
	char *body = xasprintf("Guten Tag %s %s,\n\nSie haben sich für den geschützten Bereich des "
	                       "Programms „%s“ registriert. Bitte bestätigen Sie Ihre "
	                       "E-Mail-Adresse innerhalb von " CONFIRM_DAYS " Tagen über diesen "
	                       "Link:\n\n%s\n\nDanach prüft das Programmteam Ihre Registrierung. "
	                       "Haben Sie sich nicht registriert, können Sie diese Nachricht "
	                       "ignorieren.\n",
	    json_string_value(json_object_get(person, "first_name")),
	    json_string_value(json_object_get(person, "last_name")), title, link);
	char subject[160];
	snprintf(subject, sizeof(subject), "Registrierung bestätigen: %.100s", title);
	int rc = write_mail(w, "professional_confirm",
	    json_string_value(json_object_get(person, "email")), subject, body);
	free(body);
	free(link);
	return rc;
}

static int
professional_create(struct write *w)
{
	const char *title = NULL;
	char ags[16] = "";
	if (professional_where(w, &title, ags) != 0)
		return -1;
	if (write_stopped(w))
		return 0;
	/* The link's token: only its hash is stored; the mail carries the token. */
	char token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
	token_generate(token);
	token_hash(token, hash);
	const char *programme = doc_text(w, "programme_id");
	const char *key = write_email_key(w, programme); /* one registration per programme */
	uuid_v4(w->id);
	snprintf(
	    w->r->principal.professional_id, sizeof(w->r->principal.professional_id), "%s", w->id);
	const char *self[] = { w->id };
	const char *insert[] = { w->id, programme, write_encrypted(w, "person"), key,
		doc_text(w, "seat"), ags[0] ? ags : NULL, hash };
	PGresult *res;
	if (write_exec(w, &stmt_self, 1, self) != 0 ||
	    (res = db_exec(w->r->db, &stmt_insert, 7, insert)) == NULL)
		return -1;
	bool inserted = atoi(PQcmdTuples(res)) == 1;
	PQclear(res);
	if (!inserted) {
		write_refuse(w, 409, "/person/email", "conflict",
		    "This address is registered for the programme already.");
		return 0;
	}
	return professional_confirm_mail(w, token, title);
}

/* The person of the locked registration, decrypted (a new reference), or NULL. */
static json_t *
locked_person(struct write *w)
{
	return json_incref(json_object_get(w->current, "person"));
}

/*
 * An approved professional's key for the programme's applications: only its
 * hash is stored; key_text gets the key, which the mail carries once.
 */
static int
professional_key(struct write *w, char key_text[TOKEN_LEN + 1])
{
	char hash[TOKEN_HASH_LEN + 1], name[64];
	token_generate(key_text);
	token_hash(key_text, hash);
	snprintf(name, sizeof(name), "professional %.8s", w->id);
	const char *params[] = { w->id, hash, name };
	PGresult *res = db_exec(w->r->db, &stmt_key, 3, params);
	if (res == NULL || PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return -1;
	}
	json_object_set_new(w->details, "token_id", json_string(PQgetvalue(res, 0, 0)));
	PQclear(res);
	return 0;
}

/* The team's decision, told to the person: with the key (key_text) if approved. */
static int
professional_decision_mail(
    struct write *w, const json_t *person, bool approved, const char *key_text)
{
	const char *title = row_value(w, 3);
	const char *first = json_string_value(json_object_get(person, "first_name"));
	const char *last = json_string_value(json_object_get(person, "last_name"));
	char subject[160];
	char *body;
	if (approved) {
		snprintf(subject, sizeof(subject), "Registrierung freigeschaltet: %.100s", title);
		body =
		    xasprintf("Guten Tag %s %s,\n\nIhre Registrierung für den geschützten Bereich "
		              "des Programms „%s“ ist freigeschaltet. Ihr Zugangsschlüssel für die "
		              "Anwendungen des Programms:\n\n%s\n\nBewahren Sie ihn wie ein "
		              "Passwort auf; er wird nicht noch einmal verschickt.\n",
		        first, last, title, key_text);
	} else {
		snprintf(subject, sizeof(subject), "Registrierung: %.100s", title);
		body =
		    xasprintf("Guten Tag %s %s,\n\nIhre Registrierung für den geschützten Bereich "
		              "des Programms „%s“ konnte nicht freigeschaltet werden. Bei Fragen "
		              "wenden Sie sich an das Programmteam.\n",
		        first, last, title);
	}
	int rc = write_mail(w, approved ? "professional_approved" : "professional_rejected",
	    json_string_value(json_object_get(person, "email")), subject, body);
	OPENSSL_cleanse(body, strlen(body)); /* it may carry the key */
	free(body);
	return rc;
}

static int
professional_update(struct write *w)
{
	int moved = write_move(w, "status", moves, ARRAY_LEN(moves), "A registration");
	if (moved <= 0)
		return 0;
	const char *to = doc_text(w, "status");
	const char *params[] = { w->id, to };
	if (write_exec(w, &stmt_update, 2, params) != 0)
		return -1;
	json_t *person = locked_person(w);
	bool approved = strcmp(to, "approved") == 0;
	char key_text[TOKEN_LEN + 1] = "";
	int rc = 0; /* a person that could not be decrypted was logged; no mail */
	if (json_is_object(person)) {
		rc = approved ? professional_key(w, key_text) : 0;
		if (rc == 0)
			rc = professional_decision_mail(w, person, approved, key_text);
	}
	OPENSSL_cleanse(key_text, sizeof(key_text));
	json_decref(person);
	return rc;
}

/* The person for the programme's team and for the professional itself; else null. */
static json_t *
render(struct request *r, json_t *rep)
{
	enum role role = r->principal.role;
	json_t *person = json_null();
	if (role == ROLE_PROGRAMME_TEAM || role == ROLE_PROFESSIONAL || role == ROLE_NONE) {
		json_t *text = free_text_decrypt(r, "professional",
		    json_string_value(json_object_get(rep, "id")), "person",
		    json_object_get(rep, "person_enc"));
		if (json_is_string(text)) {
			json_t *parsed = json_loads(json_string_value(text), 0, NULL);
			if (parsed != NULL)
				person = parsed;
		}
		json_decref(text);
	}
	json_object_del(rep, "person_enc");
	json_object_set_new(rep, "person", person);
	return rep;
}

static const char *const csv_columns[] = { "id", "programme_id", "person.first_name",
	"person.last_name", "person.email", "person.institution", "person.position", "seat",
	"seat_ags", "status", "confirmed_at", "decided_at", "version", "created_at", "updated_at",
	NULL };

const struct resource professionals_resource = { CALLER_SCOPED("professional", "registration",
	                                             "/v1/registrations"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.render = render, .fields = fields, .nfields = ARRAY_LEN(fields),
	.create = professional_create, .update = professional_update };

/* ---- GET /v1/registrations/confirm?token=…: the mail's link ---- */

static void
confirm_page(struct request *r, int status, const char *headline, const char *text)
{
	char *html = xasprintf("<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">"
	                       "<title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
	    headline, headline, text);
	reply_bytes(r, status, "text/html; charset=utf-8", html, strlen(html));
	free(html);
}

/*
 * Following the link confirms the address: whoever follows it received the mail, which is
 * what is to be shown (a mail scanner that follows it does so in the recipient's mailbox).
 * Following it again changes nothing.
 */
void
registration_confirm(struct request *r)
{
	const char *token = query_get(r, "token");
	if (token == NULL) {
		confirm_page(r, 404, "Link unbekannt",
		    "Diesem Link fehlt sein Schlüssel. Bitte übernehmen Sie ihn vollständig aus der "
		    "Nachricht.");
		return;
	}
	char hash[TOKEN_HASH_LEN + 1];
	token_hash(token, hash);
	const char *params[] = { hash };
	PGresult *res = query_as_caller(r, &stmt_confirm, 1, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0) {
		PQclear(res);
		confirm_page(r, 404, "Link unbekannt",
		    "Dieser Bestätigungslink ist nicht bekannt. Bitte prüfen Sie, ob Sie ihn "
		    "vollständig übernommen haben.");
		return;
	}
	bool expired = strcmp(PQgetvalue(res, 0, 2), "true") == 0;
	const char *status = PQgetvalue(res, 0, 1);
	if (expired)
		confirm_page(r, 410, "Link abgelaufen",
		    "Dieser Bestätigungslink ist abgelaufen. Bitte registrieren Sie sich erneut "
		    "oder wenden Sie sich an das Programmteam.");
	else if (strcmp(status, "rejected") == 0)
		confirm_page(r, 409, "Registrierung abgelehnt",
		    "Diese Registrierung wurde vom Programmteam abgelehnt.");
	else
		confirm_page(r, 200, "E-Mail-Adresse bestätigt",
		    "Vielen Dank. Das Programmteam prüft nun Ihre Registrierung; Sie erhalten eine "
		    "Nachricht, sobald sie freigeschaltet ist.");
	PQclear(res);
}
