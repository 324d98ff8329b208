/* coord_tick.c -- the coordinator's periodic work: an ordered table of steps that the
 * subsystems register at start (coord_main.c), run once per event-loop turn. A step marked
 * GW_COORD_STEP_SYNCED runs only while this member holds the cluster state (CPG up, state
 * received, not waiting for a snapshot). The tick calls nothing but the registered steps, so
 * no subsystem depends on another through it. */
#include "coord.h"

#include <stdio.h>

#include "gw_log.h"

int gw_coord_tick_register(struct gw_coord *c, const char *name, unsigned flags,
			   gw_coord_step_fn fn)
{
	if (c->n_steps >= GW_COORD_MAX_STEPS) {
		gw_err("tick", "step %s: table full (%d steps)", name, GW_COORD_MAX_STEPS);
		return -1;
	}
	c->steps[c->n_steps++] = (struct gw_coord_step){.name = name, .flags = flags, .fn = fn};
	return 0;
}

void gw_coord_tick(struct gw_coord *c)
{
	for (size_t i = 0; i < c->n_steps; i++) {
		const struct gw_coord_step *s = &c->steps[i];
		if ((s->flags & GW_COORD_STEP_SYNCED) && (!c->cpg_ok || !c->synced || c->waiting))
			continue;
		s->fn(c);
	}
}
