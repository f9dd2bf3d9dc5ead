/*
 * consent.h - the local consent gate.
 *
 * An optional condition, checked every consent_interval: a file that must
 * exist, or a command (run with /bin/sh -c, stdin/stdout/stderr on
 * /dev/null) that must exit 0 within CONSENT_CMD_TIMEOUT_MS (or the
 * interval, if shorter); a command still running then is killed and
 * counts as "closed". The command runs in a child process the loop reaps
 * through SIGCHLD, so the loop never waits for it.
 *
 * The gate starts closed until the first check says otherwise (the file
 * check is done at once). Every change is logged and reported through
 * agent_consent_changed(). With mode off the gate is always open.
 */
#ifndef RT_CONSENT_H
#define RT_CONSENT_H

struct agent;
struct consent;

#define CONSENT_CMD_TIMEOUT_MS 10000

/* Creates the gate (not checking yet). Returns 0 and *out, or an error. */
int consent_new(struct agent *a, struct consent **out);

/* Kills a running check command, frees. NULL is a no-op. */
void consent_free(struct consent *c);

/* (Re)starts checking with the agent's current config; called at start
 * and after a reload changed the consent settings. */
void consent_start(struct consent *c);

/* 1 if the gate is open now (always 1 with mode off). */
int consent_open(const struct consent *c);

/* Called by the agent's SIGCHLD handler. */
void consent_sigchld(struct consent *c);

#endif
