/* coord_ha.c -- HA: the acting member fences lost hosts and plans restarts; every member starts its
 * VMs. */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "migration.pb-c.h"
#include "ctl_client.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS		 "ha"
#define AGENT_TIMEOUT_MS 10000
#define MIG_POLL_MS	 200
#define MIG_POLL_ERRORS	 50   /* status polls in a row that may fail before giving up */
#define EVAC_WAIT_MS	 5000 /* resend if our evacuation message was not applied by then */

int gw_coord_agent_info(struct gw_coord *c, uint64_t *total_mib, uint64_t *avail_mib, char *listen,
			size_t listen_len, char *backend, size_t backend_len)
{
	struct gw_ctl_client cl;
	GwAgentInfoReq req = GW_AGENT_INFO_REQ__INIT;
	ProtobufCMessage *rep;
	int r = gw_ctl_client_connect(&cl, c->cfg.agent_socket, 2000);
	if (!r)
		r = gw_ctl_client_call(&cl, GW_MSG_TYPE__GW_MSG_AGENT_INFO, &req.base,
				       GW_MSG_TYPE__GW_MSG_AGENT_INFO_REPLY,
				       &gw_agent_info__descriptor, &rep);
	gw_ctl_client_close(&cl);
	if (r) {
		gw_warn(SUBSYS, "agent info: %s", cl.err);
		return r;
	}
	GwAgentInfo *ai = (GwAgentInfo *)rep;
	*total_mib = ai->mem_total_mib;
	*avail_mib = ai->mem_available_mib;
	snprintf(listen, listen_len, "%s", ai->listen ? ai->listen : "");
	if (backend)
		snprintf(backend, backend_len, "%s", ai->vm_backend ? ai->vm_backend : "");
	protobuf_c_message_free_unpacked(rep, NULL);
	return 0;
}

/* -EEXIST / -EALREADY come back as such. */
int gw_coord_agent_call(struct gw_coord *c, uint16_t type, const void *req, char *err,
			size_t errlen)
{
	struct gw_ctl_client cl;
	ProtobufCMessage *rep = NULL;
	int r = gw_ctl_client_connect(&cl, c->cfg.agent_socket, AGENT_TIMEOUT_MS);
	if (!r)
		r = gw_ctl_client_call(&cl, type, req, GW_MSG_TYPE__GW_MSG_VM_INFO,
				       &gw_vm_info__descriptor, &rep);
	gw_ctl_client_close(&cl);
	if (rep)
		protobuf_c_message_free_unpacked(rep, NULL);
	if (r)
		snprintf(err, errlen, "%s", cl.err);
	return r;
}

int gw_coord_agent_stop(struct gw_coord *c, const char *name, char *err, size_t errlen)
{
	GwVmNameReq nr = GW_VM_NAME_REQ__INIT;
	nr.name = (char *)name;
	int r = gw_coord_agent_call(c, GW_MSG_TYPE__GW_MSG_VM_STOP, &nr.base, err, errlen);
	return r == -EALREADY || r == -ENOENT ? 0 : r; /* not running here: nothing to stop */
}

/* Fresh boot of a cluster VM on this host from the definition the cluster state holds. */
static int start_local(struct gw_coord *c, const struct gw_coord_vm *vm, char *err, size_t errlen)
{
	GwVmCreateReq cr = GW_VM_CREATE_REQ__INIT;
	GwVmNameReq nr = GW_VM_NAME_REQ__INIT;
	cr.name = (char *)vm->name;
	cr.image = (char *)vm->image;
	cr.memory_mib = vm->memory_mib;
	cr.has_vcpus = 1;
	cr.vcpus = vm->vcpus;
	cr.cmdline = vm->cmdline[0] ? (char *)vm->cmdline : NULL;
	int r = gw_coord_agent_call(c, GW_MSG_TYPE__GW_MSG_VM_CREATE, &cr.base, err, errlen);
	if (r && r != -EEXIST)
		return r;
	nr.name = (char *)vm->name;
	r = gw_coord_agent_call(c, GW_MSG_TYPE__GW_MSG_VM_START, &nr.base, err, errlen);
	return r == -EALREADY ? 0 : r;
}

static bool busy_has(struct gw_coord *c, const char *name)
{
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++)
		if (c->local_busy[i][0] && strcmp(c->local_busy[i], name) == 0)
			return true;
	return false;
}

static void busy_set(struct gw_coord *c, const char *name)
{
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++)
		if (!c->local_busy[i][0]) {
			snprintf(c->local_busy[i], GW_COORD_NAME_MAX, "%s", name);
			return;
		}
}

/* VMs the cluster state puts on this host as "starting": create and start each once. */
static void local_starts(struct gw_coord *c)
{
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++) {
		struct gw_coord_vm *vm;
		if (!c->local_busy[i][0])
			continue;
		vm = gw_coord_vm_find(&c->st, c->local_busy[i]);
		if (!vm || vm->state != GW_CVM_STARTING || strcmp(vm->host, c->cfg.node) != 0)
			c->local_busy[i][0] = 0; /* our report was applied */
	}
	if (!c->quorate)
		return; /* a partition without quorum starts nothing */
	for (size_t i = 0; i < c->st.n_vms; i++) {
		struct gw_coord_vm *vm = &c->st.vms[i];
		char err[512] = "";
		if (vm->state != GW_CVM_STARTING || strcmp(vm->host, c->cfg.node) != 0 ||
		    busy_has(c, vm->name))
			continue;
		busy_set(c, vm->name);
		unsigned long long t0 = gw_now_mono_ms();
		int r = start_local(c, vm, err, sizeof(err));
		GwClVmStateMsg m = GW_CL_VM_STATE_MSG__INIT;
		m.name = vm->name;
		m.host = c->cfg.node;
		m.state = r ? "failed" : "running";
		m.reason = r ? err : NULL;
		m.time_ms = gw_now_wall_ms();
		if (r)
			gw_warn(SUBSYS, "vm '%s': start on %s failed: %s", vm->name, c->cfg.node,
				err);
		else
			gw_info(SUBSYS, "vm '%s': created and started by the agent in %llu ms",
				vm->name, gw_now_mono_ms() - t0);
		gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_STATE, &m);
	}
}

static struct gw_coord_fence_run *fence_slot(struct gw_coord *c, const char *host, bool alloc)
{
	struct gw_coord_fence_run *free_slot = NULL;
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++) {
		if (c->fence[i].host[0] && strcmp(c->fence[i].host, host) == 0)
			return &c->fence[i];
		if (!c->fence[i].host[0] && !free_slot)
			free_slot = &c->fence[i];
	}
	if (alloc && free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->out_fd = -1;
		snprintf(free_slot->host, sizeof(free_slot->host), "%s", host);
	}
	return alloc ? free_slot : NULL;
}

/* Acting member: fence every lost host, until its device confirms off. */
static void fence_lost_hosts(struct gw_coord *c)
{
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++) {
		struct gw_coord_fence_run *f = &c->fence[i];
		struct gw_coord_host *h;
		if (!f->host[0])
			continue;
		h = gw_coord_host_by_name(&c->st, f->host);
		if (!h || (h->state != GW_HOST_LOST && h->state != GW_HOST_FENCING))
			gw_coord_fence_abort(f); /* confirmed and applied, or the host is back */
	}
	for (size_t i = 0; i < c->st.n_hosts; i++) {
		struct gw_coord_host *h = &c->st.hosts[i];
		if (h->state != GW_HOST_LOST && h->state != GW_HOST_FENCING)
			continue;
		if (gw_coord_vq_member(c, h->nodeid))
			continue; /* corosync still has it: its coordinator is down, not the host */
		struct gw_coord_fence_run *f = fence_slot(c, h->name, true);
		if (f)
			gw_coord_fence_step(c, f);
	}
}

/* Acting member: restart pending HA VMs one at a time, highest priority first. */
static void plan_restarts(struct gw_coord *c)
{
	if (c->restart_inflight[0]) {
		struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, c->restart_inflight);
		if (vm && vm->state == GW_CVM_PENDING)
			return; /* our VM_RESTART is not delivered yet */
		c->restart_inflight[0] = 0;
	}
	struct gw_coord_vm *vm = gw_coord_next_pending(&c->st);
	if (!vm)
		return;
	GwClVmRestart m = GW_CL_VM_RESTART__INIT;
	char target[GW_COORD_NAME_MAX], reason[256];
	m.name = vm->name;
	m.time_ms = gw_now_wall_ms();
	if (gw_coord_place(&c->st, vm->name, vm->memory_mib, vm->group, NULL, target,
			   sizeof(target))) {
		snprintf(reason, sizeof(reason), "no up host has %u MiB free%s%s", vm->memory_mib,
			 vm->group[0] ? " outside anti-affinity group " : "", vm->group);
		m.reason = reason;
		gw_warn(SUBSYS, "vm '%s': %s", vm->name, reason);
		gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_UNPLACED, &m);
	} else {
		snprintf(reason, sizeof(reason), "priority %u, was on %s", vm->priority, vm->host);
		m.target = target;
		m.reason = reason;
		gw_info(SUBSYS, "vm '%s': restart on %s (%s)", vm->name, target, reason);
		gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_RESTART, &m);
	}
	snprintf(c->restart_inflight, sizeof(c->restart_inflight), "%s", vm->name);
}

uint64_t gw_coord_new_id(void)
{
	uint64_t id = 0;
	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = gw_now_wall_ms() ^ ((uint64_t)getpid() << 32);
	return id;
}

/* One migration request to the local agent: the reply is a GwMigProgress. */
static int agent_mig_call(struct gw_coord *c, uint16_t type, const ProtobufCMessage *req,
			  char *result, size_t rlen, char *err, size_t errlen,
			  struct gw_coord_mig_run *stats)
{
	struct gw_ctl_client cl;
	ProtobufCMessage *rep = NULL;
	int r = gw_ctl_client_connect(&cl, c->cfg.agent_socket, AGENT_TIMEOUT_MS);
	if (!r)
		r = gw_ctl_client_call(&cl, type, req, GW_MIG_MSG_TYPE__GW_MIG_PROGRESS,
				       &gw_mig_progress__descriptor, &rep);
	gw_ctl_client_close(&cl);
	if (r) {
		snprintf(err, errlen, "%s", cl.err);
		return r;
	}
	const GwMigProgress *p = (const GwMigProgress *)rep;
	snprintf(result, rlen, "%s", p->result);
	snprintf(err, errlen, "%s", p->error ? p->error : "");
	if (stats && p->has_total_ms && p->has_downtime_ms && p->has_bytes_transferred) {
		stats->has_stats = true;
		stats->total_ms = p->total_ms;
		stats->downtime_ms = p->downtime_ms;
		stats->bytes = p->bytes_transferred;
	}
	protobuf_c_message_free_unpacked(rep, NULL);
	return 0;
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
	if (agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &sr.base, result,
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
	int r = agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE, &req.base, result,
			       sizeof(result), err, sizeof(err), NULL);
	if (r == -ENOENT) { /* gone from this agent: did it move while we were down? */
		char e2[512];
		if (agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &sr.base, result,
				   sizeof(result), e2, sizeof(e2), mr) == 0 &&
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
	int r = agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_CANCEL, &req.base, result,
			       sizeof(result), err, sizeof(err), NULL);
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
		if (agent_mig_call(c, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &req.base, result,
				   sizeof(result), err, sizeof(err), mr)) {
			if (++mr->errors >= MIG_POLL_ERRORS)
				mig_report(c, mr, "failed", err);
			continue;
		}
		mr->errors = 0;
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

/*
 * Acting member: evacuate hosts in maintenance, one VM at a time (cluster-wide), each to
 * the up host with the most free memory that satisfies its anti-affinity.
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
		char target[GW_COORD_NAME_MAX], why[256] = "";
		if (!h->evacuating || h->state != GW_HOST_MAINTENANCE)
			continue;
		for (size_t j = 0; j < c->st.n_vms && !vm; j++) {
			struct gw_coord_vm *v = &c->st.vms[j];
			if (strcmp(v->host, h->name) == 0 &&
			    (v->state == GW_CVM_STARTING || v->state == GW_CVM_RUNNING))
				vm = v;
		}
		if (vm && vm->state == GW_CVM_STARTING)
			return; /* let it start first */
		/* a live migration: only to hosts on this host's VM backend */
		if (vm && gw_coord_place(&c->st, vm->name, vm->memory_mib, vm->group, h->vm_backend,
					 target, sizeof(target)))
			snprintf(why, sizeof(why),
				 "vm %s: no up host outside maintenance%s%s has %u MiB free%s%s",
				 vm->name, h->vm_backend[0] ? " on the VM backend " : "",
				 h->vm_backend, vm->memory_mib,
				 vm->group[0] ? " outside anti-affinity group " : "", vm->group);
		if (!vm || why[0]) {
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

void gw_coord_ha_tick(struct gw_coord *c)
{
	gw_coord_cluster_tick(c);
	if (!c->cpg_ok || !c->synced || c->waiting)
		return;
	if (gw_now_mono_ms() - c->last_hello_ms >= GW_COORD_HELLO_PERIOD_MS)
		gw_coord_hello(c);
	if (gw_coord_is_acting(c)) {
		fence_lost_hosts(c);
		plan_restarts(c);
		evacuate(c);
	} else {
		for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++)
			if (c->fence[i].host[0])
				gw_coord_fence_abort(&c->fence[i]);
		c->restart_inflight[0] = 0;
		c->evac_wait_until_ms = 0;
	}
	local_starts(c);
	local_migrations(c);
	gw_coord_admin_tick(c);
	gw_coord_reconcile_tick(c);
}
