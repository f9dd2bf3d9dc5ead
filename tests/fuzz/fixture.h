/*
 * fixture.h - the fixture directory shared by the config-loader fuzz
 * targets: a private temporary directory with the files a config may
 * name, and "@D" in an input replaced by that directory.
 */
#ifndef RT_FUZZ_FIXTURE_H
#define RT_FUZZ_FIXTURE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct fuzz_file {
	const char *name;
	const char *text;
	mode_t mode;
};

/*
 * Makes /tmp/rt-fuzz-XXXXXX holding files[0..n-1] with their modes, and
 * a named pipe "fifo" (0600) when with_fifo; removed at exit. Aborts on
 * any failure (a fuzz target cannot run without it). Returns the
 * directory, valid until exit. Call once.
 */
const char *fuzz_fixture_make(const struct fuzz_file *files, size_t n,
			      int with_fifo);

/* The input up to its first NUL with every "@D" replaced by dir, as a
 * malloc'd string; NULL when out of memory. */
char *fuzz_expand(const char *dir, const uint8_t *data, size_t size);

#endif
