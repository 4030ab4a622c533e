/*
 * caller — what every handler of case-level data needs about its caller and
 * its writes: the row scope the API puts into its queries (RLS applies the
 * same scope again), whether a read is from outside the owning office (then
 * audited), the office_changed event every write emits, and the dry_run flag.
 */
#ifndef KQE_API_CALLER_H
#define KQE_API_CALLER_H

#include <stdbool.h>

#include "kqe/outbox.h"
#include "server.h"

/*
 * The scope parameters of the caller's queries: an office sees its own
 * office (*office), an institute the procedures assigned to it (*institute),
 * admin everything (both NULL). Borrowed from p.
 */
void caller_scope(const struct principal *p, const char **office, const char **institute);

/* Reads of case-level data by anyone but the owning office are audited. */
bool caller_outside_office(const struct principal *p);

/* Inside the write's transaction: the office_changed event the aggregator recomputes from. */
int office_changed(struct db *db, const char *office, struct outbox_event *ev) KQE_MUSTCHECK;

/*
 * Parses the query of a write: `allowed` (NULL-terminated) plus the boolean
 * flags dry_run (false unless given) and, if atomic is not NULL, atomic (left
 * at the caller's default unless given); each must be true or false.
 * Answers 400 and returns -1 on any bad parameter.
 */
int write_params(
    struct request *r, const char *const *allowed, int *dry_run, int *atomic) KQE_MUSTCHECK;

/* Reads one record in the caller's scope; NULL (and *failed 0) if not there or not theirs. */
typedef json_t *(*caller_read_fn)(
    struct request *r, const char *id, char *office_out, size_t office_size, int *failed);
/* Turns a record read into its answer (decrypting what the caller may read); takes c. */
typedef json_t *(*caller_render_fn)(struct request *r, json_t *c);

/*
 * GET of one case-level record: reads it as the caller (404 when not there or
 * not theirs), audits the read as `action` when the caller is outside the
 * owning office, and answers it with its ETag. render may be NULL.
 */
void reply_read_audited(struct request *r, const char *id, caller_read_fn read,
    caller_render_fn render, const char *action, const char *resource);

/* The string value of v, or NULL if v is not a string. */
const char *json_text(const json_t *v);

#endif
