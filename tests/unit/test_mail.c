/* mail_message: the text on the wire is ASCII, headers cannot be injected, UTF-8 survives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "kqe/mail.h"

static void
test_ascii_subject_and_base64_body(void **state)
{
	(void)state;
	char *m = mail_message("kqe@example.org", "anna@example.org", "Hello", "Guten Tag\n",
	    "id-1", (time_t)1767225600); /* 2026-01-01 00:00:00 UTC */
	assert_non_null(m);
	assert_non_null(strstr(m, "From: kqe@example.org\r\nTo: anna@example.org\r\n"
	                          "Subject: Hello\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
	                          "Message-ID: <id-1@example.org>\r\n"));
	assert_non_null(strstr(m, "Content-Transfer-Encoding: base64\r\n\r\nR3V0ZW4gVGFnCg==\r\n"));
	for (const unsigned char *c = (const unsigned char *)m; *c; c++)
		assert_true(*c < 0x80);
	free(m);
}

/* A UTF-8 subject becomes encoded words of at most 75 characters, never splitting a
 * character; decoded and joined they give the subject back. */
static void
test_utf8_subject_is_encoded_words(void **state)
{
	(void)state;
	const char *subject = "Anmeldung bestätigt: Qualitätswerkstatt für Fachkräfte aus "
	                      "Köln, Düsseldorf und Münster — Ü";
	char *m = mail_message("a@b.de", "c@d.de", subject, "x", "id", 0);
	assert_non_null(m);
	char *start = strstr(m, "Subject: ") + 9, *end = strstr(start, "\r\nDate:");
	char decoded[512] = "";
	for (char *w = start; w < end;) {
		char *open = strstr(w, "=?UTF-8?B?"), *close = strstr(open + 10, "?=");
		assert_true(close - open + 2 <= 75);
		char b64[128] = "";
		memcpy(b64, open + 10, (size_t)(close - open - 10));
		unsigned char raw[128];
		int n = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)strlen(b64));
		size_t pad = strlen(b64) > 0 && b64[strlen(b64) - 1] == '=' ? 1 : 0;
		pad += strlen(b64) > 1 && b64[strlen(b64) - 2] == '=' ? 1 : 0;
		/* each word holds whole characters: it does not start with a continuation byte */
		assert_true((raw[0] & 0xc0) != 0x80);
		strncat(decoded, (char *)raw, (size_t)n - pad);
		w = close + 2;
		if (w < end)
			assert_memory_equal(w, "\r\n ", 3);
	}
	assert_string_equal(decoded, subject);
	free(m);
}

static void
test_header_injection_is_refused(void **state)
{
	(void)state;
	assert_null(mail_message("a@b.de", "c@d.de\r\nBcc: x@y.z", "s", "b", "id", 0));
	assert_null(mail_message("a@b.de\n", "c@d.de", "s", "b", "id", 0));
	assert_null(mail_message("a@b.de", "c@d.de", "s\r\nBcc: x@y.z", "b", "id", 0));
	assert_null(mail_message("a@b.de", "", "s", "b", "id", 0));
	/* The body may hold anything: it is base64. */
	char *m = mail_message("a@b.de", "c@d.de", "s", "line\r\n.\r\nBcc: x@y.z\r\n", "id", 0);
	assert_non_null(m);
	assert_null(strstr(m, "Bcc"));
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_subject_and_base64_body),
		cmocka_unit_test(test_utf8_subject_is_encoded_words),
		cmocka_unit_test(test_header_injection_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
