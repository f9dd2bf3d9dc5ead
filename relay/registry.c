/*
 * registry.c - index of connected agents by id (registry.h).
 *
 * A list is enough: lookups happen once per channel open and the number of
 * agents per relay is in the thousands at most.
 */
#include "config.h"

#include <string.h>

#include "registry.h"

struct agent *
registry_find(struct relay *r, const char *id)
{
	struct agent *a;

	TAILQ_FOREACH(a, &r->registry, reg_link) {
		if (strcmp(a->id, id) == 0)
			return a;
	}
	return NULL;
}

void
registry_add(struct relay *r, struct agent *a, struct agent **old)
{
	struct agent *prev;

	*old = NULL;
	if ((prev = registry_find(r, a->id)) != NULL && prev != a) {
		registry_remove(r, prev);
		*old = prev;
	}
	if (!a->registered) {
		TAILQ_INSERT_TAIL(&r->registry, a, reg_link);
		a->registered = 1;
	}
}

void
registry_remove(struct relay *r, struct agent *a)
{
	if (!a->registered)
		return;
	TAILQ_REMOVE(&r->registry, a, reg_link);
	a->registered = 0;
}

unsigned int
registry_count(const struct relay *r)
{
	const struct agent *a;
	unsigned int n = 0;

	TAILQ_FOREACH(a, &r->registry, reg_link)
		n++;
	return n;
}

const struct agent_svc *
registry_service(const struct agent *a, const char *name, int port)
{
	size_t i;

	for (i = 0; i < a->nsvc; i++) {
		if (name != NULL && strcmp(a->svc[i].name, name) == 0)
			return &a->svc[i];
		if (name == NULL && a->svc[i].port == port)
			return &a->svc[i];
	}
	return NULL;
}
