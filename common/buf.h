/*
 * buf.h - bounded byte buffer.
 *
 * A FIFO of bytes with a hard limit fixed at creation. Memory is taken
 * lazily as data arrives (so an idle connection's buffers cost almost
 * nothing) and given back by buf_shrink() when the buffer is empty. The
 * buffer never holds more than its limit: appends that do not fit are
 * refused (buf_append) or cut to the room left (buf_append_some).
 *
 * Invariants: 0 <= len <= limit; readable bytes are contiguous at
 * buf_data(); partial writes consume exactly what the kernel (or the next
 * layer) accepted, nothing more.
 */
#ifndef RT_BUF_H
#define RT_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf;

/* Creates an empty buffer that will hold at most limit bytes (0 < limit
 * <= SSIZE_MAX); no storage is taken yet. Returns NULL when out of memory
 * or limit is out of range. */
struct buf *buf_new(size_t limit);

/* Frees b and its storage; NULL is a no-op. */
void buf_free(struct buf *b);

/* Bytes stored, bytes that can still be added, and the fixed limit. */
size_t buf_len(const struct buf *b);
size_t buf_room(const struct buf *b);
size_t buf_limit(const struct buf *b);

/* Bytes of heap memory the buffer currently holds (for accounting). */
size_t buf_capacity(const struct buf *b);

/* Pointer to the first of buf_len() readable bytes (NULL when empty). */
const uint8_t *buf_data(const struct buf *b);

/* Appends all len bytes, or nothing: RT_ERR_FULL if they do not fit,
 * RT_ERR_NOMEM if memory cannot be had. Returns 0 on success. */
int buf_append(struct buf *b, const void *data, size_t len);

/* Appends as many of len bytes as fit; returns the count appended
 * (0 when full) or RT_ERR_NOMEM. */
ssize_t buf_append_some(struct buf *b, const void *data, size_t len);

/* Removes the first n bytes (n is clamped to buf_len()). Pointers from
 * buf_data() stay valid (the bytes are not moved). */
void buf_consume(struct buf *b, size_t n);

/*
 * Makes at least min(want, buf_room()) contiguous writable bytes available
 * at the end and returns them through *p and *avail (0 when full). Fill
 * them, then call buf_commit() with the count written. *avail may exceed
 * want (never buf_room()). May move the stored bytes: earlier buf_data()
 * pointers become invalid. Returns 0 or RT_ERR_NOMEM.
 */
int buf_reserve(struct buf *b, size_t want, uint8_t **p, size_t *avail);

/* Adds n bytes written into the space from buf_reserve(); n <= *avail
 * (a larger n is clamped to the space there is). */
void buf_commit(struct buf *b, size_t n);

/*
 * Reads from fd into the free space, at most max bytes (0 = as much as
 * fits; one read(2), which may take less: call again while it returns
 * > 0 if draining matters). EINTR is retried. Returns bytes read (> 0),
 * RT_ERR_EOF at end of stream,
 * RT_ERR_AGAIN if nothing is ready, RT_ERR_FULL if there is no room (fd
 * not read), RT_ERR_NOMEM, or RT_ERR_SYS with errno set.
 */
ssize_t buf_read_fd(struct buf *b, int fd, size_t max);

/*
 * Writes stored bytes to fd (one send(2) with MSG_NOSIGNAL, or write(2)
 * if fd is not a socket) and consumes exactly what was written. Returns
 * bytes written (>= 0; 0 only when empty), RT_ERR_AGAIN if the fd accepts
 * nothing now, or RT_ERR_SYS with errno set (EPIPE included).
 */
ssize_t buf_write_fd(struct buf *b, int fd);

/* Drops all stored bytes (keeps the memory). */
void buf_reset(struct buf *b);

/* Gives the storage back if the buffer is empty. */
void buf_shrink(struct buf *b);

#endif
