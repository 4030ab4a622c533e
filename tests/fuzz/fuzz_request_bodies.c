/*
 * The bodies that are no resource: POST /v1/reports (report_params_validate,
 * then report_params_parse as the aggregator reads a stored request), POST
 * /v1/ministry-batches (ministry_batch_validate) and POST /v1/download-links
 * (download_link_route). The same input goes through all three.
 */
#include "fuzz.h"
#include "handlers.h"
#include "kqe/report_params.h"
#include "router.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = fuzz_body_json(data, size);
	if (body == NULL)
		return 0;

	json_t *errors = json_array();
	size_t bad = report_params_validate(body, errors);
	FUZZ_ASSERT(bad == json_array_size(errors));
	fuzz_check_errors(errors, 0, "");
	struct report_params p;
	int parsed = report_params_parse(body, &p);
	/* What the API accepted, the aggregator can read. */
	FUZZ_ASSERT(bad > 0 || parsed == 0);
	if (parsed == 0)
		FUZZ_ASSERT(p.first_year <= p.last_year && strlen(p.period) < sizeof(p.period));
	json_decref(errors);

	errors = json_array();
	bad = ministry_batch_validate(body, errors);
	FUZZ_ASSERT(bad == json_array_size(errors));
	fuzz_check_errors(errors, 0, "");
	json_decref(errors);

	errors = json_array();
	int idx = download_link_route(body, errors);
	FUZZ_ASSERT((idx >= 0) == (json_array_size(errors) == 0));
	FUZZ_ASSERT(idx < routes_count);
	if (idx >= 0)
		FUZZ_ASSERT(routes[idx].flags & ROUTE_DOWNLOAD);
	fuzz_check_errors(errors, 0, "");
	json_decref(errors);
	json_decref(body);
	return 0;
}
