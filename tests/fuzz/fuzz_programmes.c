/*
 * Bodies of POST and PATCH /v1/programmes, /v1/calls, /v1/applications,
 * /v1/clusters, /v1/events, /v1/event-registrations, /v1/registrations,
 * /v1/service-requests and /v1/materials (fuzz_body.h): the same input as every one of them,
 * so the list of criteria and of dates (FIELD_LIST), the answers (FIELD_MAP),
 * attendance (FIELD_FLAGS), the deadline (FIELD_TIMESTAMP), the places and
 * the e-mail addresses, links and file names meet every shape.
 */
#include "fuzz_body.h"

static const char programme[] =
    "{\"title\":\"Aus Fehlern lernen\",\"legal_basis\":\"Bundesprogramm\",\"sponsor\":\"Bund\","
    "\"commissioned_by\":null,\"run_by\":\"NZFH\",\"starts_on\":\"2026-01-01\","
    "\"ends_on\":\"2027-12-31\",\"nrw_only\":false}";
static const char call[] =
    "{\"programme_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"title\":\"Aufruf\","
    "\"description\":null,\"deadline\":\"2026-03-31T22:00:00Z\",\"criteria\":["
    "{\"id\":\"interest\",\"text\":\"Interesse\",\"answer\":\"yes_no\",\"weight\":3},"
    "{\"id\":\"setting\",\"text\":\"Region\",\"answer\":\"text\"}],"
    "\"places\":{\"model\":12,\"partner\":36}}";
static const char application[] =
    "{\"call_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"office_id\":\"demo-lvr-001\","
    "\"preferred_role\":\"model\",\"answers\":{\"interest\":true,\"setting\":\"ländlich\"},"
    "\"status\":\"submitted\",\"role\":null,\"score\":null}";
static const char cluster[] =
    "{\"programme_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"name\":\"Cluster Nord\","
    "\"model_office_id\":\"demo-lvr-001\",\"partner_office_ids\":[\"demo-lvr-002\"]}";

static const char event[] =
    "{\"programme_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"kind\":\"workshop\","
    "\"title\":\"Werkstatt\",\"description\":null,\"online\":false,\"place\":\"Köln\","
    "\"capacity\":30,\"per_office_limit\":5,\"participants_only\":true,\"dates\":["
    "{\"starts_at\":\"2026-03-01T09:00:00+01:00\",\"ends_at\":\"2026-03-02T16:00:00+01:00\"}],"
    "\"status\":\"scheduled\"}";
static const char registration[] =
    "{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"office_id\":\"demo-lvr-001\","
    "\"person\":{\"first_name\":\"Anna\",\"last_name\":\"Muster\","
    "\"email\":\"anna@jugendamt.example\"},\"status\":\"registered\","
    "\"attended\":[true,false],\"feedback_rating\":null,\"feedback_comment\":null}";

static const char professional[] =
    "{\"programme_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"seat\":\"Bielefeld\","
    "\"person\":{\"first_name\":\"Paula\",\"last_name\":\"Pflege\","
    "\"email\":\"paula@traeger.example\",\"institution\":\"Pflegekinderdienst\","
    "\"position\":\"Fachberatung\"},\"status\":\"confirmed\"}";

static const char service_request[] =
    "{\"programme_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"subject\":\"Frage\","
    "\"question\":\"Wie?\",\"status\":\"answered\",\"answer\":\"So.\","
    "\"faq_question\":null,\"faq_answer\":null,\"faq_published\":false}";

static const char material[] =
    "{\"programme_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"kind\":\"recording\","
    "\"title\":\"Aufzeichnung\",\"description\":null,"
    "\"link\":\"https://video.example/aufzeichnung?t=10#a\",\"visibility\":\"public\","
    "\"file_name\":\"Prüfbogen.pdf\"}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_body(&programmes_resource, programme, data, size);
	fuzz_body(&calls_resource, call, data, size);
	fuzz_body(&applications_resource, application, data, size);
	fuzz_body(&clusters_resource, cluster, data, size);
	fuzz_body(&events_resource, event, data, size);
	fuzz_body(&event_registrations_resource, registration, data, size);
	fuzz_body(&professionals_resource, professional, data, size);
	fuzz_body(&service_requests_resource, service_request, data, size);
	fuzz_body(&materials_resource, material, data, size);
	return 0;
}
