/*
 * registry.h - the connected agents, by id.
 *
 * An agent is registered once its TLS handshake produced an allowed id; it
 * stays until its connection dies or a newer connection with the same id
 * replaces it. What the registry answers (connected since, source, cert
 * fingerprint, services, version) lives in struct agent; the registry only
 * indexes it. At most one registered agent per id.
 */
#ifndef RT_REGISTRY_H
#define RT_REGISTRY_H

#include "relay.h"

/* The registered agent with this id, or NULL. */
struct agent *registry_find(struct relay *r, const char *id);

/*
 * Registers a (a->id set). If another connection holds the id it is
 * returned through *old (the caller tears it down); the new one takes the
 * id at once. Never fails.
 */
void registry_add(struct relay *r, struct agent *a, struct agent **old);

/* Removes a if registered; no-op otherwise. */
void registry_remove(struct relay *r, struct agent *a);

/* Number of registered agents. */
unsigned int registry_count(const struct relay *r);

/* The service of a with this name or this port (name NULL), or NULL. */
const struct agent_svc *registry_service(const struct agent *a,
					 const char *name, int port);

#endif
