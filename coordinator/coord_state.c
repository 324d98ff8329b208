/* coord_state.c -- the replicated cluster state and the one function that applies a message. */
#include "coord_state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "state"

const char *const gw_coord_host_names[] = {"up", "lost", "fencing", "fenced", "maintenance"};
const char *const gw_coord_vm_names[] = {"starting", "running", "pending", "unplaced",
					 "failed",   "lost",	"stopped"};

const char *gw_coord_host_state_name(enum gw_coord_host_state s)
{
	return (unsigned)s < sizeof(gw_coord_host_names) / sizeof(gw_coord_host_names[0])
		   ? gw_coord_host_names[s]
		   : "?";
}

const char *gw_coord_vm_state_name(enum gw_coord_vm_state s)
{
	return (unsigned)s < sizeof(gw_coord_vm_names) / sizeof(gw_coord_vm_names[0])
		   ? gw_coord_vm_names[s]
		   : "?";
}

int gw_coord_parse_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

void gw_coord_state_init(struct gw_coord_state *st, const char *path)
{
	memset(st, 0, sizeof(*st));
	st->next_event_seq = 1;
	COPY(st->path, path);
}

void gw_coord_state_free(struct gw_coord_state *st)
{
	free(st->vms);
	st->vms = NULL;
	st->n_vms = st->cap_vms = 0;
}

/* ---- lookups ---- */

struct gw_coord_host *gw_coord_host_by_name(struct gw_coord_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_hosts; i++)
		if (strcmp(st->hosts[i].name, name) == 0)
			return &st->hosts[i];
	return NULL;
}

struct gw_coord_host *gw_coord_host_by_nodeid(struct gw_coord_state *st, uint32_t nodeid)
{
	for (size_t i = 0; i < st->n_hosts; i++)
		if (st->hosts[i].nodeid == nodeid)
			return &st->hosts[i];
	return NULL;
}

struct gw_coord_vm *gw_coord_vm_find(struct gw_coord_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_vms; i++)
		if (strcmp(st->vms[i].name, name) == 0)
			return &st->vms[i];
	return NULL;
}

/* Insert keeping the array sorted by name (so that encodings compare byte for byte). */
struct gw_coord_vm *gw_coord_vm_insert(struct gw_coord_state *st, const char *name)
{
	size_t i;
	if (st->n_vms == st->cap_vms) {
		size_t cap = st->cap_vms ? st->cap_vms * 2 : 16;
		struct gw_coord_vm *nv = realloc(st->vms, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		st->vms = nv;
		st->cap_vms = cap;
	}
	for (i = 0; i < st->n_vms && strcmp(st->vms[i].name, name) < 0; i++)
		;
	memmove(&st->vms[i + 1], &st->vms[i], (st->n_vms - i) * sizeof(*st->vms));
	st->n_vms++;
	memset(&st->vms[i], 0, sizeof(st->vms[i]));
	COPY(st->vms[i].name, name);
	return &st->vms[i];
}

/* Hosts are kept sorted by node id. */
struct gw_coord_host *gw_coord_host_insert(struct gw_coord_state *st, uint32_t nodeid)
{
	size_t i;
	if (st->n_hosts == GW_COORD_MAX_HOSTS)
		return NULL;
	for (i = 0; i < st->n_hosts && st->hosts[i].nodeid < nodeid; i++)
		;
	memmove(&st->hosts[i + 1], &st->hosts[i], (st->n_hosts - i) * sizeof(st->hosts[0]));
	st->n_hosts++;
	memset(&st->hosts[i], 0, sizeof(st->hosts[i]));
	st->hosts[i].nodeid = nodeid;
	return &st->hosts[i];
}

/* ---- events ---- */

static void eventv(struct gw_coord_state *st, uint64_t time_ms, const char *kind, const char *host,
		   const char *vm, const char *fmt, va_list ap)
{
	struct gw_coord_event *e;
	if (st->n_events == GW_COORD_MAX_EVENTS) {
		st->ev_first = (st->ev_first + 1) % GW_COORD_MAX_EVENTS;
		st->n_events--;
	}
	e = &st->events[(st->ev_first + st->n_events) % GW_COORD_MAX_EVENTS];
	st->n_events++;
	memset(e, 0, sizeof(*e));
	e->seq = st->next_event_seq++;
	e->time_ms = time_ms;
	COPY(e->kind, kind);
	COPY(e->host, host);
	COPY(e->vm, vm);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	gw_info("event", "#%llu %s%s%s%s%s: %s", (unsigned long long)e->seq, e->kind,
		e->host[0] ? " host=" : "", e->host, e->vm[0] ? " vm=" : "", e->vm, e->text);
}

void gw_coord_event(struct gw_coord_state *st, uint64_t time_ms, const char *kind, const char *host,
		    const char *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	eventv(st, time_ms, kind, host, vm, fmt, ap);
	va_end(ap);
}

static void event(struct gw_coord_state *st, uint64_t time_ms, const char *kind, const char *host,
		  const char *vm, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void event(struct gw_coord_state *st, uint64_t time_ms, const char *kind, const char *host,
		  const char *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	eventv(st, time_ms, kind, host, vm, fmt, ap);
	va_end(ap);
}

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
		event(st, h->time_ms, "host-ignored", h->name, NULL, "too many hosts (max %d)",
		      GW_COORD_MAX_HOSTS);
		return;
	}
	enum gw_coord_host_state was = host->state;
	COPY(host->name, h->name);
	host->mem_total_mib = h->mem_total_mib;
	host->mem_avail_mib = h->mem_avail_mib;
	COPY(host->agent_listen, h->agent_listen);
	COPY(host->vm_backend, h->vm_backend);
	host->watchdog_s = h->has_watchdog_s ? h->watchdog_s : 0;
	if (is_new || (was != GW_HOST_UP && was != GW_HOST_MAINTENANCE)) {
		host->state = host->maintenance && !is_new ? GW_HOST_MAINTENANCE : GW_HOST_UP;
		host->fence_attempts = 0;
		event(st, h->time_ms, "host-up", host->name, NULL, "node id %u joined%s%s", from,
		      is_new ? "" : ", was ", is_new ? "" : gw_coord_host_state_name(was));
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
		event(st, d->time_ms, "vm-define-rejected", v->host, v->name, "already defined");
		return;
	}
	struct gw_coord_vm *vm = gw_coord_vm_insert(st, v->name);
	if (!vm) {
		event(st, d->time_ms, "vm-define-rejected", v->host, v->name, "out of memory");
		return;
	}
	COPY(vm->host, v->host);
	vm->state = GW_CVM_STARTING;
	vm->ha = v->ha;
	vm->priority = v->priority;
	COPY(vm->group, v->anti_affinity);
	COPY(vm->image, v->image);
	vm->memory_mib = v->memory_mib;
	vm->vcpus = v->vcpus ? v->vcpus : 1;
	COPY(vm->cmdline, v->cmdline);
	event(st, d->time_ms, "vm-defined", vm->host, vm->name, "%s VM, priority %u%s%s, %u MiB",
	      vm->ha ? "HA" : "non-HA", vm->priority, vm->group[0] ? ", anti-affinity " : "",
	      vm->group, vm->memory_mib);
}

static void a_vm_state(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClVmStateMsg *s = (const GwClVmStateMsg *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, s->name);
	if (!vm || strcmp(vm->host, s->host) != 0) {
		event(st, s->time_ms, "vm-state-ignored", s->host, s->name,
		      "report '%s' from a host that does not own the VM", s->state);
		return;
	}
	if (vm->state == GW_CVM_STOPPED) { /* a start that raced the stop: its host stops it */
		event(st, s->time_ms, "vm-state-ignored", s->host, s->name,
		      "report '%s' for a VM stopped by an operator", s->state);
		return;
	}
	if (strcmp(s->state, "running") == 0) {
		vm->state = GW_CVM_RUNNING;
		vm->reason[0] = 0;
		event(st, s->time_ms, "vm-running", vm->host, vm->name, "running%s",
		      vm->restarts ? " (restarted after its host failed)" : "");
		return;
	}
	if (vm->state != GW_CVM_STARTING && vm->state != GW_CVM_RUNNING)
		return;
	COPY(vm->reason, s->reason);
	if (vm->migrate_to[0]) { /* its source reports the migration's end: ignored from now */
		snprintf(vm->migrate_error, sizeof(vm->migrate_error),
			 "the VM failed during the migration to %s", vm->migrate_to);
		vm->migrate_to[0] = 0;
		vm->migrate_cancel = false;
	}
	if (vm->ha && vm->restarts > 0 && vm->restarts < GW_COORD_MAX_RESTARTS) {
		vm->state = GW_CVM_PENDING;
		event(st, s->time_ms, "vm-restart-failed", vm->host, vm->name,
		      "restart %u failed (%s): trying again", vm->restarts, vm->reason);
	} else {
		vm->state = GW_CVM_FAILED;
		event(st, s->time_ms, "vm-failed", vm->host, vm->name, "%s", vm->reason);
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
	if (vm->ha) {
		vm->state = GW_CVM_PENDING;
		vm->restarts = 0;
		event(st, time_ms, "vm-restart-pending", vm->host, vm->name,
		      "HA VM of a fenced host, priority %u", vm->priority);
	} else {
		vm->state = GW_CVM_LOST;
		COPY(vm->reason, "its host was fenced; not HA, not restarted");
		event(st, time_ms, "vm-not-restarted", vm->host, vm->name,
		      "not HA: stays down after its host was fenced");
	}
}

static void a_fence_start(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClFence *f = (const GwClFence *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, f->host);
	if (!h || (h->state != GW_HOST_LOST && h->state != GW_HOST_FENCING)) {
		event(st, f->time_ms, "fence-ignored", f->host, NULL, "host is %s: not fencing",
		      h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	h->state = GW_HOST_FENCING;
	event(st, f->time_ms, "fence-started", h->name, NULL, "attempt %u by node %u: %s",
	      f->attempt, from, f->detail ? f->detail : "");
}

static void a_fence_confirmed(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClFence *f = (const GwClFence *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, f->host);
	if (!h || h->state != GW_HOST_FENCING) {
		event(st, f->time_ms, "fence-ignored", f->host, NULL, "confirmation for a host %s",
		      h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	h->state = GW_HOST_FENCED;
	event(st, f->time_ms, "fence-confirmed", h->name, NULL, "off confirmed: %s",
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
	event(st, f->time_ms, "fence-failed", f->host, NULL, "attempt %u: %s (will retry)",
	      f->attempt, f->detail ? f->detail : "");
}

static void a_vm_restart(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClVmRestart *r = (const GwClVmRestart *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, r->name);
	struct gw_coord_host *t = r->target ? gw_coord_host_by_name(st, r->target) : NULL;
	if (!vm || (vm->state != GW_CVM_PENDING && vm->state != GW_CVM_UNPLACED) || !t ||
	    t->state != GW_HOST_UP) {
		event(st, r->time_ms, "vm-restart-ignored", r->target, r->name,
		      "VM not waiting for a restart, or target not up");
		return;
	}
	COPY(vm->host, t->name);
	vm->state = GW_CVM_STARTING;
	vm->restarts++;
	event(st, r->time_ms, "vm-restarting", t->name, vm->name, "restart %u on %s: %s",
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
	event(st, r->time_ms, "vm-placement-failed", NULL, vm->name, "cannot be placed: %s",
	      vm->reason);
}

/* ---- live migration and maintenance ---- */

static void evac_stop(struct gw_coord_state *st, struct gw_coord_host *h, uint64_t time_ms,
		      const char *why)
{
	h->evacuating = false;
	snprintf(h->maint_error, sizeof(h->maint_error), "%s", why);
	event(st, time_ms, "maintenance-stopped", h->name, NULL,
	      "evacuation stopped: %s; the host stays in maintenance", why);
}

static void a_migrate_start(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMigrate *g = (const GwClMigrate *)m;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, g->vm);
	struct gw_coord_host *src = gw_coord_host_by_name(st, g->from);
	char why[256] = "";
	if (!vm) {
		event(st, g->time_ms, "migration-rejected", g->from, g->vm, "no such VM");
		return;
	}
	if (vm->migrate_to[0]) { /* the running migration keeps its id and its error */
		vm->refused_id = g->id;
		event(st, g->time_ms, "migration-rejected", g->from, vm->name,
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
		event(st, g->time_ms, "migration-rejected", g->from, vm->name, "to %s: %s", g->to,
		      why);
		if (g->evacuation && src && src->evacuating)
			evac_stop(st, src, g->time_ms, why);
		return;
	}
	COPY(vm->migrate_to, g->to);
	vm->migrate_error[0] = 0;
	vm->migrate_cancel = false;
	event(st, g->time_ms, "migration-started", vm->host, vm->name,
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
		event(st, g->time_ms, "migration-ignored", g->from, g->vm,
		      "result '%s' for a migration not under way", g->result ? g->result : "");
		return;
	}
	struct gw_coord_host *src = gw_coord_host_by_name(st, vm->host);
	vm->migrate_to[0] = 0;
	vm->migrate_cancel = false;
	if (g->result && strcmp(g->result, "completed") == 0) {
		if (g->has_total_ms && g->has_downtime_ms && g->has_bytes_transferred)
			event(
			    st, g->time_ms, "migration-done", g->to, vm->name,
			    "migration done: %s -> %s in %llu ms, downtime %.1f ms, %llu MiB sent",
			    g->from, g->to, (unsigned long long)g->total_ms, g->downtime_ms,
			    (unsigned long long)(g->bytes_transferred >> 20));
		else
			event(st, g->time_ms, "migration-done", g->to, vm->name,
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
	event(st, g->time_ms, cancelled ? "migration-cancelled" : "migration-failed", g->from,
	      vm->name, "migration %s: %s -> %s: %s; the VM stays on %s",
	      cancelled ? "cancelled" : "failed", g->from, g->to, vm->migrate_error, g->from);
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
		event(st, g->time_ms, "migration-cancel-ignored", g->from, g->vm,
		      "cancel of a migration not under way");
		return;
	}
	if (vm->migrate_cancel)
		return; /* asked already */
	vm->migrate_cancel = true;
	event(st, g->time_ms, "migration-cancel", vm->host, vm->name,
	      "cancel of the migration %s -> %s asked", vm->host, vm->migrate_to);
}

static void a_maint_enter(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMaint *q = (const GwClMaint *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, q->host);
	if (!h || (h->state != GW_HOST_UP && h->state != GW_HOST_MAINTENANCE)) {
		event(st, q->time_ms, "maintenance-ignored", q->host, NULL, "host is %s",
		      h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	h->state = GW_HOST_MAINTENANCE;
	h->maintenance = true;
	h->evacuating = true;
	h->evac_id = q->id;
	h->maint_error[0] = 0;
	event(st, q->time_ms, "maintenance-entered", h->name, NULL,
	      "maintenance: nothing is placed here, evacuating its VMs");
}

static void a_maint_exit(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClMaint *q = (const GwClMaint *)m;
	struct gw_coord_host *h = gw_coord_host_by_name(st, q->host);
	if (!h || !h->maintenance) {
		event(st, q->time_ms, "maintenance-ignored", q->host, NULL,
		      "exit: host is %s, not in maintenance",
		      h ? gw_coord_host_state_name(h->state) : "unknown");
		return;
	}
	if (h->state == GW_HOST_MAINTENANCE)
		h->state = GW_HOST_UP;
	h->maintenance = false;
	h->evacuating = false;
	event(st, q->time_ms, "maintenance-exited", h->name, NULL, "out of maintenance: placeable");
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
	event(st, q->time_ms, "maintenance-evacuated", h->name, NULL,
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
	protobuf_c_message_free_unpacked(m, NULL);
	if (st->path[0])
		gw_coord_state_save(st);
	return 0;
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
		h->state = GW_HOST_LOST;
		h->fence_attempts = 0;
		event(st, time_ms, "host-lost", h->name, NULL, "node id %u left the membership",
		      h->nodeid);
		changed = true;
	}
	if (changed && st->path[0])
		gw_coord_state_save(st);
}

/* ---- placement ---- */

static bool vm_active(const struct gw_coord_vm *vm)
{
	return vm->state == GW_CVM_STARTING || vm->state == GW_CVM_RUNNING;
}

/* Memory of the active VMs on h (or migrating to it) but vm_name; clash: one is in group. */
static uint64_t host_used(const struct gw_coord_state *st, const struct gw_coord_host *h,
			  const char *vm_name, const char *group, bool *clash)
{
	uint64_t used = 0;
	*clash = false;
	for (size_t j = 0; j < st->n_vms; j++) {
		const struct gw_coord_vm *vm = &st->vms[j];
		if (!vm_active(vm) || strcmp(vm->name, vm_name) == 0 ||
		    (strcmp(vm->host, h->name) != 0 && strcmp(vm->migrate_to, h->name) != 0))
			continue;
		used += vm->memory_mib;
		*clash |= group && group[0] && strcmp(vm->group, group) == 0;
	}
	return used;
}

/* Do the VM backends of two hosts allow a live migration between them ("" = unknown: yes)? */
static bool same_backend(const char *a, const char *b)
{
	return !a || !b || !a[0] || !b[0] || strcmp(a, b) == 0;
}

int gw_coord_place(const struct gw_coord_state *st, const char *vm_name, uint32_t memory_mib,
		   const char *group, const char *backend, char *out, size_t outlen)
{
	const struct gw_coord_host *best = NULL;
	uint64_t best_free = 0;
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *h = &st->hosts[i];
		bool clash;
		if (h->state != GW_HOST_UP || !same_backend(backend, h->vm_backend))
			continue;
		uint64_t used = host_used(st, h, vm_name, group, &clash);
		uint64_t free_mib = h->mem_total_mib > used ? h->mem_total_mib - used : 0;
		if (clash || free_mib < memory_mib)
			continue;
		if (!best || free_mib > best_free) {
			best = h;
			best_free = free_mib;
		}
	}
	if (!best)
		return -ENOSPC;
	snprintf(out, outlen, "%s", best->name);
	return 0;
}

int gw_coord_fits(const struct gw_coord_state *st, const struct gw_coord_vm *vm, const char *host,
		  char *why, size_t whylen)
{
	const struct gw_coord_host *h = NULL;
	bool clash;
	for (size_t i = 0; i < st->n_hosts; i++)
		if (strcmp(st->hosts[i].name, host) == 0)
			h = &st->hosts[i];
	if (!h) {
		snprintf(why, whylen, "no host '%s'", host);
		return -ENOENT;
	}
	if (strcmp(vm->host, host) == 0) {
		snprintf(why, whylen, "vm %s already runs on %s", vm->name, host);
		return -EALREADY;
	}
	if (h->state != GW_HOST_UP) {
		snprintf(why, whylen, "host %s is %s", host, gw_coord_host_state_name(h->state));
		return -EHOSTDOWN;
	}
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *src = &st->hosts[i];

		if (strcmp(src->name, vm->host) == 0 &&
		    !same_backend(src->vm_backend, h->vm_backend)) {
			snprintf(why, whylen,
				 "host %s runs VMs on the %s backend, vm %s runs on %s (%s): live "
				 "migration needs the same VM backend",
				 host, h->vm_backend, vm->name, src->vm_backend, src->name);
			return -EXDEV;
		}
	}
	uint64_t used = host_used(st, h, vm->name, vm->group, &clash);
	uint64_t free_mib = h->mem_total_mib > used ? h->mem_total_mib - used : 0;
	if (clash) {
		snprintf(why, whylen, "anti-affinity: host %s already runs a VM of group %s", host,
			 vm->group);
		return -EPERM;
	}
	if (free_mib < vm->memory_mib) {
		snprintf(why, whylen, "host %s has %llu MiB free, vm %s needs %u MiB", host,
			 (unsigned long long)free_mib, vm->name, vm->memory_mib);
		return -ENOSPC;
	}
	return 0;
}

struct gw_coord_vm *gw_coord_next_pending(struct gw_coord_state *st)
{
	struct gw_coord_vm *best = NULL;
	for (size_t i = 0; i < st->n_vms; i++) {
		struct gw_coord_vm *vm = &st->vms[i];
		if (vm->state == GW_CVM_PENDING && (!best || vm->priority > best->priority))
			best = vm; /* vms[] is sorted by name: ties keep the first name */
	}
	return best;
}
