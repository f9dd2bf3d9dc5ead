/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over every file
 * of its committed corpus, so make check replays what the fuzzer found
 * without needing libFuzzer. Exit 0 when every input ran (a crash or a
 * sanitizer report fails the test), 99 when the corpus cannot be read.
 *
 * The corpus is $top_srcdir/tests/fuzz/corpus/FUZZ_NAME, or the files and
 * directories given on the command line.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (1024 * 1024)

static int
replay_file(const char *path, unsigned long *count)
{
	static uint8_t data[REPLAY_MAX_INPUT];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(data, 1, sizeof(data), f);
	fclose(f);
	LLVMFuzzerTestOneInput(data, n);
	(*count)++;
	return 0;
}

static int
replay_path(const char *path, unsigned long *count)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (replay_path(sub, count) != 0)
			r = -1;
	}
	closedir(d);
	return r;
}

int
main(int argc, char **argv)
{
	unsigned long count = 0;
	int r = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (replay_path(argv[i], &count) != 0)
				r = -1;
	} else {
		const char *top = getenv("top_srcdir");
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
			 top != NULL ? top : ".", FUZZ_NAME);
		r = replay_path(dir, &count);
	}
	printf("%s: replayed %lu inputs\n", FUZZ_NAME, count);
	if (r != 0 || count == 0)
		return 99;
	return 0;
}
