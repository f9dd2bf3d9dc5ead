/*
 * test_tls.c - unit tests of common/tls.c.
 *
 * Each test builds a fresh PKI with testpki in its own temporary directory
 * and runs both TLS endpoints in this process over a non-blocking
 * socketpair, driving them alternately in a bounded loop (a socketpair
 * delivers at once, so a bounded number of rounds is deterministic even on
 * a busy machine).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "err.h"
#include "runner.h"
#include "testpki.h"
#include "tls.h"
#include "util.h"

int suite_tls(void);

#define PATHLEN 512
#define HS_ROUNDS 200
#define ALL_SANS "DNS:localhost,IP:127.0.0.1,IP:::1"

/* A CA, a server certificate for localhost / 127.0.0.1 / ::1 and a client
 * certificate "gw-17", written as ca.crt, srv.{crt,key}, cli.{crt,key}. */
struct fx {
	char dir[PATHLEN];
	struct testpki_cert *ca, *srv, *cli;
	char ca_file[PATHLEN];
	char srv_crt[PATHLEN], srv_key[PATHLEN];
	char cli_crt[PATHLEN], cli_key[PATHLEN];
};

struct pair {
	SSL_CTX *cctx, *sctx;
	int fd[2];		/* [0] client end, [1] server end */
	struct tls_conn *c, *s;
	int rc_c, rc_s;		/* last handshake results */
};

static int
fx_init(struct fx *f)
{
	struct testpki_opts so = { .cn = "relay", .san = ALL_SANS,
				   .usage = TESTPKI_SERVER };
	struct testpki_opts co = { .cn = "gw-17", .usage = TESTPKI_CLIENT };

	memset(f, 0, sizeof(*f));
	if (unit_tmpdir(f->dir, sizeof(f->dir)) != 0 ||
	    testpki_ca("revtun test CA", &f->ca) != 0 ||
	    testpki_issue(f->ca, &so, &f->srv) != 0 ||
	    testpki_issue(f->ca, &co, &f->cli) != 0 ||
	    testpki_write(f->ca, f->dir, "ca") != 0 ||
	    testpki_write(f->srv, f->dir, "srv") != 0 ||
	    testpki_write(f->cli, f->dir, "cli") != 0) {
		CU_FAIL("test PKI set-up failed");
		return -1;
	}
	testpki_path(f->ca_file, PATHLEN, f->dir, "ca", ".crt");
	testpki_path(f->srv_crt, PATHLEN, f->dir, "srv", ".crt");
	testpki_path(f->srv_key, PATHLEN, f->dir, "srv", ".key");
	testpki_path(f->cli_crt, PATHLEN, f->dir, "cli", ".crt");
	testpki_path(f->cli_key, PATHLEN, f->dir, "cli", ".key");
	return 0;
}

static void
fx_done(struct fx *f)
{
	testpki_free(f->ca);
	testpki_free(f->srv);
	testpki_free(f->cli);
	unit_rmtree(f->dir);
}

/* Issues a certificate from issuer and writes it as dir/name.{crt,key}. */
static int
fx_issue(struct fx *f, const struct testpki_cert *issuer,
	 const struct testpki_opts *o, const char *name, X509 **keep)
{
	struct testpki_cert *c;
	int r;

	if (testpki_issue(issuer, o, &c) != 0) {
		CU_FAIL("testpki_issue failed");
		return -1;
	}
	r = testpki_write(c, f->dir, name);
	CU_ASSERT_EQUAL(r, 0);
	if (keep != NULL) {
		X509_up_ref(c->cert);
		*keep = c->cert;
	}
	testpki_free(c);
	return r;
}

static SSL_CTX *
mkctx(const struct tls_config *cfg, int is_server)
{
	SSL_CTX *ctx = NULL;
	char err[512];
	int r;

	r = tls_ctx_new(cfg, is_server, &ctx, err, sizeof(err));
	if (r != 0)
		fprintf(stderr, "tls_ctx_new: %s\n", err);
	CU_ASSERT_EQUAL(r, 0);
	return ctx;
}

/* Server config: own cert, CA for client certs. */
static struct tls_config
srv_cfg(const struct fx *f, int require)
{
	struct tls_config c = { .ca_file = f->ca_file, .cert_file = f->srv_crt,
				.key_file = f->srv_key,
				.require_peer_cert = require };
	return c;
}

static struct tls_config
cli_cfg(const struct fx *f, int with_cert)
{
	struct tls_config c = { .ca_file = f->ca_file };

	if (with_cert) {
		c.cert_file = f->cli_crt;
		c.key_file = f->cli_key;
	}
	return c;
}

/* Wraps both ends; takes ownership of the contexts. */
static int
pair_open(struct pair *p, SSL_CTX *cctx, SSL_CTX *sctx, const char *host)
{
	memset(p, 0, sizeof(*p));
	p->fd[0] = p->fd[1] = -1;
	p->cctx = cctx;
	p->sctx = sctx;
	if (cctx == NULL || sctx == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd) != 0 ||
	    rt_fd_nonblock(p->fd[0]) != 0 || rt_fd_nonblock(p->fd[1]) != 0) {
		CU_FAIL("socketpair");
		return -1;
	}
	CU_ASSERT_EQUAL_FATAL(tls_conn_new(cctx, p->fd[0], 0, host, &p->c), 0);
	CU_ASSERT_EQUAL_FATAL(tls_conn_new(sctx, p->fd[1], 1, NULL, &p->s), 0);
	return 0;
}

/* Drives both handshakes until both ended or HS_ROUNDS passed. A side that
 * failed stops; the other keeps going so it can read the alert. */
static void
pair_handshake(struct pair *p)
{
	p->rc_c = p->rc_s = RT_ERR_AGAIN;
	for (int i = 0; i < HS_ROUNDS; i++) {
		if (p->rc_c == RT_ERR_AGAIN)
			p->rc_c = tls_handshake(p->c);
		if (p->rc_s == RT_ERR_AGAIN)
			p->rc_s = tls_handshake(p->s);
		if (p->rc_c != RT_ERR_AGAIN && p->rc_s != RT_ERR_AGAIN)
			break;
	}
	if (getenv("RT_TEST_DEBUG") != NULL)
		fprintf(stderr, "hs: client %d (%s) server %d (%s)\n", p->rc_c,
			tls_error(p->c), p->rc_s, tls_error(p->s));
}

static void
pair_close(struct pair *p)
{
	tls_conn_free(p->c);
	tls_conn_free(p->s);
	tls_ctx_free(p->cctx);
	tls_ctx_free(p->sctx);
	if (p->fd[0] >= 0)
		close(p->fd[0]);
	if (p->fd[1] >= 0)
		close(p->fd[1]);
	memset(p, 0, sizeof(*p));
}

/* Sends len bytes from w to rd, alternating partial writes and reads. */
static int
transfer(struct tls_conn *w, struct tls_conn *rd, const unsigned char *src,
	 unsigned char *dst, size_t len)
{
	size_t off_w = 0, off_r = 0;
	ssize_t n;

	for (long i = 0; i < 100000 && off_r < len; i++) {
		if (off_w < len) {
			n = tls_write(w, src + off_w, len - off_w);
			if (n > 0)
				off_w += (size_t)n;
			else if (n != RT_ERR_AGAIN)
				return (int)n;
			else if (tls_want(w) == 0)
				return -100;
		}
		do {
			n = tls_read(rd, dst + off_r, len - off_r);
			if (n > 0)
				off_r += (size_t)n;
			else if (n != RT_ERR_AGAIN)
				return (int)n;
		} while (n > 0 && off_r < len);
	}
	return off_r == len && memcmp(src, dst, len) == 0 ? 0 : -101;
}

static int
contains(const char *hay, const char *needle)
{
	int ok = strstr(hay, needle) != NULL;

	if (!ok)
		fprintf(stderr, "\"%s\" lacks \"%s\"\n", hay, needle);
	return ok;
}

/* A full handshake, then data both ways, 1 MiB bulk and pending reads. */
static void
test_handshake_data(void)
{
	enum { BULK = 1 << 20 };
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	unsigned char *src = NULL, *dst = NULL, small[10], rec[1000];
	char got[1000];
	size_t off = 0;
	ssize_t n;

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 1);
	sc = srv_cfg(&f, 1);
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	CU_ASSERT_STRING_EQUAL(tls_version(p.c), "");
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_c, 0);
	CU_ASSERT_EQUAL(p.rc_s, 0);
	CU_ASSERT_STRING_EQUAL(tls_version(p.c), "TLSv1.3");
	CU_ASSERT_STRING_EQUAL(tls_version(p.s), "TLSv1.3");
	CU_ASSERT(strlen(tls_cipher(p.c)) > 0);

	/* Nothing to read yet: AGAIN, waiting for readability. */
	n = tls_read(p.s, got, sizeof(got));
	CU_ASSERT_EQUAL(n, RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(tls_want(p.s), TLS_WANT_READ);

	CU_ASSERT_EQUAL(tls_write(p.c, "hello", 5), 5);
	n = tls_read(p.s, got, sizeof(got));
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT(n == 5 && memcmp(got, "hello", 5) == 0);
	CU_ASSERT_EQUAL(tls_write(p.s, "world!", 6), 6);
	n = tls_read(p.c, got, sizeof(got));
	CU_ASSERT(n == 6 && memcmp(got, "world!", 6) == 0);

	/* Bulk larger than the socket buffers, both directions. */
	src = malloc(BULK);
	dst = malloc(BULK);
	CU_ASSERT_FATAL(src != NULL && dst != NULL);
	for (size_t i = 0; i < BULK; i++)
		src[i] = (unsigned char)(i * 7 + (i >> 11));
	CU_ASSERT_EQUAL(transfer(p.c, p.s, src, dst, BULK), 0);
	memset(dst, 0, BULK);
	CU_ASSERT_EQUAL(transfer(p.s, p.c, src, dst, BULK), 0);

	/* One record, read through a small buffer: the rest is inside
	 * OpenSSL, not in the socket, so only tls_pending() finds it. */
	memset(rec, 'r', sizeof(rec));
	rec[999] = 'z';
	CU_ASSERT_EQUAL(tls_write(p.s, rec, sizeof(rec)), (ssize_t)sizeof(rec));
	n = tls_read(p.c, small, sizeof(small));
	CU_ASSERT_EQUAL(n, (ssize_t)sizeof(small));
	CU_ASSERT_EQUAL(tls_pending(p.c), (int)(sizeof(rec) - sizeof(small)));
	CU_ASSERT(recv(p.fd[0], got, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
		  errno == EAGAIN);
	if (n > 0)
		off = (size_t)n;
	while (tls_pending(p.c) > 0 && off < sizeof(rec)) {
		n = tls_read(p.c, small, sizeof(small));
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	CU_ASSERT_EQUAL(off, sizeof(rec));
	CU_ASSERT_EQUAL(small[9], 'z');
	CU_ASSERT_EQUAL(tls_pending(p.c), 0);
 out:
	free(src);
	free(dst);
	pair_close(&p);
	fx_done(&f);
}

/* TLS 1.2 with the default (Mozilla intermediate) list picks ECDHE-ECDSA
 * AEAD for an EC certificate. */
static void
test_tls12(void)
{
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	SSL_CTX *cctx;

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 0);
	sc = srv_cfg(&f, 0);
	cctx = mkctx(&cc, 0);
	if (cctx != NULL)
		CU_ASSERT_EQUAL(SSL_CTX_set_max_proto_version(cctx,
		    TLS1_2_VERSION), 1);
	if (pair_open(&p, cctx, mkctx(&sc, 1), "localhost") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_c, 0);
	CU_ASSERT_EQUAL(p.rc_s, 0);
	CU_ASSERT_STRING_EQUAL(tls_version(p.c), "TLSv1.2");
	CU_ASSERT(strncmp(tls_cipher(p.c), "ECDHE-ECDSA-", 12) == 0);
	CU_ASSERT(strstr(tls_cipher(p.c), "GCM") != NULL ||
		  strstr(tls_cipher(p.c), "CHACHA20") != NULL);
 out:
	pair_close(&p);
	fx_done(&f);
}

/* A stale error in the thread's queue must not turn WANT_READ into a
 * failure (pitfall 9). */
static void
test_stale_error_queue(void)
{
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	char buf[16];

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 0);
	sc = srv_cfg(&f, 0);
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_c, 0);
	CU_ASSERT_EQUAL(p.rc_s, 0);
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	CU_ASSERT_EQUAL(tls_read(p.c, buf, sizeof(buf)), RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(tls_want(p.c), TLS_WANT_READ);
	ERR_clear_error();
 out:
	pair_close(&p);
	fx_done(&f);
}

/* Client side: server certificate from a rogue CA, a wrong name, a client
 * certificate used as a server certificate. */
static void
test_client_refuses(void)
{
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	struct testpki_cert *rogue = NULL;
	struct testpki_opts so = { .cn = "relay", .san = ALL_SANS,
				   .usage = TESTPKI_SERVER };
	struct testpki_opts co = { .cn = "relay", .san = ALL_SANS,
				   .usage = TESTPKI_CLIENT };
	char crt[PATHLEN], key[PATHLEN];

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 0);
	CU_ASSERT_FATAL(testpki_ca("rogue CA", &rogue) == 0);
	if (fx_issue(&f, rogue, &so, "rogue", NULL) != 0)
		goto out;
	sc = srv_cfg(&f, 0);
	sc.cert_file = testpki_path(crt, PATHLEN, f.dir, "rogue", ".crt");
	sc.key_file = testpki_path(key, PATHLEN, f.dir, "rogue", ".key");
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_c, RT_ERR_VERIFY);
	CU_ASSERT(contains(tls_error(p.c), "unable to get local issuer"));
	CU_ASSERT(contains(tls_error(p.c), "rogue CA"));
	CU_ASSERT(p.rc_s < 0 && p.rc_s != RT_ERR_AGAIN);
	pair_close(&p);

	/* Right CA, wrong name. */
	sc = srv_cfg(&f, 0);
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "relay.example") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_c, RT_ERR_VERIFY);
	CU_ASSERT(contains(tls_error(p.c), "hostname mismatch"));
	pair_close(&p);

	/* A certificate without serverAuth cannot serve. */
	if (fx_issue(&f, f.ca, &co, "cliasrv", NULL) != 0)
		goto out;
	sc.cert_file = testpki_path(crt, PATHLEN, f.dir, "cliasrv", ".crt");
	sc.key_file = testpki_path(key, PATHLEN, f.dir, "cliasrv", ".key");
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_c, RT_ERR_VERIFY);
	CU_ASSERT(contains(tls_error(p.c), "purpose"));
 out:
	pair_close(&p);
	testpki_free(rogue);
	fx_done(&f);
}

/* A TLS 1.0/1.1-only server is refused with a protocol-version error. */
static void
test_client_refuses_tls11(void)
{
	struct fx f;
	struct pair p;
	struct tls_config cc;
	SSL_CTX *old;

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 0);
	old = SSL_CTX_new(TLS_server_method());
	CU_ASSERT_FATAL(old != NULL);
	CU_ASSERT(SSL_CTX_set_min_proto_version(old, TLS1_VERSION) == 1);
	CU_ASSERT(SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION) == 1);
	CU_ASSERT(SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0") == 1);
	CU_ASSERT(SSL_CTX_use_certificate_file(old, f.srv_crt,
	    SSL_FILETYPE_PEM) == 1);
	CU_ASSERT(SSL_CTX_use_PrivateKey_file(old, f.srv_key,
	    SSL_FILETYPE_PEM) == 1);
	if (pair_open(&p, mkctx(&cc, 0), old, "localhost") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_c, RT_ERR_TLS);
	CU_ASSERT(contains(tls_error(p.c), "protocol"));
	CU_ASSERT_STRING_EQUAL(tls_version(p.c), "");
 out:
	pair_close(&p);
	fx_done(&f);
}

/* Runs one handshake against a server requiring a client certificate;
 * client presents dir/name.{crt,key} (name NULL = none). */
static void
server_case(struct fx *f, const char *name, const char *crl,
	    int want_rc, const char *want1, const char *want2)
{
	struct pair p;
	struct tls_config cc = cli_cfg(f, 0), sc = srv_cfg(f, 1);
	char crt[PATHLEN], key[PATHLEN], crlp[PATHLEN];
	char buf[16];

	if (name != NULL) {
		cc.cert_file = testpki_path(crt, PATHLEN, f->dir, name, ".crt");
		cc.key_file = testpki_path(key, PATHLEN, f->dir, name, ".key");
	}
	if (crl != NULL)
		sc.crl_file = testpki_path(crlp, PATHLEN, f->dir, crl, ".crl");
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_EQUAL(p.rc_s, want_rc);
	if (want1 != NULL)
		CU_ASSERT(contains(tls_error(p.s), want1));
	if (want2 != NULL)
		CU_ASSERT(contains(tls_error(p.s), want2));
	if (want_rc != 0) {
		/* The client learns it at the latest on its first read
		 * (TLS 1.3 clients finish before the server checks). */
		if (p.rc_c == 0)
			p.rc_c = (int)tls_read(p.c, buf, sizeof(buf));
		CU_ASSERT(p.rc_c < 0 && p.rc_c != RT_ERR_AGAIN);
	} else {
		CU_ASSERT_EQUAL(p.rc_c, 0);
	}
 out:
	pair_close(&p);
}

/* Server side: no, expired, not yet valid, foreign, revoked client certs. */
static void
test_server_refuses(void)
{
	struct fx f;
	struct testpki_cert *rogue = NULL;
	struct testpki_opts o = { .cn = "gw-18", .usage = TESTPKI_CLIENT };
	X509 *revoked = NULL;
	X509_CRL *crl = NULL;

	if (fx_init(&f) != 0)
		return;
	CU_ASSERT_FATAL(testpki_ca("rogue CA", &rogue) == 0);
	o.not_before = -10 * TESTPKI_DAY;
	o.not_after = -1 * TESTPKI_DAY;
	fx_issue(&f, f.ca, &o, "expired", NULL);
	o.not_before = 1 * TESTPKI_DAY;
	o.not_after = 10 * TESTPKI_DAY;
	fx_issue(&f, f.ca, &o, "future", NULL);
	o.not_before = o.not_after = 0;
	fx_issue(&f, rogue, &o, "foreign", NULL);
	fx_issue(&f, f.ca, &o, "revoked", &revoked);
	CU_ASSERT_FATAL(revoked != NULL);
	CU_ASSERT_FATAL(testpki_crl(f.ca, &revoked, 1, &crl) == 0);
	CU_ASSERT_EQUAL(testpki_write_crl(crl, f.dir, "crl"), 0);

	server_case(&f, "cli", NULL, 0, NULL, NULL);
	server_case(&f, NULL, NULL, RT_ERR_VERIFY, "did not return a cert",
		    NULL);
	server_case(&f, "expired", NULL, RT_ERR_VERIFY, "has expired",
		    "notAfter");
	server_case(&f, "future", NULL, RT_ERR_VERIFY, "not yet valid",
		    "notBefore");
	server_case(&f, "foreign", NULL, RT_ERR_VERIFY,
		    "unable to get local issuer", "rogue CA");
	/* With the CRL: a good cert still passes (the CA is covered too),
	 * the revoked one does not. */
	server_case(&f, "cli", "crl", 0, NULL, NULL);
	server_case(&f, "revoked", "crl", RT_ERR_VERIFY, "revoked", "gw-18");
	server_case(&f, "revoked", NULL, 0, NULL, NULL);

	X509_CRL_free(crl);
	X509_free(revoked);
	testpki_free(rogue);
	fx_done(&f);
}

/* Peer identity accessors on both ends. */
static void
test_peer_identity(void)
{
	static const char hex[] = "0123456789abcdef";
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	unsigned char md[32];
	unsigned int mdlen = 0;
	char want[80], buf[128], tiny[4];
	long long na, now = (long long)time(NULL);

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 1);
	sc = srv_cfg(&f, 1);
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	CU_ASSERT_EQUAL(tls_peer_cn(p.s, buf, sizeof(buf)), RT_ERR_NOTFOUND);
	pair_handshake(&p);
	CU_ASSERT_FATAL(p.rc_c == 0 && p.rc_s == 0);

	CU_ASSERT_EQUAL(tls_peer_cn(p.s, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "gw-17");
	CU_ASSERT_EQUAL(tls_peer_cn(p.c, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "relay");
	CU_ASSERT_EQUAL(tls_peer_cn(p.s, tiny, sizeof(tiny)), RT_ERR_INVAL);

	CU_ASSERT_EQUAL(tls_peer_subject(p.s, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "CN=gw-17");

	CU_ASSERT(X509_digest(f.cli->cert, EVP_sha256(), md, &mdlen) == 1);
	CU_ASSERT_FATAL(mdlen == 32);
	strcpy(want, "SHA256:");
	for (unsigned int i = 0; i < mdlen; i++) {
		want[7 + 2 * i] = hex[md[i] >> 4];
		want[8 + 2 * i] = hex[md[i] & 0xf];
	}
	want[7 + 64] = '\0';
	CU_ASSERT_EQUAL(tls_peer_fingerprint(p.s, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, want);
	CU_ASSERT_EQUAL(tls_peer_fingerprint(p.s, buf, 71), RT_ERR_INVAL);

	/* Default validity: 30 days from creation. */
	na = tls_peer_not_after(p.s);
	CU_ASSERT(na > now + 30 * TESTPKI_DAY - 120 &&
		  na < now + 30 * TESTPKI_DAY + 120);
 out:
	pair_close(&p);
	fx_done(&f);
}

/* Subjects without a CN, with two, or with a NUL byte are refused. */
static void
test_peer_cn_odd(void)
{
	struct fx f;
	struct testpki_opts o = { .usage = TESTPKI_CLIENT };
	struct tls_config cc, sc;
	struct pair p;
	X509_NAME *n[3];
	const int want[3] = { RT_ERR_NOTFOUND, RT_ERR_INVAL, RT_ERR_INVAL };
	char crt[PATHLEN], key[PATHLEN], buf[64];

	if (fx_init(&f) != 0)
		return;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_FATAL((n[i] = X509_NAME_new()) != NULL);
	X509_NAME_add_entry_by_txt(n[0], "O", MBSTRING_ASC,
	    (const unsigned char *)"plant", -1, -1, 0);
	X509_NAME_add_entry_by_NID(n[1], NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)"gw-17", -1, -1, 0);
	X509_NAME_add_entry_by_NID(n[1], NID_commonName, MBSTRING_ASC,
	    (const unsigned char *)"gw-18", -1, -1, 0);
	X509_NAME_add_entry_by_NID(n[2], NID_commonName, V_ASN1_UTF8STRING,
	    (const unsigned char *)"gw-17\0evil", 10, -1, 0);
	for (int i = 0; i < 3; i++) {
		o.subject = n[i];
		if (fx_issue(&f, f.ca, &o, "odd", NULL) != 0) {
			X509_NAME_free(n[i]);
			continue;
		}
		cc = cli_cfg(&f, 0);
		cc.cert_file = testpki_path(crt, PATHLEN, f.dir, "odd", ".crt");
		cc.key_file = testpki_path(key, PATHLEN, f.dir, "odd", ".key");
		sc = srv_cfg(&f, 1);
		if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1),
			      "localhost") == 0) {
			pair_handshake(&p);
			CU_ASSERT_EQUAL(p.rc_s, 0);
			CU_ASSERT_EQUAL(tls_peer_cn(p.s, buf, sizeof(buf)),
					want[i]);
			CU_ASSERT_EQUAL(tls_peer_subject(p.s, buf,
					sizeof(buf)), 0);
			CU_ASSERT(strchr(buf, '\n') == NULL);
		}
		pair_close(&p);
		X509_NAME_free(n[i]);
	}
	fx_done(&f);
}

static int
sni_cb(SSL *ssl, int *al, void *arg)
{
	const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)al;
	snprintf(arg, 64, "%s", n != NULL ? n : "(none)");
	return SSL_TLSEXT_ERR_OK;
}

/* IP literals are checked against IP SANs, and never sent as SNI. */
static void
test_ip_hosts(void)
{
	static const struct {
		const char *host;
		int rc;
		const char *sni;
	} cases[] = {
		{ "127.0.0.1", 0, "(none)" },
		{ "::1", 0, "(none)" },
		{ "localhost", 0, "localhost" },
		{ "127.0.0.2", RT_ERR_VERIFY, "(none)" },
		{ "::2", RT_ERR_VERIFY, "(none)" },
	};
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	char sni[64];

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 0);
	sc = srv_cfg(&f, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(sni, sizeof(sni), "(not called)");
		if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1),
			      cases[i].host) != 0) {
			pair_close(&p);
			continue;
		}
		SSL_CTX_set_tlsext_servername_callback(p.sctx, sni_cb);
		SSL_CTX_set_tlsext_servername_arg(p.sctx, sni);
		pair_handshake(&p);
		CU_ASSERT_EQUAL(p.rc_c, cases[i].rc);
		CU_ASSERT_STRING_EQUAL(sni, cases[i].sni);
		if (cases[i].rc == RT_ERR_VERIFY)
			CU_ASSERT(contains(tls_error(p.c), "IP address mismatch"));
		pair_close(&p);
	}
	fx_done(&f);
}

/* Close without and with close_notify: both read as EOF. */
static void
test_eof(void)
{
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	char buf[16];

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 0);
	sc = srv_cfg(&f, 0);
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_FATAL(p.rc_c == 0 && p.rc_s == 0);
	CU_ASSERT_EQUAL(tls_shutdown(p.c), 0);
	CU_ASSERT_EQUAL(tls_shutdown(p.c), 0);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof(buf)), RT_ERR_EOF);
	CU_ASSERT(contains(tls_error(p.s), "close_notify"));
	pair_close(&p);

	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	pair_handshake(&p);
	CU_ASSERT_FATAL(p.rc_c == 0 && p.rc_s == 0);
	CU_ASSERT_EQUAL(shutdown(p.fd[0], SHUT_WR), 0);
	CU_ASSERT_EQUAL(tls_read(p.s, buf, sizeof(buf)), RT_ERR_EOF);
	CU_ASSERT(contains(tls_error(p.s), "unexpected EOF"));
	/* After a fatal error, shutdown is a no-op. */
	CU_ASSERT_EQUAL(tls_shutdown(p.s), 0);
 out:
	pair_close(&p);
	fx_done(&f);
}

/* Bytes that are not TLS make a clean RT_ERR_TLS on either side. */
static void
test_garbage(void)
{
	static const char ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
	struct fx f;
	struct pair p;
	struct tls_config cc, sc;
	unsigned char junk[4096];
	int r = RT_ERR_AGAIN;

	if (fx_init(&f) != 0)
		return;
	cc = cli_cfg(&f, 0);
	sc = srv_cfg(&f, 1);
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	/* An operator's SSH banner reaching the TLS server. */
	CU_ASSERT_EQUAL(write(p.fd[0], ssh, sizeof(ssh) - 1),
			(ssize_t)sizeof(ssh) - 1);
	CU_ASSERT_EQUAL(tls_handshake(p.s), RT_ERR_TLS);
	CU_ASSERT(strlen(tls_error(p.s)) > 0);
	pair_close(&p);

	/* A server answering with random bytes. */
	if (pair_open(&p, mkctx(&cc, 0), mkctx(&sc, 1), "localhost") != 0)
		goto out;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 17);
	junk[0] = 0x16;	/* looks like a handshake record at first */
	CU_ASSERT_EQUAL(write(p.fd[1], junk, sizeof(junk)),
			(ssize_t)sizeof(junk));
	for (int i = 0; i < HS_ROUNDS && r == RT_ERR_AGAIN; i++)
		r = tls_handshake(p.c);
	CU_ASSERT_EQUAL(r, RT_ERR_TLS);
 out:
	pair_close(&p);
	fx_done(&f);
}

/* Configuration errors name the file and OpenSSL's reason. */
static void
test_ctx_errors(void)
{
	struct fx f;
	struct testpki_cert *other = NULL, mix;
	struct tls_config c;
	SSL_CTX *ctx = (SSL_CTX *)&f;
	char err[512], crt[PATHLEN], key[PATHLEN], bad[PATHLEN];
	FILE *fp;

	if (fx_init(&f) != 0)
		return;
	/* The certificate of cli with the key of another pair. */
	CU_ASSERT_FATAL(testpki_ca("other", &other) == 0);
	mix.cert = f.cli->cert;
	mix.key = other->key;
	CU_ASSERT_FATAL(testpki_write(&mix, f.dir, "mix") == 0);
	c = cli_cfg(&f, 0);
	c.cert_file = testpki_path(crt, PATHLEN, f.dir, "mix", ".crt");
	c.key_file = testpki_path(key, PATHLEN, f.dir, "mix", ".key");
	CU_ASSERT_EQUAL(tls_ctx_new(&c, 0, &ctx, err, sizeof(err)),
			RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(ctx);
	CU_ASSERT(contains(err, key));
	CU_ASSERT(contains(err, "mismatch"));

	/* Missing CA file. */
	c = cli_cfg(&f, 0);
	c.ca_file = testpki_path(bad, PATHLEN, f.dir, "nope", ".crt");
	CU_ASSERT_EQUAL(tls_ctx_new(&c, 0, &ctx, err, sizeof(err)),
			RT_ERR_CONFIG);
	CU_ASSERT(contains(err, bad));

	/* No trust anchors at all: a client must not fall back to any. */
	c = cli_cfg(&f, 0);
	c.ca_file = NULL;
	CU_ASSERT_EQUAL(tls_ctx_new(&c, 0, &ctx, err, sizeof(err)),
			RT_ERR_CONFIG);
	CU_ASSERT(contains(err, "CA"));

	/* A CRL file holding no CRL. */
	testpki_path(bad, PATHLEN, f.dir, "junk", ".crl");
	fp = fopen(bad, "w");
	CU_ASSERT_FATAL(fp != NULL);
	fputs("not a CRL\n", fp);
	fclose(fp);
	c = srv_cfg(&f, 1);
	c.crl_file = bad;
	CU_ASSERT_EQUAL(tls_ctx_new(&c, 1, &ctx, err, sizeof(err)),
			RT_ERR_CONFIG);
	CU_ASSERT(contains(err, bad));

	/* A bad cipher list, a server without a certificate. */
	c = cli_cfg(&f, 0);
	c.ciphers = "NO-SUCH-CIPHER";
	CU_ASSERT_EQUAL(tls_ctx_new(&c, 0, &ctx, err, sizeof(err)),
			RT_ERR_CONFIG);
	CU_ASSERT(contains(err, "NO-SUCH-CIPHER"));
	c = srv_cfg(&f, 0);
	c.cert_file = c.key_file = NULL;
	CU_ASSERT_EQUAL(tls_ctx_new(&c, 1, &ctx, err, sizeof(err)),
			RT_ERR_CONFIG);

	/* A client host name is mandatory. */
	c = cli_cfg(&f, 0);
	ctx = mkctx(&c, 0);
	if (ctx != NULL) {
		struct tls_conn *conn = (struct tls_conn *)&f;

		CU_ASSERT_EQUAL(tls_conn_new(ctx, 0, 0, NULL, &conn),
				RT_ERR_INVAL);
		CU_ASSERT_PTR_NULL(conn);
		CU_ASSERT_EQUAL(tls_conn_new(ctx, 0, 0, "", &conn),
				RT_ERR_INVAL);
	}
	tls_ctx_free(ctx);
	testpki_free(other);
	fx_done(&f);
}

/* The version floor and the hardening options. */
static void
test_ctx_versions(void)
{
	static const struct {
		int cfg;
		int want;
	} cases[] = {
		{ 0, TLS1_2_VERSION },
		{ TLS1_VERSION, TLS1_2_VERSION },
		{ TLS1_1_VERSION, TLS1_2_VERSION },
		{ TLS1_2_VERSION, TLS1_2_VERSION },
		{ TLS1_3_VERSION, TLS1_3_VERSION },
	};
	struct fx f;
	struct tls_config c;
	SSL_CTX *ctx;
	uint64_t opts;
	char err[256];

	if (fx_init(&f) != 0)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int srv = 0; srv < 2; srv++) {
			c = srv ? srv_cfg(&f, 1) : cli_cfg(&f, 1);
			c.min_version = cases[i].cfg;
			if ((ctx = mkctx(&c, srv)) == NULL)
				continue;
			CU_ASSERT_EQUAL(SSL_CTX_get_min_proto_version(ctx),
					cases[i].want);
			CU_ASSERT_EQUAL(SSL_CTX_get_max_proto_version(ctx), 0);
			opts = SSL_CTX_get_options(ctx);
			CU_ASSERT(opts & SSL_OP_NO_RENEGOTIATION);
			CU_ASSERT(opts & SSL_OP_NO_COMPRESSION);
			CU_ASSERT((opts & SSL_OP_CIPHER_SERVER_PREFERENCE) == 0);
			if (srv)
				CU_ASSERT(opts & SSL_OP_NO_TICKET);
			CU_ASSERT(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER);
			tls_ctx_free(ctx);
		}
	}
	c = cli_cfg(&f, 0);
	c.min_version = 0x0305;
	CU_ASSERT_EQUAL(tls_ctx_new(&c, 0, &ctx, err, sizeof(err)),
			RT_ERR_CONFIG);
	fx_done(&f);
}

static void
test_cert_file_not_after(void)
{
	struct fx f;
	struct testpki_opts o = { .cn = "gw-17", .usage = TESTPKI_CLIENT,
				  .not_before = -TESTPKI_DAY,
				  .not_after = 10 * TESTPKI_DAY };
	long long na = 0, now = (long long)time(NULL);
	char path[PATHLEN], err[512];

	if (fx_init(&f) != 0)
		return;
	fx_issue(&f, f.ca, &o, "ten", NULL);
	testpki_path(path, PATHLEN, f.dir, "ten", ".crt");
	CU_ASSERT_EQUAL(tls_cert_file_not_after(path, &na, err, sizeof(err)),
			0);
	CU_ASSERT(na >= now + 10 * TESTPKI_DAY - 120 &&
		  na <= now + 10 * TESTPKI_DAY + 120);

	o.not_before = -10 * TESTPKI_DAY;
	o.not_after = -2 * TESTPKI_DAY;
	fx_issue(&f, f.ca, &o, "old", NULL);
	testpki_path(path, PATHLEN, f.dir, "old", ".crt");
	CU_ASSERT_EQUAL(tls_cert_file_not_after(path, &na, err, sizeof(err)),
			0);
	CU_ASSERT(na >= now - 2 * TESTPKI_DAY - 120 &&
		  na <= now - 2 * TESTPKI_DAY + 120);

	/* A key is not a certificate; a missing file is named. */
	testpki_path(path, PATHLEN, f.dir, "ten", ".key");
	CU_ASSERT_EQUAL(tls_cert_file_not_after(path, &na, err, sizeof(err)),
			RT_ERR_CONFIG);
	CU_ASSERT(contains(err, path));
	testpki_path(path, PATHLEN, f.dir, "none", ".crt");
	CU_ASSERT_EQUAL(tls_cert_file_not_after(path, &na, err, sizeof(err)),
			RT_ERR_CONFIG);
	CU_ASSERT(contains(err, path));
	fx_done(&f);
}

int
suite_tls(void)
{
	CU_pSuite s = CU_add_suite("tls", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "handshake and data", test_handshake_data) == NULL ||
	    CU_add_test(s, "TLS 1.2 intermediate", test_tls12) == NULL ||
	    CU_add_test(s, "stale error queue", test_stale_error_queue) == NULL ||
	    CU_add_test(s, "client refuses", test_client_refuses) == NULL ||
	    CU_add_test(s, "client refuses TLS 1.1",
			test_client_refuses_tls11) == NULL ||
	    CU_add_test(s, "server refuses", test_server_refuses) == NULL ||
	    CU_add_test(s, "peer identity", test_peer_identity) == NULL ||
	    CU_add_test(s, "peer CN odd", test_peer_cn_odd) == NULL ||
	    CU_add_test(s, "IP literal hosts", test_ip_hosts) == NULL ||
	    CU_add_test(s, "EOF", test_eof) == NULL ||
	    CU_add_test(s, "not TLS", test_garbage) == NULL ||
	    CU_add_test(s, "ctx errors", test_ctx_errors) == NULL ||
	    CU_add_test(s, "ctx versions", test_ctx_versions) == NULL ||
	    CU_add_test(s, "cert file notAfter",
			test_cert_file_not_after) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
