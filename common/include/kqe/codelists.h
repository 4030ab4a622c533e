/*
 * codelists — every code list of the domain (docs/domain.md, modules 1–7) with a
 * German and an English label per code, as static data. GET /v1/codelists
 * serves them so frontends never hard-code a label, and the request
 * validators take their FIELD_ENUM values from here, so a code exists in
 * exactly one place.
 *
 * Labels: German as a Jugendamt clerk reads it; where the official § 8a
 * statistics (§ 99 (6) SGB VIII) name a category, its wording (including its
 * lower-case adjectives: "akute Kindeswohlgefährdung", "anonym"). English
 * labels are for non-German frontends and documentation.
 *
 * Rating scale (list "rating", codes "1".."4", one per quality_dimension):
 * 1 = fully met ("gut umgesetzt"), 2 = mostly met, 3 = partly met, 4 = not
 * met — like German school marks, lower is better.
 *
 * Everything here is immutable static storage: pointers returned are valid
 * for the life of the process, shared by all threads, and never freed.
 */
#ifndef KQE_CODELISTS_H
#define KQE_CODELISTS_H

#include <stdbool.h>
#include <stddef.h>

struct code {
	const char *code; /* what the API stores and accepts, e.g. "akute_gefaehrdung" */
	const char *label_de;
	const char *label_en;
};

struct codelist {
	const char *id; /* snake_case, e.g. "assessment_result" */
	const char *title_de;
	const char *title_en;
	const struct code *codes; /* in their natural order (phases: the procedure's order) */
	size_t count;
};

/* All lists, in the stable order GET /v1/codelists serves them. */
extern const struct codelist *const codelists[];
extern const size_t codelists_count;
/* Their ids, in the same order, NULL-terminated. */
extern const char *const codelist_ids[];

/* The list with this id, or NULL (also for id == NULL). */
const struct codelist *codelist_find(const char *id);

/* The entry for code in list, or NULL (also for a NULL list or code). */
const struct code *codelist_code(const struct codelist *list, const char *code);

/* True if code is one of list's codes. */
bool codelist_has(const struct codelist *list, const char *code);

/*
 * The list's codes in order as a NULL-terminated array, usable as `values` of
 * a FIELD_ENUM field spec (kqe/validate.h). NULL for a list not from
 * codelists[]. Static storage, generated with the codes so the two cannot
 * drift.
 */
const char *const *codelist_values(const struct codelist *list);

/*
 * The same arrays by name, for static field-spec tables, which need an
 * address constant (a function call is not allowed in their initialisers):
 *
 *	{ .name = "sex", .type = FIELD_ENUM, .values = codelist_sex_values }
 */
extern const char *const codelist_office_kind_values[];
extern const char *const codelist_region_values[];
extern const char *const codelist_state_values[];
extern const char *const codelist_programme_role_values[];
extern const char *const codelist_criterion_answer_values[];
extern const char *const codelist_application_status_values[];
extern const char *const codelist_office_size_values[];
extern const char *const codelist_event_kind_values[];
extern const char *const codelist_registration_status_values[];
extern const char *const codelist_professional_status_values[];
extern const char *const codelist_service_request_status_values[];
extern const char *const codelist_material_kind_values[];
extern const char *const codelist_material_visibility_values[];
extern const char *const codelist_procedure_phase_values[];
extern const char *const codelist_selection_values[];
extern const char *const codelist_sex_values[];
extern const char *const codelist_parents_age_group_values[];
extern const char *const codelist_reporter_values[];
extern const char *const codelist_assessment_result_values[];
extern const char *const codelist_endangerment_form_values[];
extern const char *const codelist_quality_dimension_values[];
extern const char *const codelist_rating_values[];
extern const char *const codelist_learning_theme_values[];
extern const char *const codelist_topic_status_values[];
extern const char *const codelist_topic_priority_values[];
extern const char *const codelist_advice_kind_values[];
extern const char *const codelist_advice_status_values[];
extern const char *const codelist_advice_topic_values[];
extern const char *const codelist_advice_urgency_values[];
extern const char *const codelist_advice_decline_reason_values[];
extern const char *const codelist_concept_element_values[];
extern const char *const codelist_concept_participant_values[];
extern const char *const codelist_concept_status_values[];
extern const char *const codelist_role_values[];

#endif
