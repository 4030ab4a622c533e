/*
 * fuzz_keys.h — the key pair fuzz_jwt signs with and builds its JWKS from.
 * Made for the fuzzer only (openssl genpkey: RSA 2048, EC P-256); no
 * deployment trusts them. tests/fuzz/make_corpus.py reads them from
 * here to sign the seed tokens in corpus/jwt/.
 */
#ifndef KQE_FUZZ_KEYS_H
#define KQE_FUZZ_KEYS_H

static const char fuzz_rsa_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC2G15B1qIsGJyc\n"
	"HDL3Ls9HERG8YwrgHGRQaWRSiv2SDhe0UBWOa6B2CENE5H6t8wmRduhEKwOG+h0X\n"
	"LtzeeF342kOn7pR4SW9RQBdUUN1JuJyv/JA+YBirICriliYeUnCSk06U/6hwiaYp\n"
	"BBmibI01gbsvWdtj0qBmznc+/NKgnuE+lhCDkXWY9X2l7W01JQeaoMr3MuL208wz\n"
	"VBWl/4nEzVZUVJ8UFgujZgIjK3Mcc529hXUixxghAtw+hTr+ffF64HF83mbBXqq9\n"
	"ydhq2b+kaxrgx+2ZYCLRMGRXitxVT0qwjQwksP6FNnL1V4kTOyu7pw8krmz7Zxoy\n"
	"4teQ1vUtAgMBAAECggEACelLNxxTHw3hEP8/gapXpLLX1MZNNFP6dh5UumHCZrC2\n"
	"qin4dy2baG31soOyWcEfCOUNKilvKGlneOukU/iYILziyGDygR0Tqzsb3STTjmyD\n"
	"6de+Rm7QTBjUzLITjzxS0F9zfCXxlg85btHaAh5g8+pEjlF+xwJfl+86/tlSyDDi\n"
	"vZYOvSB1qZiSuWhW1qPSzDYjnxPVqH+TFAk6WuTBPlYolcCCmACiSw+dlcwSEhnU\n"
	"bQdKARRRjW7kM2hVFiL6p8crnd6Q0l6snP2cJ9J/QO87amM8Hb7I/DcptYXJDNmc\n"
	"LtpGxigxfTDpt102/bqGM3/iM7oZg/8WSh8WVR4ODwKBgQDpVmG0EsEnW88U62pP\n"
	"eiN8nUVFexuxYczsi8qDnCVVP/k3QnsLJVw9TUhPTXbasDIzv8zqGd1Yd/1K0U8w\n"
	"jp6xnUV7yUa+snxUvDRDxGD6M6Ie0iqWq8TqKOFg8MzW4bSeERU2A7iPGouxCVYD\n"
	"Lj7wy9dAb6px9/OazFtj6LQ9/wKBgQDHyzWM+wQcVvTSMLUQwXuFsMLGqKYx4Zb9\n"
	"04LTGsLKcSJt3cmesKnWVtcbxS/bc602T9GTEXlGJ8fSL4dZvwYK0qEychaZNp3p\n"
	"I6b/BQ/qYPttyLS+aouSs4mP85fggFbXViZWqxMWcXpayAvj1RnrdLJlRH4q6BPX\n"
	"nu2ttHAk0wKBgARY5KcbNlgKYNhN7oQejWyz7Wd2/LQYU14Q2KwNC7ED6Ru7dFln\n"
	"z8kgmHlJwy4d3EGUkDfIVZRhX+m17pjD/3blrDa7MEM7Rg+6FesxTHE85wdV+Q8n\n"
	"khqeulw5AEf8moXbYZ7JAPZBk1qwBtc2VFveIFuF+RH4gaRfrFA3NKx3AoGAVv5s\n"
	"es5xo8VZJIyAyqL0nemxZb7ZXq7TiAIo3LKyTmOkkiIYQDi8Os/lKfpaNDvSF+v5\n"
	"XQgmvh1kLGj1jmZWwy+jcMuse1oEuBcGB9S0cWF5GPxjduX9kAsMwtlWMDKxnWGt\n"
	"n98tmIAgvpaMVs/bUWKmquF/7j7PJPvWkeQXUHECgYBY8aVk80a0/iFQ1D/Wj/Y0\n"
	"xpAkOTcwETwNiFI7DekvvosRp0Mw69W83IxN6vmqTy+1fw6CGrghmMhqnKiZ/A5V\n"
	"TSZyvEu2Wpf+iMvTO7gp9bCD5oA3uFdV1eCu4TBNkwxyvekpg8n28QS80CELOPU4\n"
	"seBwNSReBKA5OzBNEJccWA==\n"
	"-----END PRIVATE KEY-----\n";

static const char fuzz_ec_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/CVG04jnDSOWzrvB\n"
	"EolGxpQlL8KAPmODlrNx639JHB6hRANCAAS40OOSAeLSX1VgTKpJv5X0fh9eI/8U\n"
	"G3d7TDR+I6NfHr+bidHx1i2KWHXESWMzz+xkmZ8IVDqoyKEkPIA/4K1D\n"
	"-----END PRIVATE KEY-----\n";

#endif
