/*
 * offices_csv — CSV parsing and validation of the office directory, and the
 * one upsert statement that writes an office (see offices_csv.h).
 *
 * The parser works in two layers: read_record() splits the bytes into records
 * of fields (RFC 4180) and keeps the physical line count, counting line breaks
 * inside quoted fields; check_row() validates one record against the header's
 * columns. Both append to the same error list and go on with the next record.
 */
#include "offices_csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest population a PostgreSQL integer holds. */
#define POPULATION_MAX 2147483647L
/* Characters of a bad value echoed in an error message. */
#define ECHO_MAX 40

enum column { COL_ID, COL_NAME, COL_KIND, COL_REGION, COL_POPULATION, COL_COUNT };

/* Header names (lowercase) each column answers to; the first is canonical. */
static const struct {
	const char *names[3];
	bool required;
} columns[COL_COUNT] = {
	[COL_ID] = { { "id", NULL, NULL }, false },
	[COL_NAME] = { { "name", NULL, NULL }, true },
	[COL_KIND] = { { "kind", "type", NULL }, true },
	[COL_REGION] = { { "region", "landesjugendamt_region", NULL }, true },
	[COL_POPULATION] = { { "population_under_18", NULL, NULL }, false },
};

/* Codes and accepted spellings, compared after fold(). */
static const struct {
	const char *label;
	const char *code;
} kinds[] = {
	{ "kreisfreie_stadt", "kreisfreie_stadt" },
	{ "kreis", "kreis" },
	{ "kreisangehoerige_stadt", "kreisangehoerige_stadt" },
	{ "kreisfreie stadt", "kreisfreie_stadt" },
	{ "kreisangehörige stadt", "kreisangehoerige_stadt" },
	{ "kreisangehoerige stadt", "kreisangehoerige_stadt" },
};

struct field {
	size_t off, len; /* value in record.buf, NUL-terminated there */
	int line; /* physical line the field starts on */
	bool quoted;
};

struct record {
	struct field *fields;
	size_t nfields, fieldcap;
	char *buf;
	size_t buflen, bufcap;
	int line; /* physical line the record starts on */
};

/* Ids seen so far and the line of their first row: open addressing, linear probing. */
struct id_slot {
	char id[OFFICES_ID_MAX + 1];
	int line; /* 0: empty slot */
};

struct id_set {
	struct id_slot *slots;
	size_t cap, n;
};

struct parser {
	const char *data;
	size_t len, pos;
	int line;
	struct offices_csv *out;
	size_t errcap, rowcap;
	size_t ncols; /* fields per record, from the header */
	int index[COL_COUNT]; /* field index of each column, -1 if absent */
	const char *colname[COL_COUNT]; /* the alias the header used, for messages */
	bool columns_ok; /* every required column present: rows can be complete */
	struct id_set ids;
};

static void add_error(struct parser *p, int line, const char *field, const char *fmt, ...)
    KQE_PRINTF(4, 5);

static void
add_error(struct parser *p, int line, const char *field, const char *fmt, ...)
{
	struct offices_csv *out = p->out;
	if (out->nerrors == p->errcap) {
		p->errcap = p->errcap ? 2 * p->errcap : 16;
		out->errors = xrealloc(out->errors, p->errcap * sizeof(*out->errors));
	}
	struct offices_csv_error *e = &out->errors[out->nerrors++];
	va_list ap;
	e->line = line;
	snprintf(e->field, sizeof(e->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/*
 * Length in code points of valid UTF-8 (no overlong forms, surrogates or
 * values past U+10FFFF; NUL counts as invalid because values become C
 * strings). -1 with *bad at the first offending byte otherwise.
 */
static long
utf8_check(const unsigned char *s, size_t len, size_t *bad)
{
	long n = 0;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t k;
		unsigned long cp;
		if (c == 0)
			goto invalid;
		if (c < 0x80) {
			i++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07u;
		} else {
			goto invalid;
		}
		if (len - i <= k)
			goto invalid;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				goto invalid;
			cp = (cp << 6) | (s[i + j] & 0x3fu);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			goto invalid;
		i += k + 1;
		n++;
	}
	return n;
invalid:
	*bad = i;
	return -1;
}

/*
 * Copies at most ECHO_MAX characters of valid UTF-8 s into out (of size bytes,
 * at least 4 * ECHO_MAX + 4) for a message: control characters as '?', "..."
 * if cut.
 */
static void
echo(const char *s, char *out, size_t size)
{
	size_t i = 0, o = 0;
	for (size_t chars = 0; s[i] != '\0' && chars < ECHO_MAX; chars++) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if (o + k + 4 > size)
			break;
		if (c < 0x20 || c == 0x7f) {
			out[o++] = '?';
		} else {
			memcpy(out + o, s + i, k);
			o += k;
		}
		i += k;
	}
	if (s[i] != '\0' && o + 4 <= size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* Lowercases ASCII letters and Ä Ö Ü; returns -1 if s does not fit. */
static int
fold(const char *s, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (o + 1 >= size)
			return -1;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (i > 0 && (unsigned char)s[i - 1] == 0xc3 &&
		         (c == 0x84 || c == 0x96 || c == 0x9c))
			c = (unsigned char)(c + 0x20); /* Ä Ö Ü → ä ö ü */
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

const char *
offices_kind_parse(const char *s)
{
	char folded[64];
	if (fold(s, folded, sizeof(folded)) != 0)
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		if (strcmp(folded, kinds[i].label) == 0)
			return kinds[i].code;
	return NULL;
}

const char *
offices_region_parse(const char *s)
{
	if (strcasecmp(s, "LVR") == 0)
		return "LVR";
	if (strcasecmp(s, "LWL") == 0)
		return "LWL";
	return NULL;
}

static bool
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool
offices_id_valid(const char *id)
{
	size_t len = strlen(id);
	if (len < 1 || len > OFFICES_ID_MAX || !is_lower_alnum(id[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_lower_alnum(id[i]) && id[i] != '-')
			return false;
	return true;
}

void
offices_slug(const char *name, char out[OFFICES_ID_MAX + 1])
{
	const unsigned char *s = (const unsigned char *)name;
	size_t o = 0;
	bool gap = false;

	for (size_t i = 0; s[i] != '\0' && o < OFFICES_ID_MAX;) {
		const char *add = NULL;
		char one[2] = { 0, 0 };
		size_t k = 1;
		if (s[i] >= 'A' && s[i] <= 'Z') {
			one[0] = (char)(s[i] - 'A' + 'a');
			add = one;
		} else if (is_lower_alnum((char)s[i])) {
			one[0] = (char)s[i];
			add = one;
		} else if (s[i] == 0xc3 && (s[i + 1] & 0xc0) == 0x80) {
			k = 2;
			switch (s[i + 1]) {
			case 0xa4: /* ä */
			case 0x84: /* Ä */
				add = "ae";
				break;
			case 0xb6: /* ö */
			case 0x96: /* Ö */
				add = "oe";
				break;
			case 0xbc: /* ü */
			case 0x9c: /* Ü */
				add = "ue";
				break;
			case 0x9f: /* ß */
				add = "ss";
				break;
			}
		} else if (s[i] == 0xe1 && s[i + 1] == 0xba && s[i + 2] == 0x9e) {
			k = 3; /* ẞ, capital sharp s */
			add = "ss";
		} else if (s[i] >= 0xc0) {
			/* Any other letter: skip the whole sequence, it becomes a gap. */
			while ((s[i + k] & 0xc0) == 0x80)
				k++;
		}
		i += k;
		if (add == NULL) {
			gap = true;
			continue;
		}
		if (gap && o > 0 && o < OFFICES_ID_MAX)
			out[o++] = '-';
		gap = false;
		for (; *add != '\0' && o < OFFICES_ID_MAX; add++)
			out[o++] = *add;
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

/* ---- records ---- */

static void
buf_put(struct record *r, char c)
{
	if (r->buflen == r->bufcap) {
		r->bufcap = r->bufcap ? 2 * r->bufcap : 256;
		r->buf = xrealloc(r->buf, r->bufcap);
	}
	r->buf[r->buflen++] = c;
}

static struct field *
new_field(struct record *r)
{
	if (r->nfields == r->fieldcap) {
		r->fieldcap = r->fieldcap ? 2 * r->fieldcap : 8;
		r->fields = xrealloc(r->fields, r->fieldcap * sizeof(*r->fields));
	}
	struct field *f = &r->fields[r->nfields++];
	memset(f, 0, sizeof(*f));
	f->off = r->buflen;
	return f;
}

/* After a syntax error: go on after the next line break. */
static void
skip_line(struct parser *p)
{
	while (p->pos < p->len && p->data[p->pos] != '\n')
		p->pos++;
	if (p->pos < p->len) {
		p->pos++;
		p->line++;
	}
}

static bool
at_crlf(const struct parser *p)
{
	return p->data[p->pos] == '\r' && p->pos + 1 < p->len && p->data[p->pos + 1] == '\n';
}

enum record_status { RECORD_OK, RECORD_BAD, RECORD_END };

/* Reads one record into r. RECORD_BAD: a syntax error was recorded, r is unusable. */
static enum record_status
read_record(struct parser *p, struct record *r)
{
	r->nfields = 0;
	r->buflen = 0;
	r->line = p->line;
	if (p->pos >= p->len)
		return RECORD_END;
	for (;;) {
		struct field *f = new_field(r);
		f->line = p->line;
		if (p->pos < p->len && p->data[p->pos] == '"') {
			f->quoted = true;
			p->pos++;
			for (;;) {
				if (p->pos >= p->len) {
					add_error(p, f->line, "csv",
					    "unterminated quoted field (opened on this line)");
					return RECORD_BAD;
				}
				char c = p->data[p->pos++];
				if (c == '"') {
					if (p->pos < p->len && p->data[p->pos] == '"') {
						p->pos++;
						buf_put(r, '"');
						continue;
					}
					break;
				}
				if (c == '\n')
					p->line++;
				buf_put(r, c);
			}
		} else {
			while (p->pos < p->len) {
				char c = p->data[p->pos];
				if (c == ',' || c == '\n' || at_crlf(p))
					break;
				if (c == '"') {
					add_error(p, p->line, "csv",
					    "quote inside an unquoted field (quote the whole field "
					    "and double the quotes in it)");
					skip_line(p);
					return RECORD_BAD;
				}
				buf_put(r, c);
				p->pos++;
			}
		}
		f->len = r->buflen - f->off;
		buf_put(r, '\0');
		if (p->pos >= p->len)
			return RECORD_OK;
		if (p->data[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->data[p->pos] == '\n' || at_crlf(p)) {
			p->pos += p->data[p->pos] == '\n' ? 1 : 2;
			p->line++;
			return RECORD_OK;
		}
		add_error(p, p->line, "csv", "unexpected text after a closing quote");
		skip_line(p);
		return RECORD_BAD;
	}
}

/* Field i of r, trimmed of surrounding spaces and tabs (in place). */
static char *
value(struct record *r, size_t i)
{
	char *s = r->buf + r->fields[i].off;
	size_t len = r->fields[i].len;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	s[len] = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* How errors call field i: its column's header name, or "csv" for an ignored column. */
static const char *
field_name(const struct parser *p, size_t i)
{
	for (int c = 0; c < COL_COUNT; c++)
		if (p->index[c] >= 0 && (size_t)p->index[c] == i)
			return p->colname[c];
	return "csv";
}

/* Checks every field of r for UTF-8, reporting the line of the bad byte. */
static bool
check_utf8(struct parser *p, struct record *r)
{
	bool ok = true;
	for (size_t i = 0; i < r->nfields; i++) {
		const struct field *f = &r->fields[i];
		const char *s = r->buf + f->off;
		size_t bad;
		if (utf8_check((const unsigned char *)s, f->len, &bad) >= 0)
			continue;
		int line = f->line;
		for (size_t j = 0; j < bad; j++)
			if (s[j] == '\n')
				line++;
		add_error(p, line, field_name(p, i),
		    "invalid UTF-8 (or a NUL byte) at byte %zu of the field", bad + 1);
		ok = false;
	}
	return ok;
}

/* ---- ids seen ---- */

static uint64_t
hash_id(const char *s)
{
	uint64_t h = 14695981039346656037u; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static struct id_slot *
id_find(struct id_set *set, const char *id)
{
	size_t i = (size_t)(hash_id(id) & (set->cap - 1));
	while (set->slots[i].line != 0 && strcmp(set->slots[i].id, id) != 0)
		i = (i + 1) & (set->cap - 1);
	return &set->slots[i];
}

/* Records id at line; returns the line of an earlier row with the same id, or 0. */
static int
id_add(struct id_set *set, const char *id, int line)
{
	if (2 * (set->n + 1) > set->cap) {
		struct id_set grown;
		grown.cap = set->cap ? 2 * set->cap : 64;
		grown.n = set->n;
		grown.slots = xcalloc(grown.cap, sizeof(*grown.slots));
		for (size_t i = 0; i < set->cap; i++)
			if (set->slots[i].line != 0)
				*id_find(&grown, set->slots[i].id) = set->slots[i];
		free(set->slots);
		*set = grown;
	}
	struct id_slot *slot = id_find(set, id);
	if (slot->line != 0)
		return slot->line;
	snprintf(slot->id, sizeof(slot->id), "%s", id);
	slot->line = line;
	set->n++;
	return 0;
}

/* ---- header and rows ---- */

static void
check_header(struct parser *p, struct record *r)
{
	p->ncols = r->nfields;
	for (int c = 0; c < COL_COUNT; c++) {
		p->index[c] = -1;
		p->colname[c] = columns[c].names[0];
	}
	if (!check_utf8(p, r))
		return;
	for (size_t i = 0; i < r->nfields; i++) {
		const char *h = value(r, i);
		for (int c = 0; c < COL_COUNT; c++) {
			for (int k = 0; k < 3 && columns[c].names[k] != NULL; k++) {
				if (strcasecmp(h, columns[c].names[k]) != 0)
					continue;
				if (p->index[c] >= 0) {
					add_error(p, r->line, "header",
					    "column %zu (\"%s\") repeats column %d (\"%s\")", i + 1,
					    columns[c].names[k], p->index[c] + 1, p->colname[c]);
					continue;
				}
				p->index[c] = (int)i;
				p->colname[c] = columns[c].names[k];
			}
		}
	}
	p->columns_ok = true;
	for (int c = 0; c < COL_COUNT; c++) {
		if (!columns[c].required || p->index[c] >= 0)
			continue;
		p->columns_ok = false;
		if (columns[c].names[1] != NULL)
			add_error(p, r->line, "header",
			    "required column \"%s\" (or \"%s\") missing", columns[c].names[1],
			    columns[c].names[0]);
		else
			add_error(p, r->line, "header", "required column \"%s\" missing",
			    columns[c].names[0]);
	}
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* The population as a long, -1 if empty, -2 if not a non-negative integer, -3 if too large. */
static long
parse_population(const char *s)
{
	long n = 0;
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -2;
		n = 10 * n + (*s - '0');
		if (n > POPULATION_MAX)
			return -3;
	}
	return n;
}

static void
check_row(struct parser *p, struct record *r)
{
	struct office o;
	char shown[4 * ECHO_MAX + 8];
	size_t before = p->out->nerrors;

	bool utf8_ok = check_utf8(p, r);
	if (r->nfields != p->ncols) {
		add_error(p, r->line, "csv", "expected %zu fields as in the header, found %zu",
		    p->ncols, r->nfields);
		return;
	}
	if (!utf8_ok)
		return;

	memset(&o, 0, sizeof(o));
	o.line = r->line;
	o.population_under_18 = -1;

	bool name_ok = false;
	if (p->index[COL_NAME] >= 0) {
		const char *s = value(r, (size_t)p->index[COL_NAME]);
		size_t bad;
		long chars = utf8_check((const unsigned char *)s, strlen(s), &bad);
		if (*s == '\0')
			add_error(p, r->line, p->colname[COL_NAME], "missing");
		else if (chars > OFFICES_NAME_MAX)
			add_error(p, r->line, p->colname[COL_NAME],
			    "%ld characters, at most %d allowed", chars, OFFICES_NAME_MAX);
		else if (has_control(s))
			add_error(p, r->line, p->colname[COL_NAME],
			    "contains a line break or other control character");
		else
			name_ok = true;
		if (name_ok)
			snprintf(o.name, sizeof(o.name), "%s", s);
	}
	if (p->index[COL_KIND] >= 0) {
		const char *s = value(r, (size_t)p->index[COL_KIND]);
		o.kind = offices_kind_parse(s);
		echo(s, shown, sizeof(shown));
		if (*s == '\0')
			add_error(p, r->line, p->colname[COL_KIND], "missing");
		else if (o.kind == NULL)
			add_error(p, r->line, p->colname[COL_KIND],
			    "unknown kind \"%s\" (kreisfreie Stadt, Kreis, kreisangehörige Stadt "
			    "or their codes)",
			    shown);
	}
	if (p->index[COL_REGION] >= 0) {
		const char *s = value(r, (size_t)p->index[COL_REGION]);
		o.region = offices_region_parse(s);
		echo(s, shown, sizeof(shown));
		if (*s == '\0')
			add_error(p, r->line, p->colname[COL_REGION], "missing");
		else if (o.region == NULL)
			add_error(p, r->line, p->colname[COL_REGION],
			    "unknown region \"%s\" (LVR or LWL)", shown);
	}
	if (p->index[COL_POPULATION] >= 0) {
		const char *s = value(r, (size_t)p->index[COL_POPULATION]);
		long n = parse_population(s);
		echo(s, shown, sizeof(shown));
		if (n == -2)
			add_error(p, r->line, p->colname[COL_POPULATION],
			    "\"%s\" is not a non-negative whole number", shown);
		else if (n == -3)
			add_error(p, r->line, p->colname[COL_POPULATION],
			    "\"%s\" is too large (at most %ld)", shown, POPULATION_MAX);
		else
			o.population_under_18 = n;
	}

	const char *given = p->index[COL_ID] >= 0 ? value(r, (size_t)p->index[COL_ID]) : "";
	if (*given != '\0') {
		echo(given, shown, sizeof(shown));
		if (offices_id_valid(given))
			snprintf(o.id, sizeof(o.id), "%s", given);
		else
			add_error(p, r->line, p->colname[COL_ID],
			    "\"%s\" is not a valid id (1 to %d of a-z, 0-9 and '-', not "
			    "starting with '-')",
			    shown, OFFICES_ID_MAX);
	} else if (name_ok) {
		offices_slug(o.name, o.id);
		if (o.id[0] == '\0')
			add_error(p, r->line, p->colname[COL_ID],
			    "no id given and the name has no letter or digit to derive one from");
	}
	if (o.id[0] != '\0') {
		int first = id_add(&p->ids, o.id, r->line);
		if (first != 0)
			add_error(p, r->line, p->colname[COL_ID],
			    "duplicate id \"%s\" (first on line %d)", o.id, first);
	}

	if (p->out->nerrors != before || !p->columns_ok)
		return;
	if (p->out->nrows == p->rowcap) {
		p->rowcap = p->rowcap ? 2 * p->rowcap : 64;
		p->out->rows = xrealloc(p->out->rows, p->rowcap * sizeof(*p->out->rows));
	}
	p->out->rows[p->out->nrows++] = o;
}

struct offices_csv *
offices_csv_parse(const char *data, size_t len)
{
	struct parser p;
	struct record r;
	bool header = false;

	memset(&p, 0, sizeof(p));
	memset(&r, 0, sizeof(r));
	p.out = xcalloc(1, sizeof(*p.out));
	p.data = data;
	p.len = len;
	p.line = 1;
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		p.pos = 3;

	for (;;) {
		enum record_status st = read_record(&p, &r);
		if (st == RECORD_END)
			break;
		if (st == RECORD_BAD) {
			if (!header)
				break; /* without columns no row can be checked */
			continue;
		}
		/* A blank line is no record (a trailing one is common). */
		if (r.nfields == 1 && r.fields[0].len == 0 && !r.fields[0].quoted)
			continue;
		if (!header) {
			check_header(&p, &r);
			header = true;
		} else {
			check_row(&p, &r);
		}
	}
	if (!header && p.out->nerrors == 0)
		add_error(&p, 1, "header", "the file is empty; a header row is required");
	free(r.fields);
	free(r.buf);
	free(p.ids.slots);
	return p.out;
}

void
offices_csv_free(struct offices_csv *csv)
{
	if (csv == NULL)
		return;
	free(csv->rows);
	free(csv->errors);
	free(csv);
}

/* ---- storage ---- */

/*
 * The WHERE clause skips an update that changes nothing, so a re-import
 * leaves version and updated_at alone; xmax = 0 tells an inserted row from an
 * updated one, and no row back means unchanged.
 */
static const struct db_stmt stmt_upsert = { "offices_upsert",
	"INSERT INTO offices AS o (id, name, kind, region, population_under_18, synthetic)"
	" VALUES ($1, $2, $3, $4, $5::integer, $6::boolean)"
	" ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
	" region = EXCLUDED.region,"
	" population_under_18 = coalesce(EXCLUDED.population_under_18, o.population_under_18),"
	" synthetic = EXCLUDED.synthetic, version = o.version + 1, updated_at = now()"
	" WHERE (o.name, o.kind, o.region, o.population_under_18, o.synthetic)"
	" IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.region,"
	" coalesce(EXCLUDED.population_under_18, o.population_under_18), EXCLUDED.synthetic)"
	" RETURNING xmax = 0" };

int
offices_upsert(struct db *db, const struct office *o, struct offices_counts *counts)
{
	char population[24];
	const char *params[6];

	snprintf(population, sizeof(population), "%ld", o->population_under_18);
	params[0] = o->id;
	params[1] = o->name;
	params[2] = o->kind;
	params[3] = o->region;
	params[4] = o->population_under_18 >= 0 ? population : NULL;
	params[5] = o->synthetic ? "true" : "false";
	PGresult *res = db_exec(db, &stmt_upsert, 6, params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0)
		counts->unchanged++;
	else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		counts->created++;
	else
		counts->updated++;
	PQclear(res);
	return 0;
}
