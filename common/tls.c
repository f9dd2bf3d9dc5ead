/*
 * tls.c - TLS contexts and non-blocking connections over OpenSSL 3.0
 * (tls.h).
 *
 * Owns: building an SSL_CTX from a struct tls_config (trust anchors, own
 * chain and key, CRL, versions, cipher and group lists, hardening options),
 * and struct tls_conn, one SSL on one caller-owned non-blocking fd.
 *
 * Policy choices, in one place:
 * - Trust comes only from cfg->ca_file / cfg->ca_dir; the default system
 *   paths are never loaded.
 * - TLS 1.2 is the floor; lower configured minimums are raised. The
 *   maximum is left open (TLS 1.3).
 * - Cipher order: the client chooses (Mozilla guidance); every offered
 *   suite is AEAD with forward secrecy, so no server order is needed.
 *   testssl.sh flags "no cipher order" as HIGH: allowlist cipher_order.
 * - No renegotiation, no compression, no session resumption on the server
 *   (no tickets, no session cache): agents hold one long-lived connection.
 * - Partial writes and moving write buffers (the caller's output buffer
 *   compacts between retries); record buffers released while idle.
 *
 * Error text: every failure of a connection leaves a message in the
 * connection's fixed buffer (tls_error()). Verification failures are caught
 * in the verify callback, which records the first failing certificate
 * (depth, subject, issuer, dates) before OpenSSL reduces it to "certificate
 * verify failed". The OpenSSL error queue is cleared before every SSL call
 * and read right after it, so errors never leak between connections.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "log.h"
#include "tls.h"

#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_GROUPS "X25519:P-256:P-384"
#define TLS_VERIFY_DEPTH 8
#define TLS_ERRLEN 384

struct tls_conn {
	SSL *ssl;
	unsigned int want;	/* TLS_WANT_* of the last RT_ERR_AGAIN */
	int failed;		/* a fatal error happened: no close_notify */
	int shut_sent;		/* close_notify handed to the socket */
	int verify_noted;	/* err holds the first verify failure */
	char err[TLS_ERRLEN];
};

/* Text of an OpenSSL error code; system errors give strerror(). */
static const char *
ossl_reason(unsigned long e)
{
	const char *s;

	if (e == 0)
		return "unknown OpenSSL error";
	if (ERR_SYSTEM_ERROR(e))
		return strerror(ERR_GET_REASON(e));
	s = ERR_reason_error_string(e);
	return s != NULL ? s : "unknown OpenSSL error";
}

/* Writes "what path: reason of the first queued error" into err. */
static int
ctx_fail(char *err, size_t errlen, int r, const char *what, const char *path)
{
	unsigned long e = ERR_peek_error();

	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s%s%s: %s", what,
			 path != NULL ? " " : "", path != NULL ? path : "",
			 ossl_reason(e));
	ERR_clear_error();
	return r;
}

/* Formats an ASN1_TIME as "YYYY-MM-DD HH:MM:SS UTC". */
static void
asn1_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "(invalid time)");
}

/* Seconds since the epoch of t, or -1. */
static long long
asn1_time_epoch(const ASN1_TIME *t)
{
	ASN1_TIME *epoch;
	int days, secs;
	long long r = -1;

	if (t == NULL || (epoch = ASN1_TIME_set(NULL, 0)) == NULL)
		return -1;
	if (ASN1_TIME_diff(&days, &secs, epoch, t) == 1)
		r = (long long)days * 86400 + secs;
	ASN1_TIME_free(epoch);
	return r;
}

/* One-line RFC 2253-style name with control and 8-bit bytes escaped. */
static int
name_str(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b;
	char *p;
	long n;
	int r = 0;

	if (len == 0)
		return RT_ERR_INVAL;
	buf[0] = '\0';
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return RT_ERR_NOMEM;
	if (X509_NAME_print_ex(b, name, 0,
			       XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ) < 0) {
		r = RT_ERR_TLS;
		goto out;
	}
	n = BIO_get_mem_data(b, &p);
	if (n < 0) {
		r = RT_ERR_TLS;
		goto out;
	}
	if ((size_t)n >= len) {
		n = (long)len - 1;
		r = RT_ERR_TOOBIG;
	}
	memcpy(buf, p, (size_t)n);
	buf[n] = '\0';
 out:
	BIO_free(b);
	return r;
}

/*
 * A date check failed: say what this host's clock reads, because a
 * gateway without an RTC boots in 1970 and then every certificate looks
 * "not yet valid". The verdict stands; there is no "ignore time" mode.
 */
static void
clock_note(int e, char *buf, size_t len)
{
	struct tm tm;
	time_t t = time(NULL);
	char s[32];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(s, sizeof(s), "(unknown)");
	snprintf(buf, len, "; local clock %s: clock wrong or certificate %s",
		 s, e == X509_V_ERR_CERT_HAS_EXPIRED ? "expired" :
		 "not yet valid");
}

/*
 * Records the first verification failure of a connection with the
 * certificate it concerns. Never changes the verdict.
 */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl;
	struct tls_conn *c;
	X509 *x;
	int e, depth;
	char subj[128], iss[128], when[40], now[96];
	const char *date = "";

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (c = SSL_get_app_data(ssl)) == NULL ||
	    c->verify_noted)
		return ok;
	e = X509_STORE_CTX_get_error(xs);
	depth = X509_STORE_CTX_get_error_depth(xs);
	x = X509_STORE_CTX_get_current_cert(xs);
	subj[0] = iss[0] = when[0] = now[0] = '\0';
	if (x != NULL) {
		(void)name_str(X509_get_subject_name(x), subj, sizeof(subj));
		(void)name_str(X509_get_issuer_name(x), iss, sizeof(iss));
		if (e == X509_V_ERR_CERT_HAS_EXPIRED) {
			date = ", notAfter ";
			asn1_time_str(X509_get0_notAfter(x), when,
				      sizeof(when));
		} else if (e == X509_V_ERR_CERT_NOT_YET_VALID) {
			date = ", notBefore ";
			asn1_time_str(X509_get0_notBefore(x), when,
				      sizeof(when));
		}
		if (date[0] != '\0')
			clock_note(e, now, sizeof(now));
	}
	snprintf(c->err, sizeof(c->err),
		 "%s (depth %d, subject \"%s\", issuer \"%s\"%s%s%s)",
		 X509_verify_cert_error_string(e), depth, subj, iss, date,
		 when, now);
	c->verify_noted = 1;
	return ok;
}

static int
load_crl(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509_CRL *crl;
	BIO *b;
	unsigned long e;
	int n = 0, r = 0;

	if ((b = BIO_new_file(path, "r")) == NULL)
		return ctx_fail(err, errlen, RT_ERR_CONFIG, "CRL file", path);
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_crl(store, crl) != 1) {
			X509_CRL_free(crl);
			r = ctx_fail(err, errlen, RT_ERR_TLS, "CRL file", path);
			goto out;
		}
		X509_CRL_free(crl);
		n++;
	}
	/* Reading ends with "no start line" at the end of the file: normal
	 * after at least one CRL, "no CRL found" before; other errors are
	 * real (bad base64, bad DER). */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
		ERR_clear_error();
	if (ERR_peek_error() != 0) {
		r = ctx_fail(err, errlen, RT_ERR_CONFIG, "CRL file", path);
		goto out;
	}
	if (n == 0) {
		snprintf(err, errlen, "CRL file %s: no CRL found", path);
		r = RT_ERR_CONFIG;
		goto out;
	}
	X509_STORE_set_flags(store,
	    X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
 out:
	BIO_free(b);
	return r;
}

static int
load_trust(SSL_CTX *ctx, const struct tls_config *cfg, int is_server,
	   char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *names;

	if (cfg->ca_file != NULL &&
	    SSL_CTX_load_verify_file(ctx, cfg->ca_file) != 1)
		return ctx_fail(err, errlen, RT_ERR_CONFIG, "CA file",
				cfg->ca_file);
	if (cfg->ca_dir != NULL &&
	    SSL_CTX_load_verify_dir(ctx, cfg->ca_dir) != 1)
		return ctx_fail(err, errlen, RT_ERR_CONFIG, "CA directory",
				cfg->ca_dir);
	/* Tell clients which CAs we accept (CertificateRequest). */
	if (is_server && cfg->require_peer_cert && cfg->ca_file != NULL) {
		if ((names = SSL_load_client_CA_file(cfg->ca_file)) == NULL)
			return ctx_fail(err, errlen, RT_ERR_CONFIG,
					"CA file", cfg->ca_file);
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	return 0;
}

static int
load_identity(SSL_CTX *ctx, const struct tls_config *cfg, char *err,
	      size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1)
		return ctx_fail(err, errlen, RT_ERR_CONFIG,
				"certificate file", cfg->cert_file);
	/* Loading the key checks it against the certificate already set. */
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file,
					SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		unsigned long e = ERR_peek_error();

		snprintf(err, errlen, "key file %s (for certificate %s): %s",
			 cfg->key_file, cfg->cert_file, ossl_reason(e));
		ERR_clear_error();
		return RT_ERR_CONFIG;
	}
	return 0;
}

int
tls_ctx_new(const struct tls_config *cfg, int is_server, SSL_CTX **out,
	    char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	const char *ciphers, *groups;
	int minv, mode, r;

	if (out != NULL)
		*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (cfg == NULL || out == NULL || err == NULL || errlen == 0)
		return RT_ERR_INVAL;
	ERR_clear_error();

	minv = cfg->min_version;
	if (minv > TLS1_3_VERSION) {
		snprintf(err, errlen, "min_version 0x%x: unknown TLS version",
			 (unsigned int)minv);
		return RT_ERR_CONFIG;
	}
	if (minv < TLS1_2_VERSION)
		minv = TLS1_2_VERSION;
	if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
		snprintf(err, errlen, "%s given without %s",
			 cfg->cert_file != NULL ? "certificate" : "key",
			 cfg->cert_file != NULL ? "key" : "certificate");
		return RT_ERR_CONFIG;
	}
	if (is_server && cfg->cert_file == NULL) {
		snprintf(err, errlen, "a TLS server needs a certificate");
		return RT_ERR_CONFIG;
	}
	if ((!is_server || cfg->require_peer_cert) &&
	    cfg->ca_file == NULL && cfg->ca_dir == NULL) {
		snprintf(err, errlen, "no CA file or directory to verify "
			 "the peer with");
		return RT_ERR_CONFIG;
	}

	ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL) {
		r = ctx_fail(err, errlen, RT_ERR_NOMEM, "SSL_CTX_new", NULL);
		goto out;
	}
	if (SSL_CTX_set_min_proto_version(ctx, minv) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, 0) != 1) {
		r = ctx_fail(err, errlen, RT_ERR_TLS, "protocol versions",
			     NULL);
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* RELEASE_BUFFERS: an idle relay holds thousands of agents; their
	 * ~50 KiB of record buffers each are freed while nothing flows. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (is_server) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}

	ciphers = cfg->ciphers != NULL ? cfg->ciphers : TLS_DEFAULT_CIPHERS;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		r = ctx_fail(err, errlen, RT_ERR_CONFIG, "ciphers", ciphers);
		goto out;
	}
	if (cfg->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1) {
		r = ctx_fail(err, errlen, RT_ERR_CONFIG, "ciphersuites",
			     cfg->ciphersuites);
		goto out;
	}
	groups = cfg->groups != NULL ? cfg->groups : TLS_DEFAULT_GROUPS;
	if (SSL_CTX_set1_groups_list(ctx, groups) != 1) {
		r = ctx_fail(err, errlen, RT_ERR_CONFIG, "groups", groups);
		goto out;
	}

	if ((r = load_trust(ctx, cfg, is_server, err, errlen)) != 0)
		goto out;
	if (cfg->crl_file != NULL &&
	    (r = load_crl(ctx, cfg->crl_file, err, errlen)) != 0)
		goto out;
	if (cfg->cert_file != NULL &&
	    (r = load_identity(ctx, cfg, err, errlen)) != 0)
		goto out;

	if (is_server)
		mode = cfg->require_peer_cert ?
		    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT :
		    SSL_VERIFY_NONE;
	else
		mode = SSL_VERIFY_PEER;
	SSL_CTX_set_verify(ctx, mode, verify_cb);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);

	*out = ctx;
	ctx = NULL;
	r = 0;
 out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

void
tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

int
tls_conn_new(SSL_CTX *ctx, int fd, int is_server, const char *host,
	     struct tls_conn **out)
{
	struct tls_conn *c = NULL;
	unsigned char ip[16];
	int r, is_ip;

	if (out != NULL)
		*out = NULL;
	if (ctx == NULL || fd < 0 || out == NULL)
		return RT_ERR_INVAL;
	if (!is_server && (host == NULL || *host == '\0'))
		return RT_ERR_INVAL;
	ERR_clear_error();
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RT_ERR_NOMEM;
	if ((c->ssl = SSL_new(ctx)) == NULL) {
		r = RT_ERR_NOMEM;
		goto out;
	}
	SSL_set_app_data(c->ssl, c);
	if (SSL_set_fd(c->ssl, fd) != 1) {
		r = RT_ERR_TLS;
		goto out;
	}
	if (is_server) {
		SSL_set_accept_state(c->ssl);
	} else {
		is_ip = inet_pton(AF_INET, host, ip) == 1 ||
		    inet_pton(AF_INET6, host, ip) == 1;
		if (is_ip) {
			/* No SNI for addresses (RFC 6066 section 3). */
			if (X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(c->ssl), host) != 1) {
				r = RT_ERR_TLS;
				goto out;
			}
		} else {
			SSL_set_hostflags(c->ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(c->ssl, host) != 1 ||
			    SSL_set_tlsext_host_name(c->ssl, host) != 1) {
				r = RT_ERR_INVAL;
				goto out;
			}
		}
		SSL_set_connect_state(c->ssl);
	}
	snprintf(c->err, sizeof(c->err), "no error");
	*out = c;
	c = NULL;
	r = 0;
 out:
	if (c != NULL) {
		SSL_free(c->ssl);
		free(c);
	}
	ERR_clear_error();
	return r;
}

void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c);
}

/*
 * Turns the result ret of an SSL I/O call into an RT_ERR_* code, records
 * the wanted direction or the reason, and clears the error queue. errno
 * must still hold the value the call left.
 */
static int
conn_result(struct tls_conn *c, int ret)
{
	int saved_errno = errno;
	int e = SSL_get_error(c->ssl, ret);
	unsigned long qe = ERR_peek_error();
	long vr;
	int r;

	c->want = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->want = TLS_WANT_READ;
		return RT_ERR_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want = TLS_WANT_WRITE;
		return RT_ERR_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(c->err, sizeof(c->err), "peer sent close_notify");
		r = RT_ERR_EOF;
		break;
	case SSL_ERROR_SYSCALL:
		if (qe != 0)
			goto ssl_error;
		if (saved_errno == 0) {
			snprintf(c->err, sizeof(c->err),
				 "unexpected EOF from peer");
			r = RT_ERR_EOF;
		} else {
			snprintf(c->err, sizeof(c->err), "%s",
				 strerror(saved_errno));
			r = RT_ERR_SYS;
		}
		break;
	default:
 ssl_error:
		vr = SSL_get_verify_result(c->ssl);
		if (vr != X509_V_OK) {
			if (!c->verify_noted)
				snprintf(c->err, sizeof(c->err), "%s",
					 X509_verify_cert_error_string(vr));
			r = RT_ERR_VERIFY;
		} else if (ERR_GET_LIB(qe) == ERR_LIB_SSL &&
		    ERR_GET_REASON(qe) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
			snprintf(c->err, sizeof(c->err), "%s",
				 ossl_reason(qe));
			r = RT_ERR_VERIFY;
		} else if (ERR_GET_LIB(qe) == ERR_LIB_SSL &&
		    ERR_GET_REASON(qe) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			snprintf(c->err, sizeof(c->err),
				 "unexpected EOF from peer");
			r = RT_ERR_EOF;
		} else {
			snprintf(c->err, sizeof(c->err), "%s",
				 ossl_reason(qe));
			r = RT_ERR_TLS;
		}
		break;
	}
	c->failed = 1;
	ERR_clear_error();
	errno = saved_errno;
	return r;
}

int
tls_handshake(struct tls_conn *c)
{
	int ret;

	if (c == NULL)
		return RT_ERR_INVAL;
	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1) {
		c->want = 0;
		log_debug("handshake done: %s %s", SSL_get_version(c->ssl),
			  SSL_get_cipher_name(c->ssl));
		return 0;
	}
	return conn_result(c, ret);
}

ssize_t
tls_read(struct tls_conn *c, void *buf, size_t len)
{
	size_t n = 0;

	if (c == NULL || buf == NULL)
		return RT_ERR_INVAL;
	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	ERR_clear_error();
	errno = 0;
	if (SSL_read_ex(c->ssl, buf, len, &n) == 1) {
		c->want = 0;
		return (ssize_t)n;
	}
	return conn_result(c, 0);
}

ssize_t
tls_write(struct tls_conn *c, const void *buf, size_t len)
{
	size_t n = 0;

	if (c == NULL || buf == NULL)
		return RT_ERR_INVAL;
	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(c->ssl, buf, len, &n) == 1) {
		c->want = 0;
		return (ssize_t)n;
	}
	return conn_result(c, 0);
}

unsigned int
tls_want(const struct tls_conn *c)
{
	return c != NULL ? c->want : 0;
}

int
tls_pending(const struct tls_conn *c)
{
	return c != NULL ? SSL_pending(c->ssl) : 0;
}

int
tls_shutdown(struct tls_conn *c)
{
	int ret, e;

	/* After a fatal error or before the handshake, there is no session
	 * to close; OpenSSL forbids SSL_shutdown() then. */
	if (c == NULL || c->failed || c->shut_sent ||
	    !SSL_is_init_finished(c->ssl))
		return 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_shutdown(c->ssl);
	if (ret < 0) {
		e = SSL_get_error(c->ssl, ret);
		if (e == SSL_ERROR_WANT_WRITE) {
			c->want = TLS_WANT_WRITE;
			ERR_clear_error();
			return RT_ERR_AGAIN;
		}
		/* WANT_READ means ours is out and it waits for the peer's:
		 * we do not wait. Anything else: best effort, give up. */
	}
	c->shut_sent = 1;
	c->want = 0;
	ERR_clear_error();
	return 0;
}

const char *
tls_error(const struct tls_conn *c)
{
	if (c == NULL)
		return "no connection";
	return c->err;
}

const char *
tls_version(const struct tls_conn *c)
{
	if (c == NULL || !SSL_is_init_finished(c->ssl))
		return "";
	return SSL_get_version(c->ssl);
}

const char *
tls_cipher(const struct tls_conn *c)
{
	const SSL_CIPHER *ci;

	if (c == NULL || (ci = SSL_get_current_cipher(c->ssl)) == NULL)
		return "";
	return SSL_CIPHER_get_name(ci);
}

int
tls_peer_cn(const struct tls_conn *c, char *buf, size_t len)
{
	const X509_NAME *name;
	X509 *x;
	ASN1_STRING *data;
	unsigned char *u = NULL;
	int i, n, r;

	if (buf == NULL || len == 0)
		return RT_ERR_INVAL;
	buf[0] = '\0';
	if (c == NULL || (x = SSL_get0_peer_certificate(c->ssl)) == NULL)
		return RT_ERR_NOTFOUND;
	name = X509_get_subject_name(x);
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0)
		return RT_ERR_NOTFOUND;
	/* Two CNs make the identity ambiguous. */
	if (X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return RT_ERR_INVAL;
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	if ((n = ASN1_STRING_to_UTF8(&u, data)) < 0)
		return RT_ERR_INVAL;
	if (n == 0 || memchr(u, '\0', (size_t)n) != NULL ||
	    (size_t)n >= len) {
		r = RT_ERR_INVAL;
		goto out;
	}
	memcpy(buf, u, (size_t)n);
	buf[n] = '\0';
	r = 0;
 out:
	OPENSSL_free(u);
	return r;
}

int
tls_peer_subject(const struct tls_conn *c, char *buf, size_t len)
{
	X509 *x;

	if (buf == NULL || len == 0)
		return RT_ERR_INVAL;
	buf[0] = '\0';
	if (c == NULL || (x = SSL_get0_peer_certificate(c->ssl)) == NULL)
		return RT_ERR_NOTFOUND;
	return name_str(X509_get_subject_name(x), buf, len);
}

int
tls_peer_fingerprint(const struct tls_conn *c, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509 *x;
	char *p;

	if (buf == NULL || len == 0)
		return RT_ERR_INVAL;
	buf[0] = '\0';
	if (c == NULL || (x = SSL_get0_peer_certificate(c->ssl)) == NULL)
		return RT_ERR_NOTFOUND;
	if (X509_digest(x, EVP_sha256(), md, &n) != 1) {
		ERR_clear_error();
		return RT_ERR_TLS;
	}
	if (len < sizeof("SHA256:") + 2 * (size_t)n)
		return RT_ERR_INVAL;
	p = buf + snprintf(buf, len, "SHA256:");
	for (unsigned int i = 0; i < n; i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 0xf];
	}
	*p = '\0';
	return 0;
}

long long
tls_peer_not_after(const struct tls_conn *c)
{
	X509 *x;

	if (c == NULL || (x = SSL_get0_peer_certificate(c->ssl)) == NULL)
		return -1;
	return asn1_time_epoch(X509_get0_notAfter(x));
}

int
tls_cert_file_not_after(const char *path, long long *not_after, char *err,
			size_t errlen)
{
	X509 *x = NULL;
	BIO *b = NULL;
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL || not_after == NULL || err == NULL || errlen == 0)
		return RT_ERR_INVAL;
	*not_after = -1;
	ERR_clear_error();
	if ((b = BIO_new_file(path, "r")) == NULL ||
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		r = ctx_fail(err, errlen, RT_ERR_CONFIG, "certificate file",
			     path);
		goto out;
	}
	if ((*not_after = asn1_time_epoch(X509_get0_notAfter(x))) < 0) {
		snprintf(err, errlen, "certificate file %s: bad notAfter",
			 path);
		r = RT_ERR_CONFIG;
		goto out;
	}
	r = 0;
 out:
	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

void
tls_cert_expiry_log(const char *path, const char *consequence)
{
	long long na, left;
	char err[256], date[40];
	struct tm tm;
	time_t t;

	if (tls_cert_file_not_after(path, &na, err, sizeof(err)) < 0)
		return;
	t = (time_t)na;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(date, sizeof(date), "(unknown date)");
	left = na - (long long)time(NULL);
	if (left < 0)
		log_err("certificate %s expired on %s: %s", path, date,
		    consequence);
	else if (left < 30LL * 86400)
		log_warn("certificate %s expires in %lld days, on %s: renew "
		    "it before then, or %s", path, left / 86400, date,
		    consequence);
}
