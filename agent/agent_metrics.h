/* agent_metrics.h -- the agent's Prometheus metrics: VMs by state, each VM's shape, and the
 * migrations that ended since the agent started (served by common/gw_metrics). */
#ifndef GW_AGENT_METRICS_H
#define GW_AGENT_METRICS_H

#include "agent.h"
#include "gw_metrics.h"

/* After start-up: learn the last migration of the VMs already here (not counted). */
void gw_agent_metrics_init(struct gw_agent *ag);
/* Every loop turn: notice migrations that ended (counted, last result kept per VM). */
void gw_agent_metrics_tick(struct gw_agent *ag);
/* gw_metrics_render_fn; ctx is the struct gw_agent. */
void gw_agent_metrics_render(void *ctx, struct gw_mtext *t);

#endif
