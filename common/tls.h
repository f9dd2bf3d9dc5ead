/*
 * tls.h - TLS over OpenSSL for non-blocking sockets.
 *
 * Contexts are built from a struct tls_config (both daemons fill it from
 * their config files): CA file or directory (the only trust anchors; the
 * system store is never used), own certificate and key, CRL, minimum
 * protocol version (TLS 1.2 is the floor whatever the config says), cipher
 * lists (Mozilla "intermediate" by default), renegotiation and compression
 * off. A client context always verifies the server chain and the host name
 * given to tls_conn_new(); a server context can require a client
 * certificate.
 *
 * A struct tls_conn wraps one SSL on one non-blocking fd (it does not own
 * the fd). Handshake, read and write return RT_ERR_AGAIN when the socket
 * is not ready and record which direction the library is waiting for in
 * tls_want(); the caller's loop must ask for those events (a read can need
 * the socket writable and a write can need it readable). After a read,
 * call again while tls_pending() is non-zero: OpenSSL may hold decrypted
 * bytes the socket will never signal. ERR_clear_error() is called before
 * every SSL call, so one connection's failure never leaks into another's.
 *
 * Fixed choices (see tls.c): the client picks the cipher (no server
 * preference; all offered suites are AEAD + ECDHE), servers issue no
 * session tickets and keep no session cache, renegotiation and compression
 * are off, partial writes and moving write buffers are allowed, and idle
 * connections release OpenSSL's record buffers.
 */
#ifndef RT_TLS_H
#define RT_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>

struct tls_conn;

struct tls_config {
	const char *ca_file;	/* PEM bundle of trusted CAs */
	const char *ca_dir;	/* or a hashed directory (c_rehash) */
	const char *cert_file;	/* own certificate chain (PEM), optional */
	const char *key_file;	/* own private key (PEM) */
	const char *crl_file;	/* PEM CRL(s); checked for the whole chain */
	int min_version;	/* TLS1_2_VERSION (default when 0) or TLS1_3_VERSION */
	const char *ciphers;	/* TLS 1.2 list; NULL = Mozilla intermediate */
	const char *ciphersuites; /* TLS 1.3 list; NULL = OpenSSL default */
	const char *groups;	/* NULL = "X25519:P-256:P-384" */
	int require_peer_cert;	/* server: client must present a valid cert */
};

/* Bits returned by tls_want(). Same values as LOOP_READ / LOOP_WRITE. */
#define TLS_WANT_READ  0x1u
#define TLS_WANT_WRITE 0x2u

/*
 * Builds an SSL_CTX for a client (is_server 0) or server into *out (NULL on
 * failure). Checks that the key matches the certificate and that the CA
 * and CRL material loads. A client always needs ca_file or ca_dir; so does
 * a server with require_peer_cert; a server always needs cert_file and
 * key_file. min_version below TLS1_2_VERSION is raised to it; above
 * TLS1_3_VERSION is RT_ERR_CONFIG. A CRL turns on CRL checking for every
 * certificate of the chain (a CA without a CRL then fails verification).
 * On failure returns RT_ERR_CONFIG (bad or unreadable input), RT_ERR_TLS,
 * RT_ERR_NOMEM or RT_ERR_INVAL (NULL argument) and writes a message naming
 * the file and the OpenSSL reason into err, e.g. "key file k.pem (for
 * certificate c.pem): key values mismatch".
 */
int tls_ctx_new(const struct tls_config *cfg, int is_server, SSL_CTX **out,
		char *err, size_t errlen);

/* Frees a context (connections made from it keep their reference). */
void tls_ctx_free(SSL_CTX *ctx);

/*
 * Wraps fd. Client: host (a DNS name or an IPv4 / IPv6 literal without
 * brackets) must match the server certificate (DNS names against DNS SANs,
 * literals against IP SANs) and is sent as SNI for names only; NULL or ""
 * is refused (RT_ERR_INVAL) because a client always checks the name.
 * Server: host is ignored. Returns 0 and *out, or RT_ERR_INVAL /
 * RT_ERR_NOMEM / RT_ERR_TLS.
 */
int tls_conn_new(SSL_CTX *ctx, int fd, int is_server, const char *host,
		 struct tls_conn **out);

/* Frees the connection (no close_notify; see tls_shutdown). NULL ok. */
void tls_conn_free(struct tls_conn *c);

/*
 * Advances the handshake. Returns 0 when complete, RT_ERR_AGAIN (see
 * tls_want), RT_ERR_VERIFY when this side refused the peer's certificate or
 * name (or a required client certificate was missing), RT_ERR_EOF if the
 * peer closed, RT_ERR_SYS (errno set), or RT_ERR_TLS (including an alert
 * from a peer that refused us). tls_error() says why. A TLS 1.3 client
 * finishes before the server has checked its certificate: a refusal then
 * shows up as an error on the client's first read.
 */
int tls_handshake(struct tls_conn *c);

/*
 * Reads up to len decrypted bytes. Returns the count (> 0; 0 only when len
 * is 0), RT_ERR_EOF on close_notify or TCP EOF, RT_ERR_AGAIN, or
 * RT_ERR_TLS / RT_ERR_SYS.
 */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);

/*
 * Writes up to len bytes (partial writes allowed; a retry after
 * RT_ERR_AGAIN may use a different buffer address, but must offer the same
 * first bytes). Returns the count accepted (> 0; 0 only when len is 0),
 * RT_ERR_AGAIN, or RT_ERR_TLS / RT_ERR_SYS / RT_ERR_EOF.
 */
ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len);

/* Directions the last RT_ERR_AGAIN waits for (TLS_WANT_*), 0 if none. */
unsigned int tls_want(const struct tls_conn *c);

/* Decrypted bytes buffered inside OpenSSL, readable without the socket. */
int tls_pending(const struct tls_conn *c);

/*
 * Sends close_notify once without waiting for the peer's; returns 0 or
 * RT_ERR_AGAIN (socket full: call again when writable). Best effort: does
 * nothing before the handshake finished or after a fatal error.
 */
int tls_shutdown(struct tls_conn *c);

/*
 * The reason of the last failure ("no error" before one): OpenSSL's reason
 * text ("unsupported protocol", "tlsv1 alert protocol version", ...) or the
 * verify result with the certificate it concerns, e.g. "certificate has
 * expired (depth 0, subject "CN=gw-17", issuer "CN=CA", notAfter
 * 2020-02-01 00:00:00 UTC)". Never NULL; valid until the next call on c.
 */
const char *tls_error(const struct tls_conn *c);

/* Negotiated version ("TLSv1.3") and cipher; "" before the handshake. */
const char *tls_version(const struct tls_conn *c);
const char *tls_cipher(const struct tls_conn *c);

/*
 * Peer certificate's subject CN (UTF-8) into buf (NUL-terminated; "" on
 * failure). Returns 0, RT_ERR_NOTFOUND (no certificate or no CN), or
 * RT_ERR_INVAL when the subject has more than one CN, or the CN is empty,
 * longer than len - 1 or contains a NUL byte.
 */
int tls_peer_cn(const struct tls_conn *c, char *buf, size_t len);

/*
 * One-line subject of the peer certificate ("CN=gw-17, O=Plant"), control
 * and non-ASCII bytes escaped, for logs. Returns 0, RT_ERR_NOTFOUND (no
 * certificate), or RT_ERR_TOOBIG (buf holds the truncated text).
 */
int tls_peer_subject(const struct tls_conn *c, char *buf, size_t len);

/*
 * "SHA256:" + 64 lowercase hex digits of the DER peer certificate. Returns
 * 0, RT_ERR_NOTFOUND (no certificate) or RT_ERR_INVAL (len < 72).
 */
int tls_peer_fingerprint(const struct tls_conn *c, char *buf, size_t len);

/* Peer certificate's notAfter as seconds since the epoch, or -1. */
long long tls_peer_not_after(const struct tls_conn *c);

/*
 * Reads the certificate in path and stores its notAfter (seconds since
 * the epoch) in *not_after. For the start-up "certificate expires in N
 * days" warning. Returns 0 or RT_ERR_CONFIG with err filled.
 */
int tls_cert_file_not_after(const char *path, long long *not_after,
			    char *err, size_t errlen);

/*
 * Start-up check of a program's own certificate: an error once it has
 * expired, a warning within 30 days of its notAfter, each saying the date
 * and what follows (e.g. "agents will refuse this relay"). Silent when the
 * file cannot be read: the TLS setup reports that.
 */
void tls_cert_expiry_log(const char *path, const char *consequence);

#endif
