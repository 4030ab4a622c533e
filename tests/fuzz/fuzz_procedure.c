/* Bodies of POST/PATCH /v1/procedures (fuzz_body.h). */
#include "fuzz_body.h"

static const char current[] =
    "{\"office_id\":\"demo-lvr-001\",\"cycle\":\"2023-2028\",\"out_of_cycle\":false,"
    "\"institute_id\":null,\"phase\":\"preparation\",\"due_date\":\"2027-03-31\"}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&procedures_resource, current, data, size);
	return 0;
}
