#include "router.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>

#include "auth.h"
#include "conn.h"
#include "handlers.h"
#include "http.h"
#include "idempotency.h"
#include "kqe/codelists.h"
#include "kqe/log.h"
#include "kqe/problem.h"
#include "kqe/report_params.h"
#include "kqe/validate.h"
#include "links.h"
#include "metrics.h"
#include "pipeline.h"
#include "pool.h"

static void download_links_create(struct request *r);

#define ROUTE(m, path, perm, fn, ...)                                                              \
	{                                                                                          \
		.method = (m), .pattern = (path), .permission = (perm), .handler = (fn),           \
		__VA_ARGS__                                                                        \
	}
#define GET EVHTTP_REQ_GET
#define POST EVHTTP_REQ_POST
#define PUT EVHTTP_REQ_PUT
#define PATCH EVHTTP_REQ_PATCH
#define CSV "text/csv"
#define LISTED ROUTE_LIST
#define EXPORT (ROUTE_LIST | ROUTE_CSV | ROUTE_DOWNLOAD)
#define WRITE (ROUTE_BODY | ROUTE_DRY_RUN)

static const char *const regions[] = { "LVR", "LWL", NULL };
static const char *const report_scopes[] = { "state", "region", NULL };
static const char *const cycle_statuses[] = { "due", "overdue", "in_progress", "completed", "open",
	NULL };

#define OFFICE_FILTERS                                                                             \
	{                                                                                          \
		{ "region", QUERY_ENUM, regions },                                                 \
		    { "kind", QUERY_ENUM, codelist_office_kind_values },                           \
		{                                                                                  \
			"state", QUERY_ENUM, codelist_state_values                                 \
		}                                                                                  \
	}
#define REPORT_FILTERS                                                                             \
	{                                                                                          \
		{ "updated_since", QUERY_TIMESTAMP, NULL }, { "job_id", QUERY_UUID, NULL },        \
		    { "period", QUERY_PERIOD, NULL },                                              \
		{                                                                                  \
			"scope", QUERY_ENUM, report_scopes                                         \
		}                                                                                  \
	}
#define PROCEDURE_FILTERS                                                                          \
	{                                                                                          \
		{ "office_id", QUERY_SLUG, NULL },                                                 \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define CASE_FILTERS                                                                               \
	{                                                                                          \
		{ "office_id", QUERY_SLUG, NULL }, { "procedure_id", QUERY_UUID, NULL },           \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define TOPIC_FILTERS                                                                              \
	{                                                                                          \
		{ "office_id", QUERY_SLUG, NULL }, { "procedure_id", QUERY_UUID, NULL },           \
		    { "status", QUERY_ENUM, codelist_topic_status_values },                        \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
static const char *const report_versions[] = { "full", "committee", NULL };
static const char *const procedure_report_statuses[] = { "draft", "finalised", "accepted", NULL };
#define PROCEDURE_REPORT_FILTERS                                                                   \
	{                                                                                          \
		{ "office_id", QUERY_SLUG, NULL },                                                 \
		    { "status", QUERY_ENUM, procedure_report_statuses },                           \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define REPORT_COMMENT_FILTERS                                                                     \
	{                                                                                          \
		{ "procedure_id", QUERY_UUID, NULL },                                              \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define ADVICE_FILTERS                                                                             \
	{                                                                                          \
		{ "office_id", QUERY_SLUG, NULL },                                                 \
		    { "status", QUERY_ENUM, codelist_advice_status_values },                       \
		    { "kind", QUERY_ENUM, codelist_advice_kind_values },                           \
		    { "topic", QUERY_ENUM, codelist_advice_topic_values },                         \
		    { "urgency", QUERY_ENUM, codelist_advice_urgency_values },                     \
		    { "overdue", QUERY_BOOL, NULL },                                               \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define PROVIDER_FILTERS                                                                           \
	{                                                                                          \
		{ "region", QUERY_ENUM, regions },                                                 \
		{                                                                                  \
			"office_id", QUERY_SLUG, NULL                                              \
		}                                                                                  \
	}
#define CONCEPT_FILTERS                                                                            \
	{                                                                                          \
		{ "office_id", QUERY_SLUG, NULL }, { "provider_id", QUERY_SLUG, NULL },            \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
static const char *const owner_kinds[] = { "office", "provider", NULL };
#define CALL_FILTERS                                                                               \
	{                                                                                          \
		{ "programme_id", QUERY_UUID, NULL }, { "open", QUERY_BOOL, NULL },                \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define APPLICATION_FILTERS                                                                        \
	{                                                                                          \
		{ "office_id", QUERY_SLUG, NULL }, { "call_id", QUERY_UUID, NULL },                \
		    { "programme_id", QUERY_UUID, NULL },                                          \
		    { "status", QUERY_ENUM, codelist_application_status_values },                  \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define EVENT_FILTERS                                                                              \
	{                                                                                          \
		{ "programme_id", QUERY_UUID, NULL },                                              \
		    { "kind", QUERY_ENUM, codelist_event_kind_values },                            \
		    { "from", QUERY_TIMESTAMP, NULL },                                             \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define REGISTRATION_FILTERS                                                                       \
	{                                                                                          \
		{ "event_id", QUERY_UUID, NULL }, { "office_id", QUERY_SLUG, NULL },               \
		    { "status", QUERY_ENUM, codelist_registration_status_values },                 \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define PROFESSIONAL_FILTERS                                                                       \
	{                                                                                          \
		{ "programme_id", QUERY_UUID, NULL },                                              \
		    { "status", QUERY_ENUM, codelist_professional_status_values },                 \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define SERVICE_FILTERS                                                                            \
	{                                                                                          \
		{ "programme_id", QUERY_UUID, NULL },                                              \
		    { "status", QUERY_ENUM, codelist_service_request_status_values },              \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define MATERIAL_FILTERS                                                                           \
	{                                                                                          \
		{ "programme_id", QUERY_UUID, NULL },                                              \
		    { "kind", QUERY_ENUM, codelist_material_kind_values },                         \
		    { "visibility", QUERY_ENUM, codelist_material_visibility_values },             \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define CLUSTER_FILTERS                                                                            \
	{                                                                                          \
		{ "programme_id", QUERY_UUID, NULL },                                              \
		{                                                                                  \
			"updated_since", QUERY_TIMESTAMP, NULL                                     \
		}                                                                                  \
	}
#define AUDIT_FILTERS                                                                              \
	{                                                                                          \
		{ "office_id", QUERY_TEXT, NULL }, { "action", QUERY_TEXT, NULL },                 \
		    { "actor", QUERY_TEXT, NULL },                                                 \
		{                                                                                  \
			"since", QUERY_TIMESTAMP, NULL                                             \
		}                                                                                  \
	}

/*
 * The route table: what each route is, declared once. The dispatcher below
 * does every step but the handler; path_read, path_list, path_create and
 * path_update are the pipeline's generic paths over the route's resource.
 * A route with a literal after a parameter in the same segment ("{id}.html")
 * comes before the bare one.
 */
const struct route routes[] = {
	ROUTE(GET, "/healthz", PERM_PUBLIC, health_live, .flags = ROUTE_INLINE),
	ROUTE(GET, "/readyz", PERM_PUBLIC, health_ready),
	ROUTE(GET, "/metrics", PERM_PUBLIC, health_metrics, .media = "text/plain",
	    .flags = ROUTE_INLINE),
	ROUTE(GET, "/openapi.json", PERM_PUBLIC, spec_openapi, .flags = ROUTE_INLINE),
	ROUTE(GET, "/docs", PERM_PUBLIC, spec_docs, .media = "text/html", .flags = ROUTE_INLINE),
	ROUTE(GET, "/v1/me", PERM_SELF_READ, me_get),
	ROUTE(POST, "/v1/download-links", PERM_LINKS_CREATE, download_links_create,
	    .flags = ROUTE_BODY),
	ROUTE(GET, "/v1/offices", PERM_OFFICES_READ, path_list, .query = OFFICE_FILTERS,
	    .flags = LISTED, .resource = &offices_resource),
	ROUTE(GET, "/v1/offices.csv", PERM_OFFICES_READ, path_list, .query = OFFICE_FILTERS,
	    .flags = EXPORT, .resource = &offices_resource, .media = CSV),
	ROUTE(GET, "/v1/offices/{id}", PERM_OFFICES_READ, path_read, .params = { PARAM_SLUG },
	    .resource = &offices_resource),
	ROUTE(GET, "/v1/offices/{id}/benchmark", PERM_BENCHMARK_READ, benchmark_get,
	    .params = { PARAM_SLUG }),
	ROUTE(GET, "/v1/cycles/{cycle}/offices", PERM_CYCLES_READ, cycle_offices,
	    .params = { PARAM_CYCLE }, .query = { { "status", QUERY_ENUM, cycle_statuses } }),
	ROUTE(POST, "/v1/reports", PERM_REPORTS_CREATE, reports_create, .flags = ROUTE_BODY),
	ROUTE(GET, "/v1/reports", PERM_REPORTS_READ, path_list, .query = REPORT_FILTERS,
	    .flags = LISTED, .resource = &reports_resource),
	ROUTE(GET, "/v1/reports.csv", PERM_REPORTS_READ, path_list, .query = REPORT_FILTERS,
	    .flags = EXPORT, .resource = &reports_resource, .media = CSV),
	ROUTE(GET, "/v1/reports/{id}.html", PERM_REPORTS_READ, reports_html,
	    .params = { PARAM_UUID }, .flags = ROUTE_ETAG | ROUTE_DOWNLOAD, .media = "text/html"),
	ROUTE(GET, "/v1/reports/{id}.csv", PERM_REPORTS_READ, reports_csv, .params = { PARAM_UUID },
	    .flags = ROUTE_ETAG | ROUTE_CSV | ROUTE_DOWNLOAD, .media = CSV),
	ROUTE(GET, "/v1/reports/{id}", PERM_REPORTS_READ, reports_get, .params = { PARAM_UUID },
	    .flags = ROUTE_ETAG),
	ROUTE(GET, "/v1/report-periods", PERM_REPORTS_READ, report_periods),
	ROUTE(POST, "/v1/ministry-batches", PERM_BATCHES_CREATE, ministry_batches_create,
	    .flags = ROUTE_BODY),
	ROUTE(GET, "/v1/jobs/{id}", PERM_JOBS_READ, path_read, .params = { PARAM_UUID },
	    .resource = &jobs_resource),
	ROUTE(GET, "/v1/procedures", PERM_PROCEDURES_READ, path_list, .query = PROCEDURE_FILTERS,
	    .flags = LISTED, .resource = &procedures_resource),
	ROUTE(GET, "/v1/procedures.csv", PERM_PROCEDURES_READ, path_list,
	    .query = PROCEDURE_FILTERS, .flags = EXPORT, .resource = &procedures_resource,
	    .media = CSV),
	ROUTE(POST, "/v1/procedures", PERM_PROCEDURES_CREATE, path_create, .flags = WRITE,
	    .resource = &procedures_resource),
	ROUTE(GET, "/v1/procedures/{id}", PERM_PROCEDURES_READ, path_read, .params = { PARAM_UUID },
	    .resource = &procedures_resource),
	ROUTE(PATCH, "/v1/procedures/{id}", PERM_PROCEDURES_UPDATE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &procedures_resource),
	ROUTE(GET, "/v1/case-analyses", PERM_CASES_READ, path_list, .query = CASE_FILTERS,
	    .flags = LISTED, .resource = &case_analyses_resource),
	ROUTE(GET, "/v1/case-analyses.csv", PERM_CASES_READ, path_list, .query = CASE_FILTERS,
	    .flags = EXPORT, .resource = &case_analyses_resource, .media = CSV),
	ROUTE(POST, "/v1/case-analyses", PERM_CASES_WRITE, path_create, .flags = WRITE,
	    .resource = &case_analyses_resource),
	ROUTE(POST, "/v1/case-analyses:batch", PERM_CASES_WRITE, case_analyses_batch,
	    .query = { { "atomic", QUERY_BOOL, NULL } }, .flags = WRITE | ROUTE_HEAVY,
	    .resource = &case_analyses_resource),
	ROUTE(GET, "/v1/case-analyses/{id}", PERM_CASES_READ, path_read, .params = { PARAM_UUID },
	    .resource = &case_analyses_resource),
	ROUTE(PATCH, "/v1/case-analyses/{id}", PERM_CASES_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &case_analyses_resource),
	ROUTE(GET, "/v1/structure-surveys", PERM_CASES_READ, path_list, .query = CASE_FILTERS,
	    .flags = LISTED, .resource = &structure_surveys_resource),
	ROUTE(GET, "/v1/structure-surveys.csv", PERM_CASES_READ, path_list, .query = CASE_FILTERS,
	    .flags = EXPORT, .resource = &structure_surveys_resource, .media = CSV),
	ROUTE(POST, "/v1/structure-surveys", PERM_CASES_WRITE, path_create, .flags = WRITE,
	    .resource = &structure_surveys_resource),
	ROUTE(GET, "/v1/structure-surveys/{id}", PERM_CASES_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &structure_surveys_resource),
	ROUTE(PUT, "/v1/structure-surveys/{id}", PERM_CASES_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &structure_surveys_resource),
	ROUTE(GET, "/v1/topics", PERM_CASES_READ, path_list, .query = TOPIC_FILTERS,
	    .flags = LISTED, .resource = &topics_resource),
	ROUTE(GET, "/v1/topics.csv", PERM_CASES_READ, path_list, .query = TOPIC_FILTERS,
	    .flags = EXPORT, .resource = &topics_resource, .media = CSV),
	ROUTE(POST, "/v1/topics", PERM_CASES_WRITE, path_create, .flags = WRITE,
	    .resource = &topics_resource),
	ROUTE(GET, "/v1/topics/{id}", PERM_CASES_READ, path_read, .params = { PARAM_UUID },
	    .resource = &topics_resource),
	ROUTE(PATCH, "/v1/topics/{id}", PERM_CASES_WRITE, path_update, .params = { PARAM_UUID },
	    .flags = WRITE, .resource = &topics_resource),
	ROUTE(GET, "/v1/procedure-reports", PERM_PROCEDURE_REPORTS_LIST, path_list,
	    .query = PROCEDURE_REPORT_FILTERS, .flags = LISTED,
	    .resource = &procedure_reports_resource),
	ROUTE(GET, "/v1/procedure-reports.csv", PERM_PROCEDURE_REPORTS_LIST, path_list,
	    .query = PROCEDURE_REPORT_FILTERS, .flags = EXPORT,
	    .resource = &procedure_reports_resource, .media = CSV),
	ROUTE(POST, "/v1/procedure-reports", PERM_PROCEDURE_REPORTS_CREATE, path_create,
	    .flags = WRITE, .resource = &procedure_reports_resource),
	ROUTE(GET, "/v1/procedures/{id}/report", PERM_PROCEDURE_REPORTS_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &procedure_reports_resource),
	ROUTE(GET, "/v1/procedures/{id}/report.html", PERM_PROCEDURE_REPORTS_READ, path_read,
	    .params = { PARAM_UUID }, .query = { { "version", QUERY_ENUM, report_versions } },
	    .flags = ROUTE_DOWNLOAD, .media = "text/html", .resource = &procedure_reports_resource,
	    .present = procedure_report_html_reply),
	ROUTE(PATCH, "/v1/procedures/{id}/report", PERM_PROCEDURE_REPORTS_UPDATE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &procedure_reports_resource),
	ROUTE(GET, "/v1/report-comments", PERM_REPORT_COMMENTS_READ, path_list,
	    .query = REPORT_COMMENT_FILTERS, .flags = LISTED,
	    .resource = &report_comments_resource),
	ROUTE(POST, "/v1/report-comments", PERM_REPORT_COMMENTS_CREATE, path_create, .flags = WRITE,
	    .resource = &report_comments_resource),
	ROUTE(GET, "/v1/report-comments/{id}", PERM_REPORT_COMMENTS_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &report_comments_resource),
	ROUTE(GET, "/v1/advice-requests", PERM_ADVICE_READ, path_list, .query = ADVICE_FILTERS,
	    .flags = LISTED, .resource = &advice_requests_resource),
	ROUTE(GET, "/v1/advice-requests.csv", PERM_ADVICE_READ, path_list, .query = ADVICE_FILTERS,
	    .flags = EXPORT, .resource = &advice_requests_resource, .media = CSV),
	ROUTE(POST, "/v1/advice-requests", PERM_ADVICE_CREATE, path_create, .flags = WRITE,
	    .resource = &advice_requests_resource),
	ROUTE(GET, "/v1/advice-requests/{id}/messages", PERM_ADVICE_READ, path_list,
	    .params = { PARAM_UUID }, .query = { { "updated_since", QUERY_TIMESTAMP, NULL } },
	    .flags = LISTED, .resource = &advice_messages_resource),
	ROUTE(POST, "/v1/advice-requests/{id}/messages", PERM_ADVICE_MESSAGES_CREATE, path_create,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &advice_messages_resource),
	ROUTE(GET, "/v1/advice-requests/{id}/messages/{message_id}", PERM_ADVICE_READ, path_read,
	    .params = { PARAM_UUID, PARAM_UUID }, .resource = &advice_messages_resource),
	ROUTE(GET, "/v1/advice-requests/{id}", PERM_ADVICE_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &advice_requests_resource),
	ROUTE(PATCH, "/v1/advice-requests/{id}", PERM_ADVICE_UPDATE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &advice_requests_resource),
	ROUTE(GET, "/v1/providers", PERM_PROVIDERS_READ, path_list, .query = PROVIDER_FILTERS,
	    .flags = LISTED, .resource = &providers_resource),
	ROUTE(GET, "/v1/providers.csv", PERM_PROVIDERS_READ, path_list, .query = PROVIDER_FILTERS,
	    .flags = EXPORT, .resource = &providers_resource, .media = CSV),
	ROUTE(POST, "/v1/providers", PERM_PROVIDERS_WRITE, path_create, .flags = WRITE,
	    .resource = &providers_resource),
	ROUTE(GET, "/v1/providers/{id}", PERM_PROVIDERS_READ, path_read, .params = { PARAM_SLUG },
	    .resource = &providers_resource),
	ROUTE(PATCH, "/v1/providers/{id}", PERM_PROVIDERS_WRITE, path_update,
	    .params = { PARAM_SLUG }, .flags = WRITE, .resource = &providers_resource),
	ROUTE(GET, "/v1/protection-concepts", PERM_CONCEPTS_READ, path_list,
	    .query = CONCEPT_FILTERS, .flags = LISTED, .resource = &protection_concepts_resource),
	ROUTE(GET, "/v1/protection-concepts.csv", PERM_CONCEPTS_READ, path_list,
	    .query = CONCEPT_FILTERS, .flags = EXPORT, .resource = &protection_concepts_resource,
	    .media = CSV),
	ROUTE(POST, "/v1/protection-concepts", PERM_CONCEPTS_WRITE, path_create, .flags = WRITE,
	    .resource = &protection_concepts_resource),
	ROUTE(GET, "/v1/protection-concepts/{id}/versions", PERM_CONCEPTS_READ, path_list,
	    .params = { PARAM_UUID }, .flags = LISTED,
	    .resource = &protection_concept_versions_resource),
	ROUTE(GET, "/v1/protection-concepts/{id}", PERM_CONCEPTS_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &protection_concepts_resource),
	ROUTE(PATCH, "/v1/protection-concepts/{id}", PERM_CONCEPTS_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &protection_concepts_resource),
	ROUTE(GET, "/v1/protection-concept-coverage", PERM_CONCEPTS_COVERAGE, concept_coverage,
	    .query = { { "status", QUERY_ENUM, codelist_concept_status_values },
	        { "region", QUERY_ENUM, regions }, { "owner_kind", QUERY_ENUM, owner_kinds } }),
	ROUTE(GET, "/v1/programmes", PERM_PROGRAMMES_READ, path_list,
	    .query = { { "updated_since", QUERY_TIMESTAMP, NULL } }, .flags = LISTED,
	    .resource = &programmes_resource),
	ROUTE(GET, "/v1/programmes.csv", PERM_PROGRAMMES_READ, path_list,
	    .query = { { "updated_since", QUERY_TIMESTAMP, NULL } }, .flags = EXPORT,
	    .resource = &programmes_resource, .media = CSV),
	ROUTE(POST, "/v1/programmes", PERM_PROGRAMMES_WRITE, path_create, .flags = WRITE,
	    .resource = &programmes_resource),
	ROUTE(GET, "/v1/programmes/{id}", PERM_PROGRAMMES_READ, path_read, .params = { PARAM_UUID },
	    .resource = &programmes_resource),
	ROUTE(PATCH, "/v1/programmes/{id}", PERM_PROGRAMMES_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &programmes_resource),
	ROUTE(GET, "/v1/calls", PERM_PROGRAMMES_READ, path_list, .query = CALL_FILTERS,
	    .flags = LISTED, .resource = &calls_resource),
	ROUTE(POST, "/v1/calls", PERM_CALLS_WRITE, path_create, .flags = WRITE,
	    .resource = &calls_resource),
	ROUTE(GET, "/v1/calls/{id}/ranking", PERM_SELECTION_READ, call_ranking,
	    .params = { PARAM_UUID }),
	ROUTE(GET, "/v1/calls/{id}", PERM_PROGRAMMES_READ, path_read, .params = { PARAM_UUID },
	    .resource = &calls_resource),
	ROUTE(PATCH, "/v1/calls/{id}", PERM_CALLS_WRITE, path_update, .params = { PARAM_UUID },
	    .flags = WRITE, .resource = &calls_resource),
	ROUTE(GET, "/v1/applications", PERM_APPLICATIONS_READ, path_list,
	    .query = APPLICATION_FILTERS, .flags = LISTED, .resource = &applications_resource),
	ROUTE(GET, "/v1/applications.csv", PERM_APPLICATIONS_READ, path_list,
	    .query = APPLICATION_FILTERS, .flags = EXPORT, .resource = &applications_resource,
	    .media = CSV),
	ROUTE(POST, "/v1/applications", PERM_APPLICATIONS_CREATE, path_create, .flags = WRITE,
	    .resource = &applications_resource),
	ROUTE(GET, "/v1/applications/{id}", PERM_APPLICATIONS_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &applications_resource),
	ROUTE(PATCH, "/v1/applications/{id}", PERM_APPLICATIONS_UPDATE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &applications_resource),
	ROUTE(GET, "/v1/clusters", PERM_PROGRAMMES_READ, path_list, .query = CLUSTER_FILTERS,
	    .flags = LISTED, .resource = &clusters_resource),
	ROUTE(POST, "/v1/clusters", PERM_CLUSTERS_WRITE, path_create, .flags = WRITE,
	    .resource = &clusters_resource),
	ROUTE(GET, "/v1/clusters/{id}", PERM_PROGRAMMES_READ, path_read, .params = { PARAM_UUID },
	    .resource = &clusters_resource),
	ROUTE(PATCH, "/v1/clusters/{id}", PERM_CLUSTERS_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &clusters_resource),
	ROUTE(GET, "/v1/events", PERM_PROGRAMMES_READ, path_list, .query = EVENT_FILTERS,
	    .flags = LISTED, .resource = &events_resource),
	ROUTE(GET, "/v1/events.ics", PERM_PROGRAMMES_READ, events_calendar,
	    .query = { { "programme_id", QUERY_UUID, NULL } }, .flags = ROUTE_DOWNLOAD,
	    .media = "text/calendar"),
	ROUTE(POST, "/v1/events", PERM_EVENTS_WRITE, path_create, .flags = WRITE,
	    .resource = &events_resource),
	ROUTE(GET, "/v1/events/{id}", PERM_PROGRAMMES_READ, path_read, .params = { PARAM_UUID },
	    .resource = &events_resource),
	ROUTE(PATCH, "/v1/events/{id}", PERM_EVENTS_WRITE, path_update, .params = { PARAM_UUID },
	    .flags = WRITE, .resource = &events_resource),
	ROUTE(GET, "/v1/event-registrations", PERM_REGISTRATIONS_READ, path_list,
	    .query = REGISTRATION_FILTERS, .flags = LISTED,
	    .resource = &event_registrations_resource),
	ROUTE(GET, "/v1/event-registrations.csv", PERM_REGISTRATIONS_READ, path_list,
	    .query = REGISTRATION_FILTERS, .flags = EXPORT,
	    .resource = &event_registrations_resource, .media = CSV),
	ROUTE(GET, "/v1/event-registrations.ics", PERM_REGISTRATIONS_READ, registrations_calendar,
	    .flags = ROUTE_DOWNLOAD, .media = "text/calendar"),
	ROUTE(POST, "/v1/event-registrations", PERM_REGISTRATIONS_WRITE, path_create,
	    .flags = WRITE, .resource = &event_registrations_resource),
	ROUTE(GET, "/v1/event-registrations/{id}", PERM_REGISTRATIONS_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &event_registrations_resource),
	ROUTE(PATCH, "/v1/event-registrations/{id}", PERM_REGISTRATIONS_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &event_registrations_resource),
	ROUTE(POST, "/v1/registrations", PERM_SIGNUP, path_create, .flags = WRITE,
	    .resource = &professionals_resource),
	ROUTE(GET, "/v1/registrations/confirm", PERM_SIGNUP, registration_confirm,
	    .query = { { "token", QUERY_TEXT, NULL } }, .media = "text/html"),
	ROUTE(GET, "/v1/registrations", PERM_PROFESSIONALS_READ, path_list,
	    .query = PROFESSIONAL_FILTERS, .flags = LISTED, .resource = &professionals_resource),
	ROUTE(GET, "/v1/registrations.csv", PERM_PROFESSIONALS_READ, path_list,
	    .query = PROFESSIONAL_FILTERS, .flags = EXPORT, .resource = &professionals_resource,
	    .media = CSV),
	ROUTE(GET, "/v1/registrations/{id}", PERM_PROFESSIONALS_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &professionals_resource),
	ROUTE(PATCH, "/v1/registrations/{id}", PERM_PROFESSIONALS_DECIDE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &professionals_resource),
	ROUTE(GET, "/v1/service-requests", PERM_SERVICE_READ, path_list, .query = SERVICE_FILTERS,
	    .flags = LISTED, .resource = &service_requests_resource),
	ROUTE(GET, "/v1/service-requests.csv", PERM_SERVICE_READ, path_list,
	    .query = SERVICE_FILTERS, .flags = EXPORT, .resource = &service_requests_resource,
	    .media = CSV),
	ROUTE(POST, "/v1/service-requests", PERM_SERVICE_ASK, path_create, .flags = WRITE,
	    .resource = &service_requests_resource),
	ROUTE(GET, "/v1/service-requests/{id}", PERM_SERVICE_READ, path_read,
	    .params = { PARAM_UUID }, .resource = &service_requests_resource),
	ROUTE(PATCH, "/v1/service-requests/{id}", PERM_SERVICE_UPDATE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &service_requests_resource),
	ROUTE(GET, "/v1/materials", PERM_MATERIALS_READ, path_list, .query = MATERIAL_FILTERS,
	    .flags = LISTED, .resource = &materials_resource),
	ROUTE(POST, "/v1/materials", PERM_MATERIALS_WRITE, path_create, .flags = WRITE,
	    .resource = &materials_resource),
	ROUTE(GET, "/v1/materials/{id}/file", PERM_MATERIALS_READ, material_file,
	    .params = { PARAM_UUID }, .flags = ROUTE_DOWNLOAD, .media = "*/*"),
	ROUTE(PUT, "/v1/materials/{id}/file", PERM_MATERIALS_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = ROUTE_UPLOAD | ROUTE_DRY_RUN,
	    .resource = &materials_resource),
	ROUTE(GET, "/v1/materials/{id}", PERM_MATERIALS_READ, path_read, .params = { PARAM_UUID },
	    .resource = &materials_resource),
	ROUTE(PATCH, "/v1/materials/{id}", PERM_MATERIALS_WRITE, path_update,
	    .params = { PARAM_UUID }, .flags = WRITE, .resource = &materials_resource),
	ROUTE(GET, "/v1/faq", PERM_PUBLIC, faq_list,
	    .query = { { "programme_id", QUERY_UUID, NULL } }),
	ROUTE(GET, "/v1/audit/head", PERM_REPORTS_READ, audit_head_get),
	ROUTE(GET, "/v1/audit", PERM_AUDIT_READ, path_list, .query = AUDIT_FILTERS, .flags = LISTED,
	    .resource = &audit_resource),
	ROUTE(GET, "/v1/audit.csv", PERM_AUDIT_READ, path_list, .query = AUDIT_FILTERS,
	    .flags = EXPORT, .resource = &audit_resource, .media = CSV),
	ROUTE(GET, "/v1/codelists", PERM_CODELISTS_READ, codelists_list,
	    .query = { { "list", QUERY_ENUM, codelist_ids } }, .flags = ROUTE_ETAG),
	ROUTE(GET, "/v1/codelists/{id}", PERM_CODELISTS_READ, codelists_get,
	    .params = { PARAM_NAME }, .flags = ROUTE_ETAG),
};
const int routes_count = (int)ARRAY_LEN(routes);

static const struct {
	enum evhttp_cmd_type cmd;
	const char *name;
} methods[] = {
	{ EVHTTP_REQ_GET, "GET" },
	{ EVHTTP_REQ_HEAD, "HEAD" },
	{ EVHTTP_REQ_POST, "POST" },
	{ EVHTTP_REQ_PUT, "PUT" },
	{ EVHTTP_REQ_PATCH, "PATCH" },
	{ EVHTTP_REQ_DELETE, "DELETE" },
	{ EVHTTP_REQ_OPTIONS, "OPTIONS" },
};

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	for (size_t i = 0; i < ARRAY_LEN(methods); i++)
		if (methods[i].cmd == cmd)
			return methods[i].name;
	return "OTHER";
}

/*
 * Matches one pattern against a path; fills params for "{name}" segments. A
 * "{name}" followed by a literal in the same segment ("{id}.html") takes the
 * segment up to that suffix.
 */
static int
match(const char *pattern, const char *path, char **params, int *nparams)
{
	int n = 0;
	const char *p = pattern, *s = path;

	while (*p && *s) {
		if (*p == '{') {
			p += strcspn(p, "}") + 1;
			size_t len = strcspn(s, "/");
			size_t suffix = strcspn(p, "/");
			if (suffix > 0) {
				if (len <= suffix || strncmp(s + len - suffix, p, suffix) != 0)
					goto fail;
				len -= suffix;
			}
			if (len == 0 || n == ROUTE_MAX_PARAMS)
				goto fail;
			params[n++] = xstrndup(s, len);
			s += len;
		} else if (*p == *s) {
			p++;
			s++;
		} else {
			goto fail;
		}
	}
	if (*p || *s)
		goto fail;
	*nparams = n;
	return 1;
fail:
	while (n > 0)
		free(params[--n]);
	return 0;
}

int
router_match(
    enum evhttp_cmd_type method, const char *path, char **params, int *nparams, unsigned *allow)
{
	int path_known = 0;
	char *scratch[ROUTE_MAX_PARAMS];
	int nscratch;

	*allow = 0;
	*nparams = 0;
	/* HEAD is answered like GET; http_send() leaves the body out. */
	if (method == EVHTTP_REQ_HEAD)
		method = EVHTTP_REQ_GET;
	for (int i = 0; i < routes_count; i++) {
		if (routes[i].method == method && match(routes[i].pattern, path, params, nparams))
			return i;
	}
	for (int i = 0; i < routes_count; i++) {
		if (match(routes[i].pattern, path, scratch, &nscratch)) {
			path_known = 1;
			*allow |= (unsigned)routes[i].method;
			while (nscratch > 0)
				free(scratch[--nscratch]);
		}
	}
	return path_known ? -2 : -1;
}

/* Checks each path parameter by its kind and puts it in canonical form; false: 404. */
static bool
canonical_params(struct request *r)
{
	for (int i = 0; i < r->nparams; i++) {
		char *v = r->params[i], cycle[10];
		size_t n = strlen(v);
		switch (r->route->params[i]) {
		case PARAM_UUID:
			if (!uuid_valid(v))
				return false;
			for (char *c = v; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			break;
		case PARAM_SLUG:
			if (!slug_id_valid(v))
				return false;
			break;
		case PARAM_NAME:
			if (n == 0 || n > 64 ||
			    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
				return false;
			break;
		case PARAM_CYCLE:
			if (!cycle_canonical(v, cycle))
				return false;
			free(v);
			r->params[i] = xstrdup(cycle);
			break;
		}
	}
	return true;
}

static void
set_request_id(struct request *r)
{
	const char *given =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "X-Request-Id");
	if (given != NULL) {
		size_t n = strlen(given);
		int ok = n >= 1 && n < sizeof(r->id);
		for (size_t i = 0; ok && i < n; i++) {
			char c = given[i];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
		}
		if (ok) {
			memcpy(r->id, given, n + 1);
			return;
		}
	}
	unsigned char raw[12];
	random_bytes(raw, sizeof(raw));
	hex_encode(raw, sizeof(raw), r->id);
}

static size_t
header_bytes(struct evhttp_request *req)
{
	struct evkeyval *kv;
	size_t n = 0;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
	n += strlen(kv->key) + strlen(kv->value) + 4;
	return n;
}

static void
allow_list(unsigned allow, char *list, size_t size)
{
	list[0] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(methods); i++) {
		if (!(allow & (unsigned)methods[i].cmd))
			continue;
		if (*list)
			strncat(list, ", ", size - strlen(list) - 1);
		strncat(list, methods[i].name, size - strlen(list) - 1);
		if (methods[i].cmd == EVHTTP_REQ_GET)
			strncat(list, ", HEAD", size - strlen(list) - 1);
	}
}

/*
 * OPTIONS on a known path: a CORS preflight (Origin + Access-Control-Request-Method)
 * from an allowed origin gets the CORS grant; any other OPTIONS just the Allow list.
 * Answered before authentication: browsers send no credentials with a preflight.
 */
static void
answer_options(struct request *r, unsigned allow)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *origin = evhttp_find_header(in, "Origin");
	const char *wanted = evhttp_find_header(in, "Access-Control-Request-Method");
	char list[64];

	allow_list(allow, list, sizeof(list));
	reply_header(r, "Allow", list);
	if (origin != NULL && wanted != NULL) {
		if (!cors_origin_allowed(r->worker->cfg, origin)) {
			reply_problem(r, 403, "This origin is not allowed to use the API.", NULL);
			return;
		}
		reply_header(r, "Access-Control-Allow-Methods", list);
		reply_header(r, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, "
		    "X-Request-Id");
		reply_header(r, "Access-Control-Max-Age", "600");
	}
	reply_bytes(r, 204, NULL, "", 0);
}

static void
reply_not_allowed(struct request *r, unsigned allow)
{
	char list[64], detail[96];
	allow_list(allow, list, sizeof(list));
	reply_header(r, "Allow", list);
	snprintf(detail, sizeof(detail), "This resource allows %s.", list);
	reply_problem(r, 405, detail, NULL);
}

/*
 * A download link is the last query parameter, "link=<token>", of a download
 * route requested without a token: keep the token, what it signs (the URI
 * before it) and the query without it. Anywhere else "link" is a parameter
 * like any other (and so unknown: 400).
 */
static void
split_link(struct request *r)
{
	if (!(r->route->flags & ROUTE_DOWNLOAD) ||
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization") != NULL)
		return;
	const char *uri = evhttp_request_get_uri(r->req);
	const char *q = strchr(uri, '?');
	if (q == NULL)
		return;
	const char *last = strrchr(q, '&');
	if (last == NULL)
		last = q;
	if (strncmp(last + 1, "link=", 5) != 0)
		return;
	size_t head = (size_t)(last - uri);
	r->link_buf = xasprintf("%.*s%c%s", (int)head, uri, '\0', last + 6);
	r->link_signed = r->link_buf;
	r->link = r->link_buf + head + 1;
	const char *query = strchr(r->link_signed, '?');
	r->query_text = query != NULL ? query + 1 : NULL;
}

/* Answers with the resource at location under the first answer's status. */
static void
replay(struct request *r, const char *location, int status)
{
	const struct route *route = r->route;
	char *params[ROUTE_MAX_PARAMS];
	int nparams = 0;
	unsigned allow;
	int idx = router_match(EVHTTP_REQ_GET, location, params, &nparams, &allow);
	if (idx < 0 || !auth_allows(&r->principal, routes[idx].permission)) {
		while (nparams > 0)
			free(params[--nparams]);
		reply_problem(r, 409,
		    "This Idempotency-Key was used before; its result is no longer readable with "
		    "your role.",
		    NULL);
		return;
	}
	for (int i = 0; i < r->nparams; i++)
		free(r->params[i]);
	memcpy(r->params, params, sizeof(params));
	r->nparams = nparams;
	r->route = &routes[idx];
	evhttp_clear_headers(&r->query); /* the GET has no query */
	r->replay_status = status;
	reply_header(r, "Location", location);
	if (canonical_params(r))
		r->route->handler(r);
	else
		reply_not_found(r);
	r->route = route;
}

/* A POST's Idempotency-Key already committed: its replay, or a problem. */
static enum idempotency
answer_idempotent(struct request *r)
{
	char location[256];
	int status = 0;
	enum idempotency outcome = idempotency_begin(r, location, sizeof(location), &status);
	if (outcome == IDEMPOTENCY_REPLAY)
		replay(r, location, status);
	return outcome;
}

/*
 * On the event loop: every step that needs nothing but the request. 0 if it
 * answered (or an inline route did), 1 if the rest needs the pool.
 */
static int
dispatch_edge(struct request *r)
{
	struct worker *w = r->worker;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(r->req);
	unsigned allow;

	if (w->draining) {
		reply_header(r, "Retry-After", "1");
		reply_problem(r, 503, "The server is shutting down.", NULL);
		return 0;
	}
	if ((long)header_bytes(r->req) > w->cfg->max_header_bytes) {
		reply_header(r, "Connection", "close");
		reply_problem(r, 431, "The request headers are too large.", NULL);
		return 0;
	}
	struct conn *c = conn_of(w->guard, r->req);
	const char *framing =
	    http_framing_problem(evhttp_request_get_input_headers(r->req), conn_http_minor(c));
	if (framing != NULL) {
		reply_header(r, "Connection", "close");
		reply_problem(r, 400, framing, NULL);
		return 0;
	}
	if (conn_over_cap(c)) {
		reply_header(r, "Connection", "close");
		reply_header(r, "Retry-After", "1");
		reply_problem(r, 503, "Too many connections are open; try again shortly.", NULL);
		return 0;
	}
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(r->req));
	size_t decoded_len = 0;
	char *decoded = evhttp_uridecode(path ? path : "/", 0, &decoded_len);
	if (decoded != NULL && strlen(decoded) != decoded_len)
		decoded[0] = '\0'; /* %00 in the path: a NUL would cut an id short; none has one */
	int idx = router_match(cmd, decoded, r->params, &r->nparams, &allow);
	free(decoded);
	if (idx == -1) {
		reply_problem(r, 404, "There is no resource at this path.", NULL);
		return 0;
	}
	if (idx == -2) {
		if (cmd == EVHTTP_REQ_OPTIONS)
			answer_options(r, allow);
		else
			reply_not_allowed(r, allow);
		return 0;
	}
	r->route = &routes[idx];
	r->route_index = idx;
	if (!canonical_params(r)) {
		reply_not_found(r);
		return 0;
	}
	const char *media = r->route->media != NULL ? r->route->media : "application/json";
	if (!accept_allows(
	        evhttp_find_header(evhttp_request_get_input_headers(r->req), "Accept"), media)) {
		char detail[128];
		snprintf(detail, sizeof(detail), "This resource is available as %s only.", media);
		reply_problem(r, 406, detail, NULL);
		return 0;
	}
	if (!(r->route->flags & ROUTE_INLINE))
		return 1;
	/* Public and needing no dependency: answered here, even while the pool is busy. */
	if (query_check(r) == 0)
		r->route->handler(r);
	return 0;
}

/* In a pool thread: the steps that need PostgreSQL or Redis, then the handler. */
static void
dispatch_core(struct request *r)
{
	split_link(r);
	if (auth_identify(r) != 0 || auth_rate_limit(r) != 0)
		return;
	if (!auth_allows(&r->principal, r->route->permission)) {
		reply_problem(r, 403, "Your role may not do this.", NULL);
		return;
	}
	if (query_check(r) != 0)
		return;
	if ((r->route->flags & ROUTE_BODY) && (r->body = request_json(r)) == NULL)
		return;
	if ((r->route->flags & ROUTE_UPLOAD) && request_upload_check(r) != 0)
		return;
	if (answer_idempotent(r) != IDEMPOTENCY_PROCEED)
		return;
	r->route->handler(r);
	/*
	 * The handler's transaction could not claim its Idempotency-Key: another
	 * request holds it (still running) or has just committed it (replay).
	 */
	if (r->idempotency_lost && r->resp.status == 0 &&
	    answer_idempotent(r) == IDEMPOTENCY_PROCEED)
		reply_problem(
		    r, 409, "A request with this Idempotency-Key is still in progress.", NULL);
}

void
router_run(struct request *r)
{
	dispatch_core(r);
	if (r->rate.limit > 0) {
		char v[24];
		const long values[] = { r->rate.limit, r->rate.remaining, r->rate.reset };
		const char *names[] = { "RateLimit-Limit", "RateLimit-Remaining",
			"RateLimit-Reset" };
		for (size_t i = 0; i < ARRAY_LEN(names); i++) {
			snprintf(v, sizeof(v), "%ld", values[i]);
			reply_header(r, names[i], v);
		}
	}
}

/* Releases what the request owns; its evhttp request is evhttp's (answered, or freed with it). */
void
router_discard(struct request *r)
{
	for (int i = 0; i < r->nparams; i++)
		free(r->params[i]);
	if (r->query_parsed)
		evhttp_clear_headers(&r->query);
	evhttp_clear_headers(&r->resp.headers);
	json_decref(r->body);
	json_decref(r->after);
	json_decref(r->owned);
	free(r->link_buf);
	free(r->idempotency_key);
	if (r->resp.body != NULL)
		evbuffer_free(r->resp.body);
	free(r);
}

/* On the loop the request arrived on: send its answer, count and log it, free it. */
void
router_finish(struct request *r)
{
	if (r->expired) {
		reply_header(r, "Retry-After", "1");
		reply_problem(r, 503,
		    "The server could not take the request in time; try again shortly.", NULL);
	}
	if (r->resp.status == 0) {
		log_error(r->id, "handler did not answer",
		    json_pack("{s:s}", "route", r->route ? r->route->pattern : "none"));
		reply_problem(r, 500, "An internal error occurred; it has been logged.", NULL);
	}
	size_t bytes = evbuffer_get_length(r->resp.body);
	/*
	 * Looked up now, not when the request came in: the client may have gone
	 * while the pool ran it (evhttp then detaches the request, NULL here).
	 * And before sending, which frees a detached request.
	 */
	struct conn *c = conn_of(r->worker->guard, r->req);
	http_send(r);
	conn_request_answered(c);
	uint64_t dur = now_ns() - r->start_ns;
	metrics_observe(r->route_index, r->resp.status, dur);
	log_info(r->id, "request",
	    json_pack("{s:s,s:s,s:i,s:f,s:I}", "method", r->method, "route",
	        r->route ? r->route->pattern : "unmatched", "status", r->resp.status, "duration_ms",
	        (double)dur / 1e6, "bytes", (json_int_t)bytes));
	router_discard(r);
}

/* Who is asking, for the pool's fairness: the credentials, else the address. */
static uint64_t
client_key(struct request *r)
{
	const char *who =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	char *host = NULL;
	ev_uint16_t port;
	if (who == NULL) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
		if (evcon != NULL)
			evhttp_connection_get_peer(evcon, &host, &port);
		who = host != NULL ? host : "";
	}
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)who; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return h;
}

void
router_dispatch_cb(struct evhttp_request *req, void *arg)
{
	struct request *r = xcalloc(1, sizeof(*r));
	r->req = req;
	r->worker = arg;
	r->route_index = -1;
	r->start_ns = now_ns();
	r->deadline_ns = r->start_ns + (uint64_t)r->worker->cfg->request_timeout_ms * 1000000u;
	TAILQ_INIT(&r->resp.headers);
	r->method = method_name(evhttp_request_get_command(req));
	set_request_id(r);
	conn_request_read(conn_of(r->worker->guard, req), req);
	if (dispatch_edge(r) == 1) {
		r->client_key = client_key(r);
		if (pool_submit(r->worker->pool, r))
			return; /* answered from the mailbox */
		reply_header(r, "Retry-After", "1");
		reply_problem(r, 503, "The server is busy; try again shortly.", NULL);
	}
	router_finish(r);
}

void
router_print_permissions(FILE *out)
{
	fprintf(out, "| route | permission |");
	for (int role = ROLE_API_FIRST; role <= ROLE_API_LAST; role++)
		fprintf(out, " %s |", role_name((enum role)role));
	fprintf(out, "\n|---|---|");
	for (int role = ROLE_API_FIRST; role <= ROLE_API_LAST; role++)
		fprintf(out, ":-:|");
	fprintf(out, "\n");
	for (int i = 0; i < routes_count; i++) {
		fprintf(out, "| `%s %s` | %s |", method_name(routes[i].method), routes[i].pattern,
		    auth_permission_name(routes[i].permission));
		for (int role = ROLE_API_FIRST; role <= ROLE_API_LAST; role++)
			fprintf(out, " %s |",
			    auth_role_has((enum role)role, routes[i].permission) ? "yes" : "–");
		fprintf(out, "\n");
	}
}

static const struct field_spec link_fields[] = {
	{ .name = "href", .type = FIELD_STRING, .required = true, .min = 1, .max = 2000 },
};

int
download_link_route(const json_t *body, json_t *errors)
{
	size_t before = json_array_size(errors);
	validate_object(body, link_fields, ARRAY_LEN(link_fields), "", errors);
	const char *href = json_text(json_object_get(body, "href"));
	char *params[ROUTE_MAX_PARAMS], *path = NULL;
	int nparams = 0, idx = -1;
	unsigned allow;
	if (json_array_size(errors) > before)
		return -1;
	/* What a browser sends back unchanged: no spaces, no fragment, no link of its own. */
	if (href[0] == '/' && strstr(href, "link=") == NULL &&
	    strspn(href, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	                 "-._~/?&=%:,+") == strlen(href)) {
		path = evhttp_uridecode(href, 0, NULL);
		path[strcspn(path, "?#")] = '\0';
		idx = router_match(EVHTTP_REQ_GET, path, params, &nparams, &allow);
		while (nparams > 0)
			free(params[--nparams]);
		free(path);
	}
	if (idx < 0 || !(routes[idx].flags & ROUTE_DOWNLOAD)) {
		error_at_pointer(errors, "/href", "not_found",
		    "is not a download of yours (a report's .html or .csv, a list's .csv, a "
		    "calendar's .ics)");
		return -1;
	}
	return idx;
}

/*
 * POST /v1/download-links {"href": "/v1/reports/…​.html"} — a link to one
 * download the caller may make, valid for LINK_TTL_S seconds, that a browser
 * can follow without the bearer token (links.h). Here and not in a handler
 * file: only the router knows which routes are downloads.
 */
static void
download_links_create(struct request *r)
{
	json_t *errors = request_own(r, json_array());
	int idx = download_link_route(r->body, errors);
	if (idx >= 0 && !auth_allows(&r->principal, routes[idx].permission))
		error_at_pointer(errors, "/href", "not_found",
		    "is not a download of yours (a report's .html or .csv, a list's .csv, a "
		    "calendar's .ics)");
	if (json_array_size(errors) > 0) {
		reply_problem(
		    r, 422, "The download link request has invalid fields.", json_incref(errors));
		return;
	}
	const char *href = json_text(json_object_get(r->body, "href"));
	time_t expires = time(NULL) + LINK_TTL_S;
	char *token = link_sign(r->worker->link_key, href, &r->principal, expires);
	char *link = xasprintf("%s%clink=%s", href, strchr(href, '?') ? '&' : '?', token);
	char at[32];
	struct tm tm;
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&expires, &tm));
	reply_json(r, 200, json_pack("{s:s,s:s}", "href", link, "expires_at", at));
	free(token);
	free(link);
}
