/* codelists: shape of every list, the codes docs/domain.md lists, labels, lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kqe/codelists.h"
#include "kqe/principal.h"
#include "kqe/util.h"
#include "kqe/validate.h"

static bool
matches(const char *s, const char *alphabet)
{
	return *s != '\0' && strspn(s, alphabet) == strlen(s);
}

static void
check_text(const char *list, const char *what, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0)
		fail_msg("%s: %s is empty", list, what);
	if (!utf8_valid(s))
		fail_msg("%s: %s is not valid UTF-8", list, what);
	if (s[0] == ' ' || s[n - 1] == ' ' || strstr(s, "  ") != NULL)
		fail_msg("%s: %s \"%s\" has stray spaces", list, what, s);
}

static void
test_every_list_is_well_formed(void **state)
{
	(void)state;
	assert_true(codelists_count > 0);
	for (size_t i = 0; i < codelists_count; i++) {
		const struct codelist *l = codelists[i];
		assert_non_null(l);
		if (!matches(l->id, "abcdefghijklmnopqrstuvwxyz_"))
			fail_msg("list id \"%s\" is not snake_case", l->id);
		check_text(l->id, "title_de", l->title_de);
		check_text(l->id, "title_en", l->title_en);
		if (l->count == 0)
			fail_msg("%s is empty", l->id);
		assert_ptr_equal(codelist_find(l->id), l);
		for (size_t j = 0; j < i; j++)
			if (strcmp(codelists[j]->id, l->id) == 0)
				fail_msg("list id %s twice", l->id);
		for (size_t k = 0; k < l->count; k++) {
			const struct code *c = &l->codes[k];
			if (c->code == NULL ||
			    !matches(c->code, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			                      "0123456789_"))
				fail_msg("%s: code \"%s\" is not [A-Za-z0-9_]+", l->id,
				    c->code ? c->code : "(null)");
			check_text(l->id, c->code, c->label_de);
			check_text(l->id, c->code, c->label_en);
			for (size_t j = 0; j < k; j++)
				if (strcmp(l->codes[j].code, c->code) == 0)
					fail_msg("%s: code %s twice", l->id, c->code);
			assert_ptr_equal(codelist_code(l, c->code), c);
			assert_true(codelist_has(l, c->code));
		}
	}
}

static void
test_values_are_the_codes_in_order_null_terminated(void **state)
{
	(void)state;
	for (size_t i = 0; i < codelists_count; i++) {
		const struct codelist *l = codelists[i];
		const char *const *v = codelist_values(l);
		assert_non_null(v);
		for (size_t k = 0; k < l->count; k++) {
			assert_non_null(v[k]);
			assert_string_equal(v[k], l->codes[k].code);
		}
		assert_null(v[l->count]);
		/* Static storage: the same array every time. */
		assert_ptr_equal(codelist_values(l), v);
	}
}

/* Every list is exported by name too, and it is the very array codelist_values() gives. */
static void
test_named_value_arrays(void **state)
{
	(void)state;
	static const struct {
		const char *id;
		const char *const *values;
	} named[] = {
		{ "office_kind", codelist_office_kind_values },
		{ "region", codelist_region_values },
		{ "state", codelist_state_values },
		{ "procedure_phase", codelist_procedure_phase_values },
		{ "selection", codelist_selection_values },
		{ "sex", codelist_sex_values },
		{ "parents_age_group", codelist_parents_age_group_values },
		{ "reporter", codelist_reporter_values },
		{ "assessment_result", codelist_assessment_result_values },
		{ "endangerment_form", codelist_endangerment_form_values },
		{ "quality_dimension", codelist_quality_dimension_values },
		{ "rating", codelist_rating_values },
		{ "learning_theme", codelist_learning_theme_values },
		{ "topic_status", codelist_topic_status_values },
		{ "topic_priority", codelist_topic_priority_values },
		{ "advice_kind", codelist_advice_kind_values },
		{ "advice_status", codelist_advice_status_values },
		{ "advice_topic", codelist_advice_topic_values },
		{ "advice_urgency", codelist_advice_urgency_values },
		{ "advice_decline_reason", codelist_advice_decline_reason_values },
		{ "concept_element", codelist_concept_element_values },
		{ "concept_participant", codelist_concept_participant_values },
		{ "concept_status", codelist_concept_status_values },
		{ "programme_role", codelist_programme_role_values },
		{ "criterion_answer", codelist_criterion_answer_values },
		{ "application_status", codelist_application_status_values },
		{ "office_size", codelist_office_size_values },
		{ "event_kind", codelist_event_kind_values },
		{ "registration_status", codelist_registration_status_values },
		{ "professional_status", codelist_professional_status_values },
		{ "service_request_status", codelist_service_request_status_values },
		{ "material_kind", codelist_material_kind_values },
		{ "material_visibility", codelist_material_visibility_values },
		{ "role", codelist_role_values },
	};
	assert_int_equal(ARRAY_LEN(named), codelists_count);
	for (size_t i = 0; i < ARRAY_LEN(named); i++) {
		/* Also the serving order: module order, as docs/domain.md lists them. */
		assert_string_equal(codelists[i]->id, named[i].id);
		assert_ptr_equal(codelist_values(codelist_find(named[i].id)), named[i].values);
	}
}

/*
 * The codes exactly as docs/domain.md lists them ("Code lists"), in its order
 * (phases: the procedure's).
 */
static void
expect_codes(const char *id, const char *const *want, size_t n)
{
	const struct codelist *l = codelist_find(id);
	if (l == NULL)
		fail_msg("no list %s", id);
	if (l->count != n)
		fail_msg("%s has %zu codes, docs/domain.md lists %zu", id, l->count, n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(l->codes[i].code, want[i]) != 0)
			fail_msg("%s[%zu] is %s, expected %s", id, i, l->codes[i].code, want[i]);
}

#define EXPECT(id, ...)                                                                            \
	do {                                                                                       \
		static const char *const want[] = { __VA_ARGS__ };                                 \
		expect_codes(id, want, ARRAY_LEN(want));                                           \
	} while (0)

static void
test_codes_and_counts_of_domain_doc(void **state)
{
	(void)state;
	EXPECT("office_kind", "kreisfreie_stadt", "kreis", "kreisangehoerige_stadt");
	EXPECT("region", "LVR", "LWL");
	EXPECT("procedure_phase", "planned", "case_selection", "case_analysis",
	    "structure_analysis", "evaluation", "report", "completed");
	EXPECT("selection", "random", "added_by_office");
	EXPECT("sex", "maennlich", "weiblich", "divers", "ohne_angabe");
	EXPECT("parents_age_group", "unter_18", "18_bis_unter_27", "27_und_aelter", "unbekannt");
	EXPECT("reporter", "polizei_gericht_staatsanwaltschaft", "schule", "kita_kindertagespflege",
	    "gesundheitswesen", "verwandte", "bekannte_nachbarn", "eltern", "minderjaehrige_selbst",
	    "soziale_dienste_jugendamt", "beratungsstelle", "einrichtung_jugendhilfe", "anonym",
	    "sonstige");
	EXPECT("assessment_result", "akute_gefaehrdung", "latente_gefaehrdung",
	    "hilfebedarf_ohne_gefaehrdung", "weder_gefaehrdung_noch_hilfebedarf");
	EXPECT("endangerment_form", "vernachlaessigung", "koerperliche_misshandlung",
	    "psychische_misshandlung", "sexuelle_gewalt");
	EXPECT("quality_dimension", "intake", "first_assessment", "direct_contact",
	    "four_eyes_assessment", "child_participation", "parent_participation",
	    "safety_planning", "help_planning", "cooperation", "documentation", "case_transfer");
	EXPECT("rating", "1", "2", "3", "4");
	EXPECT("learning_theme", "information_sharing", "risk_assessment_update",
	    "collegial_assessment", "direct_contact_with_child", "documentation", "childs_voice",
	    "engaging_reluctant_families", "critical_thinking_bias", "multi_agency_roles",
	    "supervision_leadership", "resources_caseload", "tools_forms", "specific_risk_babies",
	    "specific_risk_domestic_abuse", "specific_risk_parental_mental_health_substances",
	    "specific_risk_disability", "specific_risk_extrafamilial",
	    "specific_risk_sexual_abuse");
	EXPECT("topic_status", "identified", "in_progress", "implemented", "dropped");
	EXPECT("topic_priority", "high", "medium", "low");
	EXPECT("advice_kind", "case_specific", "structural");
	EXPECT("advice_status", "submitted", "accepted", "in_progress", "answered", "closed",
	    "declined", "withdrawn");
	EXPECT("advice_topic", "intake", "first_assessment", "direct_contact", "child_involvement",
	    "parents_involvement", "several_professionals", "cooperation", "safety_planning",
	    "family_court", "taking_into_care", "documentation", "handover", "other");
	EXPECT("advice_urgency", "routine", "soon", "urgent");
	EXPECT("advice_decline_reason", "supervisory_matter", "case_decision", "outside_remit",
	    "duplicate");
	EXPECT("concept_element", "childrens_rights", "foster_carer_participation",
	    "young_people_participation", "complaint_internal", "complaint_external",
	    "risk_analysis", "suspicion_procedure", "contact_persons", "training", "review");
	EXPECT("concept_participant", "foster_carers", "young_people", "birth_parents",
	    "professionals", "external_experts");
	EXPECT("concept_status", "current", "review_overdue", "missing");
	EXPECT("role", "office_staff", "office_lead", "institute", "advisor", "ministry", "admin",
	    "provider_staff", "programme_team", "professional");
	EXPECT("programme_role", "model", "partner", "pilot");
	EXPECT("criterion_answer", "yes_no", "text");
	EXPECT(
	    "application_status", "submitted", "waitlisted", "selected", "rejected", "withdrawn");
	EXPECT("office_size", "small", "medium", "large", "unknown");
	EXPECT("state", "BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL",
	    "SN", "ST", "SH", "TH");
	EXPECT("event_kind", "workshop", "online_seminar", "network_meeting",
	    "participation_workshop", "working_group_meeting", "expert_workshop",
	    "transfer_conference");
	EXPECT("registration_status", "registered", "waitlisted", "cancelled");
	EXPECT("professional_status", "unconfirmed", "confirmed", "approved", "rejected");
	EXPECT("service_request_status", "open", "answered", "closed");
	EXPECT("material_kind", "instrument", "method", "slides", "recording", "document", "other");
	EXPECT("material_visibility", "programme", "public");
	assert_int_equal(codelists_count, 34);

	/* The list sizes once more, as numbers (docs/domain.md, "Code lists"). */
	assert_int_equal(codelist_find("assessment_result")->count, 4);
	assert_int_equal(codelist_find("endangerment_form")->count, 4);
	assert_int_equal(codelist_find("reporter")->count, 13);
	assert_int_equal(codelist_find("quality_dimension")->count, 11);
	assert_int_equal(codelist_find("learning_theme")->count, 18);
	assert_int_equal(codelist_find("procedure_phase")->count, 7);
}

/* The role list is the API's roles, spelled as principal.c spells them. */
static void
test_roles_are_the_principal_roles(void **state)
{
	(void)state;
	const struct codelist *l = codelist_find("role");
	assert_int_equal(l->count, ROLE_API_LAST - ROLE_API_FIRST + 1);
	for (int role = ROLE_API_FIRST; role <= ROLE_API_LAST; role++) {
		enum role parsed;
		const char *code = l->codes[role - ROLE_API_FIRST].code;
		assert_string_equal(code, role_name((enum role)role));
		assert_int_equal(role_parse(code, &parsed), 0);
		assert_int_equal(parsed, role);
	}
}

static void
expect_label(const char *id, const char *code, const char *de, const char *en)
{
	const struct code *c = codelist_code(codelist_find(id), code);
	if (c == NULL)
		fail_msg("no code %s in %s", code, id);
	assert_string_equal(c->label_de, de);
	if (en != NULL)
		assert_string_equal(c->label_en, en);
}

static void
test_german_labels(void **state)
{
	(void)state;
	expect_label("assessment_result", "akute_gefaehrdung", "akute Kindeswohlgefährdung", NULL);
	expect_label(
	    "assessment_result", "latente_gefaehrdung", "latente Kindeswohlgefährdung", NULL);
	expect_label("assessment_result", "hilfebedarf_ohne_gefaehrdung",
	    "Hilfebedarf ohne Kindeswohlgefährdung", NULL);
	expect_label("assessment_result", "weder_gefaehrdung_noch_hilfebedarf",
	    "weder Kindeswohlgefährdung noch Hilfebedarf", NULL);
	expect_label("sex", "maennlich", "männlich", "Male");
	expect_label("endangerment_form", "koerperliche_misshandlung", "körperliche Misshandlung",
	    "Physical abuse");
	expect_label("reporter", "minderjaehrige_selbst", "Minderjährige(r) selbst", NULL);
	expect_label("reporter", "polizei_gericht_staatsanwaltschaft",
	    "Polizei/Gericht/Staatsanwaltschaft", NULL);
	expect_label("office_kind", "kreisangehoerige_stadt", "Kreisangehörige Stadt", NULL);
	/* The umlaut is the two bytes of U+00E4, not a transliteration or Latin-1. */
	assert_memory_equal(
	    codelist_code(codelist_find("sex"), "maennlich")->label_de, "m\xc3\xa4nnlich", 10);

	/* No German label spells an umlaut the way the codes do. */
	static const char *const transliterated[] = { "gefaehrd", "Gefaehrd", "aelter", "maennl",
		"koerper", "Koerper", "laessig", "jaehrig", "Qualitaet", "staendig", "fuer",
		"ueber", "Ueber", "Fachkraefte", "Saeugl", "haeusl", "ausserhalb", "Behoerde",
		NULL };
	for (size_t i = 0; i < codelists_count; i++) {
		const struct codelist *l = codelists[i];
		for (size_t k = 0; k < l->count; k++)
			for (const char *const *t = transliterated; *t; t++)
				if (strstr(l->codes[k].label_de, *t) != NULL)
					fail_msg("%s/%s: \"%s\" transliterates an umlaut", l->id,
					    l->codes[k].code, l->codes[k].label_de);
		for (const char *const *t = transliterated; *t; t++)
			if (strstr(l->title_de, *t) != NULL)
				fail_msg("%s: title \"%s\" transliterates an umlaut", l->id,
				    l->title_de);
	}
}

/* 1 = fully met … 4 = not met; every label leads with its digit. */
static void
test_rating_scale(void **state)
{
	(void)state;
	const struct codelist *l = codelist_find("rating");
	for (size_t k = 0; k < l->count; k++) {
		/* "<digit> – ", the dash being U+2013 EN DASH */
		char digit[2] = { (char)('1' + k), '\0' };
		char prefix[] = { digit[0], ' ', '\xe2', '\x80', '\x93', ' ', '\0' };
		assert_string_equal(l->codes[k].code, digit);
		assert_memory_equal(l->codes[k].label_de, prefix, strlen(prefix));
		assert_memory_equal(l->codes[k].label_en, prefix, strlen(prefix));
	}
	expect_label("rating", "1", "1 – gut umgesetzt", "1 – fully met");
	expect_label("rating", "4", "4 – nicht umgesetzt", "4 – not met");
}

static void
test_lookup_of_unknown_list_or_code_fails(void **state)
{
	(void)state;
	const struct codelist *sex = codelist_find("sex");
	const struct codelist fake = { "sex", "x", "x", NULL, 0 };

	assert_non_null(sex);
	assert_null(codelist_find("nope"));
	assert_null(codelist_find(""));
	assert_null(codelist_find(NULL));
	assert_null(codelist_find("Sex"));
	assert_null(codelist_find("sex "));
	assert_null(codelist_find("se"));
	assert_true(codelist_has(sex, "maennlich"));
	assert_false(codelist_has(sex, "male"));
	assert_false(codelist_has(sex, "Maennlich"));
	assert_false(codelist_has(sex, "maennlich "));
	assert_false(codelist_has(sex, ""));
	assert_false(codelist_has(sex, NULL));
	assert_false(codelist_has(NULL, "maennlich"));
	assert_false(codelist_has(codelist_find("reporter"), "maennlich"));
	assert_null(codelist_code(sex, "x"));
	assert_null(codelist_values(NULL));
	assert_null(codelist_values(&fake));
}

/* Usable as FIELD_ENUM values in a static table (an address constant). */
static const struct field_spec child_fields[] = {
	{ .name = "sex", .type = FIELD_ENUM, .required = true, .values = codelist_sex_values },
};

static void
test_values_drive_the_validator(void **state)
{
	(void)state;
	static const char *const good[] = { "{\"sex\":\"maennlich\"}",
		"{\"sex\":\"ohne_angabe\"}" };
	static const char *const bad[] = { "{\"sex\":\"male\"}", "{\"sex\":\"m\\u00e4nnlich\"}",
		"{\"sex\":\"\"}" };
	for (size_t i = 0; i < ARRAY_LEN(good) + ARRAY_LEN(bad); i++) {
		bool ok = i < ARRAY_LEN(good);
		json_t *v = json_loads(ok ? good[i] : bad[i - ARRAY_LEN(good)], 0, NULL);
		json_t *errors = json_array();
		assert_non_null(v);
		assert_int_equal(
		    validate_object(v, child_fields, ARRAY_LEN(child_fields), "", errors),
		    ok ? 0 : 1);
		if (!ok)
			assert_string_equal(
			    json_string_value(json_object_get(json_array_get(errors, 0), "code")),
			    "enum");
		json_decref(errors);
		json_decref(v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_list_is_well_formed),
		cmocka_unit_test(test_values_are_the_codes_in_order_null_terminated),
		cmocka_unit_test(test_named_value_arrays),
		cmocka_unit_test(test_codes_and_counts_of_domain_doc),
		cmocka_unit_test(test_roles_are_the_principal_roles),
		cmocka_unit_test(test_german_labels),
		cmocka_unit_test(test_rating_scale),
		cmocka_unit_test(test_lookup_of_unknown_list_or_code_fails),
		cmocka_unit_test(test_values_drive_the_validator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
