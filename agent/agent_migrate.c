/* agent_migrate.c -- the agent's part in live migration: starts outgoing migrations in the
 * VM's process, accepts authenticated peer connections and hands them to the right VMM,
 * answers outcome queries, and keeps the results of migrations that have ended. */
#include "agent_migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent_config.h"
#include "control.h"
#include "control.pb-c.h"
#include "driver.h"
#include "host_info.h"
#include "gw_auth.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_tls.h"
#include "gw_transport.h"
#include "migrate.h"
#include "migration.pb-c.h"
#include "vmm.h"
#include "vmtable.h"

#define SUBSYS		"migrate"
#define PEER_TIMEOUT_MS 5000
#define RECENT_MAX	64

/* ---- results of ended migrations, by VM name (newest wins) ---- */

static struct {
	char name[GW_NAME_MAX];
	uint8_t *pb;
	size_t len;
} recent[RECENT_MAX];
static unsigned recent_next;

static void recent_put(const char *name, const uint8_t *pb, size_t len)
{
	unsigned slot = recent_next;
	for (unsigned i = 0; i < RECENT_MAX; i++)
		if (recent[i].pb && !strcmp(recent[i].name, name))
			slot = i;
	if (slot == recent_next)
		recent_next = (recent_next + 1) % RECENT_MAX;
	free(recent[slot].pb);
	recent[slot].pb = malloc(len ? len : 1);
	if (!recent[slot].pb)
		return;
	memcpy(recent[slot].pb, pb, len);
	recent[slot].len = len;
	snprintf(recent[slot].name, sizeof(recent[slot].name), "%s", name);
}

static int recent_reply(int fd, const char *name)
{
	for (unsigned i = 0; i < RECENT_MAX; i++)
		if (recent[i].pb && !strcmp(recent[i].name, name))
			return gw_frame_send(fd, GW_MIG_MSG_TYPE__GW_MIG_PROGRESS, recent[i].pb,
					     (uint32_t)recent[i].len);
	return 1;
}

GwMigProgress *gw_agent_mig_recent(const char *name)
{
	for (unsigned i = 0; i < RECENT_MAX; i++)
		if (recent[i].pb && !strcmp(recent[i].name, name))
			return gw_mig_progress__unpack(NULL, recent[i].len, recent[i].pb);
	return NULL;
}

static void outcome_dir(struct gw_agent *ag, char *buf, size_t len)
{
	snprintf(buf, len, "%s/migrations", ag->cfg.state_dir);
}

/* ---- set-up ---- */

void gw_agent_mig_init(struct gw_agent *ag)
{
	int r = gw_auth_load_key(ag->cfg.cluster_key, &ag->key, &ag->keylen);
	if (r) {
		gw_warn(SUBSYS, "no cluster key (%s: %s): migrations in and out are disabled",
			ag->cfg.cluster_key, strerror(-r));
		ag->key = NULL;
		return;
	}
	enum gw_tls_mode mode = GW_TLS_OFF;
	(void)gw_tls_parse_mode(ag->cfg.tls_mode, &mode); /* checked when the config was read */
	if (mode != GW_TLS_OFF) {
		char err[512];
		r = gw_tls_ctx_new(mode, ag->cfg.tls_ca, ag->cfg.tls_cert, ag->cfg.tls_key,
				   &ag->tls, err, sizeof(err));
		if (r) {
			gw_err(SUBSYS, "[tls] mode = %s: %s: migrations in and out are disabled",
			       ag->cfg.tls_mode, err);
			gw_auth_key_free(ag->key, ag->keylen);
			ag->key = NULL;
			return;
		}
		if (err[0])
			gw_warn(SUBSYS, "[tls]: %s", err);
		if (strcmp(gw_tls_ctx_name(ag->tls), ag->cfg.node))
			gw_warn(
			    SUBSYS,
			    "host certificate %s names '%s', this node is '%s': peers that check "
			    "BEGIN against certificates will refuse this host",
			    ag->cfg.tls_cert, gw_tls_ctx_name(ag->tls), ag->cfg.node);
		gw_info(SUBSYS, "TLS %s on peer links (certificate of '%s')", ag->cfg.tls_mode,
			gw_tls_ctx_name(ag->tls));
	}
	struct gw_transport_opts o = {.timeout_ms = 1000};
	r = gw_transport_tcp.listen(ag->cfg.listen, &o, &ag->peer_lst);
	if (r) {
		gw_err(SUBSYS, "cannot listen for migrations on %s: %s", ag->cfg.listen,
		       strerror(-r));
		ag->peer_lst = NULL;
		return;
	}
	const char *colon = strrchr(ag->cfg.listen, ':');
	snprintf(ag->peer_addr, sizeof(ag->peer_addr), "%.*s:%d", (int)(colon - ag->cfg.listen),
		 ag->cfg.listen, gw_conn_local_port(ag->peer_lst));
	gw_info(SUBSYS, "accepting migrations on %s", ag->peer_addr);
}

void gw_agent_mig_shutdown(struct gw_agent *ag)
{
	gw_conn_close(ag->peer_lst);
	ag->peer_lst = NULL;
	gw_auth_key_free(ag->key, ag->keylen);
	ag->key = NULL;
	gw_tls_ctx_free(ag->tls);
	ag->tls = NULL;
}

int gw_agent_mig_listen_fd(struct gw_agent *ag)
{
	return ag->peer_lst ? gw_conn_fd(ag->peer_lst) : -1;
}

/* ---- peer connections ---- */

static void begin_refuse(struct gw_conn *c, const char *fmt, const char *a, const char *b)
{
	char text[300];
	snprintf(text, sizeof(text), fmt, a, b);
	gw_warn(SUBSYS, "incoming migration from %s refused: %s", gw_conn_peer_name(c), text);
	GwMigBeginReply rep = GW_MIG_BEGIN_REPLY__INIT;
	rep.ok = 0;
	rep.error = text;
	gw_mig_send(c, GW_MIG_MSG_TYPE__GW_MIG_BEGIN_REPLY, &rep.base);
}

/* vCPU state is the backend's own (KVM's registers vs. a ptrace'd thread's): a VM moves only
 * to a host whose VMs run on the same backend; refused before anything moves. */
static bool backend_matches(struct gw_agent *ag, const GwMigBegin *b, char *err, size_t len)
{
	const char *src = b->vm_backend && *b->vm_backend ? b->vm_backend : "kvm";
	const char *here = ag->cfg.vm_backend_used;

	if (!here[0]) {
		snprintf(err, len, "no usable VM backend on this host (vm_backend = %s)",
			 ag->cfg.vm_backend);
		return false;
	}
	if (strcmp(src, here)) {
		snprintf(err, len,
			 "vm '%s' runs on the %s backend on the source, this host runs VMs on %s: "
			 "live migration between VM backends is not supported",
			 b->name, src, here);
		return false;
	}
	return true;
}

static void on_begin(struct gw_agent *ag, struct gw_conn *c, const uint8_t *p, uint32_t len)
{
	char err[512] = "", num[32];
	GwMigBegin *b = gw_mig_begin__unpack(NULL, len, p);
	if (!b) {
		begin_refuse(c, "malformed BEGIN%s%s", "", "");
		return;
	}
	unsigned long long total, avail;
	struct gw_vm *vm = NULL;
	/* a micro-VM's state moves through its VMM; other drivers' VMs move by their own means */
	bool microvm = !b->driver || !*b->driver || !strcmp(b->driver, "microvm");
	if (b->version != GW_MIG_VERSION) {
		snprintf(num, sizeof(num), "%u", b->version);
		begin_refuse(c, "protocol version %s not supported (this host speaks %s)", num,
			     "1");
	} else if (!gw_vm_name_valid(b->name)) {
		begin_refuse(c, "bad VM name%s%s", "", "");
	} else if ((vm = gw_vmtable_find(&ag->vms, b->name))) {
		begin_refuse(c, "vm '%s' already exists on this host (%s)", b->name,
			     gw_vm_state_name(vm->state));
	} else if (b->vcpus < 1 || b->vcpus > GW_VMM_MAX_VCPUS ||
		   b->memory_mib < GW_VMM_MIN_MEM_MIB || b->memory_mib > GW_VMM_MAX_MEM_MIB ||
		   b->memory_mib % 2 || b->page_size != 4096 || b->streams < 1 ||
		   b->streams > GW_MIG_MAX_STREAMS || (microvm && b->image[0] != '/')) {
		begin_refuse(c, "VM shape out of range for vm '%s'%s", b->name, "");
	} else if (gw_conn_is_tls(c) && b->source_node &&
		   strcmp(b->source_node, gw_tls_peer_name(c))) {
		begin_refuse(c, "source claims to be '%s' but shows the certificate of '%s'",
			     b->source_node, gw_tls_peer_name(c));
	} else if (gw_tls_ctx_mode(ag->tls) == GW_TLS_REQUIRED && b->transport &&
		   !strcmp(b->transport, "rdma")) {
		begin_refuse(c,
			     "RDMA data streams are not encrypted: refused under [tls] mode = %s%s",
			     "required", "");
	} else if (microvm && !backend_matches(ag, b, err, sizeof(err))) {
		begin_refuse(c, "%s%s", err, "");
	} else if (gw_host_meminfo(&total, &avail) == 0 &&
		   b->memory_mib + ag->cfg.memory_reserve_mib >
		       avail + gw_ram_pool_covers_mib(&ag->pool, (uint64_t)b->memory_mib << 20)) {
		snprintf(num, sizeof(num), "%llu", avail);
		begin_refuse(c, "not enough host memory for vm '%s' (%s MiB available)", b->name,
			     num);
	} else {
		int r = gw_vmtable_add(&ag->vms, b->name, b->image, b->memory_mib, b->vcpus,
				       b->cmdline, &vm);
		if (r) {
			begin_refuse(c, "cannot define vm '%s': %s", b->name, strerror(-r));
			vm = NULL;
			goto out;
		}
		vm->mig_incoming = 1;
		vm->mig_id = b->migration_id;
		const char *drv_name = b->driver && *b->driver ? b->driver : "microvm";
		struct gw_driver *d = gw_driver_by_name(ag, drv_name);
		if (d && strcmp(drv_name, "microvm"))
			r = gw_vmtable_set_driver(&ag->vms, vm, drv_name, NULL);
		if (!d || !d->ops->migrate_in) {
			snprintf(err, sizeof(err),
				 "vm '%s': driver '%s' is not built into this agent", b->name,
				 drv_name);
			r = -ENOTSUP;
		} else if (!r) {
			r = d->ops->migrate_in(ag, vm, c, b, p, len, err, sizeof(err));
		}
		if (r) {
			begin_refuse(c, "%s%s", err[0] ? err : strerror(-r), "");
			gw_vmtable_remove(&ag->vms, vm);
			goto out;
		}
		gw_info(SUBSYS,
			"vm '%s': incoming migration %llu from %s (%u MiB, %u vCPUs, %u %s "
			"streams)",
			vm->name, (unsigned long long)b->migration_id, gw_conn_peer_name(c),
			b->memory_mib, b->vcpus, b->streams,
			b->transport && *b->transport ? b->transport : "tcp");
	}
out:
	gw_mig_begin__free_unpacked(b, NULL);
}

static void on_join(struct gw_agent *ag, struct gw_conn *c, const uint8_t *p, uint32_t len)
{
	char err[300];
	GwMigJoin *j = gw_mig_join__unpack(NULL, len, p);
	if (!j) {
		gw_warn(SUBSYS, "malformed JOIN from %s dropped", gw_conn_peer_name(c));
		return;
	}
	struct gw_vm *vm = NULL;
	for (size_t i = 0; i < ag->vms.count; i++)
		if (ag->vms.vms[i]->mig_incoming && ag->vms.vms[i]->mig_id == j->migration_id)
			vm = ag->vms.vms[i];
	if (!vm) {
		gw_warn(SUBSYS, "data stream from %s for unknown migration %llu dropped",
			gw_conn_peer_name(c), (unsigned long long)j->migration_id);
	} else {
		const struct gw_driver_ops *ops = gw_vm_ops(ag, vm);
		if (!ops->migrate_join)
			gw_warn(SUBSYS, "vm '%s': data stream %u from %s: its driver takes none",
				vm->name, j->stream, gw_conn_peer_name(c));
		else if (ops->migrate_join(ag, vm, c, j->stream, err, sizeof(err)))
			gw_warn(SUBSYS, "vm '%s': data stream %u refused: %s", vm->name, j->stream,
				err);
	}
	gw_mig_join__free_unpacked(j, NULL);
}

static void on_outcome_query(struct gw_agent *ag, struct gw_conn *c, const uint8_t *p, uint32_t len)
{
	char path[PATH_MAX + 32], dir[PATH_MAX], *data = NULL;
	size_t dlen;
	GwMigOutcomeQuery *q = gw_mig_outcome_query__unpack(NULL, len, p);
	if (!q)
		return;
	GwMigOutcome o = GW_MIG_OUTCOME__INIT;
	o.migration_id = q->migration_id;
	outcome_dir(ag, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%llu", dir, (unsigned long long)q->migration_id);
	o.outcome = "aborted"; /* no commit record and no migration running: never committed */
	if (gw_file_read(path, 64, &data, &dlen) == 0) {
		o.outcome = !strncmp(data, "committed", 9) ? "committed" : "aborted";
		free(data);
	} else {
		for (size_t i = 0; i < ag->vms.count; i++)
			if (ag->vms.vms[i]->mig_id == q->migration_id &&
			    ag->vms.vms[i]->state == GW_VM_MIGRATING)
				o.outcome = "unknown";
	}
	gw_info(SUBSYS, "%s asks for the outcome of migration %llu: %s", gw_conn_peer_name(c),
		(unsigned long long)q->migration_id, o.outcome);
	gw_mig_send(c, GW_MIG_MSG_TYPE__GW_MIG_OUTCOME, &o.base);
	gw_mig_outcome_query__free_unpacked(q, NULL);
}

/* A peer connects: authenticate it, read its first message, route the connection. Runs in
 * the event loop and blocks at most a few PEER_TIMEOUT_MS. */
void gw_agent_mig_on_accept(struct gw_agent *ag)
{
	struct gw_conn *c;
	uint16_t type;
	uint8_t *p = NULL;
	uint32_t len;
	int r = gw_conn_accept(ag->peer_lst, &c);
	if (r) {
		if (r != -ETIMEDOUT && r != -EAGAIN)
			gw_warn(SUBSYS, "accept on %s: %s", ag->peer_addr, strerror(-r));
		return;
	}
	gw_conn_set_timeout(c, PEER_TIMEOUT_MS);
	char peer[GW_TRANSPORT_NAME_MAX];
	snprintf(peer, sizeof(peer), "%s", gw_conn_peer_name(c));
	r = gw_auth_accept(ag->tls, ag->key, ag->keylen, &c); /* closes c on failure */
	if (r) {
		gw_warn(SUBSYS, "peer %s dropped: %s", peer,
			r == -EACCES ? "authentication failed (wrong cluster key)"
				     : gw_auth_strerror(r));
		return;
	}
	r = gw_mig_recv(c, &type, &p, &len);
	if (r) {
		gw_warn(SUBSYS, "peer %s: no request: %s", gw_conn_peer_name(c), strerror(-r));
	} else if (type == GW_MIG_MSG_TYPE__GW_MIG_BEGIN) {
		on_begin(ag, c, p, len);
	} else if (type == GW_MIG_MSG_TYPE__GW_MIG_JOIN) {
		on_join(ag, c, p, len);
	} else if (type == GW_MIG_MSG_TYPE__GW_MIG_OUTCOME_QUERY) {
		on_outcome_query(ag, c, p, len);
	} else {
		gw_warn(SUBSYS, "peer %s: unexpected message type %u, dropped",
			gw_conn_peer_name(c), type);
	}
	free(p);
	gw_conn_close(c); /* the VMM holds its own copy of a handed-over socket */
}

/* Keep a VM's last progress record (its driver's) by name, for status requests after the
 * record is gone. */
static void remember_progress(struct gw_agent *ag, struct gw_vm *vm)
{
	char err[256];
	GwMigProgress *pr = NULL;
	const struct gw_driver_ops *ops = gw_vm_ops(ag, vm);
	if (!ops->progress || ops->progress(ag, vm, &pr, err, sizeof(err)))
		return;
	size_t len = gw_mig_progress__get_packed_size(pr);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf) {
		gw_mig_progress__pack(pr, buf);
		recent_put(vm->name, buf, len);
		free(buf);
	}
	gw_mig_progress__free_unpacked(pr, NULL);
}

int gw_agent_mig_after_reap(struct gw_agent *ag, struct gw_vm *vm)
{
	if (!vm->mig_handed_over && !(vm->mig_incoming && !gw_vm_state_active(vm->state)))
		return 0;
	remember_progress(ag, vm);
	if (vm->mig_handed_over)
		gw_info(SUBSYS, "vm '%s' now lives on another host: %s", vm->name, vm->reason);
	else
		gw_info(SUBSYS, "vm '%s': incoming migration ended without a VM here: %s", vm->name,
			vm->reason);
	gw_vmtable_retire(&ag->vms, vm);
	return 1;
}

/* ---- control API ---- */

static int send_progress(int fd, GwMigProgress *pr)
{
	int r = gw_msg_send(fd, GW_MIG_MSG_TYPE__GW_MIG_PROGRESS, &pr->base);
	gw_mig_progress__free_unpacked(pr, NULL);
	return r;
}

int gw_ctl_vm_migrate(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmMigrateReq *req = (const GwVmMigrateReq *)msg;
	char err[512] = "", host[128];
	unsigned port;
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, req->name);
	if (!vm)
		return gw_msg_send_error(fd, -ENOENT, "vm '%s': no such VM", req->name);
	if (vm->state != GW_VM_RUNNING)
		return gw_msg_send_error(fd, -EINVAL, "vm '%s' is %s: only a running VM migrates",
					 vm->name, gw_vm_state_name(vm->state));
	if (!ag->key)
		return gw_msg_send_error(fd, -ENOKEY,
					 "no cluster key on this host (%s): cannot authenticate "
					 "to the destination",
					 ag->cfg.cluster_key);
	if (gw_parse_hostport(req->to, host, sizeof(host), &port) || port == 0)
		return gw_msg_send_error(fd, -EINVAL, "bad destination '%s': want ADDR:PORT",
					 req->to);
	if (!strcmp(req->to, ag->peer_addr))
		return gw_msg_send_error(fd, -EINVAL, "%s is this host", req->to);
	/* the data streams' transport: the request's, else this agent's default */
	GwVmMigrateReq eff = *req;
	eff.transport =
	    req->transport && *req->transport ? req->transport : ag->cfg.migration_transport;
	if (strcmp(eff.transport, "tcp") && strcmp(eff.transport, "rdma"))
		return gw_msg_send_error(fd, -EINVAL,
					 "vm '%s': unknown transport '%s' (tcp or rdma)", vm->name,
					 eff.transport);
	if (!gw_transport_get(eff.transport))
		return gw_msg_send_error(fd, -EPROTONOSUPPORT,
					 "vm '%s': RDMA transport not built into this agent",
					 vm->name);
	if (!strcmp(eff.transport, "rdma") && gw_tls_ctx_mode(ag->tls) == GW_TLS_REQUIRED)
		return gw_msg_send_error(fd, -EPROTONOSUPPORT,
					 "vm '%s': RDMA data streams are not encrypted: refused "
					 "under [tls] mode = required (use tcp)",
					 vm->name);
	uint64_t id = 0;
	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = gw_now_wall_ms() ^ ((uint64_t)getpid() << 32);
	GwMigProgress *pr = NULL;
	int r = gw_vm_ops(ag, vm)->migrate_out(ag, vm, &eff, id, &pr, err, sizeof(err));
	if (r)
		return gw_msg_send_error(fd, r, "%s", err);
	vm->state = GW_VM_MIGRATING;
	vm->mig_id = id;
	gw_vmtable_save(&ag->vms, vm);
	gw_info(SUBSYS, "vm '%s': migration %llu to %s started (%s)", vm->name,
		(unsigned long long)id, req->to, eff.transport);
	return send_progress(fd, pr);
}

int gw_ctl_vm_migrate_status(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	char err[512];
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, req->name);
	GwMigProgress *pr = NULL;
	/* a running migration first; an ended one's record is the driver's or, once the VM
	 * left this host, the one kept here */
	if (vm && gw_vm_state_active(vm->state) && gw_vm_ops(ag, vm)->progress &&
	    gw_vm_ops(ag, vm)->progress(ag, vm, &pr, err, sizeof(err)) == 0)
		return send_progress(fd, pr);
	int r = recent_reply(fd, req->name);
	if (r <= 0)
		return r;
	if (vm && gw_vm_ops(ag, vm)->progress &&
	    gw_vm_ops(ag, vm)->progress(ag, vm, &pr, err, sizeof(err)) == 0)
		return send_progress(fd, pr);
	return gw_msg_send_error(fd, -ENOENT, "vm '%s': no migration known", req->name);
}

int gw_ctl_vm_migrate_cancel(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	char err[512];
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, req->name);
	if (!vm)
		return gw_msg_send_error(fd, -ENOENT, "vm '%s': no such VM", req->name);
	if (vm->state != GW_VM_MIGRATING)
		return gw_msg_send_error(fd, -EINVAL, "vm '%s' is not migrating", vm->name);
	GwMigProgress *pr = NULL;
	int r = gw_vm_ops(ag, vm)->cancel(ag, vm, &pr, err, sizeof(err));
	if (r)
		return gw_msg_send_error(fd, r, "%s", err);
	return send_progress(fd, pr);
}
