/* coord_state.c -- the one function that applies a CPG message to the replicated cluster
 * state, with one handler per message type (tables: coord_table.c; placement: coord_place.c). */
#include "coord_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "state"

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

/* ---- message handlers: one per CPG message type ---- */

typedef void (*apply_fn)(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from);

static void a_hello(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClHello *h = (const GwClHello *)m;
	struct gw_coord_host *byname = gw_coord_host_by_name(st, h->name);
	struct gw_coord_host *host = gw_coord_host_by_nodeid(st, from);
	if (byname && byname != host) { /* a name moved to another node id: keep one entry */
		size_t i = (size_t)(byname - st->hosts);
		memmove(&st->hosts[i], &st->hosts[i + 1], (st->n_hosts - i - 1) * sizeof(*byname));
		st->n_hosts--;
		host = gw_coord_host_by_nodeid(st, from);
	}
	bool is_new = !host;
	if (!host && !(host = gw_coord_host_insert(st, from))) {
		gw_coord_event(st, h->time_ms, "host-ignored", h->name, NULL,
			       "too many hosts (max %d)", GW_COORD_MAX_HOSTS);
		return;
	}
	enum gw_coord_host_state was = host->state;
	COPY(host->name, h->name);
	host->mem_total_mib = h->mem_total_mib;
	host->mem_avail_mib = h->mem_avail_mib;
	COPY(host->agent_listen, h->agent_listen);
	COPY(host->vm_backend, h->vm_backend);
	host->watchdog_s = h->has_watchdog_s ? h->watchdog_s : 0;
	host->offline = false;
	host->cpus_milli = h->cpus_milli ? h->cpus_milli : host->cpus_milli;
	host->link_mbps = h->link_mbps;
	host->max_in = h->max_in;
	host->max_out = h->max_out;
	host->n_drivers = 0;
	for (size_t i = 0; i < h->n_drivers && host->n_drivers < GW_COORD_MAX_DRIVERS; i++) {
		struct gw_coord_driver *d = &host->drivers[host->n_drivers++];
		COPY(d->name, h->drivers[i]->name);
		d->available = h->drivers[i]->available;
		COPY(d->status, h->drivers[i]->status);
	}
	if (is_new || (was != GW_HOST_UP && was != GW_HOST_MAINTENANCE)) {
		host->state = host->maintenance && !is_new ? GW_HOST_MAINTENANCE : GW_HOST_UP;
		host->fence_attempts = 0;
		gw_coord_event(st, h->time_ms, "host-up", host->name, NULL, "node id %u joined%s%s",
			       from, is_new ? "" : ", was ",
			       is_new ? "" : gw_coord_host_state_name(was));
		/* a new host may make room for VMs nobody could take */
		for (size_t i = 0; i < st->n_vms; i++)
			if (st->vms[i].state == GW_CVM_UNPLACED)
				st->vms[i].state = GW_CVM_PENDING;
	}
}

static void a_vm_define(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClVmDefine *d = (const GwClVmDefine *)m;
	const GwClVm *v = d->vm;
	if (gw_coord_vm_find(st, v->name)) {
		gw_coord_event(st, d->time_ms, "vm-define-rejected", v->host, v->name,
			       "already defined");
		return;
	}
	bool libvirt = v->driver && strcmp(v->driver, "libvirt") == 0;
	bool importing = libvirt && v->has_importing && v->importing;
	const char *why = NULL;
	if (v->driver && *v->driver && !libvirt && strcmp(v->driver, "microvm") != 0)
		why = "unknown driver";
	else if (v->xml && strlen(v->xml) > GW_COORD_XML_MAX)
		why = "domain XML larger than 64 KiB";
	else if (libvirt && !importing && !(v->xml && *v->xml))
		why = "a libvirt VM needs its domain XML";
	if (why) {
		gw_coord_event(st, d->time_ms, "vm-define-rejected", v->host, v->name, "%s", why);
		return;
	}
	struct gw_coord_vm *vm = gw_coord_vm_insert(st, v->name);
	if (!vm || gw_coord_vm_set_xml(vm, libvirt ? v->xml : NULL)) {
		if (vm)
			gw_coord_vm_remove(st, (size_t)(vm - st->vms));
		gw_coord_event(st, d->time_ms, "vm-define-rejected", v->host, v->name,
			       "out of memory");
		return;
	}
	COPY(vm->driver, libvirt ? "libvirt" : "");
	vm->importing = importing;
	COPY(vm->host, v->host);
	vm->state = GW_CVM_STARTING;
	vm->ha = v->ha;
	vm->priority = v->priority;
	COPY(vm->group, v->anti_affinity);
	COPY(vm->image, v->image);
	vm->memory_mib = v->memory_mib;
	vm->vcpus = v->vcpus ? v->vcpus : 1;
	COPY(vm->cmdline, v->cmdline);
	vm->failback = v->has_failback && v->failback;
	COPY(vm->pref_host, v->host);
	if (importing)
		gw_coord_event(st, d->time_ms, "vm-import", vm->host, vm->name,
			       "%s libvirt VM, priority %u%s%s: %s adopts the existing domain",
			       vm->ha ? "HA" : "non-HA", vm->priority,
			       vm->group[0] ? ", anti-affinity " : "", vm->group, vm->host);
	else
		gw_coord_event(st, d->time_ms, "vm-defined", vm->host, vm->name,
			       "%s %sVM, priority %u%s%s, %u MiB", vm->ha ? "HA" : "non-HA",
			       libvirt ? "libvirt " : "", vm->priority,
			       vm->group[0] ? ", anti-affinity " : "", vm->group, vm->memory_mib);
}

/*
 * The first "running" report of an imported libvirt VM carries the definition its host's
 * agent adopted: the cluster state keeps it (HA restarts define it elsewhere from it). A
 * report without one (or too large) fails the VM: nothing could restart it elsewhere.
 */
static bool import_done(struct gw_coord_state *st, struct gw_coord_vm *vm, const GwClVmStateMsg *s)
{
	int r = s->xml && *s->xml ? gw_coord_vm_set_xml(vm, s->xml) : -ENODATA;
	if (r) {
		vm->state = GW_CVM_FAILED;
		snprintf(vm->reason, sizeof(vm->reason), "import: %s",
			 r == -ENODATA	  ? "its host reported no domain XML"
			 : r == -EMSGSIZE ? "the domain XML is larger than 64 KiB"
					  : "out of memory");
		gw_coord_event(st, s->time_ms, "vm-import-failed", vm->host, vm->name, "%s",
			       vm->reason);
		return false;
	}
	vm->importing = false;
	if (s->has_memory_mib && s->memory_mib)
		vm->memory_mib = s->memory_mib;
	if (s->has_vcpus && s->vcpus)
		vm->vcpus = s->vcpus;
	gw_coord_event(st, s->time_ms, "vm-imported", vm->host, vm->name,
		       "domain adopted: %u MiB, %u vCPUs, %zu bytes of XML kept by the cluster",
		       vm->memory_mib, vm->vcpus, strlen(vm->xml));
	return true;
}

static void a_vm_state(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClVmStateMsg *s = (const GwClVmStateMsg *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, s->name);
	if (!vm || strcmp(vm->host, s->host) != 0) {
		gw_coord_event(st, s->time_ms, "vm-state-ignored", s->host, s->name,
			       "report '%s' from a host that does not own the VM", s->state);
		return;
	}
	if (vm->state == GW_CVM_STOPPED) { /* a start that raced the stop: its host stops it */
		gw_coord_event(st, s->time_ms, "vm-state-ignored", s->host, s->name,
			       "report '%s' for a VM stopped by an operator", s->state);
		return;
	}
	if (strcmp(s->state, "running") == 0) {
		if (vm->importing && !import_done(st, vm, s))
			return;
		vm->state = GW_CVM_RUNNING;
		vm->reason[0] = 0;
		gw_coord_event(st, s->time_ms, "vm-running", vm->host, vm->name, "running%s",
			       vm->restarts ? " (restarted after its host failed)" : "");
		return;
	}
	if (vm->state != GW_CVM_STARTING && vm->state != GW_CVM_RUNNING)
		return;
	if (strcmp(s->state, "crashed") == 0 && vm->state == GW_CVM_RUNNING && !vm->migrate_to[0]) {
		/* died on a live host (its host's member saw it, coord_watch.c): HA restarts it,
		 * at most GW_COORD_MAX_RESTARTS times in its life (a crash loop stops there) */
		COPY(vm->reason, s->reason);
		bool again = vm->ha && vm->restarts < GW_COORD_MAX_RESTARTS;
		vm->state = again ? GW_CVM_PENDING : GW_CVM_FAILED;
		gw_coord_event(st, s->time_ms, "vm-crashed", vm->host, vm->name, "%s: %s",
			       vm->reason,
			       again	? "restarting (HA)"
			       : vm->ha ? "not restarted (restart limit reached)"
					: "not restarted (not HA)");
		return;
	}
	COPY(vm->reason, s->reason);
	if (vm->migrate_to[0]) { /* its source reports the migration's end: ignored from now */
		snprintf(vm->migrate_error, sizeof(vm->migrate_error),
			 "the VM failed during the migration to %s", vm->migrate_to);
		vm->migrate_to[0] = 0;
		vm->migrate_cancel = false;
	}
	if (vm->ha && vm->restarts > 0 && vm->restarts < GW_COORD_MAX_RESTARTS) {
		vm->state = GW_CVM_PENDING;
		gw_coord_event(st, s->time_ms, "vm-restart-failed", vm->host, vm->name,
			       "restart %u failed (%s): trying again", vm->restarts, vm->reason);
	} else {
		vm->state = GW_CVM_FAILED;
		gw_coord_event(st, s->time_ms, "vm-failed", vm->host, vm->name, "%s", vm->reason);
	}
}

/* A starting/running VM whose host is fenced: HA ones wait for a restart, the others are lost. */
static void vm_host_fenced(struct gw_coord_state *st, struct gw_coord_vm *vm, uint64_t time_ms)
{
	if (vm->migrate_to[0]) {
		COPY(vm->migrate_error, "its host was fenced during the migration");
		vm->migrate_to[0] = 0;
		vm->migrate_cancel = false;
	}
	if (vm->importing) { /* never adopted: the cluster has no definition to restart */
		vm->state = GW_CVM_LOST;
		COPY(vm->reason, "its host was fenced before the import finished: no domain XML");
		gw_coord_event(st, time_ms, "vm-not-restarted", vm->host, vm->name, "%s",
			       vm->reason);
	} else if (vm->ha) {
		vm->state = GW_CVM_PENDING;
		vm->restarts = 0;
		gw_coord_event(st, time_ms, "vm-restart-pending", vm->host, vm->name,
			       "HA VM of a fenced host, priority %u", vm->priority);
	} else {
		vm->state = GW_CVM_LOST;
		COPY(vm->reason, "its host was fenced; not HA, not restarted");
		gw_coord_event(st, time_ms, "vm-not-restarted", vm->host, vm->name,
			       "not HA: stays down after its host was fenced");
	}
}

static void a_fence_start(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClFence *f = (const GwClFence *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, f->host);
	if (!h || (h->state != GW_HOST_LOST && h->state != GW_HOST_FENCING)) {
		gw_coord_event(st, f->time_ms, "fence-ignored", f->host, NULL,
			       "host is %s: not fencing",
			       h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	h->state = GW_HOST_FENCING;
	gw_coord_event(st, f->time_ms, "fence-started", h->name, NULL, "attempt %u by node %u: %s",
		       f->attempt, from, f->detail ? f->detail : "");
}

static void a_fence_confirmed(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClFence *f = (const GwClFence *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, f->host);
	if (!h || h->state != GW_HOST_FENCING) {
		gw_coord_event(st, f->time_ms, "fence-ignored", f->host, NULL,
			       "confirmation for a host %s",
			       h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	h->state = GW_HOST_FENCED;
	gw_coord_event(st, f->time_ms, "fence-confirmed", h->name, NULL, "off confirmed: %s",
		       f->detail ? f->detail : "");
	for (size_t i = 0; i < st->n_vms; i++) {
		struct gw_coord_vm *vm = &st->vms[i];
		if (strcmp(vm->host, h->name) == 0 &&
		    (vm->state == GW_CVM_STARTING || vm->state == GW_CVM_RUNNING))
			vm_host_fenced(st, vm, f->time_ms);
	}
}

static void a_fence_failed(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClFence *f = (const GwClFence *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, f->host);
	if (h && h->state == GW_HOST_FENCING)
		h->fence_attempts = f->attempt;
	gw_coord_event(st, f->time_ms, "fence-failed", f->host, NULL, "attempt %u: %s (will retry)",
		       f->attempt, f->detail ? f->detail : "");
}

static void a_vm_restart(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClVmRestart *r = (const GwClVmRestart *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, r->name);
	struct gw_coord_host *t = r->target ? gw_coord_host_by_name(st, r->target) : NULL;
	if (!vm || (vm->state != GW_CVM_PENDING && vm->state != GW_CVM_UNPLACED) || !t ||
	    t->state != GW_HOST_UP) {
		gw_coord_event(st, r->time_ms, "vm-restart-ignored", r->target, r->name,
			       "VM not waiting for a restart, or target not up");
		return;
	}
	COPY(vm->host, t->name);
	vm->state = GW_CVM_STARTING;
	vm->restarts++;
	gw_coord_event(st, r->time_ms, "vm-restarting", t->name, vm->name, "restart %u on %s: %s",
		       vm->restarts, t->name, r->reason ? r->reason : "");
}

static void a_vm_unplaced(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClVmRestart *r = (const GwClVmRestart *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, r->name);
	if (!vm || vm->state != GW_CVM_PENDING)
		return;
	vm->state = GW_CVM_UNPLACED;
	COPY(vm->reason, r->reason);
	gw_coord_event(st, r->time_ms, "vm-placement-failed", NULL, vm->name,
		       "cannot be placed: %s", vm->reason);
}

/* ---- live migration and maintenance ---- */

static void evac_stop(struct gw_coord_state *st, struct gw_coord_host *h, uint64_t time_ms,
		      const char *why)
{
	h->evacuating = false;
	snprintf(h->maint_error, sizeof(h->maint_error), "%s", why);
	gw_coord_event(st, time_ms, "maintenance-stopped", h->name, NULL,
		       "evacuation stopped: %s; the host stays in maintenance", why);
}

static void a_migrate_start(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMigrate *g = (const GwClMigrate *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, g->vm);
	struct gw_coord_host *src = gw_coord_host_by_name(st, g->from);
	char why[256] = "";
	if (!vm) {
		gw_coord_event(st, g->time_ms, "migration-rejected", g->from, g->vm, "no such VM");
		return;
	}
	if (vm->migrate_to[0]) { /* the running migration keeps its id and its error */
		vm->refused_id = g->id;
		gw_coord_event(st, g->time_ms, "migration-rejected", g->from, vm->name,
			       "to %s: already migrating to %s", g->to, vm->migrate_to);
		if (g->evacuation && src && src->evacuating)
			evac_stop(st, src, g->time_ms, "a migration of the VM was under way");
		return;
	}
	if (vm->state != GW_CVM_RUNNING)
		snprintf(why, sizeof(why), "VM is %s, not running",
			 gw_coord_vm_state_name(vm->state));
	else if (strcmp(vm->host, g->from) != 0)
		snprintf(why, sizeof(why), "VM is on %s, not on %s", vm->host, g->from);
	else if (!src || (src->state != GW_HOST_UP && src->state != GW_HOST_MAINTENANCE))
		snprintf(why, sizeof(why), "source host %s is %s", g->from,
			 src ? gw_coord_host_state_name(src->state) : "unknown");
	else
		gw_coord_fits(st, vm, g->to, why, sizeof(why));
	vm->mig_id = g->id;
	if (why[0]) {
		snprintf(vm->migrate_error, sizeof(vm->migrate_error), "%s", why);
		gw_coord_event(st, g->time_ms, "migration-rejected", g->from, vm->name, "to %s: %s",
			       g->to, why);
		if (g->evacuation && src && src->evacuating)
			evac_stop(st, src, g->time_ms, why);
		return;
	}
	COPY(vm->migrate_to, g->to);
	vm->migrate_error[0] = 0;
	vm->migrate_cancel = false;
	gw_coord_event(st, g->time_ms, "migration-started", vm->host, vm->name,
		       "migration started: %s -> %s%s", vm->host, vm->migrate_to,
		       g->evacuation ? " (maintenance)" : "");
}

static void a_migrate_done(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMigrate *g = (const GwClMigrate *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, g->vm);
	struct gw_coord_host *sender = gw_coord_host_by_nodeid(st, from);
	if (!vm || !vm->migrate_to[0] || vm->mig_id != g->id || strcmp(vm->host, g->from) != 0 ||
	    strcmp(vm->migrate_to, g->to) != 0 || !sender || strcmp(sender->name, g->from) != 0) {
		gw_coord_event(st, g->time_ms, "migration-ignored", g->from, g->vm,
			       "result '%s' for a migration not under way",
			       g->result ? g->result : "");
		return;
	}
	struct gw_coord_host *src = gw_coord_host_by_name(st, vm->host);
	vm->migrate_to[0] = 0;
	vm->migrate_cancel = false;
	if (g->result && strcmp(g->result, "completed") == 0) {
		if (g->has_total_ms && g->has_downtime_ms && g->has_bytes_transferred)
			gw_coord_event(
			    st, g->time_ms, "migration-done", g->to, vm->name,
			    "migration done: %s -> %s in %llu ms, downtime %.1f ms, %llu MiB sent",
			    g->from, g->to, (unsigned long long)g->total_ms, g->downtime_ms,
			    (unsigned long long)(g->bytes_transferred >> 20));
		else
			gw_coord_event(st, g->time_ms, "migration-done", g->to, vm->name,
				       "migration done: %s -> %s", g->from, g->to);
		COPY(vm->host, g->to);
		vm->state = GW_CVM_RUNNING;
		vm->migrate_error[0] = 0;
		struct gw_coord_host *t = gw_coord_host_by_name(st, g->to);
		if (t && t->state == GW_HOST_FENCED) /* it died right after the switchover */
			vm_host_fenced(st, vm, g->time_ms);
		return;
	}
	bool cancelled = g->result && strcmp(g->result, "cancelled") == 0;
	snprintf(vm->migrate_error, sizeof(vm->migrate_error), "%s: %s",
		 g->result ? g->result : "failed", g->error && *g->error ? g->error : "no reason");
	gw_coord_event(st, g->time_ms, cancelled ? "migration-cancelled" : "migration-failed",
		       g->from, vm->name, "migration %s: %s -> %s: %s; the VM stays on %s",
		       cancelled ? "cancelled" : "failed", g->from, g->to, vm->migrate_error,
		       g->from);
	if (src && src->evacuating) {
		char why[320];
		if (cancelled)
			snprintf(why, sizeof(why),
				 "the migration of vm %s to %s was cancelled by the operator",
				 vm->name, g->to);
		else
			snprintf(why, sizeof(why), "vm %s could not move to %s: %s", vm->name,
				 g->to, vm->migrate_error);
		evac_stop(st, src, g->time_ms, why);
	}
}

/*
 * An operator asks to cancel the migration under way (any member may send it). Only
 * recorded: the source's member has its agent cancel, and MIGRATE_DONE ends it.
 */
static void a_migrate_cancel(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMigrate *g = (const GwClMigrate *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, g->vm);
	if (!vm || !vm->migrate_to[0] || vm->mig_id != g->id) {
		gw_coord_event(st, g->time_ms, "migration-cancel-ignored", g->from, g->vm,
			       "cancel of a migration not under way");
		return;
	}
	if (vm->migrate_cancel)
		return; /* asked already */
	vm->migrate_cancel = true;
	gw_coord_event(st, g->time_ms, "migration-cancel", vm->host, vm->name,
		       "cancel of the migration %s -> %s asked", vm->host, vm->migrate_to);
}

static void a_maint_enter(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMaint *q = (const GwClMaint *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, q->host);
	if (!h || (h->state != GW_HOST_UP && h->state != GW_HOST_MAINTENANCE)) {
		gw_coord_event(st, q->time_ms, "maintenance-ignored", q->host, NULL, "host is %s",
			       h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	h->state = GW_HOST_MAINTENANCE;
	h->maintenance = true;
	h->evacuating = true;
	h->evac_id = q->id;
	h->maint_error[0] = 0;
	gw_coord_event(st, q->time_ms, "maintenance-entered", h->name, NULL,
		       "maintenance: nothing is placed here, evacuating its VMs");
}

static void a_maint_exit(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMaint *q = (const GwClMaint *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, q->host);
	if (!h || !h->maintenance) {
		gw_coord_event(st, q->time_ms, "maintenance-ignored", q->host, NULL,
			       "exit: host is %s, not in maintenance",
			       h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	if (h->state == GW_HOST_MAINTENANCE)
		h->state = GW_HOST_UP;
	h->maintenance = false;
	h->evacuating = false;
	gw_coord_event(st, q->time_ms, "maintenance-exited", h->name, NULL,
		       "out of maintenance: placeable");
	for (size_t i = 0; i < st->n_vms; i++) /* room for VMs nobody could take */
		if (st->vms[i].state == GW_CVM_UNPLACED)
			st->vms[i].state = GW_CVM_PENDING;
}

static void a_evac_end(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMaint *q = (const GwClMaint *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, q->host);
	if (!h || !h->evacuating || h->evac_id != q->id)
		return; /* already ended (a failed migration, exit, a newer enter) */
	if (q->error && *q->error) {
		evac_stop(st, h, q->time_ms, q->error);
		return;
	}
	h->evacuating = false;
	h->maint_error[0] = 0;
	gw_coord_event(st, q->time_ms, "maintenance-evacuated", h->name, NULL,
		       "every VM moved away; the host stays in maintenance");
}

struct apply_entry {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
	apply_fn fn;
};

/* The CPG messages, indexed by GwClMsgType - GW_CL_HELLO. SNAPSHOT is taken by the sync
 * logic (coord_cluster.c), never applied as a message. */
/* clang-format off */
static const struct apply_entry apply_table[] = {
	[GW_CL_MSG_TYPE__GW_CL_HELLO - 300] = {"hello", &gw_cl_hello__descriptor, a_hello}, /* 300 */
	[GW_CL_MSG_TYPE__GW_CL_VM_DEFINE - 300] = {"vm-define", &gw_cl_vm_define__descriptor, a_vm_define}, /* 302 */
	[GW_CL_MSG_TYPE__GW_CL_VM_STATE - 300] = {"vm-state", &gw_cl_vm_state_msg__descriptor, a_vm_state}, /* 303 */
	[GW_CL_MSG_TYPE__GW_CL_FENCE_START - 300] = {"fence-start", &gw_cl_fence__descriptor, a_fence_start}, /* 304 */
	[GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED - 300] = {"fence-confirmed", &gw_cl_fence__descriptor, a_fence_confirmed}, /* 305 */
	[GW_CL_MSG_TYPE__GW_CL_FENCE_FAILED - 300] = {"fence-failed", &gw_cl_fence__descriptor, a_fence_failed}, /* 306 */
	[GW_CL_MSG_TYPE__GW_CL_VM_RESTART - 300] = {"vm-restart", &gw_cl_vm_restart__descriptor, a_vm_restart}, /* 307 */
	[GW_CL_MSG_TYPE__GW_CL_VM_UNPLACED - 300] = {"vm-unplaced", &gw_cl_vm_restart__descriptor, a_vm_unplaced}, /* 308 */
	[GW_CL_MSG_TYPE__GW_CL_MIGRATE_START - 300] = {"migrate-start", &gw_cl_migrate__descriptor, a_migrate_start}, /* 309 */
	[GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE - 300] = {"migrate-done", &gw_cl_migrate__descriptor, a_migrate_done}, /* 310 */
	[GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER - 300] = {"maint-enter", &gw_cl_maint__descriptor, a_maint_enter}, /* 311 */
	[GW_CL_MSG_TYPE__GW_CL_MAINT_EXIT - 300] = {"maint-exit", &gw_cl_maint__descriptor, a_maint_exit}, /* 312 */
	[GW_CL_MSG_TYPE__GW_CL_EVAC_END - 300] = {"evac-end", &gw_cl_maint__descriptor, a_evac_end}, /* 313 */
	[GW_CL_MSG_TYPE__GW_CL_VM_ADMIN - 300] = {"vm-admin", &gw_cl_vm_admin__descriptor, gw_coord_apply_vm_admin}, /* 314 */
	[GW_CL_MSG_TYPE__GW_CL_MIGRATE_CANCEL - 300] = {"migrate-cancel", &gw_cl_migrate__descriptor, a_migrate_cancel}, /* 315 */
	[GW_CL_MSG_TYPE__GW_CL_LOAD - 300] = {"load", &gw_cl_load__descriptor, gw_coord_apply_load}, /* 316 */
	[GW_CL_MSG_TYPE__GW_CL_RULE - 300] = {"rule", &gw_cl_rule_msg__descriptor, gw_coord_apply_rule}, /* 317 */
	[GW_CL_MSG_TYPE__GW_CL_BALANCE_START - 300] = {"balance-start", &gw_cl_balance_start__descriptor, gw_coord_apply_balance_start}, /* 318 */
	[GW_CL_MSG_TYPE__GW_CL_BALANCE_ABORT - 300] = {"balance-abort", &gw_cl_balance_start__descriptor, gw_coord_apply_balance_abort}, /* 319 */
};
/* clang-format on */

int gw_coord_state_apply(struct gw_coord_state *st, uint16_t type, const uint8_t *payload,
			 size_t len, uint32_t from_nodeid)
{
	size_t idx = (size_t)type - 300;
	if (type < 300 || idx >= sizeof(apply_table) / sizeof(apply_table[0]) ||
	    !apply_table[idx].fn) {
		gw_warn(SUBSYS, "message of unknown type %u from node %u ignored", type,
			from_nodeid);
		return -EOPNOTSUPP;
	}
	const struct apply_entry *e = &apply_table[idx];
	ProtobufCMessage *m = protobuf_c_message_unpack(e->desc, NULL, len, payload);
	if (!m) {
		gw_warn(SUBSYS, "malformed %s message (%zu bytes) from node %u ignored", e->name,
			len, from_nodeid);
		return -EBADMSG;
	}
	gw_debug(SUBSYS, "apply %s from node %u", e->name, from_nodeid);
	e->fn(st, m, from_nodeid);
	if (type == GW_CL_MSG_TYPE__GW_CL_MIGRATE_START || type == GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE)
		gw_coord_drs_after_migrate(st, type, m);
	protobuf_c_message_free_unpacked(m, NULL);
	/* load figures change every few seconds: the next other message persists them */
	if (st->path[0] && type != GW_CL_MSG_TYPE__GW_CL_LOAD)
		gw_coord_state_save(st);
	return 0;
}

/* Does a VM start or run on host, or migrate to it? */
static bool runs_vms(const struct gw_coord_state *st, const char *host)
{
	for (size_t i = 0; i < st->n_vms; i++) {
		const struct gw_coord_vm *v = &st->vms[i];
		bool live = v->state == GW_CVM_RUNNING || v->state == GW_CVM_STARTING;
		if ((live && strcmp(v->host, host) == 0) || strcmp(v->migrate_to, host) == 0)
			return true;
	}
	return false;
}

void gw_coord_state_members(struct gw_coord_state *st, const uint32_t *nodeids, size_t n,
			    uint64_t time_ms)
{
	bool changed = false;
	for (size_t i = 0; i < st->n_hosts; i++) {
		struct gw_coord_host *h = &st->hosts[i];
		bool member = false;
		for (size_t j = 0; j < n; j++)
			member |= nodeids[j] == h->nodeid;
		if (member || (h->state != GW_HOST_UP && h->state != GW_HOST_MAINTENANCE))
			continue;
		if (h->state == GW_HOST_MAINTENANCE && h->offline)
			continue; /* left already */
		if (h->state == GW_HOST_MAINTENANCE && !h->evacuating && !runs_vms(st, h->name)) {
			h->offline = true;
			/* evacuated (a graceful shutdown, a reboot in maintenance): nothing to
			 * fence, nothing to restart; it stays in maintenance until it is back and
			 * exits */
			gw_coord_event(st, time_ms, "host-left", h->name, NULL,
				       "node id %u left the membership in maintenance, running no "
				       "VM: not fenced",
				       h->nodeid);
			changed = true;
			continue;
		}
		h->state = GW_HOST_LOST;
		h->fence_attempts = 0;
		gw_coord_event(st, time_ms, "host-lost", h->name, NULL,
			       "node id %u left the membership", h->nodeid);
		changed = true;
	}
	if (changed && st->path[0])
		gw_coord_state_save(st);
}
