/*
 * testpki.c - in-process test PKI: keys, certificates, CRLs and their PEM
 * files (testpki.h). Test support only; never linked into the daemons.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "testpki.h"

#define DEFAULT_BEFORE (-3600L)
#define DEFAULT_AFTER (30 * TESTPKI_DAY)

/* A random positive 63-bit serial, so CRLs can tell certificates apart. */
static int
set_serial(X509 *x)
{
	unsigned char b[8];
	BIGNUM *bn;
	int r = -1;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] = (b[0] & 0x7f) | 0x40;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		return -1;
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		r = 0;
	BN_free(bn);
	return r;
}

static int
add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ex;
	int r;

	if ((ex = X509V3_EXT_conf_nid(NULL, v3, nid, value)) == NULL)
		return -1;
	r = X509_add_ext(x, ex, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ex);
	return r;
}

static int
add_usage(X509 *x, X509V3_CTX *v3, const struct testpki_opts *o,
	  int self_signed)
{
	if (add_ext(x, v3, NID_subject_key_identifier, "hash") != 0)
		return -1;
	if (!self_signed &&
	    add_ext(x, v3, NID_authority_key_identifier, "keyid:always") != 0)
		return -1;
	switch (o->usage) {
	case TESTPKI_CA:
		if (add_ext(x, v3, NID_basic_constraints, "critical,CA:TRUE") ||
		    add_ext(x, v3, NID_key_usage,
			    "critical,keyCertSign,cRLSign"))
			return -1;
		break;
	case TESTPKI_SERVER:
	case TESTPKI_CLIENT:
		if (add_ext(x, v3, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(x, v3, NID_key_usage, "critical,digitalSignature") ||
		    add_ext(x, v3, NID_ext_key_usage,
			    o->usage == TESTPKI_SERVER ? "serverAuth" :
			    "clientAuth"))
			return -1;
		break;
	default:
		return -1;
	}
	if (o->san != NULL &&
	    add_ext(x, v3, NID_subject_alt_name, o->san) != 0)
		return -1;
	return 0;
}

static int
set_subject(X509 *x, const struct testpki_opts *o)
{
	X509_NAME *name;
	int r = -1;

	if (o->subject != NULL)
		return X509_set_subject_name(x, o->subject) == 1 ? 0 : -1;
	if ((name = X509_NAME_new()) == NULL)
		return -1;
	if (o->cn != NULL && X509_NAME_add_entry_by_NID(name, NID_commonName,
	    MBSTRING_UTF8, (const unsigned char *)o->cn, -1, -1, 0) != 1)
		goto out;
	if (X509_set_subject_name(x, name) == 1)
		r = 0;
 out:
	X509_NAME_free(name);
	return r;
}

int
testpki_issue(const struct testpki_cert *issuer,
	      const struct testpki_opts *o, struct testpki_cert **out)
{
	struct testpki_cert *c;
	X509V3_CTX v3;
	long nb = o->not_before, na = o->not_after;
	EVP_PKEY *sign_key;
	X509 *x;

	*out = NULL;
	if (nb == 0 && na == 0) {
		nb = DEFAULT_BEFORE;
		na = DEFAULT_AFTER;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((c->key = EVP_EC_gen("P-256")) == NULL ||
	    (c->cert = x = X509_new()) == NULL)
		goto fail;
	if (X509_set_version(x, 2) != 1 || set_serial(x) != 0 ||
	    set_subject(x, o) != 0 ||
	    X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer->cert) :
	    X509_get_subject_name(x)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), nb) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), na) == NULL ||
	    X509_set_pubkey(x, c->key) != 1)
		goto fail;
	X509V3_set_ctx(&v3, issuer != NULL ? issuer->cert : x, x, NULL, NULL,
		       0);
	if (add_usage(x, &v3, o, issuer == NULL) != 0)
		goto fail;
	sign_key = issuer != NULL ? issuer->key : c->key;
	if (X509_sign(x, sign_key, EVP_sha256()) <= 0)
		goto fail;
	*out = c;
	return 0;
 fail:
	testpki_free(c);
	return -1;
}

int
testpki_ca(const char *cn, struct testpki_cert **out)
{
	struct testpki_opts o = { .cn = cn, .usage = TESTPKI_CA };

	return testpki_issue(NULL, &o, out);
}

void
testpki_free(struct testpki_cert *c)
{
	if (c == NULL)
		return;
	EVP_PKEY_free(c->key);
	X509_free(c->cert);
	free(c);
}

int
testpki_crl(const struct testpki_cert *ca, X509 *const *revoked, size_t n,
	    X509_CRL **out)
{
	X509_CRL *crl;
	X509_REVOKED *rv;
	ASN1_TIME *last = NULL, *next = NULL;

	*out = NULL;
	if ((crl = X509_CRL_new()) == NULL)
		return -1;
	if ((last = X509_gmtime_adj(NULL, DEFAULT_BEFORE)) == NULL ||
	    (next = X509_gmtime_adj(NULL, DEFAULT_AFTER)) == NULL ||
	    X509_CRL_set_version(crl, 1) != 1 ||
	    X509_CRL_set_issuer_name(crl,
	    X509_get_subject_name(ca->cert)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, last) != 1 ||
	    X509_CRL_set1_nextUpdate(crl, next) != 1)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((rv = X509_REVOKED_new()) == NULL)
			goto fail;
		if (X509_REVOKED_set_serialNumber(rv,
		    X509_get_serialNumber(revoked[i])) != 1 ||
		    X509_REVOKED_set_revocationDate(rv, last) != 1 ||
		    X509_CRL_add0_revoked(crl, rv) != 1) {
			X509_REVOKED_free(rv);
			goto fail;
		}
	}
	if (X509_CRL_sort(crl) != 1 ||
	    X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0)
		goto fail;
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	*out = crl;
	return 0;
 fail:
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return -1;
}

char *
testpki_path(char *buf, size_t len, const char *dir, const char *name,
	     const char *ext)
{
	int n = snprintf(buf, len, "%s/%s%s", dir, name, ext);

	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "testpki_path: %s/%s%s too long\n", dir, name,
			ext);
		abort();
	}
	return buf;
}

/* Opens path for writing with mode (also when it already exists). */
static FILE *
open_mode(const char *path, int append, mode_t mode)
{
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC |
		  (append ? O_APPEND : O_TRUNC), mode);
	if (fd < 0)
		return NULL;
	if (fchmod(fd, mode) != 0 || (f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return NULL;
	}
	return f;
}

static int
write_cert(X509 *x, const char *dir, const char *name, int append)
{
	char path[4096];
	FILE *f;
	int r;

	testpki_path(path, sizeof(path), dir, name, ".crt");
	if ((f = open_mode(path, append, 0644)) == NULL)
		return -1;
	r = PEM_write_X509(f, x) == 1 ? 0 : -1;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

int
testpki_write(const struct testpki_cert *c, const char *dir,
	      const char *name)
{
	char path[4096];
	FILE *f;
	int r;

	if (c->cert != NULL && write_cert(c->cert, dir, name, 0) != 0)
		return -1;
	if (c->key == NULL)
		return 0;
	testpki_path(path, sizeof(path), dir, name, ".key");
	if ((f = open_mode(path, 0, 0600)) == NULL)
		return -1;
	r = PEM_write_PrivateKey(f, c->key, NULL, NULL, 0, NULL, NULL) == 1 ?
	    0 : -1;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

int
testpki_append(const struct testpki_cert *c, const char *dir,
	       const char *name)
{
	return write_cert(c->cert, dir, name, 1);
}

int
testpki_write_crl(X509_CRL *crl, const char *dir, const char *name)
{
	char path[4096];
	FILE *f;
	int r;

	testpki_path(path, sizeof(path), dir, name, ".crl");
	if ((f = open_mode(path, 0, 0644)) == NULL)
		return -1;
	r = PEM_write_X509_CRL(f, crl) == 1 ? 0 : -1;
	if (fclose(f) != 0)
		r = -1;
	return r;
}
