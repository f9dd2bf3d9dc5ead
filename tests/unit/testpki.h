/*
 * testpki.h - an in-process test PKI for the unit tests.
 *
 * Makes EC P-256 keys, self-signed CAs, certificates issued by a CA (CN,
 * optional subjectAltName list, validity relative to now, server / client /
 * CA usage) and CRLs, all with the OpenSSL API and in memory; then writes
 * them as PEM files into a test directory (private keys mode 0600). Fast
 * enough to build a fresh PKI in every test.
 */
#ifndef RT_TESTPKI_H
#define RT_TESTPKI_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A key and its certificate. Either may be NULL in a hand-made pair. */
struct testpki_cert {
	EVP_PKEY *key;
	X509 *cert;
};

enum testpki_usage {
	TESTPKI_SERVER,		/* EKU serverAuth, for relay / broker */
	TESTPKI_CLIENT,		/* EKU clientAuth, for agents */
	TESTPKI_CA,		/* CA:TRUE, keyCertSign + cRLSign */
};

#define TESTPKI_DAY 86400L

struct testpki_opts {
	const char *cn;		/* subject CN; NULL = none */
	X509_NAME *subject;	/* whole subject instead of cn; NULL = use cn */
	const char *san;	/* "DNS:localhost,IP:127.0.0.1"; NULL = none */
	long not_before;	/* seconds relative to now (negative = past) */
	long not_after;		/* both 0: valid from now - 1 h for 30 days */
	enum testpki_usage usage;
};

/*
 * Makes a fresh key and a certificate for it, signed by issuer (NULL =
 * self-signed). Returns 0 and *out, or -1 (OpenSSL's error queue says
 * why). Free with testpki_free().
 */
int testpki_issue(const struct testpki_cert *issuer,
		  const struct testpki_opts *opts, struct testpki_cert **out);

/* Shorthand: a self-signed CA named cn, valid from now - 1 h for 30 days. */
int testpki_ca(const char *cn, struct testpki_cert **out);

/* Frees a pair made by testpki_issue(). NULL ok. */
void testpki_free(struct testpki_cert *c);

/*
 * Makes a CRL signed by ca (valid from now - 1 h for 30 days) revoking the
 * n certificates in revoked (n may be 0). Returns 0 and *out, or -1. Free
 * with X509_CRL_free().
 */
int testpki_crl(const struct testpki_cert *ca, X509 *const *revoked,
		size_t n, X509_CRL **out);

/*
 * Writes c->cert to "<dir>/<name>.crt" and c->key to "<dir>/<name>.key"
 * (mode 0600), each only when set; existing files are replaced. Returns 0
 * or -1.
 */
int testpki_write(const struct testpki_cert *c, const char *dir,
		  const char *name);

/* Appends c->cert to "<dir>/<name>.crt" (a CA bundle). Returns 0 or -1. */
int testpki_append(const struct testpki_cert *c, const char *dir,
		   const char *name);

/* Writes crl as PEM to "<dir>/<name>.crl". Returns 0 or -1. */
int testpki_write_crl(X509_CRL *crl, const char *dir, const char *name);

/* Formats "<dir>/<name><ext>" into buf (for tls_config paths). Returns buf;
 * aborts the test program if it does not fit (a test bug). */
char *testpki_path(char *buf, size_t len, const char *dir, const char *name,
		   const char *ext);

#endif
