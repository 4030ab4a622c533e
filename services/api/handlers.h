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

void offices_list(struct request *r);
void offices_get(struct request *r);

void reports_create(struct request *r);
void reports_get(struct request *r);

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

#endif
