/*
 * mqtt_cmd.h - authenticated commands on <prefix>/<agent>/cmd: a strict,
 * bounded JSON parser for them (pure), their HMAC, the freshness window
 * and the replay cache.
 *
 * A command is one JSON object of at most MC_MAX_PAYLOAD bytes, members in
 * any order, each exactly once, no others:
 *   {"cmd":"tunnel-open"|"tunnel-close"|"telemetry-now"|"ping",
 *    "ts":<unix seconds, a non-negative integer>,
 *    "nonce":"<16..64 lowercase hex>",
 *    "args":{...}            (optional, any JSON object, depth <= 8)
 *    "hmac":"<64 hex>"}
 *
 * The HMAC is not over the payload (re-serialising JSON is fragile) but
 * over a canonical string built from the parsed fields:
 *   "revtun-cmd-v1\n" agent "\n" cmd "\n" ts "\n" nonce "\n" args
 * where ts is in decimal without leading zeros and args is the exact bytes
 * of the "args" value as it appears in the payload (from its '{' to its
 * '}'), or nothing when absent. The sender serialises args once and pastes
 * those bytes in: no canonical JSON is needed, whitespace around the
 * members does not matter, and the agent id binds a command to one agent
 * even when several share a key. Example (key = hex file content):
 *   printf 'revtun-cmd-v1\ngw-17\nping\n1700000000\n%s\n' \
 *     00112233445566778899aabbccddeeff
 *   | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(cat cmd.key)
 *
 * Acceptance, checked in this order, each refusal with its own reason:
 * size, syntax and fields (mc_parse), HMAC (constant time), |now - ts| <=
 * window (wall clock, default 60 s), ts later than every nonce the cache
 * has forgotten, nonce not in the cache, room in the cache. The cache
 * keeps each accepted nonce until its ts leaves the window (then a replay
 * is refused as stale anyway) and remembers the latest ts it forgot, so a
 * wall clock stepped back cannot revive a forgotten nonce. When all
 * MC_CACHE_DEFAULT entries are still inside the window, new commands are
 * refused ("replay cache full"): refusing is safe, forgetting is not.
 */
#ifndef RT_MQTT_CMD_H
#define RT_MQTT_CMD_H

#include <stddef.h>
#include <stdint.h>

#define MC_MAX_PAYLOAD		4096
#define MC_MAX_DEPTH		8	/* nesting levels, args included */
#define MC_NONCE_MIN		16
#define MC_NONCE_MAX		64
#define MC_WINDOW_DEFAULT	60	/* seconds */
#define MC_CACHE_DEFAULT	1024	/* nonces */
#define MC_KEY_MIN		32	/* bytes of HMAC key */
#define MC_KEY_MAX		64

enum mc_kind {
	MC_TUNNEL_OPEN = 1,
	MC_TUNNEL_CLOSE,
	MC_TELEMETRY_NOW,
	MC_PING,
};

/* A parsed command. args points into the payload given to mc_parse (NULL
 * when absent) and is valid only as long as that payload. */
struct mc_msg {
	enum mc_kind	 kind;
	const char	*cmd;			/* static name of kind */
	int64_t		 ts;
	char		 nonce[MC_NONCE_MAX + 1];
	uint8_t		 hmac[32];
	const uint8_t	*args;
	size_t		 args_len;
};

/*
 * Parses len bytes as a command (header comment) without checking the
 * HMAC. Pure. Returns 0, RT_ERR_TOOBIG (len > MC_MAX_PAYLOAD) or
 * RT_ERR_PROTO; *why is always set to a static string ("ok" on success,
 * else e.g. "malformed JSON", "missing field nonce", "unknown command").
 * *m is zeroed first.
 */
int mc_parse(const uint8_t *p, size_t len, struct mc_msg *m,
    const char **why);

/* Writes the canonical string of m for agent into buf (NUL-terminated).
 * Returns 0 and *len, or RT_ERR_FULL. */
int mc_canonical(const char *agent, const struct mc_msg *m, char *buf,
    size_t cap, size_t *len);

/* Reads a string / integer member of m's args object (the first with that
 * name). Returns 0, RT_ERR_NOTFOUND (absent or another type) or
 * RT_ERR_FULL (string does not fit in cap - 1 bytes, or contains NUL). */
int mc_arg_str(const struct mc_msg *m, const char *name, char *buf,
    size_t cap);
int mc_arg_int(const struct mc_msg *m, const char *name, int64_t *v);

struct mc_verifier;

/*
 * Creates a verifier for agent id agent with an HMAC key of keylen bytes
 * (MC_KEY_MIN..MC_KEY_MAX, copied). window_s 1..86400 (0: default),
 * cache_max 1..65536 nonces (0: default). Returns 0 and *out,
 * RT_ERR_INVAL or RT_ERR_NOMEM.
 */
int mc_verifier_new(const char *agent, const uint8_t *key, size_t keylen,
    int64_t window_s, size_t cache_max, struct mc_verifier **out);

/* Wipes the key and frees; NULL is a no-op. */
void mc_verifier_free(struct mc_verifier *v);

/*
 * Accepts or refuses one payload at wall-clock time now_s (time(NULL)).
 * On acceptance returns 0, fills *m and records the nonce. Otherwise
 * returns RT_ERR_TOOBIG or RT_ERR_PROTO (as mc_parse) or RT_ERR_REFUSED
 * ("bad hmac", "no valid clock" (now_s < 0), "stale timestamp",
 * "timestamp in the future", "timestamp before forgotten nonces",
 * "replayed nonce") or RT_ERR_LIMIT ("replay cache full"). *why is
 * always set and never contains the key or the HMAC.
 */
int mc_verify(struct mc_verifier *v, const uint8_t *p, size_t len,
    int64_t now_s, struct mc_msg *m, const char **why);

/* Nonces held now (for stats and tests). */
size_t mc_verifier_cached(const struct mc_verifier *v);

/*
 * Builds a signed command for agent into buf (NUL-terminated) in the
 * order cmd, ts, nonce, [args,] hmac; args is NULL or a JSON object the
 * caller serialised. For tests, tools and operators' scripts. Returns 0
 * and *len, RT_ERR_INVAL (bad name, nonce, key) or RT_ERR_FULL.
 */
int mc_sign(const char *agent, const uint8_t *key, size_t keylen,
    const char *cmd, int64_t ts, const char *nonce, const char *args,
    char *buf, size_t cap, size_t *len);

/*
 * Loads an HMAC key file: its permissions are checked first
 * (cfgu_check_key_perms), then it must hold 2*MC_KEY_MIN..2*MC_KEY_MAX
 * hex digits and an optional final newline (`openssl rand -hex 32`).
 * Fills key (cap >= MC_KEY_MAX) and *len. Returns 0, RT_ERR_PERM,
 * RT_ERR_SYS or RT_ERR_INVAL with err naming the file, never the key.
 */
int mc_key_load(const char *path, uint8_t *key, size_t cap, size_t *len,
    char *err, size_t errlen);

/*
 * The subscription probe (mqttlink.c): the agent publishes
 *   {"probe":"<MC_PROBE_TOKEN_LEN lowercase hex>"}
 * on its own cmd topic right after the broker granted the subscription,
 * and expects it back. A probe is never a command: it is recognised
 * before any command check and ignored (whoever may publish on cmd can
 * send one; that only tells the agent its subscription works).
 */
#define MC_PROBE_TOKEN_LEN	32

/* Writes the probe payload for token (MC_PROBE_TOKEN_LEN lowercase hex)
 * into buf (NUL-terminated). Returns 0 and *len, RT_ERR_INVAL (bad token)
 * or RT_ERR_FULL. */
int mc_probe_build(const char *token, char *buf, size_t cap, size_t *len);

/* Pure: 0 and token (NUL-terminated, MC_PROBE_TOKEN_LEN + 1 bytes) when
 * p is exactly a probe payload, byte for byte as mc_probe_build writes
 * it; RT_ERR_NOTFOUND otherwise (then it is handled as a command). */
int mc_probe_parse(const uint8_t *p, size_t len,
    char token[MC_PROBE_TOKEN_LEN + 1]);

#endif
