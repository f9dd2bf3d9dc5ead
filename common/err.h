/*
 * err.h - revtun's error codes.
 *
 * Every function that can fail returns 0 (or a count) on success and one of
 * these negative codes on failure. RT_ERR_AGAIN is not a failure: it means
 * "would block, call again when the fd is ready" and callers treat it as a
 * normal state. RT_ERR_SYS means "look at errno", which the function leaves
 * set. Each code has a fixed, human-readable string (rt_strerror).
 */
#ifndef RT_ERR_H
#define RT_ERR_H

enum rt_err {
	RT_OK = 0,
	RT_ERR_AGAIN = -1,	/* would block; retry when ready */
	RT_ERR_NOMEM = -2,	/* allocation failed */
	RT_ERR_SYS = -3,	/* system call failed; errno is set */
	RT_ERR_INVAL = -4,	/* invalid argument or input */
	RT_ERR_EOF = -5,	/* peer closed the stream */
	RT_ERR_TIMEOUT = -6,	/* deadline passed */
	RT_ERR_FULL = -7,	/* bounded buffer or limit reached */
	RT_ERR_TLS = -8,	/* TLS protocol or library failure */
	RT_ERR_VERIFY = -9,	/* peer certificate or host name refused */
	RT_ERR_PROTO = -10,	/* peer broke the protocol */
	RT_ERR_RESOLVE = -11,	/* name resolution failed */
	RT_ERR_REFUSED = -12,	/* connection refused or access denied */
	RT_ERR_CONFIG = -13,	/* configuration invalid */
	RT_ERR_PERM = -14,	/* unsafe file ownership or permissions */
	RT_ERR_NOTFOUND = -15,	/* no such object */
	RT_ERR_SSH = -16,	/* SSH library failure */
	RT_ERR_CLOSED = -17,	/* object already closed */
	RT_ERR_LIMIT = -18,	/* per-peer or global cap reached */
	RT_ERR_EXISTS = -19,	/* object already exists */
	RT_ERR_TOOBIG = -20,	/* input larger than the allowed maximum */
};
#define RT_ERR_MIN RT_ERR_TOOBIG

/*
 * Returns a static string describing error code r. Never NULL: unknown codes
 * give "unknown error". RT_ERR_SYS gives a generic string; use
 * rt_strerror_errno() when errno is still meaningful.
 */
const char *rt_strerror(int r);

/*
 * Like rt_strerror(), but for RT_ERR_SYS returns strerror(errno) instead.
 * Call it right after the failing function, before errno can change.
 */
const char *rt_strerror_errno(int r);

#endif
