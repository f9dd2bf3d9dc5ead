/*
 * penalty.h - per-source penalties for operator connections that fail
 * (like OpenSSH's PerSourcePenalties): the table and its rules, pure (no
 * I/O, no clock: the caller passes monotonic milliseconds in).
 *
 * A source is an IPv4 address (/32) or an IPv6 /64 (a host usually holds
 * a whole /64, as OpenSSH assumes); an IPv4-mapped IPv6 address counts as
 * its IPv4 address. Each failure adds the duration of its reason to the
 * source's penalty, which runs out in real time:
 *
 *   - a source without a penalty gets now + d (d capped at max);
 *   - one whose penalty has not run out gets d more, capped at now + max;
 *   - the penalty is *enforced* (the source is refused) once what is left
 *     of it reaches min; from then until it runs out is one *episode*.
 *     A single failure (authfail 5 s < min 15 s) refuses nobody: a person
 *     who mistyped once is not locked out, a script that fails three
 *     times within a few seconds is.
 *
 * Bounds: at most max_sources entries. A run-out entry is dropped when
 * looked up or when room is needed. When the table is full of live
 * entries, a new source takes the place of the not-enforced entry that
 * runs out first; if every entry is enforced, the new failure is not
 * recorded (PEN_FULL): the table never grows and never refuses a source
 * it does not hold, so a flood of addresses cannot lock everyone out.
 *
 * Exempt networks (pen_net) are matched by the caller before anything is
 * recorded (pen_net_match).
 */
#ifndef RT_PENALTY_H
#define RT_PENALTY_H

#include <stddef.h>
#include <stdint.h>

/* "2001:db8:1:2::/64" and the like fit, with the NUL. */
#define PEN_ADDRSTRLEN 64

/* A source as the table keys it: masked to /32 (IPv4) or /64 (IPv6). */
struct pen_addr {
	unsigned char family;		/* 4 or 6 */
	unsigned char b[16];		/* IPv4 in b[0..3]; the rest zero */
};

/* A network of the exempt list: "10.0.0.0/8", "2001:db8::/32". */
struct pen_net {
	unsigned char family;		/* 4 or 6 */
	unsigned char b[16];
	unsigned int bits;		/* prefix length */
};

enum pen_reason {
	PEN_NOAUTH = 0,		/* no valid handshake, or no login attempt */
	PEN_AUTHFAIL,		/* ended without login after a failed try */
	PEN_GUESSING,		/* logged in, then too many denied requests */
	PEN_NREASONS,
};

struct pen_policy {
	int64_t ms[PEN_NREASONS];	/* what each failure adds */
	int64_t min_ms;			/* enforced once this much is left */
	int64_t max_ms;			/* cap on what is left */
	size_t max_sources;		/* entries (>= 1) */
};

enum pen_result {
	PEN_NOTED = 0,		/* recorded, not enforced (yet) */
	PEN_STARTED,		/* enforced from now on: a new episode */
	PEN_EXTENDED,		/* was already enforced: now longer */
	PEN_FULL,		/* table full of enforced sources: dropped */
};

struct pen_table;

/*
 * Parses a literal address ("192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7")
 * into the source it belongs to. Returns 0, or RT_ERR_INVAL (*out zeroed)
 * for anything else (names, ports, brackets, NULL).
 */
int pen_addr_from_str(const char *host, struct pen_addr *out);

/* Writes a source as "192.0.2.7" or "2001:db8:1:2::/64" into buf (at
 * least PEN_ADDRSTRLEN bytes for the whole text). */
void pen_addr_str(const struct pen_addr *a, char *buf, size_t len);

/*
 * Parses "ADDR/BITS" or a plain "ADDR" (a /32 or /128): IPv4 bits 0-32,
 * IPv6 0-128. Host bits past the prefix must be zero ("10.0.0.1/8" is
 * refused: it usually means a typo). Returns 0, or RT_ERR_INVAL with a
 * static reason in *why.
 */
int pen_net_parse(const char *s, struct pen_net *out, const char **why);

/* 1 if literal address host lies in one of nets[0..n); 0 otherwise (also
 * for a host that does not parse). An IPv4-mapped IPv6 host matches as
 * IPv4. */
int pen_net_match(const struct pen_net *nets, size_t n, const char *host);

/* A new, empty table. Returns 0 and *out, or RT_ERR_NOMEM. */
int pen_table_new(struct pen_table **out);

/* Frees t and its entries. NULL is a no-op. */
void pen_table_free(struct pen_table *t);

/*
 * Records one failure of reason why from source a at now, under policy p
 * (read at each call, so a reload takes effect at once). *left_ms (may
 * be NULL) gets what is left of the source's penalty afterwards (0 for
 * PEN_FULL). Returns an enum pen_result, or RT_ERR_NOMEM / RT_ERR_INVAL
 * (a bad reason).
 */
int pen_add(struct pen_table *t, const struct pen_policy *p,
	    const struct pen_addr *a, enum pen_reason why, int64_t now,
	    int64_t *left_ms);

/*
 * 1 if source a is refused at now (its penalty is enforced and has not
 * run out), with what is left in *left_ms (may be NULL) and the reason
 * that started the episode in *why (may be NULL); 0 otherwise. A run-out
 * entry found here is dropped.
 */
int pen_check(struct pen_table *t, const struct pen_addr *a, int64_t now,
	      int64_t *left_ms, enum pen_reason *why);

/* Drops every entry that ran out by now. */
void pen_expire(struct pen_table *t, int64_t now);

/* Entries held, and how many of them are enforced at now. */
size_t pen_count(const struct pen_table *t);
size_t pen_enforced(const struct pen_table *t, int64_t now);

/* "noauth", "authfail", "guessing" ("?" for anything else). */
const char *pen_reason_name(enum pen_reason why);

#endif
