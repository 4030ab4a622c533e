/* Bodies of POST/PUT /v1/structure-surveys (fuzz_body.h; a merge patch too, harmlessly). */
#include "fuzz_body.h"

static const char current[] =
    "{\"procedure_id\":\"1d3c5b7a-9e8f-4a6b-8c2d-0e1f2a3b4c5d\",\"reference_date\":\"2024-12-31\","
    "\"asd_staff_fte\":42.5,\"vacancies_fte\":3.5,\"staff_turnover_12m\":6,"
    "\"share_experience_under_2y_percent\":18.2,\"cases_per_fte\":31,"
    "\"written_8a_procedure\":true,\"written_8a_last_revised\":\"2023-06-01\","
    "\"on_call_24_7\":true,\"agreements_8a4_count\":57,\"insofa_pool_size\":9,"
    "\"supervision\":true,\"training_hours_per_fte\":24.5,\"standard_risk_instrument\":false,"
    "\"cooperation\":{\"police\":true,\"health\":true,\"schools\":false,\"family_court\":null},"
    "\"child_complaint_procedure\":null}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&structure_surveys_resource, current, data, size);
	return 0;
}
