/*
 * cfgutil.c - helpers shared by the libconfuse-based config loaders
 * (cfgutil.h): the bounded error list, safe file loading, duration / size
 * syntax, validators and key file permission checks.
 *
 * Files are read by us (open, fstat, bounded read) and handed to
 * libconfuse as a memory stream, so the file that was checked is the file
 * that is parsed and libconfuse never reads more than max_bytes.
 *
 * libconfuse 3.3 gives its error function no user pointer, so the error
 * list being filled is kept in `collecting` for the length of one
 * cfgu_parse*() call (parses are synchronous and the daemons are
 * single-threaded); it is NULL at all other times, and messages that
 * arrive then go to the log. This is the one mutable static here.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgutil.h"
#include "err.h"
#include "log.h"
#include "util.h"

#define CFGU_DEFAULT_MAX (1024 * 1024)
#define CFGU_MAX_DURATION_MS ((uint64_t)30 * 24 * 3600 * 1000)
#define CFGU_MAX_SIZE ((uint64_t)1 << 40)

static struct cfgu_errors *collecting;
/* The file being parsed: libconfuse sets the filename on the root cfg
 * only, so errors raised inside a section would have none. */
static const char *collecting_name;

void
cfgu_errors_init(struct cfgu_errors *e)
{
	e->n = 0;
	e->dropped = 0;
	e->msg[0][0] = '\0';
}

static void
errors_vadd(struct cfgu_errors *e, const char *prefix, const char *fmt,
	    va_list ap)
{
	char *m;
	size_t off = 0;
	int n;

	if (e->n >= CFGU_MAX_ERRORS) {
		if (e->dropped < (unsigned int)-1)
			e->dropped++;
		return;
	}
	m = e->msg[e->n++];
	m[0] = '\0';
	if (prefix != NULL) {
		n = snprintf(m, CFGU_ERRLEN, "%s", prefix);
		if (n > 0)
			off = (size_t)n < CFGU_ERRLEN ? (size_t)n :
			    CFGU_ERRLEN - 1;
	}
	vsnprintf(m + off, CFGU_ERRLEN - off, fmt, ap);
}

void
cfgu_errors_add(struct cfgu_errors *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_vadd(e, NULL, fmt, ap);
	va_end(ap);
}

/* "FILE:LINE: ", or "FILE: " when the line is unknown, into buf. */
static void
where(cfg_t *cfg, char *buf, size_t len)
{
	buf[0] = '\0';
	if (cfg == NULL || cfg->filename == NULL)
		return;
	if (cfg->line > 0)
		snprintf(buf, len, "%s:%d: ", cfg->filename, cfg->line);
	else
		snprintf(buf, len, "%s: ", cfg->filename);
}

void
cfgu_errors_add_at(struct cfgu_errors *e, cfg_t *cfg, const char *fmt, ...)
{
	char prefix[CFGU_ERRLEN];
	va_list ap;

	where(cfg, prefix, sizeof(prefix));
	va_start(ap, fmt);
	errors_vadd(e, prefix, fmt, ap);
	va_end(ap);
}

static void
collect_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char prefix[CFGU_ERRLEN], m[CFGU_ERRLEN];

	where(cfg, prefix, sizeof(prefix));
	if (prefix[0] == '\0' && collecting_name != NULL && cfg != NULL) {
		if (cfg->line > 0)
			snprintf(prefix, sizeof(prefix), "%s:%d: ",
				 collecting_name, cfg->line);
		else
			snprintf(prefix, sizeof(prefix), "%s: ",
				 collecting_name);
	}
	if (collecting != NULL) {
		errors_vadd(collecting, prefix, fmt, ap);
		return;
	}
	vsnprintf(m, sizeof(m), fmt, ap);
	log_err("%s%s", prefix, m);
}

/*
 * Returns a copy of text with every comment ('#' or '//' to the end of the
 * line, and C-style blocks) replaced by spaces, newlines kept, quoted
 * strings untouched. libconfuse 3.3 counts each comment's newline twice,
 * so every message after a comment named the wrong line, and it cannot
 * parse a comment inside a { } list.
 *
 * libconfuse 3.3 also accepts a text that ends inside a block comment, a
 * quoted string or a section or list (a truncated file would load with
 * defaults), so this pass sets *why and *line (1-based) for the first
 * such problem: a NUL byte, an unterminated comment or string, a '*'
 * outside quotes and comments (libconfuse skips it or silently stops
 * there), or the outermost '{' never closed. Returns NULL when out of
 * memory.
 */
static char *
strip_comments(const char *text, size_t len, const char **why,
	       unsigned int *line)
{
	char *out = malloc(len + 1);
	char quote = 0;
	size_t i, depth = 0;
	unsigned int ln = 1, open_ln = 0, quote_ln = 0;
	int in_word = 0;	/* inside an unquoted value like /a//b */
	const char *nul;

	*why = NULL;
	if (out == NULL)
		return NULL;
	memcpy(out, text, len);
	out[len] = '\0';
	/* libconfuse would stop at a NUL and load what came before it. */
	if ((nul = memchr(text, '\0', len)) != NULL) {
		for (i = 0; i < (size_t)(nul - text); i++)
			ln += text[i] == '\n';
		*why = "NUL byte (binary or corrupted file?)";
		*line = ln;
		return out;
	}
	for (i = 0; i < len; i++) {
		char ch = out[i];

		if (ch == '\n')
			ln++;
		if (quote != 0) {
			if (ch == '\\' && i + 1 < len) {
				if (out[++i] == '\n')
					ln++;
			} else if (ch == quote)
				quote = 0;
			continue;
		}
		/* libconfuse starts a '//' or '/' '*' comment only where a
		 * token starts: "http://x" and "/a//b" are values. */
		if (in_word && ch == '/')
			continue;
		in_word = strchr(" \t\r\n=,{}()#\"'", ch) == NULL;
		if (ch == '"' || ch == '\'') {
			quote = ch;
			quote_ln = ln;
		} else if (ch == '{') {
			if (depth++ == 0)
				open_ln = ln;
		} else if (ch == '}') {
			/* An extra '}' is libconfuse's to report. */
			if (depth > 0)
				depth--;
		} else if (ch == '#' || (ch == '/' && i + 1 < len &&
		    out[i + 1] == '/')) {
			for (; i < len && out[i] != '\n'; i++)
				out[i] = ' ';
			if (i < len)
				ln++;
			in_word = 0;
		} else if (ch == '/' && i + 1 < len && out[i + 1] == '*') {
			unsigned int start_ln = ln;

			out[i++] = ' ';
			out[i++] = ' ';
			for (; i < len; i++) {
				if (out[i] == '*' && i + 1 < len &&
				    out[i + 1] == '/') {
					out[i++] = ' ';
					out[i] = ' ';
					break;
				}
				if (out[i] != '\n')
					out[i] = ' ';
				else
					ln++;
			}
			in_word = 0;
			if (i >= len && *why == NULL) {
				*why = "unterminated comment";
				*line = start_ln;
			}
		} else if (ch == '*' && *why == NULL) {
			/* libconfuse 3.3 skips a lone '*' and stops reading
			 * at some pairs ("port = 5 ** port = 7" loads port 5
			 * and nothing after, without an error) */
			*why = "'*' outside quotes (put the value in quotes)";
			*line = ln;
		}
	}
	if (quote != 0 && *why == NULL) {
		*why = "unterminated string";
		*line = quote_ln;
	} else if (depth > 0 && *why == NULL) {
		*why = "'{' is never closed";
		*line = open_ln;
	}
	return out;
}

/*
 * 1 if every option of cfg that has a default value holds a value, in
 * every section, 0 if not. libconfuse 3.3 sets defaults in cfg_init() and
 * for each section it creates while parsing, and ignores an allocation
 * failure there: the option is left without a value, so cfg_getstr()
 * gives NULL, cfg_getsec() NULL and cfg_getint() 0 to a loader that
 * rightly expects the default. (List defaults are parsed by libconfuse's
 * scanner, which aborts the process instead; nothing to check there.)
 */
static int
defaults_complete(cfg_t *cfg)
{
	if (cfg == NULL || cfg->opts == NULL)
		return 0;
	for (cfg_opt_t *o = cfg->opts; o->name != NULL; o++) {
		if (o->simple_value.ptr != NULL)
			continue;
		for (unsigned int i = 0; i < o->nvalues; i++) {
			if (o->values[i] == NULL ||
			    (o->type == CFGT_SEC &&
			    !defaults_complete(o->values[i]->section)) ||
			    (o->type == CFGT_STR && o->values[i]->string == NULL))
				return 0;
		}
		if (o->nvalues > 0 || (o->flags & (CFGF_NODEFAULT | CFGF_LIST)))
			continue;
		switch (o->type) {
		case CFGT_SEC:
			if (!(o->flags & CFGF_MULTI))
				return 0;
			break;
		case CFGT_INT:
		case CFGT_FLOAT:
		case CFGT_BOOL:
			return 0;
		case CFGT_STR:
			if (o->def.string != NULL)
				return 0;
			break;
		default:
			break;
		}
	}
	return 1;
}

cfg_t *
cfgu_getnsec(cfg_t *cfg, const char *name, unsigned int index)
{
	/* cfg_getopt() on a plain name only searches; no allocation. */
	cfg_opt_t *opt = cfg != NULL ? cfg_getopt(cfg, name) : NULL;

	if (opt == NULL || opt->type != CFGT_SEC)
		return NULL;
	return cfg_opt_getnsec(opt, index);
}

cfg_t *
cfgu_getsec(cfg_t *cfg, const char *name)
{
	return cfgu_getnsec(cfg, name, 0);
}

/* Parses len bytes at text into cfg, labelling messages with name. */
static int
parse_mem(cfg_t *cfg, const char *text, size_t len, const char *name,
	  struct cfgu_errors *e)
{
	static const char empty[] = "\n";
	unsigned int before = e->n + e->dropped;
	char *fname, *clean;
	const char *why;
	unsigned int line = 0;
	FILE *fp;
	int r, cr;

	/* glibc's fmemopen() used to refuse size 0; an empty line is the
	 * same config. */
	if (len == 0) {
		text = empty;
		len = 1;
	}
	if ((fname = strdup(name)) == NULL) {
		cfgu_errors_add(e, "%s: out of memory", name);
		return RT_ERR_NOMEM;
	}
	if ((clean = strip_comments(text, len, &why, &line)) == NULL) {
		free(fname);
		cfgu_errors_add(e, "%s: out of memory", name);
		return RT_ERR_NOMEM;
	}
	if (why != NULL) {
		cfgu_errors_add(e, "%s:%u: %s", name, line, why);
		free(clean);
		free(fname);
		return RT_ERR_CONFIG;
	}
	if ((fp = fmemopen(clean, len, "r")) == NULL) {
		free(clean);
		free(fname);
		cfgu_errors_add(e, "%s: cannot open a memory stream: %s", name,
				strerror(errno));
		return RT_ERR_SYS;
	}
	/* cfg_parse_fp() keeps a filename it finds and uses it in every
	 * message (the root's and each section's). */
	free(cfg->filename);
	cfg->filename = fname;
	cfg_set_error_function(cfg, collect_errfunc);

	collecting = e;
	collecting_name = fname;
	cr = cfg_parse_fp(cfg, fp);
	collecting = NULL;
	collecting_name = NULL;
	fclose(fp);
	free(clean);

	switch (cr) {
	case CFG_SUCCESS:
		r = 0;
		if (!defaults_complete(cfg)) {
			cfgu_errors_add(e, "%s: out of memory (setting default "
					"values)", name);
			r = RT_ERR_NOMEM;
		}
		break;
	case CFG_PARSE_ERROR:
		r = RT_ERR_CONFIG;
		if (e->n + e->dropped == before)
			cfgu_errors_add(e, "%s: invalid configuration", name);
		break;
	default:
		r = RT_ERR_SYS;
		cfgu_errors_add(e, "%s: cannot read: %s", name,
				strerror(errno));
		break;
	}
	return r;
}

int
cfgu_parse(cfg_t *cfg, const char *path, size_t max_bytes,
	   struct cfgu_errors *e)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0, cap;
	ssize_t got;
	int fd, r;

	if (max_bytes == 0)
		max_bytes = CFGU_DEFAULT_MAX;
	/* O_NONBLOCK so a FIFO cannot hang us before fstat() refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		cfgu_errors_add(e, "%s: cannot open: %s", path,
				strerror(errno));
		return RT_ERR_SYS;
	}
	if (fstat(fd, &st) < 0) {
		cfgu_errors_add(e, "%s: cannot stat: %s", path,
				strerror(errno));
		r = RT_ERR_SYS;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		cfgu_errors_add(e, "%s: not a regular file", path);
		r = RT_ERR_INVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max_bytes) {
		cfgu_errors_add(e, "%s: %lld bytes is larger than the limit "
				"of %zu", path, (long long)st.st_size,
				max_bytes);
		r = RT_ERR_TOOBIG;
		goto out;
	}
	/* One byte more than the limit, to see a file that grew since. */
	cap = max_bytes + 1;
	if ((text = malloc(cap)) == NULL) {
		cfgu_errors_add(e, "%s: out of memory", path);
		r = RT_ERR_NOMEM;
		goto out;
	}
	while (len < cap) {
		got = read(fd, text + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			cfgu_errors_add(e, "%s: cannot read: %s", path,
					strerror(errno));
			r = RT_ERR_SYS;
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	if (len > max_bytes) {
		cfgu_errors_add(e, "%s: larger than the limit of %zu bytes",
				path, max_bytes);
		r = RT_ERR_TOOBIG;
		goto out;
	}
	r = parse_mem(cfg, text, len, path, e);
 out:
	free(text);
	close(fd);
	return r;
}

int
cfgu_parse_buf(cfg_t *cfg, const char *text, const char *name,
	       struct cfgu_errors *e)
{
	if (name == NULL)
		name = "[buf]";
	return parse_mem(cfg, text != NULL ? text : "", text != NULL ?
			 strlen(text) : 0, name, e);
}

/*
 * Reads the decimal digits at *sp into *v (no sign, at least one digit,
 * no overflow) and advances *sp past them. Returns 0 or RT_ERR_INVAL.
 */
static int
parse_digits(const char **sp, uint64_t *v)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return RT_ERR_INVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			return RT_ERR_INVAL;
		n = n * 10 + d;
	}
	*sp = s;
	*v = n;
	return 0;
}

int
cfgu_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} unit[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t v;
	size_t i;

	if (s == NULL || parse_digits(&s, &v) != 0)
		return RT_ERR_INVAL;
	for (i = 0; i < RT_ARRAY_SIZE(unit); i++) {
		if (strcmp(s, unit[i].suffix) != 0)
			continue;
		if (v > CFGU_MAX_DURATION_MS / unit[i].ms)
			return RT_ERR_INVAL;
		*ms = (int64_t)(v * unit[i].ms);
		return 0;
	}
	return RT_ERR_INVAL;
}

int
cfgu_parse_size(const char *s, uint64_t *bytes)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} unit[] = {
		{ "", 1 }, { "k", 1024 }, { "K", 1024 },
		{ "m", 1024 * 1024 }, { "M", 1024 * 1024 },
		{ "g", 1024 * 1024 * 1024 }, { "G", 1024 * 1024 * 1024 },
	};
	uint64_t v;
	size_t i;

	if (s == NULL || parse_digits(&s, &v) != 0)
		return RT_ERR_INVAL;
	for (i = 0; i < RT_ARRAY_SIZE(unit); i++) {
		if (strcmp(s, unit[i].suffix) != 0)
			continue;
		if (v > CFGU_MAX_SIZE / unit[i].mult)
			return RT_ERR_INVAL;
		*bytes = v * unit[i].mult;
		return 0;
	}
	return RT_ERR_INVAL;
}

int
cfgu_validate_port(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned int i;
	long v;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		v = cfg_opt_getnint(opt, i);
		if (v < 1 || v > 65535) {
			cfg_error(cfg, "option '%s': port %ld is out of range "
				  "1..65535", cfg_opt_name(opt), v);
			return -1;
		}
	}
	return 0;
}

/*
 * Checks every value of a string option with ok(); the first bad one is
 * reported as "option 'NAME': <before>'VALUE'<after>".
 */
static int
validate_each(cfg_t *cfg, cfg_opt_t *opt, int (*ok)(const char *),
	      const char *before, const char *after)
{
	unsigned int i;
	const char *s;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		s = cfg_opt_getnstr(opt, i);
		if (s == NULL || !ok(s)) {
			cfg_error(cfg, "option '%s': %s'%s'%s",
				  cfg_opt_name(opt), before,
				  s != NULL ? s : "", after);
			return -1;
		}
	}
	return 0;
}

static int
duration_ok(const char *s)
{
	int64_t ms;

	return cfgu_parse_duration(s, &ms) == 0;
}

static int
size_ok(const char *s)
{
	uint64_t b;

	return cfgu_parse_size(s, &b) == 0;
}

static int
abs_path_ok(const char *s)
{
	return s[0] == '/';
}

int
cfgu_validate_duration(cfg_t *cfg, cfg_opt_t *opt)
{
	return validate_each(cfg, opt, duration_ok, "invalid duration ",
	    " (e.g. 250ms, 30s, 5m, 2h, 1d; at most 30d)");
}

int
cfgu_validate_size(cfg_t *cfg, cfg_opt_t *opt)
{
	return validate_each(cfg, opt, size_ok, "invalid size ",
	    " (e.g. 512, 64k, 1M, 1G; at most 1024G)");
}

int
cfgu_validate_path(cfg_t *cfg, cfg_opt_t *opt)
{
	return validate_each(cfg, opt, abs_path_ok, "path ",
	    " is not an absolute path");
}

int
cfgu_validate_positive(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned int i;
	long v;

	for (i = 0; i < cfg_opt_size(opt); i++) {
		v = cfg_opt_getnint(opt, i);
		if (v <= 0) {
			cfg_error(cfg, "option '%s': %ld is not a positive "
				  "number", cfg_opt_name(opt), v);
			return -1;
		}
	}
	return 0;
}

int64_t
cfgu_get_duration(cfg_t *cfg, const char *name)
{
	const char *s = cfg_getstr(cfg, name);
	int64_t ms;

	if (s == NULL)
		return 0;
	if (cfgu_parse_duration(s, &ms) != 0) {
		/* validators never see defaults: a bad one is a schema bug */
		log_err("option '%s': invalid duration '%s'; using 0", name, s);
		return 0;
	}
	return ms;
}

uint64_t
cfgu_get_size(cfg_t *cfg, const char *name)
{
	const char *s = cfg_getstr(cfg, name);
	uint64_t b;

	if (s == NULL)
		return 0;
	if (cfgu_parse_size(s, &b) != 0) {
		log_err("option '%s': invalid size '%s'; using 0", name, s);
		return 0;
	}
	return b;
}

int
cfgu_check_key_perms(const char *path, char *err, size_t errlen)
{
	return cfgu_check_key_perms_for(path, (uid_t)-1, err, errlen);
}

int
cfgu_check_key_perms_for(const char *path, uid_t run_uid, char *err,
			 size_t errlen)
{
	struct stat lst, st;
	uid_t me = geteuid();
	unsigned int mode;
	const char *what;

	if (lstat(path, &lst) < 0 || stat(path, &st) < 0) {
		snprintf(err, errlen, "key %s: %s", path, strerror(errno));
		return RT_ERR_SYS;
	}
	/* A symlink's own mode means nothing, but whoever owns it chooses
	 * which file we read. */
	if (S_ISLNK(lst.st_mode) && lst.st_uid != me && lst.st_uid != 0 &&
	    lst.st_uid != run_uid) {
		snprintf(err, errlen, "key %s: symbolic link owned by uid %u, "
			 "neither root nor uid %u running this program", path,
			 (unsigned int)lst.st_uid,
			 (unsigned int)(run_uid != (uid_t)-1 ? run_uid : me));
		return RT_ERR_PERM;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key %s: not a regular file", path);
		return RT_ERR_PERM;
	}
	mode = (unsigned int)st.st_mode & 07777;
	if (mode & 077) {
		if (mode & 044)
			what = "is readable by group or others";
		else if (mode & 022)
			what = "is writable by group or others";
		else
			what = "gives group or others access";
		snprintf(err, errlen, "key %s: mode %04o %s; chmod 600 it",
			 path, mode, what);
		return RT_ERR_PERM;
	}
	/* Root could replace any key anyway; anyone else could not. */
	if (st.st_uid != me && st.st_uid != 0 && st.st_uid != run_uid) {
		snprintf(err, errlen, "key %s: owned by uid %u, neither root "
			 "nor uid %u running this program", path,
			 (unsigned int)st.st_uid,
			 (unsigned int)(run_uid != (uid_t)-1 ? run_uid : me));
		return RT_ERR_PERM;
	}
	return 0;
}
