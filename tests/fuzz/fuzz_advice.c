/*
 * Bodies of POST /v1/advice-requests, PATCH /v1/advice-requests/{id} and
 * POST /v1/advice-requests/{id}/messages (fuzz_body.h): the same input as
 * either resource's.
 */
#include "fuzz_body.h"

static const char request[] =
    "{\"kind\":\"case_specific\",\"case_reference\":\"51.2-KWG-2026-0042\",\"topic\":"
    "\"child_involvement\",\"urgency\":\"soon\",\"question\":\"Wie beziehen wir das Kind "
    "ein?\",\"topic_id\":null,\"status\":\"declined\",\"decline_reason\":\"duplicate\"}";
static const char message[] =
    "{\"request_id\":\"1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d\",\"text\":\"Wir empfehlen ein "
    "Gespräch.\"}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&advice_requests_resource, request, data, size);
	fuzz_body(&advice_messages_resource, message, data, size);
	return 0;
}
