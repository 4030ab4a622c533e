/*
 * Bodies of POST /v1/providers, PATCH /v1/providers/{id}, POST
 * /v1/protection-concepts and PATCH /v1/protection-concepts/{id}
 * (fuzz_body.h): the same input as either resource's.
 */
#include "fuzz_body.h"

static const char provider[] =
    "{\"id\":\"traeger-muenster\",\"name\":\"Pflegekinderdienst e. V.\",\"seat\":\"Münster\","
    "\"region\":\"LWL\",\"office_ids\":[\"demo-lwl-001\",\"demo-lwl-002\"]}";
static const char concept[] =
    "{\"adopted_on\":\"2025-03-01\",\"next_review_on\":\"2027-03-01\",\"elements\":{"
    "\"childrens_rights\":true,\"foster_carer_participation\":true,"
    "\"young_people_participation\":false,\"complaint_internal\":true,"
    "\"complaint_external\":false,\"risk_analysis\":true,\"suspicion_procedure\":true,"
    "\"contact_persons\":true,\"training\":false,\"review\":true},"
    "\"participants\":[\"foster_carers\",\"young_people\"]}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&providers_resource, provider, data, size);
	fuzz_body(&protection_concepts_resource, concept, data, size);
	return 0;
}
