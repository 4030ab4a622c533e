#include "kqe/base64url.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

char *
base64url_encode(const unsigned char *in, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *p = out; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	return out;
}

unsigned char *
base64url_decode(const char *in, size_t len, size_t max, size_t *outlen)
{
	if (len % 4 == 1 || len / 4 * 3 + 3 > max + 3)
		return NULL;
	char *buf = xmalloc(len + 4);
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		             (c >= '0' && c <= '9'))) {
			free(buf);
			return NULL;
		}
		buf[i] = c;
	}
	/* Canonical only: the unused low bits of the last character must be zero. */
	if (len % 4 != 0) {
		static const char alphabet[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t v = (size_t)(strchr(alphabet, buf[len - 1]) - alphabet);
		if ((len % 4 == 2 && (v & 0x0f) != 0) || (len % 4 == 3 && (v & 0x03) != 0)) {
			free(buf);
			return NULL;
		}
	}
	size_t pad = (4 - len % 4) % 4;
	memset(buf + len, '=', pad);
	unsigned char *out = xmalloc(len / 4 * 3 + 4);
	int n = len == 0 ? 0 : EVP_DecodeBlock(out, (unsigned char *)buf, (int)(len + pad));
	free(buf);
	if (n < 0 || (size_t)n < pad || (size_t)n - pad > max) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)n - pad; /* EVP_DecodeBlock counts padding as zero bytes */
	out[*outlen] = '\0';
	return out;
}
