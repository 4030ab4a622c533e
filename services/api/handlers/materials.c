/*
 * The materials library of a programme (docs/programmes.md, Materials):
 * instruments, methods, slides, links to recordings, written by the
 * programme's team; a file of each is stored in PostgreSQL (PUT
 * /v1/materials/{id}/file, at most KQE_MATERIAL_MAX_BYTES, of a type on the
 * list below and matching its bytes) and sent back from libpq's own memory.
 * Visibility 'programme': the programme's participants; 'public': everyone,
 * without a token. Invariants: migration 0028_materials.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "handlers.h"
#include "http.h"
#include "kqe/codelists.h"
#include "kqe/filetype.h"
#include "kqe/problem.h"

static const struct field_spec fields[] = {
	{ .name = "programme_id", .type = FIELD_UUID, .required = true, .immutable = true },
	{ .name = "kind",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_material_kind_values },
	{ .name = "title", .type = FIELD_STRING, .required = true, .min = 1, .max = 200 },
	{ .name = "description", .type = FIELD_STRING, .nullable = true, .min = 1, .max = 5000 },
	/* Where a recording (or anything kept elsewhere) is. */
	{ .name = "link",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .min = 9,
	    .max = 2000,
	    .check = https_url_check },
	{ .name = "visibility",
	    .type = FIELD_ENUM,
	    .required = true,
	    .values = codelist_material_visibility_values },
	/* The name a download is saved under. */
	{ .name = "file_name",
	    .type = FIELD_STRING,
	    .nullable = true,
	    .min = 1,
	    .max = 200,
	    .check = file_name_check },
};

/* What a file may be: documents, slides, sheets, images and text, nothing a browser runs. */
static const char *const file_types[] = { "application/pdf",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.oasis.opendocument.text",
	"application/vnd.oasis.opendocument.presentation",
	"application/vnd.oasis.opendocument.spreadsheet", "image/png", "image/jpeg", "text/plain",
	"text/csv", NULL };

#define MATERIAL_JSON                                                                               \
	"json_build_object('id', m.id, 'programme_id', m.programme_id, 'kind', m.kind,"             \
	" 'title', m.title, 'description', m.description, 'link', m.link,"                          \
	" 'visibility', m.visibility, 'file_name', m.file_name,"                                    \
	" 'file', CASE WHEN m.file_size IS NOT NULL THEN json_build_object('type', m.file_type,"    \
	"  'size', m.file_size, 'sha256', m.file_sha256,"                                           \
	"  'uploaded_at', kqe_ts(m.file_uploaded_at), 'href', '/v1/materials/' || m.id || '/file')" \
	" END, 'version', m.version, 'created_at', kqe_ts(m.created_at),"                           \
	" 'updated_at', kqe_ts(m.updated_at))::text"
#define READER " kqe_material_reader(m.programme_id, m.visibility)"

static const struct db_stmt stmt_get = { "material_get",
	"SELECT '', " MATERIAL_JSON " FROM materials m WHERE" READER " AND m.id = $1::uuid" };
/* $1 programme_id, $2 kind, $3 visibility, $4 updated_since, $5 $6 cursor, $7 limit */
static const struct db_stmt stmt_list = { "material_list",
	"SELECT kqe_ts(m.updated_at), m.id::text, '', " MATERIAL_JSON
	" FROM materials m WHERE" READER
	" AND ($1::uuid IS NULL OR m.programme_id = $1) AND ($2::text IS NULL OR m.kind = $2)"
	" AND ($3::text IS NULL OR m.visibility = $3)"
	" AND ($4::timestamptz IS NULL OR m.updated_at >= $4)"
	" AND ($5::timestamptz IS NULL OR (m.updated_at, m.id) > ($5, $6::uuid))"
	" ORDER BY m.updated_at, m.id LIMIT $7" };
/* Only its team's: FOR UPDATE passes the update policy too, so another team finds none. */
static const struct db_stmt stmt_lock = { "material_lock",
	"SELECT '', m.version, " MATERIAL_JSON " FROM materials m WHERE"
	" kqe_programme_team(m.programme_id) AND m.id = $1::uuid FOR UPDATE" };
static const struct db_stmt stmt_insert = { "material_insert",
	"INSERT INTO materials (id, programme_id, kind, title, description, link, visibility,"
	" file_name) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8)" };
static const struct db_stmt stmt_update = { "material_update",
	"UPDATE materials SET kind = $2, title = $3, description = $4, link = $5,"
	" visibility = $6, file_name = $7, version = version + 1, updated_at = now()"
	" WHERE id = $1::uuid" };
/* $2 the bytes (binary) */
static const struct db_stmt stmt_file_store = { "material_file_store",
	"INSERT INTO material_files (material_id, content) VALUES ($1::uuid, $2::bytea)"
	" ON CONFLICT (material_id) DO UPDATE SET content = EXCLUDED.content" };
static const struct db_stmt stmt_file_update = { "material_file_update",
	"UPDATE materials SET file_type = $2, file_size = $3::bigint, file_sha256 = $4,"
	" file_uploaded_at = now(), version = version + 1, updated_at = now()"
	" WHERE id = $1::uuid" };
/* The file for a reader of the material (binary result: type, digest, name, bytes). */
static const struct db_stmt stmt_file_read = { "material_file_read",
	"SELECT m.file_type, m.file_sha256, coalesce(m.file_name, ''), f.content"
	" FROM materials m JOIN material_files f ON f.material_id = m.id"
	" WHERE" READER " AND m.id = $1::uuid" };

static int
material_create(struct write *w)
{
	uuid_v4(w->id);
	const char *params[] = { w->id, doc_text(w, "programme_id"), doc_text(w, "kind"),
		doc_text(w, "title"), doc_text(w, "description"), doc_text(w, "link"),
		doc_text(w, "visibility"), doc_text(w, "file_name") };
	return write_exec(w, &stmt_insert, 8, params);
}

static bool
type_listed(const char *type)
{
	for (size_t i = 0; file_types[i] != NULL; i++)
		if (strcmp(file_types[i], type) == 0)
			return true;
	return false;
}

/* The file of an upload: its type on the list and matching its bytes, then stored. */
static int
file_store(struct write *w)
{
	char found[128], detail[400];
	if (!type_listed(w->upload_type)) {
		write_refuse(w, 415, NULL, "file_type",
		    "Send the file with its Content-Type: PDF, Word, PowerPoint, Excel, "
		    "OpenDocument, PNG, JPEG, plain text or CSV.");
		return 0;
	}
	if (filetype_of(w->upload, w->upload_len, found, sizeof(found)) != 0)
		return -1;
	if (!filetype_matches(w->upload_type, found)) {
		snprintf(detail, sizeof(detail),
		    "The file is not what its Content-Type says (%s): its bytes are %s.",
		    w->upload_type, found);
		write_refuse(w, 415, NULL, "file_type", detail);
		return 0;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(w->upload, w->upload_len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	char sha[65], size[24];
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		snprintf(sha + 2 * i, 3, "%02x", md[i]);
	snprintf(size, sizeof(size), "%zu", w->upload_len);
	const char *store[] = { w->id, (const char *)w->upload };
	const int lengths[] = { 0, (int)w->upload_len }, formats[] = { 0, 1 };
	PGresult *res =
	    db_exec_bytes(w->r->db, &stmt_file_store, 2, store, lengths, formats, false);
	if (res == NULL)
		return -1;
	PQclear(res);
	const char *params[] = { w->id, w->upload_type, size, sha };
	w->action = "material.file";
	json_object_set_new(w->details, "type", json_string(w->upload_type));
	json_object_set_new(w->details, "size", json_integer((json_int_t)w->upload_len));
	return write_exec(w, &stmt_file_update, 4, params);
}

static int
material_update(struct write *w)
{
	if (w->upload != NULL)
		return file_store(w);
	const char *params[] = { w->id, doc_text(w, "kind"), doc_text(w, "title"),
		doc_text(w, "description"), doc_text(w, "link"), doc_text(w, "visibility"),
		doc_text(w, "file_name") };
	return write_exec(w, &stmt_update, 7, params);
}

static const char *const csv_columns[] = { "id", "programme_id", "kind", "title", "description",
	"link", "visibility", "file_name", "file.type", "file.size", "file.sha256",
	"file.uploaded_at", "file.href", "version", "created_at", "updated_at", NULL };

const struct resource materials_resource = { SHARED_DATA("material", "material", "/v1/materials"),
	.get = &stmt_get, .list = &stmt_list, .lock = &stmt_lock, .csv_columns = csv_columns,
	.fields = fields, .nfields = ARRAY_LEN(fields), .refs = { OWN_PROGRAMME },
	.create = material_create, .update = material_update };

/* ---- GET /v1/materials/{id}/file ---- */

/*
 * Content-Disposition for name (checked by file_name_check; "" if none): the
 * name in ASCII with anything else as "_", and the name itself in RFC 8187's
 * encoding for the clients that read it.
 */
static void
disposition(const char *name, const char *id, char *out, size_t size)
{
	/* file_name: at most 200 characters of at most 4 bytes, each byte at most "%XX" */
	char ascii[256], encoded[200 * 4 * 3 + 1];
	size_t a = 0, e = 0;
	if (name[0] == '\0')
		name = id;
	for (const unsigned char *c = (const unsigned char *)name; *c && a + 1 < sizeof(ascii); c++)
		if ((*c & 0xc0) != 0x80) /* one "_" per character beyond ASCII */
			ascii[a++] = *c < 0x80 && *c != '%' ? (char)*c : '_';
	ascii[a] = '\0';
	for (const unsigned char *c = (const unsigned char *)name; *c && e + 4 < sizeof(encoded);
	     c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("!#$&+-.^_`|~", *c) != NULL)
			encoded[e++] = (char)*c;
		else
			e += (size_t)snprintf(encoded + e, sizeof(encoded) - e, "%%%02X", *c);
	}
	encoded[e] = '\0';
	snprintf(out, size, "attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii, encoded);
}

void
material_file(struct request *r)
{
	const char *params[] = { r->params[0] };
	if (db_begin_as(r->db, &r->principal) != 0) {
		db_rollback(r->db);
		reply_db_error(r);
		return;
	}
	PGresult *res = db_exec_bytes(r->db, &stmt_file_read, 1, params, NULL, NULL, true);
	if (res == NULL || db_commit(r->db) != 0) {
		PQclear(res);
		db_rollback(r->db);
		reply_db_error(r);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		reply_not_found(r);
		return;
	}
	char etag[80], header[3000];
	snprintf(etag, sizeof(etag), "\"%.64s\"", PQgetvalue(res, 0, 1));
	disposition(PQgetvalue(res, 0, 2), r->params[0], header, sizeof(header));
	reply_header(r, "ETag", etag);
	reply_header(r, "Content-Disposition", header);
	reply_header(r, "X-Content-Type-Options", "nosniff");
	reply_header(r, "Content-Security-Policy", "sandbox; default-src 'none'");
	const char *type = request_own_string(r, strdup(PQgetvalue(res, 0, 0)));
	reply_pg_bytes(r, 200, type, res, 0, 3);
}
