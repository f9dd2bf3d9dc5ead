/*
 * operator.c - operators' SSH sessions (operator.h): login, routing of
 * direct-tcpip opens to agents, exec commands, everything else refused.
 *
 * libssh runs in message-queue mode (no server callbacks): each request is
 * taken with ssh_message_get() after the session was polled, so a
 * direct-tcpip open can stay unanswered until the agent confirmed its side
 * (bridge.c owns the message from then on).
 *
 * Also here: the use of the per-source penalty table (operator_penalize,
 * operator_source_refused; the table itself is penalty.c) and the limit
 * on denied requests per connection (op_denied).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "audit.h"
#include "bridge.h"
#include "buf.h"
#include "ctlexec.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "operator.h"
#include "penalty.h"
#include "registry.h"
#include "sshsess.h"
#include "util.h"

static void op_io(struct loop *loop, int fd, unsigned int events, void *arg);

/* ---- per-source penalties ---- */

/* 1 if host's source is subject to penalties; fills *a. */
static int
pen_applies(const struct relay *r, const char *host, struct pen_addr *a)
{
	const struct relay_config *cfg = r->cfg;

	if (!cfg->penalties || pen_addr_from_str(host, a) != 0)
		return 0;
	return !pen_net_match(cfg->penalty_exempt, cfg->npenalty_exempt, host);
}

int
operator_source_refused(struct relay *r, const char *src, const char *host)
{
	static struct log_rl rl = LOG_RL_INIT;
	char s[PEN_ADDRSTRLEN];
	struct pen_addr a;
	enum pen_reason why;
	int64_t left;

	if (r->penalties == NULL || !pen_applies(r, host, &a) ||
	    !pen_check(r->penalties, &a, loop_now(r->loop), &left, &why))
		return 0;
	r->st.refused_penalty++;
	pen_addr_str(&a, s, sizeof(s));
	log_warn_rl(&rl, "operator %s: refused: source %s is penalized (%s) "
	    "for %lld s more", src, s, pen_reason_name(why),
	    (long long)((left + 999) / 1000));
	return 1;
}

void
operator_penalize(struct relay *r, const char *host, enum pen_reason why,
		  const char *conn)
{
	static struct log_rl rl = LOG_RL_INIT, rl_full = LOG_RL_INIT;
	const struct relay_config *cfg = r->cfg;
	char s[PEN_ADDRSTRLEN];
	struct audit_rec rec;
	struct pen_addr a;
	int64_t left;
	int rc;

	if (r->stopping || !pen_applies(r, host, &a))
		return;
	if (r->penalties == NULL && pen_table_new(&r->penalties) != 0) {
		log_err_rl(&rl, "source %s: no memory for the penalty table",
		    host);
		return;
	}
	rc = pen_add(r->penalties, &cfg->penalty, &a, why, loop_now(r->loop),
	    &left);
	pen_addr_str(&a, s, sizeof(s));
	switch (rc) {
	case PEN_STARTED:
		audit_rec_begin(&rec, "source_penalty");
		audit_rec_str(&rec, "src", s);
		audit_rec_str(&rec, "reason", pen_reason_name(why));
		audit_rec_int(&rec, "duration_ms", (long long)left);
		audit_rec_str(&rec, "conn", conn);
		relay_audit(r, &rec);
		log_warn_rl(&rl, "source %s: operator connections refused for "
		    "%lld s (%s, last from %s)", s, (long long)(left / 1000),
		    pen_reason_name(why), conn);
		break;
	case PEN_NOTED:
	case PEN_EXTENDED:
		log_debug("source %s: penalty %s, %lld ms left (%s)", s,
		    pen_reason_name(why), (long long)left, conn);
		break;
	case PEN_FULL:
		r->st.penalty_full++;
		log_warn_rl(&rl_full, "source %s: not penalized: the penalty "
		    "table is full of refused sources (penalty_max_sources "
		    "%zu)", s, cfg->penalty.max_sources);
		break;
	default:
		log_err_rl(&rl, "source %s: penalty not recorded: %s", s,
		    rt_strerror(rc));
		break;
	}
}

int
operator_start(struct relay *r, int fd, const char *src, const char *host,
	       int port, int64_t t_accept)
{
	struct opconn *op;
	char err[256];
	int rc;

	if ((op = calloc(1, sizeof(*op))) == NULL) {
		log_err("operator %s: out of memory", src);
		close(fd);
		relay_conn_closed(r, 1);
		return RT_ERR_NOMEM;
	}
	op->relay = r;
	TAILQ_INIT(&op->bridges);
	TAILQ_INIT(&op->execs);
	rt_strlcpy(op->src, src, sizeof(op->src));
	rt_strlcpy(op->host, host, sizeof(op->host));
	op->port = port;
	op->t_accept = t_accept;
	op->deadline = op->t_accept + r->cfg->handshake_timeout_ms;
	op->last_active = op->t_accept;
	rc = sshsess_start(&op->ss, r, fd, SSH_AUTH_METHOD_PUBLICKEY, op_io,
	    op, err, sizeof(err));
	if (rc != 0) {
		log_warn("operator %s: %s", src, err);
		free(op);
		relay_conn_closed(r, 1);
		return rc;
	}
	TAILQ_INSERT_TAIL(&r->operators, op, link);
	log_debug("operator %s: SSH connection", src);
	return 0;
}

void
operator_kill(struct opconn *op, const char *why)
{
	if (op->dead)
		return;
	op->dead = 1;
	rt_strlcpy(op->why, why, sizeof(op->why));
	relay_kick(op->relay);
}

/* "SHA256:..." of key into buf; "unknown" if libssh cannot hash it. */
static void
key_fingerprint(ssh_key key, char *buf, size_t len)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp;

	rt_strlcpy(buf, "unknown", len);
	if (key == NULL ||
	    ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
	    &hlen) != 0)
		return;
	if ((fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash,
	    hlen)) != NULL) {
		rt_strlcpy(buf, fp, len);
		ssh_string_free_char(fp);
	}
	ssh_clean_pubkey_hash(&hash);
}

static void
audit_auth(struct opconn *op, const char *event, const char *user,
	   const char *fp, const char *method, const char *reason)
{
	struct audit_rec rec;

	audit_rec_begin(&rec, event);
	audit_rec_str(&rec, "operator", user);
	audit_rec_str(&rec, "key_fp", fp);
	audit_rec_str(&rec, "src", op->src);
	audit_rec_str(&rec, "method", method);
	if (reason != NULL)
		audit_rec_str(&rec, "reason", reason);
	relay_audit(op->relay, &rec);
}

static void
auth_failed(struct opconn *op, const char *user, const char *fp,
	    const char *method, const char *reason)
{
	struct relay *r = op->relay;

	op->tries++;
	r->st.op_auth_fail++;
	audit_auth(op, "auth_fail", user, fp, method, reason);
	log_info("operator %s: auth failed for \"%s\" (%s, key %s): %s "
	    "(%u of %u)", op->src, user, method, fp, reason, op->tries,
	    r->cfg->auth_max_tries);
	if (op->tries >= r->cfg->auth_max_tries)
		operator_kill(op, "too many authentication failures");
}

/*
 * libssh 0.10 exposes the offered key and its signature state in queue
 * mode only through these two deprecated accessors; the server-callback
 * replacement would force every other request into callbacks that cannot
 * defer their answer.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static ssh_key
msg_pubkey(ssh_message msg, int *state)
{
	*state = ssh_message_auth_publickey_state(msg);
	return ssh_message_auth_pubkey(msg);
}
#pragma GCC diagnostic pop

static void
op_auth(struct opconn *op, ssh_message msg)
{
	struct relay *r = op->relay;
	const struct relay_operator *ro;
	const char *user;
	ssh_key key;
	char fp[96];
	size_t i;
	int state, match = 0;

	if (op->authed || op->dead) {
		ssh_message_reply_default(msg);
		return;
	}
	user = ssh_message_auth_user(msg);
	if (user == NULL)
		user = "";
	rt_strlcpy(op->user, user, sizeof(op->user));
	if (ssh_message_subtype(msg) == SSH_AUTH_METHOD_NONE) {
		/* clients ask which methods exist: not an attempt */
		ssh_message_auth_set_methods(msg, SSH_AUTH_METHOD_PUBLICKEY);
		ssh_message_reply_default(msg);
		return;
	}
	if (ssh_message_subtype(msg) != SSH_AUTH_METHOD_PUBLICKEY) {
		ssh_message_auth_set_methods(msg, SSH_AUTH_METHOD_PUBLICKEY);
		ssh_message_reply_default(msg);
		auth_failed(op, user, "none", "other", "method not allowed");
		return;
	}
	key = msg_pubkey(msg, &state);
	key_fingerprint(key, fp, sizeof(fp));
	if ((ro = relay_config_operator(r->cfg, user)) != NULL && key != NULL) {
		for (i = 0; i < ro->nkeys && !match; i++)
			match = ssh_key_cmp(ro->keys[i], key,
			    SSH_KEY_CMP_PUBLIC) == 0;
	}
	if (!match) {
		ssh_message_auth_set_methods(msg, SSH_AUTH_METHOD_PUBLICKEY);
		ssh_message_reply_default(msg);
		auth_failed(op, user, fp, "publickey", ro == NULL ?
		    "unknown operator" : "key not authorized");
		return;
	}
	if (state == SSH_PUBLICKEY_STATE_NONE) {
		/* a query: "would this key do?" - yes, now sign with it */
		ssh_message_auth_reply_pk_ok_simple(msg);
		return;
	}
	if (state != SSH_PUBLICKEY_STATE_VALID) {
		ssh_message_auth_set_methods(msg, SSH_AUTH_METHOD_PUBLICKEY);
		ssh_message_reply_default(msg);
		auth_failed(op, user, fp, "publickey", "bad signature");
		return;
	}
	if (ssh_message_auth_reply_success(msg, 0) != SSH_OK) {
		operator_kill(op, "cannot send auth success");
		return;
	}
	op->authed = 1;
	rt_strlcpy(op->name, ro->name, sizeof(op->name));
	rt_strlcpy(op->key_fp, fp, sizeof(op->key_fp));
	op->last_active = loop_now(r->loop);
	r->st.op_auth_ok++;
	relay_conn_authed(r);
	audit_auth(op, "auth_ok", op->name, fp, "publickey", NULL);
	log_info("operator %s: logged in from %s with key %s", op->name,
	    op->src, fp);
}

/* Splits a direct-tcpip target into agent id and service; see DESIGN.md
 * "An operator addresses a service". */
static void
resolve_target(struct relay *r, const char *dest, int dport,
	       char *agent_id, size_t alen, char *service, size_t slen,
	       struct agent **ag_out, const struct agent_svc **svc_out)
{
	const char *suffix = r->cfg->domain_suffix;
	const struct agent_svc *svc = NULL;
	struct agent *ag;
	char host[256];
	size_t hl, sl;
	char *dot;

	*ag_out = NULL;
	*svc_out = NULL;
	agent_id[0] = service[0] = '\0';
	if (rt_strlcpy(host, dest, sizeof(host)) >= sizeof(host))
		return;
	hl = strlen(host);
	if (suffix != NULL && (sl = strlen(suffix)) > 0 && hl > sl &&
	    strcmp(host + hl - sl, suffix) == 0)
		host[hl - sl] = '\0';

	/* "<agent>:<port>": the agent's service registered with that port */
	if (rt_valid_id(host)) {
		rt_strlcpy(agent_id, host, alen);
		if ((ag = registry_find(r, host)) != NULL) {
			if ((svc = registry_service(ag, NULL, dport)) != NULL)
				rt_strlcpy(service, svc->name, slen);
			*ag_out = ag;
			*svc_out = svc;
			return;
		}
	}
	/* "<service>.<agent>:<any>" */
	if ((dot = strchr(host, '.')) != NULL) {
		*dot = '\0';
		if (!rt_valid_id(host) || !rt_valid_id(dot + 1))
			return;
		rt_strlcpy(service, host, slen);
		rt_strlcpy(agent_id, dot + 1, alen);
		if ((ag = registry_find(r, agent_id)) == NULL)
			return;
		*ag_out = ag;
		*svc_out = registry_service(ag, service, 0);
	}
}

static void
op_deny(struct opconn *op, ssh_message msg, const char *agent_id,
	const char *service, const char *dest, int dport, const char *rule,
	const char *reason)
{
	struct relay *r = op->relay;
	struct audit_rec rec;

	audit_rec_begin(&rec, "channel_deny");
	audit_rec_str(&rec, "operator", op->name);
	audit_rec_str(&rec, "agent", agent_id[0] != '\0' ? agent_id : NULL);
	audit_rec_str(&rec, "service", service[0] != '\0' ? service : NULL);
	audit_rec_str(&rec, "target", dest);
	audit_rec_int(&rec, "port", dport);
	audit_rec_str(&rec, "src", op->src);
	audit_rec_str(&rec, "rule", rule);
	audit_rec_str(&rec, "reason", reason);
	relay_audit(r, &rec);
	r->st.chan_deny++;
	log_info("operator %s: open %s:%d denied: %s (%s)", op->name, dest,
	    dport, reason, rule);
	/* the same answer whatever the reason (DESIGN.md, ACL) */
	ssh_message_reply_default(msg);
}

/*
 * Counts one request denied as unknown, offline or forbidden (what
 * guessing agent ids produces; refusals for load, such as channel
 * limits, do not count). A budget of operator_max_denials per
 * operator_denial_window that refills continuously: deny_until moves
 * window / max ahead per denial, so a burst of max passes and one more
 * within the window does not. Then the connection goes and its source is
 * penalized (PEN_GUESSING).
 */
static void
op_denied(struct opconn *op)
{
	struct relay *r = op->relay;
	const struct relay_config *cfg = r->cfg;
	int64_t now = loop_now(r->loop), cost;
	struct audit_rec rec;

	op->ndenied++;
	if (cfg->operator_max_denials == 0 || op->dead)
		return;
	cost = RT_MAX(cfg->operator_denial_window_ms /
	    (int64_t)cfg->operator_max_denials, 1);
	op->deny_until = RT_MAX(op->deny_until, now) + cost;
	if (op->deny_until - now <= cfg->operator_denial_window_ms)
		return;
	audit_rec_begin(&rec, "deny_limit");
	audit_rec_str(&rec, "operator", op->name);
	audit_rec_str(&rec, "src", op->src);
	audit_rec_int(&rec, "denied", op->ndenied);
	audit_rec_int(&rec, "max", cfg->operator_max_denials);
	audit_rec_int(&rec, "window_ms",
	    (long long)cfg->operator_denial_window_ms);
	relay_audit(r, &rec);
	log_warn("operator %s: %s: more than %u requests denied within %lld "
	    "s (%u so far): closing the connection", op->name, op->src,
	    cfg->operator_max_denials,
	    (long long)(cfg->operator_denial_window_ms / 1000), op->ndenied);
	operator_kill(op, "too many denied requests");
	operator_penalize(r, op->host, PEN_GUESSING, op->src);
}

/*
 * 1 if agent command cmd will be refused as unknown agent, offline agent
 * or missing right: the check ctlexec_start() makes, made beforehand so
 * that op_denied() counts it (a usage error is not a guess).
 */
static int
exec_guess(struct opconn *op, const char *cmd)
{
	struct ctl_cmd p;
	const char *why;

	if (ctlexec_parse(cmd, &p) != 0)
		return 0;
	return ctlexec_target(op->relay, op->name, &p, NULL, &why) == NULL;
}

/* Returns 1 if msg was handed to a bridge (not to be freed here). */
static int
op_direct_tcpip(struct opconn *op, ssh_message msg)
{
	struct relay *r = op->relay;
	const struct relay_config *cfg = r->cfg;
	const char *dest = ssh_message_channel_request_open_destination(msg);
	int dport = ssh_message_channel_request_open_destination_port(msg);
	char agent_id[RELAY_ID_MAX + 1], service[RELAY_ID_MAX + 1];
	const struct agent_svc *svc;
	const char *rule = "default deny";
	struct agent *ag;
	int allowed = 0;

	if (dest == NULL)
		dest = "";
	resolve_target(r, dest, dport, agent_id, sizeof(agent_id), service,
	    sizeof(service), &ag, &svc);
	/*
	 * The agent's built-in services are reached only through the exec
	 * commands, which check the read/write/logs/shell rights, audit the
	 * command and name the operator to the agent. A raw channel would
	 * bypass all three, whatever a service grant (or glob) says.
	 */
	if (strcmp(service, "control") == 0 || strcmp(service, "shell") == 0) {
		op_deny(op, msg, agent_id, service, dest, dport,
		    "built-in service", "built-in service: use the exec "
		    "commands");
		op_denied(op);
		return 0;
	}
	if (agent_id[0] != '\0' && service[0] != '\0')
		allowed = acl_check(cfg->acl, op->name, ACL_SERVICE, agent_id,
		    service, &rule);
	if (!allowed) {
		op_deny(op, msg, agent_id, service, dest, dport, rule,
		    agent_id[0] == '\0' ? "bad target" :
		    service[0] == '\0' ? "no such agent or service" :
		    "forbidden");
		op_denied(op);
		return 0;
	}
	if (r->stopping) {
		op_deny(op, msg, agent_id, service, dest, dport, rule,
		    "relay stopping");
		return 0;
	}
	if (ag == NULL || ag->state != AGENT_UP || ag->dead) {
		op_deny(op, msg, agent_id, service, dest, dport, rule,
		    "agent offline");
		op_denied(op);
		return 0;
	}
	if (svc == NULL) {
		op_deny(op, msg, agent_id, service, dest, dport, rule,
		    "no such service");
		op_denied(op);
		return 0;
	}
	if (ag->nbridges + ctlexec_channels_on(r, ag) >=
	    cfg->agent_max_channels) {
		op_deny(op, msg, agent_id, service, dest, dport, rule,
		    "agent channel limit");
		return 0;
	}
	if (op->nchannels >= cfg->operator_max_channels) {
		op_deny(op, msg, agent_id, service, dest, dport, rule,
		    "operator channel limit");
		return 0;
	}
	bridge_open(op, ag, svc, msg, rule);
	return 1;
}

static int
exec_data_cb(ssh_session s, ssh_channel ch, void *data, uint32_t len,
	     int is_stderr, void *ud)
{
	struct opexec *x = ud;

	/*
	 * Input can arrive in the same read as the exec request, before it
	 * was dispatched: leave it with libssh until the command is known
	 * (a control command pulls it then, see ctlexec.c).
	 */
	if (!x->ran)
		return 0;
	if (ctlexec_active(x) && !is_stderr)
		return ctlexec_op_data(x, data, len);
	return (int)len;	/* relay commands read no input */
}

static void
exec_eof_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct opexec *x = ud;

	if (ctlexec_active(x))
		ctlexec_op_eof(x);
}

static void
exec_close_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct opexec *x = ud;

	x->remote_closed = 1;
	relay_kick(x->op->relay);
}

static void
op_session_open(struct opconn *op, ssh_message msg)
{
	struct opexec *x;

	if (op->nchannels >= op->relay->cfg->operator_max_channels ||
	    (x = calloc(1, sizeof(*x))) == NULL) {
		ssh_message_reply_default(msg);
		return;
	}
	x->op = op;
	if ((x->out = buf_new(EXEC_OUT_MAX)) == NULL ||
	    (x->ch = ssh_message_channel_request_open_reply_accept(msg)) ==
	    NULL) {
		buf_free(x->out);
		free(x);
		return;
	}
	x->cb.userdata = x;
	x->cb.channel_data_function = exec_data_cb;
	x->cb.channel_eof_function = exec_eof_cb;
	x->cb.channel_close_function = exec_close_cb;
	ssh_callbacks_init(&x->cb);
	ssh_set_channel_callbacks(x->ch, &x->cb);
	TAILQ_INSERT_TAIL(&op->execs, x, link);
	op->nchannels++;
}

static struct opexec *
find_exec(struct opconn *op, ssh_channel ch)
{
	struct opexec *x;

	TAILQ_FOREACH(x, &op->execs, link) {
		if (x->ch == ch && !x->dead)
			return x;
	}
	return NULL;
}

static void
outf(struct opexec *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
outf(struct opexec *x, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	(void)buf_append_some(x->out, line, (size_t)n);
}

static void
cmd_agents(struct opexec *x)
{
	struct relay *r = x->op->relay;
	struct agent *a;
	char since[40], svcs[512];
	size_t i, off;

	outf(x, "%-20s %-24s %-22s %-30s %s\n", "AGENT", "CONNECTED SINCE",
	    "SOURCE", "SERVICES", "VERSION");
	TAILQ_FOREACH(a, &r->registry, reg_link) {
		if (a->dead || !acl_any(r->cfg->acl, x->op->name, a->id))
			continue;
		rt_time_iso(a->since_wall, since, sizeof(since));
		svcs[0] = '\0';
		for (i = 0, off = 0; i < a->nsvc && off < sizeof(svcs); i++)
			off += (size_t)snprintf(svcs + off, sizeof(svcs) - off,
			    "%s%s:%d", i ? "," : "", a->svc[i].name,
			    a->svc[i].port);
		outf(x, "%-20s %-24s %-22s %-30s %s\n", a->id, since, a->src,
		    svcs[0] ? svcs : "-", a->version);
	}
}

static void
op_exec(struct opconn *op, struct opexec *x, ssh_message msg)
{
	struct audit_rec rec;
	const char *cmd = ssh_message_channel_request_command(msg);
	char word[64];
	size_t n;

	if (cmd == NULL)
		cmd = "";
	while (*cmd == ' ' || *cmd == '\t')
		cmd++;
	n = strcspn(cmd, " \t\r\n");
	if (n >= sizeof(word))
		n = sizeof(word) - 1;
	memcpy(word, cmd, n);
	word[n] = '\0';
	ssh_message_channel_request_reply_success(msg);
	if (ctlexec_is_command(word)) {
		int guess = exec_guess(op, cmd);

		/* audited, answered and finished by ctlexec.c */
		ctlexec_start(x, cmd);
		if (guess)
			op_denied(op);
		return;
	}
	x->ran = 1;
	if (strcmp(word, "agents") == 0) {
		cmd_agents(x);
		x->exit_status = 0;
	} else if (strcmp(word, "help") == 0 || word[0] == '\0') {
		outf(x, "revtun relay commands (right needed on the agent):\n"
		    "  agents                        connected agents you may "
		    "reach\n"
		    "  status AGENT                  agent status (read)\n"
		    "  config AGENT show             its configuration, "
		    "secrets redacted (read)\n"
		    "  config AGENT set KEY VALUE    change one setting "
		    "(write)\n"
		    "  config AGENT apply < FILE     replace the whole file "
		    "(write)\n"
		    "  reload AGENT                  make it reload its "
		    "configuration (write)\n"
		    "  logs AGENT [-f]               recent log lines, -f "
		    "follows (logs)\n"
		    "  shell AGENT                   a shell on it, with "
		    "ssh -t (shell)\n"
		    "  help                          this text\n");
		outf(x, "Reach a service: ssh -W SERVICE.AGENT:PORT or "
		    "ssh -L LPORT:SERVICE.AGENT:PORT %s@relay\n", op->name);
		x->exit_status = 0;
	} else {
		outf(x, "unknown command \"%s\"; try \"help\"\n", word);
		x->exit_status = 1;
	}
	audit_rec_begin(&rec, x->exit_status == 0 ? "exec" : "exec_deny");
	audit_rec_str(&rec, "operator", op->name);
	audit_rec_str(&rec, "command", word);
	audit_rec_str(&rec, "src", op->src);
	relay_audit(op->relay, &rec);
	log_info("operator %s: exec \"%s\" (exit %d)", op->name, word,
	    x->exit_status);
}

/* libssh 0.10 offers the pty-req / window-change values only through
 * these deprecated accessors in message mode (see msg_pubkey). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void
op_pty(struct opconn *op, struct opexec *x, ssh_message msg)
{
	const char *term = ssh_message_channel_request_pty_term(msg);
	int cols = ssh_message_channel_request_pty_width(msg);
	int rows = ssh_message_channel_request_pty_height(msg);

	if (ctlexec_pty(x, term, cols, rows) != 0) {
		log_info("operator %s: pty-req refused (bad values)", op->name);
		ssh_message_reply_default(msg);
		return;
	}
	ssh_message_channel_request_reply_success(msg);
}

static void
op_winch(struct opexec *x, ssh_message msg)
{
	if (ctlexec_winch(x, ssh_message_channel_request_pty_width(msg),
	    ssh_message_channel_request_pty_height(msg)) != 0) {
		ssh_message_reply_default(msg);
		return;
	}
	ssh_message_channel_request_reply_success(msg);
}
#pragma GCC diagnostic pop

static void
op_channel_request(struct opconn *op, ssh_message msg)
{
	struct opexec *x;
	int sub = ssh_message_subtype(msg);

	x = find_exec(op, ssh_message_channel_request_channel(msg));
	if (x != NULL && sub == SSH_CHANNEL_REQUEST_EXEC && !x->ran) {
		op_exec(op, x, msg);
		return;
	}
	/* a PTY only for a later `shell AGENT`: forwarded, not allocated */
	if (x != NULL && sub == SSH_CHANNEL_REQUEST_PTY && !x->ran) {
		op_pty(op, x, msg);
		return;
	}
	if (x != NULL && sub == SSH_CHANNEL_REQUEST_WINDOW_CHANGE) {
		op_winch(x, msg);
		return;
	}
	/* shell, pty-req after exec, env, subsystem, x11...: refused */
	if (sub == SSH_CHANNEL_REQUEST_SHELL || sub == SSH_CHANNEL_REQUEST_PTY ||
	    sub == SSH_CHANNEL_REQUEST_SUBSYSTEM ||
	    sub == SSH_CHANNEL_REQUEST_X11)
		log_info("operator %s: channel request %d refused (jump-only "
		    "relay)", op->name, sub);
	ssh_message_reply_default(msg);
}

/* Returns 1 if msg changed owner. */
static int
op_message(struct opconn *op, ssh_message msg)
{
	int type = ssh_message_type(msg), sub = ssh_message_subtype(msg);

	switch (type) {
	case SSH_REQUEST_AUTH:
		op_auth(op, msg);
		return 0;
	case SSH_REQUEST_SERVICE:
		ssh_message_reply_default(msg);
		return 0;
	default:
		break;
	}
	if (!op->authed) {
		ssh_message_reply_default(msg);
		return 0;
	}
	op->last_active = loop_now(op->relay->loop);
	switch (type) {
	case SSH_REQUEST_CHANNEL_OPEN:
		if (sub == SSH_CHANNEL_DIRECT_TCPIP)
			return op_direct_tcpip(op, msg);
		if (sub == SSH_CHANNEL_SESSION) {
			op_session_open(op, msg);
			return 0;
		}
		log_info("operator %s: channel type %d refused", op->name, sub);
		break;
	case SSH_REQUEST_CHANNEL:
		op_channel_request(op, msg);
		return 0;
	case SSH_REQUEST_GLOBAL:
		if (sub == SSH_GLOBAL_REQUEST_TCPIP_FORWARD)
			log_info("operator %s: remote forwarding (-R) refused",
			    op->name);
		break;
	default:
		break;
	}
	ssh_message_reply_default(msg);
	return 0;
}

void
operator_drain(struct opconn *op)
{
	ssh_message msg;

	op->touched = 0;
	if (op->dead || op->ss.s == NULL || !op->ss.kex_done)
		return;
	while (!op->dead && (msg = ssh_message_get(op->ss.s)) != NULL) {
		if (!op_message(op, msg))
			ssh_message_free(msg);
	}
	if (!op->dead && sshsess_closed(&op->ss)) {
		char why[200];

		/* libssh's reason (a MAC error read inside a channel call,
		 * say), or "connection closed by peer" */
		(void)sshsess_status(&op->ss, why, sizeof(why));
		operator_kill(op, why);
	}
}

static void
op_io(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct opconn *op = arg;
	char err[256];
	int rc;

	if (op->dead)
		return;
	rc = sshsess_poll(&op->ss, err, sizeof(err));
	if (rc == RT_ERR_AGAIN) {
		sshsess_sync(&op->ss);
		return;
	}
	if (rc != 0) {
		operator_kill(op, err);
		return;
	}
	operator_drain(op);
	sshsess_sync(&op->ss);
	relay_kick(op->relay);
}

int
operator_exec_service(struct opexec *x)
{
	size_t len;
	int n, moved = 0;

	if (x->dead)
		return 0;
	if (x->remote_closed) {
		x->dead = 1;
		return 1;
	}
	if (ctlexec_active(x))
		return ctlexec_service(x);
	if (!x->ran || x->finished)
		return 0;
	x->op->touched = 1;
	while ((len = buf_len(x->out)) > 0 && !sshsess_busy(&x->op->ss)) {
		n = ssh_channel_write(x->ch, buf_data(x->out),
		    (uint32_t)RT_MIN(len, 32768));
		if (n == SSH_ERROR) {
			x->dead = 1;
			return 1;
		}
		if (n <= 0)
			break;
		buf_consume(x->out, (size_t)n);
		moved = 1;
	}
	if (buf_len(x->out) == 0) {
		ssh_channel_request_send_exit_status(x->ch, x->exit_status);
		ssh_channel_send_eof(x->ch);
		ssh_channel_close(x->ch);
		x->finished = 1;
		x->dead = 1;
		moved = 1;
	}
	return moved;
}

void
operator_tick(struct opconn *op, int64_t now)
{
	const struct relay_config *cfg = op->relay->cfg;

	if (op->dead)
		return;
	if (!op->ss.kex_done && now >= op->deadline) {
		operator_kill(op, "key exchange timed out");
		return;
	}
	if (!op->authed && now >= op->t_accept + cfg->auth_timeout_ms) {
		audit_auth(op, "auth_fail", op->user, NULL, "none",
		    "login grace time exceeded");
		op->relay->st.op_auth_fail++;
		operator_kill(op, "login grace time exceeded");
		return;
	}
	if (op->authed && cfg->operator_idle_timeout_ms > 0 &&
	    TAILQ_EMPTY(&op->bridges) && TAILQ_EMPTY(&op->execs) &&
	    now - op->last_active >= cfg->operator_idle_timeout_ms)
		operator_kill(op, "idle timeout");
}

static void
exec_free(struct opconn *op, struct opexec *x, int session_alive)
{
	TAILQ_REMOVE(&op->execs, x, link);
	op->nchannels--;
	/* operator_idle_timeout counts from the last channel's end */
	op->last_active = loop_now(op->relay->loop);
	ctlexec_free(x);
	if (session_alive && x->ch != NULL) {
		ssh_remove_channel_callbacks(x->ch, &x->cb);
		if (!x->finished && ssh_channel_is_open(x->ch))
			ssh_channel_close(x->ch);
		ssh_channel_free(x->ch);
	}
	buf_free(x->out);
	free(x);
}

void
operator_reap_execs(struct opconn *op)
{
	struct opexec *x, *next;

	for (x = TAILQ_FIRST(&op->execs); x != NULL; x = next) {
		next = TAILQ_NEXT(x, link);
		/* runs before any agent is freed: let go of dying ones */
		ctlexec_reap_check(x);
		if (x->dead)
			exec_free(op, x, 1);
	}
}

void
operator_free(struct opconn *op)
{
	struct relay *r = op->relay;
	struct bridge *b;
	struct opexec *x;
	int64_t dur = loop_now(r->loop) - op->t_accept;

	while ((b = TAILQ_FIRST(&op->bridges)) != NULL)
		bridge_detach_op(b);
	while ((x = TAILQ_FIRST(&op->execs)) != NULL)
		exec_free(op, x, 0);
	if (op->authed)
		log_info("operator %s: %s disconnected after %lld s: %s",
		    op->name, op->src, (long long)(dur / 1000), op->why);
	else {
		log_info("operator %s: connection closed before login: %s",
		    op->src, op->why);
		/* a failed try (publickey, other methods, grace time with
		 * tries) is authfail; no try at all (key exchange failed or
		 * never done, client gone after the banner) is noauth */
		operator_penalize(r, op->host, op->tries > 0 ? PEN_AUTHFAIL :
		    PEN_NOAUTH, op->src);
	}
	sshsess_free(&op->ss, 1);
	TAILQ_REMOVE(&r->operators, op, link);
	relay_conn_closed(r, !op->authed);
	free(op);
}
