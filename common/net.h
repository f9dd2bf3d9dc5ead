/*
 * net.h - TCP sockets: non-blocking connect to a host name over every
 * address it resolves to, listening sockets on IPv4 and IPv6, accept, and
 * socket options (keepalive, TCP_USER_TIMEOUT, TCP_NODELAY).
 *
 * All fds made here are non-blocking and close-on-exec.
 *
 * Name resolution uses getaddrinfo() and blocks the calling loop for as
 * long as the resolver takes (bounded by resolv.conf timeouts). It is done
 * afresh on every connect: no negative caching.
 */
#ifndef RT_NET_H
#define RT_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;
struct net_connect;

/* Longest string net_addr_str() writes: "[v6addr]:port" plus NUL. */
#define NET_ADDRSTRLEN 64

/*
 * Called once when a connect attempt ends: fd >= 0 connected (the callee
 * owns it) and err == 0; or fd == -1 and err one of RT_ERR_RESOLVE,
 * RT_ERR_REFUSED, RT_ERR_TIMEOUT, RT_ERR_SYS, with a message saying what
 * failed for which address. The net_connect handle is freed after cb
 * returns; do not cancel it from cb.
 */
typedef void (*net_connect_cb)(int fd, int err, const char *msg, void *arg);

/*
 * Resolves host:port (family AF_UNSPEC, AF_INET or AF_INET6) and tries
 * each address in order, each with timeout_ms, until one connects. The
 * result is delivered through cb from the loop, never from inside this
 * call. Returns 0 and *out (may be NULL), or RT_ERR_NOMEM.
 */
int net_connect_start(struct loop *loop, const char *host, const char *port,
		      int family, int64_t timeout_ms, net_connect_cb cb,
		      void *arg, struct net_connect **out);

/* Abandons a pending connect: closes its fd, cb is not called. NULL is a
 * no-op. */
void net_connect_cancel(struct net_connect *c);

/*
 * Binds and listens on addr:port for every address getaddrinfo returns
 * (addr NULL or "*" = all IPv4 and IPv6 addresses; IPv6 sockets are
 * V6ONLY). Stores up to max fds in fds and their count in *n. Returns 0,
 * or RT_ERR_RESOLVE / RT_ERR_SYS (nothing left open) with msg filled.
 */
int net_listen(const char *addr, const char *port, int backlog, int *fds,
	       size_t max, size_t *n, char *msg, size_t msglen);

/*
 * Accepts one connection from listening fd lfd. Returns the new fd, or
 * RT_ERR_AGAIN when none is pending, or RT_ERR_SYS. peer may be NULL.
 */
int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen);

/* Formats sa as "1.2.3.4:80" or "[::1]:80" into buf (NET_ADDRSTRLEN). */
void net_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* Formats only the address, without port ("1.2.3.4", "::1"). */
void net_host_str(const struct sockaddr *sa, char *buf, size_t len);

/* Local / remote address of a connected fd as a string. */
void net_peer_str(int fd, char *buf, size_t len);

/* TCP keepalive after idle_s, then every intvl_s, cnt probes. */
int net_set_keepalive(int fd, int idle_s, int intvl_s, int cnt);

/* TCP_USER_TIMEOUT: unacknowledged data older than ms kills the link. */
int net_set_user_timeout(int fd, unsigned int ms);

/* TCP_NODELAY on. */
int net_set_nodelay(int fd);

/* Returns the local port of a bound socket (host order) or -1. */
int net_local_port(int fd);

#endif
