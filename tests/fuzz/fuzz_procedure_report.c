/*
 * Bodies of POST /v1/procedure-reports, PATCH /v1/procedures/{id}/report and
 * POST /v1/report-comments (fuzz_body.h): the same input as either resource's.
 */
#include "fuzz_body.h"

static const char report[] =
    "{\"procedure_id\":\"1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d\",\"assessment\":\"Überwiegend "
    "fachgerecht.\",\"strengths\":null,\"development_needs\":\"Beteiligung verankern.\","
    "\"recommendations\":null,\"status\":\"draft\"}";
static const char comment[] =
    "{\"procedure_id\":\"1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d\",\"text\":\"Einverstanden.\"}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&procedure_reports_resource, report, data, size);
	fuzz_body(&report_comments_resource, comment, data, size);
	return 0;
}
