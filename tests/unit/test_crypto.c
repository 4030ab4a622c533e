/*
 * crypto: pseudonyms against independently computed HMAC-SHA256 values, key
 * and key ring validation (never echoing key text), and AES-256-GCM
 * envelopes: round trips, rotation, and rejection of every change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kqe/crypto.h"

/*
 * Test keys, standard base64. Computed with
 *   python3 -c 'import hashlib,base64;
 * print(base64.b64encode(hashlib.sha256(b"<seed>").digest()).decode())' PSEUDO_KEY: seed "kqe test
 * pseudonym key" (hex c79e44be…0cfb9c44); KEY_OLD/NEW/THIRD: seeds "kqe test data key old" / "…
 * new" / "… third".
 */
#define PSEUDO_KEY "x55EvtK7+hckXmRcL4hpLD7a6T/9z8mEWL1poQz7nEQ="
#define PSEUDO_KEY_UNPADDED "x55EvtK7+hckXmRcL4hpLD7a6T/9z8mEWL1poQz7nEQ"
/* 48 bytes: base64(hashlib.sha512(b"kqe test pseudonym key 48").digest()[:48]) */
#define PSEUDO_KEY48 "ukBY4NI9WZXk0DmdyVVGoR7JMCCjmsoS72gHedV6rEtfcwyOUJDBxfM1dahM00vp"
#define KEY_OLD "YUP5YTulqRGFVgJ1F2sAcdQU0+Eu7SvBIKj5VkR6BgA="
#define KEY_NEW "oTB73+34Yt4oClcezMdf8fF3ovV4bbcvzwXF8BrY1Lc="
#define KEY_THIRD "BbAgD1bPhEgSJF29vaEsC1gEDwh4aDAeOcPEuxcgWmQ="
/* 31 bytes: base64(sha256(b"k31").digest()[:31]); 33 bytes: sha256(b"k33") + b"\x01". */
#define KEY_31 "K9qooZcsDEMdDcaHrfFmJGEazDQlubfsds7wMuKXsA=="
#define KEY_33 "/Kg4z+FzjkiMpjJXgmROTzqCN189GR1XlwNx3sE6ejIB"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Fails if err quotes any 6 consecutive characters of secret. */
static void
assert_no_key_text(const char *err, const char *secret)
{
	size_t n = strlen(secret);
	for (size_t i = 0; i + 6 <= n; i++) {
		char window[7];
		memcpy(window, secret + i, 6);
		window[6] = '\0';
		if (strstr(err, window) != NULL)
			fail_msg("error message \"%s\" quotes key text \"%s\"", err, window);
	}
}

/* ---- pseudonyms ---- */

static void
test_pseudonym_known_vectors(void **state)
{
	(void)state;
	/*
	 * Expected: python3 -c 'import hmac,hashlib,base64;
	 *   k=base64.b64decode(KEY); print(hmac.new(k, office.encode()+b"\x1f"+ref.encode(),
	 *   hashlib.sha256).hexdigest())'
	 * and the office-1 vector cross-checked with
	 *   printf 'office-1\x1f4711' | openssl dgst -sha256 -mac HMAC -macopt hexkey:c79e44be…
	 */
	static const struct {
		const char *key, *office, *ref, *want;
	} cases[] = {
		{ PSEUDO_KEY, "jugendamt-musterstadt", "Az. 12/2024-\xc3\x84" /* Ä, UTF-8 */,
		    "18860309b079322be128d08268be7e9709378d3dfdf0d179d730b9e14f0773ea" },
		{ PSEUDO_KEY, "ab", "c",
		    "6417248793dd9c1b5375b93a29ca315acb327c4f3762aa0f50be82a3bd7ea93a" },
		{ PSEUDO_KEY, "a", "bc",
		    "f8c99437138df981c6602c20a65c0bf74686c4b35f6bd4d82fb4fcdae292c315" },
		{ PSEUDO_KEY, "office-1", "4711",
		    "6df961e42450f8fe97f6eb1fb74a25fb1c70bdaacdec20db35cce78cae105c99" },
		{ PSEUDO_KEY, "office-2", "4711",
		    "f5ae0f4dc2ab5d86b057c959185754a3261ba0cf6812f1be9191f787fe007218" },
		{ PSEUDO_KEY, "", "",
		    "60da0532691819afe4a4ce715742df040222f2b4a805e33a675180e288b20567" },
		/* padding is optional and surrounding whitespace ignored: same key */
		{ PSEUDO_KEY_UNPADDED, "office-1", "4711",
		    "6df961e42450f8fe97f6eb1fb74a25fb1c70bdaacdec20db35cce78cae105c99" },
		{ "  " PSEUDO_KEY "\n", "office-1", "4711",
		    "6df961e42450f8fe97f6eb1fb74a25fb1c70bdaacdec20db35cce78cae105c99" },
		/* keys longer than 32 bytes are fine */
		{ PSEUDO_KEY48, "office-1", "4711",
		    "a6357d28d754488ef7ac672c7f81bf9ab3b19ba00e97c56d1ed837db835dd532" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		struct pseudonymizer *p = pseudonymizer_new(cases[i].key, err, sizeof(err));
		if (p == NULL)
			fail_msg("case %zu: key rejected: %s", i, err);
		char out[PSEUDONYM_LEN + 1];
		memset(out, 'X', sizeof(out));
		pseudonym(p, cases[i].office, cases[i].ref, out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: got %s, want %s", i, out, cases[i].want);
		/* deterministic: the same input gives the same pseudonym again */
		char again[PSEUDONYM_LEN + 1];
		pseudonym(p, cases[i].office, cases[i].ref, again);
		assert_string_equal(again, out);
		pseudonymizer_free(p);
	}
}

static void
test_pseudonym_separates_fields(void **state)
{
	(void)state;
	char err[256];
	struct pseudonymizer *p = pseudonymizer_new(PSEUDO_KEY, err, sizeof(err));
	assert_non_null(p);
	char a[PSEUDONYM_LEN + 1], b[PSEUDONYM_LEN + 1];
	/* without the separator both would be HMAC("abc") */
	pseudonym(p, "ab", "c", a);
	pseudonym(p, "a", "bc", b);
	assert_string_not_equal(a, b);
	/* the same file number in another office is another pseudonym */
	pseudonym(p, "office-1", "4711", a);
	pseudonym(p, "office-2", "4711", b);
	assert_string_not_equal(a, b);
	/* lowercase hex, 64 digits */
	assert_int_equal(strlen(a), PSEUDONYM_LEN);
	assert_int_equal(strspn(a, "0123456789abcdef"), PSEUDONYM_LEN);
	pseudonymizer_free(p);

	/* another key, other pseudonyms */
	p = pseudonymizer_new(PSEUDO_KEY48, err, sizeof(err));
	assert_non_null(p);
	pseudonym(p, "ab", "c", b);
	assert_string_not_equal(
	    b, "6417248793dd9c1b5375b93a29ca315acb327c4f3762aa0f50be82a3bd7ea93a");
	pseudonymizer_free(p);
	pseudonymizer_free(NULL);
}

static void
test_pseudonym_key_rejected(void **state)
{
	(void)state;
	static const char *bad[] = {
		"", /* empty */
		" \t\n", /* only whitespace */
		KEY_31, /* 31 bytes: too short */
		"c2hvcnQ=", /* "short" */
		"x55EvtK7%hckXmRcL4hpLD7a6T/9z8mEWL1poQz7nEQ=", /* bad character */
		"x55EvtK7-hckXmRcL4hpLD7a6T_9z8mEWL1poQz7nEQ=", /* base64url, not standard */
		PSEUDO_KEY "=", /* too much padding */
		"x55EvtK7+hckXmRcL4hpLD7a6T/9z8mEWL1poQz7nEQ==", /* padding for the wrong length */
		"x55EvtK7+hckXmRcL4hpLD7a6T/9z8mEWL1poQz7nEQ=x55E", /* data after padding */
		"x55EvtK7+hckXmRcL4hp LD7a6T/9z8mEWL1poQz7nEQ=", /* inner space */
		"x55EvtK7+hckXmRcL4hpLD7a6T/9z8mEWL1poQz7nER=", /* non-canonical trailing bits */
		"x55EvtK7+hckXmRcL4hpLD7a6T/9z8mEWL1poQz7nEQx5", /* impossible length (45 % 4 == 1)
		                                                  */
		"=",
		"==",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		struct pseudonymizer *p = pseudonymizer_new(bad[i], err, sizeof(err));
		if (p != NULL)
			fail_msg("case %zu: accepted bad key \"%s\"", i, bad[i]);
		assert_true(err[0] != '\0');
		assert_no_key_text(err, bad[i]);
	}
	char err[256] = "";
	assert_null(pseudonymizer_new(NULL, err, sizeof(err)));
	assert_true(err[0] != '\0');
	/* err may be omitted */
	assert_null(pseudonymizer_new("", NULL, 0));
}

/* ---- key ring parsing ---- */

static void
test_keyring_good_specs(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *current;
	} good[] = {
		{ "old:" KEY_OLD, "old" },
		{ "old:" KEY_OLD ",new:" KEY_NEW ",third:" KEY_THIRD, "third" },
		{ "  old:" KEY_OLD " ,\tnew:" KEY_NEW "\n", "new" },
		{ "new:" KEY_NEW ",old:" KEY_OLD, "old" }, /* order, not name, decides */
		{ "old:YUP5YTulqRGFVgJ1F2sAcdQU0+Eu7SvBIKj5VkR6BgA", "old" }, /* unpadded */
		{ "abcdefghij_-0123:" KEY_OLD, "abcdefghij_-0123" }, /* 16 characters */
		{ "K-1_x:" KEY_OLD, "K-1_x" },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char err[256] = "";
		struct keyring *r = keyring_new(good[i].spec, err, sizeof(err));
		if (r == NULL)
			fail_msg("case %zu: rejected: %s", i, err);
		assert_string_equal(keyring_current_id(r), good[i].current);
		char *env = keyring_encrypt(r, "x", 1, NULL);
		assert_non_null(env);
		char want[64];
		snprintf(want, sizeof(want), "v1.%s.", good[i].current);
		assert_memory_equal(env, want, strlen(want));
		size_t len = 0;
		char *back = keyring_decrypt(r, env, NULL, &len);
		assert_non_null(back);
		assert_int_equal(len, 1);
		assert_string_equal(back, "x");
		free(back);
		free(env);
		keyring_free(r);
	}
	keyring_free(NULL);
}

static void
test_keyring_bad_specs(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		const char *why;
	} bad[] = {
		{ "", "empty" },
		{ " \t ", "only whitespace" },
		{ "old:" KEY_OLD ",old:" KEY_NEW, "duplicate id" },
		{ "old:" KEY_OLD ",new:" KEY_NEW ",old:" KEY_THIRD, "duplicate id, not adjacent" },
		{ "old:" KEY_31, "31-byte key" },
		{ "old:" KEY_33, "33-byte key" },
		{ "o.d:" KEY_OLD, "'.' in id" },
		{ "o d:" KEY_OLD, "space in id" },
		{ "\xc3\xa4:" KEY_OLD, "non-ASCII id" },
		{ "abcdefghij_-01234:" KEY_OLD, "17-character id" },
		{ ":" KEY_OLD, "empty id" },
		{ KEY_OLD, "missing colon" },
		{ "old:" KEY_OLD "," KEY_NEW, "second entry missing colon" },
		{ "old:", "empty key" },
		{ "old:" KEY_OLD ",", "trailing comma" },
		{ ",old:" KEY_OLD, "leading comma" },
		{ "old:" KEY_OLD ",,new:" KEY_NEW, "empty entry" },
		{ "old:YUP5YTulqRGFVgJ1F2sAcdQU0-Eu7SvBIKj5VkR6BgA=", "base64url character" },
		{ "old:YUP5YTulqRGFVgJ1F2sA cdQU0+Eu7SvBIKj5VkR6BgA=", "inner space" },
		{ "old:" KEY_OLD "=", "extra padding" },
		{ "old:YUP5YTulqRGFVgJ1F2sAcdQU0+Eu7SvBIKj5VkR6BgB=",
		    "non-canonical trailing bits" },
		{ "old:" KEY_OLD ":" KEY_NEW, "two keys in one entry" },
		{ "old=" KEY_OLD, "wrong separator" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		struct keyring *r = keyring_new(bad[i].spec, err, sizeof(err));
		if (r != NULL)
			fail_msg("accepted bad spec (%s)", bad[i].why);
		if (err[0] == '\0')
			fail_msg("no message for bad spec (%s)", bad[i].why);
		/* neither the keys it was built from nor anything else of the spec */
		assert_no_key_text(err, KEY_OLD);
		assert_no_key_text(err, KEY_NEW);
		assert_no_key_text(err, KEY_THIRD);
		assert_no_key_text(err, KEY_31);
		assert_no_key_text(err, KEY_33);
	}
	char err[256] = "";
	assert_null(keyring_new(NULL, err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(keyring_new("old:" KEY_31, NULL, 0));
}

/* ---- envelopes ---- */

struct rings {
	struct keyring *old_only; /* before rotation */
	struct keyring *rotating; /* old still listed, new encrypts */
	struct keyring *new_only; /* after rotation */
};

static int
rings_setup(void **state)
{
	struct rings *r = calloc(1, sizeof(*r));
	char err[256];
	r->old_only = keyring_new("old:" KEY_OLD, err, sizeof(err));
	r->rotating = keyring_new("old:" KEY_OLD ",new:" KEY_NEW, err, sizeof(err));
	r->new_only = keyring_new("new:" KEY_NEW, err, sizeof(err));
	if (r->old_only == NULL || r->rotating == NULL || r->new_only == NULL)
		return -1;
	*state = r;
	return 0;
}

static int
rings_teardown(void **state)
{
	struct rings *r = *state;
	keyring_free(r->old_only);
	keyring_free(r->rotating);
	keyring_free(r->new_only);
	free(r);
	return 0;
}

/* Fails the test unless env decrypts (with aad) to exactly wantlen bytes of want. */
static void
assert_decrypts(
    const struct keyring *r, const char *env, const char *aad, const char *want, size_t wantlen)
{
	size_t len = 12345;
	char *back = keyring_decrypt(r, env, aad, &len);
	if (back == NULL)
		fail_msg("could not decrypt %s", env);
	assert_int_equal(len, wantlen);
	assert_memory_equal(back, want, wantlen);
	assert_int_equal(back[len], '\0');
	free(back);
}

static void
test_known_envelope(void **state)
{
	struct rings *r = *state;
	/*
	 * Made independently with Python's cryptography package:
	 *   AESGCM(base64.b64decode(KEY_OLD)).encrypt(bytes(range(12)),
	 *       "Kind äußert Angst vor dem Vater.".encode(), b"v1.old." + b"case/123/notes")
	 * then "v1.old." + b64url(nonce) + "." + b64url(ciphertext+tag), padding stripped.
	 */
	static const char env[] =
	    "v1.old.AAECAwQFBgcICQoL."
	    "HfEC90X1y4Qrqtwt8yEefbaJJREp0-b4dm6VQnNaj0g_20TsFmg49DPLb1fi_Cr3JLQ";
	static const char want[] = "Kind \xc3\xa4u\xc3\x9f"
	                           "ert Angst vor dem Vater.";
	assert_decrypts(r->old_only, env, "case/123/notes", want, strlen(want));
	assert_decrypts(r->rotating, env, "case/123/notes", want, strlen(want));
	assert_null(keyring_decrypt(r->new_only, env, "case/123/notes", NULL));
	assert_null(keyring_decrypt(r->old_only, env, "case/123/other", NULL));
	assert_null(keyring_decrypt(r->old_only, env, NULL, NULL));
}

static void
test_envelope_shape(void **state)
{
	struct rings *r = *state;
	for (size_t len = 0; len < 40; len++) {
		char pt[40];
		memset(pt, 'a', sizeof(pt));
		char *env = keyring_encrypt(r->rotating, pt, len, "rec/f");
		assert_non_null(env);
		assert_memory_equal(env, "v1.new.", 7);
		const char *nonce = env + 7;
		assert_int_equal(strspn(nonce, b64url_alphabet), 16);
		assert_int_equal(nonce[16], '.');
		const char *ct = nonce + 17;
		size_t bytes = len + 16;
		size_t want = bytes / 3 * 4 + (bytes % 3 ? bytes % 3 + 1 : 0);
		assert_int_equal(strlen(ct), want);
		assert_int_equal(strspn(ct, b64url_alphabet), want);
		free(env);
	}
	/* a fresh nonce each time: the same plaintext never gives the same envelope */
	char *a = keyring_encrypt(r->rotating, "same", 4, "rec/f");
	char *b = keyring_encrypt(r->rotating, "same", 4, "rec/f");
	assert_string_not_equal(a, b);
	assert_memory_not_equal(a + 7, b + 7, 16);
	free(a);
	free(b);
}

static void
test_rotation(void **state)
{
	struct rings *r = *state;
	static const char text[] = "Mutter berichtet von Streit; Kind (7) wirkt verängstigt.";
	size_t n = strlen(text);

	assert_string_equal(keyring_current_id(r->old_only), "old");
	assert_string_equal(keyring_current_id(r->rotating), "new");

	/* made before rotation */
	char *before = keyring_encrypt(r->old_only, text, n, "rec-1/notes");
	assert_memory_equal(before, "v1.old.", 7);
	/* made during rotation, with the newest key */
	char *during = keyring_encrypt(r->rotating, text, n, "rec-1/notes");
	assert_memory_equal(during, "v1.new.", 7);

	assert_decrypts(r->old_only, before, "rec-1/notes", text, n);
	assert_decrypts(r->rotating, before, "rec-1/notes", text, n); /* old key still listed */
	assert_null(keyring_decrypt(r->new_only, before, "rec-1/notes", NULL)); /* old key gone */

	assert_decrypts(r->rotating, during, "rec-1/notes", text, n);
	assert_decrypts(r->new_only, during, "rec-1/notes", text, n);
	assert_null(keyring_decrypt(r->old_only, during, "rec-1/notes", NULL)); /* unknown id */

	/* renaming the key id to one the ring knows does not help */
	char *renamed = strdup(during);
	memcpy(renamed + 3, "old", 3);
	assert_null(keyring_decrypt(r->rotating, renamed, "rec-1/notes", NULL));
	free(renamed);

	/* the aad must match exactly; NULL and "" are the same */
	assert_null(keyring_decrypt(r->rotating, during, "rec-2/notes", NULL));
	assert_null(keyring_decrypt(r->rotating, during, "rec-1/notes ", NULL));
	assert_null(keyring_decrypt(r->rotating, during, "", NULL));
	assert_null(keyring_decrypt(r->rotating, during, NULL, NULL));
	char *noaad = keyring_encrypt(r->rotating, text, n, NULL);
	assert_decrypts(r->rotating, noaad, "", text, n);
	assert_decrypts(r->rotating, noaad, NULL, text, n);
	assert_null(keyring_decrypt(r->rotating, noaad, "rec-1/notes", NULL));

	free(before);
	free(during);
	free(noaad);
}

/*
 * Every single-character change anywhere in an envelope — prefix, nonce,
 * ciphertext or tag, including the unused low bits of the last base64url
 * character — must make decryption fail. Plaintext lengths 0, 1 and 2
 * (mod 3) cover both kinds of partial final base64 group.
 */
static void
test_tamper_every_position(void **state)
{
	struct rings *r = *state;
	static const char repl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	    ".=+/ \x01\x7f\xc3";
	static const char *texts[] = { "", "Ä", "ab", "abc", "Hausbesuch am 3.5.: Kind allein." };
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		size_t n = strlen(texts[t]);
		char *env = keyring_encrypt(r->rotating, texts[t], n, "rec-9/summary");
		assert_decrypts(r->rotating, env, "rec-9/summary", texts[t], n);
		size_t envlen = strlen(env);
		char *copy = strdup(env);
		for (size_t i = 0; i < envlen; i++) {
			for (size_t k = 0; k < sizeof(repl) - 1; k++) {
				if (repl[k] == env[i])
					continue;
				copy[i] = repl[k];
				char *back =
				    keyring_decrypt(r->rotating, copy, "rec-9/summary", NULL);
				if (back != NULL)
					fail_msg(
					    "text %zu: changing position %zu ('%c' -> 0x%02x) of %s "
					    "still decrypts",
					    t, i, env[i], (unsigned char)repl[k], env);
			}
			copy[i] = env[i];
		}
		free(copy);
		free(env);
	}
}

static void
test_truncated_and_extended(void **state)
{
	struct rings *r = *state;
	char *env = keyring_encrypt(r->rotating, "Notiz", 5, "a");
	size_t envlen = strlen(env);
	for (size_t cut = 0; cut < envlen; cut++) {
		char *part = strndup(env, cut);
		if (keyring_decrypt(r->rotating, part, "a", NULL) != NULL)
			fail_msg("truncated to %zu characters still decrypts", cut);
		free(part);
	}
	static const char *tails[] = { "A", "AA", "AAAA", "=", ".", "\n", " ", ".A" };
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		char *longer = malloc(envlen + strlen(tails[i]) + 1);
		strcpy(longer, env);
		strcat(longer, tails[i]);
		if (keyring_decrypt(r->rotating, longer, "a", NULL) != NULL)
			fail_msg("envelope + \"%s\" still decrypts", tails[i]);
		free(longer);
	}
	char *spaced = malloc(envlen + 2);
	spaced[0] = ' ';
	strcpy(spaced + 1, env);
	assert_null(keyring_decrypt(r->rotating, spaced, "a", NULL));
	free(spaced);
	free(env);
}

static void
test_garbage(void **state)
{
	struct rings *r = *state;
	static const char *garbage[] = {
		"",
		"v1",
		"v1.",
		"v1..",
		"v1...",
		"v1.new",
		"v1.new.",
		"v1.new..",
		"v1.new.AAECAwQFBgcICQoL",
		"v1.new.AAECAwQFBgcICQoL.",
		"v1.new.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA", /* 16 zero bytes: tag only */
		"v1.new.AAECAwQFBgcICQo.AAAAAAAAAAAAAAAAAAAAAA", /* 15-char nonce */
		"v1.new.AAECAwQFBgcICQoLAA.AAAAAAAAAAAAAAAAAAAAAA", /* 18-char nonce */
		"v1.new.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAA", /* 15 bytes: shorter than a tag */
		"v1.new.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
		"v2.new.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA",
		"V1.new.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA",
		"v1.abcdefghij_-01234.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA", /* 17-char id */
		"v1..AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA",
		"v1.n\xc3\xa4w.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA",
		"v1.new.AAECAwQFBgcI+QoL.AAAAAAAAAAAAAAAAAAAAAA",
		"v1.new.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAAA==",
		"v1.new.AAECAwQFBgcICQoL.AAAAAAAAAAAAAAAAAAAAA", /* 21 characters: impossible length
		                                                  */
		"..........................................",
		"\xff\xfe\xfd",
	};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		size_t len = 777;
		char *back = keyring_decrypt(r->rotating, garbage[i], NULL, &len);
		if (back != NULL)
			fail_msg("garbage %zu decrypted", i);
		assert_int_equal(len, 777); /* untouched on failure */
	}
	assert_null(keyring_decrypt(r->rotating, NULL, NULL, NULL));

	/* long runs of valid characters: bounded work, no crash */
	size_t big = 200000;
	char *junk = malloc(big + 1);
	memcpy(junk, "v1.new.AAECAwQFBgcICQoL.", 24);
	memset(junk + 24, 'Q', big - 24);
	junk[big] = '\0';
	assert_null(keyring_decrypt(r->rotating, junk, NULL, NULL));
	free(junk);
}

static void
test_empty_and_binary_plaintext(void **state)
{
	struct rings *r = *state;
	char *env = keyring_encrypt(r->rotating, "", 0, "rec/f");
	assert_decrypts(r->rotating, env, "rec/f", "", 0);
	free(env);
	env = keyring_encrypt(r->rotating, NULL, 0, NULL);
	assert_decrypts(r->rotating, env, NULL, "", 0);
	free(env);
	/* embedded NULs survive; *len, not strlen, tells the length */
	static const char bin[] = { 'a', '\0', 'b', '\0', '\xff' };
	env = keyring_encrypt(r->rotating, bin, sizeof(bin), "rec/f");
	assert_decrypts(r->rotating, env, "rec/f", bin, sizeof(bin));
	free(env);
	/* len may be NULL */
	env = keyring_encrypt(r->rotating, "x", 1, NULL);
	char *back = keyring_decrypt(r->rotating, env, NULL, NULL);
	assert_string_equal(back, "x");
	free(back);
	free(env);
	/* over the limit: refused, not truncated (nothing is read from the pointer) */
	assert_null(keyring_encrypt(r->rotating, "x", KEYRING_MAX_PLAINTEXT + 1, NULL));
}

static void
test_large_plaintext(void **state)
{
	struct rings *r = *state;
	size_t n = 100 * 1024;
	char *pt = malloc(n);
	for (size_t i = 0; i < n; i++)
		pt[i] = (char)(i * 131 + (i >> 8)); /* every byte value, NULs included */
	char *env = keyring_encrypt(r->rotating, pt, n, "rec-big/notes");
	assert_non_null(env);
	assert_decrypts(r->rotating, env, "rec-big/notes", pt, n);
	assert_decrypts(r->new_only, env, "rec-big/notes", pt, n);
	/* one flipped character in the middle of the ciphertext */
	size_t mid = strlen(env) / 2;
	env[mid] = env[mid] == 'A' ? 'B' : 'A';
	assert_null(keyring_decrypt(r->rotating, env, "rec-big/notes", NULL));
	free(env);
	free(pt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pseudonym_known_vectors),
		cmocka_unit_test(test_pseudonym_separates_fields),
		cmocka_unit_test(test_pseudonym_key_rejected),
		cmocka_unit_test(test_keyring_good_specs),
		cmocka_unit_test(test_keyring_bad_specs),
		cmocka_unit_test_setup_teardown(test_known_envelope, rings_setup, rings_teardown),
		cmocka_unit_test_setup_teardown(test_envelope_shape, rings_setup, rings_teardown),
		cmocka_unit_test_setup_teardown(test_rotation, rings_setup, rings_teardown),
		cmocka_unit_test_setup_teardown(
		    test_tamper_every_position, rings_setup, rings_teardown),
		cmocka_unit_test_setup_teardown(
		    test_truncated_and_extended, rings_setup, rings_teardown),
		cmocka_unit_test_setup_teardown(test_garbage, rings_setup, rings_teardown),
		cmocka_unit_test_setup_teardown(
		    test_empty_and_binary_plaintext, rings_setup, rings_teardown),
		cmocka_unit_test_setup_teardown(test_large_plaintext, rings_setup, rings_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
