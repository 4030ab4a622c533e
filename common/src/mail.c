#include "kqe/mail.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

/* base64 of len bytes of data in lines of at most 76 characters, each ended by CRLF. */
static void
base64_lines(const unsigned char *data, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i += 57) {
		size_t n = len - i < 57 ? len - i : 57;
		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, data + i, (int)n);
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o] = '\0';
}

static bool
ascii_printable(const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			return false;
	return true;
}

static bool
header_safe(const char *s)
{
	return s != NULL && s[0] != '\0' && strpbrk(s, "\r\n") == NULL;
}

char *
mail_message(const char *from, const char *to, const char *subject, const char *body,
    const char *id, time_t at)
{
	if (!header_safe(from) || !header_safe(to) || !header_safe(id) || subject == NULL ||
	    strpbrk(subject, "\r\n") != NULL)
		return NULL;
	/* RFC 2047: one encoded word per 45 bytes of UTF-8 keeps each at most 75 characters; a
	 * word may not split a character, so the cut moves back to a character start. */
	size_t slen = strlen(subject);
	char *encoded = xcalloc(1, slen * 2 + 64 * (slen / 40 + 1) + 16);
	if (ascii_printable(subject)) {
		strcpy(encoded, subject);
	} else {
		size_t o = 0;
		for (size_t i = 0; i < slen;) {
			size_t n = slen - i < 45 ? slen - i : 45;
			while (i + n < slen && ((unsigned char)subject[i + n] & 0xc0) == 0x80)
				n--;
			char word[128];
			EVP_EncodeBlock(
			    (unsigned char *)word, (const unsigned char *)subject + i, (int)n);
			o += (size_t)sprintf(
			    encoded + o, "%s=?UTF-8?B?%s?=", o > 0 ? "\r\n " : "", word);
			i += n;
		}
	}
	size_t blen = strlen(body);
	char *lines = xcalloc(1, (blen + 2) / 3 * 4 + (blen / 57 + 2) * 2 + 1);
	base64_lines((const unsigned char *)body, blen, lines);
	char date[64];
	struct tm tm;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&at, &tm));
	const char *domain = strrchr(from, '@');
	char *message = xasprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
	                          "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
	                          "Content-Type: text/plain; charset=utf-8\r\n"
	                          "Content-Transfer-Encoding: base64\r\n\r\n%s",
	    from, to, encoded, date, id, domain != NULL ? domain + 1 : "kqe", lines);
	free(encoded);
	free(lines);
	return message;
}

struct upload {
	const char *data;
	size_t left;
};

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems < u->left ? size * nitems : u->left;
	memcpy(buf, u->data, n);
	u->data += n;
	u->left -= n;
	return n;
}

int
mail_send(const char *url, const char *from, const char *to, const char *message, long timeout_ms,
    char *err, size_t errsize)
{
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(err, errsize, "curl_easy_init failed");
		return -1;
	}
	char curl_err[CURL_ERROR_SIZE] = "";
	char *mail_from = xasprintf("<%s>", from), *rcpt_to = xasprintf("<%s>", to);
	struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_to);
	struct upload u = { message, strlen(message) };
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK)
		/* curl's message can quote the server's reply, which may repeat the address: keep
		 * the code, the SMTP status and curl's generic text only. */
		snprintf(
		    err, errsize, "curl %d (%s), smtp %ld", (int)rc, curl_easy_strerror(rc), code);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	free(mail_from);
	free(rcpt_to);
	return rc == CURLE_OK ? 0 : -1;
}
