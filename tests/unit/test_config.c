/* config: defaults, parsing, range checks and error messages naming the variable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kqe/config.h"

static const char *fake_name, *fake_value;

static const char *
fake_env(const char *name)
{
	return fake_name != NULL && strcmp(name, fake_name) == 0 ? fake_value : NULL;
}

static void
test_defaults(void **state)
{
	(void)state;
	struct config cfg;
	struct config_error err;
	fake_name = NULL;
	assert_int_equal(config_load_from(&cfg, CONFIG_API, fake_env, &err), 0);
	assert_string_equal(cfg.http_addr, "127.0.0.1");
	assert_int_equal(cfg.http_port, 8080);
	assert_int_equal(cfg.api_threads, 2);
	assert_int_equal(cfg.max_body_bytes, 4194304);
	assert_int_equal(cfg.log_level, LOG_INFO);
	config_free(&cfg);
	/* Retention deletes social data: off unless an operator sets a period. */
	assert_int_equal(
	    config_load_from(&cfg, CONFIG_AGGREGATOR | CONFIG_ADMIN, fake_env, &err), 0);
	assert_int_equal(cfg.retention_years, 0);
	assert_int_equal(cfg.retention_interval_s, 86400);
	/* The job stream is trimmed every minute; the dead letters kept are bounded. */
	assert_int_equal(cfg.jobs_trim_interval_s, 60);
	assert_int_equal(cfg.jobs_dead_max, 10000);
	config_free(&cfg);
}

static const struct {
	const char *name, *value;
	int ok;
	long expect; /* for integer variables when ok */
} cases[] = {
	{ "KQE_HTTP_PORT", "0", 1, 0 },
	{ "KQE_HTTP_PORT", "65535", 1, 65535 },
	{ "KQE_HTTP_PORT", "65536", 0, 0 },
	{ "KQE_HTTP_PORT", "-1", 0, 0 },
	{ "KQE_HTTP_PORT", "80x", 0, 0 },
	{ "KQE_HTTP_PORT", "", 0, 0 },
	{ "KQE_HTTP_PORT", "99999999999999999999999", 0, 0 },
	{ "KQE_API_THREADS", "64", 1, 64 },
	{ "KQE_API_THREADS", "65", 0, 0 },
	{ "KQE_LOG_LEVEL", "debug", 1, LOG_DEBUG },
	{ "KQE_LOG_LEVEL", "error", 1, LOG_ERROR },
	{ "KQE_LOG_LEVEL", "fatal", 0, 0 },
	{ "KQE_LOG_LEVEL", "INFO", 0, 0 },
	{ "KQE_DATABASE_URL", "", 0, 0 },
	{ "KQE_RETENTION_YEARS", "0", 1, 0 },
	{ "KQE_RETENTION_YEARS", "10", 1, 10 },
	{ "KQE_RETENTION_YEARS", "100", 1, 100 },
	{ "KQE_RETENTION_YEARS", "101", 0, 0 },
	{ "KQE_RETENTION_YEARS", "-1", 0, 0 },
	{ "KQE_RETENTION_YEARS", "ten", 0, 0 },
	{ "KQE_RETENTION_INTERVAL_S", "1", 1, 1 },
	{ "KQE_RETENTION_INTERVAL_S", "0", 0, 0 },
	{ "KQE_RETENTION_INTERVAL_S", "604801", 0, 0 },
	{ "KQE_JOBS_TRIM_INTERVAL_S", "0", 1, 0 },
	{ "KQE_JOBS_TRIM_INTERVAL_S", "86400", 1, 86400 },
	{ "KQE_JOBS_TRIM_INTERVAL_S", "86401", 0, 0 },
	{ "KQE_JOBS_TRIM_INTERVAL_S", "-1", 0, 0 },
	{ "KQE_JOBS_TRIM_INTERVAL_S", "1m", 0, 0 },
	{ "KQE_JOBS_DEAD_MAX", "100", 1, 100 },
	{ "KQE_JOBS_DEAD_MAX", "100000000", 1, 100000000 },
	{ "KQE_JOBS_DEAD_MAX", "99", 0, 0 },
	{ "KQE_JOBS_DEAD_MAX", "0", 0, 0 },
	{ "KQE_JOBS_DEAD_MAX", "100000001", 0, 0 },
	/* The audit chain's keys: checked at start, never echoed. */
	{ "KQE_AUDIT_SIGNING_KEY", "dGVzdC1hdWRpdC1zaWduaW5nLWtleS0zMi1ieXRlcyE=", 1, 0 },
	{ "KQE_AUDIT_SIGNING_KEY", "c2hvcnQ=", 0, 0 },
	{ "KQE_AUDIT_PUBLIC_KEY", "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI=", 1, 0 },
	{ "KQE_AUDIT_PUBLIC_KEY",
	    "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI=,Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTM=",
	    1, 0 },
	{ "KQE_AUDIT_PUBLIC_KEY", "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI=,xyz", 0, 0 },
	/* Redis: the URL and the Sentinels are checked at start, not at the first command. */
	{ "KQE_REDIS_URL", "redis://cache.internal:6380/2", 1, 0 },
	{ "KQE_REDIS_URL", "redis://h:0", 0, 0 },
	{ "KQE_REDIS_URL", "http://h:6379", 0, 0 },
	{ "KQE_REDIS_URL", "redis://h/16", 0, 0 },
	{ "KQE_REDIS_SENTINELS", "s1:26379", 1, 0 },
	{ "KQE_REDIS_SENTINELS", "s1:26379,10.0.0.2:26379,[fd00::3]:26379", 1, 0 },
	{ "KQE_REDIS_SENTINELS", "s1", 0, 0 },
	{ "KQE_REDIS_SENTINELS", "s1:26379,", 0, 0 },
	{ "KQE_REDIS_SENTINELS", ":26379", 0, 0 },
	{ "KQE_REDIS_SENTINELS", "s1:70000", 0, 0 },
	{ "KQE_REDIS_SENTINELS", "s1:2x", 0, 0 },
	{ "KQE_REDIS_SENTINELS", "a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1", 0, 0 },
	{ "KQE_REDIS_MASTER_NAME", "kqe-prod", 1, 0 },
	{ "KQE_REDIS_MASTER_NAME", "two words", 0, 0 },
};

static void
test_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct config_error err = { { 0 } };
		fake_name = cases[i].name;
		fake_value = cases[i].value;
		int rc = config_load_from(&cfg, CONFIG_ALL, fake_env, &err);
		if (!cases[i].ok) {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err.message, cases[i].name));
			continue;
		}
		assert_int_equal(rc, 0);
		if (strcmp(cases[i].name, "KQE_HTTP_PORT") == 0)
			assert_int_equal(cfg.http_port, cases[i].expect);
		else if (strcmp(cases[i].name, "KQE_API_THREADS") == 0)
			assert_int_equal(cfg.api_threads, cases[i].expect);
		else if (strcmp(cases[i].name, "KQE_LOG_LEVEL") == 0)
			assert_int_equal(cfg.log_level, cases[i].expect);
		else if (strcmp(cases[i].name, "KQE_RETENTION_YEARS") == 0)
			assert_int_equal(cfg.retention_years, cases[i].expect);
		else if (strcmp(cases[i].name, "KQE_RETENTION_INTERVAL_S") == 0)
			assert_int_equal(cfg.retention_interval_s, cases[i].expect);
		else if (strcmp(cases[i].name, "KQE_JOBS_TRIM_INTERVAL_S") == 0)
			assert_int_equal(cfg.jobs_trim_interval_s, cases[i].expect);
		else if (strcmp(cases[i].name, "KQE_JOBS_DEAD_MAX") == 0)
			assert_int_equal(cfg.jobs_dead_max, cases[i].expect);
		config_free(&cfg);
	}
}

static void
test_variables_of_other_programs_are_ignored(void **state)
{
	(void)state;
	struct config cfg;
	struct config_error err;
	/* kqe-api does not read KQE_JOBS_BATCH: a bad value there must not stop it. */
	fake_name = "KQE_JOBS_BATCH";
	fake_value = "nonsense";
	assert_int_equal(config_load_from(&cfg, CONFIG_API, fake_env, &err), 0);
	config_free(&cfg);
	assert_int_equal(config_load_from(&cfg, CONFIG_AGGREGATOR, fake_env, &err), -1);
}

/* Two variables at once, for the checks that involve more than one. */
static const char *pair_env[4];

static const char *
pair_get(const char *name)
{
	for (int i = 0; i < 4; i += 2)
		if (pair_env[i] != NULL && strcmp(name, pair_env[i]) == 0)
			return pair_env[i + 1];
	return NULL;
}

static void
test_jwks_sources(void **state)
{
	(void)state;
	static const struct {
		const char *env[4];
		int ok;
		const char *named; /* in the message when refused */
	} jwks_cases[] = {
		{ { "KQE_JWKS_URL",
		      "https://idp.example/realms/kqe/protocol/openid-connect/certs" },
		    1, NULL },
		{ { "KQE_JWKS_URL", "HTTPS://idp.example/certs" }, 1, NULL },
		{ { "KQE_JWKS_URL", "http://idp.example/certs" }, 0, "KQE_JWKS_URL" },
		{ { "KQE_JWKS_URL", "file:///etc/jwks.json" }, 0, "KQE_JWKS_URL" },
		{ { "KQE_JWKS_URL", "https://" }, 0, "KQE_JWKS_URL" },
		{ { "KQE_JWKS_URL", "https:///certs" }, 0, "KQE_JWKS_URL" },
		{ { "KQE_JWKS_URL", "idp.example/certs" }, 0, "KQE_JWKS_URL" },
		{ { "KQE_JWKS_URL", "https://idp.example/certs", "KQE_JWKS_FILE",
		      "/etc/jwks.json" },
		    0, "KQE_JWKS_FILE and KQE_JWKS_URL" },
		{ { "KQE_JWKS_URL", "https://idp.example/certs", "KQE_JWKS_CA_FILE",
		      "/etc/ca.pem" },
		    1, NULL },
		{ { "KQE_JWKS_FILE", "/etc/jwks.json", "KQE_JWKS_CA_FILE", "/etc/ca.pem" }, 0,
		    "KQE_JWKS_CA_FILE" },
	};
	for (size_t i = 0; i < sizeof(jwks_cases) / sizeof(jwks_cases[0]); i++) {
		struct config cfg;
		struct config_error err = { { 0 } };
		memcpy(pair_env, jwks_cases[i].env, sizeof(pair_env));
		int rc = config_load_from(&cfg, CONFIG_API, pair_get, &err);
		if (jwks_cases[i].ok) {
			assert_int_equal(rc, 0);
			assert_string_equal(cfg.jwks_url, jwks_cases[i].env[1]);
			config_free(&cfg);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err.message, jwks_cases[i].named));
		}
	}
	/* kqe-aggregator does not read them: their defaults pass. */
	pair_env[0] = "KQE_JWKS_URL";
	pair_env[1] = "http://idp.example/certs";
	pair_env[2] = NULL;
	struct config cfg;
	struct config_error err;
	assert_int_equal(config_load_from(&cfg, CONFIG_AGGREGATOR, pair_get, &err), 0);
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_variables_of_other_programs_are_ignored),
		cmocka_unit_test(test_jwks_sources),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
