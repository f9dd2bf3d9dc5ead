/*
 * fixture.c - fixture directory and "@D" expansion for the config-loader
 * fuzz targets (fixture.h).
 */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static char fixture_dir[64];
static const struct fuzz_file *fixture_files;
static size_t fixture_n;
static int fixture_fifo;

static void
fixture_remove(void)
{
	char path[128];

	for (size_t i = 0; i < fixture_n; i++) {
		snprintf(path, sizeof(path), "%s/%s", fixture_dir,
		    fixture_files[i].name);
		unlink(path);
	}
	if (fixture_fifo) {
		snprintf(path, sizeof(path), "%s/fifo", fixture_dir);
		unlink(path);
	}
	rmdir(fixture_dir);
}

const char *
fuzz_fixture_make(const struct fuzz_file *files, size_t n, int with_fifo)
{
	char path[128];
	FILE *f;

	snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/rt-fuzz-XXXXXX");
	if (mkdtemp(fixture_dir) == NULL)
		abort();
	fixture_files = files;
	fixture_n = n;
	fixture_fifo = with_fifo;
	atexit(fixture_remove);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", fixture_dir,
		    files[i].name);
		if ((f = fopen(path, "w")) == NULL ||
		    fputs(files[i].text, f) == EOF || fclose(f) != 0 ||
		    chmod(path, files[i].mode) != 0)
			abort();
	}
	if (with_fifo) {
		snprintf(path, sizeof(path), "%s/fifo", fixture_dir);
		if (mkfifo(path, 0600) != 0)
			abort();
	}
	return fixture_dir;
}

char *
fuzz_expand(const char *dir, const uint8_t *data, size_t size)
{
	size_t dlen = strlen(dir), o = 0;
	char *out;

	if ((out = malloc(size / 2 * dlen + size + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < size && data[i] != '\0'; i++) {
		if (data[i] == '@' && i + 1 < size && data[i + 1] == 'D') {
			memcpy(out + o, dir, dlen);
			o += dlen;
			i++;
		} else
			out[o++] = (char)data[i];
	}
	out[o] = '\0';
	return out;
}
