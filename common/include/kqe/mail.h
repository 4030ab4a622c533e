/*
 * mail — one message over SMTP (docs/programmes.md, Mail). mail_message()
 * writes the RFC 5322 text: a UTF-8 subject as an RFC 2047 encoded word, the
 * UTF-8 body in base64, CRLF line ends — plain ASCII on the wire, which every
 * relay takes. mail_send() hands it to an SMTP server with libcurl (opportunistic
 * STARTTLS on smtp://, TLS on smtps://), bounded by a timeout. Both are
 * thread-safe; mail_send() uses its own curl handle per call.
 */
#ifndef KQE_MAIL_H
#define KQE_MAIL_H

#include <stddef.h>
#include <time.h>

#include "kqe/util.h"

/*
 * The message (malloc'd): From, To, Subject, Date (at), Message-ID (id@domain of
 * from), MIME headers, then body. NULL if an address holds CR or LF (header
 * injection) or is empty.
 */
char *mail_message(const char *from, const char *to, const char *subject, const char *body,
    const char *id, time_t at);

/*
 * Sends message from `from` to `to` through the SMTP server at url
 * ("smtp://host:port" or "smtps://…"), waiting at most timeout_ms. 0 on
 * success; -1 with a one-line reason (no address in it) in err.
 */
int mail_send(const char *url, const char *from, const char *to, const char *message,
    long timeout_ms, char *err, size_t errsize) KQE_MUSTCHECK;

#endif
