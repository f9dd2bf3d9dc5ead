/*
 * alloc_torture.c - allocation-failure torture of the parsers, loaders and
 * core objects (FAULTS.md P6), in the style of curl's torture tests.
 *
 * This program replaces malloc, calloc, realloc, reallocarray, free and
 * the aligned allocators for the whole process: each forwards to glibc's
 * __libc_* entry point, counts the call and the blocks alive, and, when
 * armed, makes exactly the N-th allocation fail (NULL, errno ENOMEM).
 * glibc routes its own internal allocations (strdup, fopen, opendir, ...)
 * through the replacement, and so do OpenSSL, libssh and libconfuse, so a
 * failure can land in a library as well as in our code.
 *
 * For each operation (config loads, ACL, spool load, buf, loop, TLS
 * context, ctlproto and MQTT codec round trips) and for N = 1, 2, ...:
 * fork; in the child arm the N-th failure, run the operation, which must
 * either succeed with exactly the result of an undisturbed run or return
 * an error code (with a message where the API has a place for one, see
 * struct op.needs_msg), then check that the blocks alive after its own
 * cleanup equal those alive before. A signal, an exit(3) from a library,
 * a wrong result or a leak fails the run. The iteration stops at the
 * first N the operation never reaches (it completed with fewer
 * allocations). The child keeps the parent's state, so each N starts
 * from the same place and a crash names its N.
 *
 * One-time globals: the parent runs every operation twice, undisturbed,
 * before the first fork. The first run performs the lazy one-time
 * initialisations (OpenSSL's library context, providers, decoder and
 * method caches, error strings; libssh's; stdio buffers) so the children
 * find them done; the second run must leave the live count unchanged
 * (a steady-state leak check) and gives the number of allocations. The
 * children also call ERR_clear_error() before and after the operation:
 * OpenSSL's error queue holds allocated strings until it is cleared, and
 * its per-thread error state is allocated once on first use (the warm-up
 * makes it exist). What this does NOT test, therefore, is an allocation
 * failure inside those one-time initialisations themselves.
 *
 * Not built into --enable-asan builds (ASan owns malloc; interposing it
 * there is unsupported): the program then exits 77 (skipped).
 *
 * Usage: alloc-torture [OP [N]]. With OP only that operation runs; with N
 * only that injection point, in-process and with the operation's log on
 * stderr (for gdb). TORTURE_VERBOSE=1 prints every N's outcome;
 * TORTURE_KEEP=1 keeps the fixture directory.
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TORTURE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TORTURE_ASAN 1
#endif
#endif

#ifndef TORTURE_ASAN

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "acl.h"
#include "agent_config.h"
#include "buf.h"
#include "cfgutil.h"
#include "ctlproto.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "mqtt_codec.h"
#include "relay_config.h"
#include "runner.h"
#include "spool.h"
#include "testpki.h"
#include "tls.h"
#include "util.h"

/* ---- The allocator ------------------------------------------------- */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
/* <malloc.h> declares these; without it they need their own. */
void *memalign(size_t, size_t);
void *pvalloc(size_t);

static long t_armed;	/* count calls and fail the t_fail_at-th */
static long t_calls;	/* allocation calls since armed */
static long t_fail_at;	/* 0 = never */
static long t_failed;	/* the t_fail_at-th call happened */
static long t_live;	/* blocks handed out and not freed */
static int t_mark_fd = -1;	/* where the failing call's origin is noted */

/* The library the code at pc lies in, among those we call, or NULL. */
static const char *
lib_of(void *pc)
{
	static const char *const libs[] = {
		"libconfuse.so", "libssh.so", "libssh2.so", "libcrypto.so",
		"libssl.so",
	};
	Dl_info di;

	if (dladdr(pc, &di) == 0 || di.dli_fname == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
		if (strstr(di.dli_fname, libs[i]) != NULL)
			return libs[i];
	return NULL;
}

static int
in_module(void *pc, const char *name)
{
	Dl_info di;

	return dladdr(pc, &di) != 0 && di.dli_fname != NULL &&
	    strstr(di.dli_fname, name) != NULL;
}

/*
 * The library entry point through which our code reached the allocation
 * being failed, when library code (not ours) made it, as "libssh.so
 * ssh_pki_import_privkey_file"; "" otherwise. Set by t_note_origin(),
 * also written to t_mark_fd for the parent in case the child dies.
 */
static char t_origin[96];

static void
t_note_origin(void)
{
	void *pcs[64];
	Dl_info di, me;
	char line[160];
	int n, i, len;

	t_origin[0] = '\0';
	/* backtrace() was warmed up in main(): it allocates nothing here. */
	n = backtrace(pcs, 64);
	if (dladdr((void *)t_note_origin, &me) == 0)
		return;
	/* Skip the allocator (this program's frames on top), then libc's
	 * (strdup, fopen, ...): the next frame made the allocation. */
	for (i = 0; i < n && dladdr(pcs[i], &di) != 0 &&
	    di.dli_fbase == me.dli_fbase; i++)
		;
	for (; i < n && in_module(pcs[i], "libc.so"); i++)
		;
	if (i >= n || lib_of(pcs[i]) == NULL)
		return;
	/* The outermost frame of that run of library code is the API
	 * function our code called (exported: dladdr names it exactly). */
	while (i + 1 < n && lib_of(pcs[i + 1]) != NULL)
		i++;
	snprintf(t_origin, sizeof(t_origin), "%s %s", lib_of(pcs[i]),
	    dladdr(pcs[i], &di) != 0 && di.dli_sname != NULL ?
	    di.dli_sname : "?");
	len = snprintf(line, sizeof(line), "\nTORTURE: allocation failed "
	    "inside %s()\n", t_origin);
	if (t_mark_fd >= 0 && len > 0)
		(void)!write(t_mark_fd, line, (size_t)len);
}

/*
 * Library faults we cannot repair from the outside, each checked by hand
 * (the calling code was read, not guessed). A bad end after an
 * allocation failed inside the named entry point is counted as the
 * library's, apart from ours:
 *  - libconfuse 3.3 cfg_init() / cfg_parse_fp(), any bad end:
 *    cfg_init_defaults() ignores a failed default (the option is left
 *    without a value; cfgu_parse() catches the plain cases) and
 *    cfg_setopt() leaves a freed section pointer behind when copying a
 *    section's option table fails (cfg_free() then frees it again, or
 *    frees static option names: "free(): invalid pointer"); its flex
 *    scanner exit(2)s ("out of dynamic memory in yy_...()") and a list
 *    default that fails to parse abort()s ("Parse error in default
 *    value").
 *  - libssh 0.10.6 ssh_pki_import_privkey_file(), any bad end: an
 *    ECDSA key import failing for memory (BN_new) crashes in
 *    EC_KEY_free() under libssh's own ssh_key_free() on its error path
 *    (all frames inside libssh / libcrypto), or leaks one block.
 *  - libssh 0.10.6 ssh_pki_import_pubkey_base64(), leaks only: one block
 *    left behind; relay_config.c gets no key on failure and frees the
 *    key on every other path.
 *  - OpenSSL 3 SSL_CTX_new_ex(), leaks only: after an allocation fails
 *    inside it, the context is still made (it retries or does without)
 *    and one block stays alive after SSL_CTX_free(). Probably an entry
 *    of OpenSSL's method / provider caches filled on the retry (not
 *    proven to be a leak rather than a cache entry); tls_ctx_free() is
 *    all we can call.
 * Failures inside other entry points are ours to handle (cfg_getsec()
 * and the ssh_pki_* functions return errors).
 */
static int
known_lib_fault(const char *origin, int leak)
{
	static const char *const leaky[] = {
		"libssh.so ssh_pki_import_pubkey_base64",
		"libssl.so SSL_CTX_new_ex",
	};

	if (strcmp(origin, "libconfuse.so cfg_init") == 0 ||
	    strcmp(origin, "libconfuse.so cfg_parse_fp") == 0 ||
	    strcmp(origin, "libssh.so ssh_pki_import_privkey_file") == 0)
		return 1;
	for (size_t i = 0; leak && i < sizeof(leaky) / sizeof(leaky[0]); i++)
		if (strcmp(origin, leaky[i]) == 0)
			return 1;
	return 0;
}

static int
t_should_fail(void)
{
	long n;

	if (!__atomic_load_n(&t_armed, __ATOMIC_RELAXED))
		return 0;
	n = __atomic_add_fetch(&t_calls, 1, __ATOMIC_RELAXED);
	if (n != __atomic_load_n(&t_fail_at, __ATOMIC_RELAXED))
		return 0;
	__atomic_store_n(&t_failed, 1, __ATOMIC_RELAXED);
	t_note_origin();
	errno = ENOMEM;
	return 1;
}

static void *
t_got(void *p)
{
	if (p != NULL)
		__atomic_add_fetch(&t_live, 1, __ATOMIC_RELAXED);
	return p;
}

void *
malloc(size_t n)
{
	return t_should_fail() ? NULL : t_got(__libc_malloc(n));
}

void *
calloc(size_t nmemb, size_t size)
{
	return t_should_fail() ? NULL : t_got(__libc_calloc(nmemb, size));
}

void
free(void *p)
{
	if (p == NULL)
		return;
	__atomic_sub_fetch(&t_live, 1, __ATOMIC_RELAXED);
	__libc_free(p);
}

void *
realloc(void *p, size_t n)
{
	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		/* glibc: realloc(p, 0) frees p and returns NULL. */
		free(p);
		return NULL;
	}
	if (t_should_fail())
		return NULL;
	return __libc_realloc(p, n);
}

void *
reallocarray(void *p, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, nmemb * size);
}

void *
memalign(size_t align, size_t n)
{
	return t_should_fail() ? NULL : t_got(__libc_memalign(align, n));
}

void *
aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

int
posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	if ((p = memalign(align, n)) == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

void *
valloc(size_t n)
{
	return t_should_fail() ? NULL : t_got(__libc_valloc(n));
}

void *
pvalloc(size_t n)
{
	return t_should_fail() ? NULL : t_got(__libc_pvalloc(n));
}

static void
t_arm(long fail_at)
{
	__atomic_store_n(&t_calls, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&t_failed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&t_fail_at, fail_at, __ATOMIC_RELAXED);
	__atomic_store_n(&t_armed, 1, __ATOMIC_SEQ_CST);
}

static void
t_disarm(void)
{
	__atomic_store_n(&t_armed, 0, __ATOMIC_SEQ_CST);
}

static long
t_live_now(void)
{
	return __atomic_load_n(&t_live, __ATOMIC_SEQ_CST);
}

/* ---- Fixtures ------------------------------------------------------ */

static char dir[256];		/* everything the operations read */
static char spool_tmpl[300];	/* a spool directory with records */
static char spool_work[300];	/* a fresh copy of it per run */
static char relay_conf[300], agent_conf[300];
static struct testpki_cert *pki_ca, *pki_srv;
static X509_CRL *pki_crl;

/* Warnings and errors logged during the current operation. */
static unsigned int logged;

static void
log_count(void *arg, enum log_level level, const char *line)
{
	(void)arg;
	(void)line;
	if (level <= LOG_LVL_WARN)
		logged++;
}

static int
write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	if (fclose(f) != 0)
		return -1;
	return chmod(path, mode);
}

/* Removes every entry of the flat directory path. */
static int
dir_clear(const char *path)
{
	char p[600];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		(void)unlink(p);
	}
	closedir(d);
	return 0;
}

/* Copies the regular files of the flat directory src into dst. */
static int
dir_copy(const char *src, const char *dst)
{
	char ps[600], pd[600], b[65536];
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int in, out, rc = 0;

	if (mkdir(dst, 0700) != 0 && errno != EEXIST)
		return -1;
	if ((d = opendir(src)) == NULL)
		return -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(ps, sizeof(ps), "%s/%s", src, de->d_name);
		snprintf(pd, sizeof(pd), "%s/%s", dst, de->d_name);
		if ((in = open(ps, O_RDONLY)) < 0)
			rc = -1;
		else if ((out = open(pd, O_WRONLY | O_CREAT | O_TRUNC,
		    0600)) < 0) {
			close(in);
			rc = -1;
		} else {
			while ((n = read(in, b, sizeof(b))) > 0)
				if (write(out, b, (size_t)n) != n)
					rc = -1;
			close(in);
			close(out);
		}
	}
	closedir(d);
	return rc;
}

static int
make_relay_conf(void)
{
	char key1[1024], path[600], text[8192];
	FILE *f;

	if (unit_sh("cd %s && ssh-keygen -q -t ed25519 -N '' -C host -f host_ed"
	    " && ssh-keygen -q -t ecdsa -b 256 -N '' -C host -f host_ec"
	    " && ssh-keygen -q -t ed25519 -N '' -C alice@laptop -f op1"
	    " && ssh-keygen -q -t ecdsa -b 256 -N '' -C bob@laptop -f op2"
	    " && ssh-keygen -q -t rsa -b 2048 -N '' -C carol -f op3"
	    " && { echo '# bob'; echo; cat op2.pub op3.pub; } > keys_bob"
	    " && chmod 600 keys_bob", dir) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/op1.pub", dir);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(key1, sizeof(key1), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	key1[strcspn(key1, "\n")] = '\0';
	snprintf(text, sizeof(text),
	    "listen = {\"127.0.0.1:1443\", \"[::1]:8443\"}\n"
	    "operator_listen = {\"127.0.0.1:2222\"}\n"
	    "host_keys = {\"%s/host_ed\", \"%s/host_ec\"}\n"
	    "acl_allow_glob = true\n"
	    "audit_log = \"\"\n"
	    "tls {\n ca = \"%s/ca.crt\"\n cert = \"%s/srv.crt\"\n"
	    " key = \"%s/srv.key\"\n crl = \"%s/ca.crl\"\n}\n"
	    "agents {\n allow = {\"gw-17\", \"gw-18\"}\n"
	    " services = {\"ssh\", \"plc*\"}\n}\n"
	    "limits {\n channel_buffer = \"512k\"\n}\n"
	    "operator alice {\n keys = {\"%s\"}\n"
	    " allow = {\"gw-17:ssh\", \"gw-*:hmi\"}\n"
	    " rights = {\"gw-17:read\", \"gw-17:shell\"}\n}\n"
	    "operator bob {\n keys_file = \"%s/keys_bob\"\n"
	    " allow = {\"gw-18:ssh\"}\n}\n",
	    dir, dir, dir, dir, dir, dir, key1, dir);
	snprintf(relay_conf, sizeof(relay_conf), "%s/relay.conf", dir);
	return write_text(relay_conf, text, 0644);
}

static int
make_agent_conf(void)
{
	char text[8192];

	if (unit_sh("cd %s && echo secret > mqtt.pass && echo hmackey > cmd.key"
	    " && echo tmkey > tm.key && chmod 600 mqtt.pass cmd.key tm.key",
	    dir) < 0)
		return -1;
	snprintf(text, sizeof(text),
	    "relays = {\"relay.example.com:443\", \"[2001:db8::1]:8443\"}\n"
	    "tls {\n ca = \"%s/ca.crt\"\n cert = \"%s/srv.crt\"\n"
	    " key = \"%s/srv.key\"\n}\n"
	    "reconnect {\n initial = \"2s\"\n max = \"30s\"\n}\n"
	    "consent {\n mode = \"sessions\"\n file = \"%s/consent\"\n}\n"
	    "service ssh {\n port = 22\n target = \"127.0.0.1:22\"\n}\n"
	    "service plc {\n port = 502\n target = \"[fd00::20]:502\"\n}\n"
	    "service control {\n port = 7000\n}\n"
	    "control {\n state_dir = \"%s\"\n}\n"
	    "mqtt {\n enable = true\n"
	    " brokers = {\"broker.example.com:8883\", \"b2.example.com:8883\"}\n"
	    " username = \"gw\"\n password_file = \"%s/mqtt.pass\"\n"
	    " tls {\n  ca = \"%s/ca.crt\"\n }\n"
	    " spool_dir = \"%s/spool\"\n cmd_key_file = \"%s/cmd.key\"\n}\n"
	    "telemetry {\n disks = {\"/\", \"/tmp\"}\n"
	    " hmac_key_file = \"%s/tm.key\"\n}\n",
	    dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
	snprintf(agent_conf, sizeof(agent_conf), "%s/agent.conf", dir);
	return write_text(agent_conf, text, 0644);
}

static int
make_pki(void)
{
	struct testpki_opts o = { .cn = "relay", .san = "DNS:localhost",
	    .usage = TESTPKI_SERVER };

	if (testpki_ca("Torture CA", &pki_ca) != 0 ||
	    testpki_issue(pki_ca, &o, &pki_srv) != 0 ||
	    testpki_crl(pki_ca, &pki_srv->cert, 0, &pki_crl) != 0 ||
	    testpki_write(pki_ca, dir, "ca") != 0 ||
	    testpki_write(pki_srv, dir, "srv") != 0 ||
	    testpki_write_crl(pki_crl, dir, "ca") != 0)
		return -1;
	return 0;
}

/* A spool with 6 QoS 1 messages, 2 of them acknowledged, and a torn
 * record at the end. */
static int
make_spool(void)
{
	struct spool_config c = { .max_msgs = 100, .max_bytes = 1 << 20,
	    .dir = spool_tmpl, .max_disk_bytes = 1 << 22 };
	struct spool *s = NULL;
	char topic[64], payload[200], path[600];
	struct dirent *de;
	DIR *d;
	FILE *f;

	snprintf(spool_tmpl, sizeof(spool_tmpl), "%s/spool-tmpl", dir);
	snprintf(spool_work, sizeof(spool_work), "%s/spool-work", dir);
	if (spool_open(&c, &s, NULL, 0) != 0)
		return -1;
	for (int i = 0; i < 6; i++) {
		snprintf(topic, sizeof(topic), "revtun/gw-17/t/%d", i);
		memset(payload, 'a' + i, sizeof(payload));
		if (spool_push(s, topic, payload, 50 + 25 * (size_t)i, 1,
		    i == 5) != 0)
			return -1;
	}
	spool_done(s, spool_first(s));
	spool_done(s, spool_first(s));
	spool_close(s);
	/* The torn tail: a record header with nothing after it. */
	if ((d = opendir(spool_tmpl)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0)
			snprintf(path, sizeof(path), "%s/%s", spool_tmpl,
			    de->d_name);
	closedir(d);
	if ((f = fopen(path, "a")) == NULL)
		return -1;
	fwrite("RTS1\0\0\0\0\1\1\5\0\7\0\0\0", 1, 16, f);
	return fclose(f) == 0 ? 0 : -1;
}

/* ---- Operations ---------------------------------------------------- */

/*
 * Runs one operation and cleans up after it. Returns 0 with a summary of
 * the result in sum, or the error code; *said is set when the error came
 * with a message (errs list, err buffer). Log lines are counted apart.
 */
typedef int (*op_fn)(char *sum, size_t len, int *said);

static int
op_relay_config(char *sum, size_t len, int *said)
{
	struct cfgu_errors e;
	struct relay_config *c = NULL;
	const char *rule = NULL;
	int r;

	cfgu_errors_init(&e);
	if ((r = relay_config_load(relay_conf, &c, &e)) != 0) {
		*said = e.n > 0;
		return r;
	}
	snprintf(sum, len, "ops=%zu keys=%zu+%zu fp=%.12s hk=%zu acl=%d%d%d%d"
	    "%d glob=%u rule=%s agents=%zu svc=%zu buf=%llu",
	    c->noperators, c->operators[0].nkeys, c->operators[1].nkeys,
	    c->operators[1].key_fps[1], c->nhost_keys,
	    acl_check(c->acl, "alice", ACL_SERVICE, "gw-17", "ssh", &rule),
	    acl_check(c->acl, "alice", ACL_SERVICE, "gw-9", "hmi", NULL),
	    acl_check(c->acl, "alice", ACL_RIGHT, "gw-17", "shell", NULL),
	    acl_check(c->acl, "bob", ACL_SERVICE, "gw-18", "ssh", NULL),
	    acl_check(c->acl, "bob", ACL_SERVICE, "gw-17", "ssh", NULL),
	    acl_glob_count(c->acl), rule, c->nagent_allow, c->nservice_allow,
	    (unsigned long long)c->channel_buffer);
	relay_config_free(c);
	return 0;
}

static int
op_agent_config(char *sum, size_t len, int *said)
{
	struct cfgu_errors e;
	struct agent_config *c = NULL;
	int r;

	cfgu_errors_init(&e);
	if ((r = agent_config_load(agent_conf, &c, &e)) != 0) {
		*said = e.n > 0;
		return r;
	}
	snprintf(sum, len, "relays=%zu svc=%zu mqtt=%d brokers=%zu user=%s "
	    "spool=%s disks=%zu consent=%d",
	    c->nrelays, c->nservices, c->mqtt.enable, c->mqtt.nbrokers,
	    c->mqtt.username, strrchr(c->mqtt.spool_dir, '/'),
	    c->telemetry.ndisks, (int)c->consent_mode);
	agent_config_free(c);
	return 0;
}

static int
op_acl(char *sum, size_t len, int *said)
{
	static const char *const grants[][3] = {
		{ "alice", "gw-17:ssh", "a.conf:1" },
		{ "alice", "gw-*:hmi", NULL },
		{ "bob", "gw-18:ssh", "a.conf:3" },
		{ "carol", "plc-?:modbus", "a.conf:4" },
		{ "dave", "gw-1[0-9]:ssh", "a.conf:5" },
		{ "erin", "gw-20:vnc", "a.conf:6" },
	};
	struct acl *acl = NULL;
	char err[256];
	const char *rule = "";
	int r, bad;

	(void)said;
	if ((r = acl_new(1, &acl)) != 0)
		return r;
	for (size_t i = 0; i < RT_ARRAY_SIZE(grants); i++) {
		if ((r = acl_add(acl, grants[i][0], ACL_SERVICE, grants[i][1],
		    grants[i][2], err, sizeof(err))) != 0)
			goto out;
		if ((r = acl_add(acl, grants[i][0], ACL_RIGHT, "gw-17:read",
		    NULL, err, sizeof(err))) != 0)
			goto out;
	}
	/* A refused grant is refused the same way under any failure, and
	 * leaves the ACL as it was. */
	bad = acl_add(acl, "alice", ACL_RIGHT, "gw-17:fly", NULL, err,
	    sizeof(err));
	if (bad == RT_ERR_NOMEM) {
		r = bad;
		goto out;
	}
	snprintf(sum, len, "%d%d%d%d%d%d%d bad=%d glob=%u rule=%s",
	    acl_check(acl, "alice", ACL_SERVICE, "gw-17", "ssh", &rule),
	    acl_check(acl, "alice", ACL_SERVICE, "gw-3", "hmi", NULL),
	    acl_check(acl, "carol", ACL_SERVICE, "plc-7", "modbus", NULL),
	    acl_check(acl, "dave", ACL_SERVICE, "gw-15", "ssh", NULL),
	    acl_check(acl, "dave", ACL_SERVICE, "gw-25", "ssh", NULL),
	    acl_check(acl, "erin", ACL_RIGHT, "gw-17", "read", NULL),
	    acl_any(acl, "bob", "gw-18"), bad, acl_glob_count(acl), rule);
out:
	acl_free(acl);
	return r;
}

static int
op_spool(char *sum, size_t len, int *said)
{
	struct spool_config c = { .max_msgs = 100, .max_bytes = 1 << 20,
	    .dir = spool_work, .max_disk_bytes = 1 << 22 };
	struct spool *s = NULL;
	struct spool_stats st;
	char err[256] = "";
	int r;

	if ((r = spool_open(&c, &s, err, sizeof(err))) != 0) {
		*said = err[0] != '\0';
		return r;
	}
	spool_stats(s, &st);
	/* A failed push is an error of its own; the spool must still close
	 * cleanly. */
	r = spool_push(s, "revtun/gw-17/t/new", "xyz", 3, 1, 0);
	if (r == 0)
		spool_done(s, spool_first(s));
	else
		*said = 1;	/* no message channel: the caller logs */
	snprintf(sum, len, "loaded=%llu count=%zu torn=%llu corrupt=%llu "
	    "first=%s", (unsigned long long)st.loaded, st.count,
	    (unsigned long long)st.torn, (unsigned long long)st.corrupt,
	    spool_first(s)->topic);
	spool_close(s);
	return r;
}

static int
op_buf(char *sum, size_t len, int *said)
{
	struct buf *b;
	uint8_t chunk[3000], *p;
	size_t avail, total = 0;
	int r = 0;

	(void)said;
	memset(chunk, 'x', sizeof(chunk));
	if ((b = buf_new(1 << 20)) == NULL)
		return RT_ERR_NOMEM;
	for (int i = 0; i < 60 && r == 0; i++) {
		if ((r = buf_append(b, chunk, sizeof(chunk))) == 0)
			total += sizeof(chunk);
		if (i % 7 == 6)
			buf_consume(b, 2000);
	}
	if (r == 0 && (r = buf_reserve(b, 300000, &p, &avail)) == 0) {
		memset(p, 'y', 1000);
		buf_commit(b, 1000);
	}
	if (r == 0) {
		buf_consume(b, buf_len(b) - 10);
		buf_shrink(b);
		r = buf_append(b, chunk, 100);
	}
	if (r == 0)
		snprintf(sum, len, "len=%zu total=%zu", buf_len(b), total);
	buf_free(b);
	return r;
}

static unsigned int fired;

static void
on_timer(struct loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	fired++;
}

static void
on_io(struct loop *loop, int fd, unsigned int events, void *arg)
{
	char c;

	(void)loop;
	(void)events;
	(void)arg;
	if (read(fd, &c, 1) == 1)
		fired += 100;
}

static void
on_signal(struct loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	(void)arg;
}

static int
op_loop(char *sum, size_t len, int *said)
{
	struct loop *loop = NULL;
	struct loop_timer *t[40];
	struct loop_watch *w = NULL;
	int p[2] = { -1, -1 }, r;

	(void)said;
	fired = 0;
	if ((r = loop_new(&loop)) != 0)
		return r;
	if (pipe(p) != 0) {
		r = RT_ERR_SYS;
		goto out;
	}
	if ((r = loop_watch_add(loop, p[0], LOOP_READ, on_io, NULL, &w)) != 0)
		goto out;
	if ((r = loop_signal_add(loop, SIGUSR2, on_signal, NULL)) != 0)
		goto out;
	/* Enough timers to grow the heap several times; half of them
	 * cancelled, the due ones fire. */
	for (int i = 0; i < 40; i++)
		if ((r = loop_timer_add(loop, i % 2 ? 0 : 60000, on_timer,
		    NULL, &t[i])) != 0)
			goto out;
	for (int i = 0; i < 40; i += 4)
		loop_timer_cancel(t[i]);
	for (int i = 0; i < 3; i++)
		if ((r = loop_defer(loop, on_timer, NULL)) != 0)
			goto out;
	if (write(p[1], "x", 1) != 1) {
		r = RT_ERR_SYS;
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if ((r = loop_run_once(loop, 0)) < 0)
			goto out;
	r = 0;
	snprintf(sum, len, "fired=%u timers=%u watches=%u", fired,
	    loop_timer_count(loop), loop_watch_count(loop));
out:
	loop_free(loop);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return r;
}

static int
op_ctlproto(char *sum, size_t len, int *said)
{
	struct buf *b;
	struct ctl_frame f;
	uint8_t wh[4], big[5000];
	char op[65], cmd[4097];
	const uint8_t *d;
	size_t off = 0, n;
	unsigned int frames = 0;
	int r;

	(void)said;
	memset(big, 'z', sizeof(big));
	ctl_put_u16(wh, 132);
	ctl_put_u16(wh + 2, 43);
	if ((b = buf_new(1 << 20)) == NULL)
		return RT_ERR_NOMEM;
	if ((r = ctl_append(b, CTL_REQ, "alice\0status gw-17", 18)) != 0 ||
	    (r = ctl_append(b, CTL_WINCH, wh, 4)) != 0 ||
	    (r = ctl_append(b, CTL_DATA, big, sizeof(big))) != 0 ||
	    (r = ctl_append(b, CTL_DATA, big, sizeof(big))) != 0 ||
	    (r = ctl_append(b, CTL_EOF, NULL, 0)) != 0)
		goto out;
	d = buf_data(b);
	n = buf_len(b);
	while (off < n && (r = ctl_parse(d + off, n - off, &f)) > 0) {
		if (f.type == CTL_REQ &&
		    ctl_req_split(&f, op, sizeof(op), cmd, sizeof(cmd)) != 0)
			break;
		off += (size_t)r;
		frames++;
	}
	r = 0;
	snprintf(sum, len, "frames=%u op=%s cmd=%s", frames, op, cmd);
out:
	buf_free(b);
	return r;
}

static int
op_mqtt(char *sum, size_t len, int *said)
{
	static const struct mqtt_sub subs[] = {
		{ { (const uint8_t *)"revtun/gw-17/cmd", 16 }, 1 },
		{ { (const uint8_t *)"revtun/+/bcast/#", 16 }, 0 },
	};
	struct mqtt_pkt in[3], out;
	uint8_t wire[512];
	size_t n, pl;
	unsigned int ok = 0;

	(void)said;
	memset(in, 0, sizeof(in));
	in[0].type = MQTT_CONNECT;
	in[0].u.connect.client_id = mqtt_cstr("gw-17");
	in[0].u.connect.keepalive = 30;
	in[0].u.connect.will = 1;
	in[0].u.connect.will_qos = 1;
	in[0].u.connect.will_topic = mqtt_cstr("revtun/gw-17/state");
	in[0].u.connect.will_msg = mqtt_cstr("offline");
	in[0].u.connect.has_username = 1;
	in[0].u.connect.username = mqtt_cstr("gw");
	in[1].type = MQTT_PUBLISH;
	in[1].u.publish.topic = mqtt_cstr("revtun/gw-17/t");
	in[1].u.publish.payload = mqtt_cstr("{\"cpu\":3}");
	in[1].u.publish.qos = 1;
	in[1].u.publish.id = 7;
	in[2].type = MQTT_SUBSCRIBE;
	in[2].u.sub.id = 8;
	in[2].u.sub.count = 2;
	in[2].u.sub.subs = subs;
	for (int i = 0; i < 3; i++) {
		if (mqtt_encode(&in[i], wire, sizeof(wire), &n) != 0 ||
		    mqtt_frame(wire, n, sizeof(wire), &pl) != 0 || pl != n ||
		    mqtt_decode(wire, n, &out) != 0 || out.type != in[i].type)
			return RT_ERR_PROTO;
		ok++;
	}
	snprintf(sum, len, "packets=%u", ok);
	return 0;
}

static int
op_tls_ctx(char *sum, size_t len, int *said)
{
	char ca[600], cert[600], key[600], crl[600], err[512] = "";
	struct tls_config c = { .ca_file = ca, .cert_file = cert,
	    .key_file = key, .crl_file = crl, .require_peer_cert = 1 };
	SSL_CTX *ctx = NULL;
	int r;

	testpki_path(ca, sizeof(ca), dir, "ca", ".crt");
	testpki_path(cert, sizeof(cert), dir, "srv", ".crt");
	testpki_path(key, sizeof(key), dir, "srv", ".key");
	testpki_path(crl, sizeof(crl), dir, "ca", ".crl");
	if ((r = tls_ctx_new(&c, 1, &ctx, err, sizeof(err))) != 0) {
		*said = err[0] != '\0';
		return r;
	}
	snprintf(sum, len, "min=%ld mode=%d", SSL_CTX_get_min_proto_version(ctx),
	    SSL_CTX_get_verify_mode(ctx));
	tls_ctx_free(ctx);
	return 0;
}

struct op {
	const char *name;
	op_fn run;
	int needs_msg;		/* an error must come with a message */
	int fresh_spool;	/* copy the spool template before each run */
	int by_name_only;	/* not in the default run (see ops[]) */
	int pending;		/* failures reported, not counted: fixes
				 * to the loader are waiting (see ops[]) */
	/* filled by the run */
	char ref[1024];		/* summary of the undisturbed run */
	long allocs;		/* allocations of the undisturbed run */
};

/*
 * tls_ctx runs only when named: its undisturbed run makes ~9000
 * allocations, nearly all inside OpenSSL (certificate, key and CRL
 * decoding through the provider machinery), and failures inside
 * X509_STORE_load_file_ex() leave 2-3 blocks behind that we have not
 * traced to a leak or a cache (N >= 523). Its first 500 points show no
 * crash.
 *
 * pending: failures are printed but do not fail the run (for an
 * operation whose known fixes have not landed yet; none at present).
 */
static struct op ops[] = {
	{ "buf", op_buf, 0, 0, 0, 0, "", 0 },
	{ "loop", op_loop, 0, 0, 0, 0, "", 0 },
	{ "ctlproto", op_ctlproto, 0, 0, 0, 0, "", 0 },
	{ "mqtt_codec", op_mqtt, 0, 0, 0, 0, "", 0 },
	{ "acl", op_acl, 0, 0, 0, 0, "", 0 },
	{ "spool_load", op_spool, 1, 1, 0, 0, "", 0 },
	{ "agent_config", op_agent_config, 1, 0, 0, 0, "", 0 },
	{ "relay_config", op_relay_config, 1, 0, 0, 0, "", 0 },
	{ "tls_ctx", op_tls_ctx, 1, 0, 1, 0, "", 0 },
};

/* ---- The harness --------------------------------------------------- */

#define X_INJECTED	40	/* the N-th allocation failed; all clean */
#define X_UNREACHED	41	/* the op finished before the N-th */
#define X_BAD		42	/* checked failure, message printed */
#define MAX_POINTS	20000	/* bound on N per operation */
#define MAX_REPORTS	20	/* failures printed per operation */

#define X_LIBFATAL	43	/* ended badly after a failure inside a
				 * library (see known_lib_fault) */

static int verbose;
static char child_err[300];	/* the child's stderr */

/* The entry point the child's marker names, or NULL. */
static const char *
child_origin(char *buf, size_t len)
{
	static const char mark[] = "allocation failed inside ";
	char b[8192], *p;
	size_t n;
	FILE *f;

	if ((f = fopen(child_err, "r")) == NULL)
		return NULL;
	n = fread(b, 1, sizeof(b) - 1, f);
	fclose(f);
	b[n] = '\0';
	if ((p = strstr(b, mark)) == NULL)
		return NULL;
	p += sizeof(mark) - 1;
	p[strcspn(p, "()\n")] = '\0';
	rt_strlcpy(buf, p, len);
	return buf;
}

static int
prepare(const struct op *op)
{
	if (!op->fresh_spool)
		return 0;
	if (dir_clear(spool_work) != 0 || dir_copy(spool_tmpl, spool_work) != 0)
		return -1;
	return 0;
}

/*
 * One run with the fail_at-th allocation failing (0 = none). Returns
 * X_INJECTED, X_UNREACHED, X_BAD (having printed why to report) or
 * X_LIBFATAL.
 */
static int
run_point(const struct op *op, long fail_at, FILE *report)
{
	char sum[1024] = "", bad[1200] = "";
	long before, after, calls, failed;
	int r, said = 0;

	ERR_clear_error();
	logged = 0;
	t_origin[0] = '\0';
	before = t_live_now();
	t_arm(fail_at);
	r = op->run(sum, sizeof(sum), &said);
	t_disarm();
	calls = t_calls;
	failed = t_failed;
	ERR_clear_error();
	after = t_live_now();
	if (after != before)
		snprintf(bad, sizeof(bad), "%ld block(s) leaked (r=%d %s)",
		    after - before, r, rt_strerror(r));
	else if (r == 0 && strcmp(sum, op->ref) != 0)
		snprintf(bad, sizeof(bad), "succeeded with a different "
		    "result:\n  got  %s\n  want %s", sum, op->ref);
	else if (r != 0 && (r > 0 || r < RT_ERR_MIN))
		snprintf(bad, sizeof(bad), "returned %d, not an error code", r);
	else if (r != 0 && op->needs_msg && !said && logged == 0)
		snprintf(bad, sizeof(bad), "failed (%s) without a message",
		    rt_strerror(r));
	else if (r != 0 && !failed)
		snprintf(bad, sizeof(bad), "failed (%s) with no allocation "
		    "failing", rt_strerror(r));
	if (bad[0] != '\0' && known_lib_fault(t_origin, after != before)) {
		if (verbose)
			fprintf(report, "%s N=%ld: known fault of %s(): %s\n",
			    op->name, fail_at, t_origin, bad);
		return X_LIBFATAL;
	}
	if (bad[0] != '\0') {
		fprintf(report, "%s N=%ld: %s%s%s%s\n", op->name, fail_at, bad,
		    t_origin[0] != '\0' ? " (the failed allocation was in "
		    : "", t_origin, t_origin[0] != '\0' ? "())" : "");
		return X_BAD;
	}
	if (verbose)
		fprintf(report, "%s N=%ld: %s (%ld allocations)%s%s\n",
		    op->name, fail_at, !failed ? "not reached" : r == 0 ?
		    "absorbed" : rt_strerror(r), calls, t_origin[0] ?
		    ", inside " : "", t_origin);
	return failed ? X_INJECTED : X_UNREACHED;
}

/* Runs fail_at in a child; returns its X_* result (X_BAD for anything
 * unexpected, reported). */
static int
fork_point(struct op *op, long fail_at)
{
	char origin[96], how[64];
	pid_t pid;
	int st, null;

	if (prepare(op) != 0) {
		fprintf(stderr, "%s N=%ld: cannot prepare the spool copy\n",
		    op->name, fail_at);
		return X_BAD;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		perror("fork");
		return X_BAD;
	}
	if (pid == 0) {
		FILE *report = fdopen(dup(2), "w");

		/* The operation's own log lines would flood the output (the
		 * hook still counts them); the origin marker and a library's
		 * dying words are read back by the parent. */
		if ((null = open(child_err, O_WRONLY | O_CREAT | O_TRUNC,
		    0600)) >= 0)
			dup2(null, 2);
		t_mark_fd = 2;
		if (report == NULL)
			_exit(X_BAD);
		st = run_point(op, fail_at, report);
		fflush(report);
		_exit(st);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("waitpid");
			return X_BAD;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) >= X_INJECTED &&
	    WEXITSTATUS(st) <= X_LIBFATAL)
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		snprintf(how, sizeof(how), "killed by signal %d (%s)",
		    WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(how, sizeof(how), "exit status %d (a library called "
		    "exit()?)", WEXITSTATUS(st));
	if (child_origin(origin, sizeof(origin)) != NULL &&
	    known_lib_fault(origin, 0)) {
		if (verbose)
			fprintf(stderr, "%s N=%ld: known fault of %s(): %s\n",
			    op->name, fail_at, origin, how);
		return X_LIBFATAL;
	}
	fprintf(stderr, "%s N=%ld: %s; rerun with: alloc-torture %s %ld\n",
	    op->name, fail_at, how, op->name, fail_at);
	return X_BAD;
}

/* The two undisturbed runs: reference result and allocation count. */
static int
warm_up(struct op *op)
{
	char sum[1024] = "";
	long before;
	int r, said = 0;

	for (int pass = 0; pass < 2; pass++) {
		int saved = dup(2), null = open("/dev/null", O_WRONLY);

		if (prepare(op) != 0)
			return -1;
		/* The operation's log lines (spool warnings) are expected. */
		if (null >= 0) {
			dup2(null, 2);
			close(null);
		}
		ERR_clear_error();
		before = t_live_now();
		t_arm(0);
		r = op->run(sum, sizeof(sum), &said);
		t_disarm();
		if (saved >= 0) {
			dup2(saved, 2);
			close(saved);
		}
		ERR_clear_error();
		if (r != 0) {
			fprintf(stderr, "%s: the undisturbed run failed: %s\n",
			    op->name, rt_strerror(r));
			return -1;
		}
		if (pass == 1 && t_live_now() != before) {
			fprintf(stderr, "%s: the undisturbed run leaks %ld "
			    "block(s)\n", op->name, t_live_now() - before);
			return -1;
		}
		if (pass == 1 && strcmp(sum, op->ref) != 0) {
			fprintf(stderr, "%s: two undisturbed runs differ:\n  %s"
			    "\n  %s\n", op->name, op->ref, sum);
			return -1;
		}
		rt_strlcpy(op->ref, sum, sizeof(op->ref));
		op->allocs = t_calls;
	}
	return 0;
}

static int
torture(struct op *op)
{
	struct timespec t0, t1;
	long n, bad = 0, libfatal = 0;
	int x;

	if (warm_up(op) != 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (n = 1; n <= MAX_POINTS; n++) {
		x = fork_point(op, n);
		if (x == X_UNREACHED)
			break;
		libfatal += x == X_LIBFATAL;
		if (x == X_BAD && ++bad >= MAX_REPORTS) {
			fprintf(stderr, "%s: stopping after %ld failures\n",
			    op->name, bad);
			break;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%-13s %5ld injection points (undisturbed run: %ld "
	    "allocations), %ld failure(s), %ld known library fault(s), %.1f s\n",
	    op->name, n - 1, op->allocs, bad, libfatal,
	    (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (n > MAX_POINTS) {
		fprintf(stderr, "%s: still reaching N=%d\n", op->name,
		    MAX_POINTS);
		bad++;
	}
	if (bad != 0 && op->pending) {
		printf("%-13s PENDING: %ld failure(s) not counted (loader fixes "
		    "pending, see ops[] in %s)\n", op->name, bad, __FILE__);
		return 0;
	}
	return bad != 0;
}

static int
self_test(void)
{
	long before = t_live_now();
	char *s;
	void *p;
	int ok;

	/* strdup must go through the replacement, or glibc's internal
	 * allocations would escape the count. */
	s = strdup("x");
	p = reallocarray(NULL, 3, 5);
	ok = s != NULL && p != NULL && t_live_now() == before + 2;
	free(s);
	free(p);
	t_arm(1);
	s = strdup("y");
	t_disarm();
	ok = ok && s == NULL && t_failed && t_live_now() == before;
	free(s);
	if (!ok)
		fprintf(stderr, "alloc-torture: the malloc replacement is not "
		    "in effect (static libc? another interposer?)\n");
	return ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	int fails = 0, found = 0;

	verbose = getenv("TORTURE_VERBOSE") != NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("alloc-torture", 0, LOG_LVL_INFO);
	log_set_hook(log_count, NULL);
	{
		/* backtrace() loads libgcc_s on first use: do it now, not
		 * inside the allocator. */
		void *pcs[4];

		(void)backtrace(pcs, 4);
	}
	if (self_test() != 0)
		return 99;
	snprintf(dir, sizeof(dir), "/tmp/rt-torture.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(child_err, sizeof(child_err), "%s/child.err", dir);
	if (make_pki() != 0 || make_relay_conf() != 0 ||
	    make_agent_conf() != 0 || make_spool() != 0) {
		fprintf(stderr, "alloc-torture: cannot build the fixtures in "
		    "%s\n", dir);
		unit_rmtree(dir);
		return 99;
	}
	for (size_t i = 0; i < RT_ARRAY_SIZE(ops); i++) {
		if (only != NULL ? strcmp(only, ops[i].name) != 0 :
		    ops[i].by_name_only)
			continue;
		found = 1;
		if (argc > 2) {
			/* One point, in-process, log on stderr. */
			long n = strtol(argv[2], NULL, 10);
			int x;

			if (warm_up(&ops[i]) != 0 || prepare(&ops[i]) != 0)
				fails++;
			else {
				verbose = 1;
				x = run_point(&ops[i], n, stderr);
				fails += x == X_BAD;
			}
			continue;
		}
		fails += torture(&ops[i]);
	}
	if (getenv("TORTURE_KEEP") == NULL)
		unit_rmtree(dir);
	else
		fprintf(stderr, "alloc-torture: fixtures kept in %s\n", dir);
	if (!found) {
		fprintf(stderr, "alloc-torture: no operation %s\n", only);
		return 99;
	}
	testpki_free(pki_srv);
	testpki_free(pki_ca);
	X509_CRL_free(pki_crl);
	return fails > 0 ? 1 : 0;
}

#else /* TORTURE_ASAN */

int
main(void)
{
	printf("SKIP: alloc-torture replaces malloc, which AddressSanitizer "
	    "owns; run it in a build without --enable-asan\n");
	return 77;
}

#endif
