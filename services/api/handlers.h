/*
 * handlers — one function per route, grouped in handlers/<resource>.c.
 * A handler answers exactly once through the http.h reply functions.
 */
#ifndef KQE_API_HANDLERS_H
#define KQE_API_HANDLERS_H

#include "server.h"

void health_live(struct request *r);
void health_ready(struct request *r);
void health_metrics(struct request *r);

/* The API contract (proto/openapi.yaml), embedded at build time: handlers/spec.c. */
void spec_openapi(struct request *r);
void spec_docs(struct request *r);

void offices_list(struct request *r);
void offices_get(struct request *r);
void benchmark_get(struct request *r);

void reports_create(struct request *r);
void reports_get(struct request *r);
void reports_html(struct request *r);
void reports_list(struct request *r);
void ministry_batches_create(struct request *r);

void jobs_get(struct request *r);

void procedures_list(struct request *r);
void procedures_get(struct request *r);
void procedures_create(struct request *r);
void procedures_patch(struct request *r);

void audit_list(struct request *r);

void codelists_list(struct request *r);
void codelists_get(struct request *r);

void case_analyses_create(struct request *r);
void case_analyses_batch(struct request *r);
void case_analyses_get(struct request *r);
void case_analyses_list(struct request *r);
void case_analyses_patch(struct request *r);

void structure_surveys_create(struct request *r);
void structure_surveys_list(struct request *r);
void structure_surveys_get(struct request *r);
void structure_surveys_put(struct request *r);

void topics_create(struct request *r);
void topics_list(struct request *r);
void topics_get(struct request *r);
void topics_patch(struct request *r);

#endif
