/*
 * bare_evhttp — the ceiling for kqe-api's HTTP layer: the same threading
 * (one event_base + evhttp per thread on a SO_REUSEPORT port) answering every
 * request with a fixed small JSON body, no routing, no database, no logging.
 * Usage: bare_evhttp PORT THREADS
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

static void
reply_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, "{\"status\":\"ok\"}", 15);
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void *
run(void *arg)
{
	int port = *(int *)arg;
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct evconnlistener *l = evconnlistener_new_bind(base, NULL, NULL,
	    LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE, 1024,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL || evhttp_bind_listener(http, l) == NULL) {
		perror("listen");
		exit(1);
	}
	evhttp_set_gencb(http, reply_cb, NULL);
	event_base_dispatch(base);
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bare_evhttp PORT THREADS\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]);
	pthread_t t[64];
	for (int i = 0; i < n && i < 64; i++)
		pthread_create(&t[i], NULL, run, &port);
	for (int i = 0; i < n && i < 64; i++)
		pthread_join(t[i], NULL);
	return 0;
}
