/*
 * test_spool.c - unit tests of agent/spool.c: CRC32C, the record codec and
 * the pure parser (corrupt and torn input skipped and counted), the drop
 * policy (oldest not in flight; everything in flight refuses), and the
 * disk spool: reload after close, acknowledged messages gone, a torn tail
 * and a flipped bit survived, the directory lock, old segments removed.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "log.h"
#include "runner.h"
#include "spool.h"

int suite_spool(void);

static void
test_crc(void)
{
	/* The CRC-32C check value (RFC 3720 B.4 / the Castagnoli paper). */
	CU_ASSERT_EQUAL(spool_crc32c("123456789", 9), 0xe3069283u);
	CU_ASSERT_EQUAL(spool_crc32c("", 0), 0);
}

struct seen {
	int n;
	uint64_t seq[16];
	uint8_t type[16];
};

static int
collect(void *arg, const struct spool_rec *rec)
{
	struct seen *s = arg;

	if (s->n < 16) {
		s->seq[s->n] = rec->seq;
		s->type[s->n] = rec->type;
	}
	s->n++;
	return 0;
}

static size_t
put_msg(uint8_t *buf, size_t cap, uint64_t seq, const char *topic,
    const char *payload)
{
	struct spool_rec r;
	int n;

	memset(&r, 0, sizeof(r));
	r.type = SPOOL_REC_MSG;
	r.qos = 1;
	r.seq = seq;
	r.topic = (const uint8_t *)topic;
	r.topic_len = strlen(topic);
	r.payload = (const uint8_t *)payload;
	r.payload_len = strlen(payload);
	n = spool_rec_encode(&r, buf, cap);
	CU_ASSERT_FATAL(n > 0);
	return (size_t)n;
}

static void
test_codec_parser(void)
{
	uint8_t buf[1024];
	struct spool_rec r;
	struct spool_parse_stats ps;
	struct seen s;
	size_t len = 0, a, b;

	len += put_msg(buf + len, sizeof(buf) - len, 1, "a/b", "one");
	a = len;
	len += put_msg(buf + len, sizeof(buf) - len, 2, "a/b", "two");
	b = len;
	memset(&r, 0, sizeof(r));
	r.type = SPOOL_REC_ACK;
	r.seq = 1;
	len += (size_t)spool_rec_encode(&r, buf + len, sizeof(buf) - len);

	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(spool_parse(buf, len, collect, &s, &ps), 0);
	CU_ASSERT_EQUAL(s.n, 3);
	CU_ASSERT_EQUAL(ps.records, 3);
	CU_ASSERT_EQUAL(ps.corrupt + ps.torn, 0);
	CU_ASSERT_EQUAL(s.seq[1], 2);
	CU_ASSERT_EQUAL(s.type[2], SPOOL_REC_ACK);

	/* Refused by the encoder: what the parser would refuse. */
	r.type = SPOOL_REC_MSG;
	r.qos = 1;
	r.topic = (const uint8_t *)"a/+";
	r.topic_len = 3;
	CU_ASSERT_EQUAL(spool_rec_encode(&r, buf + len, 512), RT_ERR_INVAL);
	r.type = 9;
	CU_ASSERT_EQUAL(spool_rec_encode(&r, buf + len, 512), RT_ERR_INVAL);
	r.type = SPOOL_REC_ACK;
	r.topic_len = 0;
	r.qos = 0;
	CU_ASSERT_EQUAL(spool_rec_encode(&r, buf + len, 10), RT_ERR_FULL);

	/* A flipped payload bit: that record is skipped, the others stay. */
	buf[a + SPOOL_HDR_LEN + 3] ^= 0x04;
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(spool_parse(buf, len, collect, &s, &ps), 0);
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_EQUAL(ps.corrupt, 1);
	CU_ASSERT_EQUAL(ps.skipped_bytes, b - a);
	CU_ASSERT_EQUAL(s.seq[1], 1);		/* the ack of seq 1 */
	buf[a + SPOOL_HDR_LEN + 3] ^= 0x04;

	/* A torn tail (crash in the middle of a write). */
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(spool_parse(buf, b - 5, collect, &s, &ps), 0);
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_EQUAL(ps.torn, 1);
	CU_ASSERT_EQUAL(ps.corrupt, 0);
	CU_ASSERT_EQUAL(ps.records + 0, 1);

	/* Garbage in front: resynchronised on the next magic. */
	memmove(buf + 7, buf, len);
	memset(buf, 'x', 7);
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(spool_parse(buf, len + 7, collect, &s, &ps), 0);
	CU_ASSERT_EQUAL(s.n, 3);
	CU_ASSERT_EQUAL(ps.corrupt, 1);
	CU_ASSERT_EQUAL(ps.skipped_bytes, 7);
	CU_ASSERT_EQUAL(spool_parse(NULL, 0, collect, &s, &ps), 0);
}

static void
test_drop_policy(void)
{
	struct spool_config c;
	struct spool_stats st;
	struct spool *s = NULL;
	struct spool_msg *m;
	char pl[8];
	int i;

	memset(&c, 0, sizeof(c));
	c.max_msgs = 3;
	c.max_bytes = 1000;
	CU_ASSERT_EQUAL_FATAL(spool_open(&c, &s, NULL, 0), 0);
	for (i = 1; i <= 4; i++) {
		snprintf(pl, sizeof(pl), "m%d", i);
		CU_ASSERT_EQUAL(spool_push(s, "t/x", pl, strlen(pl), 1, 0), 0);
	}
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 3);
	CU_ASSERT_EQUAL(st.dropped, 1);
	m = spool_first(s);
	CU_ASSERT_EQUAL(memcmp(m->payload, "m2", 2), 0);	/* oldest went */

	/* In flight messages are never dropped: m2 stays, m3 goes. */
	m->pkid = 7;
	CU_ASSERT_EQUAL(spool_push(s, "t/x", "m5", 2, 1, 0), 0);
	m = spool_first(s);
	CU_ASSERT_EQUAL(memcmp(m->payload, "m2", 2), 0);
	m = spool_next(s, m);
	CU_ASSERT_EQUAL(memcmp(m->payload, "m4", 2), 0);

	/* Everything in flight: the new message is refused and counted. */
	for (m = spool_first(s); m != NULL; m = spool_next(s, m))
		m->pkid = 9;
	CU_ASSERT_EQUAL(spool_push(s, "t/x", "m6", 2, 1, 0), RT_ERR_FULL);
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 3);
	CU_ASSERT_EQUAL(st.dropped, 3);

	/* Byte bound, bad input. */
	CU_ASSERT_EQUAL(spool_push(s, "t/#", "x", 1, 1, 0), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(spool_push(s, "t/x", "x", 1, 2, 0), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(spool_push(s, "t/x", NULL, 2000, 1, 0), RT_ERR_INVAL);
	{
		static const char big[1001];

		CU_ASSERT_EQUAL(spool_push(s, "t/x", big, sizeof(big), 1, 0),
		    RT_ERR_TOOBIG);
	}
	/* Done in any order. */
	while ((m = spool_first(s)) != NULL)
		spool_done(s, m);
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 0);
	CU_ASSERT_EQUAL(st.bytes, 0);
	spool_close(s);
}

static unsigned int
count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0)
			n++;
	closedir(d);
	return n;
}

/* Path of the only (or last) segment file in dir. */
static void
last_segment(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[300] = "";

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0 &&
		    strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	closedir(d);
	snprintf(out, len, "%s/%s", dir, best);
}

static struct spool *
open_dir(const char *dir, size_t max_msgs)
{
	struct spool_config c;
	struct spool *s = NULL;
	char err[256];

	memset(&c, 0, sizeof(c));
	c.max_msgs = max_msgs;
	c.max_bytes = 1 << 20;
	c.dir = dir;
	c.max_disk_bytes = 8 << 20;
	CU_ASSERT_EQUAL(spool_open(&c, &s, err, sizeof(err)), 0);
	return s;
}

static void
test_disk(void)
{
	char tmp[256], dir[300], seg[700];
	struct spool *s, *s2 = NULL;
	struct spool_config c;
	struct spool_stats st;
	struct spool_msg *m;
	char pl[16], err[256];
	int i, fd;

	log_set_level(LOG_LVL_ERR);
	CU_ASSERT_FATAL(unit_tmpdir(tmp, sizeof(tmp)) == 0);
	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	s = open_dir(dir, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 1; i <= 6; i++) {
		snprintf(pl, sizeof(pl), "seq=%d", i);
		CU_ASSERT_EQUAL(spool_push(s, "a/telemetry", pl, strlen(pl), 1,
		    i == 2), 0);
	}
	CU_ASSERT_EQUAL(spool_push(s, "a/telemetry", "qos0", 4, 0, 0), 0);
	/* Acknowledge 1 and 3. */
	m = spool_first(s);
	spool_done(s, m);
	m = spool_next(s, spool_first(s));
	spool_done(s, m);
	CU_ASSERT_TRUE(spool_dirty(s));
	CU_ASSERT_EQUAL(spool_sync(s), 0);
	CU_ASSERT_FALSE(spool_dirty(s));

	/* Locked while open. */
	memset(&c, 0, sizeof(c));
	c.max_msgs = 10;
	c.max_bytes = 1000;
	c.dir = dir;
	c.max_disk_bytes = 1 << 20;
	CU_ASSERT_EQUAL(spool_open(&c, &s2, err, sizeof(err)), RT_ERR_EXISTS);
	CU_ASSERT_PTR_NULL(s2);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use"));
	spool_close(s);

	/* Reopen: 2, 4, 5, 6 in order (QoS 0 was never on disk). */
	s = open_dir(dir, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 4);
	CU_ASSERT_EQUAL(st.loaded, 4);
	m = spool_first(s);
	CU_ASSERT_EQUAL_FATAL(m->payload_len, 5);
	CU_ASSERT_EQUAL(memcmp(m->payload, "seq=2", 5), 0);
	CU_ASSERT_EQUAL(m->retain, 1);
	CU_ASSERT_STRING_EQUAL(m->topic, "a/telemetry");
	CU_ASSERT_EQUAL(m->pkid, 0);
	m = spool_next(s, m);
	CU_ASSERT_EQUAL(memcmp(m->payload, "seq=4", 5), 0);
	/* New messages continue the sequence. */
	CU_ASSERT_EQUAL(spool_push(s, "a/telemetry", "seq=7", 5, 1, 0), 0);
	for (m = spool_first(s); spool_next(s, m) != NULL; m = spool_next(s, m))
		;
	CU_ASSERT_TRUE(m->seq > 6);
	spool_close(s);

	/* A torn record at the end of the newest segment (power cut). */
	last_segment(dir, seg, sizeof(seg));
	fd = open(seg, O_WRONLY | O_APPEND);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "RTS1\x01\x02\x03", 7), 7);
	close(fd);
	s = open_dir(dir, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 5);
	CU_ASSERT_EQUAL(st.torn, 1);
	/* Memory bound smaller than what is on disk: oldest dropped. */
	spool_close(s);
	s = open_dir(dir, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 2);
	if (st.dropped != 3)
		fprintf(stderr, "dropped %llu loaded %llu\n",
		    (unsigned long long)st.dropped,
		    (unsigned long long)st.loaded);
	CU_ASSERT_EQUAL(st.dropped, 3);
	m = spool_first(s);
	CU_ASSERT_EQUAL(memcmp(m->payload, "seq=6", 5), 0);
	/* Acknowledge everything: the old segments go away. */
	while ((m = spool_first(s)) != NULL)
		spool_done(s, m);
	spool_close(s);
	s = open_dir(dir, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 0);
	CU_ASSERT_EQUAL(st.segments, 1);	/* the new, current one */
	CU_ASSERT_EQUAL(count_segments(dir), 1);
	spool_close(s);
	unit_rmtree(tmp);
}

static void
test_disk_bitflip(void)
{
	char tmp[256], dir[300], seg[700];
	struct spool *s;
	struct spool_stats st;
	struct spool_msg *m;
	uint8_t b;
	int i, fd;

	CU_ASSERT_FATAL(unit_tmpdir(tmp, sizeof(tmp)) == 0);
	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	s = open_dir(dir, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(spool_push(s, "a/b", "0123456789", 10, 1, 0),
		    0);
	spool_close(s);
	/* Flip a bit in the second record's payload. */
	last_segment(dir, seg, sizeof(seg));
	fd = open(seg, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pread(fd, &b, 1, (SPOOL_HDR_LEN + 13) + 30), 1);
	b ^= 0x10;
	CU_ASSERT_EQUAL(pwrite(fd, &b, 1, (SPOOL_HDR_LEN + 13) + 30), 1);
	close(fd);
	s = open_dir(dir, 100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	spool_stats(s, &st);
	CU_ASSERT_EQUAL(st.count, 2);
	CU_ASSERT_EQUAL(st.corrupt, 1);
	m = spool_first(s);
	CU_ASSERT_EQUAL(m->seq, 1);
	CU_ASSERT_EQUAL(spool_next(s, m)->seq, 3);
	spool_close(s);
	unit_rmtree(tmp);
}

int
suite_spool(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		{ "crc", test_crc },
		{ "codec_parser", test_codec_parser },
		{ "drop_policy", test_drop_policy },
		{ "disk", test_disk },
		{ "disk_bitflip", test_disk_bitflip },
	};
	CU_pSuite s;
	size_t i;

	if ((s = CU_add_suite("spool", NULL, NULL)) == NULL)
		return CU_get_error();
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
			return CU_get_error();
	return 0;
}
