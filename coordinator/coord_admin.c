/* coord_admin.c -- this host's agent follows the operator's VM_ADMIN: cluster VMs the state has
 * stopped on this host are stopped by the agent, copies of deleted VMs are deleted. */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	  "admin"
#define PERIOD_MS 1000 /* look again this often while there is something to follow */

/* Stopped VMs placed here + tombstones of VMs deleted here: 0 = nothing to follow. */
static size_t to_follow(struct gw_coord *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->st.n_vms; i++)
		n += c->st.vms[i].state == GW_CVM_STOPPED &&
		     strcmp(c->st.vms[i].host, c->cfg.node) == 0;
	for (size_t i = 0; i < c->st.n_deleted; i++)
		n += strcmp(c->st.deleted[i].host, c->cfg.node) == 0;
	return n;
}

static bool deleted_here(struct gw_coord *c, const char *name)
{
	for (size_t i = 0; i < c->st.n_deleted; i++)
		if (strcmp(c->st.deleted[i].name, name) == 0 &&
		    strcmp(c->st.deleted[i].host, c->cfg.node) == 0)
			return true;
	return false;
}

static bool active(const char *agent_state)
{
	return strcmp(agent_state, "running") == 0 || strcmp(agent_state, "paused") == 0;
}

/*
 * Every loop turn, while this member holds the quorate state: when the number of stopped
 * and deleted VMs of this host changed, or PERIOD_MS passed while there are some, list the
 * agent's VMs once. A VM the state has stopped here that the agent runs is stopped; a VM
 * deleted here that the state no longer holds is stopped if need be, then deleted.
 */
void gw_coord_admin_tick(struct gw_coord *c)
{
	if (!c->quorate || !c->synced || c->waiting)
		return;
	size_t n = to_follow(c);
	unsigned long long now = gw_now_mono_ms();
	if (n == 0 || (n == c->admin_followed && now - c->admin_last_ms < PERIOD_MS)) {
		c->admin_followed = n;
		return;
	}
	c->admin_followed = n;
	c->admin_last_ms = now;
	GwVmList *l;
	if (gw_coord_agent_list(c, &l))
		return;
	for (size_t i = 0; i < l->n_vms; i++) {
		const GwVmInfo *a = l->vms[i];
		const struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, a->name);
		char err[512] = "";
		if (vm && vm->state == GW_CVM_STOPPED && strcmp(vm->host, c->cfg.node) == 0 &&
		    active(a->state)) {
			if (gw_coord_agent_stop(c, a->name, err, sizeof(err)))
				gw_warn(SUBSYS, "vm '%s': stop (operator) failed: %s (retrying)",
					a->name, err);
			else
				gw_info(SUBSYS, "vm '%s': stopped by the agent (operator stop)",
					a->name);
		} else if (!vm && deleted_here(c, a->name)) {
			if (active(a->state) && gw_coord_agent_stop(c, a->name, err, sizeof(err))) {
				gw_warn(SUBSYS, "vm '%s': deleted, but its stop failed: %s",
					a->name, err);
				continue;
			}
			if (gw_coord_agent_delete(c, a->name, err, sizeof(err)))
				gw_warn(SUBSYS,
					"vm '%s': deleted from the cluster, agent delete "
					"failed: %s (retrying)",
					a->name, err);
			else
				gw_info(SUBSYS, "vm '%s': deleted from the cluster and the agent",
					a->name);
		}
	}
	protobuf_c_message_free_unpacked(&l->base, NULL);
}
