/* coord_state_admin.c -- applying VM_ADMIN: an operator stops, starts or deletes a cluster VM
 * (deterministic, part of the replicated state; see the VM state table in coord_state.h). */
#include "coord_state.h"

#include <stdio.h>
#include <string.h>

#include "cluster.pb-c.h"

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

static void admin_stop(struct gw_coord_state *st, struct gw_coord_vm *vm, uint64_t t)
{
	if (vm->migrate_to[0]) {
		gw_coord_event(st, t, "vm-stop-refused", vm->host, vm->name,
			       "migrating to %s: stop it after the migration", vm->migrate_to);
		return;
	}
	if (vm->state != GW_CVM_STARTING && vm->state != GW_CVM_RUNNING &&
	    vm->state != GW_CVM_PENDING && vm->state != GW_CVM_UNPLACED) {
		gw_coord_event(st, t, "vm-stop-refused", vm->host, vm->name, "VM is %s",
			       gw_coord_vm_state_name(vm->state));
		return;
	}
	enum gw_coord_vm_state was = vm->state;
	vm->state = GW_CVM_STOPPED;
	vm->restarts = 0; /* a pending restart is dropped: failover leaves it stopped */
	COPY(vm->reason, "stopped by an operator");
	gw_coord_event(st, t, "vm-stopped", vm->host, vm->name, "stopped by an operator (was %s)",
		       gw_coord_vm_state_name(was));
}

static void admin_start(struct gw_coord_state *st, struct gw_coord_vm *vm, uint64_t t)
{
	char why[256] = "", target[GW_COORD_NAME_MAX];
	if (vm->state != GW_CVM_STOPPED && vm->state != GW_CVM_FAILED && vm->state != GW_CVM_LOST) {
		gw_coord_event(st, t, "vm-start-refused", vm->host, vm->name, "VM is %s",
			       gw_coord_vm_state_name(vm->state));
		return;
	}
	/* its own host first: gw_coord_fits refuses "its own host", so ask as if unplaced */
	struct gw_coord_vm probe = *vm;
	probe.host[0] = 0;
	if (gw_coord_fits(st, &probe, vm->host, why, sizeof(why)) == 0) {
		snprintf(target, sizeof(target), "%s", vm->host);
	} else if (vm->importing) { /* no definition yet: only its own host can adopt it */
		gw_coord_event(st, t, "vm-start-refused", vm->host, vm->name,
			       "import not finished and %s cannot take it: %s", vm->host, why);
		return;
	} else if (gw_coord_place(st, vm->name, vm->memory_mib, vm->group, vm->driver, NULL, target,
				  sizeof(target))) {
		gw_coord_event(st, t, "vm-start-refused", vm->host, vm->name,
			       "%s; no other up host has %u MiB free%s%s", why, vm->memory_mib,
			       vm->group[0] ? " outside anti-affinity group " : "", vm->group);
		return;
	}
	enum gw_coord_vm_state was = vm->state;
	char from[GW_COORD_NAME_MAX];
	COPY(from, vm->host);
	snprintf(vm->host, sizeof(vm->host), "%s", target);
	vm->state = GW_CVM_STARTING;
	vm->restarts = 0;
	vm->reason[0] = 0;
	if (strcmp(from, target) == 0)
		gw_coord_event(st, t, "vm-start", target, vm->name, "starting on %s (was %s)",
			       target, gw_coord_vm_state_name(was));
	else
		gw_coord_event(st, t, "vm-start", target, vm->name,
			       "starting on %s (was %s on %s: %s)", target,
			       gw_coord_vm_state_name(was), from, why);
}

static void admin_delete(struct gw_coord_state *st, struct gw_coord_vm *vm, uint64_t t)
{
	if (vm->state != GW_CVM_STOPPED && vm->state != GW_CVM_FAILED && vm->state != GW_CVM_LOST &&
	    vm->state != GW_CVM_UNPLACED) {
		gw_coord_event(st, t, "vm-delete-refused", vm->host, vm->name,
			       "VM is %s: stop it first", gw_coord_vm_state_name(vm->state));
		return;
	}
	if (st->n_deleted == GW_COORD_MAX_DELETED) { /* the oldest tombstone goes */
		memmove(&st->deleted[0], &st->deleted[1],
			(GW_COORD_MAX_DELETED - 1) * sizeof(st->deleted[0]));
		st->n_deleted--;
	}
	struct gw_coord_deleted *d = &st->deleted[st->n_deleted++];
	COPY(d->name, vm->name);
	COPY(d->host, vm->host);
	char name[GW_COORD_NAME_MAX], host[GW_COORD_NAME_MAX];
	COPY(name, vm->name);
	COPY(host, vm->host);
	enum gw_coord_vm_state was = vm->state;
	gw_coord_vm_remove(st, (size_t)(vm - st->vms));
	gw_coord_event(st, t, "vm-deleted", host, name, "deleted from the cluster (was %s)",
		       gw_coord_vm_state_name(was));
}

void gw_coord_apply_vm_admin(struct gw_coord_state *st, const struct ProtobufCMessage *m,
			     uint32_t from)
{
	const GwClVmAdmin *a = (const GwClVmAdmin *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, a->name);
	(void)from;
	if (!vm) {
		gw_coord_event(st, a->time_ms, "vm-admin-refused", NULL, a->name,
			       "%s: no such cluster VM", a->action);
		return;
	}
	if (strcmp(a->action, "stop") == 0)
		admin_stop(st, vm, a->time_ms);
	else if (strcmp(a->action, "start") == 0)
		admin_start(st, vm, a->time_ms);
	else if (strcmp(a->action, "delete") == 0)
		admin_delete(st, vm, a->time_ms);
	else
		gw_coord_event(st, a->time_ms, "vm-admin-refused", vm->host, vm->name,
			       "unknown action '%.32s'", a->action);
}
