/* coord_watch.c -- every member watches the cluster VMs its own agent runs: one that the
 * cluster state has running here and the agent reports crashed (a guest crash, a QEMU or VMM
 * killed behind Godwit's back) is reported as VM_STATE "crashed"; the state then restarts it
 * if it is HA (coord_state.c), and the acting member places it (coord_ha.c). */
#include "coord.h"

#include <stdio.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	  "watch"
#define PERIOD_MS 1000

/* Anything of ours to watch: a cluster VM running on this host. */
static bool any_running_here(const struct gw_coord *c)
{
	for (size_t i = 0; i < c->st.n_vms; i++)
		if (c->st.vms[i].state == GW_CVM_RUNNING && !strcmp(c->st.vms[i].host, c->cfg.node))
			return true;
	return false;
}

void gw_coord_watch_step(struct gw_coord *c)
{
	unsigned long long now = gw_now_mono_ms();
	if (!c->quorate || now - c->watch_last_ms < PERIOD_MS || !any_running_here(c))
		return;
	c->watch_last_ms = now;
	GwVmList *l;
	if (gw_coord_agent_list(c, &l))
		return;
	for (size_t i = 0; i < l->n_vms; i++) {
		const GwVmInfo *a = l->vms[i];
		const struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, a->name);
		if (!vm || vm->state != GW_CVM_RUNNING || strcmp(vm->host, c->cfg.node) ||
		    vm->migrate_to[0] || strcmp(a->state, "crashed"))
			continue;
		GwClVmStateMsg m = GW_CL_VM_STATE_MSG__INIT;
		char reason[300];
		snprintf(reason, sizeof(reason), "crashed on %s: %s", c->cfg.node,
			 a->reason ? a->reason : "no reason given");
		m.name = a->name;
		m.host = c->cfg.node;
		m.state = "crashed";
		m.reason = reason;
		m.time_ms = gw_now_wall_ms();
		gw_warn(SUBSYS, "vm '%s' %s", a->name, reason);
		gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_STATE, &m);
	}
	protobuf_c_message_free_unpacked(&l->base, NULL);
}
