/* coord_reconcile.c -- this host's agent against the cluster state: copies of cluster VMs that
 * the state places on another host (left behind by a failover or a crash) are removed. */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	  "reconcile"
#define PERIOD_MS 5000

/*
 * Every PERIOD_MS, while this member holds the quorate cluster state: a VM of the local agent
 * that the state knows, places on another host and is not migrating (to or from here) is a
 * stale copy. Stopped or crashed: deleted from the agent (its definition lives in the
 * cluster state). Running: never touched (that would need a fence, not a guess) but
 * reported as an error every period, as it should not exist. Copies on the VM's own host
 * (a stopped VM among them) and of deleted VMs are coord_admin.c's business.
 */
void gw_coord_reconcile_tick(struct gw_coord *c)
{
	unsigned long long now = gw_now_mono_ms();
	if (now - c->reconcile_last_ms < PERIOD_MS || !c->quorate || !c->synced || c->waiting)
		return;
	c->reconcile_last_ms = now;
	GwVmList *l;
	if (gw_coord_agent_list(c, &l))
		return;
	for (size_t i = 0; i < l->n_vms; i++) {
		const GwVmInfo *a = l->vms[i];
		const struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, a->name);
		char err[512];
		if (!vm || strcmp(vm->host, c->cfg.node) == 0 || vm->migrate_to[0])
			continue; /* not a cluster VM, ours, or moving */
		if (strcmp(a->state, "stopped") == 0 || strcmp(a->state, "crashed") == 0 ||
		    strcmp(a->state, "defined") == 0) {
			if (gw_coord_agent_delete(c, a->name, err, sizeof(err)))
				gw_warn(SUBSYS,
					"vm '%s': stale %s copy (the cluster places it on %s): "
					"delete failed: %s",
					a->name, a->state, vm->host, err);
			else
				gw_info(SUBSYS,
					"vm '%s': stale %s copy deleted (the cluster places it "
					"on %s)",
					a->name, a->state, vm->host);
		} else if (strcmp(a->state, "running") == 0 || strcmp(a->state, "paused") == 0) {
			gw_err(SUBSYS,
			       "vm '%s' is %s here but the cluster places it on %s (%s): "
			       "not touched; check how it was started",
			       a->name, a->state, vm->host, gw_coord_vm_state_name(vm->state));
		}
	}
	protobuf_c_message_free_unpacked(&l->base, NULL);
}
