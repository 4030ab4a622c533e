/*
 * kqe-aggregator — consumes jobs from the Redis stream kqe:jobs and writes
 * statistics and report snapshots to PostgreSQL. Stops within one blocking
 * read (KQE_JOBS_BLOCK_MS) of SIGTERM; a job in progress is finished first.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "aggregator.h"
#include "kqe/crypto.h"
#include "kqe/log.h"
#include "kqe/util.h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct config_error err;

	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("kqe-aggregator %s\n", KQE_VERSION);
		return 0;
	}
	if (argc > 1) {
		int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
		FILE *out = help ? stdout : stderr;
		fprintf(out, "usage: kqe-aggregator [--help] [--version]\n\n"
		             "Builds statistics and reports from the job stream kqe:jobs.\n\n");
		config_print_help(out, CONFIG_AGGREGATOR);
		return help ? 0 : 2;
	}
	if (config_load(&cfg, CONFIG_AGGREGATOR, &err) != 0) {
		fprintf(stderr, "kqe-aggregator: %s\n", err.message);
		return 2;
	}
	log_threshold = cfg.log_level;

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct aggregator a = { .cfg = &cfg, .stop = &stop };
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	/* A container restarts with the same host name and pid 1: the tag tells its lives apart,
	 * which the poison-job count relies on (a job still running under another name crashed). */
	unsigned char tag[4];
	char tag_hex[2 * sizeof(tag) + 1];
	random_bytes(tag, sizeof(tag));
	hex_encode(tag, sizeof(tag), tag_hex);
	snprintf(a.consumer, sizeof(a.consumer), "%s-%ld-%s", host, (long)getpid(), tag_hex);
	a.db = db_new(cfg.database_url, cfg.statement_timeout_ms, "kqe-aggregator");
	struct redis_settings rs = config_redis_settings(&cfg);
	a.redis = redis_open(&rs);
	if (a.redis == NULL) {
		fprintf(stderr, "kqe-aggregator: KQE_REDIS_URL: not a redis:// URL\n");
		db_free(a.db);
		config_free(&cfg);
		return 2;
	}
	a.memo = rollup_memo_new();
	struct keyring *keyring = NULL;
	if (strcmp(cfg.data_keys, "-") != 0) {
		char kerr[256];
		if ((keyring = keyring_new(cfg.data_keys, kerr, sizeof(kerr))) == NULL) {
			fprintf(stderr, "kqe-aggregator: KQE_DATA_KEYS: %s\n", kerr);
			rollup_memo_free(a.memo);
			db_free(a.db);
			redis_free(a.redis);
			config_free(&cfg);
			return 2;
		}
	} else if (strcmp(cfg.smtp_url, "-") != 0) {
		log_warn(
		    NULL, "KQE_SMTP_URL is set but KQE_DATA_KEYS is not: mails stay queued", NULL);
	}
	a.keyring = keyring;
	struct signer *signer = NULL;
	if (strcmp(cfg.audit_signing_key, "-") != 0) {
		char serr[128];
		/* config_load checked the key: this cannot fail but for a missing Ed25519. */
		if ((signer = signer_new(cfg.audit_signing_key, serr, sizeof(serr))) == NULL) {
			fprintf(stderr, "kqe-aggregator: KQE_AUDIT_SIGNING_KEY: %s\n", serr);
			keyring_free(keyring);
			rollup_memo_free(a.memo);
			db_free(a.db);
			redis_free(a.redis);
			config_free(&cfg);
			return 2;
		}
		log_info(NULL, "audit heads signed",
		    json_pack("{s:s,s:s}", "key_id", signer_key_id(signer), "public_key",
		        signer_public_key(signer)));
	} else {
		log_warn(
		    NULL, "KQE_AUDIT_SIGNING_KEY is not set: audit heads are not signed", NULL);
	}
	a.signer = signer;
	curl_global_init(CURL_GLOBAL_ALL);
	int rc = aggregator_run(&a);
	log_info(NULL, "stopped", NULL);
	curl_global_cleanup();
	signer_free(signer);
	keyring_free(keyring);
	rollup_memo_free(a.memo);
	db_free(a.db);
	redis_free(a.redis);
	config_free(&cfg);
	return rc;
}
