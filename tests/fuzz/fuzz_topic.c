/* Bodies of POST/PATCH /v1/topics (fuzz_body.h). */
#include "fuzz_body.h"

static const char current[] =
    "{\"procedure_id\":\"1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d\",\"theme\":\"information_sharing\","
    "\"priority\":\"high\",\"description\":\"Übergaben zwischen ASD-Teams verbindlich regeln.\","
    "\"status\":\"identified\",\"follow_up_date\":\"2026-03-31\"}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&topics_resource, current, data, size);
	return 0;
}
