/*
 * test_protodetect.c - unit tests of relay/protodetect.c: real first bytes
 * of OpenSSL, OpenSSH and paramiko; partial "SSH-" across reads; early
 * refusal; bytes past the decision ignored (long or unterminated banners,
 * bad TLS records go on to libssh / OpenSSL); never a read past len.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "protodetect.h"
#include "runner.h"

int suite_protodetect(void);

/* pd_classify() on an exactly sized heap copy, so a read past len is
 * caught by ASan in the sanitizer build. */
static enum pd_proto
classify(const void *data, size_t len, const char **why)
{
	unsigned char *b = NULL;
	enum pd_proto p;

	if (len > 0) {
		b = malloc(len);
		CU_ASSERT_FATAL(b != NULL);
		memcpy(b, data, len);
	}
	p = pd_classify(b, len, why);
	free(b);
	return p;
}

/* The first bytes real peers send, captured from each on loopback. */
static void
test_real_peers(void)
{
	static const unsigned char openssl_ch[] = {	/* s_client, 3.0 */
		0x16, 0x03, 0x01, 0x01, 0x24, 0x01, 0x00, 0x01, 0x20, 0x03,
		0x03,
	};
	static const unsigned char openssl_tls12[] = {	/* -tls1_2 */
		0x16, 0x03, 0x01, 0x00, 0xb7, 0x01, 0x00, 0x00, 0xb3, 0x03,
		0x03,
	};
	const char *openssh = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n";
	const char *paramiko = "SSH-2.0-paramiko_2.12.0\r\n";
	const char *why = "x";

	CU_ASSERT_EQUAL(classify(openssl_ch, sizeof(openssl_ch), &why),
	    PD_TLS);
	CU_ASSERT_PTR_NULL(why);
	CU_ASSERT_EQUAL(classify(openssl_tls12, sizeof(openssl_tls12), &why),
	    PD_TLS);
	CU_ASSERT_EQUAL(classify(openssh, strlen(openssh), &why), PD_SSH);
	CU_ASSERT_PTR_NULL(why);
	CU_ASSERT_EQUAL(classify(paramiko, strlen(paramiko), &why), PD_SSH);
	/* What the listener's peek of PD_PEEK_LEN bytes hands over. */
	CU_ASSERT_EQUAL(classify(openssh, PD_PEEK_LEN, &why), PD_SSH);
	CU_ASSERT_EQUAL(classify(openssl_ch, PD_PEEK_LEN, &why), PD_TLS);
}

/* "SSH-" arriving a byte at a time: need more until the 4th byte. */
static void
test_ssh_partial(void)
{
	const char *banner = "SSH-2.0-x\r\n";
	const char *why = "x";
	size_t i;

	CU_ASSERT_EQUAL(classify(banner, 0, &why), PD_NEED_MORE);
	CU_ASSERT_PTR_NULL(why);
	CU_ASSERT_EQUAL(pd_classify(NULL, 0, &why), PD_NEED_MORE);
	for (i = 1; i < 4; i++) {
		why = "x";
		CU_ASSERT_EQUAL(classify(banner, i, &why), PD_NEED_MORE);
		CU_ASSERT_PTR_NULL(why);
	}
	for (i = 4; i <= strlen(banner); i++)
		CU_ASSERT_EQUAL(classify(banner, i, &why), PD_SSH);
}

/* A wrong byte is refused as soon as it is seen, with a reason. */
static void
test_reject(void)
{
	static const struct {
		const char *in;
		size_t len;
	} bad[] = {
		{ "GET / HTTP/1.0\r\n\r\n", 18 },
		{ "X", 1 },
		{ "SX", 2 },
		{ "SSX", 3 },
		{ "SSH_2.0-x\r\n", 11 },
		{ "ssh-2.0-x\r\n", 11 },	/* case-sensitive */
		{ " SSH-2.0-x\r\n", 12 },
		{ "\r\nSSH-2.0-x\r\n", 13 },
		{ "\0SSH-", 5 },
		{ "\x15\x03\x03\x00\x02\x02\x28", 7 },	/* TLS alert */
		{ "\x17\x03\x03\x00\x10", 5 },		/* app data */
		{ "\x80\x2e\x01\x00\x02", 5 },		/* SSLv2 hello */
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32 },
	};
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		CU_ASSERT_EQUAL(classify(bad[i].in, bad[i].len, &why),
		    PD_REJECT);
		CU_ASSERT_PTR_NOT_NULL_FATAL(why);
		CU_ASSERT_STRING_EQUAL(why, "neither TLS nor SSH");
	}
}

/*
 * Kept as before the refactoring: the decision is on PD_PEEK_LEN bytes at
 * most. A long banner, one without CR LF, or any bytes after "SSH-" are
 * libssh's to refuse; a record after 0x16 with a bad version or length is
 * OpenSSL's. Both run under the handshake deadline from accept.
 */
static void
test_rest_ignored(void)
{
	static unsigned char big[70004];
	static const unsigned char tls_bad[] = { 0x16, 0x01, 0x00, 0x00,
		0x05, 'h', 'e', 'l', 'l', 'o' };
	const char *why;

	memcpy(big, "SSH-", 4);
	memset(big + 4, 'A', sizeof(big) - 4);
	CU_ASSERT_EQUAL(classify(big, sizeof(big), &why), PD_SSH);
	CU_ASSERT_EQUAL(classify("SSH-1.5-old\r\n", 13, &why), PD_SSH);
	CU_ASSERT_EQUAL(classify("SSH-\0\xff\n", 7, &why), PD_SSH);
	CU_ASSERT_EQUAL(classify("\x16", 1, &why), PD_TLS);
	CU_ASSERT_EQUAL(classify(tls_bad, sizeof(tls_bad), &why), PD_TLS);
	big[0] = 0x16;
	CU_ASSERT_EQUAL(classify(big, sizeof(big), &why), PD_TLS);
}

/* A decision never changes when more bytes arrive. */
static void
test_prefix_stable(void)
{
	static const char *const in[] = {
		"SSH-2.0-x\r\n", "\x16\x03\x01\x00\x05", "SSX-", "S\x16",
		"\x16SSH-", "",
	};
	enum pd_proto p, q;
	const char *why;
	size_t i, j, n;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		n = strlen(in[i]);
		p = classify(in[i], n, &why);
		if (n >= PD_PEEK_LEN)
			CU_ASSERT_NOT_EQUAL(p, PD_NEED_MORE);
		for (j = 0; j < n; j++) {
			q = classify(in[i], j, &why);
			CU_ASSERT(q == PD_NEED_MORE || q == p);
		}
	}
}

static void
test_names(void)
{
	CU_ASSERT_STRING_EQUAL(pd_name(PD_NEED_MORE), "need more");
	CU_ASSERT_STRING_EQUAL(pd_name(PD_TLS), "TLS");
	CU_ASSERT_STRING_EQUAL(pd_name(PD_SSH), "SSH");
	CU_ASSERT_STRING_EQUAL(pd_name(PD_REJECT), "reject");
	CU_ASSERT_STRING_EQUAL(pd_name((enum pd_proto)42), "?");
}

int
suite_protodetect(void)
{
	CU_pSuite s = CU_add_suite("protodetect", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "real peers", test_real_peers) == NULL ||
	    CU_add_test(s, "partial SSH-", test_ssh_partial) == NULL ||
	    CU_add_test(s, "reject", test_reject) == NULL ||
	    CU_add_test(s, "rest ignored", test_rest_ignored) == NULL ||
	    CU_add_test(s, "prefix stable", test_prefix_stable) == NULL ||
	    CU_add_test(s, "names", test_names) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
