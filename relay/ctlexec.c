/*
 * ctlexec.c - exec commands answered by an agent's control / shell
 * service (ctlexec.h).
 *
 * Direction names: "up" is operator -> agent (op_in raw stdin, framed
 * into to_agent), "down" is agent -> operator (from_agent raw frames,
 * parsed into to_op). Callbacks from libssh only append what fits the
 * soft part of a buffer or set a flag.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "acl.h"
#include "audit.h"
#include "buf.h"
#include "ctlexec.h"
#include "ctlproto.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "sshsess.h"
#include "util.h"

#define CTL_CHUNK 32768		/* largest single ssh_channel_write */
#define CTL_ERR_MAX 512		/* the stderr line */
#define CTL_KEY_MAX 128		/* config set KEY */
#define CTL_TERM_MAX 64
#define EV_TO_AGENT (16 * (CTL_HDR_LEN + CTL_ACK_MAX))	/* REQ, acks */

/*
 * The relay's end of a forwarded channel to an agent's built-in service:
 * the agent side of an operator command (struct ctlexec) and the agent's
 * events channel (struct ctlevents) both use it. The libssh callbacks
 * only append to from_agent (while reading is set) or set flags.
 */
struct agch {
	struct relay *relay;
	ssh_channel ch;
	int opened;			/* the agent confirmed the open */
	int reading;			/* callbacks keep what they get */
	struct ssh_channel_callbacks_struct cb;
	size_t soft;			/* what callbacks may fill */
	struct buf *from_agent;		/* agent frames, raw */
	int backlog;			/* libssh holds bytes we refused */
	int eof_in, closed;		/* SSH EOF / close from the agent */
};

enum ctl_state {
	CTL_IDLE = 0,		/* PTY remembered, no command yet */
	CTL_OPENING,		/* forwarded-tcpip open in flight */
	CTL_OPEN,
	CTL_FINISHING,		/* exit status known: drain, then close */
	CTL_DONE,
};

struct ctlexec {
	struct opexec *x;
	struct relay *relay;
	enum ctl_state state;
	int active;			/* ctlexec_start() ran */

	int have_pty;
	uint16_t cols, rows;
	char term[CTL_TERM_MAX + 1];
	int winch_pending;
	uint16_t wcols, wrows;

	struct ctl_cmd p;		/* the parsed command */
	int port;
	char rule[256];

	struct agent *ag;		/* NULL once let go */
	struct agch agc;		/* the channel to the agent */
	int64_t deadline;		/* while OPENING */
	int64_t t_start;

	size_t soft;			/* what callbacks may fill */
	struct buf *op_in;		/* operator stdin, raw */
	struct buf *to_agent;		/* frames for the agent */
	struct buf *to_op;		/* operator stdout */
	struct buf *to_op_err;		/* operator stderr: one line */
	int op_backlog;			/* libssh holds bytes we refused */
	int op_eof_in;			/* operator stdin ended */
	int eof_framed;			/* CTL_EOF queued for the agent */
	int got_exit;
	int status;			/* exit status for the operator */
	int config_audited;
	uint64_t bytes_up, bytes_down;
	EVP_MD_CTX *sha;		/* config apply: sha256 of stdin */
};

/* ---- small helpers ---- */

static void
errf(struct ctlexec *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
errf(struct ctlexec *c, const char *fmt, ...)
{
	char line[CTL_ERR_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	(void)buf_append_some(c->to_op_err, line, (size_t)n);
}

static struct ctlexec *
ctl_get(struct opexec *x)
{
	struct relay *r = x->op->relay;
	struct ctlexec *c;
	size_t soft;

	if (x->ctl != NULL)
		return x->ctl;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->x = x;
	c->relay = r;
	c->status = 255;
	/* a buffer must hold at least one whole frame */
	soft = RT_MAX((size_t)r->cfg->channel_buffer,
	    (size_t)(2 * (CTL_HDR_LEN + CTL_MAX_PAYLOAD)));
	c->soft = soft;
	c->agc.relay = r;
	c->agc.soft = soft;
	if ((c->op_in = buf_new(soft + BRIDGE_PULL_ROOM)) == NULL ||
	    (c->to_agent = buf_new(soft)) == NULL ||
	    (c->agc.from_agent = buf_new(soft + BRIDGE_PULL_ROOM)) == NULL ||
	    (c->to_op = buf_new(soft)) == NULL ||
	    (c->to_op_err = buf_new(CTL_ERR_MAX)) == NULL) {
		buf_free(c->op_in);
		buf_free(c->to_agent);
		buf_free(c->agc.from_agent);
		buf_free(c->to_op);
		free(c);
		return NULL;
	}
	x->ctl = c;
	return c;
}

int
ctlexec_is_command(const char *word)
{
	static const char *const cmds[] = {
		"status", "config", "logs", "reload", "shell",
	};
	size_t i;

	for (i = 0; i < RT_ARRAY_SIZE(cmds); i++) {
		if (strcmp(word, cmds[i]) == 0)
			return 1;
	}
	return 0;
}

int
ctlexec_active(const struct opexec *x)
{
	return x->ctl != NULL && x->ctl->active;
}

int
ctlexec_pty(struct opexec *x, const char *term, int cols, int rows)
{
	struct ctlexec *c;
	size_t i;

	if (term == NULL || strlen(term) > CTL_TERM_MAX || cols < 0 ||
	    cols > 65535 || rows < 0 || rows > 65535)
		return RT_ERR_INVAL;
	for (i = 0; term[i] != '\0'; i++) {
		if (term[i] <= ' ' || term[i] > '~')
			return RT_ERR_INVAL;
	}
	if ((c = ctl_get(x)) == NULL)
		return RT_ERR_NOMEM;
	if (c->active)
		return RT_ERR_INVAL;
	c->have_pty = 1;
	rt_strlcpy(c->term, term, sizeof(c->term));
	c->cols = (uint16_t)cols;
	c->rows = (uint16_t)rows;
	return 0;
}

int
ctlexec_winch(struct opexec *x, int cols, int rows)
{
	struct ctlexec *c = x->ctl;

	if (c == NULL || !c->have_pty || cols < 0 || cols > 65535 ||
	    rows < 0 || rows > 65535)
		return RT_ERR_INVAL;
	if (!c->active) {
		c->cols = (uint16_t)cols;
		c->rows = (uint16_t)rows;
		return 0;
	}
	c->wcols = (uint16_t)cols;
	c->wrows = (uint16_t)rows;
	c->winch_pending = 1;
	relay_kick(c->relay);
	return 0;
}

/* ---- audit ---- */

static void
audit_exec(struct ctlexec *c, const char *event, const char *reason)
{
	struct opconn *op = c->x->op;
	struct audit_rec rec;

	audit_rec_begin(&rec, event);
	audit_rec_str(&rec, "operator", op->name);
	audit_rec_str(&rec, "agent", c->p.agent[0] != '\0' ? c->p.agent :
	    NULL);
	audit_rec_str(&rec, "command", c->p.audit);
	audit_rec_str(&rec, "src", op->src);
	audit_rec_str(&rec, "rule", c->rule[0] != '\0' ? c->rule : NULL);
	if (reason != NULL)
		audit_rec_str(&rec, "reason", reason);
	relay_audit(c->relay, &rec);
}

/* The config record of a change, once: with the agent's answer when it
 * came (exit_status), without it (null) when the command ended first. */
static void
audit_config(struct ctlexec *c)
{
	struct audit_rec rec;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	/* a change only if it reached the agent */
	if (c->config_audited || !c->active || !c->agc.opened ||
	    (c->p.kind != KIND_SET && c->p.kind != KIND_APPLY &&
	    c->p.kind != KIND_RELOAD) || c->p.change[0] == '\0')
		return;
	c->config_audited = 1;
	audit_rec_begin(&rec, "config");
	audit_rec_str(&rec, "operator", c->x->op->name);
	audit_rec_str(&rec, "agent", c->p.agent);
	if (c->p.kind == KIND_APPLY) {
		hex[0] = '\0';
		if (c->sha != NULL && EVP_DigestFinal_ex(c->sha, md,
		    &mdlen) == 1) {
			for (i = 0; i < mdlen; i++)
				snprintf(hex + 2 * i, 3, "%02x", md[i]);
		}
		snprintf(c->p.change, sizeof(c->p.change), "apply %llu bytes "
		    "sha256 %s", (unsigned long long)c->bytes_up, hex);
		audit_rec_str(&rec, "change", c->p.change);
		audit_rec_int(&rec, "bytes", (long long)c->bytes_up);
		audit_rec_str(&rec, "sha256", hex);
	} else
		audit_rec_str(&rec, "change", c->p.change);
	if (c->got_exit)
		audit_rec_int(&rec, "exit_status", c->status);
	else
		audit_rec_str(&rec, "exit_status", NULL);
	relay_audit(c->relay, &rec);
	log_info("operator %s: config change on %s: %s (%s)",
	    c->x->op->name, c->p.agent, c->p.change,
	    c->got_exit ? (c->status == 0 ? "accepted" : "refused by the "
	    "agent") : "no answer");
}

/* ---- parsing ---- */

/* A key whose value must not appear in the audit log or the debug log. */
static int
secret_key(const char *key)
{
	static const char *const words[] = {
		"pass", "secret", "token", "key", "hmac", "credential",
		"psk", "private", "auth",
	};
	char low[CTL_KEY_MAX + 1];
	size_t i;

	for (i = 0; key[i] != '\0' && i < CTL_KEY_MAX; i++)
		low[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ?
		    key[i] - 'A' + 'a' : key[i]);
	low[i] = '\0';
	for (i = 0; i < RT_ARRAY_SIZE(words); i++) {
		if (strstr(low, words[i]) != NULL)
			return 1;
	}
	return 0;
}

static int
valid_key(const char *k)
{
	size_t i;

	for (i = 0; k[i] != '\0'; i++) {
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		    (k[i] >= 'A' && k[i] <= 'Z') ||
		    (k[i] >= '0' && k[i] <= '9') || strchr("._-[]", k[i])))
			return 0;
	}
	return i > 0 && i <= CTL_KEY_MAX;
}

/* No control characters (C0 but tab, DEL); UTF-8 is left to the agent,
 * which checks it (ctl_req_split). */
static int
printable(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	}
	return 1;
}

static const char *
usage_text(const char *word)
{
	if (strcmp(word, "status") == 0)
		return "usage: status AGENT\n";
	if (strcmp(word, "config") == 0)
		return "usage: config AGENT show\n"
		    "       config AGENT set KEY VALUE\n"
		    "       config AGENT apply < FILE\n";
	if (strcmp(word, "logs") == 0)
		return "usage: logs AGENT [-f]\n";
	if (strcmp(word, "reload") == 0)
		return "usage: reload AGENT\n";
	return "usage: ssh -t ... shell AGENT\n";
}

/*
 * Splits line into at most max words (space / tab separated); *rest gets
 * where word number rest_after + 1 starts (for config set VALUE). Returns
 * the number of words, or -1 if there are more than max.
 */
static int
split_words(char *line, char **w, int max, int rest_after, char **rest)
{
	int n = 0;
	char *p = line;

	*rest = NULL;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (n == rest_after && rest_after > 0) {
			*rest = p;
			/* the value keeps inner blanks, not trailing ones */
			n++;
			break;
		}
		if (n == max)
			return -1;
		w[n++] = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
	}
	if (*rest != NULL) {
		p = *rest + strlen(*rest);
		while (p > *rest && (p[-1] == ' ' || p[-1] == '\t'))
			*--p = '\0';
	}
	return n;
}

/* The first words of line (at most 3, "..." after) for the audit of a
 * line that did not parse: enough to see what was tried, and no VALUE
 * that might be a secret. */
static void
audit_prefix(const char *line, char *out, size_t outlen)
{
	char copy[CTL_CMD_MAX + 1], *w[3], *rest;
	int n, i;
	size_t off = 0;

	out[0] = '\0';
	rt_strlcpy(copy, line, sizeof(copy));
	n = split_words(copy, w, 3, 3, &rest);
	for (i = 0; i < n && i < 3 && off < outlen; i++)
		off += (size_t)snprintf(out + off, outlen - off, "%s%.64s",
		    i ? " " : "", w[i]);
	if (rest != NULL && off < outlen)
		snprintf(out + off, outlen - off, " ...");
}

int
ctlexec_parse(const char *line, struct ctl_cmd *p)
{
	char copy[CTL_CMD_MAX + 1], *w[4], *rest;
	int n;

	memset(p, 0, sizeof(*p));
	if (strlen(line) > CTL_CMD_MAX - 64 || !printable(line)) {
		rt_strlcpy(p->audit, "(unprintable or too long)",
		    sizeof(p->audit));
		return RT_ERR_INVAL;
	}
	audit_prefix(line, p->audit, sizeof(p->audit));
	rt_strlcpy(copy, line, sizeof(copy));
	n = split_words(copy, w, 4, strncmp(line, "config", 6) == 0 ? 4 : 0,
	    &rest);
	if (n < 2)
		return RT_ERR_INVAL;
	rt_strlcpy(p->service, "control", sizeof(p->service));
	p->kind = KIND_READ;
	p->right = "read";
	if (strcmp(w[0], "status") == 0 && n == 2) {
		rt_strlcpy(p->cmd, "status", sizeof(p->cmd));
	} else if (strcmp(w[0], "reload") == 0 && n == 2) {
		rt_strlcpy(p->cmd, "reload", sizeof(p->cmd));
		rt_strlcpy(p->change, "reload", sizeof(p->change));
		p->kind = KIND_RELOAD;
		p->right = "write";
	} else if (strcmp(w[0], "logs") == 0 &&
	    (n == 2 || (n == 3 && strcmp(w[2], "-f") == 0))) {
		rt_strlcpy(p->cmd, n == 3 ? "logs -f" : "logs", sizeof(p->cmd));
		p->right = "logs";
	} else if (strcmp(w[0], "shell") == 0 && n == 2) {
		rt_strlcpy(p->cmd, "shell", sizeof(p->cmd));
		rt_strlcpy(p->service, "shell", sizeof(p->service));
		p->kind = KIND_SHELL;
		p->right = "shell";
	} else if (strcmp(w[0], "config") == 0 && n == 3 &&
	    strcmp(w[2], "show") == 0) {
		rt_strlcpy(p->cmd, "config show", sizeof(p->cmd));
	} else if (strcmp(w[0], "config") == 0 && n == 3 &&
	    strcmp(w[2], "apply") == 0) {
		rt_strlcpy(p->cmd, "config apply", sizeof(p->cmd));
		rt_strlcpy(p->change, "apply", sizeof(p->change));
		p->kind = KIND_APPLY;
		p->right = "write";
	} else if (strcmp(w[0], "config") == 0 && n == 5 &&
	    strcmp(w[2], "set") == 0 && valid_key(w[3]) && rest != NULL &&
	    strchr(rest, '\t') == NULL) {
		/* (a tab is a control character in CTL_REQ) */
		snprintf(p->cmd, sizeof(p->cmd), "config set %s %s", w[3],
		    rest);
		p->secret = secret_key(w[3]);
		if (p->secret)
			snprintf(p->change, sizeof(p->change), "set %s (value "
			    "not logged)", w[3]);
		else
			snprintf(p->change, sizeof(p->change), "set %s = %.*s",
			    w[3], 160, rest);
		p->kind = KIND_SET;
		p->right = "write";
	} else {
		p->right = NULL;
		p->cmd[0] = p->change[0] = p->service[0] = '\0';
		return RT_ERR_INVAL;
	}
	/* an id too long to be one is still an answer: "no such agent" */
	if (rt_strlcpy(p->agent, w[1], sizeof(p->agent)) >= sizeof(p->agent))
		p->agent[0] = '\0';
	if (p->secret)
		snprintf(p->audit, sizeof(p->audit), "config %.64s set %s ***",
		    w[1], w[3]);
	else
		snprintf(p->audit, sizeof(p->audit), "%s %.64s%.400s", w[0],
		    w[1], p->cmd + strlen(w[0]));
	return 0;
}

/* ---- start ---- */

/* Ends the command with status and (optional) one line on stderr; the
 * agent channel, if any, is closed at once. */
static void
ctl_finish(struct ctlexec *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
ctl_finish(struct ctlexec *c, int status, const char *fmt, ...)
{
	char line[CTL_ERR_MAX];
	va_list ap;

	if (c->state == CTL_FINISHING || c->state == CTL_DONE)
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		errf(c, "%s\n", line);
		if (status == 255)
			log_info("operator %s: %s on %s: %s", c->x->op->name,
			    c->p.cmd, c->p.agent, line);
	}
	c->status = status;
	c->state = CTL_FINISHING;
	c->agc.reading = 0;	/* nobody parses agent frames any more */
	if (c->ag != NULL && c->agc.ch != NULL && c->agc.opened &&
	    !c->agc.closed && ssh_channel_is_open(c->agc.ch)) {
		c->ag->touched = 1;
		ssh_channel_close(c->agc.ch);
	}
	relay_kick(c->relay);
}

unsigned int
ctlexec_channels_on(struct relay *r, const struct agent *ag)
{
	struct opconn *op;
	struct opexec *x;
	unsigned int n = 0;

	TAILQ_FOREACH(op, &r->operators, link) {
		TAILQ_FOREACH(x, &op->execs, link)
			n += x->ctl != NULL && x->ctl->ag == ag;
	}
	return n;
}

struct agent *
ctlexec_target(struct relay *r, const char *op_name, const struct ctl_cmd *p,
	       const char **rule, const char **why)
{
	struct agent *ag;

	*why = "forbidden";
	if (p->agent[0] == '\0' || !rt_valid_id(p->agent) ||
	    !acl_check(r->cfg->acl, op_name, ACL_RIGHT, p->agent, p->right,
	    rule))
		return NULL;
	ag = registry_find(r, p->agent);
	*why = ag == NULL ? "no such agent" : "agent offline";
	if (ag == NULL || ag->state != AGENT_UP || ag->dead)
		return NULL;
	*why = NULL;
	return ag;
}

void
ctlexec_start(struct opexec *x, const char *line)
{
	struct opconn *op = x->op;
	struct relay *r = op->relay;
	const struct relay_config *cfg = r->cfg;
	const struct agent_svc *svc;
	struct ctlexec *c;
	const char *rule = "default deny", *why;
	char word[16];
	size_t n;
	struct agent *ag;

	x->ran = 1;
	if ((c = ctl_get(x)) == NULL) {
		log_err("operator %s: out of memory for a command", op->name);
		x->exit_status = 255;
		(void)buf_append_some(x->out, "revtun: out of memory\n", 22);
		return;
	}
	c->active = 1;
	c->t_start = loop_now(r->loop);
	n = strcspn(line, " \t");
	rt_strlcpy(word, line, RT_MIN(n + 1, sizeof(word)));
	if (ctlexec_parse(line, &c->p) != 0) {
		audit_exec(c, "exec_deny", "usage");
		errf(c, "%s", usage_text(word));
		ctl_finish(c, 2, NULL);
		return;
	}
	if (c->p.kind == KIND_APPLY) {
		/* the audit names the file by its hash: see audit_config */
		if ((c->sha = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL) != 1) {
			EVP_MD_CTX_free(c->sha);
			c->sha = NULL;
		}
	}
	/* one answer for unknown, offline and forbidden (DESIGN.md, ACL) */
	if ((ag = ctlexec_target(r, op->name, &c->p, &rule, &why)) == NULL) {
		rt_strlcpy(c->rule, rule, sizeof(c->rule));
		audit_exec(c, "exec_deny", why);
		log_info("operator %s: \"%s\" refused (%s)", op->name,
		    c->p.audit, rule);
		/* byte for byte the same whatever the agent */
		ctl_finish(c, 1, "revtun: no such agent, or offline, or not "
		    "permitted");
		return;
	}
	rt_strlcpy(c->rule, rule, sizeof(c->rule));
	if ((svc = registry_service(ag, c->p.service, 0)) == NULL) {
		audit_exec(c, "exec_deny", c->p.kind == KIND_SHELL ?
		    "no shell service" : "no control service");
		ctl_finish(c, 1, "revtun: %s has no %s service enabled",
		    c->p.agent, c->p.service);
		return;
	}
	if (r->stopping) {
		audit_exec(c, "exec_deny", "relay stopping");
		ctl_finish(c, 1, "revtun: the relay is stopping");
		return;
	}
	if (ag->nbridges + ctlexec_channels_on(r, ag) >=
	    cfg->agent_max_channels) {
		audit_exec(c, "exec_deny", "agent channel limit");
		ctl_finish(c, 1, "revtun: %s: too many open channels, try "
		    "again later", c->p.agent);
		return;
	}
	if ((c->agc.ch = ssh_channel_new(ag->ss.s)) == NULL) {
		audit_exec(c, "exec_deny", "out of memory");
		ctl_finish(c, 255, "revtun: out of memory");
		return;
	}
	c->ag = ag;
	c->port = svc->port;
	c->state = CTL_OPENING;
	c->deadline = c->t_start + cfg->handshake_timeout_ms;
	c->op_backlog = 1;	/* stdin may have come before the exec */
	audit_exec(c, "exec", NULL);
	log_info("operator %s: \"%s\" (%s)", op->name, c->p.audit, c->rule);
	relay_kick(r);
}

/* ---- callbacks ---- */

int
ctlexec_op_data(struct opexec *x, const void *data, uint32_t len)
{
	struct ctlexec *c = x->ctl;
	size_t room;
	ssize_t n;

	if (c->state != CTL_OPENING && c->state != CTL_OPEN)
		return (int)len;	/* nobody will read it */
	room = buf_len(c->op_in) < c->soft ? c->soft - buf_len(c->op_in) : 0;
	n = buf_append_some(c->op_in, data, RT_MIN((size_t)len, room));
	if (n < 0)
		n = 0;
	c->op_backlog = (size_t)n < len;
	relay_kick(c->relay);
	return (int)n;
}

void
ctlexec_op_eof(struct opexec *x)
{
	x->ctl->op_eof_in = 1;
	relay_kick(x->ctl->relay);
}

static int
agch_data_cb(ssh_session s, ssh_channel ch, void *data, uint32_t len,
	     int is_stderr, void *ud)
{
	struct agch *h = ud;
	size_t room;
	ssize_t n;

	if (is_stderr || !h->reading)
		return (int)len;
	room = buf_len(h->from_agent) < h->soft ?
	    h->soft - buf_len(h->from_agent) : 0;
	n = buf_append_some(h->from_agent, data, RT_MIN((size_t)len, room));
	if (n < 0)
		n = 0;
	h->backlog = (size_t)n < len;
	relay_kick(h->relay);
	return (int)n;
}

static void
agch_eof_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct agch *h = ud;

	h->eof_in = 1;
	relay_kick(h->relay);
}

static void
agch_close_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct agch *h = ud;

	h->closed = 1;
	relay_kick(h->relay);
}

/*
 * Advances the forwarded-tcpip open of h->ch (from ssh_channel_new on
 * ag's session) to ag's service svc:port, from originator host:port.
 * Returns 0 while it is in flight before deadline, 1 once open (callbacks
 * installed, reading on), RT_ERR_TIMEOUT or RT_ERR_REFUSED (h->ch freed:
 * pitfall 8, a failed open is never closed; a late one is left to
 * libssh).
 */
static int
agch_open(struct agch *h, struct agent *ag, const char *svc, int port,
	  const char *host, int hport, int64_t deadline)
{
	int rc;

	ag->touched = 1;
	rc = ssh_channel_open_reverse_forward(h->ch, svc, port, host, hport);
	if (rc == SSH_AGAIN && loop_now(h->relay->loop) < deadline)
		return 0;
	if (rc != SSH_OK) {
		ssh_channel_free(h->ch);
		h->ch = NULL;
		return rc == SSH_AGAIN ? RT_ERR_TIMEOUT : RT_ERR_REFUSED;
	}
	h->opened = 1;
	h->reading = 1;
	memset(&h->cb, 0, sizeof(h->cb));
	h->cb.userdata = h;
	h->cb.channel_data_function = agch_data_cb;
	h->cb.channel_eof_function = agch_eof_cb;
	h->cb.channel_close_function = agch_close_cb;
	ssh_callbacks_init(&h->cb);
	ssh_set_channel_callbacks(h->ch, &h->cb);
	return 1;
}

/* ssh_channel_poll(ch, 0), but SSH_ERROR on a session libssh ran out of
 * memory on: the channel's buffer may be NULL there (sshsess_lib_oom). */
static int
chan_poll(ssh_channel ch)
{
	if (sshsess_lib_oom(ssh_channel_get_session(ch)))
		return SSH_ERROR;
	return ssh_channel_poll(ch, 0);
}

/* 1 once the agent ended the channel (EOF or close) and no whole frame
 * is left to parse: nothing more can come. */
static int
agch_ended(struct agch *h)
{
	struct ctl_frame f;

	return (h->eof_in || h->closed) && !h->backlog &&
	    buf_len(h->from_agent) < CTL_HDR_LEN + CTL_MAX_PAYLOAD &&
	    chan_poll(h->ch) <= 0 &&
	    ctl_parse(buf_data(h->from_agent), buf_len(h->from_agent),
	    &f) == RT_ERR_AGAIN;
}

/* Lets go of h->ch: callbacks off, closed if it was open, freed. */
static void
agch_release(struct agch *h)
{
	if (h->ch == NULL)
		return;
	h->reading = 0;
	if (h->opened) {
		ssh_remove_channel_callbacks(h->ch, &h->cb);
		if (!h->closed && ssh_channel_is_open(h->ch))
			ssh_channel_close(h->ch);
	}
	/* pitfall 8: one that never opened is only freed */
	ssh_channel_free(h->ch);
	h->ch = NULL;
}

/* ---- pump ---- */

/* Completes the forwarded-tcpip open. Returns 1 on a state change. */
static int
advance_open(struct ctlexec *c)
{
	struct opconn *op = c->x->op;
	uint8_t req[RELAY_ID_MAX + 1 + CTL_CMD_MAX + 1];
	uint8_t pty[4 + CTL_TERM_MAX];
	size_t ol, cl, tl;
	int rc;

	rc = agch_open(&c->agc, c->ag, c->p.service, c->port, op->host,
	    op->port, c->deadline);
	if (rc == 0)
		return 0;
	if (rc == RT_ERR_TIMEOUT) {
		ctl_finish(c, 255, "revtun: %s did not answer", c->p.agent);
		return 1;
	}
	if (rc < 0) {
		ctl_finish(c, 255, "revtun: %s refused the %s channel",
		    c->p.agent, c->p.service);
		return 1;
	}
	c->state = CTL_OPEN;

	ol = strlen(op->name);
	cl = strlen(c->p.cmd);
	memcpy(req, op->name, ol);
	req[ol] = '\0';
	memcpy(req + ol + 1, c->p.cmd, cl);
	/* to_agent is empty and holds a whole frame: these cannot fail */
	(void)ctl_append(c->to_agent, CTL_REQ, req, ol + 1 + cl);
	if (c->p.kind == KIND_SHELL && c->have_pty) {
		tl = strlen(c->term);
		ctl_put_u16(pty, c->cols);
		ctl_put_u16(pty + 2, c->rows);
		memcpy(pty + 4, c->term, tl);
		(void)ctl_append(c->to_agent, CTL_PTY, pty, 4 + tl);
	}
	log_debug("operator %s: %s channel to %s open", op->name, c->p.service,
	    c->p.agent);
	return 1;
}

/* Frames stdin from op_in into to_agent. Returns bytes framed. */
static size_t
frame_up(struct ctlexec *c, size_t *quota)
{
	uint8_t wz[4];
	size_t len, room, moved = 0;

	if (c->winch_pending && c->p.kind == KIND_SHELL && c->have_pty &&
	    buf_room(c->to_agent) >= CTL_HDR_LEN + 4) {
		ctl_put_u16(wz, c->wcols);
		ctl_put_u16(wz + 2, c->wrows);
		(void)ctl_append(c->to_agent, CTL_WINCH, wz, 4);
		c->winch_pending = 0;
	} else if (c->winch_pending && c->p.kind != KIND_SHELL)
		c->winch_pending = 0;
	while ((len = buf_len(c->op_in)) > 0 && *quota > 0) {
		room = buf_room(c->to_agent);
		if (room <= CTL_HDR_LEN)
			break;
		len = RT_MIN(len, RT_MIN(room - CTL_HDR_LEN, CTL_MAX_PAYLOAD));
		len = RT_MIN(len, *quota);
		if (ctl_append(c->to_agent, CTL_DATA, buf_data(c->op_in),
		    len) != 0)
			break;
		if (c->sha != NULL)
			(void)EVP_DigestUpdate(c->sha, buf_data(c->op_in), len);
		buf_consume(c->op_in, len);
		c->bytes_up += len;
		*quota -= len;
		moved += len;
	}
	if (buf_len(c->op_in) == 0)
		buf_shrink(c->op_in);
	if (c->op_eof_in && !c->eof_framed && buf_len(c->op_in) == 0 &&
	    !c->op_backlog && buf_room(c->to_agent) >= CTL_HDR_LEN) {
		if (chan_poll(c->x->ch) > 0)
			c->op_backlog = 1;	/* data before the EOF */
		else if (ctl_append(c->to_agent, CTL_EOF, NULL, 0) == 0)
			c->eof_framed = 1;
	}
	return moved;
}

/* Writes b to ch. Returns bytes moved or -1. */
static ssize_t
flush(ssh_channel ch, struct sshsess *ss, struct buf *b, int to_stderr,
      size_t *quota)
{
	size_t len, moved = 0;
	int n;

	while ((len = buf_len(b)) > 0 && *quota > 0) {
		if (ss == NULL || sshsess_busy(ss))
			break;
		len = RT_MIN(len, RT_MIN(*quota, CTL_CHUNK));
		n = to_stderr ?
		    ssh_channel_write_stderr(ch, buf_data(b), (uint32_t)len) :
		    ssh_channel_write(ch, buf_data(b), (uint32_t)len);
		if (n == SSH_ERROR)
			return -1;
		if (n <= 0)
			break;		/* no window: wait for an adjust */
		/* pitfall 7: exactly what was taken */
		buf_consume(b, (size_t)n);
		*quota -= (size_t)n;
		moved += (size_t)n;
	}
	if (buf_len(b) == 0)
		buf_shrink(b);
	return (ssize_t)moved;
}

/* Turns the agent's frames into stdout and an exit status. Returns
 * bytes of frames consumed. */
static size_t
parse_down(struct ctlexec *c, size_t *quota)
{
	struct ctl_frame f;
	uint32_t st;
	size_t moved = 0;
	int n;

	while (c->state == CTL_OPEN && buf_len(c->agc.from_agent) > 0 &&
	    *quota > 0) {
		n = ctl_parse(buf_data(c->agc.from_agent), buf_len(c->agc.from_agent),
		    &f);
		if (n == RT_ERR_AGAIN)
			break;
		if (n < 0) {
			ctl_finish(c, 255, "revtun: %s: protocol error on the "
			    "%s channel (%s)", c->p.agent, c->p.service,
			    n == RT_ERR_TOOBIG ? "frame too long" :
			    "bad frame");
			break;
		}
		switch (f.type) {
		case CTL_DATA:
			if (buf_room(c->to_op) < f.len)
				return moved;	/* stdout backed up */
			if (buf_append(c->to_op, f.payload, f.len) != 0)
				return moved;
			c->bytes_down += f.len;
			break;
		case CTL_EOF:
			break;
		case CTL_EXIT:
			if (ctl_get_exit(&f, &st) != 0) {
				ctl_finish(c, 255, "revtun: %s: protocol error "
				    "on the %s channel (bad exit frame)",
				    c->p.agent, c->p.service);
				return moved;
			}
			c->got_exit = 1;
			buf_consume(c->agc.from_agent, (size_t)n);
			/* 0..255 is what an SSH client can show */
			ctl_finish(c, st > 255 ? 255 : (int)st, NULL);
			return moved + (size_t)n;
		default:
			ctl_finish(c, 255, "revtun: %s: protocol error on the "
			    "%s channel (frame type %u from the agent)",
			    c->p.agent, c->p.service, f.type);
			return moved;
		}
		buf_consume(c->agc.from_agent, (size_t)n);
		moved += (size_t)n;
		*quota -= RT_MIN(*quota, (size_t)n);
	}
	if (buf_len(c->agc.from_agent) == 0)
		buf_shrink(c->agc.from_agent);
	return moved;
}

static int
service_open(struct ctlexec *c)
{
	struct opconn *op = c->x->op;
	size_t qup = BRIDGE_QUOTA, qdown = BRIDGE_QUOTA;
	ssize_t n;
	int progress = 0;

	/* up: stdin -> frames -> agent */
	if ((n = sshsess_pull(c->x->ch, c->op_in, &c->op_backlog)) < 0) {
		ctl_finish(c, 255, "revtun: reading your input failed");
		return 1;
	}
	progress |= n > 0;
	/* an EOF sent with the exec request came before the callback was
	 * ours; libssh says EOF only once its buffered data is read */
	if (!c->op_eof_in && !c->op_backlog && ssh_channel_is_eof(c->x->ch))
		c->op_eof_in = 1;
	progress |= frame_up(c, &qup) > 0;
	if (c->agc.closed || ssh_channel_is_closed(c->agc.ch))
		buf_reset(c->to_agent);	/* nobody reads it: see below */
	if ((n = flush(c->agc.ch, &c->ag->ss, c->to_agent, 0, &qup)) < 0) {
		if (!ssh_channel_is_closed(c->agc.ch)) {
			ctl_finish(c, 255, "revtun: %s: writing to the %s "
			    "channel failed", c->p.agent, c->p.service);
			return 1;
		}
		/* closed under us: its last frames may still be parsed */
		buf_reset(c->to_agent);
		n = 0;
	}
	progress |= n > 0;
	if (n > 0)
		progress |= frame_up(c, &qup) > 0;

	/* down: agent frames -> stdout */
	if ((n = sshsess_pull(c->agc.ch, c->agc.from_agent, &c->agc.backlog)) < 0) {
		ctl_finish(c, 255, "revtun: %s: reading the %s channel failed",
		    c->p.agent, c->p.service);
		return 1;
	}
	progress |= n > 0;
	progress |= parse_down(c, &qdown) > 0;
	if ((n = flush(c->x->ch, &op->ss, c->to_op, 0, &qdown)) < 0)
		return -1;
	progress |= n > 0;
	if (c->state != CTL_OPEN)
		return 1;
	/* the agent's channel ended without CTL_EXIT */
	if (agch_ended(&c->agc)) {
		ctl_finish(c, 255, "revtun: %s closed the %s channel before "
		    "the command finished", c->p.agent, c->p.service);
		return 1;
	}
	return progress;
}

/* Drains stdout and stderr, then exit status, EOF, close. */
static int
service_finish(struct ctlexec *c)
{
	struct opexec *x = c->x;
	struct opconn *op = x->op;
	size_t q = BRIDGE_QUOTA;
	ssize_t n;
	int progress = 0;

	if ((n = flush(x->ch, &op->ss, c->to_op, 0, &q)) < 0)
		return -1;
	progress |= n > 0;
	if (buf_len(c->to_op) > 0)
		return progress;
	if ((n = flush(x->ch, &op->ss, c->to_op_err, 1, &q)) < 0)
		return -1;
	progress |= n > 0;
	if (buf_len(c->to_op_err) > 0)
		return progress;
	audit_config(c);
	x->exit_status = c->status;
	ssh_channel_request_send_exit_status(x->ch, c->status);
	ssh_channel_send_eof(x->ch);
	ssh_channel_close(x->ch);
	x->finished = 1;
	x->dead = 1;
	c->state = CTL_DONE;
	log_info("operator %s: \"%s\" done: exit %d, %llu bytes in, %llu "
	    "out, %lld ms", op->name, c->p.audit, c->status,
	    (unsigned long long)c->bytes_up,
	    (unsigned long long)c->bytes_down,
	    (long long)(loop_now(c->relay->loop) - c->t_start));
	return 1;
}

int
ctlexec_service(struct opexec *x)
{
	struct ctlexec *c = x->ctl;
	int rc = 0;

	if (c == NULL || !c->active || x->dead)
		return 0;
	x->op->touched = 1;
	if (c->ag != NULL)
		c->ag->touched = 1;
	if (c->state == CTL_OPENING) {
		if (c->ag == NULL) {
			ctl_finish(c, 255, "revtun: %s went away",
			    c->p.agent);
			return 1;
		}
		if (advance_open(c) == 0)
			return 0;
	}
	if (c->state == CTL_OPEN) {
		if (c->ag == NULL) {
			ctl_finish(c, 255, "revtun: %s disconnected",
			    c->p.agent);
			return 1;
		}
		rc = service_open(c);
	}
	if (rc >= 0 && c->state == CTL_FINISHING)
		rc = service_finish(c);
	if (rc < 0) {
		/* the operator's channel is gone: nothing to tell */
		x->dead = 1;
		c->state = CTL_DONE;
		c->agc.reading = 0;
		return 1;
	}
	return rc;
}

/* ---- reaper ---- */

void
ctlexec_reap_check(struct opexec *x)
{
	struct ctlexec *c = x->ctl;

	if (c == NULL || c->ag == NULL || !c->ag->dead)
		return;
	agch_release(&c->agc);
	c->ag = NULL;
	if (c->state == CTL_OPENING || c->state == CTL_OPEN)
		ctl_finish(c, 255, "revtun: %s disconnected", c->p.agent);
}

void
ctlexec_free(struct opexec *x)
{
	struct ctlexec *c = x->ctl;

	if (c == NULL)
		return;
	if (c->active && c->state != CTL_DONE && c->agc.opened)
		log_info("operator %s: \"%s\" on %s ended by the operator",
		    x->op->name, c->p.audit, c->p.agent);
	audit_config(c);
	if (c->ag != NULL)
		agch_release(&c->agc);
	EVP_MD_CTX_free(c->sha);
	buf_free(c->op_in);
	buf_free(c->to_agent);
	buf_free(c->agc.from_agent);
	buf_free(c->to_op);
	buf_free(c->to_op_err);
	free(c);
	x->ctl = NULL;
}

/* ---- agent events ---- */

struct jp {
	const unsigned char *p, *end;
	int depth;
};

static void
jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int jp_value(struct jp *j);

static int
jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return 0;
	j->p += n;
	return 1;
}

static int
jp_string(struct jp *j)
{
	int i;

	if (j->p >= j->end || *j->p != '"')
		return 0;
	for (j->p++; j->p < j->end; j->p++) {
		if (*j->p == '"') {
			j->p++;
			return 1;
		}
		if (*j->p < 0x20)
			return 0;
		if (*j->p != '\\')
			continue;
		if (++j->p >= j->end)
			return 0;
		if (strchr("\"\\/bfnrt", *j->p) != NULL && *j->p != '\0')
			continue;
		if (*j->p != 'u')
			return 0;
		for (i = 0; i < 4; i++) {
			if (++j->p >= j->end || strchr("0123456789abcdefABCDEF",
			    *j->p) == NULL || *j->p == '\0')
				return 0;
		}
	}
	return 0;
}

static int
jp_number(struct jp *j)
{
	const unsigned char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return 0;
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return 0;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return 0;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > s;
}

static int
jp_container(struct jp *j, int object)
{
	unsigned char close = object ? '}' : ']';

	if (++j->depth > 16)
		return 0;
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 1;
	}
	for (;;) {
		jp_ws(j);
		if (object) {
			if (!jp_string(j))
				return 0;
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return 0;
			j->p++;
			jp_ws(j);
		}
		if (!jp_value(j))
			return 0;
		jp_ws(j);
		if (j->p >= j->end)
			return 0;
		if (*j->p == close) {
			j->p++;
			j->depth--;
			return 1;
		}
		if (*j->p != ',')
			return 0;
		j->p++;
	}
}

static int
jp_value(struct jp *j)
{
	if (j->p >= j->end)
		return 0;
	switch (*j->p) {
	case '{':
		return jp_container(j, 1);
	case '[':
		return jp_container(j, 0);
	case '"':
		return jp_string(j);
	case 't':
		return jp_lit(j, "true");
	case 'f':
		return jp_lit(j, "false");
	case 'n':
		return jp_lit(j, "null");
	default:
		return jp_number(j);
	}
}

int
ctlexec_json_object_ok(const char *json, size_t len)
{
	struct jp j;
	size_t i;

	if (json == NULL || len == 0 || len > CTLEXEC_EVENT_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		/* printable: no C0 controls but blanks, no DEL */
		if (((unsigned char)json[i] < 0x20 && json[i] != ' ' &&
		    json[i] != '\t' && json[i] != '\n' && json[i] != '\r') ||
		    (unsigned char)json[i] == 0x7f)
			return 0;
	}
	j.p = (const unsigned char *)json;
	j.end = j.p + len;
	j.depth = 0;
	jp_ws(&j);
	if (j.p >= j.end || *j.p != '{' || !jp_container(&j, 1))
		return 0;
	jp_ws(&j);
	return j.p == j.end;
}

int
ctlexec_agent_event(struct agent *a, const char *json, size_t len)
{
	struct audit_rec rec;
	char copy[CTLEXEC_EVENT_MAX + 1];
	int rc;

	if (len > CTLEXEC_EVENT_MAX) {
		log_warn("agent %s: event of %zu bytes refused (limit %d)",
		    a->id, len, CTLEXEC_EVENT_MAX);
		return RT_ERR_TOOBIG;
	}
	if (!ctlexec_json_object_ok(json, len)) {
		log_warn("agent %s: event refused: not one printable JSON "
		    "object", a->id);
		return RT_ERR_INVAL;
	}
	memcpy(copy, json, len);
	copy[len] = '\0';
	audit_rec_begin(&rec, "agent_event");
	audit_rec_str(&rec, "agent", a->id);
	audit_rec_str(&rec, "detail", copy);
	/* the caller acks only what is in the log: the result counts */
	if ((rc = audit_write(a->relay->audit, &rec)) != 0)
		return rc;
	log_info("agent %s: event %s", a->id, copy);
	return 0;
}

/* ---- the agent's events channel ---- */

enum ev_state {
	EV_IDLE = 0,		/* no channel; open one when retry_at is due */
	EV_OPENING,		/* forwarded-tcpip open in flight */
	EV_OPEN,
	EV_OFF,			/* the agent does not take it: not again */
};

struct ctlevents {
	struct agent *ag;
	enum ev_state state;
	struct agch agc;
	int port;			/* the control service's */
	struct buf *to_agent;		/* the REQ, then acks */
	int64_t deadline;		/* while OPENING */
	int64_t retry_at;		/* while IDLE */
	int64_t window_start;		/* rate limit: this minute ... */
	unsigned int window_events;	/* ... and its events so far */
	uint64_t audited;		/* events written, this connection */
};

static void
ev_stop(struct ctlevents *ev, enum ev_state next, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Ends the channel (if any) and waits in next (IDLE: retry later). */
static void
ev_stop(struct ctlevents *ev, enum ev_state next, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("agent %s: events channel: %s%s", ev->ag->id, why,
	    next == EV_IDLE ? "; trying again later" : "");
	agch_release(&ev->agc);
	ev->agc.opened = ev->agc.backlog = 0;
	ev->agc.eof_in = ev->agc.closed = 0;
	buf_reset(ev->agc.from_agent);
	buf_reset(ev->to_agent);
	ev->state = next;
	ev->retry_at = loop_now(ev->ag->relay->loop) + CTLEXEC_EVENTS_RETRY_MS;
}

static struct ctlevents *
ev_new(struct agent *a)
{
	struct ctlevents *ev;
	/* one whole frame, and what libssh may hand over at once */
	size_t soft = CTL_HDR_LEN + CTL_MAX_PAYLOAD;

	if ((ev = calloc(1, sizeof(*ev))) == NULL)
		return NULL;
	ev->ag = a;
	ev->agc.relay = a->relay;
	ev->agc.soft = soft;
	if ((ev->agc.from_agent = buf_new(soft + BRIDGE_PULL_ROOM)) == NULL ||
	    (ev->to_agent = buf_new(EV_TO_AGENT)) == NULL) {
		buf_free(ev->agc.from_agent);
		free(ev);
		return NULL;
	}
	return ev;
}

/* One event frame: audited, then acked. Returns 0, RT_ERR_AGAIN (not
 * written: keep it and try again later) or RT_ERR_PROTO (no event: the
 * stop is logged here). */
static int
ev_event(struct ctlevents *ev, const struct ctl_frame *f)
{
	char ack[CTL_ACK_MAX], text[61];
	uint64_t id;
	size_t n, i;
	int rc;

	if (ctl_event_id(f->payload, f->len, &id) != 0) {
		/* an agent that does not know "events" answers it with an
		 * error text: asking again would get the same */
		n = RT_MIN((size_t)f->len, sizeof(text) - 1);
		for (i = 0; i < n; i++)
			text[i] = f->payload[i] >= 0x20 && f->payload[i] < 0x7f ?
			    (char)f->payload[i] : '?';
		text[n] = '\0';
		ev_stop(ev, EV_OFF, "the agent does not deliver events (it "
		    "sent \"%s\", not an event)", text);
		return RT_ERR_PROTO;
	}
	rc = ctlexec_agent_event(ev->ag, (const char *)f->payload, f->len);
	if (rc == RT_ERR_SYS)
		return RT_ERR_AGAIN;	/* the agent keeps it meanwhile */
	/* a refused one (not JSON, too long) is logged above and acked all
	 * the same, or it would come back on every connection */
	if (rc == 0)
		ev->audited++;
	n = ctl_ack_format(ack, sizeof(ack), id);
	(void)ctl_append(ev->to_agent, CTL_DATA, ack, n);	/* room checked */
	return 0;
}

/* Events in, acks out. Returns 1 if it moved anything. */
static int
ev_pump(struct ctlevents *ev)
{
	struct agent *a = ev->ag;
	struct agch *h = &ev->agc;
	struct ctl_frame f;
	uint32_t st;
	size_t quota = BRIDGE_QUOTA;
	int64_t now = loop_now(a->relay->loop);
	ssize_t n;
	int progress = 0, rc, er;

	if ((n = sshsess_pull(h->ch, h->from_agent, &h->backlog)) < 0) {
		ev_stop(ev, EV_IDLE, "reading failed");
		return 1;
	}
	progress |= n > 0;
	if (now - ev->window_start >= 60000) {
		ev->window_start = now;
		ev->window_events = 0;
	}
	while (buf_len(h->from_agent) > 0 &&
	    ev->window_events < CTLEXEC_EVENTS_PER_MIN &&
	    buf_room(ev->to_agent) >= CTL_HDR_LEN + CTL_ACK_MAX) {
		rc = ctl_parse(buf_data(h->from_agent), buf_len(h->from_agent),
		    &f);
		if (rc == RT_ERR_AGAIN)
			break;
		if (rc < 0) {
			ev_stop(ev, EV_IDLE, "protocol error (%s)",
			    rt_strerror(rc));
			return 1;
		}
		if (f.type == CTL_DATA) {
			ev->window_events++;
			if ((er = ev_event(ev, &f)) == RT_ERR_AGAIN)
				break;	/* the tick tries again */
			if (er < 0)
				return 1;	/* stopped */
		} else if (f.type == CTL_EXIT) {
			/* an agent that does not know the command answers it
			 * like any other and exits */
			ev_stop(ev, EV_OFF, "the agent does not deliver "
			    "events (exit status %u)", ctl_get_exit(&f,
			    &st) == 0 ? st : 255u);
			return 1;
		} else if (f.type != CTL_EOF) {
			ev_stop(ev, EV_IDLE, "protocol error (frame type %u "
			    "from the agent)", f.type);
			return 1;
		}
		buf_consume(h->from_agent, (size_t)rc);
		progress = 1;
	}
	if (buf_len(h->from_agent) == 0)
		buf_shrink(h->from_agent);
	if ((n = flush(h->ch, &a->ss, ev->to_agent, 0, &quota)) < 0) {
		ev_stop(ev, EV_IDLE, "writing failed");
		return 1;
	}
	progress |= n > 0;
	if (agch_ended(h)) {
		ev_stop(ev, EV_IDLE, "closed by the agent after %llu event%s",
		    (unsigned long long)ev->audited, ev->audited == 1 ? "" :
		    "s");
		return 1;
	}
	return progress;
}

int
ctlexec_events_service(struct agent *a)
{
	static const char req[] = CTL_EVENTS_OP "\0" CTL_EVENTS_CMD;
	struct ctlevents *ev = a->events;
	struct relay *r = a->relay;
	const struct agent_svc *svc;
	int64_t now;
	int rc, opened = 0;

	if (a->dead || a->state != AGENT_UP || r->stopping ||
	    !a->ss.kex_done || (ev != NULL && ev->state == EV_OFF))
		return 0;
	svc = registry_service(a, "control", 0);
	if (ev == NULL) {
		if (svc == NULL)
			return 0;
		if ((ev = ev_new(a)) == NULL) {
			log_err("agent %s: out of memory for the events "
			    "channel", a->id);
			return 0;
		}
		a->events = ev;
	}
	now = loop_now(r->loop);
	if (ev->state == EV_IDLE) {
		if (svc == NULL || now < ev->retry_at)
			return 0;
		if ((ev->agc.ch = ssh_channel_new(a->ss.s)) == NULL) {
			ev->retry_at = now + CTLEXEC_EVENTS_RETRY_MS;
			log_err("agent %s: out of memory for the events "
			    "channel", a->id);
			return 0;
		}
		ev->port = svc->port;
		ev->deadline = now + r->cfg->handshake_timeout_ms;
		ev->state = EV_OPENING;
	}
	if (ev->state == EV_OPENING) {
		/* the relay's own channel: no operator as originator */
		rc = agch_open(&ev->agc, a, "control", ev->port, "127.0.0.1", 0,
		    ev->deadline);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			ev_stop(ev, EV_IDLE, "%s", rc == RT_ERR_TIMEOUT ?
			    "the agent did not answer the open" :
			    "the agent refused the open");
			return 1;
		}
		/* to_agent is empty and holds the REQ */
		(void)ctl_append(ev->to_agent, CTL_REQ, req, sizeof(req) - 1);
		ev->state = EV_OPEN;
		opened = 1;
		log_info("agent %s: events channel open", a->id);
	}
	return ev_pump(ev) | opened;
}

void
ctlexec_events_free(struct agent *a)
{
	struct ctlevents *ev = a->events;

	if (ev == NULL)
		return;
	agch_release(&ev->agc);
	buf_free(ev->agc.from_agent);
	buf_free(ev->to_agent);
	free(ev);
	a->events = NULL;
}
