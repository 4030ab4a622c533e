/*
 * util — small helpers every module uses: allocation that never returns NULL,
 * monotonic time, hex encoding and cryptographically random identifiers.
 */
#ifndef KQE_UTIL_H
#define KQE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define KQE_MUSTCHECK __attribute__((warn_unused_result))
#define KQE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation failure logs and aborts: the process cannot do anything useful without memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a new string (caller frees) formatted like printf. */
char *xasprintf(const char *fmt, ...) KQE_PRINTF(1, 2);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/* Writes 2*n lowercase hex digits plus NUL into out. */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* Fills out with n random bytes from OpenSSL's CSPRNG; aborts if it fails. */
void random_bytes(unsigned char *out, size_t n);

/* Writes a random RFC 4122 version-4 UUID (36 chars + NUL) into out. */
void uuid_v4(char out[37]);

/* True if s is a canonical lowercase or uppercase UUID text. */
int uuid_valid(const char *s);

#endif
