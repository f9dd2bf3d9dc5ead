/*
 * err.c - strings for revtun's error codes (err.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "err.h"

static const char *const err_str[] = {
	[0] = "success",
	[-RT_ERR_AGAIN] = "operation would block",
	[-RT_ERR_NOMEM] = "out of memory",
	[-RT_ERR_SYS] = "system call failed",
	[-RT_ERR_INVAL] = "invalid argument",
	[-RT_ERR_EOF] = "connection closed by peer",
	[-RT_ERR_TIMEOUT] = "timed out",
	[-RT_ERR_FULL] = "buffer full",
	[-RT_ERR_TLS] = "TLS error",
	[-RT_ERR_VERIFY] = "peer verification failed",
	[-RT_ERR_PROTO] = "protocol error",
	[-RT_ERR_RESOLVE] = "name resolution failed",
	[-RT_ERR_REFUSED] = "refused",
	[-RT_ERR_CONFIG] = "invalid configuration",
	[-RT_ERR_PERM] = "unsafe permissions",
	[-RT_ERR_NOTFOUND] = "not found",
	[-RT_ERR_SSH] = "SSH error",
	[-RT_ERR_CLOSED] = "already closed",
	[-RT_ERR_LIMIT] = "limit reached",
	[-RT_ERR_EXISTS] = "already exists",
	[-RT_ERR_TOOBIG] = "too large",
};

const char *
rt_strerror(int r)
{
	if (r > 0)
		r = 0;
	if (r < RT_ERR_MIN || err_str[-r] == NULL)
		return "unknown error";
	return err_str[-r];
}

const char *
rt_strerror_errno(int r)
{
	if (r == RT_ERR_SYS && errno != 0)
		return strerror(errno);
	return rt_strerror(r);
}
