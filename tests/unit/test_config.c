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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_variables_of_other_programs_are_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
