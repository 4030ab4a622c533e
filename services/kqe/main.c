/*
 * kqe — the admin command line: migrate, import, seed, token, audit, rollups, retention,
 * jobs, release, sdc, health. Operators and the scripts use it; it talks to PostgreSQL as the
 * owning role (and to Redis for the job stream).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kqe/config.h"
#include "kqe/log.h"

static const struct {
	const char *name;
	int (*run)(int, char **, const struct config *);
	const char *usage;
} commands[] = {
	{ "migrate", cmd_migrate, "migrate                    apply pending SQL migrations" },
	{ "import", cmd_import, "import offices FILE.csv    import/update the office directory" },
	{ "seed", cmd_seed,
	    "seed --demo                load the deterministic synthetic demo state\n"
	    "  seed --synthetic [--offices K] [--cases N]  the demo plus N case analyses (COPY)" },
	{ "token", cmd_token, "token create|list|revoke   API tokens (kqe token --help)" },
	{ "audit", cmd_audit,
	    "audit verify [--head FILE] | seal | key  check, seal and sign the audit chain" },
	{ "rollups", cmd_rollups,
	    "rollups rebuild            recompute all rollups in one transaction" },
	{ "retention", cmd_retention,
	    "retention run [--dry-run]  delete case-level data older than KQE_RETENTION_YEARS" },
	{ "jobs", cmd_jobs,
	    "jobs status|trim           the job stream kqe:jobs: backlog, dead letters; trim now" },
	{ "release", cmd_release,
	    "release make [--min-changes N]  a release of the cross-office figures now" },
	{ "sdc", cmd_sdc,
	    "sdc ptable|evaluate        the perturbation table; what it costs a report's figures" },
	{ "health", cmd_health,
	    "health [URL]               exit 0 if kqe-api answers 200 (default its /healthz)" },
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: kqe COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		fprintf(out, "  kqe %s\n", commands[i].usage);
	fprintf(out, "\n");
	config_print_help(out, CONFIG_ADMIN);
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct config_error err;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kqe %s\n", KQE_VERSION);
		return 0;
	}
	if (config_load(&cfg, CONFIG_ADMIN, &err) != 0) {
		fprintf(stderr, "kqe: %s\n", err.message);
		return 2;
	}
	log_threshold = cfg.log_level;
	log_set_stream(stderr); /* stdout is for the command's own output */
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			int rc = commands[i].run(argc - 1, argv + 1, &cfg);
			config_free(&cfg);
			return rc;
		}
	}
	fprintf(stderr, "kqe: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	config_free(&cfg);
	return 2;
}
