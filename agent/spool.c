/*
 * spool.c - the offline queue of the MQTT client and its append-only disk
 * log (spool.h): record codec and parser (pure), segment files, loading,
 * the drop policy and the fsync policy.
 *
 * Invariants: the queue is in sequence order; count <= max_msgs and
 * bytes <= max_bytes after every public call; a message with seg != 0 has
 * a record in that segment and is counted in its live count; the current
 * segment (cur) is never deleted; segments are deleted oldest first, only
 * when none of their messages is live.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mqtt_codec.h"
#include "spool.h"
#include "util.h"

#define SPOOL_MAGIC		0x31535452u	/* "RTS1" little-endian */
#define SPOOL_FLAG_QOS1		0x01u
#define SPOOL_FLAG_RETAIN	0x02u
#define SPOOL_NAME_LEN		(4 + 16 + 4)	/* seg-NNNNNNNNNNNNNNNN.rts */
#define SPOOL_READ_MAX		(SPOOL_SEGMENT_MAX + SPOOL_PAYLOAD_MAX + \
				 MQTT_STR_MAX + SPOOL_HDR_LEN)
#define SPOOL_MAX_SEGS		4096

struct seg {
	TAILQ_ENTRY(seg)	 link;
	uint64_t		 num;
	uint64_t		 bytes;
	size_t			 live;
};

struct spool {
	size_t			 max_msgs;
	uint64_t		 max_bytes;
	uint64_t		 max_disk;
	char			*dir;		/* NULL: memory only */
	TAILQ_HEAD(, spool_msg)	 q;
	size_t			 count;
	uint64_t		 bytes;
	uint64_t		 next_seq;
	int			 lockfd;
	int			 fd;		/* current segment, append */
	struct seg		*cur;
	TAILQ_HEAD(, seg)	 segs;
	unsigned int		 nsegs;
	uint64_t		 disk_bytes;
	int			 dirty_data;
	int			 dirty_dir;
	int			 loading;	/* no segment deletes yet */
	uint64_t		 dropped, loaded, corrupt, torn, write_errors;
	struct log_rl		 drop_rl;
	struct log_rl		 werr_rl;
};

static const uint32_t crc32c_tab[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
	0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
	0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
	0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
	0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
	0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
	0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
	0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
	0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
	0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
	0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
	0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
	0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
	0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
	0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
	0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
	0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
	0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
	0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
	0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
	0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
	0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
	0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
	0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
	0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
	0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
	0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
	0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
	0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
	0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
	0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t
spool_crc32c(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t c = 0xffffffffu;

	while (len-- > 0)
		c = crc32c_tab[(c ^ *b++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The checks shared by the encoder and the parser. */
static int
rec_valid(const struct spool_rec *rec)
{
	switch (rec->type) {
	case SPOOL_REC_MSG:
		if (rec->qos != 1 || rec->retain > 1 ||
		    rec->payload_len > SPOOL_PAYLOAD_MAX)
			return 0;
		return mqtt_topic_check(rec->topic, rec->topic_len) == 0;
	case SPOOL_REC_ACK:
	case SPOOL_REC_DROP:
		return rec->qos == 0 && rec->retain == 0 &&
		    rec->topic_len == 0 && rec->payload_len == 0;
	default:
		return 0;
	}
}

int
spool_rec_encode(const struct spool_rec *rec, uint8_t *out, size_t cap)
{
	size_t n;

	if (rec == NULL || !rec_valid(rec))
		return RT_ERR_INVAL;
	n = SPOOL_HDR_LEN + rec->topic_len + rec->payload_len;
	if (out == NULL || cap < n)
		return RT_ERR_FULL;
	put32(out, SPOOL_MAGIC);
	out[8] = rec->type;
	out[9] = (rec->qos ? SPOOL_FLAG_QOS1 : 0) |
	    (rec->retain ? SPOOL_FLAG_RETAIN : 0);
	put16(out + 10, (uint16_t)rec->topic_len);
	put32(out + 12, (uint32_t)rec->payload_len);
	put64(out + 16, rec->seq);
	if (rec->topic_len > 0)
		memcpy(out + SPOOL_HDR_LEN, rec->topic, rec->topic_len);
	if (rec->payload_len > 0)
		memcpy(out + SPOOL_HDR_LEN + rec->topic_len, rec->payload,
		    rec->payload_len);
	put32(out + 4, spool_crc32c(out + 8, n - 8));
	return (int)n;
}

/* Decodes the record at p (avail bytes). Returns its length, 0 if it is
 * not a valid record, -1 if it would run past the end (maybe torn). */
static long
rec_decode(const uint8_t *p, size_t avail, struct spool_rec *rec)
{
	size_t n;
	uint8_t flags;

	if (avail < SPOOL_HDR_LEN)
		return -1;
	if (get32(p) != SPOOL_MAGIC)
		return 0;
	memset(rec, 0, sizeof(*rec));
	rec->type = p[8];
	flags = p[9];
	if ((flags & ~(SPOOL_FLAG_QOS1 | SPOOL_FLAG_RETAIN)) != 0)
		return 0;
	rec->qos = (flags & SPOOL_FLAG_QOS1) ? 1 : 0;
	rec->retain = (flags & SPOOL_FLAG_RETAIN) ? 1 : 0;
	rec->topic_len = get16(p + 10);
	rec->payload_len = get32(p + 12);
	rec->seq = get64(p + 16);
	if (rec->payload_len > SPOOL_PAYLOAD_MAX)
		return 0;
	n = SPOOL_HDR_LEN + rec->topic_len + rec->payload_len;
	if (n > avail)
		return -1;
	if (spool_crc32c(p + 8, n - 8) != get32(p + 4))
		return 0;
	rec->topic = p + SPOOL_HDR_LEN;
	rec->payload = rec->topic + rec->topic_len;
	if (!rec_valid(rec))
		return 0;
	return (long)n;
}

/* Offset of the next magic after off (or len). */
static size_t
resync(const uint8_t *buf, size_t len, size_t off)
{
	for (off++; off + 4 <= len; off++)
		if (get32(buf + off) == SPOOL_MAGIC)
			return off;
	return len;
}

int
spool_parse(const uint8_t *buf, size_t len, spool_rec_cb cb, void *arg,
    struct spool_parse_stats *st)
{
	struct spool_parse_stats local;
	struct spool_rec rec;
	size_t off = 0, next;
	long n;
	int r;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (buf == NULL)
		return 0;
	while (off < len) {
		n = rec_decode(buf + off, len - off, &rec);
		if (n > 0) {
			st->records++;
			if (cb != NULL && (r = cb(arg, &rec)) < 0)
				return r;
			off += (size_t)n;
			continue;
		}
		/*
		 * Not a record here. A record running past the end is a torn
		 * tail only if nothing valid follows inside it; otherwise it
		 * was a corrupt length, and the next magic is tried either way.
		 */
		next = resync(buf, len, off);
		if (n < 0 && next == len)
			st->torn++;
		else
			st->corrupt++;
		st->skipped_bytes += next - off;
		off = next;
	}
	return 0;
}

/*
 * Messages and segments
 */

static struct seg *
seg_find(struct spool *s, uint64_t num)
{
	struct seg *g;

	TAILQ_FOREACH(g, &s->segs, link)
		if (g->num == num)
			return g;
	return NULL;
}

static void
seg_path(const struct spool *s, uint64_t num, char *buf, size_t len)
{
	snprintf(buf, len, "%s/seg-%016" PRIx64 ".rts", s->dir, num);
}

/* Deletes the oldest segments whose messages are all done. */
static void
seg_gc(struct spool *s)
{
	struct seg *g;
	char path[4096];

	while ((g = TAILQ_FIRST(&s->segs)) != NULL && g != s->cur &&
	    g->live == 0) {
		seg_path(s, g->num, path, sizeof(path));
		if (unlink(path) != 0 && errno != ENOENT)
			log_warn("spool %s: %s", path, strerror(errno));
		s->disk_bytes -= g->bytes;
		TAILQ_REMOVE(&s->segs, g, link);
		s->nsegs--;
		free(g);
		s->dirty_dir = 1;
	}
}

static int
seg_new(struct spool *s, uint64_t num)
{
	struct seg *g;
	char path[4096];
	int fd;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return RT_ERR_NOMEM;
	seg_path(s, num, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		log_warn("spool %s: %s", path, strerror(errno));
		free(g);
		return RT_ERR_SYS;
	}
	if (s->fd >= 0) {
		/* The old segment's data must be on disk before it counts
		 * as complete. */
		(void)fdatasync(s->fd);
		close(s->fd);
	}
	s->fd = fd;
	g->num = num;
	TAILQ_INSERT_TAIL(&s->segs, g, link);
	s->nsegs++;
	s->cur = g;
	s->dirty_dir = 1;
	s->dirty_data = 0;
	return 0;
}

static void
msg_free(struct spool_msg *m)
{
	free(m);
}

static struct spool_msg *
msg_new(const uint8_t *topic, size_t tl, const void *payload, size_t pl)
{
	struct spool_msg *m;

	/* One allocation: struct, topic + NUL, payload. */
	if ((m = calloc(1, sizeof(*m) + tl + 1 + pl)) == NULL)
		return NULL;
	m->topic = (char *)(m + 1);
	memcpy(m->topic, topic, tl);
	m->topic[tl] = '\0';
	m->topic_len = tl;
	m->payload = (uint8_t *)m->topic + tl + 1;
	if (pl > 0)
		memcpy(m->payload, payload, pl);
	m->payload_len = pl;
	return m;
}

/* Appends one record to the current segment. Returns 0 or an error
 * (logged, counted; the partial record is cut off again). */
static int
disk_write(struct spool *s, const struct spool_rec *rec)
{
	uint8_t stackbuf[SPOOL_HDR_LEN + 256], *p = stackbuf;
	size_t n = SPOOL_HDR_LEN + rec->topic_len + rec->payload_len, off = 0;
	ssize_t w;
	int r = 0, err, rotated = 0;

	if (s->fd < 0)
		return RT_ERR_CLOSED;
	if (n > sizeof(stackbuf) && (p = malloc(n)) == NULL)
		return RT_ERR_NOMEM;
	if ((r = spool_rec_encode(rec, p, n)) < 0)
		goto out;
	while (off < n) {
		w = write(s->fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			err = errno;
			if (off > 0 && ftruncate(s->fd, (off_t)s->cur->bytes) != 0)
				log_warn("spool %s: truncate: %s", s->dir,
				    strerror(errno));
			/* A full disk whose current segment holds nothing
			 * live any more (the broker acknowledged it all):
			 * start a new segment so the old one can go, and try
			 * once more. Otherwise the dead segment would fill
			 * the disk until it reached SPOOL_SEGMENT_MAX. */
			if (err == ENOSPC && !rotated && !s->loading &&
			    s->cur->live == 0 && s->cur->bytes > 0 &&
			    seg_new(s, s->cur->num + 1) == 0) {
				size_t before = s->nsegs;

				rotated = 1;
				seg_gc(s);
				log_info("spool %s: disk full: new segment %"
				    PRIu64 ", %zu finished segment(s) removed%s",
				    s->dir, s->cur->num, before - s->nsegs,
				    before == s->nsegs ? " (an older one still "
				    "holds undelivered messages)" : "");
				off = 0;
				continue;
			}
			s->write_errors++;
			log_warn_rl(&s->werr_rl, "spool %s: write: %s (%" PRIu64
			    " records not written so far; queued messages "
			    "are kept in memory)", s->dir, strerror(err),
			    s->write_errors);
			r = RT_ERR_SYS;
			goto out;
		}
		off += (size_t)w;
	}
	s->cur->bytes += n;
	s->disk_bytes += n;
	s->dirty_data = 1;
	r = 0;
 out:
	if (p != stackbuf)
		free(p);
	return r;
}

/* Unlinks m from the queue and frees it; type says what to record on
 * disk (0: nothing, e.g. while loading). */
static void
remove_msg(struct spool *s, struct spool_msg *m, uint8_t type)
{
	struct spool_rec rec;
	struct seg *g;

	TAILQ_REMOVE(&s->q, m, link);
	s->count--;
	s->bytes -= m->topic_len + m->payload_len;
	if (m->seg != 0 && (g = seg_find(s, m->seg)) != NULL) {
		g->live--;
		if (type != 0) {
			memset(&rec, 0, sizeof(rec));
			rec.type = type;
			rec.seq = m->seq;
			(void)disk_write(s, &rec);
		}
	}
	msg_free(m);
	if (s->dir != NULL && !s->loading)
		seg_gc(s);
}

static void
drop_msg(struct spool *s, struct spool_msg *m, const char *why)
{
	s->dropped++;
	log_warn_rl(&s->drop_rl, "spool: %s: dropped message %" PRIu64
	    " (topic %s, %zu bytes); %" PRIu64 " dropped so far", why, m->seq,
	    m->topic, m->payload_len, s->dropped);
	remove_msg(s, m, SPOOL_REC_DROP);
}

/* Drop policy: makes room for one message of need bytes. */
static int
make_room(struct spool *s, uint64_t need)
{
	struct spool_msg *m, *next;

	m = TAILQ_FIRST(&s->q);
	while (s->count + 1 > s->max_msgs || s->bytes + need > s->max_bytes) {
		while (m != NULL && m->pkid != 0)
			m = TAILQ_NEXT(m, link);
		if (m == NULL)
			return RT_ERR_FULL;
		next = TAILQ_NEXT(m, link);
		drop_msg(s, m, "queue full");
		m = next;
	}
	return 0;
}

/*
 * Keeps the segment files within max_disk: rotates a full current segment
 * and drops the oldest segment's messages not in flight. In-flight
 * messages can hold a segment (at most the window's worth).
 */
static void
disk_budget(struct spool *s, size_t n)
{
	struct spool_msg *m, *next;
	struct seg *g;

	if (s->cur->bytes > 0 && s->cur->bytes + n > SPOOL_SEGMENT_MAX &&
	    s->nsegs < SPOOL_MAX_SEGS)
		(void)seg_new(s, s->cur->num + 1);
	while (s->disk_bytes + n > s->max_disk) {
		g = TAILQ_FIRST(&s->segs);
		if (g == s->cur) {
			if (g->bytes == 0 || seg_new(s, g->num + 1) != 0)
				return;
			continue;
		}
		for (m = TAILQ_FIRST(&s->q); m != NULL; m = next) {
			next = TAILQ_NEXT(m, link);
			if (m->seg == g->num && m->pkid == 0)
				drop_msg(s, m, "disk spool full");
		}
		if (TAILQ_FIRST(&s->segs) == g)
			return;		/* held by in-flight messages */
	}
}

int
spool_push(struct spool *s, const char *topic, const void *payload,
    size_t len, int qos, int retain)
{
	struct spool_msg *m;
	struct spool_rec rec;
	size_t tl;
	int r;

	if (s == NULL || topic == NULL || (payload == NULL && len > 0) ||
	    qos < 0 || qos > 1)
		return RT_ERR_INVAL;
	tl = strlen(topic);
	if (mqtt_topic_check((const uint8_t *)topic, tl) != 0)
		return RT_ERR_INVAL;
	if (len > SPOOL_PAYLOAD_MAX || tl + len > s->max_bytes)
		return RT_ERR_TOOBIG;
	if ((r = make_room(s, tl + len)) != 0) {
		s->dropped++;
		log_warn_rl(&s->drop_rl, "spool: queue full and every queued "
		    "message in flight: new message on %s dropped; %" PRIu64
		    " dropped so far", topic, s->dropped);
		return r;
	}
	if ((m = msg_new((const uint8_t *)topic, tl, payload, len)) == NULL)
		return RT_ERR_NOMEM;
	m->seq = s->next_seq++;
	m->qos = (uint8_t)qos;
	m->retain = retain ? 1 : 0;
	if (s->dir != NULL && qos == 1 && s->cur != NULL) {
		memset(&rec, 0, sizeof(rec));
		rec.type = SPOOL_REC_MSG;
		rec.qos = 1;
		rec.retain = m->retain;
		rec.seq = m->seq;
		rec.topic = (const uint8_t *)m->topic;
		rec.topic_len = tl;
		rec.payload = m->payload;
		rec.payload_len = len;
		disk_budget(s, SPOOL_HDR_LEN + tl + len);
		if (disk_write(s, &rec) == 0) {
			m->seg = s->cur->num;
			s->cur->live++;
		}
	}
	TAILQ_INSERT_TAIL(&s->q, m, link);
	s->count++;
	s->bytes += tl + len;
	return 0;
}

struct spool_msg *
spool_first(struct spool *s)
{
	return s != NULL ? TAILQ_FIRST(&s->q) : NULL;
}

struct spool_msg *
spool_next(struct spool *s, struct spool_msg *m)
{
	(void)s;
	return m != NULL ? TAILQ_NEXT(m, link) : NULL;
}

void
spool_done(struct spool *s, struct spool_msg *m)
{
	if (s == NULL || m == NULL)
		return;
	remove_msg(s, m, SPOOL_REC_ACK);
}

int
spool_dirty(const struct spool *s)
{
	return s != NULL && s->dir != NULL && (s->dirty_data || s->dirty_dir);
}

int
spool_sync(struct spool *s)
{
	int r = 0, dfd;

	if (s == NULL || s->dir == NULL)
		return 0;
	if (s->dirty_data && s->fd >= 0) {
		if (fdatasync(s->fd) != 0) {
			log_warn_rl(&s->werr_rl, "spool %s: fdatasync: %s",
			    s->dir, strerror(errno));
			r = RT_ERR_SYS;
		}
		s->dirty_data = 0;
	}
	if (s->dirty_dir) {
		dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0) {
			log_warn_rl(&s->werr_rl, "spool %s: fsync: %s", s->dir,
			    strerror(errno));
			r = RT_ERR_SYS;
		}
		if (dfd >= 0)
			close(dfd);
		s->dirty_dir = 0;
	}
	return r;
}

void
spool_stats(const struct spool *s, struct spool_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (s == NULL)
		return;
	st->count = s->count;
	st->bytes = s->bytes;
	st->dropped = s->dropped;
	st->loaded = s->loaded;
	st->corrupt = s->corrupt;
	st->torn = s->torn;
	st->write_errors = s->write_errors;
	st->disk_bytes = s->disk_bytes;
	st->segments = s->nsegs;
}

/*
 * Loading
 */

struct load {
	struct spool	*s;
	struct seg	*g;
	uint64_t	 last_seq;
	int		 have_seq;
};

static int
load_rec(void *arg, const struct spool_rec *rec)
{
	struct load *ld = arg;
	struct spool *s = ld->s;
	struct spool_msg *m;

	if (rec->type != SPOOL_REC_MSG) {
		TAILQ_FOREACH(m, &s->q, link) {
			if (m->seq == rec->seq) {
				remove_msg(s, m, 0);
				break;
			}
			if (m->seq > rec->seq)
				break;
		}
		return 0;
	}
	if (ld->have_seq && rec->seq <= ld->last_seq) {
		s->corrupt++;	/* out of order: not written by us */
		return 0;
	}
	ld->have_seq = 1;
	ld->last_seq = rec->seq;
	if (rec->seq >= s->next_seq)
		s->next_seq = rec->seq + 1;
	/* No bounds inside a segment: a later record may acknowledge it.
	 * load_dir trims to the bounds after each segment, so memory stays
	 * within the bounds plus one segment. */
	m = msg_new(rec->topic, rec->topic_len, rec->payload,
	    rec->payload_len);
	if (m == NULL)
		return RT_ERR_NOMEM;
	m->seq = rec->seq;
	m->qos = rec->qos;
	m->retain = rec->retain;
	m->seg = ld->g->num;
	ld->g->live++;
	TAILQ_INSERT_TAIL(&s->q, m, link);
	s->count++;
	s->bytes += rec->topic_len + rec->payload_len;
	return 0;
}

static int
parse_seg_name(const char *name, uint64_t *num)
{
	size_t i;
	uint64_t v = 0;

	if (strlen(name) != SPOOL_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
	    strcmp(name + 20, ".rts") != 0)
		return -1;
	for (i = 4; i < 20; i++) {
		char c = name[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint64_t)(c - 'a' + 10);
		else
			return -1;
	}
	*num = v;
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Reads at most SPOOL_READ_MAX bytes of one segment and applies it. */
static int
load_seg(struct spool *s, struct load *ld, uint64_t num)
{
	struct spool_parse_stats ps;
	char path[4096];
	uint8_t *buf = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd = -1, r;

	seg_path(s, num, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    fstat(fd, &st) != 0) {
		log_warn("spool %s: %s", path, strerror(errno));
		r = 0;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warn("spool %s: not a regular file, ignored", path);
		r = 0;
		goto out;
	}
	if (st.st_size > SPOOL_READ_MAX) {
		log_warn("spool %s: %lld bytes, only the first %d are read",
		    path, (long long)st.st_size, SPOOL_READ_MAX);
		s->corrupt++;
	}
	if ((buf = malloc(SPOOL_READ_MAX)) == NULL) {
		r = RT_ERR_NOMEM;
		goto out;
	}
	while (len < SPOOL_READ_MAX) {
		n = read(fd, buf + len, SPOOL_READ_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if ((ld->g = calloc(1, sizeof(*ld->g))) == NULL) {
		r = RT_ERR_NOMEM;
		goto out;
	}
	ld->g->num = num;
	ld->g->bytes = (uint64_t)st.st_size;
	/* Before cur: segments stay in number order. */
	TAILQ_INSERT_BEFORE(s->cur, ld->g, link);
	s->nsegs++;
	s->disk_bytes += ld->g->bytes;
	if ((r = spool_parse(buf, len, load_rec, ld, &ps)) != 0)
		goto out;
	s->corrupt += ps.corrupt;
	s->torn += ps.torn;
	if (ps.corrupt > 0 || ps.torn > 0)
		log_warn("spool %s: skipped %" PRIu64 " corrupt region(s) and "
		    "%" PRIu64 " torn record(s), %" PRIu64 " bytes", path,
		    ps.corrupt, ps.torn, ps.skipped_bytes);
	r = 0;
 out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

static int
load_dir(struct spool *s, char *err, size_t errlen)
{
	struct load ld;
	DIR *d;
	struct dirent *de;
	uint64_t *nums = NULL, num, *tmp;
	size_t n = 0, cap = 0, i;
	int r;

	if ((d = opendir(s->dir)) == NULL) {
		snprintf(err, errlen, "spool directory %s: %s", s->dir,
		    strerror(errno));
		return RT_ERR_SYS;
	}
	while ((de = readdir(d)) != NULL) {
		if (parse_seg_name(de->d_name, &num) != 0)
			continue;
		if (n == SPOOL_MAX_SEGS) {
			log_warn("spool %s: more than %d segments, the rest "
			    "are ignored", s->dir, SPOOL_MAX_SEGS);
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((tmp = realloc(nums, cap * sizeof(*nums))) == NULL) {
				closedir(d);
				free(nums);
				return RT_ERR_NOMEM;
			}
			nums = tmp;
		}
		nums[n++] = num;
	}
	closedir(d);
	if (n > 1)
		qsort(nums, n, sizeof(*nums), cmp_u64);

	/* The new segment first, so drops made while loading are recorded. */
	if ((r = seg_new(s, n > 0 ? nums[n - 1] + 1 : 1)) != 0) {
		snprintf(err, errlen, "spool directory %s: cannot create a "
		    "segment", s->dir);
		goto out;
	}
	memset(&ld, 0, sizeof(ld));
	ld.s = s;
	s->loading = 1;
	for (i = 0; i < n; i++) {
		if ((r = load_seg(s, &ld, nums[i])) != 0)
			goto out;
		/* Over the memory bounds: the oldest live messages go
		 * (nothing is in flight yet). */
		while (s->count > s->max_msgs || s->bytes > s->max_bytes)
			drop_msg(s, TAILQ_FIRST(&s->q), "queue full at load");
	}
	s->loading = 0;
	s->loaded = s->count;
	seg_gc(s);
	if (n > 0)
		log_info("spool %s: %zu unacknowledged message(s) loaded from "
		    "%zu segment(s)%s", s->dir, s->count, n,
		    s->corrupt || s->torn ? " (damaged records skipped)" : "");
	r = 0;
 out:
	free(nums);
	return r;
}

int
spool_open(const struct spool_config *cfg, struct spool **out, char *err,
    size_t errlen)
{
	struct spool *s = NULL;
	char path[4096], errbuf[256];
	int r;

	if (out != NULL)
		*out = NULL;
	if (err == NULL || errlen == 0) {
		err = errbuf;
		errlen = sizeof(errbuf);
	}
	err[0] = '\0';
	if (cfg == NULL || out == NULL || cfg->max_msgs == 0 ||
	    cfg->max_bytes == 0) {
		r = RT_ERR_INVAL;
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = RT_ERR_NOMEM;
		goto out;
	}
	TAILQ_INIT(&s->q);
	TAILQ_INIT(&s->segs);
	s->lockfd = s->fd = -1;
	s->max_msgs = cfg->max_msgs;
	s->max_bytes = cfg->max_bytes;
	s->max_disk = cfg->max_disk_bytes;
	s->next_seq = 1;
	if (cfg->dir == NULL || cfg->dir[0] == '\0') {
		*out = s;
		return 0;
	}
	if (s->max_disk < 2 * SPOOL_HDR_LEN) {
		snprintf(err, errlen, "spool: max_disk_bytes too small");
		r = RT_ERR_INVAL;
		goto out;
	}
	if ((s->dir = strdup(cfg->dir)) == NULL) {
		r = RT_ERR_NOMEM;
		goto out;
	}
	if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "spool directory %s: %s", s->dir,
		    strerror(errno));
		r = RT_ERR_SYS;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/lock", s->dir);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lockfd < 0) {
		snprintf(err, errlen, "spool lock %s: %s", path,
		    strerror(errno));
		r = RT_ERR_SYS;
		goto out;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "spool directory %s is in use by "
		    "another process", s->dir);
		r = RT_ERR_EXISTS;
		goto out;
	}
	if ((r = load_dir(s, err, errlen)) != 0)
		goto out;
	(void)spool_sync(s);
	*out = s;
	s = NULL;
	r = 0;
 out:
	/* Allocation failures have no message of their own yet (cfg was
	 * checked before the first allocation). */
	if (r == RT_ERR_NOMEM && err[0] == '\0')
		snprintf(err, errlen, "spool %s: %s", cfg->dir != NULL &&
		    cfg->dir[0] != '\0' ? cfg->dir : "(memory only)",
		    rt_strerror(r));
	spool_close(s);
	return r;
}

void
spool_close(struct spool *s)
{
	struct spool_msg *m;
	struct seg *g;

	if (s == NULL)
		return;
	(void)spool_sync(s);
	while ((m = TAILQ_FIRST(&s->q)) != NULL) {
		TAILQ_REMOVE(&s->q, m, link);
		msg_free(m);
	}
	while ((g = TAILQ_FIRST(&s->segs)) != NULL) {
		TAILQ_REMOVE(&s->segs, g, link);
		free(g);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	free(s->dir);
	free(s);
}
