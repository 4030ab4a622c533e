/*
 * config — every setting comes from one environment variable, described once
 * in a table (name, type, default, range, meaning, which programs use it).
 * config_load() parses and range-checks all of them; config_print_help()
 * prints the same table for --help, so help and behaviour cannot drift apart.
 */
#ifndef KQE_CONFIG_H
#define KQE_CONFIG_H

#include <stdio.h>

#include "kqe/log.h"
#include "kqe/redis.h"
#include "kqe/util.h"

/* Which program reads a variable (bit mask). */
enum config_user { CONFIG_API = 1, CONFIG_AGGREGATOR = 2, CONFIG_ADMIN = 4, CONFIG_ALL = 7 };

struct config {
	char *http_addr;
	long http_port;
	char *database_url;
	char *database_admin_url;
	char *redis_url;
	char *redis_sentinels;
	char *redis_master_name;
	enum log_level log_level;
	long api_threads;
	long db_pool;
	long db_queue;
	long request_timeout_ms;
	long max_body_bytes;
	long material_max_bytes;
	long max_header_bytes;
	long http_timeout_ms;
	long request_read_ms;
	long max_connections;
	long max_connections_per_client;
	long statement_timeout_ms;
	long shutdown_timeout_ms;
	long json_max_depth;
	long redis_timeout_ms;
	long jobs_batch;
	long jobs_block_ms;
	long jobs_visibility_ms;
	long outbox_grace_ms;
	char *smtp_url;
	char *mail_from;
	long smtp_timeout_ms;
	long mail_retry_ms;
	long mail_attempts;
	long jobs_max_attempts;
	long sdc_min_count;
	long sdc_dominance_percent;
	long sdc_min_offices;
	long advice_response_days;
	long release_interval_s;
	long release_min_changes;
	long release_final;
	long jobs_backoff_base_ms;
	long jobs_backoff_max_ms;
	char *cors_origins;
	char *pseudonym_key;
	char *data_keys;
	char *jwks_file;
	char *jwks_url;
	char *jwks_ca_file;
	char *jwt_issuer;
	char *jwt_audience;
	long jwt_leeway_s;
	char *jwt_role_claim;
	char *jwt_office_claim;
	char *jwt_region_claim;
	char *jwt_institute_claim;
	char *jwt_provider_claim;
	char *jwt_programme_claim;
	char *public_url;
	long signup_rate_limit_per_minute;
	char *tls_cert;
	char *tls_key;
	long rate_limit_per_minute;
	long retention_years;
	long retention_interval_s;
	char *audit_signing_key;
	char *audit_public_key;
	long audit_seal_interval_ms;
	long audit_head_interval_s;
	long jobs_trim_interval_s;
	long jobs_dead_max;
};

struct config_error {
	char message[256];
};

/*
 * Fills cfg from the environment for the variables `user` reads (others keep
 * their defaults). Returns -1 with err naming the variable on any bad value.
 */
int config_load(struct config *cfg, unsigned user, struct config_error *err) KQE_MUSTCHECK;

/* Where Redis is, as redis_open() takes it (the strings stay cfg's). */
struct redis_settings config_redis_settings(const struct config *cfg);

/* Like config_load but reads values through getenv_fn (for tests). */
int config_load_from(struct config *cfg, unsigned user, const char *(*getenv_fn)(const char *),
    struct config_error *err) KQE_MUSTCHECK;

void config_free(struct config *cfg);

/* Prints "NAME  default  meaning" for every variable `user` reads. */
void config_print_help(FILE *out, unsigned user);

#endif
