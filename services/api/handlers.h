/*
 * handlers — the domain of each resource, grouped in handlers/<resource>.c:
 * its description for the pipeline (struct resource: SQL, rendering,
 * writable fields, domain steps) and the few routes that are not a plain
 * read, list or write. A handler answers exactly once through http.h.
 */
#ifndef KQE_API_HANDLERS_H
#define KQE_API_HANDLERS_H

#include "pipeline.h"
#include "server.h"

extern const struct resource offices_resource;
extern const struct resource reports_resource;
extern const struct resource jobs_resource;
extern const struct resource procedures_resource;
extern const struct resource case_analyses_resource;
extern const struct resource structure_surveys_resource;
extern const struct resource topics_resource;
extern const struct resource audit_resource;
extern const struct resource procedure_reports_resource;
extern const struct resource report_comments_resource;
extern const struct resource advice_requests_resource;
extern const struct resource advice_messages_resource;
extern const struct resource providers_resource;
extern const struct resource protection_concepts_resource;
extern const struct resource protection_concept_versions_resource;
extern const struct resource programmes_resource;
extern const struct resource calls_resource;
extern const struct resource applications_resource;
extern const struct resource clusters_resource;
extern const struct resource events_resource;
extern const struct resource event_registrations_resource;
extern const struct resource professionals_resource;
extern const struct resource service_requests_resource;
extern const struct resource materials_resource;

/*
 * The team's own programme (handlers/programmes.c): the reference of what a
 * programme's team keeps — calls, clusters, events, materials.
 */
extern const struct db_stmt programme_of_team;
#define OWN_PROGRAMME                                                                              \
	{                                                                                          \
		"programme_id", &programme_of_team, SCOPE_NONE, "is not your programme"            \
	}
/*
 * The tenant filter of a § 8 submission (case analyses, structure surveys, topics) with
 * table alias a: $1 the office scope, $2 the institute scope (row-level security applies as
 * well). The institute's check is a subquery, not a join, so that for everyone else it folds
 * away and an office's list page reads its index in order (a join made the planner read and
 * sort all of an office's cases for every page: 13 ms instead of 1.2 ms over a million).
 */
#define SUBMISSION_SCOPE(a)                                                                        \
	" ($1::text IS NULL OR " a ".office_id = $1) AND ($2::text IS NULL OR EXISTS (SELECT 1"    \
	" FROM procedures scope_p WHERE scope_p.id = " a ".procedure_id"                           \
	" AND scope_p.institute_id = $2))"

void procedure_report_html_reply(struct request *r, const json_t *rep);

void health_live(struct request *r);
void health_ready(struct request *r);
void health_metrics(struct request *r);

/* The API contract (proto/openapi.yaml), embedded at build time: handlers/spec.c. */
void spec_openapi(struct request *r);
void spec_docs(struct request *r);

void me_get(struct request *r);
void audit_head_get(struct request *r);
void benchmark_get(struct request *r);
void cycle_offices(struct request *r);
void concept_coverage(struct request *r);
void call_ranking(struct request *r);
/* iCalendar: a programme's events, and the events the caller has people registered for. */
void events_calendar(struct request *r);
void registrations_calendar(struct request *r);
/* GET /v1/registrations/confirm?token=…: the link of a professional's confirmation mail. */
void registration_confirm(struct request *r);
/* GET /v1/faq: the published FAQ entries of programmes, for everyone. */
void faq_list(struct request *r);

/* GET /v1/materials/{id}/file: a material's file, for those who read the material. */
void material_file(struct request *r);

void reports_create(struct request *r);
void reports_get(struct request *r);
void reports_html(struct request *r);
void reports_csv(struct request *r);
void report_periods(struct request *r);
void ministry_batches_create(struct request *r);

/* The body of POST /v1/ministry-batches ({"period": …}): appends its errors, returns how many. */
size_t ministry_batch_validate(const json_t *body, json_t *errors);

/*
 * A report (the JSON of GET /v1/reports/{id}, borrowed) as the rows of its
 * CSV in long form, one per figure: table, title, dimension_N/value_N (a
 * total: "insgesamt") and the figure with the symbols of German official
 * statistics — "." suppressed, "–" exactly zero, "x" no figure makes sense.
 * A new array; GET /v1/reports/{id}.csv writes it with report_csv_columns.
 */
json_t *report_rows(const json_t *report);
extern const char *const report_csv_columns[];

void case_analyses_batch(struct request *r);

void codelists_list(struct request *r);
void codelists_get(struct request *r);

#endif
