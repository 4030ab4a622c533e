/*
 * jwks_source — where the identity provider's keys come from, for the request
 * path: a JWKS file (read once at start) or the provider's JWKS endpoint.
 *
 * A URL is fetched with libcurl, HTTPS only, by one background thread that
 * owns every curl handle (curl handles are never shared between threads). The
 * current key set is a refcounted struct jwks behind a mutex: a worker takes a
 * reference for the duration of one verification, the fetch thread swaps in a
 * new set and drops its own reference; the old set is freed when the last
 * worker lets go. Workers never block on the network except for the bounded
 * wait for a refresh that a token with an unknown kid asked for.
 *
 * Schedule: every Cache-Control max-age of the last answer, clamped to
 * [REFRESH_MIN_S, REFRESH_MAX_S], REFRESH_DEFAULT_S without one; after a
 * failure retries back off from RETRY_FIRST_MS to RETRY_MAX_MS. A failed
 * fetch keeps the keys the source has (none before the first success).
 */
#include "jwt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "kqe/log.h"

#define FETCH_CONNECT_TIMEOUT_MS 3000L
#define FETCH_TIMEOUT_MS 5000L
#define FETCH_MAX_BYTES (1024 * 1024)
#define FETCH_MAX_REDIRECTS 2L
#define REFRESH_DEFAULT_S 600
#define REFRESH_MIN_S 60
#define REFRESH_MAX_S 86400
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 60000

struct jwks_source {
	bool remote; /* a URL; else a file, whose keys never change */
	struct jwks *keys; /* the current set, one reference held here; NULL until fetched */
	char *url;
	char *ca_file; /* NULL: the system CA store */
	char host[256]; /* of the URL: what logs name */

	pthread_mutex_t mu; /* guards everything below and the keys pointer */
	pthread_cond_t wake; /* to the fetch thread: a refresh is asked for, or stop */
	pthread_cond_t fetched; /* to waiting workers: a fetch finished */
	bool thread_started;
	pthread_t thread;
	bool stopping;
	bool refresh_asked; /* by a token with an unknown kid */
	bool fetching;
	unsigned long fetches_done; /* finished fetches, successful or not */
	struct timespec next_fetch; /* CLOCK_MONOTONIC */
	bool kid_refreshed; /* last_kid_refresh is set */
	struct timespec last_kid_refresh; /* CLOCK_MONOTONIC */
	int failures; /* consecutive failed fetches (fetch thread only) */
	atomic_bool abort_fetch; /* read by curl's progress callback */
};

/* ---- time ------------------------------------------------------------------ */

static struct timespec
mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static struct timespec
ts_add_ms(struct timespec ts, long ms)
{
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static bool
ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* ---- one fetch ------------------------------------------------------------- */

struct body {
	char *data;
	size_t len;
	bool too_large;
};

struct fetch_result {
	struct jwks *keys; /* NULL: failed, reason says why */
	long max_age_s; /* of Cache-Control; -1 if none */
	char reason[CURL_ERROR_SIZE + 64];
};

/* Keeps at most FETCH_MAX_BYTES; beyond that the transfer is aborted. */
static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	if (n > FETCH_MAX_BYTES - b->len) {
		b->too_large = true;
		return 0; /* != n: curl aborts with CURLE_WRITE_ERROR */
	}
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

/* Lets jwks_source_free abort a fetch under way instead of waiting for its timeout. */
static int
progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct jwks_source *src = arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&src->abort_fetch) ? 1 : 0;
}

/* max-age from a Cache-Control value ("public, max-age=3600"); -1 if none. */
static long
cache_max_age(const char *value)
{
	const char *p = value;
	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, "max-age", 7) == 0) {
			const char *q = p + 7;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '=') {
				q++;
				while (*q == ' ' || *q == '\t')
					q++;
				if (*q == '"')
					q++;
				if (*q >= '0' && *q <= '9') {
					long n = 0;
					while (*q >= '0' && *q <= '9' && n <= REFRESH_MAX_S)
						n = n * 10 + (*q++ - '0');
					return n;
				}
			}
		}
		p = strchr(p, ',');
	}
	return -1;
}

static long
response_max_age(CURL *h)
{
	struct curl_header *hdr;
	long max_age = -1;
	for (size_t i = 0;
	     curl_easy_header(h, "Cache-Control", i, CURLH_HEADER, -1, &hdr) == CURLHE_OK; i++) {
		long v = cache_max_age(hdr->value);
		if (v >= 0)
			max_age = v;
		if (i + 1 >= hdr->amount)
			break;
	}
	return max_age;
}

/*
 * HTTPS only, also after a redirect; peer and host verified; bounded in time
 * and size; no signals (we are one thread among many, see docs/design.md).
 * Any option libcurl refuses fails the fetch: running without one of them
 * (say, the protocol list) is not an option. 0, or -1 if one was refused.
 */
static int
fetch_options(
    struct jwks_source *src, CURL *h, struct curl_slist *headers, struct body *body, char *errbuf)
{
	bool refused = false;
#define SET(opt, val) refused |= curl_easy_setopt(h, opt, val) != CURLE_OK
	SET(CURLOPT_URL, src->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (src->ca_file != NULL) {
		/* Only this bundle: a private PKI, not the system store besides it. */
		SET(CURLOPT_CAINFO, src->ca_file);
		SET(CURLOPT_CAPATH, NULL);
	}
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, FETCH_CONNECT_TIMEOUT_MS);
	SET(CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)FETCH_MAX_BYTES);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, body);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, progress_cb);
	SET(CURLOPT_XFERINFODATA, src);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_USERAGENT, "kqe-api/" KQE_VERSION);
	SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
	return refused ? -1 : 0;
}

/* What the transfer h ended with (rc) and brought (body) makes of res: keys or a reason. */
static void
fetch_outcome(
    CURL *h, CURLcode rc, const struct body *body, const char *errbuf, struct fetch_result *res)
{
	if (rc != CURLE_OK) {
		if (body->too_large || rc == CURLE_FILESIZE_EXCEEDED)
			snprintf(res->reason, sizeof(res->reason), "response larger than %d bytes",
			    FETCH_MAX_BYTES);
		else
			snprintf(res->reason, sizeof(res->reason), "%s",
			    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		return;
	}
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(res->reason, sizeof(res->reason), "HTTP status %ld", status);
		return;
	}
	char why[200];
	res->keys = jwks_parse(body->data != NULL ? body->data : "", body->len, why, sizeof(why));
	if (res->keys == NULL) {
		snprintf(res->reason, sizeof(res->reason), "not a JWKS: %s", why);
		return;
	}
	res->max_age_s = response_max_age(h);
}

static void
fetch(struct jwks_source *src, struct fetch_result *res)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct body body = { NULL, 0, false };
	struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
	CURL *h = curl_easy_init();

	memset(res, 0, sizeof(*res));
	res->max_age_s = -1;
	if (h == NULL || headers == NULL)
		snprintf(res->reason, sizeof(res->reason), "cannot create a curl handle");
	else if (fetch_options(src, h, headers, &body, errbuf) != 0)
		snprintf(res->reason, sizeof(res->reason), "libcurl refused an option");
	else
		fetch_outcome(h, curl_easy_perform(h), &body, errbuf, res);
	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	free(body.data);
}

/* ---- the fetch thread -------------------------------------------------------- */

static long
refresh_after_s(long max_age_s)
{
	if (max_age_s < 0)
		return REFRESH_DEFAULT_S;
	if (max_age_s < REFRESH_MIN_S)
		return REFRESH_MIN_S;
	return max_age_s > REFRESH_MAX_S ? REFRESH_MAX_S : max_age_s;
}

/* Doubling from RETRY_FIRST_MS up to RETRY_MAX_MS, less up to a fifth at random. */
static long
retry_after_ms(int failures, unsigned *seed)
{
	long ms = RETRY_FIRST_MS;
	for (int i = 1; i < failures && ms < RETRY_MAX_MS; i++)
		ms *= 2;
	if (ms > RETRY_MAX_MS)
		ms = RETRY_MAX_MS;
	return ms - (long)(rand_r(seed) % (unsigned)(ms / 5 + 1));
}

static void *
fetch_thread(void *arg)
{
	struct jwks_source *src = arg;
	unsigned seed = (unsigned)getpid() ^ (unsigned)mono_now().tv_nsec;

	pthread_mutex_lock(&src->mu);
	while (!src->stopping) {
		if (!src->refresh_asked && ts_before(mono_now(), src->next_fetch)) {
			pthread_cond_timedwait(&src->wake, &src->mu, &src->next_fetch);
			continue;
		}
		const char *trigger = src->refresh_asked       ? "unknown kid"
		                      : src->fetches_done == 0 ? "start"
		                      : src->failures > 0      ? "retry"
		                                               : "schedule";
		src->refresh_asked = false;
		src->fetching = true;
		pthread_mutex_unlock(&src->mu);

		struct fetch_result res;
		fetch(src, &res);
		int failed_before = src->failures;
		long delay_ms;
		if (res.keys != NULL) {
			src->failures = 0;
			delay_ms = refresh_after_s(res.max_age_s) * 1000;
		} else {
			src->failures++;
			delay_ms = retry_after_ms(src->failures, &seed);
		}

		pthread_mutex_lock(&src->mu);
		struct jwks *old = NULL;
		if (res.keys != NULL) {
			old = src->keys;
			src->keys = res.keys;
		}
		src->next_fetch = ts_add_ms(mono_now(), delay_ms);
		src->fetching = false;
		src->fetches_done++;
		pthread_cond_broadcast(&src->fetched);
		pthread_mutex_unlock(&src->mu);

		jwks_free(old); /* freed here or by the last worker still holding it */
		if (res.keys != NULL) {
			json_t *f = json_pack("{s:s,s:i,s:s,s:i}", "host", src->host, "keys",
			    jwks_count(res.keys), "trigger", trigger, "next_refresh_s",
			    (int)(delay_ms / 1000));
			if (failed_before > 0) {
				json_object_set_new(f, "recovered", json_true());
				json_object_set_new(
				    f, "failed_attempts", json_integer(failed_before));
			}
			log_info(NULL,
			    failed_before > 0 ? "jwks fetched after failures" : "jwks fetched", f);
		} else if (!atomic_load(&src->abort_fetch)) {
			log_error(NULL, "jwks fetch failed",
			    json_pack("{s:s,s:s,s:s,s:i,s:f,s:b}", "host", src->host, "reason",
			        res.reason, "trigger", trigger, "failed_attempts", src->failures,
			        "retry_in_s", (double)delay_ms / 1000.0, "have_keys",
			        src->keys != NULL));
		}
		pthread_mutex_lock(&src->mu);
	}
	pthread_mutex_unlock(&src->mu);
	return NULL;
}

/* ---- the interface -------------------------------------------------------------- */

static int
url_host(const char *url, char *host, size_t size, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL;
	int rc = -1;
	CURLUcode uc = u == NULL ? CURLUE_OUT_OF_MEMORY : curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_HOST, &h, 0);
	if (uc != CURLUE_OK)
		snprintf(err, errlen, "KQE_JWKS_URL: not a usable URL (%s)", curl_url_strerror(uc));
	else if (strcasecmp(scheme, "https") != 0)
		snprintf(err, errlen, "KQE_JWKS_URL: not an https:// URL");
	else if (snprintf(host, size, "%s", h) >= (int)size)
		snprintf(err, errlen, "KQE_JWKS_URL: host name too long");
	else
		rc = 0;
	curl_free(scheme);
	curl_free(h);
	curl_url_cleanup(u);
	return rc;
}

static void
source_init_sync(struct jwks_source *src)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&src->mu, NULL);
	pthread_cond_init(&src->wake, &attr);
	pthread_cond_init(&src->fetched, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&src->abort_fetch, false);
}

struct jwks_source *
jwks_source_new(const struct config *cfg, char *err, size_t errlen)
{
	char why[300];
	int have_file = strcmp(cfg->jwks_file, "-") != 0,
	    have_url = strcmp(cfg->jwks_url, "-") != 0;

	err[0] = '\0';
	if (!have_file && !have_url)
		return NULL;
	if (have_file && have_url) { /* config_load refuses this already */
		snprintf(err, errlen, "KQE_JWKS_FILE and KQE_JWKS_URL: set only one of them");
		return NULL;
	}
	if (strcmp(cfg->jwt_issuer, "-") == 0 || strcmp(cfg->jwt_audience, "-") == 0) {
		snprintf(err, errlen, "KQE_JWT_ISSUER and KQE_JWT_AUDIENCE must be set with %s",
		    have_file ? "KQE_JWKS_FILE" : "KQE_JWKS_URL");
		return NULL;
	}

	struct jwks_source *src = xcalloc(1, sizeof(*src));
	source_init_sync(src);
	if (have_file) {
		src->keys = jwks_load(cfg->jwks_file, why, sizeof(why));
		if (src->keys == NULL) {
			snprintf(err, errlen, "KQE_JWKS_FILE: %s", why);
			goto fail;
		}
		return src;
	}

	src->remote = true;
	if (url_host(cfg->jwks_url, src->host, sizeof(src->host), err, errlen) != 0)
		goto fail;
	if (strcmp(cfg->jwks_ca_file, "-") != 0) {
		if (access(cfg->jwks_ca_file, R_OK) != 0) {
			snprintf(err, errlen, "KQE_JWKS_CA_FILE: cannot read \"%s\": %s",
			    cfg->jwks_ca_file, strerror(errno));
			goto fail;
		}
		src->ca_file = xstrdup(cfg->jwks_ca_file);
	}
	src->url = xstrdup(cfg->jwks_url);
	src->next_fetch = mono_now(); /* at once */
	/*
	 * The thread blocks every signal: main() starts it before it blocks
	 * SIGTERM/SIGINT for sigwait(), and such a signal must never land here.
	 */
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	int rc = pthread_create(&src->thread, NULL, fetch_thread, src);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc != 0) {
		snprintf(
		    err, errlen, "KQE_JWKS_URL: cannot start the fetch thread: %s", strerror(rc));
		goto fail;
	}
	src->thread_started = true;
	return src;
fail:
	jwks_source_free(src);
	return NULL;
}

static struct jwks *
acquire(struct jwks_source *src)
{
	pthread_mutex_lock(&src->mu);
	struct jwks *ks = src->keys != NULL ? jwks_ref(src->keys) : NULL;
	pthread_mutex_unlock(&src->mu);
	return ks;
}

/*
 * Asks the fetch thread for a refresh and waits for it, at most
 * JWKS_KID_WAIT_MS. Once per JWKS_KID_COOLDOWN_S for the whole process: in
 * between it returns false at once, as it does when the wait runs out.
 */
static bool
refresh_for_kid(struct jwks_source *src)
{
	struct timespec now = mono_now();
	bool done = false;

	pthread_mutex_lock(&src->mu);
	if (src->stopping ||
	    (src->kid_refreshed && now.tv_sec - src->last_kid_refresh.tv_sec < JWKS_KID_COOLDOWN_S))
		goto out;
	src->kid_refreshed = true;
	src->last_kid_refresh = now;
	/* A fetch already under way serves as well as a new one. */
	unsigned long want = src->fetches_done + 1;
	if (!src->fetching) {
		src->refresh_asked = true;
		pthread_cond_signal(&src->wake);
	}
	struct timespec deadline = ts_add_ms(now, JWKS_KID_WAIT_MS);
	while (src->fetches_done < want && !src->stopping)
		if (pthread_cond_timedwait(&src->fetched, &src->mu, &deadline) == ETIMEDOUT)
			break;
	done = src->fetches_done >= want;
out:
	pthread_mutex_unlock(&src->mu);
	return done;
}

int
jwks_source_verify(struct jwks_source *src, const struct config *cfg, const char *token, time_t now,
    struct principal *p, const char **why)
{
	struct jwks *ks = acquire(src);
	int rc = jwt_verify(ks, cfg, token, now, p, why);
	bool had_keys = ks != NULL;
	jwks_free(ks);
	if (rc == JWT_UNKNOWN_KID && src->remote && refresh_for_kid(src)) {
		ks = acquire(src);
		rc = jwt_verify(ks, cfg, token, now, p, why);
		had_keys = ks != NULL;
		jwks_free(ks);
	}
	if (rc == JWT_UNKNOWN_KID && !had_keys)
		*why = "no keys from the identity provider yet";
	return rc == 0 ? 0 : -1;
}

void
jwks_source_free(struct jwks_source *src)
{
	if (src == NULL)
		return;
	if (src->thread_started) {
		pthread_mutex_lock(&src->mu);
		src->stopping = true;
		atomic_store(&src->abort_fetch, true);
		pthread_cond_broadcast(&src->wake);
		pthread_cond_broadcast(&src->fetched);
		pthread_mutex_unlock(&src->mu);
		pthread_join(src->thread, NULL);
	}
	jwks_free(src->keys);
	free(src->url);
	free(src->ca_file);
	pthread_cond_destroy(&src->wake);
	pthread_cond_destroy(&src->fetched);
	pthread_mutex_destroy(&src->mu);
	free(src);
}
