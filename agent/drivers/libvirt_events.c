/* libvirt_events.c -- what libvirt tells the agent, applied to the VM records: lifecycle
 * events from the driver's pipe (a crash or an unexpected stop marks the VM at once, so the
 * coordinator's HA acts on it), migration milestones for the downtime figure, and the
 * periodic tick that reconnects to libvirtd and then refreshes every record. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gw_log.h"
#include "libvirt_int.h"
#include "vmtable.h"

#define SUBSYS "libvirt"

static void apply_event(struct gw_agent *ag, struct gw_lv *lv, const struct gw_lv_event *ev)
{
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, ev->name);
	struct gw_lv_mig *m = gw_lv_mig_find(lv, ev->name);
	if (m && ev->event == VIR_DOMAIN_EVENT_SUSPENDED &&
	    (ev->detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ||
	     ev->detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY))
		m->suspended_ms = ev->mono_ms;
	if (m && ev->event == VIR_DOMAIN_EVENT_STOPPED &&
	    ev->detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
		m->stopped_ms = ev->mono_ms;
	if (!vm || strcmp(vm->driver, "libvirt"))
		return; /* a domain Godwit does not run (or a micro-VM's namesake) */
	gw_debug(SUBSYS, "vm '%s': event %d/%d", vm->name, ev->event, ev->detail);
	if (vm->state == GW_VM_MIGRATING) {
		/* the migration settles it (gw_lv_poll: an arriving domain that libvirt stopped
		 * again is gone, and the source then says the migration was aborted) */
		if (vm->mig_incoming && ev->event == VIR_DOMAIN_EVENT_STOPPED)
			vm->mig_next_check_ms = 0; /* ask the source now */
		return;
	}
	if (ev->event == VIR_DOMAIN_EVENT_UNDEFINED) {
		gw_warn(SUBSYS,
			"vm '%s': its libvirt domain was undefined behind Godwit's back; "
			"it will be defined again from the kept XML at the next start",
			vm->name);
		return;
	}
	gw_lv_attach(ag, vm); /* the domain's state as libvirt has it now */
}

void gw_lv_on_event(struct gw_agent *ag, struct gw_driver *d)
{
	struct gw_lv *lv = d->priv;
	struct gw_lv_event ev;
	ssize_t n;
	while ((n = read(lv->pipe_rd, &ev, sizeof(ev))) == (ssize_t)sizeof(ev)) {
		ev.name[sizeof(ev.name) - 1] = 0;
		if (ev.event == GW_LV_EV_CLOSED)
			gw_lv_drop(lv, "libvirtd closed the connection");
		else if (ev.event == GW_LV_EV_MIG_DONE)
			continue; /* the loop's poll of migrating VMs, right after, settles it */
		else if (lv->conn)
			apply_event(ag, lv, &ev);
	}
}

void gw_lv_tick(struct gw_agent *ag, struct gw_driver *d)
{
	struct gw_lv *lv = d->priv;
	if (!ag->cfg.libvirt_enabled)
		return;
	gw_lv_reconnect(lv);
	if (!lv->conn || !lv->reattach)
		return;
	lv->reattach = false;
	for (size_t i = 0; i < ag->vms.count; i++) {
		struct gw_vm *vm = ag->vms.vms[i];
		if (!strcmp(vm->driver, "libvirt") && vm->state != GW_VM_MIGRATING)
			gw_lv_attach(ag, vm);
	}
}
