/*
 * The office directory as `kqe import offices FILE.csv` reads it
 * (services/kqe/offices_csv.c): any bytes. Every row it accepts is a
 * complete, valid office; every error names a line of the file.
 */
#include "fuzz.h"
#include "kqe/validate.h"
#include "offices_csv.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: the parser must not read past len (ASan sees it). */
	char *copy = malloc(size > 0 ? size : 1);
	FUZZ_ASSERT(copy != NULL);
	if (size > 0)
		memcpy(copy, data, size);
	struct offices_csv *csv = offices_csv_parse(copy, size);
	FUZZ_ASSERT(csv != NULL);
	int lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	for (size_t i = 0; i < csv->nerrors; i++) {
		const struct offices_csv_error *e = &csv->errors[i];
		FUZZ_ASSERT(e->line >= 1 && e->line <= lines);
		FUZZ_ASSERT(e->field[0] != '\0' && e->message[0] != '\0');
	}
	for (size_t i = 0; i < csv->nrows; i++) {
		const struct office *o = &csv->rows[i];
		FUZZ_ASSERT(offices_id_valid(o->id));
		FUZZ_ASSERT(o->name[0] != '\0' && utf8_valid(o->name));
		FUZZ_ASSERT(o->kind != NULL && o->region != NULL);
		FUZZ_ASSERT(o->population_under_18 >= -1);
		FUZZ_ASSERT(o->line >= 2 && o->line <= lines);
	}
	offices_csv_free(csv);

	/* The helpers on one line of it, as a name or a code. */
	char *s = fuzz_string(data, size);
	char slug[OFFICES_ID_MAX + 1];
	if (utf8_valid(s)) {
		offices_slug(s, slug);
		FUZZ_ASSERT(slug[0] == '\0' || offices_id_valid(slug));
	}
	(void)offices_kind_parse(s);
	(void)offices_region_parse(s);
	free(s);
	free(copy);
	return 0;
}
