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
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "ha"

/*
 * Create and start vm through the local agent, from the definition the cluster state holds:
 * a micro-VM from its image, a libvirt VM from its domain XML (define + start). An imported
 * libvirt VM (vm->importing) is adopted instead (adopt = true, no XML) and its definition
 * read back into *info (the caller frees it). An existing agent record (-EEXIST: a restart
 * of this member, a domain left defined here) is started as it is.
 */
static int start_local(struct gw_coord *c, const struct gw_coord_vm *vm, GwVmInfo **info, char *err,
		       size_t errlen)
{
	GwVmCreateReq cr = GW_VM_CREATE_REQ__INIT;
	GwVmNameReq nr = GW_VM_NAME_REQ__INIT;
	bool libvirt = gw_coord_vm_is_libvirt(vm);
	cr.name = (char *)vm->name;
	cr.image = libvirt ? "" : (char *)vm->image;
	cr.memory_mib = vm->memory_mib;
	cr.has_vcpus = 1;
	cr.vcpus = vm->vcpus;
	cr.cmdline = vm->cmdline[0] ? (char *)vm->cmdline : NULL;
	if (libvirt) {
		cr.driver = "libvirt";
		cr.has_adopt = vm->importing;
		cr.adopt = vm->importing;
		cr.xml = vm->importing ? NULL : vm->xml;
	}
	int r = gw_coord_agent_call(c, GW_MSG_TYPE__GW_MSG_VM_CREATE, &cr.base, err, errlen);
	if (r && r != -EEXIST)
		return r;
	nr.name = (char *)vm->name;
	r = gw_coord_agent_call(c, GW_MSG_TYPE__GW_MSG_VM_START, &nr.base, err, errlen);
	if (r && r != -EALREADY)
		return r;
	if (!vm->importing)
		return 0;
	r = gw_coord_agent_vm_call(c, GW_MSG_TYPE__GW_MSG_VM_SHOW, &nr.base, info, err, errlen);
	if (!r && (!(*info)->driver || strcmp((*info)->driver, "libvirt") != 0)) {
		snprintf(err, errlen,
			 "import: the agent's vm '%s' is a %s VM, not a libvirt domain", vm->name,
			 (*info)->driver ? (*info)->driver : "microvm");
		r = -EEXIST;
	}
	return r;
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
		GwVmInfo *info = NULL;
		int r = start_local(c, vm, &info, err, sizeof(err));
		GwClVmStateMsg m = GW_CL_VM_STATE_MSG__INIT;
		m.name = vm->name;
		m.host = c->cfg.node;
		m.state = r ? "failed" : "running";
		m.reason = r ? err : NULL;
		m.time_ms = gw_now_wall_ms();
		if (!r && info) { /* an import: the adopted definition goes to the cluster */
			m.xml = info->xml;
			m.has_memory_mib = m.has_vcpus = 1;
			m.memory_mib = info->memory_mib;
			m.vcpus = info->vcpus;
		}
		if (r)
			gw_warn(SUBSYS, "vm '%s': start on %s failed: %s", vm->name, c->cfg.node,
				err);
		else
			gw_info(SUBSYS, "vm '%s': created and started by the agent in %llu ms",
				vm->name, gw_now_mono_ms() - t0);
		gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_STATE, &m);
		if (info)
			protobuf_c_message_free_unpacked(&info->base, NULL);
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
	if (gw_coord_place(&c->st, vm->name, vm->memory_mib, vm->group, vm->driver, NULL, target,
			   sizeof(target))) {
		snprintf(reason, sizeof(reason), "no up host%s%s has %u MiB free%s%s",
			 vm->driver[0] ? " with the driver " : "", vm->driver, vm->memory_mib,
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

/* Tick step (synced members): the acting member fences lost hosts and plans restarts;
 * every member starts the VMs placed on it. */
void gw_coord_ha_step(struct gw_coord *c)
{
	if (gw_coord_is_acting(c)) {
		fence_lost_hosts(c);
		plan_restarts(c);
	} else {
		for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++)
			if (c->fence[i].host[0])
				gw_coord_fence_abort(&c->fence[i]);
		c->restart_inflight[0] = 0;
	}
	local_starts(c);
}
