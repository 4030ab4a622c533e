/* Bodies of POST/PATCH /v1/case-analyses and POST /v1/case-analyses:batch (fuzz_body.h). */
#include "fuzz_body.h"

/* A stored case analysis's writable part, as PATCH merges into it. */
static const char current[] =
    "{\"procedure_id\":\"1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d\",\"selection\":\"random\","
    "\"closed_month\":\"2022-05\",\"child\":{\"sex\":\"weiblich\",\"birth_month\":\"2015-03\"},"
    "\"parents_age_group\":\"27_und_aelter\",\"reported_by\":\"schule\","
    "\"result\":\"latente_gefaehrdung\",\"endangerment_forms\":[\"vernachlaessigung\"],"
    "\"process\":{\"days_to_first_contact\":2,\"direct_impression\":true,"
    "\"several_professionals\":true,\"child_involved\":true,\"parents_involved\":true,"
    "\"insofa_consulted\":false,\"family_court_called\":false,\"taken_into_care\":false,"
    "\"services_before\":false,\"services_after\":true},"
    "\"ratings\":{\"intake\":3,\"four_eyes_assessment\":4},"
    "\"learning_themes\":[\"documentation\"],\"findings\":\"Gut dokumentiert.\","
    "\"locked\":false}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&case_analyses_resource, current, data, size);
	return 0;
}
