/*
 * penalty.c - per-source penalty table (penalty.h).
 *
 * A fixed array of hash buckets, each a singly linked chain of entries
 * allocated one by one; the table holds at most max_sources entries, so
 * chains stay short (max_sources / PEN_BUCKETS on average). Scans over the
 * whole table happen only when it is full (to find room) or when the
 * caller asks for a sweep.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "penalty.h"

#define PEN_BUCKETS 4096	/* a power of two */

struct pen_entry {
	struct pen_entry *next;
	struct pen_addr a;
	int64_t expires;		/* monotonic ms: the penalty runs out */
	int enforced;			/* left reached min_ms in this episode */
	enum pen_reason why;		/* the failure that started the episode */
};

#define PEN_SAMPLE 64	/* buckets looked at for a victim before a full scan */

struct pen_table {
	struct pen_entry *bucket[PEN_BUCKETS];
	size_t n;
	size_t cursor;		/* where the next victim search starts */
	int64_t expired_at;	/* last full expiry pass (make_room) */
	int64_t full_until;	/* every entry enforced until then */
};

static const unsigned char v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

/* Full (unmasked) address: family 4 with b[0..3], or 6 with b[0..15]. */
static int
parse_full(const char *host, struct pen_addr *out)
{
	struct in_addr v4;
	struct in6_addr v6;

	memset(out, 0, sizeof(*out));
	if (host == NULL)
		return RT_ERR_INVAL;
	if (inet_pton(AF_INET, host, &v4) == 1) {
		out->family = 4;
		memcpy(out->b, &v4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6) == 1) {
		if (memcmp(v6.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
			out->family = 4;
			memcpy(out->b, v6.s6_addr + 12, 4);
			return 0;
		}
		out->family = 6;
		memcpy(out->b, v6.s6_addr, 16);
		return 0;
	}
	return RT_ERR_INVAL;
}

int
pen_addr_from_str(const char *host, struct pen_addr *out)
{
	int rc;

	if ((rc = parse_full(host, out)) != 0)
		return rc;
	if (out->family == 6)
		memset(out->b + 8, 0, 8);	/* the /64 */
	return 0;
}

void
pen_addr_str(const struct pen_addr *a, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if (a->family == 4 && inet_ntop(AF_INET, a->b, s, sizeof(s)) != NULL)
		snprintf(buf, len, "%s", s);
	else if (a->family == 6 &&
	    inet_ntop(AF_INET6, a->b, s, sizeof(s)) != NULL)
		snprintf(buf, len, "%s/64", s);
	else
		snprintf(buf, len, "?");
}

/* 1 if the first bits of x and y are equal. */
static int
prefix_eq(const unsigned char *x, const unsigned char *y, unsigned int bits)
{
	unsigned int whole = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(x, y, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (x[whole] & mask) == (y[whole] & mask);
}

int
pen_net_parse(const char *s, struct pen_net *out, const char **why)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash;
	struct pen_addr a;
	unsigned int max, i;
	size_t alen;
	long bits;
	char *end;

	memset(out, 0, sizeof(*out));
	*why = "expected ADDRESS or ADDRESS/BITS";
	if (s == NULL)
		return RT_ERR_INVAL;
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return RT_ERR_INVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	/* a mapped address in a list would silently mean IPv4: say so */
	if (strchr(addr, ':') != NULL && strchr(addr, '.') != NULL) {
		*why = "write an IPv4 network as IPv4 (not ::ffff:a.b.c.d)";
		return RT_ERR_INVAL;
	}
	if (parse_full(addr, &a) != 0) {
		*why = "not a literal IPv4 or IPv6 address";
		return RT_ERR_INVAL;
	}
	max = a.family == 4 ? 32 : 128;
	bits = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9') {
			*why = "bad prefix length";
			return RT_ERR_INVAL;
		}
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits < 0 || bits > (long)max) {
			*why = a.family == 4 ? "prefix length must be 0-32" :
			    "prefix length must be 0-128";
			return RT_ERR_INVAL;
		}
	}
	for (i = (unsigned int)bits; i < max; i++) {
		if (a.b[i / 8] & (0x80 >> (i % 8))) {
			*why = "address has bits set past the prefix length";
			return RT_ERR_INVAL;
		}
	}
	out->family = a.family;
	memcpy(out->b, a.b, sizeof(out->b));
	out->bits = (unsigned int)bits;
	*why = NULL;
	return 0;
}

int
pen_net_match(const struct pen_net *nets, size_t n, const char *host)
{
	struct pen_addr a;
	size_t i;

	if (parse_full(host, &a) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (nets[i].family == a.family &&
		    prefix_eq(nets[i].b, a.b, nets[i].bits))
			return 1;
	}
	return 0;
}

int
pen_table_new(struct pen_table **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? 0 : RT_ERR_NOMEM;
}

void
pen_table_free(struct pen_table *t)
{
	struct pen_entry *e, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < PEN_BUCKETS; i++) {
		for (e = t->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t);
}

/* FNV-1a over the key. */
static size_t
bucket_of(const struct pen_addr *a)
{
	uint32_t h = 2166136261u;
	size_t i;

	h = (h ^ a->family) * 16777619u;
	for (i = 0; i < sizeof(a->b); i++)
		h = (h ^ a->b[i]) * 16777619u;
	return h & (PEN_BUCKETS - 1);
}

static int
same(const struct pen_addr *x, const struct pen_addr *y)
{
	return x->family == y->family && memcmp(x->b, y->b, sizeof(x->b)) == 0;
}

/* The entry of a, or NULL; *prevp gets the link that points to it. */
static struct pen_entry *
find(struct pen_table *t, const struct pen_addr *a,
     struct pen_entry ***prevp)
{
	struct pen_entry **pp = &t->bucket[bucket_of(a)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (same(&(*pp)->a, a)) {
			*prevp = pp;
			return *pp;
		}
	}
	return NULL;
}

static void
unlink_free(struct pen_table *t, struct pen_entry **pp)
{
	struct pen_entry *e = *pp;

	*pp = e->next;
	free(e);
	t->n--;
}

void
pen_expire(struct pen_table *t, int64_t now)
{
	struct pen_entry **pp;
	size_t i;

	for (i = 0; i < PEN_BUCKETS && t->n > 0; i++) {
		pp = &t->bucket[i];
		while (*pp != NULL) {
			if ((*pp)->expires <= now)
				unlink_free(t, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

/*
 * Makes room for one entry in a full table: run-out entries go first,
 * then the not-enforced entry that runs out soonest (more than one after
 * a reload lowered max_sources). Returns 1 if there is room now, 0 if
 * every entry left is enforced.
 */
static int
make_room(struct pen_table *t, const struct pen_policy *p, int64_t now)
{
	struct pen_entry **pp, **victim;
	int64_t earliest;
	size_t b, nb;

	/*
	 * A full table must not cost a scan of every entry per failure (at
	 * the default 65,536 sources that took ~5 ms on the relay's loop):
	 * run-out entries are swept at most once a second, a table found
	 * all enforced is known to stay so until its earliest expiry, and
	 * the victim is the soonest-expiring non-enforced entry of a sample
	 * of PEN_SAMPLE buckets (an approximation, as in Redis's eviction),
	 * with a full scan only when the sample holds none.
	 */
	if (now < t->full_until)
		return 0;
	if (now - t->expired_at >= 1000 || t->expired_at == 0) {
		pen_expire(t, now);
		t->expired_at = now;
	}
	while (t->n >= p->max_sources) {
		victim = NULL;
		earliest = INT64_MAX;
		for (nb = 0; nb < PEN_BUCKETS; nb++) {
			b = (t->cursor + nb) & (PEN_BUCKETS - 1);
			for (pp = &t->bucket[b]; *pp != NULL;
			    pp = &(*pp)->next) {
				if ((*pp)->expires <= now) {
					victim = pp;	/* ran out: take it */
					break;
				}
				if ((*pp)->enforced) {
					if ((*pp)->expires < earliest)
						earliest = (*pp)->expires;
				} else if (victim == NULL ||
				    (*pp)->expires < (*victim)->expires)
					victim = pp;
			}
			if (victim != NULL && (nb + 1 >= PEN_SAMPLE ||
			    (*victim)->expires <= now))
				break;
		}
		t->cursor = (t->cursor + nb + 1) & (PEN_BUCKETS - 1);
		if (victim == NULL) {
			t->full_until = earliest;
			return 0;
		}
		unlink_free(t, victim);
	}
	return 1;
}

int
pen_add(struct pen_table *t, const struct pen_policy *p,
	const struct pen_addr *a, enum pen_reason why, int64_t now,
	int64_t *left_ms)
{
	struct pen_entry *e, **pp;
	int64_t d, left;

	if (left_ms != NULL)
		*left_ms = 0;
	if ((int)why < 0 || why >= PEN_NREASONS || p->max_sources == 0)
		return RT_ERR_INVAL;
	d = p->ms[why] < p->max_ms ? p->ms[why] : p->max_ms;
	if (d < 0)
		d = 0;
	if ((e = find(t, a, &pp)) != NULL && e->expires <= now) {
		unlink_free(t, pp);	/* ran out: a new start */
		e = NULL;
	}
	if (e == NULL) {
		if (t->n >= p->max_sources && !make_room(t, p, now))
			return PEN_FULL;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return RT_ERR_NOMEM;
		e->a = *a;
		e->expires = now;
		pp = &t->bucket[bucket_of(a)];
		e->next = *pp;
		*pp = e;
		t->n++;
	}
	e->expires += d;
	if (e->expires - now > p->max_ms)
		e->expires = now + p->max_ms;
	left = e->expires - now;
	if (left_ms != NULL)
		*left_ms = left;
	if (e->enforced)
		return PEN_EXTENDED;
	/* a zero penalty is never enforced, whatever min says */
	if (left > 0 && left >= p->min_ms) {
		e->enforced = 1;
		e->why = why;
		return PEN_STARTED;
	}
	return PEN_NOTED;
}

int
pen_check(struct pen_table *t, const struct pen_addr *a, int64_t now,
	  int64_t *left_ms, enum pen_reason *why)
{
	struct pen_entry *e, **pp;

	if (left_ms != NULL)
		*left_ms = 0;
	if ((e = find(t, a, &pp)) == NULL)
		return 0;
	if (e->expires <= now) {
		unlink_free(t, pp);
		return 0;
	}
	if (!e->enforced)
		return 0;
	if (left_ms != NULL)
		*left_ms = e->expires - now;
	if (why != NULL)
		*why = e->why;
	return 1;
}

size_t
pen_count(const struct pen_table *t)
{
	return t->n;
}

size_t
pen_enforced(const struct pen_table *t, int64_t now)
{
	const struct pen_entry *e;
	size_t i, n = 0;

	for (i = 0; i < PEN_BUCKETS; i++) {
		for (e = t->bucket[i]; e != NULL; e = e->next)
			n += e->enforced && e->expires > now;
	}
	return n;
}

const char *
pen_reason_name(enum pen_reason why)
{
	switch (why) {
	case PEN_NOAUTH:
		return "noauth";
	case PEN_AUTHFAIL:
		return "authfail";
	case PEN_GUESSING:
		return "guessing";
	default:
		return "?";
	}
}
