/* control.c -- the agent's control API: request handlers in a table keyed by message type. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_migrate.h"
#include "control.pb-c.h"
#include "migration.pb-c.h"
#include "driver.h"
#include "host_info.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_sock.h"
#include "vmtable.h"

#define SUBSYS		 "control"
#define CONSOLE_READ_MAX (1u << 20)

int gw_control_listen(const char *path)
{
	return gw_unix_listen_private(path);
}

/* ---- helpers shared by handlers ---- */

static int reply_vm(struct gw_agent *ag, int fd, const struct gw_vm *vm)
{
	GwVmInfo info;
	gw_vm_to_info(vm, ag->cfg.node, &info);
	return gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_VM_INFO, &info.base);
}

static struct gw_vm *find_or_reply(struct gw_agent *ag, int fd, const char *name, int *r)
{
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, name);
	if (!vm)
		*r = gw_msg_send_error(fd, -ENOENT, "vm '%s': no such VM", name);
	return vm;
}

/* Memory committed to active VMs, in MiB. */
static unsigned long long committed_mib(struct gw_agent *ag, const struct gw_vm *except)
{
	unsigned long long sum = 0;
	for (size_t i = 0; i < ag->vms.count; i++)
		if (ag->vms.vms[i] != except && gw_vm_state_active(ag->vms.vms[i]->state))
			sum += ag->vms.vms[i]->memory_mib;
	return sum;
}

/* Can the host give this VM its memory? With start set, count what running VMs hold. */
static int check_memory(struct gw_agent *ag, const struct gw_vm *vm, int start, char *err,
			size_t errlen)
{
	unsigned long long total, avail, reserve = ag->cfg.memory_reserve_mib;
	if (gw_host_meminfo(&total, &avail))
		return 0; /* no /proc/meminfo: let KVM decide */
	unsigned long long committed = start ? committed_mib(ag, vm) : 0;
	unsigned long long budget = total > reserve + committed ? total - reserve - committed : 0;
	unsigned long long free_now = avail > reserve ? avail - reserve : 0;
	if (vm->memory_mib > budget || vm->memory_mib > free_now) {
		snprintf(err, errlen,
			 "not enough host memory for vm '%s': needs %u MiB, host has %llu MiB "
			 "available (%llu MiB total, %llu committed to running VMs, %llu reserved)",
			 vm->name, vm->memory_mib, free_now < budget ? free_now : budget, total,
			 committed, reserve);
		return -ENOMEM;
	}
	return 0;
}

/* ---- handlers: one per request type ---- */

typedef int (*gw_ctl_handler)(struct gw_agent *ag, int fd, const ProtobufCMessage *msg);

/* The definition a create request describes, checked and completed by its driver. */
static int create_probe(struct gw_agent *ag, const GwVmCreateReq *req, struct gw_vm *probe,
			char *err, size_t errlen)
{
	const char *drv_name = req->driver && *req->driver ? req->driver : "microvm";
	struct gw_driver *d = gw_driver_by_name(ag, drv_name);
	if (!d) {
		snprintf(err, errlen, "vm '%s': unknown driver '%.40s' (this agent has%s%s)",
			 req->name, drv_name, " microvm",
			 gw_driver_by_name(ag, "libvirt") ? " and libvirt" : "");
		return -EINVAL;
	}
	char why[256] = "";
	if (d->ops->available && !d->ops->available(d, why, sizeof(why))) {
		snprintf(err, errlen, "vm '%s': driver %s is not available: %s", req->name,
			 drv_name, why);
		return -EAGAIN;
	}
	bool microvm = !strcmp(drv_name, "microvm");
	if (microvm && (req->image[0] != '/' || strlen(req->image) >= sizeof(probe->image))) {
		snprintf(err, errlen, "image path must be absolute: '%.200s'", req->image);
		return -EINVAL;
	}
	if (!microvm && (req->has_adopt && req->adopt) == (req->xml && *req->xml)) {
		snprintf(err, errlen, "vm '%s': a %s VM needs either its domain XML or adopt",
			 req->name, drv_name);
		return -EINVAL;
	}
	snprintf(probe->name, sizeof(probe->name), "%s", req->name);
	snprintf(probe->image, sizeof(probe->image), "%s", microvm ? req->image : "");
	snprintf(probe->driver, sizeof(probe->driver), "%s", drv_name);
	probe->memory_mib = req->memory_mib;
	probe->vcpus = req->vcpus;
	probe->cmdline = req->cmdline;
	probe->xml = req->xml && *req->xml ? strdup(req->xml) : NULL;
	int r = d->ops->validate(ag, probe, err, errlen);
	if (!r && !(req->has_adopt && req->adopt))
		r = check_memory(ag, probe, 0, err, errlen);
	return r;
}

static int h_vm_create(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmCreateReq *req = (const GwVmCreateReq *)msg;
	char err[512] = "";
	struct gw_vm probe = {.vmm_fd = -1};
	struct gw_vm *vm;
	int r;

	if (!gw_vm_name_valid(req->name))
		return gw_msg_send_error(fd, -EINVAL,
					 "bad VM name '%.80s': use 1-63 of [A-Za-z0-9_.-], "
					 "not starting with '.' or '-'",
					 req->name);
	if (gw_vmtable_find(&ag->vms, req->name))
		return gw_msg_send_error(fd, -EEXIST, "vm '%s' already exists", req->name);
	r = create_probe(ag, req, &probe, err, sizeof(err));
	if (!r)
		r = gw_vmtable_add(&ag->vms, probe.name, probe.image, probe.memory_mib, probe.vcpus,
				   probe.cmdline, &vm);
	if (!r && strcmp(probe.driver, "microvm"))
		r = gw_vmtable_set_driver(&ag->vms, vm, probe.driver, probe.xml);
	const struct gw_driver_ops *ops = r ? NULL : gw_vm_ops(ag, vm);
	if (ops && ops->define && (r = ops->define(ag, vm, err, sizeof(err))) != 0)
		gw_vmtable_remove(&ag->vms, vm);
	probe.cmdline = NULL; /* the request's */
	gw_vm_clear(&probe);
	if (r)
		return gw_msg_send_error(fd, r, "%s",
					 err[0] ? err : "cannot create the VM's record");
	if (vm->image[0])
		gw_info(SUBSYS, "vm '%s' defined: image %s, %u MiB, %u vCPUs", vm->name, vm->image,
			vm->memory_mib, vm->vcpus);
	else
		gw_info(SUBSYS, "vm '%s' defined (driver %s): %u MiB, %u vCPUs", vm->name,
			vm->driver, vm->memory_mib, vm->vcpus);
	return reply_vm(ag, fd, vm);
}

static int h_vm_start(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	char err[512] = "";
	int r = 0;
	struct gw_vm *vm = find_or_reply(ag, fd, req->name, &r);
	if (!vm)
		return r;
	if (gw_vm_state_active(vm->state))
		return gw_msg_send_error(fd, -EALREADY, "vm '%s' is already %s", vm->name,
					 gw_vm_state_name(vm->state));
	const struct gw_driver_ops *drv = gw_vm_ops(ag, vm);
	r = drv->validate(ag, vm, err, sizeof(err));
	if (!r)
		r = check_memory(ag, vm, 1, err, sizeof(err));
	if (!r)
		r = drv->start(ag, vm, err, sizeof(err));
	if (r) {
		gw_warn(SUBSYS, "start failed: %s", err);
		return gw_msg_send_error(fd, r, "%s", err);
	}
	return reply_vm(ag, fd, vm);
}

/* stop, pause and resume share a shape: check the state, call the driver op. */
static int vm_action(struct gw_agent *ag, int fd, const char *name, const char *what,
		     enum gw_vm_state need1, enum gw_vm_state need2,
		     int (*op)(struct gw_agent *, struct gw_vm *, char *, size_t))
{
	char err[512] = "";
	int r = 0;
	struct gw_vm *vm = find_or_reply(ag, fd, name, &r);
	if (!vm)
		return r;
	if (vm->state != need1 && vm->state != need2)
		return gw_msg_send_error(fd, -EINVAL, "vm '%s' is %s: cannot %s it", vm->name,
					 gw_vm_state_name(vm->state), what);
	r = op(ag, vm, err, sizeof(err));
	if (r)
		return gw_msg_send_error(fd, r, "%s", err);
	gw_info(SUBSYS, "vm '%s': %s done, now %s", vm->name, what, gw_vm_state_name(vm->state));
	return reply_vm(ag, fd, vm);
}

static int h_vm_stop(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, req->name);
	return vm_action(ag, fd, req->name, "stop", GW_VM_RUNNING, GW_VM_PAUSED,
			 vm ? gw_vm_ops(ag, vm)->stop : NULL);
}

static int h_vm_pause(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, req->name);
	return vm_action(ag, fd, req->name, "pause", GW_VM_RUNNING, GW_VM_RUNNING,
			 vm ? gw_vm_ops(ag, vm)->pause : NULL);
}

static int h_vm_resume(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, req->name);
	return vm_action(ag, fd, req->name, "resume", GW_VM_PAUSED, GW_VM_PAUSED,
			 vm ? gw_vm_ops(ag, vm)->resume : NULL);
}

static int h_vm_delete(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	int r = 0;
	struct gw_vm *vm = find_or_reply(ag, fd, req->name, &r);
	if (!vm)
		return r;
	if (gw_vm_state_active(vm->state))
		return gw_msg_send_error(fd, -EBUSY, "vm '%s' is %s: stop it before deleting",
					 vm->name, gw_vm_state_name(vm->state));
	char name[GW_NAME_MAX], err[512] = "";
	snprintf(name, sizeof(name), "%s", vm->name);
	const struct gw_driver_ops *ops = gw_vm_ops(ag, vm);
	if (ops->undefine && (r = ops->undefine(ag, vm, err, sizeof(err))) != 0)
		return gw_msg_send_error(fd, r, "%s", err);
	r = gw_vmtable_remove(&ag->vms, vm);
	if (r)
		return gw_msg_send_error(fd, r, "vm '%s': cannot delete its state: %s", name,
					 strerror(-r));
	gw_info(SUBSYS, "vm '%s' deleted", name);
	GwOk ok = GW_OK__INIT;
	return gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_OK, &ok.base);
}

static int h_vm_show(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwVmNameReq *req = (const GwVmNameReq *)msg;
	int r = 0;
	struct gw_vm *vm = find_or_reply(ag, fd, req->name, &r);
	return vm ? reply_vm(ag, fd, vm) : r;
}

static int cmp_vm_name(const void *a, const void *b)
{
	return strcmp((*(GwVmInfo *const *)a)->name, (*(GwVmInfo *const *)b)->name);
}

/* The balancer's load figures of a running VM (its driver's stats op), when it has them. */
static void fill_stats(struct gw_agent *ag, struct gw_vm *vm, GwVmInfo *info)
{
	const struct gw_driver_ops *ops = gw_vm_ops(ag, vm);
	struct gw_vm_stats st;
	char err[256];
	if (vm->state != GW_VM_RUNNING || !ops->stats || ops->stats(ag, vm, &st, err, sizeof(err)))
		return;
	info->has_cpu_time_ns = info->has_mem_used_mib = 1;
	info->cpu_time_ns = st.cpu_time_ns;
	info->mem_used_mib = st.mem_used_mib;
	info->has_dirty_rate_pps = st.has_dirty_rate;
	info->dirty_rate_pps = st.dirty_rate_pps;
}

static int h_vm_list(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	GwVmList list = GW_VM_LIST__INIT;
	size_t n = ag->vms.count;
	GwVmInfo *infos = calloc(n ? n : 1, sizeof(*infos));
	GwVmInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	int r;
	if (!infos || !ptrs) {
		free(infos);
		free(ptrs);
		return gw_msg_send_error(fd, -ENOMEM, "out of memory listing VMs");
	}
	const GwVmListReq *req = (const GwVmListReq *)msg;
	for (size_t i = 0; i < n; i++) {
		gw_vm_to_info(ag->vms.vms[i], ag->cfg.node, &infos[i]);
		infos[i].xml = NULL; /* `vm show` has it; a list stays small */
		if (req->stats)
			fill_stats(ag, ag->vms.vms[i], &infos[i]);
		ptrs[i] = &infos[i];
	}
	qsort(ptrs, n, sizeof(*ptrs), cmp_vm_name);
	list.n_vms = n;
	list.vms = ptrs;
	r = gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_VM_LIST_REPLY, &list.base);
	free(infos);
	free(ptrs);
	return r;
}

static int h_vm_console(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	const GwConsoleReq *req = (const GwConsoleReq *)msg;
	char path[PATH_MAX];
	int r = 0;
	struct gw_vm *vm = find_or_reply(ag, fd, req->name, &r);
	if (!vm)
		return r;
	gw_vm_ops(ag, vm)->console_path(vm, path, sizeof(path));
	uint32_t max = req->max_bytes ? req->max_bytes : 65536;
	if (max > CONSOLE_READ_MAX)
		max = CONSOLE_READ_MAX;
	uint8_t *buf = malloc(max);
	if (!buf)
		return gw_msg_send_error(fd, -ENOMEM, "out of memory");
	ssize_t n = 0;
	int cfd = open(path, O_RDONLY | O_CLOEXEC);
	if (cfd >= 0) {
		n = pread(cfd, buf, max, (off_t)req->offset);
		close(cfd);
	} else if (errno != ENOENT) {
		free(buf);
		return gw_msg_send_error(fd, -errno, "vm '%s': cannot read console %s: %s",
					 vm->name, path, strerror(errno));
	}
	if (n < 0)
		n = 0;
	GwConsoleReply rep = GW_CONSOLE_REPLY__INIT;
	rep.data.data = buf;
	rep.data.len = (size_t)n;
	rep.next_offset = req->offset + (uint64_t)n;
	rep.vm_active = gw_vm_state_active(vm->state);
	r = gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_CONSOLE_REPLY, &rep.base);
	free(buf);
	return r;
}

static int h_agent_info(struct gw_agent *ag, int fd, const ProtobufCMessage *msg)
{
	unsigned long long total = 0, avail = 0;
	gw_host_meminfo(&total, &avail);
	GwAgentInfo info = GW_AGENT_INFO__INIT;
	info.node = ag->cfg.node;
	info.version = GW_VERSION;
	info.mem_total_mib = total;
	info.mem_available_mib = avail;
	info.vm_count = (uint32_t)ag->vms.count;
	info.listen = ag->peer_addr[0] ? ag->peer_addr : ag->cfg.listen;
	info.vm_backend = ag->cfg.vm_backend_used[0] ? ag->cfg.vm_backend_used : NULL;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	info.has_cpus = cpus > 0;
	info.cpus = cpus > 0 ? (uint32_t)cpus : 0;
	/* the drivers, and whether each takes requests now */
	GwDriverInfo di[GW_DRIVER_MAX], *dp[GW_DRIVER_MAX];
	char status[GW_DRIVER_MAX][256];
	for (size_t i = 0; i < ag->n_drivers && i < GW_DRIVER_MAX; i++) {
		struct gw_driver *d = &ag->drivers[i];
		if (!d->ready)
			continue; /* off in the configuration */
		size_t k = info.n_drivers;
		gw_driver_info__init(&di[k]);
		status[k][0] = 0;
		di[k].name = (char *)d->ops->name;
		di[k].available =
		    !d->ops->available || d->ops->available(d, status[k], sizeof(status[k]));
		di[k].status = status[k][0] ? status[k] : NULL;
		dp[k] = &di[k];
		info.n_drivers++;
	}
	info.drivers = dp;
	return gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_AGENT_INFO_REPLY, &info.base);
}

struct gw_ctl_entry {
	const char *name;
	const ProtobufCMessageDescriptor *req;
	gw_ctl_handler fn;
};

/* The control API, indexed by GwMsgType. */
static const struct gw_ctl_entry handlers[] = {
    [GW_MSG_TYPE__GW_MSG_VM_CREATE] = {"vm-create", &gw_vm_create_req__descriptor,
				       h_vm_create},					    /* 10 */
    [GW_MSG_TYPE__GW_MSG_VM_START] = {"vm-start", &gw_vm_name_req__descriptor, h_vm_start}, /* 11 */
    [GW_MSG_TYPE__GW_MSG_VM_STOP] = {"vm-stop", &gw_vm_name_req__descriptor, h_vm_stop},    /* 12 */
    [GW_MSG_TYPE__GW_MSG_VM_PAUSE] = {"vm-pause", &gw_vm_name_req__descriptor, h_vm_pause}, /* 13 */
    [GW_MSG_TYPE__GW_MSG_VM_RESUME] = {"vm-resume", &gw_vm_name_req__descriptor,
				       h_vm_resume}, /* 14 */
    [GW_MSG_TYPE__GW_MSG_VM_DELETE] = {"vm-delete", &gw_vm_name_req__descriptor,
				       h_vm_delete},					 /* 15 */
    [GW_MSG_TYPE__GW_MSG_VM_SHOW] = {"vm-show", &gw_vm_name_req__descriptor, h_vm_show}, /* 16 */
    [GW_MSG_TYPE__GW_MSG_VM_LIST] = {"vm-list", &gw_vm_list_req__descriptor, h_vm_list}, /* 17 */
    [GW_MSG_TYPE__GW_MSG_VM_CONSOLE] = {"vm-console", &gw_console_req__descriptor,
					h_vm_console}, /* 18 */
    [GW_MSG_TYPE__GW_MSG_AGENT_INFO] = {"agent-info", &gw_agent_info_req__descriptor,
					h_agent_info}, /* 19 */
    [GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE] = {"vm-migrate", &gw_vm_migrate_req__descriptor,
					    gw_ctl_vm_migrate}, /* 100 */
    [GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS] = {"vm-migrate-status", &gw_vm_name_req__descriptor,
						   gw_ctl_vm_migrate_status}, /* 101 */
    [GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_CANCEL] = {"vm-migrate-cancel", &gw_vm_name_req__descriptor,
						   gw_ctl_vm_migrate_cancel}, /* 102 */
};

ProtobufCMessage *gw_control_decode(uint16_t type, const uint8_t *payload, uint32_t len,
				    const char **name)
{
	if (name)
		*name = NULL;
	if (type >= sizeof(handlers) / sizeof(handlers[0]) || !handlers[type].fn)
		return NULL;
	if (name)
		*name = handlers[type].name;
	return protobuf_c_message_unpack(handlers[type].req, NULL, len, payload);
}

int gw_control_dispatch(struct gw_agent *ag, int fd, uint16_t type, const uint8_t *payload,
			uint32_t len)
{
	const char *name;
	ProtobufCMessage *msg = gw_control_decode(type, payload, len, &name);
	if (!name) {
		gw_warn(SUBSYS, "request of unknown type %u (%u bytes) refused", type, len);
		return gw_msg_send_error(fd, -EOPNOTSUPP, "unknown request type %u", type);
	}
	const struct gw_ctl_entry *h = &handlers[type];
	if (!msg) {
		gw_warn(SUBSYS, "malformed %s request (%u bytes) refused", h->name, len);
		return gw_msg_send_error(fd, -EBADMSG, "malformed %s request", h->name);
	}
	gw_debug(SUBSYS, "request %s", h->name);
	int r = h->fn(ag, fd, msg);
	protobuf_c_message_free_unpacked(msg, NULL);
	return r;
}

int gw_control_on_readable(struct gw_agent *ag, struct gw_ctl_conn *c)
{
	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 65536;
		if (cap > GW_FRAME_MAX_PAYLOAD + GW_FRAME_HDR_LEN + 65536)
			cap = GW_FRAME_MAX_PAYLOAD + GW_FRAME_HDR_LEN + 65536;
		if (cap > c->cap) {
			uint8_t *nb = realloc(c->buf, cap);
			if (!nb)
				return -ENOMEM;
			c->buf = nb;
			c->cap = cap;
		}
	}
	ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->len += (size_t)n;
	size_t off = 0;
	for (;;) {
		struct gw_frame f;
		long used = gw_frame_parse(c->buf + off, c->len - off, GW_FRAME_MAX_PAYLOAD, &f);
		if (used < 0) {
			gw_warn(SUBSYS,
				"oversized frame on control socket, closing the connection");
			gw_msg_send_error(c->fd, -EMSGSIZE, "frame larger than %u bytes",
					  GW_FRAME_MAX_PAYLOAD);
			return (int)used;
		}
		if (used == 0)
			break;
		int r = gw_control_dispatch(ag, c->fd, f.type, f.payload, f.len);
		off += (size_t)used;
		if (r)
			return r;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return 0;
}
