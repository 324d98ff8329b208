/* coord_api.c -- the coordinator's control API: request handlers in a table keyed by message type.
 */
#include "coord.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_sock.h"

#define SUBSYS	 "api"
#define API_BASE 200

int gw_coord_api_listen(struct gw_coord *c)
{
	int fd = gw_unix_listen_private(c->cfg.socket);
	if (fd < 0)
		return fd;
	c->listen_fd = fd;
	for (size_t i = 0; i < GW_COORD_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	return 0;
}

static void client_close(struct gw_coord_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->buf);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

void gw_coord_api_accept(struct gw_coord *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (size_t i = 0; i < GW_COORD_MAX_CLIENTS; i++) {
		if (c->clients[i].fd < 0) {
			c->clients[i].fd = fd;
			return;
		}
	}
	gw_msg_send_error(fd, -EBUSY, "too many clients (max %d)", GW_COORD_MAX_CLIENTS);
	close(fd);
}

/* ---- handlers ---- */

typedef int (*api_fn)(struct gw_coord *c, int fd, const ProtobufCMessage *m);

static int h_status(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	GwClStatus s = GW_CL_STATUS__INIT;
	GwClMember mem[GW_COORD_MAX_HOSTS], *mp[GW_COORD_MAX_HOSTS];
	for (size_t i = 0; i < c->n_members; i++) {
		struct gw_coord_host *h = gw_coord_host_by_nodeid(&c->st, c->members[i]);
		gw_cl_member__init(&mem[i]);
		mem[i].nodeid = c->members[i];
		mem[i].name = h ? h->name : NULL;
		mp[i] = &mem[i];
	}
	s.quorate = c->quorate;
	s.n_members = c->n_members;
	s.members = mp;
	s.acting_nodeid = gw_coord_acting(c);
	s.local_nodeid = c->local_nodeid;
	s.local_name = c->cfg.node;
	s.synced = c->synced && !c->waiting;
	return gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_STATUS_REPLY, &s.base);
}

/* The state as a snapshot message: hosts, VMs and events, decoded back for replies. */
static GwClSnapshot *snapshot(struct gw_coord *c)
{
	uint8_t *buf;
	size_t len;
	if (gw_coord_state_encode(&c->st, c->local_nodeid, c->quorate, &buf, &len))
		return NULL;
	GwClSnapshot *s = gw_cl_snapshot__unpack(NULL, len, buf);
	free(buf);
	return s;
}

static int h_host_list(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	GwClSnapshot *s = snapshot(c);
	if (!s)
		return gw_msg_send_error(fd, -ENOMEM, "out of memory");
	GwClHostList l = GW_CL_HOST_LIST__INIT;
	l.n_hosts = s->n_hosts;
	l.hosts = s->hosts;
	int r = gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_HOST_LIST_REPLY, &l.base);
	gw_cl_snapshot__free_unpacked(s, NULL);
	return r;
}

static int h_vm_list(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	GwClSnapshot *s = snapshot(c);
	if (!s)
		return gw_msg_send_error(fd, -ENOMEM, "out of memory");
	GwClVmList l = GW_CL_VM_LIST__INIT;
	l.n_vms = s->n_vms;
	l.vms = s->vms;
	for (size_t i = 0; i < s->n_vms; i++) { /* a list stays small: XML up to 64 KiB each */
		free(s->vms[i]->xml);
		s->vms[i]->xml = NULL;
	}
	int r = gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_VM_LIST_REPLY, &l.base);
	gw_cl_snapshot__free_unpacked(s, NULL);
	return r;
}

static int h_events(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClEventsReq *req = (const GwClEventsReq *)m;
	GwClSnapshot *s = snapshot(c);
	if (!s)
		return gw_msg_send_error(fd, -ENOMEM, "out of memory");
	GwClEventList l = GW_CL_EVENT_LIST__INIT;
	size_t first = 0;
	while (first < s->n_events && s->events[first]->seq <= req->since_seq)
		first++;
	l.n_events = s->n_events - first;
	l.events = s->events + first;
	int r = gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_EVENTS_REPLY, &l.base);
	gw_cl_snapshot__free_unpacked(s, NULL);
	return r;
}

static int refuse_unsynced(struct gw_coord *c, int fd, const char *what)
{
	return gw_msg_send_error(fd, -EAGAIN, "this member is %s: %s",
				 c->quorate ? "waiting for the cluster state" : "not quorate",
				 what);
}

/*
 * Live-migrate a cluster VM to another host: check it, multicast MIGRATE_START. The
 * member of the VM's host drives the agent (coord_ha.c) and multicasts MIGRATE_DONE. The
 * reply carries the migration id: godwitctl follows the VM until that migration ended.
 */
static int h_vm_migrate(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClVmMigrateReq *req = (const GwClVmMigrateReq *)m;
	char why[256];
	if (!c->quorate || !c->synced || c->waiting)
		return refuse_unsynced(c, fd, "no VM is migrated");
	struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, req->name);
	if (!vm)
		return gw_msg_send_error(fd, -ENOENT, "vm '%.80s': no such cluster VM", req->name);
	if (vm->migrate_to[0])
		return gw_msg_send_error(fd, -EBUSY, "vm '%s' is already migrating to %s", vm->name,
					 vm->migrate_to);
	if (vm->state != GW_CVM_RUNNING)
		return gw_msg_send_error(fd, -EINVAL, "vm '%s' is %s: only a running VM migrates",
					 vm->name, gw_coord_vm_state_name(vm->state));
	struct gw_coord_host *src = gw_coord_host_by_name(&c->st, vm->host);
	if (!src || (src->state != GW_HOST_UP && src->state != GW_HOST_MAINTENANCE))
		return gw_msg_send_error(fd, -EHOSTDOWN, "vm '%s': its host %s is %s", vm->name,
					 vm->host,
					 src ? gw_coord_host_state_name(src->state) : "unknown");
	int r = gw_coord_fits(&c->st, vm, req->to_host, why, sizeof(why));
	if (r)
		return gw_msg_send_error(fd, r, "vm '%s' cannot move: %s", vm->name, why);
	struct gw_coord_host *t = gw_coord_host_by_name(&c->st, req->to_host);
	if (!t->agent_listen[0])
		return gw_msg_send_error(fd, -EHOSTUNREACH,
					 "host %s: its agent announced no migration address",
					 t->name);
	GwClMigrate g = GW_CL_MIGRATE__INIT;
	g.vm = vm->name;
	g.from = vm->host;
	g.to = t->name;
	g.id = gw_coord_new_id();
	g.time_ms = gw_now_wall_ms();
	r = gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_MIGRATE_START, &g);
	if (r)
		return gw_msg_send_error(fd, r, "vm '%s': cannot multicast the migration",
					 vm->name);
	gw_info(SUBSYS, "vm '%s': migration %s -> %s requested", vm->name, g.from, g.to);
	GwClVm v = GW_CL_VM__INIT;
	v.name = vm->name;
	v.host = g.from;
	v.state = (char *)gw_coord_vm_state_name(vm->state);
	v.ha = vm->ha;
	v.image = vm->image;
	v.memory_mib = vm->memory_mib;
	v.migrate_to = g.to;
	v.has_mig_id = 1;
	v.mig_id = g.id;
	return gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &v.base);
}

/*
 * Cancel a cluster VM's running migration: multicast MIGRATE_CANCEL with its id; the
 * member of the VM's host has its agent cancel (coord_ha.c) and MIGRATE_DONE reports
 * "cancelled". The reply is the VM with the migration's id: godwitctl follows it.
 */
static int h_vm_migrate_cancel(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClVmMigrateCancelReq *req = (const GwClVmMigrateCancelReq *)m;
	if (!c->quorate || !c->synced || c->waiting)
		return refuse_unsynced(c, fd, "no migration is cancelled");
	struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, req->name);
	if (!vm)
		return gw_msg_send_error(fd, -ENOENT, "vm '%.80s': no such cluster VM", req->name);
	if (!vm->migrate_to[0])
		return gw_msg_send_error(fd, -EINVAL, "vm '%s': no cluster migration under way",
					 vm->name);
	GwClMigrate g = GW_CL_MIGRATE__INIT;
	g.vm = vm->name;
	g.from = vm->host;
	g.to = vm->migrate_to;
	g.id = vm->mig_id;
	g.time_ms = gw_now_wall_ms();
	int r = gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_MIGRATE_CANCEL, &g);
	if (r)
		return gw_msg_send_error(fd, r, "vm '%s': cannot multicast the cancel", vm->name);
	gw_info(SUBSYS, "vm '%s': cancel of the migration %s -> %s requested", vm->name, vm->host,
		vm->migrate_to);
	GwClVm v = GW_CL_VM__INIT;
	v.name = vm->name;
	v.host = vm->host;
	v.state = (char *)gw_coord_vm_state_name(vm->state);
	v.ha = vm->ha;
	v.image = vm->image;
	v.memory_mib = vm->memory_mib;
	v.migrate_to = vm->migrate_to;
	v.has_mig_id = 1;
	v.mig_id = vm->mig_id;
	return gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &v.base);
}

/*
 * Maintenance: enter multicasts MAINT_ENTER (the acting member then evacuates the host,
 * coord_ha.c); exit multicasts MAINT_EXIT. The reply carries the evacuation id.
 */
static int h_host_maint(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClHostMaintReq *req = (const GwClHostMaintReq *)m;
	if (!c->quorate || !c->synced || c->waiting)
		return refuse_unsynced(c, fd, "maintenance is not changed");
	struct gw_coord_host *h = gw_coord_host_by_name(&c->st, req->host);
	if (!h)
		return gw_msg_send_error(fd, -ENOENT, "no host '%.80s'", req->host);
	GwClMaint q = GW_CL_MAINT__INIT;
	q.host = h->name;
	q.time_ms = gw_now_wall_ms();
	uint16_t type = GW_CL_MSG_TYPE__GW_CL_MAINT_EXIT;
	if (req->enter) {
		if (h->state != GW_HOST_UP && h->state != GW_HOST_MAINTENANCE)
			return gw_msg_send_error(fd, -EHOSTDOWN, "host %s is %s", h->name,
						 gw_coord_host_state_name(h->state));
		type = GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER;
		q.has_id = 1;
		q.id = h->evacuating ? h->evac_id : gw_coord_new_id(); /* join a running one */
	} else if (!h->maintenance) {
		return gw_msg_send_error(fd, -EINVAL, "host %s is %s, not in maintenance", h->name,
					 gw_coord_host_state_name(h->state));
	}
	int r = 0;
	if (!req->enter || !h->evacuating)
		r = gw_coord_mcast(c, type, &q);
	if (r)
		return gw_msg_send_error(fd, r, "host %s: cannot multicast", h->name);
	gw_info(SUBSYS, "host %s: maintenance %s requested", h->name,
		req->enter ? "enter" : "exit");
	GwClHost o = GW_CL_HOST__INIT;
	o.nodeid = h->nodeid;
	o.name = h->name;
	o.state = req->enter ? "maintenance" : "up";
	o.has_evacuating = o.has_evac_id = 1;
	o.evacuating = req->enter;
	o.evac_id = q.id;
	return gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_HOST_REPLY, &o.base);
}

/*
 * Operator stop / start / delete of a cluster VM: check it against its state (the same
 * rules as the apply, coord_state_admin.c), multicast VM_ADMIN. The reply is the VM as
 * it was; godwitctl follows the cluster state until the change is applied.
 */
static int h_vm_admin(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClVmAdminReq *req = (const GwClVmAdminReq *)m;
	bool stop = strcmp(req->action, "stop") == 0, start = strcmp(req->action, "start") == 0,
	     del = strcmp(req->action, "delete") == 0;
	if (!stop && !start && !del)
		return gw_msg_send_error(fd, -EINVAL, "unknown action '%.32s'", req->action);
	if (!c->quorate || !c->synced || c->waiting)
		return refuse_unsynced(c, fd, "no VM is changed");
	struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, req->name);
	if (!vm)
		return gw_msg_send_error(fd, -ENOENT, "vm '%.80s': no such cluster VM", req->name);
	enum gw_coord_vm_state s = vm->state;
	const char *sn = gw_coord_vm_state_name(s);
	if (stop && vm->migrate_to[0])
		return gw_msg_send_error(fd, -EBUSY, "vm '%s' is migrating to %s: not stopped",
					 vm->name, vm->migrate_to);
	if (stop && s == GW_CVM_STOPPED)
		return gw_msg_send_error(fd, -EALREADY, "vm '%s' is already stopped", vm->name);
	if (stop && s != GW_CVM_STARTING && s != GW_CVM_RUNNING && s != GW_CVM_PENDING &&
	    s != GW_CVM_UNPLACED)
		return gw_msg_send_error(fd, -EINVAL, "vm '%s' is %s: nothing to stop", vm->name,
					 sn);
	if (start && s != GW_CVM_STOPPED && s != GW_CVM_FAILED && s != GW_CVM_LOST)
		return gw_msg_send_error(fd, s == GW_CVM_RUNNING ? -EALREADY : -EINVAL,
					 "vm '%s' is %s: only a stopped, failed or lost VM starts",
					 vm->name, sn);
	if (del && s != GW_CVM_STOPPED && s != GW_CVM_FAILED && s != GW_CVM_LOST &&
	    s != GW_CVM_UNPLACED)
		return gw_msg_send_error(fd, -EBUSY, "vm '%s' is %s: stop it before deleting it",
					 vm->name, sn);
	GwClVmAdmin a = GW_CL_VM_ADMIN__INIT;
	a.name = vm->name;
	a.action = req->action;
	a.time_ms = gw_now_wall_ms();
	int r = gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_ADMIN, &a);
	if (r)
		return gw_msg_send_error(fd, r, "vm '%s': cannot multicast the %s", vm->name,
					 req->action);
	gw_info(SUBSYS, "vm '%s': %s requested (it is %s on %s)", vm->name, req->action, sn,
		vm->host);
	GwClVm v = GW_CL_VM__INIT;
	v.name = vm->name;
	v.host = vm->host;
	v.state = (char *)sn;
	v.ha = vm->ha;
	v.image = vm->image;
	v.memory_mib = vm->memory_mib;
	return gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &v.base);
}

struct api_entry {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
	api_fn fn;
};

/* The API, indexed by GwClMsgType - 200. */
/* clang-format off */
static const struct api_entry api_table[] = {
	[GW_CL_MSG_TYPE__GW_CL_API_STATUS - API_BASE] = {"status", &gw_cl_status_req__descriptor, h_status}, /* 200 */
	[GW_CL_MSG_TYPE__GW_CL_API_HOST_LIST - API_BASE] = {"host-list", &gw_cl_status_req__descriptor, h_host_list}, /* 202 */
	[GW_CL_MSG_TYPE__GW_CL_API_VM_CREATE - API_BASE] = {"vm-create", &gw_cl_vm_create_req__descriptor, gw_coord_api_vm_create}, /* 204 (coord_vmdef.c) */
	[GW_CL_MSG_TYPE__GW_CL_API_VM_LIST - API_BASE] = {"vm-list", &gw_cl_status_req__descriptor, h_vm_list}, /* 206 */
	[GW_CL_MSG_TYPE__GW_CL_API_EVENTS - API_BASE] = {"events", &gw_cl_events_req__descriptor, h_events}, /* 208 */
	[GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE - API_BASE] = {"vm-migrate", &gw_cl_vm_migrate_req__descriptor, h_vm_migrate}, /* 210 */
	[GW_CL_MSG_TYPE__GW_CL_API_HOST_MAINT - API_BASE] = {"host-maint", &gw_cl_host_maint_req__descriptor, h_host_maint}, /* 212 */
	[GW_CL_MSG_TYPE__GW_CL_API_BALANCE - API_BASE] = {"balance", &gw_cl_balance_req__descriptor, gw_coord_api_balance}, /* 214 (coord_drs_api.c) */
	[GW_CL_MSG_TYPE__GW_CL_API_VM_ADMIN - API_BASE] = {"vm-admin", &gw_cl_vm_admin_req__descriptor, h_vm_admin}, /* 216 */
	[GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE_CANCEL - API_BASE] = {"vm-migrate-cancel", &gw_cl_vm_migrate_cancel_req__descriptor, h_vm_migrate_cancel}, /* 218 */
	[GW_CL_MSG_TYPE__GW_CL_API_RULE - API_BASE] = {"rule", &gw_cl_rule_req__descriptor, gw_coord_api_rule}, /* 219 (coord_drs_api.c) */
};
/* clang-format on */

ProtobufCMessage *gw_coord_api_decode(uint16_t type, const uint8_t *p, uint32_t len,
				      const char **name)
{
	size_t idx = (size_t)type - API_BASE;
	if (name)
		*name = NULL;
	if (type < API_BASE || idx >= sizeof(api_table) / sizeof(api_table[0]) ||
	    !api_table[idx].fn)
		return NULL;
	if (name)
		*name = api_table[idx].name;
	return protobuf_c_message_unpack(api_table[idx].desc, NULL, len, p);
}

static int dispatch(struct gw_coord *c, int fd, uint16_t type, const uint8_t *p, uint32_t len)
{
	const char *name;
	ProtobufCMessage *m = gw_coord_api_decode(type, p, len, &name);
	if (!name) {
		gw_warn(SUBSYS, "request of unknown type %u (%u bytes) refused", type, len);
		return gw_msg_send_error(fd, -EOPNOTSUPP, "unknown request type %u", type);
	}
	const struct api_entry *e = &api_table[(size_t)type - API_BASE];
	if (!m) {
		gw_warn(SUBSYS, "malformed %s request (%u bytes) refused", e->name, len);
		return gw_msg_send_error(fd, -EBADMSG, "malformed %s request", e->name);
	}
	gw_debug(SUBSYS, "request %s", e->name);
	int r = e->fn(c, fd, m);
	protobuf_c_message_free_unpacked(m, NULL);
	return r;
}

void gw_coord_api_readable(struct gw_coord *c, size_t i)
{
	struct gw_coord_client *cl = &c->clients[i];
	if (cl->cap - cl->len < 65536) {
		size_t cap = cl->cap ? cl->cap * 2 : 65536;
		if (cap > GW_FRAME_MAX_PAYLOAD + GW_FRAME_HDR_LEN + 65536)
			cap = GW_FRAME_MAX_PAYLOAD + GW_FRAME_HDR_LEN + 65536;
		if (cap > cl->cap) {
			uint8_t *nb = realloc(cl->buf, cap);
			if (!nb) {
				client_close(cl);
				return;
			}
			cl->buf = nb;
			cl->cap = cap;
		}
	}
	ssize_t n = read(cl->fd, cl->buf + cl->len, cl->cap - cl->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(cl);
		return;
	}
	cl->len += (size_t)n;
	size_t off = 0;
	for (;;) {
		struct gw_frame f;
		long used = gw_frame_parse(cl->buf + off, cl->len - off, GW_FRAME_MAX_PAYLOAD, &f);
		if (used < 0) {
			gw_msg_send_error(cl->fd, -EMSGSIZE, "frame too large");
			client_close(cl);
			return;
		}
		if (used == 0)
			break;
		int r = dispatch(c, cl->fd, f.type, f.payload, f.len);
		off += (size_t)used;
		if (r) {
			client_close(cl);
			return;
		}
	}
	memmove(cl->buf, cl->buf + off, cl->len - off);
	cl->len -= off;
}
