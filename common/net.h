/*
 * net.h - TCP sockets: non-blocking connect to a host name over every
 * address it resolves to, listening sockets on IPv4 and IPv6, accept, and
 * socket options (keepalive, TCP_USER_TIMEOUT, TCP_NODELAY).
 *
 * All fds made here are non-blocking and close-on-exec.
 *
 * Name resolution never blocks the loop: a numeric address is taken as
 * it is, any other name is resolved by getaddrinfo() in a short-lived
 * resolver thread whose answer comes back through the loop, with a time
 * bound. It is done afresh on every connect: no negative caching.
 */
#ifndef RT_NET_H
#define RT_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;
struct net_connect;

/* Longest wait for a name lookup, and the most lookups in progress in the
 * process at once (counting abandoned ones whose getaddrinfo() has not
 * returned yet). */
#define NET_RESOLVE_TIMEOUT_MS 10000
#define NET_LOOKUPS_MAX 32

/* Longest string net_addr_str() writes: "[v6addr]:port" plus NUL. */
#define NET_ADDRSTRLEN 64

/*
 * Called once when a connect attempt ends: fd >= 0 connected (the callee
 * owns it), err == 0 and msg NULL; or fd == -1 and err one of
 * RT_ERR_RESOLVE, RT_ERR_REFUSED, RT_ERR_TIMEOUT, RT_ERR_SYS, with msg
 * saying what failed for the last address tried, e.g.
 * "connect 127.0.0.1:9: Connection refused", "connect [::1]:22: timed out
 * after 300 ms", "resolve relay.example: Name or service not known",
 * "resolve relay.example: timed out after 10000 ms" (msg
 * is valid only during the call; errno is meaningless). The net_connect
 * handle is freed after cb returns; do not cancel it from cb, and forget
 * the pointer.
 */
typedef void (*net_connect_cb)(int fd, int err, const char *msg, void *arg);

/*
 * Resolves host:port (family AF_UNSPEC, AF_INET or AF_INET6; no
 * AI_ADDRCONFIG, so ::1 is tried even without a global IPv6 address) and
 * tries each address in getaddrinfo order, each with timeout_ms (<= 0: no
 * timer, the kernel's SYN retries decide), until one connects. A numeric
 * host is converted at once; a name is looked up in a resolver thread,
 * for at most timeout_ms or NET_RESOLVE_TIMEOUT_MS, whichever is shorter
 * (then RT_ERR_RESOLVE "timed out"; the late answer is discarded). With
 * NET_LOOKUPS_MAX lookups already in progress the attempt fails with
 * RT_ERR_RESOLVE "too many lookups in progress". The
 * result is delivered through cb from the loop, never from inside this
 * call (also when resolution fails). Returns 0 and *out (out may be NULL
 * when the caller never cancels), or RT_ERR_NOMEM (cb is never called).
 * The handle must be cancelled before the loop is freed.
 */
int net_connect_start(struct loop *loop, const char *host, const char *port,
		      int family, int64_t timeout_ms, net_connect_cb cb,
		      void *arg, struct net_connect **out);

/* Abandons a pending connect: closes its fd, drops its watch and timer,
 * lets go of a lookup still in progress (its thread frees it when
 * getaddrinfo() returns), frees it; cb is not called. NULL is a no-op. */
void net_connect_cancel(struct net_connect *c);

/* Resolver threads alive in the process: lookups in progress plus
 * abandoned ones whose getaddrinfo() has not returned yet. */
unsigned int net_lookups_alive(void);

/*
 * Binds and listens on addr:port for every address getaddrinfo returns
 * (addr NULL, "" or "*" = all IPv4 and IPv6 addresses; "[::1]" is taken as
 * "::1"; IPv6 sockets are V6ONLY; SO_REUSEADDR on all). Stores up to max
 * fds in fds and their count in *n (extra addresses are ignored). With
 * port "0" all sockets share the one port the kernel picked for the first.
 * An address family the kernel lacks (EAFNOSUPPORT) is skipped with a
 * warning as long as another one listens. Returns 0, or RT_ERR_RESOLVE /
 * RT_ERR_SYS / RT_ERR_NOMEM (nothing left open) with msg (may be NULL)
 * naming the address, e.g. "bind 0.0.0.0:22: Address already in use".
 */
int net_listen(const char *addr, const char *port, int backlog, int *fds,
	       size_t max, size_t *n, char *msg, size_t msglen);

/*
 * Accepts one connection from listening fd lfd (accept4, non-blocking,
 * close-on-exec). Connections that died while queued (ECONNABORTED and the
 * other per-connection errors of accept(2)) and EINTR are skipped. Returns
 * the new fd, RT_ERR_AGAIN when none is pending, or RT_ERR_SYS with errno
 * set (EMFILE/ENFILE: the connection stays queued, so a level-triggered
 * caller must stop watching lfd for a while). peer may be NULL; if not,
 * peerlen must be too and receives the address length.
 */
int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen);

/* Formats sa as "1.2.3.4:80" or "[::1]:80" into buf (NET_ADDRSTRLEN
 * bytes suffice); AF_UNIX gives "unix", others "(family N)", NULL "?". */
void net_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* Formats only the address, without port ("1.2.3.4", "::1"). */
void net_host_str(const struct sockaddr *sa, char *buf, size_t len);

/* The remote address of a connected fd as net_addr_str() writes it, or
 * "(unknown peer: reason)". Keeps errno. */
void net_peer_str(int fd, char *buf, size_t len);

/* TCP keepalive after idle_s, then every intvl_s, cnt probes (all > 0).
 * Return 0, RT_ERR_INVAL or RT_ERR_SYS (errno set) for this and the next
 * two. */
int net_set_keepalive(int fd, int idle_s, int intvl_s, int cnt);

/* TCP_USER_TIMEOUT: unacknowledged data older than ms kills the link. */
int net_set_user_timeout(int fd, unsigned int ms);

/* TCP_NODELAY on. */
int net_set_nodelay(int fd);

/* Returns the local port of a bound socket (host order) or -1. */
int net_local_port(int fd);

#endif
