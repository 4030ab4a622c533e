#include "kqe/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kqe/crypto.h"

enum config_type { TYPE_STRING, TYPE_INT, TYPE_LOG_LEVEL };

struct config_var {
	const char *name;
	enum config_type type;
	const char *def;
	long min, max;
	unsigned users;
	size_t offset;
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct config_var vars[] = {
	{ "KQE_SDC_MIN_COUNT", TYPE_INT, "3", 1, 1000, CONFIG_AGGREGATOR, OFF(sdc_min_count),
	    "disclosure control: a median of cases needs this many cases" },
	{ "KQE_SDC_DOMINANCE_PERCENT", TYPE_INT, "85", 1, 100, CONFIG_AGGREGATOR,
	    OFF(sdc_dominance_percent),
	    "disclosure control: no median where one office holds more than this share of its cases" },
	{ "KQE_RELEASE_INTERVAL_S", TYPE_INT, "2592000", 0, 31622400, CONFIG_AGGREGATOR,
	    OFF(release_interval_s),
	    "seconds between releases of cross-office figures (0: one before every report job, "
	    "for development and tests only)" },
	{ "KQE_RELEASE_MIN_CHANGES", TYPE_INT, "30", 1, 1000000, CONFIG_AGGREGATOR | CONFIG_ADMIN,
	    OFF(release_min_changes),
	    "records of one source (case analyses, topics, ...) of a group of offices in a period "
	    "that must have changed before a release refreshes that source's figures" },
	{ "KQE_RELEASE_FINAL", TYPE_INT, "1", 0, 1, CONFIG_AGGREGATOR | CONFIG_ADMIN,
	    OFF(release_final),
	    "1: a period's figures become final once it closed; 0 only for development and tests" },
	{ "KQE_SDC_MIN_OFFICES", TYPE_INT, "5", 1, 1000, CONFIG_AGGREGATOR | CONFIG_API,
	    OFF(sdc_min_offices),
	    "disclosure control: comparison values (median, quartiles) need this many offices" },
	{ "KQE_ADVICE_RESPONSE_DAYS", TYPE_INT, "5", 1, 365, CONFIG_API, OFF(advice_response_days),
	    "§ 7 advice: days within which a request should have its first response; later it "
	    "counts as overdue in the advisors' queue" },
	{ "KQE_JOBS_MAX_ATTEMPTS", TYPE_INT, "5", 1, 100, CONFIG_AGGREGATOR, OFF(jobs_max_attempts),
	    "attempts before a job is dead and copied to the stream kqe:jobs:dead" },
	{ "KQE_JOBS_BACKOFF_BASE_MS", TYPE_INT, "1000", 1, 3600000, CONFIG_AGGREGATOR,
	    OFF(jobs_backoff_base_ms),
	    "delay before the first retry; doubles per attempt, with jitter" },
	{ "KQE_JOBS_BACKOFF_MAX_MS", TYPE_INT, "300000", 1, 86400000, CONFIG_AGGREGATOR,
	    OFF(jobs_backoff_max_ms), "cap on the delay between retries" },
	{ "KQE_PSEUDONYM_KEY", TYPE_STRING, "-", 0, 0, CONFIG_API | CONFIG_ADMIN,
	    OFF(pseudonym_key),
	    "base64 key (>= 32 bytes) for HMAC-SHA256 pseudonyms of case references; - = none" },
	{ "KQE_DATA_KEYS", TYPE_STRING, "-", 0, 0, CONFIG_API | CONFIG_ADMIN | CONFIG_AGGREGATOR,
	    OFF(data_keys),
	    "AES-256-GCM keys for free text, id:base64key[,id:base64key...]; newest id encrypts"
	    " (the aggregator: to read the mails it sends)" },
	{ "KQE_SMTP_URL", TYPE_STRING, "-", 0, 0, CONFIG_AGGREGATOR, OFF(smtp_url),
	    "SMTP server the aggregator sends mails through: smtp://host:port (STARTTLS when"
	    " offered) or smtps://host:port; - = mails stay queued" },
	{ "KQE_MAIL_FROM", TYPE_STRING, "kqe@localhost", 0, 0, CONFIG_AGGREGATOR, OFF(mail_from),
	    "sender address of kqe's mails" },
	{ "KQE_SMTP_TIMEOUT_MS", TYPE_INT, "10000", 100, 600000, CONFIG_AGGREGATOR,
	    OFF(smtp_timeout_ms), "how long one mail may take to hand over" },
	{ "KQE_MAIL_RETRY_MS", TYPE_INT, "30000", 10, 86400000, CONFIG_AGGREGATOR,
	    OFF(mail_retry_ms),
	    "delay before a failed mail is tried again; doubles per attempt, at most an hour" },
	{ "KQE_MAIL_ATTEMPTS", TYPE_INT, "8", 1, 100, CONFIG_AGGREGATOR, OFF(mail_attempts),
	    "attempts before a mail is marked failed" },
	{ "KQE_JWKS_FILE", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(jwks_file),
	    "JWKS file with the identity provider's public keys (RS256/ES256); - = no JWTs" },
	{ "KQE_JWKS_URL", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(jwks_url),
	    "https:// JWKS endpoint of the identity provider, fetched and cached (not with KQE_JWKS_FILE); - = none" },
	{ "KQE_JWKS_CA_FILE", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(jwks_ca_file),
	    "PEM CA bundle trusted for KQE_JWKS_URL instead of the system CA store; - = system store" },
	{ "KQE_JWT_ISSUER", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(jwt_issuer),
	    "required iss of JWTs (needed with KQE_JWKS_FILE or KQE_JWKS_URL)" },
	{ "KQE_JWT_AUDIENCE", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(jwt_audience),
	    "required aud of JWTs (needed with KQE_JWKS_FILE or KQE_JWKS_URL)" },
	{ "KQE_JWT_LEEWAY_S", TYPE_INT, "60", 0, 600, CONFIG_API, OFF(jwt_leeway_s),
	    "clock skew allowed when checking exp and nbf, in seconds" },
	{ "KQE_JWT_ROLE_CLAIM", TYPE_STRING, "kqe_role", 0, 0, CONFIG_API, OFF(jwt_role_claim),
	    "JWT claim holding the kqe role" },
	{ "KQE_JWT_OFFICE_CLAIM", TYPE_STRING, "kqe_office", 0, 0, CONFIG_API,
	    OFF(jwt_office_claim), "JWT claim holding the office id of office roles" },
	{ "KQE_JWT_REGION_CLAIM", TYPE_STRING, "kqe_region", 0, 0, CONFIG_API,
	    OFF(jwt_region_claim), "JWT claim holding the region (LVR/LWL) of advisors" },
	{ "KQE_JWT_INSTITUTE_CLAIM", TYPE_STRING, "kqe_institute", 0, 0, CONFIG_API,
	    OFF(jwt_institute_claim), "JWT claim holding the institute id of institutes" },
	{ "KQE_JWT_PROVIDER_CLAIM", TYPE_STRING, "kqe_provider", 0, 0, CONFIG_API,
	    OFF(jwt_provider_claim),
	    "JWT claim holding the provider id of provider_staff (foster-care providers)" },
	{ "KQE_PUBLIC_URL", TYPE_STRING, "http://localhost:8080", 0, 0, CONFIG_API, OFF(public_url),
	    "the API's address as people reach it, for the links in mails" },
	{ "KQE_SIGNUP_RATE_LIMIT_PER_MINUTE", TYPE_INT, "10", 0, 100000, CONFIG_API,
	    OFF(signup_rate_limit_per_minute),
	    "registrations and confirmations without a token per client address and minute;"
	    " 0 = unlimited" },
	{ "KQE_JWT_PROGRAMME_CLAIM", TYPE_STRING, "kqe_programme", 0, 0, CONFIG_API,
	    OFF(jwt_programme_claim), "JWT claim holding the programme id of programme_team" },
	{ "KQE_TLS_CERT", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(tls_cert),
	    "PEM certificate (chain) file: serve HTTPS in-process; - = plain HTTP" },
	{ "KQE_TLS_KEY", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(tls_key),
	    "PEM private key file for KQE_TLS_CERT" },
	{ "KQE_CORS_ORIGINS", TYPE_STRING, "-", 0, 0, CONFIG_API, OFF(cors_origins),
	    "comma-separated browser origins allowed by CORS (e.g. https://app.example); - = none" },
	{ "KQE_RATE_LIMIT_PER_MINUTE", TYPE_INT, "1200", 0, 1000000, CONFIG_API,
	    OFF(rate_limit_per_minute),
	    "requests one token may make per minute, counted in Redis across instances; 0 = off" },
	{ "KQE_HTTP_ADDR", TYPE_STRING, "127.0.0.1", 0, 0, CONFIG_API, OFF(http_addr),
	    "address kqe-api listens on (IPv4 or IPv6 literal)" },
	{ "KQE_HTTP_PORT", TYPE_INT, "8080", 0, 65535, CONFIG_API, OFF(http_port),
	    "TCP port kqe-api listens on (0 = any free port, logged at start)" },
	{ "KQE_DATABASE_URL", TYPE_STRING, "postgresql:///kqe", 0, 0,
	    CONFIG_API | CONFIG_AGGREGATOR, OFF(database_url),
	    "libpq URI of the database as the service role kqe_service (RLS applies)" },
	{ "KQE_DATABASE_ADMIN_URL", TYPE_STRING, "postgresql:///kqe", 0, 0, CONFIG_ADMIN,
	    OFF(database_admin_url),
	    "libpq URI of the database as the owning role (migrations, tokens, audit verify)" },
	{ "KQE_REDIS_URL", TYPE_STRING, "redis://127.0.0.1:6379/0", 0, 0,
	    CONFIG_API | CONFIG_AGGREGATOR | CONFIG_ADMIN, OFF(redis_url),
	    "Redis URL redis://host:port[/db] holding the job stream kqe:jobs (with "
	    "KQE_REDIS_SENTINELS only its /db counts)" },
	{ "KQE_REDIS_SENTINELS", TYPE_STRING, "-", 0, 0,
	    CONFIG_API | CONFIG_AGGREGATOR | CONFIG_ADMIN, OFF(redis_sentinels),
	    "Redis Sentinels host:port,host:port,... asked for the master at every (re)connection, "
	    "so a failover is followed; - = none (KQE_REDIS_URL's host is the server)" },
	{ "KQE_REDIS_MASTER_NAME", TYPE_STRING, "kqe", 0, 0,
	    CONFIG_API | CONFIG_AGGREGATOR | CONFIG_ADMIN, OFF(redis_master_name),
	    "name of the master the Sentinels monitor (with KQE_REDIS_SENTINELS)" },
	{ "KQE_LOG_LEVEL", TYPE_LOG_LEVEL, "info", 0, 0, CONFIG_ALL, OFF(log_level),
	    "lowest level logged: debug, info, warn, error" },
	{ "KQE_API_THREADS", TYPE_INT, "2", 1, 64, CONFIG_API, OFF(api_threads),
	    "event-loop threads: HTTP input and output, never waiting on a dependency" },
	{ "KQE_DB_POOL", TYPE_INT, "16", 1, 256, CONFIG_API, OFF(db_pool),
	    "threads that run requests needing PostgreSQL or Redis, each with its own "
	    "connections; one client uses at most half of them, batches at most half" },
	{ "KQE_DB_QUEUE", TYPE_INT, "512", 1, 100000, CONFIG_API, OFF(db_queue),
	    "requests waiting for a pool thread; beyond it they are answered 503 at once" },
	{ "KQE_REQUEST_TIMEOUT_MS", TYPE_INT, "10000", 100, 600000, CONFIG_API,
	    OFF(request_timeout_ms),
	    "a request's deadline from when it was read: waiting for a pool thread and for "
	    "PostgreSQL never goes past it (503 with Retry-After)" },
	{ "KQE_MAX_BODY_BYTES", TYPE_INT, "4194304", 1024, 67108864, CONFIG_API,
	    OFF(max_body_bytes), "largest request body accepted; larger answers 413" },
	{ "KQE_MATERIAL_MAX_BYTES", TYPE_INT, "8388608", 1024, 268435456, CONFIG_API,
	    OFF(material_max_bytes),
	    "largest file of a programme's materials library (stored in PostgreSQL); larger "
	    "answers 413. Also the most any request body may hold before it is cut off" },
	{ "KQE_MAX_HEADER_BYTES", TYPE_INT, "16384", 1024, 1048576, CONFIG_API,
	    OFF(max_header_bytes), "largest request header block accepted; larger answers 431" },
	{ "KQE_HTTP_TIMEOUT_MS", TYPE_INT, "30000", 100, 3600000, CONFIG_API, OFF(http_timeout_ms),
	    "an HTTP connection idle (no byte in or out) this long is closed" },
	{ "KQE_HTTP_REQUEST_READ_MS", TYPE_INT, "10000", 100, 3600000, CONFIG_API,
	    OFF(request_read_ms),
	    "a request's headers and body must arrive within this time from its first byte, "
	    "however slowly they trickle in; else the connection is closed" },
	{ "KQE_MAX_CONNECTIONS", TYPE_INT, "4096", 16, 1000000, CONFIG_API, OFF(max_connections),
	    "open client connections per process (further ones are answered 503 and closed; "
	    "kept below the descriptor limit)" },
	{ "KQE_MAX_CONNECTIONS_PER_CLIENT", TYPE_INT, "256", 0, 1000000, CONFIG_API,
	    OFF(max_connections_per_client),
	    "open connections per client address (0 = no cap: behind a proxy all clients share "
	    "its address)" },
	{ "KQE_STATEMENT_TIMEOUT_MS", TYPE_INT, "5000", 0, 3600000, CONFIG_ALL,
	    OFF(statement_timeout_ms),
	    "server-side statement_timeout of the services' database sessions (0 = none)" },
	{ "KQE_SHUTDOWN_TIMEOUT_MS", TYPE_INT, "200", 0, 60000, CONFIG_API,
	    OFF(shutdown_timeout_ms),
	    "after SIGTERM, how long answers already queued are flushed before connections close" },
	{ "KQE_JSON_MAX_DEPTH", TYPE_INT, "16", 2, 256, CONFIG_API, OFF(json_max_depth),
	    "deepest nesting of arrays/objects accepted in a request body" },
	{ "KQE_REDIS_TIMEOUT_MS", TYPE_INT, "1000", 10, 60000,
	    CONFIG_API | CONFIG_AGGREGATOR | CONFIG_ADMIN, OFF(redis_timeout_ms),
	    "connect and command timeout for Redis" },
	{ "KQE_JOBS_BATCH", TYPE_INT, "16", 1, 1000, CONFIG_AGGREGATOR, OFF(jobs_batch),
	    "stream entries read per XREADGROUP/XAUTOCLAIM" },
	{ "KQE_JOBS_BLOCK_MS", TYPE_INT, "1000", 10, 60000, CONFIG_AGGREGATOR, OFF(jobs_block_ms),
	    "how long XREADGROUP blocks waiting for new jobs" },
	{ "KQE_JOBS_VISIBILITY_MS", TYPE_INT, "30000", 100, 86400000, CONFIG_AGGREGATOR,
	    OFF(jobs_visibility_ms),
	    "an entry pending longer than this is claimed by another consumer (XAUTOCLAIM)" },
	{ "KQE_JOBS_TRIM_INTERVAL_S", TYPE_INT, "60", 0, 86400, CONFIG_AGGREGATOR,
	    OFF(jobs_trim_interval_s),
	    "how often the aggregator removes the entries of kqe:jobs every consumer group is done with (also once at start), in seconds; 0 = never" },
	{ "KQE_JOBS_DEAD_MAX", TYPE_INT, "10000", 100, 100000000, CONFIG_AGGREGATOR,
	    OFF(jobs_dead_max),
	    "dead letters kept in the stream kqe:jobs:dead, approximately (Redis drops whole nodes of entries); older ones are dropped" },
	{ "KQE_OUTBOX_GRACE_MS", TYPE_INT, "2000", 0, 3600000, CONFIG_AGGREGATOR,
	    OFF(outbox_grace_ms),
	    "outbox rows older than this that the API did not publish are relayed to Redis" },
	{ "KQE_RETENTION_YEARS", TYPE_INT, "0", 0, 100, CONFIG_AGGREGATOR | CONFIG_ADMIN,
	    OFF(retention_years),
	    "retention period of case-level data in years: what is dated before 1 January, this many years back, is deleted (docs/retention.md); 0 = keep (off)" },
	{ "KQE_RETENTION_INTERVAL_S", TYPE_INT, "86400", 1, 604800, CONFIG_AGGREGATOR,
	    OFF(retention_interval_s),
	    "how often the aggregator runs retention (also once at start), in seconds" },
	{ "KQE_AUDIT_SIGNING_KEY", TYPE_STRING, "-", 0, 0, CONFIG_AGGREGATOR | CONFIG_ADMIN,
	    OFF(audit_signing_key),
	    "Ed25519 key (base64 of 32 random bytes: openssl rand -base64 32) that signs the audit "
	    "chain's heads; - = heads are not signed (docs/security.md, \"The audit log\")" },
	{ "KQE_AUDIT_PUBLIC_KEY", TYPE_STRING, "-", 0, 0, CONFIG_ADMIN, OFF(audit_public_key),
	    "the signing key's public key (base64; kqe audit key prints it), and after a rotation "
	    "the keys before it, comma-separated: kqe audit verify checks every signed head with "
	    "the one of its key id; - = signatures are not checked" },
	{ "KQE_AUDIT_SEAL_INTERVAL_MS", TYPE_INT, "200", 10, 60000, CONFIG_AGGREGATOR,
	    OFF(audit_seal_interval_ms),
	    "how often the aggregator links finished audit appends into the hash chain" },
	{ "KQE_AUDIT_HEAD_INTERVAL_S", TYPE_INT, "60", 1, 86400, CONFIG_AGGREGATOR,
	    OFF(audit_head_interval_s),
	    "how often the aggregator signs the chain's head (when it moved), in seconds" },
};

static int
set_value(
    struct config *cfg, const struct config_var *v, const char *text, struct config_error *err)
{
	char *field = (char *)cfg + v->offset;

	switch (v->type) {
	case TYPE_STRING:
		if (*text == '\0') {
			snprintf(
			    err->message, sizeof(err->message), "%s: must not be empty", v->name);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(text);
		return 0;
	case TYPE_INT: {
		char *end;
		errno = 0;
		long n = strtol(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0' || n < v->min || n > v->max) {
			snprintf(err->message, sizeof(err->message),
			    "%s: \"%.40s\" is not an integer from %ld to %ld", v->name, text,
			    v->min, v->max);
			return -1;
		}
		*(long *)field = n;
		return 0;
	}
	case TYPE_LOG_LEVEL:
		if (log_level_parse(text, (enum log_level *)field) != 0) {
			snprintf(err->message, sizeof(err->message),
			    "%s: \"%.40s\" is not one of debug, info, warn, error", v->name, text);
			return -1;
		}
		return 0;
	}
	return -1;
}

/*
 * Checks that involve more than one variable, or more than a value's type: where
 * the identity provider's keys come from. Returns -1 with err naming the variable.
 */
static int
check_jwks(const struct config *cfg, struct config_error *err)
{
	int have_file = strcmp(cfg->jwks_file, "-") != 0,
	    have_url = strcmp(cfg->jwks_url, "-") != 0;
	if (have_file && have_url) {
		snprintf(err->message, sizeof(err->message),
		    "KQE_JWKS_FILE and KQE_JWKS_URL: set only one of them");
		return -1;
	}
	/* Only HTTPS: keys fetched in the clear could be replaced by anyone on the path. */
	if (have_url && (strncasecmp(cfg->jwks_url, "https://", 8) != 0 ||
	                    cfg->jwks_url[8] == '\0' || strchr("/?#", cfg->jwks_url[8]) != NULL)) {
		snprintf(err->message, sizeof(err->message),
		    "KQE_JWKS_URL: \"%.60s\" is not an https:// URL", cfg->jwks_url);
		return -1;
	}
	if (!have_url && strcmp(cfg->jwks_ca_file, "-") != 0) {
		snprintf(err->message, sizeof(err->message),
		    "KQE_JWKS_CA_FILE: only used with KQE_JWKS_URL, which is not set");
		return -1;
	}
	return 0;
}

/* The audit signing key and its public key, when set, are keys (never echoed). */
static int
check_audit_keys(const struct config *cfg, struct config_error *err)
{
	char id[SIGNER_KEY_ID_LEN + 1], why[128];
	if (strcmp(cfg->audit_signing_key, "-") != 0) {
		struct signer *s = signer_new(cfg->audit_signing_key, why, sizeof(why));
		if (s == NULL) {
			snprintf(
			    err->message, sizeof(err->message), "KQE_AUDIT_SIGNING_KEY: %s", why);
			return -1;
		}
		signer_free(s);
	}
	if (strcmp(cfg->audit_public_key, "-") == 0)
		return 0;
	char *keys = xstrdup(cfg->audit_public_key), *save = NULL;
	int rc = 0;
	for (char *k = strtok_r(keys, ",", &save); k != NULL && rc == 0;
	     k = strtok_r(NULL, ",", &save))
		rc = signer_public_key_id(k, id);
	free(keys);
	if (rc != 0) {
		snprintf(err->message, sizeof(err->message),
		    "KQE_AUDIT_PUBLIC_KEY: every key must be strict standard base64 of %d bytes",
		    SIGNER_KEY_LEN);
		return -1;
	}
	return 0;
}

int
config_load_from(struct config *cfg, unsigned user, const char *(*getenv_fn)(const char *),
    struct config_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < ARRAY_LEN(vars); i++) {
		const struct config_var *v = &vars[i];
		const char *text = NULL;
		if (v->users & user)
			text = getenv_fn(v->name);
		if (set_value(cfg, v, text != NULL ? text : v->def, err) != 0) {
			config_free(cfg);
			return -1;
		}
	}
	struct redis_settings rs = config_redis_settings(cfg);
	if (check_jwks(cfg, err) != 0 || check_audit_keys(cfg, err) != 0 ||
	    redis_settings_check(&rs, err->message, sizeof(err->message)) != 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

struct redis_settings
config_redis_settings(const struct config *cfg)
{
	return (struct redis_settings){ .url = cfg->redis_url,
		.sentinels = strcmp(cfg->redis_sentinels, "-") != 0 ? cfg->redis_sentinels : NULL,
		.master_name = cfg->redis_master_name,
		.timeout_ms = cfg->redis_timeout_ms };
}

static const char *
env_get(const char *name)
{
	return getenv(name);
}

int
config_load(struct config *cfg, unsigned user, struct config_error *err)
{
	return config_load_from(cfg, user, env_get, err);
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < ARRAY_LEN(vars); i++) {
		if (vars[i].type == TYPE_STRING) {
			char **p = (char **)((char *)cfg + vars[i].offset);
			free(*p);
			*p = NULL;
		}
	}
}

void
config_print_help(FILE *out, unsigned user)
{
	fprintf(out, "Environment variables:\n");
	for (size_t i = 0; i < ARRAY_LEN(vars); i++) {
		if (!(vars[i].users & user))
			continue;
		fprintf(out, "  %-26s default %-28s %s\n", vars[i].name, vars[i].def, vars[i].help);
	}
}
