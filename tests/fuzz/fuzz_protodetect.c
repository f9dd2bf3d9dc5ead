/*
 * fuzz_protodetect.c - fuzz target for relay/protodetect.c: classifies the
 * input, and each of its prefixes the way the listener sees a peer's bytes
 * arrive, each from an exactly sized copy (so ASan catches a read past
 * len), and aborts on any violation of the contract:
 *  - the result is one of enum pd_proto; *why is set iff PD_REJECT;
 *  - PD_TLS only for first byte 0x16, PD_SSH only for "SSH-", and always
 *    for those (the spec, restated independently);
 *  - PD_PEEK_LEN bytes always decide (never "need more");
 *  - a decision never changes when more bytes arrive.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protodetect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The expected answer, written from the rule rather than the code. */
static enum pd_proto
oracle(const uint8_t *d, size_t n)
{
	size_t i;

	if (n > 0 && d[0] == 0x16)
		return PD_TLS;
	for (i = 0; i < n && i < 4; i++)
		if (d[i] != (uint8_t)"SSH-"[i])
			return PD_REJECT;
	return n >= 4 ? PD_SSH : PD_NEED_MORE;
}

static enum pd_proto
check(const uint8_t *data, size_t len)
{
	unsigned char *b = NULL;
	const char *why = "unset";
	enum pd_proto p;

	if (len > 0 && (b = malloc(len)) == NULL)
		abort();
	if (len > 0)
		memcpy(b, data, len);
	p = pd_classify(b, len, &why);
	free(b);
	if (p != oracle(data, len))
		abort();
	if ((p == PD_REJECT) != (why != NULL))
		abort();
	if (why != NULL && why[0] == '\0')
		abort();
	if (len >= PD_PEEK_LEN && p == PD_NEED_MORE)
		abort();
	if (strcmp(pd_name(p), "?") == 0)
		abort();
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum pd_proto p, q;
	size_t i, n;

	p = check(data, size);
	/* Prefixes past a few times the decision length add nothing. */
	n = size < 4 * PD_PEEK_LEN ? size : 4 * PD_PEEK_LEN;
	for (i = 0; i < n; i++) {
		q = check(data, i);
		if (q != PD_NEED_MORE && q != p)
			abort();
	}
	return 0;
}
