/*
 * control.c - the built-in `control` and `shell` services and the
 * rollback of remote configuration changes (control.h).
 *
 * Owns the list of built-in channels of the current SSH session, the
 * shells whose channel is gone but whose child is not reaped yet, the
 * probation (rollback timer), the last event and the queue of events
 * for the relay (with the relay's events channel). Each channel moves
 * through REQ (waiting for CTL_REQ) -> [PTYWAIT (shell: waiting briefly
 * for CTL_PTY)] -> RUN (command running: stdin being collected, logs
 * being followed, shell running) -> DONE (EXIT queued, output flushing)
 * -> CLOSING (EOF and CLOSE sent, waiting for the relay's) -> DEAD
 * (reaped by control_pump). Protocol errors go straight to CLOSING. The
 * relay's events channel stays in RUN for the life of the session.
 *
 * Nothing is freed inside a loop callback: callbacks (follower and shell
 * notifications) only kick the agent's pump.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_config.h"
#include "buf.h"
#include "cfgstore.h"
#include "cfgutil.h"
#include "control.h"
#include "ctlproto.h"
#include "err.h"
#include "log.h"
#include "logring.h"
#include "loop.h"
#include "shell.h"
#include "sshc.h"
#include "uplink.h"
#include "util.h"

#define CONTROL_QUOTA	(32 * 1024)	/* bytes per channel per pump */
#define CONTROL_PTY_WAIT_MS 500		/* how long a shell waits for PTY */
#define CONTROL_FLUSH_MS 2000		/* answer before a reload, at most */
#define CONTROL_EVQ_FILE_MAX (CONTROL_EVQ_BYTES + CONTROL_EVQ_MAX + 256)

enum cc_state {
	CC_REQ,
	CC_PTYWAIT,
	CC_RUN,
	CC_DONE,
	CC_CLOSING,
	CC_DEAD,
};

enum cc_kind {
	K_NONE,
	K_APPLY,		/* collecting a config file on stdin */
	K_FOLLOW,		/* logs -f */
	K_SHELL,
	K_EVENTS,		/* the relay's events channel */
};

struct ctlchan {
	TAILQ_ENTRY(ctlchan) entry;
	struct control *ctl;
	unsigned int id;
	enum cc_state state;
	enum cc_kind kind;
	LIBSSH2_CHANNEL *ch;
	char svc[16];
	char relay[160];
	char op[65];
	char cmd[4097];
	struct buf *from_relay;		/* raw frames from the relay */
	struct buf *to_relay;		/* frames to the relay */
	struct buf *input;		/* config apply: stdin collected */
	struct logring_follower *follow;
	struct shell *sh;
	struct loop_timer *timer;	/* PTY wait */
	uint16_t cols, rows;
	char term[64];
	int chan_eof;			/* libssh2 saw the relay's EOF */
	int eof_sent;
	int reload_after;		/* request a reload once flushed */
	int more;			/* stopped at the quota this pump */
	int64_t done_ms;
	int64_t opened_ms;
	uint64_t ev_sent;		/* K_EVENTS: highest id sent on it */
};

TAILQ_HEAD(ctlchan_list, ctlchan);

struct orphan {
	LIST_ENTRY(orphan) entry;
	struct shell *sh;
};

struct control {
	struct agent *a;
	struct ctlchan_list chans;
	unsigned int nchans;
	LIST_HEAD(, orphan) orphans;	/* shells hung up, not reaped */

	/* probation after a remote config change */
	int probation;
	int probation_uplink;		/* relay settings changed */
	int probation_loaded;		/* the changed file was reloaded */
	uint64_t probation_connects;	/* sessions up before the change */
	char probation_from[65];
	struct loop_timer *probation_timer;
	int rollback_due;
	int rolled_back;		/* waiting to report reconnection */

	char event[CONTROL_EVENT_MAX];	/* last event JSON, "" = none */
	control_event_fn event_fn;
	void *event_arg;
	struct control_evq evq;		/* events for the relay, not acked */
	struct ctlchan *evchan;		/* the relay's events channel */
};

static void cc_close(struct ctlchan *cc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Small bounded string builder for replies.
 */
struct sb {
	char *s;
	size_t len, cap, max;
	int oom;
};

static void sb_printf(struct sb *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sb_add(struct sb *b, const char *p, size_t n)
{
	size_t ncap;
	char *ns;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > b->max + 1 || (ns = realloc(b->s, ncap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_printf(struct sb *b, const char *fmt, ...)
{
	char tmp[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_add(b, tmp, RT_MIN((size_t)n, sizeof(tmp) - 1));
}

/* Takes the string out of b; NULL when out of memory. */
static char *
sb_take(struct sb *b)
{
	char *s;

	if (b->oom) {
		free(b->s);
		b->s = NULL;
		return NULL;
	}
	if (b->s == NULL)
		return strdup("");
	s = b->s;
	b->s = NULL;
	return s;
}

/*
 * Config text scanning (pure): libconfuse syntax, line by line.
 */

/* Copies line [p, p+n) into out without a trailing comment (# or //
 * outside quotes); returns the length kept. */
static size_t
strip_comment(const char *p, size_t n, char *out, size_t outsz)
{
	size_t i, k = 0;
	int q = 0;

	for (i = 0; i < n && k + 1 < outsz; i++) {
		char ch = p[i];

		if (q && ch == '\\' && i + 1 < n) {
			out[k++] = ch;
			if (k + 1 < outsz)
				out[k++] = p[++i];
			continue;
		}
		if (ch == '"')
			q = !q;
		if (!q && (ch == '#' || (ch == '/' && i + 1 < n &&
		    p[i + 1] == '/')))
			break;
		out[k++] = ch;
	}
	out[k] = '\0';
	return k;
}

static int
brace_balance(const char *s)
{
	int q = 0, d = 0;

	for (; *s; s++) {
		if (q && *s == '\\' && s[1]) {
			s++;
			continue;
		}
		if (*s == '"')
			q = !q;
		else if (!q && *s == '{')
			d++;
		else if (!q && *s == '}')
			d--;
	}
	return d;
}

/* Reads an identifier at *s (skipping blanks first) into id. */
static int
read_ident(const char **s, char *id, size_t idsz)
{
	const char *p = *s;
	size_t n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	while ((isalnum((unsigned char)*p) || *p == '_' || *p == '-' ||
	    *p == '.') && n + 1 < idsz)
		id[n++] = *p++;
	id[n] = '\0';
	*s = p;
	return n > 0 && (isalpha((unsigned char)id[0]) || id[0] == '_');
}

static int
sensitive(const char *name)
{
	static const char *const words[] = {
		"password", "secret", "passphrase", "token",
	};
	char low[128];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = '\0';
	for (i = 0; i < RT_ARRAY_SIZE(words); i++)
		if (strstr(low, words[i]) != NULL)
			return 1;
	return 0;
}

int
control_redact(const char *text, char **out)
{
	struct sb b = { NULL, 0, 0, 2 * CFGSTORE_MAX + 4096, 0 };
	const char *p = text, *nl, *s;
	char clean[4096], id[128];
	int skip = 0;
	size_t n;

	*out = NULL;
	while (*p) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		strip_comment(p, nl ? n - 1 : n, clean, sizeof(clean));
		if (skip > 0) {
			/* continuation of a redacted multi-line value */
			skip += brace_balance(clean);
			p += n;
			continue;
		}
		s = p;
		while (*s == ' ' || *s == '\t' || *s == '#')
			s++;
		if (read_ident(&s, id, sizeof(id)) && sensitive(id)) {
			while (*s == ' ' || *s == '\t')
				s++;
			if (*s == '=') {
				sb_add(&b, p, (size_t)(s - p) + 1);
				sb_add(&b, " \"<redacted>\"\n", 14);
				if (clean[0] != '\0' &&
				    (skip = brace_balance(clean)) < 0)
					skip = 0;
				p += n;
				continue;
			}
		}
		sb_add(&b, p, n);
		p += n;
	}
	if ((*out = sb_take(&b)) == NULL)
		return RT_ERR_NOMEM;
	return 0;
}

#define SET_MAX_DEPTH 4

struct secpath {
	char name[SET_MAX_DEPTH][72];
	char title[SET_MAX_DEPTH][72];
	int n;
};

static int
valid_value(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 0;
	return 1;
}

static int
raw_value(const char *v)
{
	const char *p = v;
	size_t n = strlen(v);

	if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
		return 1;
	if (n >= 2 && v[0] == '{' && v[n - 1] == '}' &&
	    brace_balance(v) == 0)
		return 1;
	if (*p == '-')
		p++;
	if (*p == '\0')
		return 0;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	return 1;
}

static void
sb_value(struct sb *b, const char *v)
{
	if (raw_value(v)) {
		sb_add(b, v, strlen(v));
		return;
	}
	sb_add(b, "\"", 1);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			sb_add(b, "\\", 1);
		sb_add(b, v, 1);
	}
	sb_add(b, "\"", 1);
}

static void
sb_indent(struct sb *b, int depth)
{
	while (depth-- > 0)
		sb_add(b, "\t", 1);
}

int
control_config_set(const char *text, const char *key, const char *value,
    char **out, char *err, size_t errsz)
{
	struct sb b = { NULL, 0, 0, CFGSTORE_MAX + 8192, 0 };
	struct secpath want, cur;
	char parts[SET_MAX_DEPTH + 2][72], opt[72], clean[4096], id[72];
	const char *p, *nl, *s, *tstart = NULL, *tend = NULL;
	const char *close_at[SET_MAX_DEPTH + 1];
	size_t n, i, np = 0;
	int in_list = 0, list_is_target = 0, k, depth;

	*out = NULL;
	memset(&want, 0, sizeof(want));
	memset(&cur, 0, sizeof(cur));
	memset(close_at, 0, sizeof(close_at));
	/* Split KEY on dots: service.NAME.opt keeps NAME as a title. */
	for (p = key; ; ) {
		s = strchr(p, '.');
		n = s ? (size_t)(s - p) : strlen(p);
		if (np == RT_ARRAY_SIZE(parts) || n == 0 || n >= sizeof(parts[0]))
			goto badkey;
		memcpy(parts[np], p, n);
		parts[np++][n] = '\0';
		if (s == NULL)
			break;
		p = s + 1;
	}
	for (i = 0; i < np; i++) {
		s = parts[i];
		if (!read_ident(&s, id, sizeof(id)) || *s != '\0') {
			if (!(i == 1 && strcmp(parts[0], "service") == 0 &&
			    rt_valid_id(parts[i])))
				goto badkey;
		}
	}
	rt_strlcpy(opt, parts[np - 1], sizeof(opt));
	for (i = 0; i + 1 < np; i++) {
		if (strcmp(parts[i], "service") == 0 && i == 0) {
			if (np != 3)
				goto badkey;
			rt_strlcpy(want.name[want.n], "service",
			    sizeof(want.name[0]));
			rt_strlcpy(want.title[want.n++], parts[1],
			    sizeof(want.title[0]));
			i++;
			continue;
		}
		if (want.n == SET_MAX_DEPTH)
			goto badkey;
		rt_strlcpy(want.name[want.n++], parts[i], sizeof(want.name[0]));
	}
	if (strcmp(opt, "service") == 0 || (np == 2 &&
	    strcmp(parts[0], "service") == 0))
		goto badkey;
	if (!valid_value(value)) {
		snprintf(err, errsz, "the value holds control characters");
		return RT_ERR_INVAL;
	}

	for (p = text; *p; p += n) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		strip_comment(p, nl ? n - 1 : n, clean, sizeof(clean));
		if (in_list > 0) {
			in_list += brace_balance(clean);
			if (in_list <= 0 && list_is_target)
				tend = p + n;
			if (in_list <= 0)
				in_list = list_is_target = 0;
			continue;
		}
		s = clean;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			continue;
		if (*s == '}') {
			/* closing a section: remember where, per depth, when
			 * the open sections are a prefix of the wanted path */
			for (k = 0; k < cur.n && k < want.n; k++)
				if (strcmp(cur.name[k], want.name[k]) != 0 ||
				    strcmp(cur.title[k], want.title[k]) != 0)
					break;
			if (k == cur.n && cur.n > 0 && cur.n <= want.n &&
			    close_at[cur.n] == NULL)
				close_at[cur.n] = p;
			if (cur.n > 0)
				cur.n--;
			continue;
		}
		if (!read_ident(&s, id, sizeof(id)))
			continue;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '=') {
			int match = cur.n == want.n && strcmp(id, opt) == 0;

			for (k = 0; match && k < cur.n; k++)
				if (strcmp(cur.name[k], want.name[k]) != 0 ||
				    strcmp(cur.title[k], want.title[k]) != 0)
					match = 0;
			if (match && tstart == NULL) {
				tstart = p;
				tend = p + n;
			}
			if ((k = brace_balance(s)) > 0) {
				in_list = k;
				list_is_target = match && tstart == p;
			}
			continue;
		}
		/* "name {" or "name TITLE {" or "name "TITLE" {" */
		{
			char title[72] = "";
			const char *t = s;

			if (*t == '"') {
				const char *e = strchr(t + 1, '"');

				if (e != NULL && (size_t)(e - t - 1) <
				    sizeof(title)) {
					memcpy(title, t + 1, (size_t)(e - t - 1));
					title[e - t - 1] = '\0';
					t = e + 1;
				}
			} else if (*t != '{')
				(void)read_ident(&t, title, sizeof(title));
			while (*t == ' ' || *t == '\t')
				t++;
			if (*t == '{' && cur.n < SET_MAX_DEPTH) {
				rt_strlcpy(cur.name[cur.n], id,
				    sizeof(cur.name[0]));
				rt_strlcpy(cur.title[cur.n], title,
				    sizeof(cur.title[0]));
				cur.n++;
				/* "name { opt = v }" on one line */
				if (brace_balance(t) <= 0 && cur.n > 0)
					cur.n--;
			}
		}
	}

	if (tstart != NULL) {
		sb_add(&b, text, (size_t)(tstart - text));
		sb_indent(&b, want.n);
		sb_printf(&b, "%s = ", opt);
		sb_value(&b, value);
		sb_add(&b, "\n", 1);
		sb_add(&b, tend, strlen(tend));
	} else {
		/* Deepest existing prefix of the path, then open the rest. */
		for (depth = want.n; depth > 0 && close_at[depth] == NULL;
		    depth--)
			;
		s = depth > 0 ? close_at[depth] : text + strlen(text);
		sb_add(&b, text, (size_t)(s - text));
		if (depth == 0 && s > text && s[-1] != '\n')
			sb_add(&b, "\n", 1);
		for (k = depth; k < want.n; k++) {
			sb_indent(&b, k);
			if (want.title[k][0] != '\0')
				sb_printf(&b, "%s %s {\n", want.name[k],
				    want.title[k]);
			else
				sb_printf(&b, "%s {\n", want.name[k]);
		}
		sb_indent(&b, want.n);
		sb_printf(&b, "%s = ", opt);
		sb_value(&b, value);
		sb_add(&b, "\n", 1);
		for (k = want.n - 1; k >= depth; k--) {
			sb_indent(&b, k);
			sb_add(&b, "}\n", 2);
		}
		sb_add(&b, s, strlen(s));
	}
	if ((*out = sb_take(&b)) == NULL)
		return RT_ERR_NOMEM;
	return 0;
 badkey:
	snprintf(err, errsz, "bad key \"%s\": use OPTION, SECTION.OPTION "
	    "or service.NAME.OPTION", key);
	return RT_ERR_INVAL;
}

/*
 * Events and probation state on disk (state_dir)
 */

static void
state_path(const struct control *c, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", c->a->cfg->control_state_dir, name);
}

static void
state_write(struct control *c, const char *name, const char *text)
{
	char path[PATH_MAX];

	if (mkdir(c->a->cfg->control_state_dir, 0700) < 0 && errno != EEXIST) {
		log_warn("control: cannot create state_dir %s: %s",
		    c->a->cfg->control_state_dir, strerror(errno));
		return;
	}
	state_path(c, name, path, sizeof(path));
	if (cfgstore_write_atomic(path, text, strlen(text), 0600) < 0)
		log_warn("control: cannot write %s: %s", path,
		    strerror(errno));
}

static void
state_remove(struct control *c, const char *name)
{
	char path[PATH_MAX];

	state_path(c, name, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("control: cannot remove %s: %s", path,
		    strerror(errno));
}

/* JSON string body escaping into out (NUL-terminated, cut to outsz). */
static void
json_escape(const char *s, char *out, size_t outsz)
{
	size_t k = 0;

	for (; *s && k + 7 < outsz; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[k++] = '\\';
			out[k++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f)
			k += (size_t)snprintf(out + k, outsz - k, "\\u%04x", ch);
		else
			out[k++] = (char)ch;
	}
	out[k] = '\0';
}

/*
 * The event queue (pure)
 */

void
control_evq_init(struct control_evq *q)
{
	memset(q, 0, sizeof(*q));
	q->next_id = 1;
}

void
control_evq_clear(struct control_evq *q)
{
	unsigned int i;

	for (i = 0; i < q->n; i++)
		free(q->json[i]);
	q->n = 0;
	q->bytes = 0;
}

/* Forgets the k oldest events. */
static void
evq_shift(struct control_evq *q, unsigned int k)
{
	unsigned int i;

	for (i = 0; i < k; i++) {
		q->bytes -= strlen(q->json[i]);
		free(q->json[i]);
	}
	memmove(q->id, q->id + k, (q->n - k) * sizeof(q->id[0]));
	memmove(q->json, q->json + k, (q->n - k) * sizeof(q->json[0]));
	q->n -= k;
}

unsigned int
control_evq_room(struct control_evq *q, size_t len)
{
	unsigned int k = 0;
	size_t bytes = q->bytes;

	while (k < q->n && (q->n - k >= CONTROL_EVQ_MAX ||
	    bytes + len > CONTROL_EVQ_BYTES))
		bytes -= strlen(q->json[k++]);
	if (k > 0) {
		evq_shift(q, k);
		q->dropped += k;
	}
	return k;
}

/* 1 if json[0..len) is an event that may be a queue line: no control
 * characters, shorter than CONTROL_EVENT_MAX; *id gets its id. */
static int
evq_line_ok(const char *json, size_t len, uint64_t *id)
{
	size_t i;

	if (len == 0 || len >= CONTROL_EVENT_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)json[i] < 0x20 || json[i] == 0x7f)
			return 0;
	return ctl_event_id((const uint8_t *)json, len, id) == 0;
}

/* Appends a copy of json[0..len) (checked) after making room. Returns
 * the number dropped or RT_ERR_NOMEM. */
static int
evq_add(struct control_evq *q, uint64_t id, const char *json, size_t len)
{
	unsigned int dropped = control_evq_room(q, len);
	char *copy;

	if ((copy = malloc(len + 1)) == NULL) {
		q->dropped++;
		return RT_ERR_NOMEM;
	}
	memcpy(copy, json, len);
	copy[len] = '\0';
	q->id[q->n] = id;
	q->json[q->n] = copy;
	q->n++;
	q->bytes += len;
	return (int)dropped;
}

int
control_evq_push(struct control_evq *q, const char *json)
{
	size_t len = strlen(json);
	uint64_t id;

	if (!evq_line_ok(json, len, &id) || id < q->next_id)
		return RT_ERR_INVAL;
	q->next_id = id + 1;
	return evq_add(q, id, json, len);
}

unsigned int
control_evq_ack(struct control_evq *q, uint64_t id)
{
	unsigned int k = 0;

	while (k < q->n && q->id[k] <= id)
		k++;
	if (k > 0)
		evq_shift(q, k);
	return k;
}

int
control_evq_format(const struct control_evq *q, char **out)
{
	struct sb b = { NULL, 0, 0, CONTROL_EVQ_FILE_MAX, 0 };
	unsigned int i;

	*out = NULL;
	sb_printf(&b, "revtun-events 1\nnext %llu\ndropped %llu\n",
	    (unsigned long long)q->next_id, (unsigned long long)q->dropped);
	for (i = 0; i < q->n; i++) {
		sb_add(&b, q->json[i], strlen(q->json[i]));
		sb_add(&b, "\n", 1);
	}
	if ((*out = sb_take(&b)) == NULL)
		return RT_ERR_NOMEM;
	return 0;
}

/* "KEY N" with N decimal: 1 and *v, else 0. */
static int
evq_header(const char *line, size_t n, const char *key, uint64_t *v)
{
	size_t kl = strlen(key), i;
	uint64_t x = 0;

	if (n <= kl + 1 || n > kl + 1 + 19 || memcmp(line, key, kl) != 0 ||
	    line[kl] != ' ')
		return 0;
	for (i = kl + 1; i < n; i++) {
		if (line[i] < '0' || line[i] > '9')
			return 0;
		x = x * 10 + (uint64_t)(line[i] - '0');
	}
	*v = x;
	return 1;
}

int
control_evq_parse(const char *text, struct control_evq *q, char *err,
    size_t errsz)
{
	const char *p = text, *nl;
	uint64_t v, id;
	size_t n;
	int lineno = 0, skipped = 0, r;

	control_evq_clear(q);
	control_evq_init(q);
	err[0] = '\0';
	while (*p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (lineno == 1) {
			if (n != 15 || memcmp(p, "revtun-events 1", 15) != 0) {
				snprintf(err, errsz, "line 1: not an event "
				    "queue (want \"revtun-events 1\")");
				return RT_ERR_INVAL;
			}
		} else if (lineno == 2 && evq_header(p, n, "next", &v))
			q->next_id = v > 0 && v <= CTL_EVENT_ID_MAX + 1 ? v : 1;
		else if (lineno == 3 && evq_header(p, n, "dropped", &v))
			q->dropped = v;
		else if (n == 0 && nl != NULL && nl[1] == '\0')
			;	/* a last empty line */
		else if (evq_line_ok(p, n, &id) && (q->n == 0 ||
		    id > q->id[q->n - 1])) {
			if ((r = evq_add(q, id, p, n)) < 0)
				return r;
			if (id >= q->next_id)
				q->next_id = id + 1;
		} else if (skipped++ == 0)
			snprintf(err, errsz, "line %d: not an event, or its id "
			    "does not increase", lineno);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (lineno == 0) {
		snprintf(err, errsz, "empty file");
		return RT_ERR_INVAL;
	}
	return skipped;
}

/*
 * Events on disk and to the relay
 */

static void
evq_save(struct control *c)
{
	char *text;

	if (control_evq_format(&c->evq, &text) < 0) {
		log_err("control: out of memory saving the event queue");
		return;
	}
	state_write(c, "events.queue", text);
	free(text);
}

static void
control_event(struct control *c, const char *event, const char *reason,
    const char *from)
{
	struct control_evq *q = &c->evq;
	char er[400], ef[100], dropped[40] = "";
	unsigned int k;
	int r;

	/* room first: the event then tells how many were ever dropped */
	if ((k = control_evq_room(q, CONTROL_EVENT_MAX - 1)) > 0)
		log_warn("control: event queue full (%d events, %d bytes): "
		    "dropped the %u oldest, %llu in all", CONTROL_EVQ_MAX,
		    CONTROL_EVQ_BYTES, k, (unsigned long long)q->dropped);
	if (q->dropped > 0)
		snprintf(dropped, sizeof(dropped), ",\"dropped\":%llu",
		    (unsigned long long)q->dropped);
	json_escape(reason, er, sizeof(er));
	json_escape(from, ef, sizeof(ef));
	snprintf(c->event, sizeof(c->event),
	    "{\"id\":%llu,\"event\":\"%s\",\"reason\":\"%s\",\"from\":\"%s\","
	    "\"time_ms\":%lld%s}", (unsigned long long)q->next_id, event, er,
	    ef, (long long)rt_wall_ms(), dropped);
	state_write(c, "event.pending", c->event);
	if ((r = control_evq_push(q, c->event)) < 0)
		log_err("control: event %s not queued for the relay: %s",
		    c->event, rt_strerror(r));
	evq_save(c);
	agent_kick(c->a);	/* the events channel, if open, sends it */
	if (c->event_fn != NULL)
		c->event_fn(c->event_arg, c->event);
}

static void
probation_fired(struct loop *loop, void *arg)
{
	struct control *c = arg;

	c->probation_timer = NULL;
	c->rollback_due = 1;
	agent_kick(c->a);
}

static void
probation_start(struct control *c, const char *from, int uplink_changed)
{
	char text[160];

	loop_timer_cancel(c->probation_timer);
	c->probation = 1;
	c->probation_uplink = uplink_changed;
	c->probation_loaded = 0;
	c->probation_connects = c->a->stats.connects;
	c->rollback_due = 0;
	rt_strlcpy(c->probation_from, from, sizeof(c->probation_from));
	if (loop_timer_add(c->a->loop, c->a->cfg->control_rollback_timeout_ms,
	    probation_fired, c, &c->probation_timer) < 0)
		log_err("control: cannot arm the rollback timer");
	snprintf(text, sizeof(text), "%s\n", from);
	state_write(c, "probation", text);
}

static void
probation_end(struct control *c)
{
	loop_timer_cancel(c->probation_timer);
	c->probation_timer = NULL;
	c->probation = 0;
	c->rollback_due = 0;
	state_remove(c, "probation");
}

void
control_check(struct control *c)
{
	struct agent *a = c->a;
	struct sshc *s = uplink_session(a->uplink);
	struct orphan *o, *tmp;
	char reason[200];
	int up = s != NULL && sshc_is_up(s);
	int r;

	for (o = LIST_FIRST(&c->orphans); o != NULL; o = tmp) {
		tmp = LIST_NEXT(o, entry);
		shell_reap(o->sh);
		if (shell_reaped(o->sh)) {
			LIST_REMOVE(o, entry);
			shell_free(o->sh);
			free(o);
		}
	}
	if (c->rolled_back && up) {
		c->rolled_back = 0;
		log_warn("config: relay reachable again after the rollback; "
		    "event: %s", c->event);
	}
	if (!c->probation)
		return;
	if (up && c->probation_loaded && (!c->probation_uplink ||
	    a->stats.connects > c->probation_connects)) {
		log_info("config: relay reachable after the change by %s; "
		    "the new configuration stays", c->probation_from);
		probation_end(c);
		return;
	}
	if (!c->rollback_due)
		return;
	snprintf(reason, sizeof(reason), "relay not reachable within %lld s "
	    "after the change", (long long)(a->cfg->control_rollback_timeout_ms
	    / 1000));
	log_warn("config: %s by %s; restoring %s%s", reason,
	    c->probation_from, a->cfg_path, CFGSTORE_LAST_GOOD);
	r = cfgstore_restore(a->cfg_path);
	if (r < 0) {
		log_err("config: rollback failed: %s", rt_strerror_errno(r));
		probation_end(c);
		return;
	}
	control_event(c, "config_rollback", reason, c->probation_from);
	probation_end(c);
	c->rolled_back = 1;
	a->reload_pending = 1;	/* the same path as HUP, right after this */
}

/*
 * Channels
 */

static void
cc_notify(void *arg)
{
	struct ctlchan *cc = arg;

	agent_kick(cc->ctl->a);
}

/* An orphaned shell changed state: control_check() reaps it. */
static void
orphan_notify(void *arg)
{
	struct control *c = arg;

	agent_kick(c->a);
}

static void
cc_release(struct ctlchan *cc)
{
	struct orphan *o;

	if (cc->ctl->evchan == cc)
		cc->ctl->evchan = NULL;

	logring_unfollow(cc->follow);
	cc->follow = NULL;
	loop_timer_cancel(cc->timer);
	cc->timer = NULL;
	if (cc->sh != NULL) {
		/* The channel record goes away; the shell may outlive it. */
		shell_set_notify(cc->sh, orphan_notify, cc->ctl);
		shell_hangup(cc->sh, "channel closed");
		shell_reap(cc->sh);
		if (!shell_reaped(cc->sh) &&
		    (o = calloc(1, sizeof(*o))) != NULL) {
			o->sh = cc->sh;
			LIST_INSERT_HEAD(&cc->ctl->orphans, o, entry);
		} else
			shell_free(cc->sh);
		cc->sh = NULL;
	}
	buf_free(cc->from_relay);
	buf_free(cc->to_relay);
	buf_free(cc->input);
	cc->from_relay = cc->to_relay = cc->input = NULL;
}

static void
cc_close(struct ctlchan *cc, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (cc->state == CC_CLOSING || cc->state == CC_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_info("ctl %u (%s%s%s): closed: %s; %lld ms", cc->id, cc->svc,
	    cc->op[0] ? " by " : "", cc->op, why,
	    (long long)(rt_mono_ms() - cc->opened_ms));
	cc->state = CC_CLOSING;
	agent_kick(cc->ctl->a);
}

/* Queues a frame; on a full buffer the channel is closed (our own
 * replies are sized to fit; only a stuck relay gets here). */
static int
cc_frame(struct ctlchan *cc, uint8_t type, const void *p, size_t len)
{
	int r;

	if (cc->to_relay == NULL)
		return RT_ERR_CLOSED;
	if ((r = ctl_append(cc->to_relay, type, p, len)) < 0)
		cc_close(cc, "cannot queue a reply: %s", rt_strerror(r));
	return r;
}

/* Queues text as DATA frames, then EXIT status; moves to DONE. */
static void
cc_reply(struct ctlchan *cc, const char *text, size_t len, uint32_t status)
{
	uint8_t st[4];
	size_t n;

	while (len > 0 && cc->state != CC_CLOSING) {
		n = RT_MIN(len, (size_t)CTL_MAX_PAYLOAD);
		if (cc_frame(cc, CTL_DATA, text, n) < 0)
			return;
		text += n;
		len -= n;
	}
	ctl_put_u32(st, status);
	if (cc_frame(cc, CTL_EOF, NULL, 0) < 0 ||
	    cc_frame(cc, CTL_EXIT, st, 4) < 0)
		return;
	cc->state = CC_DONE;
	cc->done_ms = rt_mono_ms();
}

static void
cc_replyf(struct ctlchan *cc, uint32_t status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
cc_replyf(struct ctlchan *cc, uint32_t status, const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	cc_reply(cc, text, RT_MIN((size_t)n, sizeof(text) - 1), status);
}

int
control_status_text(struct control *c, char **out)
{
	struct sb b = { NULL, 0, 0, 64 * 1024, 0 };
	struct agent *a = c->a;
	const struct agent_config *cfg = a->cfg;
	const struct agent_stats *st = &a->stats;
	struct sshc *s = uplink_session(a->uplink);
	char line[800];
	size_t i;

	*out = NULL;
	sb_printf(&b, "version: %s\n", PACKAGE_VERSION);
	sb_printf(&b, "uptime: %lld s\n",
	    (long long)((rt_mono_ms() - a->started_ms) / 1000));
	sb_printf(&b, "tunnel: %s\n", s != NULL && sshc_is_up(s) ? "up" :
	    "down");
	uplink_status(a->uplink, line, sizeof(line));
	sb_printf(&b, "relay: %s\n", line);
	sb_printf(&b, "services:");
	for (i = 0; i < cfg->nservices; i++) {
		const struct agent_service *sv = &cfg->services[i];

		if (sv->builtin)
			sb_printf(&b, " %s:%d(builtin)", sv->name, sv->port);
		else
			sb_printf(&b, " %s:%d->%s:%s", sv->name, sv->port,
			    sv->target_host, sv->target_port);
	}
	sb_printf(&b, "\n");
	sb_printf(&b, "sessions: %u\n", s != NULL ? sshc_channels(s) : 0);
	sb_printf(&b, "control_sessions: %u\n", control_count(c));
	sb_printf(&b, "connects: %llu\n", (unsigned long long)st->connects);
	sb_printf(&b, "connect_failures: %llu\n",
	    (unsigned long long)st->connect_failures);
	sb_printf(&b, "channels_total: %llu\n",
	    (unsigned long long)st->channels_total);
	sb_printf(&b, "channels_refused: %llu\n",
	    (unsigned long long)st->channels_refused);
	sb_printf(&b, "target_failures: %llu\n",
	    (unsigned long long)st->target_failures);
	sb_printf(&b, "bytes_to_target: %llu\n",
	    (unsigned long long)st->bytes_to_target);
	sb_printf(&b, "bytes_from_target: %llu\n",
	    (unsigned long long)st->bytes_from_target);
	sb_printf(&b, "consent: %s\n", cfg->consent_mode == CONSENT_OFF ?
	    "off" : agent_sessions_allowed(a) ? "open" : "closed");
	sb_printf(&b, "config: %s\n", a->cfg_path);
	if (c->probation)
		sb_printf(&b, "rollback: pending (change by %s)\n",
		    c->probation_from);
	else
		sb_printf(&b, "rollback: none\n");
	sb_printf(&b, "last_event: %s\n", c->event[0] ? c->event : "none");
	sb_printf(&b, "events_unacked: %u (%s)\n", c->evq.n,
	    c->evchan != NULL ? "relay events channel open" :
	    "no relay events channel");
	sb_printf(&b, "events_dropped: %llu\n",
	    (unsigned long long)c->evq.dropped);
	if ((*out = sb_take(&b)) == NULL)
		return RT_ERR_NOMEM;
	return 0;
}

/* Text of the file the running config came from, if it still validates
 * (saved as .last-good); NULL otherwise (keep the older last-good). */
static char *
running_text(struct control *c)
{
	struct agent_config *tmp = NULL;
	char *text;
	size_t len;

	if (cfgstore_read(c->a->cfg_path, CFGSTORE_MAX, &text, &len) < 0)
		return NULL;
	if (agent_config_load_buf(text, c->a->cfg_path, &tmp, NULL) < 0) {
		free(text);
		return NULL;
	}
	agent_config_free(tmp);
	return text;
}

static void
describe_diff(struct sb *b, const struct agent_config *o,
    const struct agent_config *n, unsigned int d)
{
	size_t i;

	if (d == 0)
		sb_printf(b, "no changes\n");
	if (d & AGENT_DIFF_UPLINK)
		sb_printf(b, "changed: relay settings (the agent reconnects)\n");
	if (d & AGENT_DIFF_SERVICES) {
		for (i = 0; i < n->nservices; i++) {
			const char *nm = n->services[i].name;

			if (agent_config_service_by_name(o, nm) == NULL)
				sb_printf(b, "added: service %s\n", nm);
			else if (!agent_config_service_same(o, n, nm))
				sb_printf(b, "changed: service %s\n", nm);
		}
		for (i = 0; i < o->nservices; i++)
			if (agent_config_service_by_name(n,
			    o->services[i].name) == NULL)
				sb_printf(b, "removed: service %s\n",
				    o->services[i].name);
	}
	if (d & AGENT_DIFF_CONSENT)
		sb_printf(b, "changed: consent\n");
	if (d & AGENT_DIFF_LIMITS)
		sb_printf(b, "changed: limits / timeouts\n");
	if (d & AGENT_DIFF_LOG)
		sb_printf(b, "changed: logging\n");
	if (d & AGENT_DIFF_MQTT)
		sb_printf(b, "changed: mqtt\n");
	if (d & AGENT_DIFF_CONTROL)
		sb_printf(b, "changed: control / shell\n");
}

/*
 * Validates text, installs it and answers. Exit 1 with the parser's
 * messages when it is refused; nothing is written then.
 */
static void
cc_apply_text(struct ctlchan *cc, const char *text, size_t len,
    const char *what)
{
	struct control *c = cc->ctl;
	struct agent *a = c->a;
	struct sb b = { NULL, 0, 0, 64 * 1024, 0 };
	struct agent_config *ncfg = NULL;
	struct cfgu_errors errs;
	char *old, *reply;
	unsigned int i, d;
	int r;

	if (strlen(text) != len) {
		cc_replyf(cc, 1, "refused: the file holds a NUL byte\n");
		return;
	}
	cfgu_errors_init(&errs);
	r = agent_config_load_buf(text, a->cfg_path, &ncfg, &errs);
	if (r < 0) {
		sb_printf(&b, "refused: %s; nothing changed\n", rt_strerror(r));
		for (i = 0; i < errs.n; i++)
			sb_printf(&b, "%s\n", errs.msg[i]);
		if (errs.dropped > 0)
			sb_printf(&b, "(%u more problems not shown)\n",
			    errs.dropped);
		log_warn("config: %s by %s refused: %s", what, cc->op,
		    errs.n > 0 ? errs.msg[0] : rt_strerror(r));
		reply = sb_take(&b);
		cc_reply(cc, reply ? reply : "refused\n",
		    reply ? strlen(reply) : 8, 1);
		free(reply);
		return;
	}
	d = agent_config_diff(a->cfg, ncfg);
	old = running_text(c);
	r = cfgstore_install(a->cfg_path, old, text, len);
	free(old);
	if (r < 0) {
		agent_config_free(ncfg);
		log_err("config: %s by %s: cannot write %s: %s", what, cc->op,
		    a->cfg_path, strerror(errno));
		cc_replyf(cc, 1, "refused: cannot write %s: %s; nothing "
		    "changed\n", a->cfg_path, strerror(errno));
		return;
	}
	sb_printf(&b, "applied: %s written (previous kept as %s%s)\n",
	    a->cfg_path, a->cfg_path, CFGSTORE_LAST_GOOD);
	describe_diff(&b, a->cfg, ncfg, d);
	sb_printf(&b, "rollback: unless the relay is reachable again within "
	    "%lld s\n", (long long)(ncfg->control_rollback_timeout_ms / 1000));
	log_info("config: %s by %s written to %s; reloading after the answer",
	    what, cc->op, a->cfg_path);
	/* The probation uses the new timeout. */
	{
		int64_t keep = a->cfg->control_rollback_timeout_ms;

		a->cfg->control_rollback_timeout_ms =
		    ncfg->control_rollback_timeout_ms;
		probation_start(c, cc->op, (d & AGENT_DIFF_UPLINK) != 0);
		a->cfg->control_rollback_timeout_ms = keep;
	}
	agent_config_free(ncfg);
	reply = sb_take(&b);
	cc_reply(cc, reply ? reply : "applied\n", reply ? strlen(reply) : 8, 0);
	free(reply);
	cc->reload_after = 1;
}

static void
cc_config_show(struct ctlchan *cc)
{
	char *text = NULL, *red = NULL;
	size_t len;
	int r;

	if ((r = cfgstore_read(cc->ctl->a->cfg_path, CFGSTORE_MAX, &text,
	    &len)) < 0) {
		cc_replyf(cc, 1, "cannot read %s: %s\n", cc->ctl->a->cfg_path,
		    rt_strerror_errno(r));
		return;
	}
	if (control_redact(text, &red) < 0) {
		free(text);
		cc_replyf(cc, 1, "out of memory\n");
		return;
	}
	cc_reply(cc, red, strlen(red), 0);
	free(text);
	free(red);
}

static void
cc_config_set(struct ctlchan *cc, const char *args)
{
	char key[128], err[256], *text = NULL, *ntext = NULL;
	const char *sp = strchr(args, ' ');
	size_t len;
	int r;

	if (sp == NULL || sp == args || (size_t)(sp - args) >= sizeof(key) ||
	    sp[1] == '\0') {
		cc_replyf(cc, 2, "usage: config set KEY VALUE\n");
		return;
	}
	memcpy(key, args, (size_t)(sp - args));
	key[sp - args] = '\0';
	if ((r = cfgstore_read(cc->ctl->a->cfg_path, CFGSTORE_MAX, &text,
	    &len)) < 0) {
		cc_replyf(cc, 1, "cannot read %s: %s\n", cc->ctl->a->cfg_path,
		    rt_strerror_errno(r));
		return;
	}
	r = control_config_set(text, key, sp + 1, &ntext, err, sizeof(err));
	free(text);
	if (r < 0) {
		cc_replyf(cc, 1, "refused: %s\n", r == RT_ERR_INVAL ? err :
		    rt_strerror(r));
		return;
	}
	if (strlen(ntext) > CFGSTORE_MAX)
		cc_replyf(cc, 1, "refused: the file would exceed %d bytes\n",
		    CFGSTORE_MAX);
	else
		cc_apply_text(cc, ntext, strlen(ntext), "config set");
	free(ntext);
}

static void
cc_logs(struct ctlchan *cc, int follow)
{
	struct agent *a = cc->ctl->a;
	char *text;
	size_t len, off, n;
	int r;

	if (logring_snapshot(a->logring, &text, &len) < 0) {
		cc_replyf(cc, 1, "out of memory\n");
		return;
	}
	/* The snapshot may exceed what one channel buffers: send its tail. */
	off = len > CONTROL_OUT_MAX / 2 ? len - CONTROL_OUT_MAX / 2 : 0;
	if (!follow) {
		cc_reply(cc, text + off, len - off, 0);
		free(text);
		return;
	}
	for (; off < len; off += n) {
		n = RT_MIN(len - off, (size_t)CTL_MAX_PAYLOAD);
		if (cc_frame(cc, CTL_DATA, text + off, n) < 0)
			break;
	}
	free(text);
	if (cc->state == CC_CLOSING)
		return;
	r = logring_follow(a->logring, CONTROL_FOLLOW_BACKLOG, cc_notify, cc,
	    &cc->follow);
	if (r < 0) {
		cc_replyf(cc, 1, "out of memory\n");
		return;
	}
	cc->kind = K_FOLLOW;
	cc->state = CC_RUN;
}

static void
cc_shell_start(struct ctlchan *cc)
{
	struct agent *a = cc->ctl->a;
	char err[200];
	int r;

	loop_timer_cancel(cc->timer);
	cc->timer = NULL;
	r = shell_start(a->loop, a->cfg, cc->op, cc->cols, cc->rows, cc->term,
	    cc_notify, cc, &cc->sh, err, sizeof(err));
	if (r < 0) {
		log_err("ctl %u (shell by %s): cannot start: %s", cc->id,
		    cc->op, err);
		cc_replyf(cc, 1, "revtun: cannot start a shell\r\n");
		return;
	}
	log_info("ctl %u (shell by %s): pid %ld as %s, %ux%u", cc->id, cc->op,
	    (long)shell_pid(cc->sh), a->cfg->shell_user,
	    cc->cols ? cc->cols : 80, cc->rows ? cc->rows : 24);
	cc->kind = K_SHELL;
	cc->state = CC_RUN;
}

static void
pty_wait_fired(struct loop *loop, void *arg)
{
	struct ctlchan *cc = arg;

	cc->timer = NULL;
	if (cc->state == CC_PTYWAIT)
		cc_shell_start(cc);
	agent_kick(cc->ctl->a);
}

/*
 * The relay's events channel. Only the relay sends "events" as "relay":
 * it never builds that command for an operator, and it refuses raw
 * channels to the control service. One per session: a newer one takes
 * over (the relay lost track of the old).
 */
static void
cc_events_start(struct ctlchan *cc)
{
	struct control *c = cc->ctl;

	if (c->evchan != NULL && c->evchan != cc)
		cc_close(c->evchan, "replaced by a new events channel");
	c->evchan = cc;
	cc->kind = K_EVENTS;
	cc->state = CC_RUN;
	cc->ev_sent = 0;
	log_info("ctl %u: relay events channel open; %u event%s to send",
	    cc->id, c->evq.n, c->evq.n == 1 ? "" : "s");
	agent_kick(c->a);
}

/* An ack from the relay: the events up to id are in its audit log. */
static void
cc_events_ack(struct ctlchan *cc, const struct ctl_frame *f)
{
	struct control *c = cc->ctl;
	uint64_t id;
	unsigned int k;

	if (f->type != CTL_DATA)
		return;		/* EOF: the relay sends no more acks */
	if (ctl_ack_parse(f->payload, f->len, &id) < 0 || id > cc->ev_sent) {
		cc_close(cc, "protocol error: bad ack on the events channel");
		return;
	}
	if ((k = control_evq_ack(&c->evq, id)) == 0)
		return;		/* a repeated ack */
	evq_save(c);
	log_info("control: relay logged event%s up to id %llu; %u left",
	    k == 1 ? "" : "s", (unsigned long long)id, c->evq.n);
}

static void
cc_command(struct ctlchan *cc)
{
	struct agent *a = cc->ctl->a;
	char *text;
	const char *cmd = cc->cmd;

	log_info("ctl %u (%s): %s by %s", cc->id, cc->svc, cmd, cc->op);
	if (strcmp(cc->svc, "shell") == 0) {
		if (strcmp(cmd, "shell") != 0) {
			cc_replyf(cc, 2, "the shell service runs only "
			    "\"shell\"\n");
			return;
		}
		cc->state = CC_PTYWAIT;
		if (loop_timer_add(a->loop, CONTROL_PTY_WAIT_MS,
		    pty_wait_fired, cc, &cc->timer) < 0)
			cc_shell_start(cc);
		return;
	}
	if (strcmp(cc->op, CTL_EVENTS_OP) == 0 &&
	    strcmp(cmd, CTL_EVENTS_CMD) == 0) {
		cc_events_start(cc);
		return;
	}
	if (strcmp(cmd, "status") == 0) {
		if (control_status_text(cc->ctl, &text) < 0) {
			cc_replyf(cc, 1, "out of memory\n");
			return;
		}
		cc_reply(cc, text, strlen(text), 0);
		free(text);
	} else if (strcmp(cmd, "config show") == 0)
		cc_config_show(cc);
	else if (strncmp(cmd, "config set ", 11) == 0)
		cc_config_set(cc, cmd + 11);
	else if (strcmp(cmd, "config apply") == 0) {
		if ((cc->input = buf_new(CFGSTORE_MAX)) == NULL) {
			cc_replyf(cc, 1, "out of memory\n");
			return;
		}
		cc->kind = K_APPLY;
		cc->state = CC_RUN;
	} else if (strcmp(cmd, "logs") == 0)
		cc_logs(cc, 0);
	else if (strcmp(cmd, "logs -f") == 0)
		cc_logs(cc, 1);
	else if (strcmp(cmd, "reload") == 0) {
		log_info("config: reload requested by %s", cc->op);
		cc_replyf(cc, 0, "reload: reading %s now, as on SIGHUP; "
		    "`logs` shows the result\n", a->cfg_path);
		cc->reload_after = 1;
	} else
		cc_replyf(cc, 2, "unknown command \"%s\"; try status, config "
		    "show|set|apply, logs [-f], reload\n", cmd);
}

/* Handles one frame from the relay. Returns 0 when consumed, RT_ERR_AGAIN
 * when it must wait (shell input full), < 0 after closing. */
static int
cc_frame_in(struct ctlchan *cc, const struct ctl_frame *f)
{
	uint16_t cols, rows;
	size_t tl;

	if (cc->state == CC_REQ) {
		if (f->type != CTL_REQ || ctl_req_split(f, cc->op,
		    sizeof(cc->op), cc->cmd, sizeof(cc->cmd)) < 0) {
			cc_close(cc, "protocol error: first frame is not a "
			    "valid request");
			return RT_ERR_PROTO;
		}
		cc_command(cc);
		return 0;
	}
	switch (f->type) {
	case CTL_REQ:
	case CTL_EXIT:
		cc_close(cc, "protocol error: frame type %u after the "
		    "request", f->type);
		return RT_ERR_PROTO;
	case CTL_PTY:
		if (cc->state != CC_PTYWAIT ||
		    ctl_get_winch(f, &cols, &rows) < 0) {
			cc_close(cc, "protocol error: unexpected PTY frame");
			return RT_ERR_PROTO;
		}
		cc->cols = cols;
		cc->rows = rows;
		tl = RT_MIN((size_t)f->len - 4, sizeof(cc->term) - 1);
		memcpy(cc->term, f->payload + 4, tl);
		cc->term[tl] = '\0';
		cc_shell_start(cc);
		return 0;
	case CTL_WINCH:
		if (ctl_get_winch(f, &cols, &rows) < 0) {
			cc_close(cc, "protocol error: bad WINCH frame");
			return RT_ERR_PROTO;
		}
		if (cc->state == CC_PTYWAIT) {
			cc->cols = cols;
			cc->rows = rows;
		} else if (cc->sh != NULL)
			shell_resize(cc->sh, cols, rows);
		return 0;
	default:
		break;
	}
	if (cc->state == CC_PTYWAIT)
		cc_shell_start(cc);	/* input before any PTY frame */
	if (cc->state != CC_RUN)
		return 0;		/* input after the answer: ignored */
	if (cc->kind == K_EVENTS) {
		cc_events_ack(cc, f);
		return cc->state == CC_CLOSING ? RT_ERR_PROTO : 0;
	}
	if (cc->kind == K_APPLY) {
		if (f->type == CTL_DATA) {
			if (buf_append(cc->input, f->payload, f->len) != 0) {
				cc_replyf(cc, 1, "refused: the file exceeds %d "
				    "bytes; nothing changed\n", CFGSTORE_MAX);
				return 0;
			}
			return 0;
		}
		/* CTL_EOF: the whole file is here. */
		{
			char *text = malloc(buf_len(cc->input) + 1);

			if (text == NULL) {
				cc_replyf(cc, 1, "out of memory\n");
				return 0;
			}
			if (buf_len(cc->input) > 0)
				memcpy(text, buf_data(cc->input),
				    buf_len(cc->input));
			text[buf_len(cc->input)] = '\0';
			cc_apply_text(cc, text, buf_len(cc->input),
			    "config apply");
			free(text);
		}
		return 0;
	}
	if (cc->kind == K_SHELL && f->type == CTL_DATA) {
		if (f->len > shell_room(cc->sh))
			return RT_ERR_AGAIN;	/* backpressure */
		(void)shell_write(cc->sh, f->payload, f->len);
	}
	/* CTL_EOF on a shell or `logs -f`: no more input; the command
	 * still runs until it ends or the channel closes. */
	return 0;
}

/* Reads the channel into from_relay and handles whole frames. */
static void
cc_input(struct ctlchan *cc)
{
	struct ctl_frame f;
	size_t moved = 0, avail;
	uint8_t *p;
	ssize_t n;
	int r;

	for (;;) {
		/* Frames first: they free room for the next read. */
		while (buf_len(cc->from_relay) > 0 && cc->state != CC_CLOSING) {
			r = ctl_parse(buf_data(cc->from_relay),
			    buf_len(cc->from_relay), &f);
			if (r == RT_ERR_AGAIN)
				break;
			if (r < 0) {
				cc_close(cc, "protocol error: %s",
				    rt_strerror(r));
				return;
			}
			log_debug("ctl %u: frame type %u, %u bytes", cc->id,
			    f.type, f.len);
			if (cc_frame_in(cc, &f) == RT_ERR_AGAIN)
				return;	/* retried next pump */
			if (cc->state == CC_CLOSING)
				return;
			buf_consume(cc->from_relay, (size_t)r);
		}
		if (moved >= CONTROL_QUOTA)
			cc->more = 1;
		if (cc->chan_eof || moved >= CONTROL_QUOTA ||
		    buf_room(cc->from_relay) == 0)
			break;
		if (buf_reserve(cc->from_relay, CONTROL_QUOTA, &p, &avail) < 0 ||
		    avail == 0)
			break;
		n = libssh2_channel_read(cc->ch, (char *)p, avail);
		if (n > 0) {
			buf_commit(cc->from_relay, (size_t)n);
			moved += (size_t)n;
			continue;
		}
		if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
			break;
		cc_close(cc, "channel read failed (libssh2 %d)", (int)n);
		return;
	}
	if (!cc->chan_eof && libssh2_channel_eof(cc->ch)) {
		log_debug("ctl %u: relay EOF", cc->id);
		cc->chan_eof = 1;
	}
}

/* Moves follower lines / shell output into to_relay as DATA frames. */
static void
cc_produce(struct ctlchan *cc)
{
	const uint8_t *p;
	size_t len, n;
	uint32_t status;
	uint8_t st[4];

	if (cc->state != CC_RUN)
		return;
	if (cc->kind == K_EVENTS) {
		const struct control_evq *q = &cc->ctl->evq;
		unsigned int i;

		for (i = 0; i < q->n; i++) {
			if (q->id[i] <= cc->ev_sent)
				continue;
			len = strlen(q->json[i]);
			if (buf_room(cc->to_relay) < CTL_HDR_LEN + len ||
			    cc_frame(cc, CTL_DATA, q->json[i], len) < 0)
				return;
			cc->ev_sent = q->id[i];
			log_debug("ctl %u: event %llu sent", cc->id,
			    (unsigned long long)q->id[i]);
		}
		return;
	}
	if (cc->kind == K_FOLLOW) {
		p = logring_peek(cc->follow, &len);
		n = RT_MIN(len, (size_t)CTL_MAX_PAYLOAD);
		if (n > 0 && buf_room(cc->to_relay) >= CTL_HDR_LEN + n &&
		    cc_frame(cc, CTL_DATA, p, n) == 0)
			logring_consume(cc->follow, n);
		return;
	}
	if (cc->kind != K_SHELL)
		return;
	p = shell_peek(cc->sh, &len);
	if (buf_room(cc->to_relay) > CTL_HDR_LEN) {
		n = RT_MIN(len, buf_room(cc->to_relay) - CTL_HDR_LEN);
		n = RT_MIN(n, (size_t)CTL_MAX_PAYLOAD);
		if (n > 0 && cc_frame(cc, CTL_DATA, p, n) == 0)
			shell_consume(cc->sh, n);
	}
	if (shell_done(cc->sh, &status) &&
	    buf_room(cc->to_relay) >= 2 * CTL_HDR_LEN + 4) {
		ctl_put_u32(st, status);
		if (cc_frame(cc, CTL_EOF, NULL, 0) == 0 &&
		    cc_frame(cc, CTL_EXIT, st, 4) == 0) {
			log_info("ctl %u (shell by %s): exit status %u", cc->id,
			    cc->op, status);
			cc->state = CC_DONE;
			cc->done_ms = rt_mono_ms();
		}
	}
}

static void
cc_output(struct ctlchan *cc, struct sshc *s)
{
	size_t moved = 0, len;
	ssize_t n;

	while (moved < CONTROL_QUOTA && (len = buf_len(cc->to_relay)) > 0 &&
	    !sshc_out_high(s)) {
		n = libssh2_channel_write(cc->ch,
		    (const char *)buf_data(cc->to_relay),
		    RT_MIN(len, CONTROL_QUOTA - moved));
		if (n > 0) {
			buf_consume(cc->to_relay, (size_t)n);
			moved += (size_t)n;
			continue;
		}
		if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
			break;
		cc_close(cc, "channel write failed (libssh2 %d)", (int)n);
		return;
	}
	if (moved >= CONTROL_QUOTA && buf_len(cc->to_relay) > 0)
		cc->more = 1;
	if (buf_len(cc->to_relay) == 0)
		buf_shrink(cc->to_relay);
}

static void
cc_service(struct ctlchan *cc, struct sshc *s)
{
	struct agent *a = cc->ctl->a;
	int r;

	if (cc->state == CC_CLOSING) {
		cc_release(cc);
		if (!cc->eof_sent) {
			r = libssh2_channel_send_eof(cc->ch);
			if (r == LIBSSH2_ERROR_EAGAIN)
				return;
			cc->eof_sent = 1;
		}
		r = libssh2_channel_close(cc->ch);
		if (r != LIBSSH2_ERROR_EAGAIN)
			cc->state = CC_DEAD;
		return;
	}
	if (cc->state == CC_DEAD)
		return;
	cc_input(cc);
	if (cc->state == CC_CLOSING)
		return;
	cc_produce(cc);
	if (cc->state == CC_CLOSING)
		return;
	cc_output(cc, s);
	if (cc->state == CC_CLOSING)
		return;
	if (cc->state == CC_DONE && buf_len(cc->to_relay) == 0) {
		if (cc->reload_after && !sshc_drained(s) &&
		    rt_mono_ms() - cc->done_ms < CONTROL_FLUSH_MS) {
			agent_kick(a);	/* let the answer reach TLS first */
			return;
		}
		if (cc->reload_after) {
			cc->reload_after = 0;
			a->reload_pending = 1;
			agent_kick(a);
		}
		cc_close(cc, "done");
		return;
	}
	/* The relay closed the channel (operator gone): stop following,
	 * hang up the shell. */
	if (cc->chan_eof && cc->state != CC_DONE &&
	    libssh2_channel_wait_closed(cc->ch) == 0) {
		cc_close(cc, "relay closed the channel");
		return;
	}
	if (cc->chan_eof && (cc->state == CC_REQ || cc->state == CC_PTYWAIT)) {
		cc_close(cc, "relay sent EOF before a request");
		return;
	}
}

int
control_new(struct agent *a, struct control **out)
{
	struct control *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RT_ERR_NOMEM;
	c->a = a;
	TAILQ_INIT(&c->chans);
	LIST_INIT(&c->orphans);
	control_evq_init(&c->evq);
	*out = c;
	return 0;
}

static void
cc_forget(struct ctlchan *cc)
{
	cc_release(cc);
	free(cc);
}

void
control_session_gone(struct control *c)
{
	struct ctlchan *cc;

	if (c == NULL)
		return;
	while ((cc = TAILQ_FIRST(&c->chans)) != NULL) {
		TAILQ_REMOVE(&c->chans, cc, entry);
		c->nchans--;
		if (cc->state != CC_DEAD)
			log_info("ctl %u (%s%s%s): closed: session ended",
			    cc->id, cc->svc, cc->op[0] ? " by " : "", cc->op);
		cc_forget(cc);
	}
}

void
control_free(struct control *c)
{
	struct orphan *o;

	if (c == NULL)
		return;
	control_session_gone(c);
	while ((o = LIST_FIRST(&c->orphans)) != NULL) {
		LIST_REMOVE(o, entry);
		shell_free(o->sh);
		free(o);
	}
	loop_timer_cancel(c->probation_timer);
	control_evq_clear(&c->evq);
	free(c);
}

/* Loads state_dir/events.queue; ids go on after the last event known. */
static void
evq_load(struct control *c)
{
	char path[PATH_MAX], err[160], *text;
	uint64_t last = 0;
	size_t len;
	int r;

	state_path(c, "events.queue", path, sizeof(path));
	r = cfgstore_read(path, CONTROL_EVQ_FILE_MAX, &text, &len);
	if (r == 0) {
		if (strlen(text) != len)
			r = RT_ERR_INVAL;
		else if ((r = control_evq_parse(text, &c->evq, err,
		    sizeof(err))) > 0)
			log_warn("control: %s: %d line%s skipped (%s)", path, r,
			    r == 1 ? "" : "s", err);
		else if (r == RT_ERR_INVAL)
			log_warn("control: %s ignored: %s", path, err);
		free(text);
	} else if (!(r == RT_ERR_SYS && errno == ENOENT))
		log_warn("control: cannot read %s: %s", path,
		    rt_strerror_errno(r));
	if (r == RT_ERR_NOMEM)
		log_err("control: out of memory loading %s", path);
	/* a lost or damaged queue must not reuse the last event's id */
	if (ctl_event_id((const uint8_t *)c->event, strlen(c->event),
	    &last) == 0 && last >= c->evq.next_id)
		c->evq.next_id = last + 1;
	if (c->evq.n > 0)
		log_info("control: %u event%s from %s wait for the relay",
		    c->evq.n, c->evq.n == 1 ? "" : "s", path);
}

void
control_start(struct control *c)
{
	char path[PATH_MAX], *text;
	size_t len;

	state_path(c, "event.pending", path, sizeof(path));
	if (cfgstore_read(path, CONTROL_EVENT_MAX - 1, &text, &len) == 0) {
		text[strcspn(text, "\n")] = '\0';
		rt_strlcpy(c->event, text, sizeof(c->event));
		free(text);
	}
	evq_load(c);
	state_path(c, "probation", path, sizeof(path));
	if (cfgstore_read(path, 128, &text, &len) == 0) {
		const char *from;

		text[strcspn(text, "\n")] = '\0';
		from = rt_valid_id(text) ? text : "unknown";
		log_warn("config: a change by %s was on probation when the "
		    "agent stopped; it must reach the relay within %lld s",
		    from, (long long)(c->a->cfg->control_rollback_timeout_ms /
		    1000));
		/* The file on disk is the one just loaded; a restart needs a
		 * new session anyway: the first one up ends the probation. */
		probation_start(c, from, 1);
		c->probation_loaded = 1;
		free(text);
	}
}

int
control_accept(struct control *c, LIBSSH2_CHANNEL *ch, const char *svc,
    const char *relay)
{
	struct agent *a = c->a;
	struct ctlchan *cc;
	const char *why = NULL;
	int r = RT_ERR_REFUSED;

	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		log_err("relay %s: out of memory accepting a %s channel",
		    relay, svc);
		libssh2_channel_free(ch);
		return RT_ERR_NOMEM;
	}
	cc->ctl = c;
	cc->id = ++a->last_chan_id;
	cc->ch = ch;
	cc->opened_ms = rt_mono_ms();
	rt_strlcpy(cc->svc, svc, sizeof(cc->svc));
	rt_strlcpy(cc->relay, relay, sizeof(cc->relay));
	TAILQ_INSERT_TAIL(&c->chans, cc, entry);
	c->nchans++;
	libssh2_channel_handle_extended_data2(ch,
	    LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);
	if (a->stopping)
		why = "agent is stopping";
	else if (c->nchans > CONTROL_MAX_CHANNELS) {
		why = "too many built-in sessions";
		r = RT_ERR_LIMIT;
	} else if (strcmp(svc, "shell") == 0 && !a->cfg->shell_enable)
		why = "shell is disabled";
	else if (strcmp(svc, "shell") == 0 && !agent_sessions_allowed(a))
		why = "consent gate closed";
	else if (strcmp(svc, "control") != 0 && strcmp(svc, "shell") != 0)
		why = "unknown built-in service";
	if (why != NULL) {
		a->stats.channels_refused++;
		cc_close(cc, "refused: %s", why);
		return r;
	}
	cc->from_relay = buf_new(CTL_HDR_LEN + CTL_MAX_PAYLOAD);
	cc->to_relay = buf_new(CONTROL_OUT_MAX);
	if (cc->from_relay == NULL || cc->to_relay == NULL) {
		cc_close(cc, "out of memory");
		return RT_ERR_NOMEM;
	}
	cc->state = CC_REQ;
	a->stats.channels_total++;
	log_info("ctl %u (%s): opened by relay %s", cc->id, svc, relay);
	agent_kick(a);
	return 0;
}

int
control_pump(struct control *c, struct sshc *s)
{
	struct ctlchan *cc, *tmp;
	int more = 0;

	TAILQ_FOREACH(cc, &c->chans, entry) {
		cc->more = 0;
		cc_service(cc, s);
		more |= cc->more;
	}
	if ((cc = TAILQ_FIRST(&c->chans)) != NULL) {
		TAILQ_REMOVE(&c->chans, cc, entry);
		TAILQ_INSERT_TAIL(&c->chans, cc, entry);
	}
	for (cc = TAILQ_FIRST(&c->chans); cc != NULL; cc = tmp) {
		tmp = TAILQ_NEXT(cc, entry);
		if (cc->state != CC_DEAD)
			continue;
		TAILQ_REMOVE(&c->chans, cc, entry);
		c->nchans--;
		libssh2_channel_free(cc->ch);
		cc_forget(cc);
	}
	return more;
}

unsigned int
control_count(const struct control *c)
{
	/* the events channel is no operator session: it must not keep an
	 * on-demand tunnel up */
	return c->nchans - (c->evchan != NULL);
}

void
control_reloaded(struct control *c)
{
	const struct agent_config *cfg = c->a->cfg;
	struct ctlchan *cc;

	/* Sessions of a service the new config removed or disabled end. */
	TAILQ_FOREACH(cc, &c->chans, entry)
		if (agent_config_service_by_name(cfg, cc->svc) == NULL ||
		    (strcmp(cc->svc, "shell") == 0 && !cfg->shell_enable))
			cc_close(cc, "service removed or disabled by reload");
	if (!c->probation || c->probation_loaded)
		return;
	c->probation_loaded = 1;
	/* Sessions counted from the reload on: one that came up before it
	 * ran the old settings. */
	c->probation_connects = c->a->stats.connects;
}

void
control_sigchld(struct control *c)
{
	struct ctlchan *cc;
	struct orphan *o;

	TAILQ_FOREACH(cc, &c->chans, entry)
		if (cc->sh != NULL)
			shell_reap(cc->sh);
	LIST_FOREACH(o, &c->orphans, entry)
		shell_reap(o->sh);
	agent_kick(c->a);
}

void
control_set_event_hook(struct control *c, control_event_fn fn, void *arg)
{
	c->event_fn = fn;
	c->event_arg = arg;
}
