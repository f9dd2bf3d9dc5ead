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
 * Builds an SSL_CTX for a client (is_server 0) or server. Checks that the
 * key matches the certificate and that the CA material loads. On failure
 * returns RT_ERR_TLS / RT_ERR_CONFIG / RT_ERR_INVAL and writes a message
 * naming the file and the OpenSSL reason into err.
 */
int tls_ctx_new(const struct tls_config *cfg, int is_server, SSL_CTX **out,
		char *err, size_t errlen);

/* Frees a context (connections made from it keep their reference). */
void tls_ctx_free(SSL_CTX *ctx);

/*
 * Wraps fd. Client: host (a DNS name or an IP literal) is sent as SNI
 * (names only) and must match the server certificate; NULL is refused
 * (RT_ERR_INVAL) because a client always checks the name. Server: host is
 * ignored. Returns 0 and *out, or RT_ERR_NOMEM / RT_ERR_TLS.
 */
int tls_conn_new(SSL_CTX *ctx, int fd, int is_server, const char *host,
		 struct tls_conn **out);

/* Frees the connection (no close_notify; see tls_shutdown). NULL ok. */
void tls_conn_free(struct tls_conn *c);

/*
 * Advances the handshake. Returns 0 when complete, RT_ERR_AGAIN (see
 * tls_want), RT_ERR_VERIFY when the peer's certificate or name was refused,
 * RT_ERR_EOF if the peer closed, or RT_ERR_TLS. tls_error() says why.
 */
int tls_handshake(struct tls_conn *c);

/*
 * Reads up to len decrypted bytes. Returns the count (> 0), RT_ERR_EOF on
 * close_notify or TCP EOF, RT_ERR_AGAIN, or RT_ERR_TLS / RT_ERR_SYS.
 */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);

/*
 * Writes up to len bytes (partial writes allowed; a retry after
 * RT_ERR_AGAIN may use a different buffer address, but must offer the same
 * first bytes). Returns the count accepted (> 0), RT_ERR_AGAIN, or
 * RT_ERR_TLS / RT_ERR_SYS / RT_ERR_EOF.
 */
ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len);

/* Directions the last RT_ERR_AGAIN waits for (TLS_WANT_*), 0 if none. */
unsigned int tls_want(const struct tls_conn *c);

/* Decrypted bytes buffered inside OpenSSL, readable without the socket. */
int tls_pending(const struct tls_conn *c);

/* Sends close_notify once; returns 0 or RT_ERR_AGAIN (best effort). */
int tls_shutdown(struct tls_conn *c);

/* The reason of the last failure: OpenSSL's reason text, or the verify
 * result ("certificate has expired", "hostname mismatch", ...). Never
 * NULL. */
const char *tls_error(const struct tls_conn *c);

/* Negotiated version ("TLSv1.3") and cipher; "" before the handshake. */
const char *tls_version(const struct tls_conn *c);
const char *tls_cipher(const struct tls_conn *c);

/*
 * Peer certificate's subject CN into buf (NUL-terminated). Returns 0,
 * RT_ERR_NOTFOUND (no certificate or no CN), or RT_ERR_INVAL when the CN
 * is longer than len - 1 or contains a NUL byte.
 */
int tls_peer_cn(const struct tls_conn *c, char *buf, size_t len);

/* One-line subject of the peer certificate ("/CN=gw-17/O=..."), for logs. */
int tls_peer_subject(const struct tls_conn *c, char *buf, size_t len);

/* "SHA256:" + 64 hex digits of the peer certificate (buf >= 72). */
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

#endif
