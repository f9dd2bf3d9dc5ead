/*
 * ctlproto.c - framing of the built-in control / shell channels
 * (ctlproto.h): a pure parser and encoder, no I/O, no allocation beyond
 * the caller's bounded buffer.
 *
 * Direction and ordering rules (REQ once, first; PTY/WINCH only from the
 * relay; EXIT last) are the state of whoever holds the channel; this file
 * only knows what one frame looks like.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "ctlproto.h"
#include "err.h"
#include "util.h"

static int
known_type(uint8_t t)
{
	return t >= CTL_REQ && t <= CTL_WINCH;
}

int
ctl_parse(const uint8_t *data, size_t len, struct ctl_frame *f)
{
	uint32_t plen;

	if (len < 1)
		return RT_ERR_AGAIN;
	/* The type is known from the first byte: refuse early. */
	if (!known_type(data[0]))
		return RT_ERR_PROTO;
	if (len < CTL_HDR_LEN)
		return RT_ERR_AGAIN;
	plen = (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
	if (plen > CTL_MAX_PAYLOAD)
		return RT_ERR_TOOBIG;
	if (len - CTL_HDR_LEN < plen)
		return RT_ERR_AGAIN;
	f->type = data[0];
	f->len = plen;
	f->payload = data + CTL_HDR_LEN;
	return (int)(CTL_HDR_LEN + plen);
}

int
ctl_append(struct buf *out, uint8_t type, const void *payload, size_t len)
{
	uint8_t hdr[CTL_HDR_LEN];
	uint8_t *p;
	size_t avail;

	if (!known_type(type))
		return RT_ERR_INVAL;
	if (len > CTL_MAX_PAYLOAD)
		return RT_ERR_TOOBIG;
	if (buf_room(out) < CTL_HDR_LEN + len)
		return RT_ERR_FULL;
	hdr[0] = type;
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	/* One reservation for header and payload: all or nothing. */
	if (buf_reserve(out, CTL_HDR_LEN + len, &p, &avail) < 0)
		return RT_ERR_NOMEM;
	if (avail < CTL_HDR_LEN + len)
		return RT_ERR_FULL;
	memcpy(p, hdr, CTL_HDR_LEN);
	if (len > 0)
		memcpy(p + CTL_HDR_LEN, payload, len);
	buf_commit(out, CTL_HDR_LEN + len);
	return 0;
}

/* Length of the UTF-8 sequence at p[0..n) if it is a well-formed,
 * printable (no C0/C1 control, no DEL) character; 0 otherwise. */
static size_t
utf8_char(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t need, i;

	if (p[0] < 0x80)
		return p[0] >= 0x20 && p[0] != 0x7f ? 1 : 0;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		need = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* Overlongs, surrogates, beyond U+10FFFF, C1 controls. */
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return need;
}

int
ctl_req_split(const struct ctl_frame *f, char *op, size_t opsz,
    char *cmd, size_t cmdsz)
{
	const uint8_t *p, *nul;
	size_t oplen, clen, i, k;

	if (f == NULL || f->type != CTL_REQ || op == NULL || cmd == NULL ||
	    opsz == 0 || cmdsz == 0)
		return RT_ERR_PROTO;
	p = f->payload;
	if (f->len == 0 || (nul = memchr(p, '\0', f->len)) == NULL)
		return RT_ERR_PROTO;
	oplen = (size_t)(nul - p);
	clen = f->len - oplen - 1;
	if (oplen < 1 || oplen > 64 || oplen >= opsz)
		return RT_ERR_PROTO;
	for (i = 0; i < oplen; i++) {
		uint8_t c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return RT_ERR_PROTO;
	}
	if (clen < 1 || clen > 4096 || clen >= cmdsz)
		return RT_ERR_PROTO;
	for (i = 0; i < clen; i += k)
		if ((k = utf8_char(nul + 1 + i, clen - i)) == 0)
			return RT_ERR_PROTO;
	memcpy(op, p, oplen);
	op[oplen] = '\0';
	memcpy(cmd, nul + 1, clen);
	cmd[clen] = '\0';
	return 0;
}

void
ctl_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void
ctl_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
ctl_get_winch(const struct ctl_frame *f, uint16_t *cols, uint16_t *rows)
{
	/* CTL_PTY starts with the same 4 bytes, then the TERM name. */
	if (f == NULL || (f->type != CTL_WINCH && f->type != CTL_PTY) ||
	    f->len < 4 || (f->type == CTL_WINCH && f->len != 4))
		return RT_ERR_PROTO;
	*cols = (uint16_t)(f->payload[0] << 8 | f->payload[1]);
	*rows = (uint16_t)(f->payload[2] << 8 | f->payload[3]);
	return 0;
}

int
ctl_get_exit(const struct ctl_frame *f, uint32_t *status)
{
	if (f == NULL || f->type != CTL_EXIT || f->len != 4)
		return RT_ERR_PROTO;
	*status = (uint32_t)f->payload[0] << 24 |
	    (uint32_t)f->payload[1] << 16 | (uint32_t)f->payload[2] << 8 |
	    f->payload[3];
	return 0;
}

/* Decimal id at p[0..len): digits only, no leading zero, in range.
 * Returns the digits used (> 0) or 0. */
static size_t
parse_id(const uint8_t *p, size_t len, uint64_t *id)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
		if (i == 15)
			return 0;	/* over CTL_EVENT_ID_MAX */
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (i == 0 || (p[0] == '0') || v > CTL_EVENT_ID_MAX)
		return 0;
	*id = v;
	return i;
}

int
ctl_event_id(const uint8_t *p, size_t len, uint64_t *id)
{
	static const char pre[] = "{\"id\":";
	size_t n, pl = sizeof(pre) - 1;
	uint64_t v;

	if (p == NULL || len <= pl || memcmp(p, pre, pl) != 0)
		return RT_ERR_PROTO;
	if ((n = parse_id(p + pl, len - pl, &v)) == 0 || pl + n >= len ||
	    (p[pl + n] != ',' && p[pl + n] != '}'))
		return RT_ERR_PROTO;
	*id = v;
	return 0;
}

int
ctl_ack_parse(const uint8_t *p, size_t len, uint64_t *id)
{
	uint64_t v;

	if (p == NULL || len <= 4 || memcmp(p, "ack ", 4) != 0 ||
	    parse_id(p + 4, len - 4, &v) != len - 4)
		return RT_ERR_PROTO;
	*id = v;
	return 0;
}

size_t
ctl_ack_format(char *out, size_t outsz, uint64_t id)
{
	int n = snprintf(out, outsz, "ack %llu", (unsigned long long)id);

	return n < 0 ? 0 : RT_MIN((size_t)n, outsz - 1);
}
