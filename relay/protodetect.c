/*
 * protodetect.c - first-bytes protocol detection (protodetect.h).
 */
#include "config.h"

#include <string.h>

#include "protodetect.h"

#define TLS_CT_HANDSHAKE 0x16	/* RFC 8446 5.1 ContentType handshake */

static const char ssh_prefix[PD_PEEK_LEN] = { 'S', 'S', 'H', '-' };

enum pd_proto
pd_classify(const unsigned char *b, size_t len, const char **why)
{
	size_t n = len < PD_PEEK_LEN ? len : PD_PEEK_LEN;

	*why = NULL;
	if (n == 0)
		return PD_NEED_MORE;
	if (b[0] == TLS_CT_HANDSHAKE)
		return PD_TLS;
	/* Every byte seen must match: "SX" is refused at once, not after
	 * waiting for a fourth byte that cannot make it SSH. */
	if (memcmp(b, ssh_prefix, n) != 0) {
		*why = "neither TLS nor SSH";
		return PD_REJECT;
	}
	return n < PD_PEEK_LEN ? PD_NEED_MORE : PD_SSH;
}

const char *
pd_name(enum pd_proto p)
{
	switch (p) {
	case PD_NEED_MORE:
		return "need more";
	case PD_TLS:
		return "TLS";
	case PD_SSH:
		return "SSH";
	case PD_REJECT:
		return "reject";
	}
	return "?";
}
