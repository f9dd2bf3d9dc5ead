/*
 * bridge.c - operator channel <-> agent channel (bridge.h).
 *
 * Direction names: "up" is operator -> agent (to_agent), "down" is
 * agent -> operator (to_op). Callbacks from libssh only append to a carry
 * buffer or set a flag; everything else happens in bridge_service(), called
 * from the relay's pump pass, and bridge_free(), called by the reaper.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agent_conn.h"
#include "audit.h"
#include "bridge.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "operator.h"
#include "sshsess.h"
#include "util.h"

/* Largest single ssh_channel_write / read: one SSH packet's payload. */
#define BRIDGE_CHUNK 32768

/* One direction's view of a bridge, so both run through the same code. */
struct bdir {
	ssh_channel src, dst;
	struct sshsess *src_ss, *dst_ss;
	const char *from, *to;		/* "operator", "agent" */
	struct buf *carry;
	int *src_eof, *src_closed, *dst_closed, *dst_eof_out;
	int *backlog;
	uint64_t *bytes;
};

static void
bdir_up(struct bridge *b, struct bdir *d)
{
	d->src = b->op_ch;
	d->dst = b->ag_ch;
	d->src_ss = b->op != NULL ? &b->op->ss : NULL;
	d->dst_ss = b->ag != NULL ? &b->ag->ss : NULL;
	d->from = "operator";
	d->to = "agent";
	d->carry = b->to_agent;
	d->src_eof = &b->op_eof_in;
	d->src_closed = &b->op_closed;
	d->dst_closed = &b->ag_closed;
	d->dst_eof_out = &b->ag_eof_out;
	d->backlog = &b->op_backlog;
	d->bytes = &b->bytes_to_agent;
}

static void
bdir_down(struct bridge *b, struct bdir *d)
{
	d->src = b->ag_ch;
	d->dst = b->op_ch;
	d->src_ss = b->ag != NULL ? &b->ag->ss : NULL;
	d->dst_ss = b->op != NULL ? &b->op->ss : NULL;
	d->from = "agent";
	d->to = "operator";
	d->carry = b->to_op;
	d->src_eof = &b->ag_eof_in;
	d->src_closed = &b->ag_closed;
	d->dst_closed = &b->op_closed;
	d->dst_eof_out = &b->op_eof_out;
	d->backlog = &b->ag_backlog;
	d->bytes = &b->bytes_from_agent;
}

/*
 * A peer that sends past the window we granted (FAULTS.md S4): libssh
 * 0.10 does not enforce the window, it buffers such data all the same,
 * without bound. The data callback is handed all it holds for the
 * channel, which a peer keeping to the window cannot make larger than
 * BRIDGE_PULL_ROOM (relay.h: more than 1.5 windows). Past that the
 * sender's whole connection goes: closing only the channel would not
 * stop it, libssh keeps buffering for a channel until the peer's close.
 */
static int
window_overrun(struct bridge *b, struct buf *carry, uint32_t len)
{
	if (len <= BRIDGE_PULL_ROOM)
		return 0;
	if (carry == b->to_agent) {
		log_warn("operator %s chan %llu: sent past the receive "
		    "window (%u bytes held): protocol error, closing the "
		    "connection",
		    b->opname, (unsigned long long)b->id, len);
		if (b->op != NULL)
			operator_kill(b->op, "sent past the channel window");
	} else {
		log_warn("agent %s chan %llu: sent past the receive "
		    "window (%u bytes held): protocol error, closing the "
		    "connection",
		    b->agent_id, (unsigned long long)b->id, len);
		if (b->ag != NULL)
			agent_kill(b->ag, "sent past the channel window");
	}
	bridge_kill(b, "peer sent past the channel window");
	return 1;
}

/* libssh callbacks: append what fits, flag the rest; never free. */

static int
take_data(struct bridge *b, struct buf *carry, int *backlog, void *data,
	  uint32_t len, int is_stderr)
{
	size_t room;
	ssize_t n;

	if (is_stderr)
		return (int)len;	/* not used by tcpip channels: drop */
	if (b->state == BRIDGE_DEAD || window_overrun(b, carry, len))
		return (int)len;
	if (len > 0)
		b->t_io = loop_now(b->relay->loop);
	/* callbacks fill only the soft part; dir_pull() owns the rest */
	room = buf_len(carry) < b->soft ? b->soft - buf_len(carry) : 0;
	n = buf_append_some(carry, data, RT_MIN((size_t)len, room));
	if (n < 0)
		n = 0;
	*backlog = (size_t)n < len;
	relay_kick(b->relay);
	return (int)n;
}

static int
op_data_cb(ssh_session s, ssh_channel ch, void *data, uint32_t len,
	   int is_stderr, void *ud)
{
	struct bridge *b = ud;

	return take_data(b, b->to_agent, &b->op_backlog, data, len, is_stderr);
}

static int
ag_data_cb(ssh_session s, ssh_channel ch, void *data, uint32_t len,
	   int is_stderr, void *ud)
{
	struct bridge *b = ud;

	return take_data(b, b->to_op, &b->ag_backlog, data, len, is_stderr);
}

static void
op_eof_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct bridge *b = ud;

	b->op_eof_in = 1;
	relay_kick(b->relay);
}

static void
ag_eof_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct bridge *b = ud;

	b->ag_eof_in = 1;
	relay_kick(b->relay);
}

static void
op_close_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct bridge *b = ud;

	b->op_closed = 1;
	relay_kick(b->relay);
}

static void
ag_close_cb(ssh_session s, ssh_channel ch, void *ud)
{
	struct bridge *b = ud;

	b->ag_closed = 1;
	relay_kick(b->relay);
}

static void
deny_audit(struct bridge *b, const char *reason)
{
	struct audit_rec rec;

	audit_rec_begin(&rec, "channel_deny");
	audit_rec_str(&rec, "operator", b->opname);
	audit_rec_str(&rec, "agent", b->agent_id);
	audit_rec_str(&rec, "service", b->service);
	audit_rec_str(&rec, "src", b->op != NULL ? b->op->src : NULL);
	audit_rec_str(&rec, "rule", b->rule);
	audit_rec_str(&rec, "reason", reason);
	audit_rec_int(&rec, "id", (long long)b->id);
	relay_audit(b->relay, &rec);
	b->relay->st.chan_deny++;
}

int
bridge_open(struct opconn *op, struct agent *ag, const struct agent_svc *svc,
	    ssh_message msg, const char *rule)
{
	struct relay *r = op->relay;
	struct bridge *b;
	size_t lim = (size_t)r->cfg->channel_buffer + BRIDGE_PULL_ROOM;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		goto nomem;
	b->relay = r;
	b->id = ++r->next_bridge_id;
	b->op = op;
	b->ag = ag;
	b->open_msg = msg;
	b->state = BRIDGE_OPENING;
	b->t_open = loop_now(r->loop);
	b->deadline = b->t_open + r->cfg->handshake_timeout_ms;
	rt_strlcpy(b->opname, op->name, sizeof(b->opname));
	rt_strlcpy(b->agent_id, ag->id, sizeof(b->agent_id));
	rt_strlcpy(b->service, svc->name, sizeof(b->service));
	rt_strlcpy(b->rule, rule, sizeof(b->rule));
	b->port = svc->port;
	b->soft = (size_t)r->cfg->channel_buffer;
	if ((b->to_agent = buf_new(lim)) == NULL ||
	    (b->to_op = buf_new(lim)) == NULL ||
	    (b->ag_ch = ssh_channel_new(ag->ss.s)) == NULL) {
		buf_free(b->to_agent);
		buf_free(b->to_op);
		free(b);
		goto nomem;
	}
	TAILQ_INSERT_TAIL(&r->bridges, b, link);
	TAILQ_INSERT_TAIL(&op->bridges, b, op_link);
	TAILQ_INSERT_TAIL(&ag->bridges, b, ag_link);
	op->nchannels++;
	ag->nbridges++;
	log_debug("operator %s chan %llu: opening %s:%s for %s",
	    b->opname, (unsigned long long)b->id, b->agent_id, b->service,
	    op->src);
	relay_kick(r);
	return 0;
nomem:
	log_err("operator %s: out of memory opening a channel", op->name);
	ssh_message_reply_default(msg);
	ssh_message_free(msg);
	return RT_ERR_NOMEM;
}

void
bridge_kill(struct bridge *b, const char *why)
{
	if (b->state == BRIDGE_DEAD)
		return;
	/* an open in flight stays until the agent answers (see bridge_tick),
	 * so the agent's channel is never left open behind our back */
	if (b->state == BRIDGE_OPENING && b->ag != NULL) {
		if (b->why[0] == '\0')
			rt_strlcpy(b->why, why, sizeof(b->why));
		b->abandoned = 1;
		relay_kick(b->relay);
		return;
	}
	if (b->why[0] == '\0')
		rt_strlcpy(b->why, why, sizeof(b->why));
	b->state = BRIDGE_DEAD;
	relay_kick(b->relay);
}

void
bridge_detach_op(struct bridge *b)
{
	if (b->open_msg != NULL) {
		/* the session that owns the message is going: drop it */
		ssh_message_free(b->open_msg);
		b->open_msg = NULL;
	}
	b->op_ch = NULL;
	if (b->op != NULL) {
		TAILQ_REMOVE(&b->op->bridges, b, op_link);
		b->op->nchannels--;
		b->op = NULL;
	}
	bridge_kill(b, "operator disconnected");
}

void
bridge_detach_agent(struct bridge *b)
{
	b->ag_ch = NULL;
	if (b->ag != NULL) {
		TAILQ_REMOVE(&b->ag->bridges, b, ag_link);
		b->ag->nbridges--;
		b->ag = NULL;
	}
	b->state = BRIDGE_DEAD;
	if (b->why[0] == '\0')
		rt_strlcpy(b->why, "agent disconnected", sizeof(b->why));
	relay_kick(b->relay);
}

/* How much longer than the open deadline a late answer is waited for. */
#define BRIDGE_LATE_FACTOR 4

void
bridge_tick(struct bridge *b, int64_t now)
{
	int64_t hs = b->relay->cfg->handshake_timeout_ms;
	int64_t idle = b->relay->cfg->operator_channel_idle_timeout_ms;

	/* like OpenSSH's ChannelTimeout: no byte either way for that long */
	if (b->state == BRIDGE_OPEN && idle > 0 && now - b->t_io >= idle) {
		log_info("operator %s chan %llu: %s:%s idle for %lld s: "
		    "closing it", b->opname, (unsigned long long)b->id,
		    b->agent_id, b->service, (long long)((now - b->t_io) /
		    1000));
		bridge_kill(b, "idle");
		return;
	}
	if (b->state != BRIDGE_OPENING || now < b->deadline)
		return;
	if (!b->late) {
		/*
		 * The operator gets its refusal now, but the open stays in
		 * flight: freeing the channel here would leave it open on
		 * both ends when the agent's confirmation comes after all
		 * (libssh accepts it for a channel freed while opening, and
		 * nobody ever closes it; the agent's target connection and
		 * channel slot stay taken for the life of the session).
		 * bridge_advance_open closes it when the answer comes.
		 */
		log_warn("agent %s chan %llu: no answer to the %s open within "
		    "%lld ms", b->agent_id, (unsigned long long)b->id,
		    b->service, (long long)hs);
		rt_strlcpy(b->why, "agent did not answer the open",
		    sizeof(b->why));
		if (b->open_msg != NULL) {
			if (b->op != NULL) {
				deny_audit(b, b->why);
				ssh_message_reply_default(b->open_msg);
			}
			ssh_message_free(b->open_msg);
			b->open_msg = NULL;
		}
		b->late = 1;
		b->abandoned = 1;
		b->deadline = now + BRIDGE_LATE_FACTOR * hs;
		relay_kick(b->relay);
		return;
	}
	/* Still nothing: the agent's session is the only safe owner of
	 * that channel now (it is freed with the session); give up on it. */
	if (b->ag != NULL && b->ag_ch != NULL) {
		ssh_channel_free(b->ag_ch);
		b->ag_ch = NULL;
	}
	b->state = BRIDGE_DEAD;
	relay_kick(b->relay);
}

static void
set_callbacks(struct bridge *b)
{
	memset(&b->op_cb, 0, sizeof(b->op_cb));
	b->op_cb.userdata = b;
	b->op_cb.channel_data_function = op_data_cb;
	b->op_cb.channel_eof_function = op_eof_cb;
	b->op_cb.channel_close_function = op_close_cb;
	ssh_callbacks_init(&b->op_cb);
	ssh_set_channel_callbacks(b->op_ch, &b->op_cb);

	memset(&b->ag_cb, 0, sizeof(b->ag_cb));
	b->ag_cb.userdata = b;
	b->ag_cb.channel_data_function = ag_data_cb;
	b->ag_cb.channel_eof_function = ag_eof_cb;
	b->ag_cb.channel_close_function = ag_close_cb;
	ssh_callbacks_init(&b->ag_cb);
	ssh_set_channel_callbacks(b->ag_ch, &b->ag_cb);
}

/* Advances an OPENING bridge. Returns 1 on a state change. */
static int
bridge_advance_open(struct bridge *b)
{
	struct audit_rec rec;
	int rc;

	if (b->ag == NULL) {
		b->state = BRIDGE_DEAD;
		return 1;
	}
	rc = ssh_channel_open_reverse_forward(b->ag_ch, b->service, b->port,
	    b->op != NULL ? b->op->host : "0.0.0.0",
	    b->op != NULL ? b->op->port : 0);
	if (rc == SSH_AGAIN)
		return 0;
	if (rc != SSH_OK) {
		/* pitfall 8: a failed open is freed, never closed */
		log_info("agent %s chan %llu: agent refused %s:%d for "
		    "operator %s: %s", b->agent_id, (unsigned long long)b->id,
		    b->service, b->port, b->opname, ssh_get_error(b->ag->ss.s));
		ssh_channel_free(b->ag_ch);
		b->ag_ch = NULL;
		rt_strlcpy(b->why, "agent refused the channel", sizeof(b->why));
		b->state = BRIDGE_DEAD;
		return 1;
	}
	b->ag_opened = 1;
	if (b->op == NULL || b->abandoned || b->open_msg == NULL) {
		if (b->why[0] == '\0')
			rt_strlcpy(b->why, "operator gone before the agent "
			    "answered", sizeof(b->why));
		log_info("agent %s chan %llu: late answer for %s: closing it "
		    "(%s)", b->agent_id, (unsigned long long)b->id, b->service,
		    b->why);
		ssh_channel_close(b->ag_ch);
		b->state = BRIDGE_DEAD;
		return 1;
	}
	b->op_ch = ssh_message_channel_request_open_reply_accept(b->open_msg);
	ssh_message_free(b->open_msg);
	b->open_msg = NULL;
	if (b->op_ch == NULL) {
		log_warn("operator %s chan %llu: cannot confirm the channel: %s",
		    b->opname, (unsigned long long)b->id,
		    ssh_get_error(b->op->ss.s));
		rt_strlcpy(b->why, "confirm failed", sizeof(b->why));
		ssh_channel_close(b->ag_ch);
		b->state = BRIDGE_DEAD;
		return 1;
	}
	set_callbacks(b);
	b->confirmed = 1;
	b->state = BRIDGE_OPEN;
	b->t_open = loop_now(b->relay->loop);
	b->t_io = b->t_open;
	b->relay->st.chan_open++;

	audit_rec_begin(&rec, "channel_open");
	audit_rec_str(&rec, "operator", b->opname);
	audit_rec_str(&rec, "agent", b->agent_id);
	audit_rec_str(&rec, "service", b->service);
	audit_rec_int(&rec, "port", b->port);
	audit_rec_str(&rec, "src", b->op->src);
	audit_rec_str(&rec, "rule", b->rule);
	audit_rec_int(&rec, "id", (long long)b->id);
	relay_audit(b->relay, &rec);
	log_info("operator %s chan %llu: open to %s:%s (%s) from %s",
	    b->opname, (unsigned long long)b->id, b->agent_id, b->service,
	    b->rule, b->op->src);
	return 1;
}

/* Writes carry to dst. Returns bytes moved or -1 on a dead channel. */
static ssize_t
dir_flush(struct bridge *b, struct bdir *d, size_t *quota)
{
	size_t len, moved = 0;
	int n;

	while ((len = buf_len(d->carry)) > 0 && *quota > 0) {
		if (*d->dst_closed || d->dst == NULL) {
			buf_reset(d->carry);	/* nobody to deliver to */
			break;
		}
		if (d->dst_ss == NULL || sshsess_busy(d->dst_ss))
			break;		/* socket backed up: wait for it */
		len = RT_MIN(len, RT_MIN(*quota, BRIDGE_CHUNK));
		n = ssh_channel_write(d->dst, buf_data(d->carry), (uint32_t)len);
		if (n == SSH_ERROR)
			return -1;
		if (n <= 0)
			break;		/* no window: wait for an adjust */
		/* pitfall 7: exactly what was taken, the rest stays */
		buf_consume(d->carry, (size_t)n);
		*d->bytes += (uint64_t)n;
		*quota -= (size_t)n;
		moved += (size_t)n;
		b->t_io = loop_now(b->relay->loop);
	}
	if (buf_len(d->carry) == 0)
		buf_shrink(d->carry);
	return (ssize_t)moved;
}

/*
 * Pulls the bytes libssh kept for src because its callback found the carry
 * full. Once the sender used up its window no packet, hence no callback,
 * comes for this channel again, so the carry must fetch them. libssh 0.10
 * re-opens the whole receive window on any ssh_channel_read() (whatever it
 * still buffers), so partial reads would let its buffer grow without
 * bound; reading everything at once keeps it at most one window. Hence
 * the carry's hard limit: channel_buffer for callbacks plus
 * BRIDGE_PULL_ROOM (more than libssh's largest buffered window) for this.
 */
static ssize_t
dir_pull(struct bridge *b, struct bdir *d, size_t *quota)
{
	ssize_t n = sshsess_pull(d->src, d->carry, d->backlog);

	if (n > 0) {
		*quota -= RT_MIN(*quota, (size_t)n);
		b->t_io = loop_now(b->relay->loop);
	}
	return n;
}

/* Sends EOF downstream once the source ended and everything went out. */
static void
dir_eof(struct bridge *b, struct bdir *d)
{
	if (*d->dst_eof_out || *d->dst_closed || d->dst == NULL)
		return;
	if (!(*d->src_eof || *d->src_closed))
		return;
	if (buf_len(d->carry) > 0 || *d->backlog)
		return;
	if (d->src != NULL && d->src_ss != NULL &&
	    sshsess_lib_oom(d->src_ss->s))
		return;		/* its session is ending: do not touch d->src */
	if (d->src != NULL && ssh_channel_poll(d->src, 0) > 0) {
		*d->backlog = 1;
		return;
	}
	ssh_channel_send_eof(d->dst);
	*d->dst_eof_out = 1;
}

static int
dir_done(struct bdir *d)
{
	return *d->dst_eof_out || *d->dst_closed;
}

/* Says in why what failed: libssh's error for a write or read, ours
 * (logged as an error) for a carry that could not grow. */
static void
dir_why(struct bridge *b, struct bdir *d, int pull, ssize_t err,
	char *why, size_t whylen)
{
	struct sshsess *ss = pull ? d->src_ss : d->dst_ss;

	if (err == RT_ERR_NOMEM && ss != NULL && sshsess_lib_oom(ss->s)) {
		/* the connection is ended too (sshsess_status) */
		snprintf(why, whylen, "SSH library out of memory on the %s "
		    "connection", d->from);
		return;
	}
	if (err == RT_ERR_NOMEM) {
		log_err("operator %s chan %llu: out of memory buffering data "
		    "from the %s: closing the channel", b->opname,
		    (unsigned long long)b->id, d->from);
		snprintf(why, whylen, "out of memory buffering data from the "
		    "%s", d->from);
		return;
	}
	/* logged with the close (bridge_free): mostly a peer gone */
	snprintf(why, whylen, "%s the %s failed: %s",
	    pull ? "read from" : "write to", pull ? d->from : d->to,
	    ss != NULL && ss->s != NULL ? ssh_get_error(ss->s) : "gone");
}

/* Runs one direction. On a failure says why and returns -1. */
static int
dir_run(struct bridge *b, struct bdir *d, int *progress, char *why,
	size_t whylen)
{
	size_t quota = BRIDGE_QUOTA;
	ssize_t n;

	if ((n = dir_flush(b, d, &quota)) < 0)
		goto flush_failed;
	*progress |= n > 0;
	if ((n = dir_pull(b, d, &quota)) < 0) {
		dir_why(b, d, 1, n, why, whylen);
		return -1;
	}
	*progress |= n > 0;
	if (n > 0) {
		if ((n = dir_flush(b, d, &quota)) < 0)
			goto flush_failed;
		*progress |= n > 0;
	}
	dir_eof(b, d);
	return 0;
flush_failed:
	dir_why(b, d, 0, n, why, whylen);
	return -1;
}

int
bridge_service(struct bridge *b)
{
	struct bdir up, down;
	char why[sizeof(b->why)];
	int progress = 0;

	if (b->state == BRIDGE_DEAD)
		return 0;
	/* the calls below may read either session: have them drained */
	if (b->ag != NULL)
		b->ag->touched = 1;
	if (b->op != NULL)
		b->op->touched = 1;
	if (b->state == BRIDGE_OPENING)
		return bridge_advance_open(b);
	if (b->op == NULL || b->ag == NULL) {
		b->state = BRIDGE_DEAD;
		return 1;
	}
	bdir_up(b, &up);
	bdir_down(b, &down);
	if (dir_run(b, &up, &progress, why, sizeof(why)) < 0 ||
	    dir_run(b, &down, &progress, why, sizeof(why)) < 0) {
		bridge_kill(b, why);
		return 1;
	}
	if (dir_done(&up) && dir_done(&down)) {
		rt_strlcpy(b->why, "closed", sizeof(b->why));
		b->state = BRIDGE_DEAD;
		return 1;
	}
	return progress;
}

static void
release_channel(ssh_channel *ch, struct ssh_channel_callbacks_struct *cb,
		int opened)
{
	if (*ch == NULL)
		return;
	ssh_remove_channel_callbacks(*ch, cb);
	/* pitfall 8: only a channel whose open succeeded may be closed */
	if (opened && ssh_channel_is_open(*ch))
		ssh_channel_close(*ch);
	ssh_channel_free(*ch);
	*ch = NULL;
}

void
bridge_free(struct bridge *b)
{
	struct relay *r = b->relay;
	struct audit_rec rec;
	int64_t dur;

	if (b->open_msg != NULL) {
		if (b->op != NULL) {
			deny_audit(b, b->why[0] != '\0' ? b->why : "failed");
			ssh_message_reply_default(b->open_msg);
		}
		ssh_message_free(b->open_msg);
		b->open_msg = NULL;
	}
	if (b->op != NULL)
		release_channel(&b->op_ch, &b->op_cb, 1);
	if (b->ag != NULL)
		release_channel(&b->ag_ch, &b->ag_cb, b->ag_opened);
	if (b->ag_opened && b->open_msg == NULL && b->confirmed) {
		dur = loop_now(r->loop) - b->t_open;
		audit_rec_begin(&rec, "channel_close");
		audit_rec_str(&rec, "operator", b->opname);
		audit_rec_str(&rec, "agent", b->agent_id);
		audit_rec_str(&rec, "service", b->service);
		audit_rec_int(&rec, "id", (long long)b->id);
		audit_rec_int(&rec, "bytes_to_agent",
		    (long long)b->bytes_to_agent);
		audit_rec_int(&rec, "bytes_from_agent",
		    (long long)b->bytes_from_agent);
		audit_rec_int(&rec, "duration_ms", (long long)dur);
		audit_rec_str(&rec, "reason", b->why);
		relay_audit(r, &rec);
		log_info("operator %s chan %llu: %s:%s closed (%s): %llu bytes "
		    "up, %llu down, %lld ms", b->opname,
		    (unsigned long long)b->id, b->agent_id, b->service, b->why,
		    (unsigned long long)b->bytes_to_agent,
		    (unsigned long long)b->bytes_from_agent, (long long)dur);
	}
	r->st.bytes_to_agents += b->bytes_to_agent;
	r->st.bytes_from_agents += b->bytes_from_agent;
	if (b->op != NULL) {
		TAILQ_REMOVE(&b->op->bridges, b, op_link);
		b->op->nchannels--;
		/* operator_idle_timeout counts from the last channel's end */
		b->op->last_active = loop_now(r->loop);
	}
	if (b->ag != NULL) {
		TAILQ_REMOVE(&b->ag->bridges, b, ag_link);
		b->ag->nbridges--;
	}
	TAILQ_REMOVE(&r->bridges, b, link);
	buf_free(b->to_agent);
	buf_free(b->to_op);
	free(b);
}
