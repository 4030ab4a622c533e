/*
 * kqe health [URL] — whether a kqe-api answers: GET URL (default
 * http://127.0.0.1:8080/healthz), exit 0 on 200, else 1. The image's
 * HEALTHCHECK and compose run it, so the runtime image needs no curl or shell.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "commands.h"

static size_t
discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

int
cmd_health(int argc, char **argv, const struct config *cfg)
{
	(void)cfg;
	if (argc > 2 || (argc == 2 && strncmp(argv[1], "http", 4) != 0)) {
		fprintf(stderr, "usage: kqe health [URL]\n");
		return 2;
	}
	const char *url = argc == 2 ? argv[1] : "http://127.0.0.1:8080/healthz";
	CURL *c = curl_easy_init();
	if (c == NULL)
		return 1;
	long status = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (status != 200) {
		fprintf(stderr, "kqe health: %s: %s\n", url,
		    rc != CURLE_OK ? curl_easy_strerror(rc) : "not 200");
		return 1;
	}
	return 0;
}
