/*
 * memcheck_probe — a process that does one thing wrong on purpose, so that
 * tests/integration/test_memcheck.py can prove the valgrind gate of the
 * harness (harness.py Process) fails on it. Does its one thing, prints
 * "ready", then waits for SIGTERM and exits 0 like the services do.
 *   clean   nothing wrong
 *   leak    loses a 64-byte block (a definite leak at exit)
 *   uninit  branches on a byte it never wrote (an error as it happens)
 * Built in every build, run only under ./scripts/test --valgrind.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* volatile: the compiler must neither elide the store and the loss nor see the unwritten byte */
static unsigned char *volatile kept;

__attribute__((noinline)) static void
lose_a_block(void)
{
	kept = malloc(64);
	if (kept != NULL)
		memset(kept, 1, 64);
	kept = NULL;
}

__attribute__((noinline)) static void
read_unwritten(void)
{
	kept = malloc(1);
	unsigned char *p = kept;
	if (p == NULL)
		return;
	if (*p & 1) /* the error: *p was never written; a call, so a real branch */
		puts("odd");
	free(p);
}

int
main(int argc, char **argv)
{
	sigset_t stop;
	int sig;

	if (argc != 2) {
		fprintf(stderr, "usage: memcheck_probe clean|leak|uninit\n");
		return 2;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	if (strcmp(argv[1], "leak") == 0)
		lose_a_block();
	else if (strcmp(argv[1], "uninit") == 0)
		read_unwritten();
	else if (strcmp(argv[1], "clean") != 0)
		return 2;
	printf("ready\n");
	fflush(stdout);
	sigwait(&stop, &sig);
	return 0;
}
