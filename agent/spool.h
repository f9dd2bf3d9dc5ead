/*
 * spool.h - the MQTT client's offline queue: every message accepted for
 * publishing and not yet acknowledged, in order, bounded in count and
 * bytes, optionally backed by an append-only log on disk that survives an
 * agent restart or a power cut.
 *
 * Memory: all queued messages are kept in memory (one allocation each);
 * the queue holds at most max_msgs messages and max_bytes bytes of topic
 * plus payload, whether or not it is spooled. The disk log is for
 * durability, not overflow.
 *
 * Drop policy (queue full, or disk log over max_disk_bytes): the OLDEST
 * message that is not in flight (pkid == 0) is dropped to make room for the
 * new one; in-flight messages (at most the client's window) are never
 * dropped, because their packet ids are still owned by the broker session.
 * If every queued message is in flight the new message is refused
 * (RT_ERR_FULL) and counted as dropped. Every drop is counted (stats) and
 * logged, rate limited; a dropped message is also recorded on disk so a
 * restart does not bring it back. In-flight messages can keep their old
 * segment alive, so the files may exceed max_disk_bytes by up to one
 * segment (SPOOL_SEGMENT_MAX) while the broker holds them unacknowledged.
 * Loading trims to the memory bounds after each segment (oldest first), so
 * it needs at most the bounds plus one segment of memory.
 *
 * Disk format (DIR/seg-NNNNNNNNNNNNNNNN.rts, NNN = 16 hex digits, segment
 * number; one new segment per open, rotated at SPOOL_SEGMENT_MAX bytes):
 * a sequence of records, all integers little-endian:
 *   off 0   u32  magic "RTS1"
 *   off 4   u32  CRC32C (Castagnoli) of bytes 8 .. end of record
 *   off 8   u8   type: 1 message, 2 acknowledged, 3 dropped
 *   off 9   u8   flags: bit 0 QoS 1, bit 1 retain (0 for types 2, 3)
 *   off 10  u16  topic length (1..65535 for messages, else 0)
 *   off 12  u32  payload length (<= SPOOL_PAYLOAD_MAX; 0 for types 2, 3)
 *   off 16  u64  sequence number (messages: strictly increasing)
 *   off 24  topic bytes, then payload bytes
 * Only QoS 1 messages are written (QoS 0 carries no delivery promise).
 * A message is live until a later record of type 2 or 3 names its
 * sequence number. A segment file is deleted once every message in it is
 * done and no older segment remains. Loading skips anything that does not
 * parse (bad magic, bad CRC, impossible lengths, torn tail after a crash),
 * resynchronising on the next magic, and counts what it skipped.
 *
 * fsync policy: each record is write(2)n at once (a process crash loses
 * nothing); spool_sync() fdatasyncs the segment (and the directory after a
 * file was created or removed); the MQTT client calls it at most once a
 * second while there is something unsynced, and at close. A power cut
 * therefore loses at most about one second of accepted messages, and
 * re-sends messages acknowledged in that second (duplicates, not loss).
 * A write error (e.g. ENOSPC) is logged, rate limited, the partial record
 * is truncated away and the message stays queued in memory only. On
 * ENOSPC, if the current segment holds no live message, a new segment is
 * started first (the finished one deleted) and the write tried once more,
 * so a full disk does not keep a dead segment until SPOOL_SEGMENT_MAX.
 *
 * A spool directory is locked (flock on DIR/lock) by one process at a time.
 */
#ifndef RT_SPOOL_H
#define RT_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#define SPOOL_HDR_LEN		24
#define SPOOL_PAYLOAD_MAX	(1024 * 1024)
#define SPOOL_SEGMENT_MAX	(1024 * 1024)

#define SPOOL_REC_MSG		1
#define SPOOL_REC_ACK		2
#define SPOOL_REC_DROP		3

struct spool;

/* One queued message. Fields marked (sender) belong to the MQTT client;
 * the spool only reads pkid (drop policy) and clears nothing. */
struct spool_msg {
	TAILQ_ENTRY(spool_msg)	 link;
	uint64_t		 seq;		/* order of acceptance */
	uint8_t			 qos;		/* 0 or 1 */
	uint8_t			 retain;
	uint16_t		 pkid;		/* (sender) 0 = never sent */
	uint64_t		 sent_gen;	/* (sender) connection it was
						 * last written on */
	uint64_t		 seg;		/* segment holding it, 0 = none */
	char			*topic;		/* NUL-terminated */
	size_t			 topic_len;
	uint8_t			*payload;
	size_t			 payload_len;
};

struct spool_config {
	size_t		 max_msgs;	/* >= 1 */
	uint64_t	 max_bytes;	/* >= 1: topic + payload bytes */
	const char	*dir;		/* NULL or "" = memory only */
	uint64_t	 max_disk_bytes; /* segment files together */
};

struct spool_stats {
	size_t		 count;		/* messages queued */
	uint64_t	 bytes;		/* their topic + payload bytes */
	uint64_t	 dropped;	/* by the drop policy, since open */
	uint64_t	 loaded;	/* live messages found at open */
	uint64_t	 corrupt;	/* corrupt regions skipped at open */
	uint64_t	 torn;		/* truncated records at open */
	uint64_t	 write_errors;	/* records that could not be written */
	uint64_t	 disk_bytes;	/* segment bytes on disk */
	unsigned int	 segments;
};

/* One record as the parser sees it (views into the parsed buffer). */
struct spool_rec {
	uint8_t		 type;		/* SPOOL_REC_* */
	uint8_t		 qos;
	uint8_t		 retain;
	uint64_t	 seq;
	const uint8_t	*topic;
	size_t		 topic_len;
	const uint8_t	*payload;
	size_t		 payload_len;
};

struct spool_parse_stats {
	uint64_t	 records;	/* valid records */
	uint64_t	 corrupt;	/* skipped regions (each resync) */
	uint64_t	 skipped_bytes;
	uint64_t	 torn;		/* 1 if the buffer ends inside a record */
};

/* Called for each valid record; return 0 to go on, < 0 to stop (that
 * value is returned by spool_parse). */
typedef int (*spool_rec_cb)(void *arg, const struct spool_rec *rec);

/*
 * Pure parser of one segment's bytes: calls cb for every valid record in
 * order, skipping (and counting in *st, which is zeroed first) anything
 * that is not one: bad magic, CRC mismatch, a type, flag or length that
 * the writer never produces, an invalid message topic. Never reads past
 * buf[len - 1]. Returns 0, or the callback's negative value.
 */
int spool_parse(const uint8_t *buf, size_t len, spool_rec_cb cb, void *arg,
    struct spool_parse_stats *st);

/*
 * Encodes one record into out (cap bytes). Returns the record length, or
 * RT_ERR_FULL when cap is too small, RT_ERR_INVAL for a record
 * spool_parse would refuse.
 */
int spool_rec_encode(const struct spool_rec *rec, uint8_t *out, size_t cap);

/* CRC32C (Castagnoli, reflected, init and final xor ~0) of p[0..len). */
uint32_t spool_crc32c(const void *p, size_t len);

/*
 * Opens a spool. With a directory: creates it if missing (mode 0700),
 * takes its lock, loads every segment in order (live messages beyond the
 * memory bounds are dropped oldest first and counted) and starts a new
 * segment for appends. Returns 0 and *out, or RT_ERR_INVAL (bad config),
 * RT_ERR_EXISTS (another process holds the directory), RT_ERR_SYS /
 * RT_ERR_NOMEM, with a message in err.
 */
int spool_open(const struct spool_config *cfg, struct spool **out,
    char *err, size_t errlen);

/* Syncs and closes the files, frees every message. NULL is a no-op. */
void spool_close(struct spool *s);

/*
 * Queues a copy of a message (topic must be a valid topic name, qos 0 or
 * 1, len <= SPOOL_PAYLOAD_MAX and within max_bytes), applying the drop
 * policy if the queue is full. QoS 1 messages are written to the disk log.
 * Returns 0, RT_ERR_INVAL, RT_ERR_TOOBIG, RT_ERR_FULL (everything queued
 * is in flight; the message is counted as dropped) or RT_ERR_NOMEM.
 * Pointers to other queued messages stay valid except for a dropped one,
 * which is never in flight.
 */
int spool_push(struct spool *s, const char *topic, const void *payload,
    size_t len, int qos, int retain);

/* Oldest queued message / the one after m; NULL at the end. */
struct spool_msg *spool_first(struct spool *s);
struct spool_msg *spool_next(struct spool *s, struct spool_msg *m);

/*
 * Removes m (acknowledged, or a QoS 0 message handed to the transport)
 * and frees it; a QoS 1 message gets an "acknowledged" record on disk.
 * m must be queued in s.
 */
void spool_done(struct spool *s, struct spool_msg *m);

/* 1 when spool_sync() has work (unsynced records or directory changes). */
int spool_dirty(const struct spool *s);

/* fdatasync the current segment and fsync the directory if needed.
 * Returns 0 or RT_ERR_SYS (logged). Memory-only spools return 0. */
int spool_sync(struct spool *s);

/* Current counters. */
void spool_stats(const struct spool *s, struct spool_stats *st);

#endif
