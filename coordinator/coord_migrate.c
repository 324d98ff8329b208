/* coord_migrate.c -- live migrations and maintenance: every member drives the migrations of its
 * own VMs through its agent and reports how they ended; the acting member evacuates hosts in
 * maintenance one VM at a time. */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "migration.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS		"migrate"
#define MIG_POLL_MS	200
#define MIG_POLL_ERRORS 50   /* status polls in a row that may fail before giving up */
#define EVAC_WAIT_MS	5000 /* resend if our evacuation message was not applied by then */
#define SHARE_MS	1000 /* progress multicast period of a running migration */

uint64_t gw_coord_new_id(void)
{
	uint64_t id = 0;
	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = gw_now_wall_ms() ^ ((uint64_t)getpid() << 32);
	return id;
}

static void mig_report(struct gw_coord *c, struct gw_coord_mig_run *mr, const char *result,
		       const char *err)
{
	GwClMigrate m = GW_CL_MIGRATE__INIT;
	m.vm = mr->vm;
	m.from = mr->from;
	m.to = mr->to;
	m.id = mr->id;
	m.result = (char *)result;
	m.error = (char *)err;
	m.time_ms = gw_now_wall_ms();
	if (mr->has_stats && strcmp(result, "completed") == 0) {
		m.has_total_ms = m.has_downtime_ms = m.has_bytes_transferred = 1;
		m.total_ms = mr->total_ms;
		m.downtime_ms = mr->downtime_ms;
		m.bytes_transferred = mr->bytes;
	}
	if (strcmp(result, "completed") == 0)
		gw_info(SUBSYS, "vm '%s': migration %s -> %s completed", mr->vm, mr->from, mr->to);
	else
		gw_warn(SUBSYS, "vm '%s': migration %s -> %s %s: %s", mr->vm, mr->from, mr->to,
			result, err);
	if (gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE, &m) == 0)
		mr->reported = true;
}

/* Share mr's progress (coord_progress.c keeps it on every member): about once a second while
 * it runs, and once when it ended. */
static void progress_share(struct gw_coord *c, struct gw_coord_mig_run *mr)
{
	const struct gw_coord_mig_fig *f = &mr->fig;
	unsigned long long now = gw_now_mono_ms();
	bool running = strcmp(f->result, "running") == 0;
	if (!f->vm[0] || (running && now < mr->next_share_ms))
		return;
	mr->next_share_ms = now + SHARE_MS;
	GwClMigProgress m = GW_CL_MIG_PROGRESS__INIT;
	m.vm = (char *)f->vm;
	m.from = (char *)f->from;
	m.to = (char *)f->to;
	m.id = f->id;
	m.result = (char *)f->result;
	m.phase = (char *)f->phase;
	m.has_round = m.has_total_ms = m.has_bytes_transferred = m.has_pages_sent = 1;
	m.has_pages_remaining = m.has_pages_total = m.has_dirty_rate_pps = 1;
	m.has_throughput_mbps = m.has_expected_downtime_ms = m.has_downtime_ms = 1;
	m.has_throttle_pct = 1;
	m.round = f->round;
	m.total_ms = f->total_ms;
	m.bytes_transferred = f->bytes;
	m.pages_sent = f->pages_sent;
	m.pages_remaining = f->pages_remaining;
	m.pages_total = f->pages_total;
	m.dirty_rate_pps = f->dirty_pps;
	m.throughput_mbps = f->mbps;
	m.expected_downtime_ms = f->expected_downtime_ms;
	m.downtime_ms = f->downtime_ms;
	m.throttle_pct = f->throttle_pct;
	m.time_ms = gw_now_wall_ms();
	if (gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_MIG_PROGRESS, &m))
		gw_debug(SUBSYS, "vm '%s': progress not shared (CPG busy or down)", f->vm);
}

static struct gw_coord_mig_run *mig_slot(struct gw_coord *c, const struct gw_coord_vm *vm)
{
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++)
		if (c->mig[i].vm[0] && strcmp(c->mig[i].vm, vm->name) == 0 &&
		    c->mig[i].id == vm->mig_id)
			return &c->mig[i];
	return NULL;
}

/* Start the migration of a VM of this host through the local agent. */
static void mig_start(struct gw_coord *c, struct gw_coord_vm *vm)
{
	struct gw_coord_mig_run *mr = NULL;
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS && !mr; i++)
		if (!c->mig[i].vm[0])
			mr = &c->mig[i];
	if (!mr)
		return;
	memset(mr, 0, sizeof(*mr));
	snprintf(mr->vm, sizeof(mr->vm), "%s", vm->name);
	snprintf(mr->from, sizeof(mr->from), "%s", vm->host);
	snprintf(mr->to, sizeof(mr->to), "%s", vm->migrate_to);
	mr->id = vm->mig_id;
	mr->next_poll_ms = gw_now_mono_ms() + MIG_POLL_MS;
	struct gw_coord_host *t = gw_coord_host_by_name(&c->st, vm->migrate_to);
	char result[32] = "", err[512] = "";
	if (vm->migrate_cancel) { /* cancelled before this member started it */
		mig_report(c, mr, "cancelled", "cancelled by the operator before it started");
		return;
	}
	if (!t || !t->agent_listen[0]) {
		mig_report(c, mr, "failed", "the target host's agent announced no address");
		return;
	}
	/* a migration this coordinator started before it restarted: follow it */
	GwVmNameReq sr = GW_VM_NAME_REQ__INIT;
	sr.name = vm->name;
	if (gw_coord_agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &sr.base, result,
				    sizeof(result), err, sizeof(err), mr) == 0 &&
	    strcmp(result, "running") == 0) {
		gw_info(SUBSYS, "vm '%s': following its running migration to %s", vm->name,
			t->name);
		return;
	}
	GwVmMigrateReq req = GW_VM_MIGRATE_REQ__INIT;
	req.name = vm->name;
	req.to = t->agent_listen;
	gw_info(SUBSYS, "vm '%s': migrating to %s (%s)", vm->name, t->name, t->agent_listen);
	int r = gw_coord_agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE, &req.base, result,
					sizeof(result), err, sizeof(err), NULL);
	if (r == -ENOENT) { /* gone from this agent: did it move while we were down? */
		char e2[512];
		if (gw_coord_agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &sr.base,
					    result, sizeof(result), e2, sizeof(e2), mr) == 0 &&
		    strcmp(result, "completed") == 0) {
			mig_report(c, mr, "completed", "");
			return;
		}
	}
	if (r)
		mig_report(c, mr, "failed", err);
}

/* MIGRATE_CANCEL applied: have the local agent cancel the running migration, once. */
static void mig_cancel(struct gw_coord *c, struct gw_coord_mig_run *mr)
{
	GwVmNameReq req = GW_VM_NAME_REQ__INIT;
	char result[32] = "", err[512] = "";
	req.name = mr->vm;
	mr->cancel_sent = true;
	int r = gw_coord_agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_CANCEL, &req.base,
					result, sizeof(result), err, sizeof(err), NULL);
	if (r)
		gw_warn(SUBSYS,
			"vm '%s': cancel of its migration %s -> %s refused by the agent: %s",
			mr->vm, mr->from, mr->to, err);
	else
		gw_info(SUBSYS, "vm '%s': migration %s -> %s cancel asked of the agent (it is %s)",
			mr->vm, mr->from, mr->to, result);
}

/* Migrations of this host's VMs: start them, poll the agent, report the result. */
static void local_migrations(struct gw_coord *c)
{
	unsigned long long now = gw_now_mono_ms();
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++) {
		struct gw_coord_mig_run *mr = &c->mig[i];
		struct gw_coord_vm *vm;
		if (!mr->vm[0])
			continue;
		vm = gw_coord_vm_find(&c->st, mr->vm);
		if (!vm || vm->mig_id != mr->id || !vm->migrate_to[0]) {
			mr->vm[0] = 0; /* our report was applied */
			continue;
		}
		if (!mr->reported && vm->migrate_cancel && !mr->cancel_sent)
			mig_cancel(c, mr);
		if (mr->reported || now < mr->next_poll_ms)
			continue;
		mr->next_poll_ms = now + MIG_POLL_MS;
		GwVmNameReq req = GW_VM_NAME_REQ__INIT;
		char result[32] = "", err[512] = "";
		req.name = mr->vm;
		if (gw_coord_agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &req.base,
					    result, sizeof(result), err, sizeof(err), mr)) {
			if (++mr->errors >= MIG_POLL_ERRORS)
				mig_report(c, mr, "failed", err);
			continue;
		}
		mr->errors = 0;
		progress_share(c, mr);
		if (strcmp(result, "cancelled") == 0 && mr->cancel_sent)
			snprintf(err, sizeof(err), "cancelled by the operator");
		if (strcmp(result, "running") != 0)
			mig_report(c, mr, result, err);
	}
	if (!c->quorate)
		return;
	for (size_t i = 0; i < c->st.n_vms; i++) {
		struct gw_coord_vm *vm = &c->st.vms[i];
		if (vm->migrate_to[0] && strcmp(vm->host, c->cfg.node) == 0 && !mig_slot(c, vm))
			mig_start(c, vm);
	}
}

/* Has the acting member's last evacuation message been applied? */
static bool evac_applied(struct gw_coord *c)
{
	if (!c->evac_wait_until_ms)
		return true;
	if (gw_now_mono_ms() >= c->evac_wait_until_ms)
		return true; /* lost (membership change): decide again */
	if (c->evac_sent_id) {
		for (size_t i = 0; i < c->st.n_vms; i++)
			if (c->st.vms[i].mig_id == c->evac_sent_id ||
			    c->st.vms[i].refused_id == c->evac_sent_id)
				return true;
		return false;
	}
	struct gw_coord_host *h = gw_coord_host_by_name(&c->st, c->evac_sent_host);
	return !h || !h->evacuating;
}

static void evac_sent(struct gw_coord *c, const char *host, uint64_t id)
{
	c->evac_wait_until_ms = gw_now_mono_ms() + EVAC_WAIT_MS;
	c->evac_sent_id = id;
	snprintf(c->evac_sent_host, sizeof(c->evac_sent_host), "%s", host);
}

/* Where vm can live-migrate away from h (0 with target), else -ENOSPC with the reason. */
static int evac_target(struct gw_coord *c, const struct gw_coord_host *h,
		       const struct gw_coord_vm *vm, char *target, size_t tlen, char *why,
		       size_t wlen)
{
	/* to hosts with the VM's driver; a micro-VM only to hosts on this host's VM backend */
	bool lv = gw_coord_vm_is_libvirt(vm);
	const char *be = lv ? "" : h->vm_backend;
	if (!gw_coord_place(&c->st, vm->name, vm->memory_mib, vm->group, vm->driver, be, target,
			    tlen))
		return 0;
	snprintf(why, wlen, "vm %s: no up host outside maintenance%s%s%s has %u MiB free%s%s%s",
		 vm->name, lv ? " with the libvirt driver" : "", be[0] ? " on the VM backend " : "",
		 be, vm->memory_mib, vm->group[0] ? " outside anti-affinity group " : "", vm->group,
		 gw_coord_rule_binds(&c->st, vm->name)
		     ? " where its must rules (anti-affinity, VM-host) allow it"
		     : "");
	return -ENOSPC;
}

/*
 * Acting member: evacuate hosts in maintenance, one VM at a time (cluster-wide), each to
 * the up host with the most free memory that its anti-affinity and must rules allow. A VM
 * that fits nowhere is left for last: the evacuation stops, with its reason, only once
 * every VM that can leave has left.
 */
static void evacuate(struct gw_coord *c)
{
	if (!evac_applied(c))
		return;
	c->evac_wait_until_ms = 0;
	for (size_t i = 0; i < c->st.n_vms; i++)
		if (c->st.vms[i].migrate_to[0])
			return; /* one migration at a time */
	for (size_t i = 0; i < c->st.n_hosts; i++) {
		struct gw_coord_host *h = &c->st.hosts[i];
		struct gw_coord_vm *vm = NULL;
		char target[GW_COORD_NAME_MAX], why[320] = "";
		if (!h->evacuating || h->state != GW_HOST_MAINTENANCE)
			continue;
		for (size_t j = 0; j < c->st.n_vms && !vm; j++) {
			struct gw_coord_vm *v = &c->st.vms[j];
			if (strcmp(v->host, h->name) != 0 ||
			    (v->state != GW_CVM_STARTING && v->state != GW_CVM_RUNNING))
				continue;
			if (v->state == GW_CVM_STARTING)
				return; /* let it start first */
			char w[320];
			if (!evac_target(c, h, v, target, sizeof(target), w, sizeof(w)))
				vm = v;
			else if (!why[0])
				snprintf(why, sizeof(why), "%s", w);
		}
		if (!vm) {
			GwClMaint m = GW_CL_MAINT__INIT;
			m.host = h->name;
			m.has_id = 1;
			m.id = h->evac_id;
			m.error = why;
			m.time_ms = gw_now_wall_ms();
			gw_info(SUBSYS, "host %s: evacuation %s%s", h->name,
				why[0] ? "stopped: " : "done", why);
			if (gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_EVAC_END, &m) == 0)
				evac_sent(c, h->name, 0);
			return;
		}
		GwClMigrate m = GW_CL_MIGRATE__INIT;
		m.vm = vm->name;
		m.from = h->name;
		m.to = target;
		m.id = gw_coord_new_id();
		m.has_evacuation = 1;
		m.evacuation = true;
		m.time_ms = gw_now_wall_ms();
		gw_info(SUBSYS, "host %s: evacuating vm '%s' to %s", h->name, vm->name, target);
		if (gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_MIGRATE_START, &m) == 0)
			evac_sent(c, h->name, m.id);
		return;
	}
}

/* Tick step (synced members): drive this host's migrations; the acting member evacuates. */
void gw_coord_migrate_step(struct gw_coord *c)
{
	if (gw_coord_is_acting(c))
		evacuate(c);
	else
		c->evac_wait_until_ms = 0;
	local_migrations(c);
}
