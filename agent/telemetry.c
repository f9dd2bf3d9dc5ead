/*
 * telemetry.c - the JSON writer, system collectors, user metrics and the
 * telemetry / events payload builders (telemetry.h). Parsers take text and
 * do no I/O; the readers around them read bounded files only.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "err.h"
#include "telemetry.h"
#include "util.h"

/* ---- JSON writer ---- */

void
tj_init(struct tjson *j, char *buf, size_t cap)
{
	memset(j, 0, sizeof(*j));
	j->buf = buf;
	j->cap = cap;
	if (cap == 0)
		j->err = RT_ERR_FULL;
	else
		buf[0] = '\0';
}

static void
tj_put(struct tjson *j, const char *s, size_t n)
{
	if (j->err != 0)
		return;
	/* Keep one byte for the NUL of tj_finish. */
	if (n >= j->cap - j->len) {
		j->err = RT_ERR_FULL;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

static void
tj_putc(struct tjson *j, char c)
{
	tj_put(j, &c, 1);
}

/* Length of the well-formed UTF-8 sequence at p[0..n) (p[0] >= 0x80):
 * 2..4, or 0 for a bad lead or continuation byte, an overlong form, a
 * surrogate or a value past U+10FFFF. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t run, k;

	run = (p[0] >= 0xc2 && p[0] <= 0xdf) ? 2 :
	    (p[0] >= 0xe0 && p[0] <= 0xef) ? 3 :
	    (p[0] >= 0xf0 && p[0] <= 0xf4) ? 4 : 0;
	if (run == 0 || run > n)
		return 0;
	for (k = 1; k < run; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return run;
}

static void
tj_escaped(struct tjson *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run;
	char e[8];

	tj_putc(j, '"');
	while (i < n && j->err == 0) {
		unsigned char c = p[i];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			tj_putc(j, (char)c);
			i++;
			continue;
		}
		if (c < 0x80) {
			e[0] = '\\';
			switch (c) {
			case '"': case '\\': e[1] = (char)c; break;
			case '\n': e[1] = 'n'; break;
			case '\r': e[1] = 'r'; break;
			case '\t': e[1] = 't'; break;
			case '\b': e[1] = 'b'; break;
			case '\f': e[1] = 'f'; break;
			default:
				memcpy(e, "\\u00", 4);
				e[4] = hex[c >> 4];
				e[5] = hex[c & 15];
				tj_put(j, e, 6);
				i++;
				continue;
			}
			tj_put(j, e, 2);
			i++;
			continue;
		}
		/* Multi-byte: copy a well-formed sequence, else U+FFFD. */
		if ((run = utf8_len(p + i, n - i)) != 0) {
			tj_put(j, s + i, run);
			i += run;
			continue;
		}
		tj_put(j, "\\ufffd", 6);
		i++;
	}
	tj_putc(j, '"');
}

/* Comma and key before a value; checks key use against the level. */
static void
tj_pre(struct tjson *j, const char *key)
{
	uint32_t bit;
	int in_arr;

	if (j->err != 0)
		return;
	if (j->depth == 0) {
		if (key != NULL || j->len != 0)
			j->err = RT_ERR_INVAL;
		return;
	}
	bit = 1u << (j->depth - 1);
	in_arr = (j->is_arr & bit) != 0;
	if (in_arr != (key == NULL)) {
		j->err = RT_ERR_INVAL;
		return;
	}
	if (j->has_item & bit)
		tj_putc(j, ',');
	j->has_item |= bit;
	if (key != NULL) {
		tj_escaped(j, key, strlen(key));
		tj_putc(j, ':');
	}
}

static void
tj_open(struct tjson *j, const char *key, int arr)
{
	uint32_t bit;

	tj_pre(j, key);
	if (j->err != 0)
		return;
	if (j->depth == TJ_MAX_DEPTH) {
		j->err = RT_ERR_INVAL;
		return;
	}
	bit = 1u << j->depth;
	j->depth++;
	j->has_item &= ~bit;
	if (arr)
		j->is_arr |= bit;
	else
		j->is_arr &= ~bit;
	tj_putc(j, arr ? '[' : '{');
}

void
tj_obj(struct tjson *j, const char *key)
{
	tj_open(j, key, 0);
}

void
tj_arr(struct tjson *j, const char *key)
{
	tj_open(j, key, 1);
}

void
tj_close(struct tjson *j)
{
	if (j->err != 0)
		return;
	if (j->depth == 0) {
		j->err = RT_ERR_INVAL;
		return;
	}
	j->depth--;
	tj_putc(j, (j->is_arr & (1u << j->depth)) ? ']' : '}');
}

void
tj_strn(struct tjson *j, const char *key, const char *s, size_t len)
{
	tj_pre(j, key);
	tj_escaped(j, s, len);
}

void
tj_str(struct tjson *j, const char *key, const char *s)
{
	if (s == NULL)
		tj_null(j, key);
	else
		tj_strn(j, key, s, strlen(s));
}

void
tj_raw(struct tjson *j, const char *key, const char *v, size_t len)
{
	tj_pre(j, key);
	tj_put(j, v, len);
}

void
tj_int(struct tjson *j, const char *key, int64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);

	tj_raw(j, key, tmp, (size_t)n);
}

void
tj_uint(struct tjson *j, const char *key, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);

	tj_raw(j, key, tmp, (size_t)n);
}

void
tj_fixed(struct tjson *j, const char *key, double v, int decimals)
{
	char tmp[64];
	int n;

	if (!isfinite(v) || v >= 1e18 || v <= -1e18) {
		tj_null(j, key);
		return;
	}
	if (decimals < 0 || decimals > 6)
		decimals = 6;
	n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, v);
	/* "-0.00" is valid JSON, but say 0 for -0. */
	if (n > 0 && tmp[0] == '-' && strspn(tmp + 1, "0.") == (size_t)n - 1)
		n = snprintf(tmp, sizeof(tmp), "%.*f", decimals, 0.0);
	tj_raw(j, key, tmp, (size_t)n);
}

void
tj_bool(struct tjson *j, const char *key, int v)
{
	tj_raw(j, key, v ? "true" : "false", v ? 4 : 5);
}

void
tj_null(struct tjson *j, const char *key)
{
	tj_raw(j, key, "null", 4);
}

int
tj_finish(struct tjson *j, size_t *len)
{
	*len = 0;
	if (j->err == 0 && (j->depth != 0 || j->len == 0))
		j->err = RT_ERR_INVAL;
	if (j->err != 0)
		return j->err;
	j->buf[j->len] = '\0';
	*len = j->len;
	return 0;
}

/* ---- /proc and /sys parsers (pure) ---- */

/* Parses a non-negative decimal with optional fraction; *end after it. */
static int
parse_udec(const char *s, double *v, const char **end)
{
	double x = 0, scale = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return RT_ERR_INVAL;
	while (isdigit((unsigned char)*p))
		x = x * 10 + (*p++ - '0');
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return RT_ERR_INVAL;
		while (isdigit((unsigned char)*p)) {
			scale /= 10;
			x += (*p++ - '0') * scale;
		}
	}
	*v = x;
	*end = p;
	return 0;
}

static int
parse_u64(const char *s, uint64_t *v, const char **end)
{
	uint64_t x = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return RT_ERR_INVAL;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p++ - '0');

		if (x > (UINT64_MAX - d) / 10)
			return RT_ERR_INVAL;
		x = x * 10 + d;
	}
	*v = x;
	*end = p;
	return 0;
}

static const char *
skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int
tm_parse_uptime(const char *text, double *up_s)
{
	const char *end;
	double v;

	if (parse_udec(skip_blank(text), &v, &end) != 0 ||
	    (*end != ' ' && *end != '\n' && *end != '\0'))
		return RT_ERR_INVAL;
	*up_s = v;
	return 0;
}

int
tm_parse_loadavg(const char *text, double load[3])
{
	const char *p = text;
	double v[3];
	int i;

	for (i = 0; i < 3; i++) {
		p = skip_blank(p);
		if (parse_udec(p, &v[i], &p) != 0 || (*p != ' ' && *p != '\t' &&
		    *p != '\n' && *p != '\0'))
			return RT_ERR_INVAL;
	}
	memcpy(load, v, sizeof(v));
	return 0;
}

int
tm_parse_meminfo(const char *text, uint64_t *total_kb, uint64_t *avail_kb)
{
	const char *p = text, *end;
	uint64_t total = 0, avail = 0, v;
	int have = 0;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t klen = strcspn(p, ":\n");
		int which = 0;

		if (klen == 8 && strncmp(p, "MemTotal", 8) == 0)
			which = 1;
		else if (klen == 12 && strncmp(p, "MemAvailable", 12) == 0)
			which = 2;
		if (which != 0 && p[klen] == ':') {
			p = skip_blank(p + klen + 1);
			if (parse_u64(p, &v, &end) != 0 ||
			    strncmp(skip_blank(end), "kB", 2) != 0)
				return RT_ERR_INVAL;
			if (which == 1)
				total = v;
			else
				avail = v;
			have |= which;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (have != 3 || avail > total)
		return RT_ERR_INVAL;
	*total_kb = total;
	*avail_kb = avail;
	return 0;
}

int
tm_parse_temp(const char *text, int64_t *mdeg)
{
	const char *p = text, *end;
	int neg = 0;
	uint64_t v;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (parse_u64(p, &v, &end) != 0 || v > 1000000 ||
	    (*end != '\n' && *end != '\0'))
		return RT_ERR_INVAL;
	*mdeg = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/*
 * /proc/net/dev: two header lines, then per interface
 *   "  eth0: rxbytes rxpackets rxerrs rxdrop rxfifo rxframe rxcompressed
 *    rxmulticast txbytes txpackets txerrs ..."
 */
int
tm_parse_netdev(const char *text, struct tm_iface *out, size_t max,
    size_t *n)
{
	const char *p = text;
	size_t count = 0;
	int line = 0;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		const char *q, *colon, *name;
		uint64_t f[11];
		size_t nlen, i;

		line++;
		colon = strchr(p, ':');
		if (line <= 2 || (nl != NULL && colon > nl) || colon == NULL) {
			if (line > 2 && strspn(p, " \t\n") !=
			    (nl ? (size_t)(nl - p) + 1 : strlen(p)))
				return RT_ERR_INVAL;
			goto next;
		}
		name = skip_blank(p);
		nlen = (size_t)(colon - name);
		if (nlen == 0 || nlen >= sizeof(out->name))
			return RT_ERR_INVAL;
		q = colon + 1;
		for (i = 0; i < 11; i++) {
			q = skip_blank(q);
			if (parse_u64(q, &f[i], &q) != 0)
				return RT_ERR_INVAL;
		}
		if (count < max && !(nlen == 2 && memcmp(name, "lo", 2) == 0)) {
			memset(&out[count], 0, sizeof(out[count]));
			memcpy(out[count].name, name, nlen);
			out[count].rx_bytes = f[0];
			out[count].rx_errs = f[2];
			out[count].tx_bytes = f[8];
			out[count].tx_errs = f[10];
			count++;
		}
 next:
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	*n = count;
	return 0;
}

/* ---- readers ---- */

/* Reads at most cap - 1 bytes of path into buf, NUL-terminated. Refuses
 * anything but a regular file, and a file that does not fit. */
static int
read_small(const char *path, char *buf, size_t cap, size_t *len)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, r = 0;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return RT_ERR_SYS;
	if (fstat(fd, &st) != 0) {
		r = RT_ERR_SYS;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = RT_ERR_INVAL;
		goto out;
	}
	/* /proc files say size 0: read until EOF, bounded by cap. */
	for (;;) {
		n = read(fd, buf + got, cap - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = RT_ERR_SYS;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap - 1) {
			char c;

			if (read(fd, &c, 1) != 0) {
				r = RT_ERR_TOOBIG;
				goto out;
			}
			break;
		}
	}
	buf[got] = '\0';
	*len = got;
 out:
	close(fd);
	return r;
}

static int
read_proc(const char *root, const char *rel, char *buf, size_t cap)
{
	char path[512];
	size_t len;

	if ((size_t)snprintf(path, sizeof(path), "%s%s", root, rel) >=
	    sizeof(path))
		return RT_ERR_TOOBIG;
	return read_small(path, buf, cap, &len);
}

static void
collect_temps(const char *root, struct tm_sys *s, char *buf, size_t cap)
{
	char dir[512], path[600];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/sys/class/thermal", root);
	if ((d = opendir(dir)) == NULL)
		return;
	/* readdir order is arbitrary; zones are few, so sort by insertion. */
	while ((de = readdir(d)) != NULL && s->n_temps < TM_MAX_TEMPS) {
		struct tm_temp t;
		size_t i;

		if (strncmp(de->d_name, "thermal_zone", 12) != 0 ||
		    strlen(de->d_name) >= sizeof(t.zone))
			continue;
		snprintf(path, sizeof(path), "%s/%s/temp", dir, de->d_name);
		if (read_small(path, buf, cap, &i) != 0 ||
		    tm_parse_temp(buf, &t.mdeg) != 0)
			continue;
		rt_strlcpy(t.zone, de->d_name, sizeof(t.zone));
		i = s->n_temps++;
		while (i > 0 && strcmp(s->temps[i - 1].zone, t.zone) > 0) {
			s->temps[i] = s->temps[i - 1];
			i--;
		}
		s->temps[i] = t;
	}
	closedir(d);
}

int
tm_sys_collect(const char *root, const char *const *disks, size_t ndisks,
    struct tm_sys *s)
{
	char *buf;
	size_t i;

	memset(s, 0, sizeof(*s));
	if (root == NULL)
		root = "";
	for (i = 0; i < ndisks && s->n_disks < TM_MAX_DISKS; i++) {
		struct statvfs sv;
		struct tm_disk *d = &s->disks[s->n_disks];

		if (statvfs(disks[i], &sv) != 0)
			continue;
		d->path = disks[i];
		d->total = (uint64_t)sv.f_blocks * sv.f_frsize;
		d->avail = (uint64_t)sv.f_bavail * sv.f_frsize;
		s->n_disks++;
	}
	if ((buf = malloc(TM_PROC_MAX)) == NULL)
		return 0;	/* everything else absent */
	if (read_proc(root, "/proc/uptime", buf, TM_PROC_MAX) == 0 &&
	    tm_parse_uptime(buf, &s->uptime_s) == 0)
		s->has_uptime = 1;
	if (read_proc(root, "/proc/loadavg", buf, TM_PROC_MAX) == 0 &&
	    tm_parse_loadavg(buf, s->load) == 0)
		s->has_load = 1;
	if (read_proc(root, "/proc/meminfo", buf, TM_PROC_MAX) == 0 &&
	    tm_parse_meminfo(buf, &s->mem_total_kb, &s->mem_avail_kb) == 0)
		s->has_mem = 1;
	if (read_proc(root, "/proc/net/dev", buf, TM_PROC_MAX) != 0 ||
	    tm_parse_netdev(buf, s->ifaces, TM_MAX_IFACES, &s->n_ifaces) != 0)
		s->n_ifaces = 0;
	collect_temps(root, s, buf, TM_PROC_MAX);
	free(buf);
	return 0;
}

/* ---- user metrics ---- */

static int
key_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
json_number(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
	else
		return 0;
	if (i < n && s[i] == '.') {
		if (++i >= n || !isdigit((unsigned char)s[i]))
			return 0;
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !isdigit((unsigned char)s[i]))
			return 0;
		while (i < n && isdigit((unsigned char)s[i]))
			i++;
	}
	return i == n;
}

/* Printable UTF-8: no control bytes, well-formed sequences. */
static int
printable_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run;

	while (i < n) {
		if (p[i] >= 0x80) {
			if ((run = utf8_len(p + i, n - i)) == 0)
				return 0;
			i += run;
		} else if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
		else
			i++;
	}
	return 1;
}

int
tm_metrics_parse(const char *text, size_t len, struct tm_metrics *out,
    char *err, size_t errlen)
{
	size_t off = 0, line = 0, i;
	int r = 0;

	out->n = 0;
	if (errlen > 0)
		err[0] = '\0';
	if (len > TM_USER_MAX) {
		snprintf(err, errlen, "%zu bytes, more than %d", len,
		    TM_USER_MAX);
		return RT_ERR_TOOBIG;
	}
	while (off < len) {
		const char *l = text + off, *nl = memchr(l, '\n', len - off);
		size_t n = nl ? (size_t)(nl - l) : len - off, k = 0, v, vlen;
		struct tm_metric *m;

		off += n + (nl != NULL);
		line++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		while (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t'))
			n--;
		if (n == 0 || l[0] == '#')
			continue;
		while (k < n && key_char((unsigned char)l[k]))
			k++;
		if (k == 0 || k > TM_KEY_MAX || (k < n && l[k] != ' ' &&
		    l[k] != '\t')) {
			snprintf(err, errlen, "line %zu: bad key", line);
			r = RT_ERR_INVAL;
			goto out;
		}
		v = k;
		while (v < n && (l[v] == ' ' || l[v] == '\t'))
			v++;
		vlen = n - v;
		if (vlen == 0 || vlen > TM_VAL_MAX ||
		    !printable_utf8(l + v, vlen)) {
			snprintf(err, errlen, "line %zu: bad value", line);
			r = RT_ERR_INVAL;
			goto out;
		}
		for (i = 0; i < out->n; i++) {
			if (strlen(out->m[i].key) == k &&
			    memcmp(out->m[i].key, l, k) == 0) {
				snprintf(err, errlen,
				    "line %zu: duplicate key '%.*s'", line,
				    (int)k, l);
				r = RT_ERR_INVAL;
				goto out;
			}
		}
		if (out->n == TM_USER_METRICS) {
			snprintf(err, errlen, "line %zu: more than %d metrics",
			    line, TM_USER_METRICS);
			r = RT_ERR_INVAL;
			goto out;
		}
		m = &out->m[out->n++];
		memcpy(m->key, l, k);
		m->key[k] = '\0';
		memcpy(m->val, l + v, vlen);
		m->val[vlen] = '\0';
		m->is_num = json_number(m->val, vlen);
	}
 out:
	if (r != 0)
		out->n = 0;
	return r;
}

int
tm_metrics_read_file(const char *path, struct tm_metrics *out, char *err,
    size_t errlen)
{
	char buf[TM_USER_MAX + 1];
	size_t len;
	int r;

	out->n = 0;
	if ((r = read_small(path, buf, sizeof(buf), &len)) != 0) {
		snprintf(err, errlen, "%s: %s", path, rt_strerror_errno(r));
		return r;
	}
	return tm_metrics_parse(buf, len, out, err, errlen);
}

/* ---- metrics command ---- */

static void
cmd_idle(struct tm_cmd *c)
{
	c->pid = -1;
	c->fd = -1;
	c->status = 0;
	c->len = 0;
	c->out[0] = '\0';
}

int
tm_cmd_start(struct tm_cmd *c, const char *cmdline, int64_t now_ms,
    int64_t timeout_ms)
{
	int p[2], null;
	sigset_t set;
	pid_t pid;

	cmd_idle(c);
	if (pipe2(p, O_CLOEXEC) != 0)
		return RT_ERR_SYS;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return RT_ERR_SYS;
	}
	if (pid == 0) {
		/* Child: only async-signal-safe calls until exec. */
		setpgid(0, 0);
		null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 2) < 0 ||
		    dup2(p[1], 1) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		execl("/bin/sh", "sh", "-c", cmdline, (char *)NULL);
		_exit(127);
	}
	/* Both sides set the group, so kill(-pid) works at once. */
	setpgid(pid, pid);
	close(p[1]);
	if (rt_fd_nonblock(p[0]) != 0) {
		close(p[0]);
		c->pid = pid;
		tm_cmd_abort(c);
		return RT_ERR_SYS;
	}
	c->pid = pid;
	c->fd = p[0];
	c->deadline_ms = now_ms + timeout_ms;
	return 0;
}

void
tm_cmd_abort(struct tm_cmd *c)
{
	int st;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->pid > 0) {
		kill(-c->pid, SIGKILL);
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	c->pid = -1;
}

int
tm_cmd_poll(struct tm_cmd *c, int64_t now_ms)
{
	siginfo_t si;
	ssize_t n;
	pid_t p;
	int st;

	while (c->fd >= 0) {
		n = read(c->fd, c->out + c->len, TM_USER_MAX + 1 - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {	/* EOF, or an error taken as one */
			close(c->fd);
			c->fd = -1;
			break;
		}
		c->len += (size_t)n;
		if (c->len > TM_USER_MAX) {
			tm_cmd_abort(c);
			c->len = 0;
			c->out[0] = '\0';
			return RT_ERR_TOOBIG;
		}
	}
	if (c->pid > 0) {
		/* Peek first: while the child is a zombie its pid (and so
		 * its group id) cannot be reused, so the group kill below
		 * hits only what the shell left behind holding the pipe. */
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) == 0 && si.si_pid == c->pid) {
			kill(-c->pid, SIGKILL);
			while ((p = waitpid(c->pid, &st, 0)) < 0 &&
			    errno == EINTR)
				;
			c->status = p == c->pid ? st : 0x7f00;
			c->pid = -1;
		}
	}
	if (c->fd >= 0 || c->pid > 0) {
		if (now_ms < c->deadline_ms)
			return RT_ERR_AGAIN;
		tm_cmd_abort(c);
		return RT_ERR_TIMEOUT;
	}
	c->out[c->len] = '\0';
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)
		return RT_ERR_PROTO;
	return 0;
}

/* ---- payloads ---- */

struct tm_pub {
	char		agent[65];
	uint8_t		key[64];
	size_t		keylen;
	uint64_t	seq[TM_TOPIC_MAX];	/* last used, per topic */
};

int
tm_new(const char *agent, const uint8_t *key, size_t keylen,
    struct tm_pub **out)
{
	struct tm_pub *t;

	*out = NULL;
	if (agent == NULL || !rt_valid_id(agent) || keylen > sizeof(t->key) ||
	    (key == NULL) != (keylen == 0))
		return RT_ERR_INVAL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return RT_ERR_NOMEM;
	rt_strlcpy(t->agent, agent, sizeof(t->agent));
	if (keylen > 0)
		memcpy(t->key, key, keylen);
	t->keylen = keylen;
	*out = t;
	return 0;
}

void
tm_free(struct tm_pub *t)
{
	if (t == NULL)
		return;
	OPENSSL_cleanse(t->key, sizeof(t->key));
	free(t);
}

int
tm_hmac_sha256(const uint8_t *key, size_t keylen, const void *data,
    size_t len, uint8_t out[32])
{
	size_t outlen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, data,
	    len, out, 32, &outlen) == NULL || outlen != 32)
		return RT_ERR_TLS;
	return 0;
}

static void
envelope(struct tm_pub *t, struct tjson *j, enum tm_topic topic,
    int64_t wall_ms)
{
	char ts[32];

	rt_time_iso(wall_ms, ts, sizeof(ts));
	tj_obj(j, NULL);
	tj_str(j, "agent", t->agent);
	tj_str(j, "ts", ts);
	tj_uint(j, "seq", t->seq[topic] + 1);
}

int
tm_seal(struct tjson *j, const uint8_t *key, size_t keylen, size_t *len)
{
	static const char hex[] = "0123456789abcdef";
	char tag[64];
	uint8_t mac[32];
	size_t i;

	if (keylen > 0 && j->err == 0) {
		/* U is the bytes so far plus "}" (tj keeps a byte free). */
		if (j->len + 1 >= j->cap) {
			j->err = RT_ERR_FULL;
		} else {
			j->buf[j->len] = '}';
			if (tm_hmac_sha256(key, keylen, j->buf, j->len + 1,
			    mac) != 0)
				j->err = RT_ERR_TLS;
			for (i = 0; i < 32; i++) {
				tag[2 * i] = hex[mac[i] >> 4];
				tag[2 * i + 1] = hex[mac[i] & 15];
			}
			tj_strn(j, "hmac", tag, sizeof(tag));
			OPENSSL_cleanse(mac, sizeof(mac));
		}
	}
	tj_close(j);
	return tj_finish(j, len);
}

/* Seals the object (tm_seal) and counts it on its topic. */
static int
seal(struct tm_pub *t, struct tjson *j, enum tm_topic topic,
    size_t *len)
{
	int r;

	if ((r = tm_seal(j, t->key, t->keylen, len)) != 0)
		return r;
	t->seq[topic]++;
	return 0;
}

static void
put_sys(struct tjson *j, const struct tm_sys *s)
{
	size_t i;

	tj_obj(j, "system");
	if (s->has_uptime)
		tj_fixed(j, "uptime_s", s->uptime_s, 2);
	if (s->has_load) {
		tj_arr(j, "load");
		for (i = 0; i < 3; i++)
			tj_fixed(j, NULL, s->load[i], 2);
		tj_close(j);
	}
	if (s->has_mem) {
		tj_obj(j, "mem");
		tj_uint(j, "total_kb", s->mem_total_kb);
		tj_uint(j, "avail_kb", s->mem_avail_kb);
		tj_close(j);
	}
	if (s->n_disks > 0) {
		tj_arr(j, "disks");
		for (i = 0; i < s->n_disks && i < TM_MAX_DISKS; i++) {
			tj_obj(j, NULL);
			tj_str(j, "path", s->disks[i].path);
			tj_uint(j, "total", s->disks[i].total);
			tj_uint(j, "avail", s->disks[i].avail);
			tj_close(j);
		}
		tj_close(j);
	}
	if (s->n_temps > 0) {
		tj_arr(j, "temps");
		for (i = 0; i < s->n_temps && i < TM_MAX_TEMPS; i++) {
			const struct tm_temp *t = &s->temps[i];

			tj_obj(j, NULL);
			tj_strn(j, "zone", t->zone,
			    strnlen(t->zone, sizeof(t->zone)));
			tj_int(j, "mdeg", t->mdeg);
			tj_close(j);
		}
		tj_close(j);
	}
	if (s->n_ifaces > 0) {
		tj_arr(j, "ifaces");
		for (i = 0; i < s->n_ifaces && i < TM_MAX_IFACES; i++) {
			const struct tm_iface *f = &s->ifaces[i];

			tj_obj(j, NULL);
			tj_strn(j, "name", f->name,
			    strnlen(f->name, sizeof(f->name)));
			tj_uint(j, "rx_bytes", f->rx_bytes);
			tj_uint(j, "rx_errs", f->rx_errs);
			tj_uint(j, "tx_bytes", f->tx_bytes);
			tj_uint(j, "tx_errs", f->tx_errs);
			tj_close(j);
		}
		tj_close(j);
	}
	tj_close(j);
}

int
tm_build_telemetry(struct tm_pub *t, int64_t wall_ms,
    const struct tm_sys *sys, const struct tm_tunnel *tun,
    const char *user_name, const struct tm_metrics *user, char *buf,
    size_t cap, size_t *len)
{
	struct tjson j;
	size_t i;

	*len = 0;
	if ((user != NULL) != (user_name != NULL))
		return RT_ERR_INVAL;
	tj_init(&j, buf, cap);
	envelope(t, &j, TM_TOPIC_TELEMETRY, wall_ms);
	if (sys != NULL)
		put_sys(&j, sys);
	if (tun != NULL) {
		tj_obj(&j, "tunnel");
		tj_str(&j, "state", tun->state ? tun->state : "unknown");
		if (tun->rtt_ms >= 0)
			tj_int(&j, "rtt_ms", tun->rtt_ms);
		tj_uint(&j, "sessions", tun->sessions);
		tj_uint(&j, "bytes_to_relay", tun->bytes_to_relay);
		tj_uint(&j, "bytes_from_relay", tun->bytes_from_relay);
		tj_uint(&j, "reconnects", tun->reconnects);
		tj_close(&j);
	}
	if (user != NULL) {
		tj_obj(&j, "user");
		tj_obj(&j, user_name);
		for (i = 0; i < user->n && i < TM_USER_METRICS; i++) {
			const struct tm_metric *m = &user->m[i];

			if (m->is_num)
				tj_raw(&j, m->key, m->val, strlen(m->val));
			else
				tj_str(&j, m->key, m->val);
		}
		tj_close(&j);
		tj_close(&j);
	}
	return seal(t, &j, TM_TOPIC_TELEMETRY, len);
}

int
tm_build_event(struct tm_pub *t, int64_t wall_ms,
    const struct tm_event *ev, char *buf, size_t cap, size_t *len)
{
	static const char *const names[] = {
		[TM_EV_TUNNEL_UP] = "tunnel-up",
		[TM_EV_TUNNEL_DOWN] = "tunnel-down",
		[TM_EV_SESSION_OPEN] = "session-open",
		[TM_EV_SESSION_CLOSE] = "session-close",
		[TM_EV_CONFIG_CHANGE] = "config-change",
	};
	struct tjson j;
	int session;

	*len = 0;
	if ((unsigned)ev->type >= RT_ARRAY_SIZE(names) ||
	    names[ev->type] == NULL)
		return RT_ERR_INVAL;
	session = ev->type == TM_EV_SESSION_OPEN ||
	    ev->type == TM_EV_SESSION_CLOSE;
	tj_init(&j, buf, cap);
	envelope(t, &j, TM_TOPIC_EVENTS, wall_ms);
	tj_str(&j, "event", names[ev->type]);
	if (session)
		tj_uint(&j, "session", ev->session);
	if (ev->service != NULL)
		tj_str(&j, "service", ev->service);
	if (ev->peer != NULL)
		tj_str(&j, "peer", ev->peer);
	if (ev->reason != NULL)
		tj_str(&j, "reason", ev->reason);
	if (ev->type == TM_EV_SESSION_CLOSE) {
		tj_uint(&j, "bytes_in", ev->bytes_in);
		tj_uint(&j, "bytes_out", ev->bytes_out);
		if (ev->duration_ms >= 0)
			tj_int(&j, "duration_ms", ev->duration_ms);
	}
	return seal(t, &j, TM_TOPIC_EVENTS, len);
}
