/*
 * rt-echo.c - echo service for the integration tests.
 *
 * usage: rt-echo PORTFILE
 * Listens on 127.0.0.1 on a port the kernel picks, writes the port number
 * to PORTFILE (atomically, via rename) and echoes every connection back.
 * At EOF from a client it sends what is left, then shuts its side down.
 * Each connection has a 64 KiB buffer and is read only when it has room.
 * Runs until killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAXC 256
#define BUFSZ 65536

struct conn {
	int fd;
	size_t len;
	int eof;
	unsigned char buf[BUFSZ];
};

static struct conn *conns[MAXC];

static void
drop(int i)
{
	close(conns[i]->fd);
	free(conns[i]);
	conns[i] = NULL;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct pollfd pfd[MAXC + 1];
	int map[MAXC + 1];
	char tmp[4096];
	FILE *f;
	int lfd, one = 1, i, n, np;
	ssize_t k;

	if (argc != 2) {
		fprintf(stderr, "usage: rt-echo PORTFILE\n");
		return 64;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 128) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0) {
		perror("rt-echo: listen");
		return 71;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	if ((f = fopen(tmp, "w")) == NULL) {
		perror(tmp);
		return 73;
	}
	fprintf(f, "%d\n", ntohs(sin.sin_port));
	fclose(f);
	rename(tmp, argv[1]);
	for (;;) {
		np = 0;
		pfd[np].fd = lfd;
		pfd[np].events = POLLIN;
		map[np++] = -1;
		for (i = 0; i < MAXC; i++) {
			if (conns[i] == NULL)
				continue;
			pfd[np].fd = conns[i]->fd;
			pfd[np].events = 0;
			if (!conns[i]->eof && conns[i]->len < BUFSZ)
				pfd[np].events |= POLLIN;
			if (conns[i]->len > 0)
				pfd[np].events |= POLLOUT;
			map[np++] = i;
		}
		if (poll(pfd, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 70;
		}
		for (n = 0; n < np; n++) {
			struct conn *c;

			if (pfd[n].revents == 0)
				continue;
			if (map[n] < 0) {
				int fd = accept(lfd, NULL, NULL);

				if (fd < 0)
					continue;
				for (i = 0; i < MAXC && conns[i]; i++)
					;
				if (i == MAXC ||
				    (conns[i] = calloc(1, sizeof(**conns))) ==
				    NULL) {
					close(fd);
					continue;
				}
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
				conns[i]->fd = fd;
				continue;
			}
			c = conns[map[n]];
			if ((pfd[n].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !c->eof && c->len < BUFSZ) {
				k = read(c->fd, c->buf + c->len, BUFSZ - c->len);
				if (k > 0)
					c->len += (size_t)k;
				else if (k == 0)
					c->eof = 1;
				else if (errno != EINTR && errno != EAGAIN) {
					drop(map[n]);
					continue;
				}
			}
			if (c->len > 0 && (pfd[n].revents & POLLOUT)) {
				k = write(c->fd, c->buf, c->len);
				if (k > 0) {
					memmove(c->buf, c->buf + k,
					    c->len - (size_t)k);
					c->len -= (size_t)k;
				} else if (k < 0 && errno != EINTR &&
				    errno != EAGAIN) {
					drop(map[n]);
					continue;
				}
			}
			if (c->eof && c->len == 0) {
				shutdown(c->fd, SHUT_WR);
				drop(map[n]);
			}
		}
	}
}
