/* coord_snapshot.c -- the cluster state as one message (snapshots for joiners) and its durable
 * copy on disk (atomic write + fsync). */
#include "coord_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	       "state"
#define STATE_FILE_MAX (64u << 20)
#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

/* ---- snapshot encoding and the durable copy ---- */

int gw_coord_state_encode(const struct gw_coord_state *st, uint32_t from_nodeid, bool quorate,
			  uint8_t **buf, size_t *len)
{
	GwClSnapshot s = GW_CL_SNAPSHOT__INIT;
	GwClHost hosts[GW_COORD_MAX_HOSTS], *hp[GW_COORD_MAX_HOSTS];
	GwClEvent evs[GW_COORD_MAX_EVENTS], *ep[GW_COORD_MAX_EVENTS];
	GwClDeletedVm del[GW_COORD_MAX_DELETED], *dp[GW_COORD_MAX_DELETED];
	GwClDriver drv[GW_COORD_MAX_HOSTS][GW_COORD_MAX_DRIVERS];
	GwClDriver *drvp[GW_COORD_MAX_HOSTS][GW_COORD_MAX_DRIVERS];
	GwClVm *vms = calloc(st->n_vms + 1, sizeof(*vms));
	GwClVm **vp = calloc(st->n_vms + 1, sizeof(*vp));
	int r = -ENOMEM;
	if (!vms || !vp)
		goto out;
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *h = &st->hosts[i];
		gw_cl_host__init(&hosts[i]);
		hosts[i].nodeid = h->nodeid;
		hosts[i].name = (char *)h->name;
		hosts[i].state = (char *)gw_coord_host_state_name(h->state);
		hosts[i].has_mem_total_mib = hosts[i].has_mem_avail_mib = 1;
		hosts[i].mem_total_mib = h->mem_total_mib;
		hosts[i].mem_avail_mib = h->mem_avail_mib;
		hosts[i].agent_listen = (char *)h->agent_listen;
		hosts[i].vm_backend = (char *)h->vm_backend;
		hosts[i].has_fence_attempts = 1;
		hosts[i].fence_attempts = h->fence_attempts;
		hosts[i].has_evacuating = hosts[i].has_evac_id = hosts[i].has_maintenance = 1;
		hosts[i].maintenance = h->maintenance;
		hosts[i].evacuating = h->evacuating;
		hosts[i].evac_id = h->evac_id;
		hosts[i].maint_error = (char *)h->maint_error;
		hosts[i].has_watchdog_s = 1;
		hosts[i].watchdog_s = h->watchdog_s;
		hosts[i].has_offline = 1;
		hosts[i].offline = h->offline;
		for (size_t k = 0; k < h->n_drivers && k < GW_COORD_MAX_DRIVERS; k++) {
			gw_cl_driver__init(&drv[i][k]);
			drv[i][k].name = (char *)h->drivers[k].name;
			drv[i][k].available = h->drivers[k].available;
			drv[i][k].status = (char *)h->drivers[k].status;
			drvp[i][k] = &drv[i][k];
		}
		hosts[i].n_drivers = h->n_drivers;
		hosts[i].drivers = drvp[i];
		hosts[i].has_cpus_milli = hosts[i].has_link_mbps = 1;
		hosts[i].cpus_milli = h->cpus_milli;
		hosts[i].link_mbps = h->link_mbps;
		hosts[i].has_max_in = hosts[i].has_max_out = 1;
		hosts[i].max_in = h->max_in;
		hosts[i].max_out = h->max_out;
		hp[i] = &hosts[i];
	}
	for (size_t i = 0; i < st->n_vms; i++) {
		const struct gw_coord_vm *v = &st->vms[i];
		gw_cl_vm__init(&vms[i]);
		vms[i].name = (char *)v->name;
		vms[i].host = (char *)v->host;
		vms[i].state = (char *)gw_coord_vm_state_name(v->state);
		vms[i].ha = v->ha;
		vms[i].has_priority = vms[i].has_vcpus = vms[i].has_restarts = 1;
		vms[i].priority = v->priority;
		vms[i].anti_affinity = (char *)v->group;
		vms[i].image = (char *)v->image;
		vms[i].memory_mib = v->memory_mib;
		vms[i].vcpus = v->vcpus;
		vms[i].cmdline = (char *)v->cmdline;
		vms[i].restarts = v->restarts;
		vms[i].reason = (char *)v->reason;
		vms[i].migrate_to = (char *)v->migrate_to;
		vms[i].has_mig_id = 1;
		vms[i].mig_id = v->mig_id;
		vms[i].migrate_error = (char *)v->migrate_error;
		vms[i].has_refused_id = 1;
		vms[i].refused_id = v->refused_id;
		vms[i].has_migrate_cancel = v->migrate_cancel;
		vms[i].migrate_cancel = v->migrate_cancel;
		vms[i].driver = v->driver[0] ? (char *)v->driver : NULL;
		vms[i].xml = v->xml;
		vms[i].has_importing = v->importing;
		vms[i].importing = v->importing;
		vms[i].has_cpu_milli = vms[i].has_dirty_pps = 1;
		vms[i].cpu_milli = v->cpu_milli;
		vms[i].dirty_pps = v->dirty_pps;
		vms[i].has_failback = v->failback;
		vms[i].failback = v->failback;
		vms[i].pref_host = v->pref_host[0] ? (char *)v->pref_host : NULL;
		vp[i] = &vms[i];
	}
	for (size_t i = 0; i < st->n_events; i++) {
		const struct gw_coord_event *e =
		    &st->events[(st->ev_first + i) % GW_COORD_MAX_EVENTS];
		gw_cl_event__init(&evs[i]);
		evs[i].seq = e->seq;
		evs[i].time_ms = e->time_ms;
		evs[i].kind = (char *)e->kind;
		evs[i].host = (char *)e->host;
		evs[i].vm = (char *)e->vm;
		evs[i].text = (char *)e->text;
		ep[i] = &evs[i];
	}
	for (size_t i = 0; i < st->n_deleted; i++) {
		gw_cl_deleted_vm__init(&del[i]);
		del[i].name = (char *)st->deleted[i].name;
		del[i].host = (char *)st->deleted[i].host;
		dp[i] = &del[i];
	}
	s.n_deleted = st->n_deleted;
	s.deleted = dp;
	s.n_hosts = st->n_hosts;
	s.hosts = hp;
	s.n_vms = st->n_vms;
	s.vms = vp;
	s.n_events = st->n_events;
	s.events = ep;
	s.next_event_seq = st->next_event_seq;
	s.from_nodeid = from_nodeid;
	s.has_quorate = quorate;
	s.quorate = quorate;
	if (gw_coord_drs_encode(st, &s))
		goto out;
	*len = gw_cl_snapshot__get_packed_size(&s);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		goto out;
	gw_cl_snapshot__pack(&s, *buf);
	r = 0;
out:
	gw_coord_drs_encode_free(&s);
	free(vms);
	free(vp);
	return r;
}

int gw_coord_state_decode(struct gw_coord_state *st, const uint8_t *buf, size_t len)
{
	GwClSnapshot *s = gw_cl_snapshot__unpack(NULL, len, buf);
	struct gw_coord_state n;
	int r = -EBADMSG;
	if (!s)
		return -EBADMSG;
	gw_coord_state_init(&n, st->path);
	if (s->n_hosts > GW_COORD_MAX_HOSTS)
		goto out;
	for (size_t i = 0; i < s->n_hosts; i++) {
		int hs = gw_coord_parse_name(gw_coord_host_names, 5, s->hosts[i]->state);
		/* one entry per node id: a snapshot that repeats one is not a member's */
		if (gw_coord_host_by_nodeid(&n, s->hosts[i]->nodeid))
			goto out;
		struct gw_coord_host *h = gw_coord_host_insert(&n, s->hosts[i]->nodeid);
		if (hs < 0 || !h)
			goto out;
		COPY(h->name, s->hosts[i]->name);
		h->state = (enum gw_coord_host_state)hs;
		h->mem_total_mib = s->hosts[i]->mem_total_mib;
		h->mem_avail_mib = s->hosts[i]->mem_avail_mib;
		COPY(h->agent_listen, s->hosts[i]->agent_listen);
		COPY(h->vm_backend, s->hosts[i]->vm_backend);
		h->fence_attempts = s->hosts[i]->fence_attempts;
		h->maintenance = s->hosts[i]->maintenance;
		h->evacuating = s->hosts[i]->evacuating;
		h->evac_id = s->hosts[i]->evac_id;
		COPY(h->maint_error, s->hosts[i]->maint_error);
		h->watchdog_s = s->hosts[i]->watchdog_s;
		h->offline = s->hosts[i]->offline;
		h->cpus_milli = s->hosts[i]->cpus_milli;
		h->link_mbps = s->hosts[i]->link_mbps;
		h->max_in = s->hosts[i]->max_in;
		h->max_out = s->hosts[i]->max_out;
		for (size_t k = 0; k < s->hosts[i]->n_drivers && k < GW_COORD_MAX_DRIVERS; k++) {
			const GwClDriver *d = s->hosts[i]->drivers[k];
			COPY(h->drivers[k].name, d->name);
			h->drivers[k].available = d->available;
			COPY(h->drivers[k].status, d->status);
			h->n_drivers++;
		}
	}
	for (size_t i = 0; i < s->n_vms; i++) {
		const GwClVm *v = s->vms[i];
		int vs = gw_coord_parse_name(gw_coord_vm_names, GW_CVM_COUNT, v->state);
		struct gw_coord_vm *vm;
		/* one entry per VM, with a name that fits: a snapshot that repeats one (or that
		 * two names would collapse into one) is not a member's */
		if (vs < 0 || strlen(v->name) >= GW_COORD_NAME_MAX || gw_coord_vm_find(&n, v->name))
			goto out;
		r = -ENOMEM;
		if (!(vm = gw_coord_vm_insert(&n, v->name)))
			goto out;
		r = -EBADMSG;
		COPY(vm->host, v->host);
		vm->state = (enum gw_coord_vm_state)vs;
		vm->ha = v->ha;
		vm->priority = v->priority;
		COPY(vm->group, v->anti_affinity);
		COPY(vm->image, v->image);
		vm->memory_mib = v->memory_mib;
		vm->vcpus = v->vcpus;
		COPY(vm->cmdline, v->cmdline);
		vm->restarts = v->restarts;
		COPY(vm->reason, v->reason);
		COPY(vm->migrate_to, v->migrate_to);
		vm->mig_id = v->mig_id;
		COPY(vm->migrate_error, v->migrate_error);
		vm->refused_id = v->refused_id;
		vm->migrate_cancel = v->has_migrate_cancel && v->migrate_cancel;
		bool libvirt = v->driver && strcmp(v->driver, "libvirt") == 0;
		if (v->driver && *v->driver && !libvirt && strcmp(v->driver, "microvm") != 0)
			goto out; /* a driver this coordinator does not know */
		COPY(vm->driver, libvirt ? "libvirt" : "");
		vm->importing = libvirt && v->has_importing && v->importing;
		vm->cpu_milli = v->cpu_milli;
		vm->dirty_pps = v->dirty_pps;
		vm->failback = v->has_failback && v->failback;
		COPY(vm->pref_host, v->pref_host);
		r = libvirt ? gw_coord_vm_set_xml(vm, v->xml) : 0;
		if (r) { /* too large: not a member's state */
			r = r == -ENOMEM ? -ENOMEM : -EBADMSG;
			goto out;
		}
		r = -EBADMSG;
	}
	for (size_t i = 0; i < s->n_events && i < GW_COORD_MAX_EVENTS; i++) {
		struct gw_coord_event *e = &n.events[i];
		e->seq = s->events[i]->seq;
		e->time_ms = s->events[i]->time_ms;
		COPY(e->kind, s->events[i]->kind);
		COPY(e->host, s->events[i]->host);
		COPY(e->vm, s->events[i]->vm);
		COPY(e->text, s->events[i]->text);
		n.n_events++;
	}
	for (size_t i = 0; i < s->n_deleted && i < GW_COORD_MAX_DELETED; i++) {
		COPY(n.deleted[i].name, s->deleted[i]->name);
		COPY(n.deleted[i].host, s->deleted[i]->host);
		n.n_deleted++;
	}
	n.next_event_seq = s->next_event_seq;
	if (gw_coord_drs_decode(&n, s))
		goto out;
	gw_coord_state_free(st);
	*st = n;
	r = 0;
out:
	if (r)
		gw_coord_state_free(&n);
	gw_cl_snapshot__free_unpacked(s, NULL);
	return r;
}

int gw_coord_state_save(const struct gw_coord_state *st)
{
	uint8_t *buf;
	size_t len;
	int r = gw_coord_state_encode(st, 0, false, &buf, &len);
	if (r)
		return r;
	r = gw_file_write_atomic(st->path, buf, len, 0600);
	free(buf);
	if (r)
		gw_err(SUBSYS, "cannot write the durable state %s: %s", st->path, strerror(-r));
	return r;
}

int gw_coord_state_load(struct gw_coord_state *st)
{
	char *buf;
	size_t len;
	int r = gw_file_read(st->path, STATE_FILE_MAX, &buf, &len);
	if (r)
		return r;
	r = gw_coord_state_decode(st, (const uint8_t *)buf, len);
	free(buf);
	if (r)
		gw_err(SUBSYS, "durable state %s is corrupt: %s", st->path, strerror(-r));
	return r;
}
