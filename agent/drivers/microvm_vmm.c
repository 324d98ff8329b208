/* microvm_vmm.c -- the microvm driver's lifecycle: spawns, drives and re-attaches godwit-vmm
 * processes (the ops table is in microvm.c, the migration ops in microvm_migrate.c).
 *
 * Each VM runs in its own godwit-vmm process, double-forked into its own session so that
 * it outlives the agent. The agent keeps one connection to STATE/vms/NAME/vmm.sock per
 * active VM, used for requests and, while idle, to notice the VMM exiting (EOF). How a
 * VM ended is read from STATE/vms/NAME/status, which the VMM writes on every change.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "driver.h"
#include "host_info.h"
#include "microvm_int.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "vmm.h"
#include "vmtable.h"

#define SUBSYS		     "microvm"
#define VMM_READY_TIMEOUT_MS 15000

static int vm_process_alive(const struct gw_vm *vm)
{
	unsigned long long t = gw_proc_start_ticks(vm->pid);
	return t != 0 && (vm->pid_start == 0 || t == vm->pid_start);
}

static void vm_path(const struct gw_vm *vm, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", vm->dir, file);
}

void gw_microvm_console_path(const struct gw_vm *vm, char *buf, size_t len)
{
	vm_path(vm, "console.log", buf, len);
}

int gw_microvm_watch_fd(struct gw_vm *vm)
{
	return vm->vmm_fd;
}

static int vmm_connect(struct gw_vm *vm)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[PATH_MAX + 16];
	vm_path(vm, "vmm.sock", path, sizeof(path));
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void vmm_disconnect(struct gw_vm *vm)
{
	if (vm->vmm_fd >= 0)
		close(vm->vmm_fd);
	vm->vmm_fd = -1;
}

/* Apply a status the VMM reported (reply or status file) to the record. */
static void apply_status(struct gw_vm *vm, const GwVmmStatus *st)
{
	enum gw_vm_state s;
	if (gw_vm_state_parse(st->state, &s) == 0)
		vm->state = s;
	vm->has_exit_status = st->has_exit_status;
	vm->exit_status = st->exit_status;
	snprintf(vm->reason, sizeof(vm->reason), "%s", st->reason ? st->reason : "");
	if (st->migrated_to)
		vm->mig_handed_over = 1;
}

int gw_microvm_status(struct gw_vm *vm, uint16_t type, GwVmmStatus **out, char *err, size_t errlen)
{
	GwVmmReq req = GW_VMM_REQ__INIT;
	uint16_t rtype;
	uint8_t *payload = NULL;
	uint32_t len;
	int r = gw_microvm_call(vm, type, &req.base, -1, &rtype, &payload, &len, err, errlen);
	if (r)
		return r;
	*out = rtype == GW_MSG_TYPE__GW_MSG_VMM_STATUS_REPLY
		   ? gw_vmm_status__unpack(NULL, len, payload)
		   : NULL;
	free(payload);
	if (!*out) {
		snprintf(err, errlen, "vm '%s': malformed reply from VMM", vm->name);
		vmm_disconnect(vm);
		return -EPROTO;
	}
	return 0;
}

/* One request/reply with the VMM. On success the reply's status is applied. */
static int vmm_request(struct gw_vm *vm, uint16_t type, char *err, size_t errlen)
{
	GwVmmStatus *st;
	int r = gw_microvm_status(vm, type, &st, err, errlen);
	if (r)
		return r;
	apply_status(vm, st);
	gw_vmm_status__free_unpacked(st, NULL);
	return 0;
}

/* Read STATE/vms/NAME/status; -ENOENT when the VMM never wrote one. */
static int read_status_file(struct gw_vm *vm)
{
	char path[PATH_MAX + 16], *data;
	size_t len;
	vm_path(vm, "status", path, sizeof(path));
	int r = gw_file_read(path, 65536, &data, &len);
	if (r)
		return r;
	GwVmmStatus *st = gw_vmm_status__unpack(NULL, len, (uint8_t *)data);
	free(data);
	if (!st)
		return -EBADMSG;
	apply_status(vm, st);
	gw_vmm_status__free_unpacked(st, NULL);
	return 0;
}

/* The VMM is gone (or never came): settle the final state from its status file. */
static void settle_ended(struct gw_agent *ag, struct gw_vm *vm, const char *why)
{
	vmm_disconnect(vm);
	int r = read_status_file(vm);
	if (r || gw_vm_state_active(vm->state)) {
		/* it died without recording an end (SIGKILL, OOM, bug) */
		vm->state = GW_VM_CRASHED;
		vm->has_exit_status = 0;
		snprintf(vm->reason, sizeof(vm->reason), "%s", why);
	}
	vm->pid = 0;
	vm->pid_start = 0;
	gw_info(SUBSYS, "vm '%s' is %s%s%s", vm->name, gw_vm_state_name(vm->state),
		vm->reason[0] ? ": " : "", vm->reason);
	gw_vmtable_save_state(&ag->vms, vm);
}

int gw_microvm_validate(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	struct stat st;
	if (stat(vm->image, &st) < 0) {
		snprintf(err, errlen, "image not found: %s: %s", vm->image, strerror(errno));
		return -ENOENT;
	}
	if (!S_ISREG(st.st_mode) || access(vm->image, R_OK) < 0) {
		snprintf(err, errlen, "image %s is not a readable regular file", vm->image);
		return -EINVAL;
	}
	if (vm->memory_mib < GW_VMM_MIN_MEM_MIB || vm->memory_mib > GW_VMM_MAX_MEM_MIB ||
	    vm->memory_mib % 2) {
		snprintf(err, errlen, "memory must be an even number of MiB in [%d, %d], got %u",
			 GW_VMM_MIN_MEM_MIB, GW_VMM_MAX_MEM_MIB, vm->memory_mib);
		return -EINVAL;
	}
	if (vm->vcpus < 1 || vm->vcpus > GW_VMM_MAX_VCPUS) {
		snprintf(err, errlen, "vcpus must be in [1, %d], got %u", GW_VMM_MAX_VCPUS,
			 vm->vcpus);
		return -EINVAL;
	}
	if (vm->cmdline && strlen(vm->cmdline) >= GW_VMM_CMDLINE_MAX) {
		snprintf(err, errlen, "command line longer than %d bytes", GW_VMM_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	return 0;
}

/* Child side of the spawn: runs in the grandchild, never returns. */
static void exec_vmm(struct gw_agent *ag, struct gw_vm *vm, int ready_fd, int incoming, int ram_fd)
{
	char logpath[PATH_MAX + 16], mem[32], vcpus[32], rfd[16], ramfd[16];
	vm_path(vm, "vmm.log", logpath, sizeof(logpath));
	int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int nullfd = open("/dev/null", O_RDWR);
	if (nullfd >= 0) {
		dup2(nullfd, STDIN_FILENO);
		dup2(nullfd, STDOUT_FILENO);
	}
	if (logfd >= 0)
		dup2(logfd, STDERR_FILENO);
	/* the ready pipe becomes fd 3, pool RAM fd 4; everything else of the agent's is closed */
	if (ram_fd == 3)
		ram_fd = fcntl(ram_fd, F_DUPFD_CLOEXEC, 5);
	if (ready_fd != 3) {
		dup2(ready_fd, 3);
		ready_fd = 3;
	}
	if (ram_fd >= 0 && ram_fd != 4)
		ram_fd = dup2(ram_fd, 4);
	else if (ram_fd == 4)
		fcntl(4, F_SETFD, 0);
	for (int fd = ram_fd == 4 ? 5 : 4; fd < 1024; fd++)
		close(fd);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	snprintf(mem, sizeof(mem), "%u", vm->memory_mib);
	snprintf(vcpus, sizeof(vcpus), "%u", vm->vcpus);
	snprintf(rfd, sizeof(rfd), "%d", ready_fd);
	char *argv[24], conmax[16];
	int i = 0;
	argv[i++] = ag->cfg.vmm_path;
	argv[i++] = "--name";
	argv[i++] = vm->name;
	argv[i++] = "--dir";
	argv[i++] = vm->dir;
	argv[i++] = "--image";
	argv[i++] = vm->image;
	argv[i++] = "--memory-mib";
	argv[i++] = mem;
	argv[i++] = "--vcpus";
	argv[i++] = vcpus;
	argv[i++] = "--ready-fd";
	argv[i++] = rfd;
	if (incoming)
		argv[i++] = "--incoming";
	if (ram_fd == 4) {
		snprintf(ramfd, sizeof(ramfd), "%d", ram_fd);
		argv[i++] = "--ram-fd";
		argv[i++] = ramfd;
	}
	if (vm->cmdline) {
		argv[i++] = "--cmdline";
		argv[i++] = vm->cmdline;
	}
	argv[i++] = "--vm-backend";
	argv[i++] = ag->cfg.vm_backend_used[0] ? ag->cfg.vm_backend_used : ag->cfg.vm_backend;
	snprintf(conmax, sizeof(conmax), "%u", ag->cfg.console_max_kib);
	argv[i++] = "--console-max-kib";
	argv[i++] = conmax;
	argv[i] = NULL;
	execv(ag->cfg.vmm_path, argv);
	dprintf(STDERR_FILENO, "cannot exec %s: %s\n", ag->cfg.vmm_path, strerror(errno));
	dprintf(ready_fd, "ERR cannot exec %s: %s\n", ag->cfg.vmm_path, strerror(errno));
	_exit(127);
}

/* Read the VMM's "OK <pid>" / "ERR <message>" line from the ready pipe. */
static int wait_ready(int fd, char *line, size_t len)
{
	size_t got = 0;
	unsigned long long deadline = gw_now_mono_ms() + VMM_READY_TIMEOUT_MS;
	while (got < len - 1) {
		long left = (long)(deadline - gw_now_mono_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0)
			return -ETIMEDOUT;
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return pr < 0 ? -errno : -ETIMEDOUT;
		ssize_t n = read(fd, line + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line, '\n', got))
			break;
	}
	line[got] = 0;
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = 0;
	return got ? 0 : -ECONNRESET;
}

static int spawn(struct gw_agent *ag, struct gw_vm *vm, int incoming, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], line[512];
	int pipefd[2];

	if (access(ag->cfg.vmm_path, X_OK) < 0) {
		snprintf(err, errlen, "VMM binary %s: %s", ag->cfg.vmm_path, strerror(errno));
		return -ENOENT;
	}
	/* a fresh boot: new console, no stale status or socket */
	vm_path(vm, "console.log", path, sizeof(path));
	int cfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (cfd >= 0)
		close(cfd);
	vm_path(vm, "status", path, sizeof(path));
	unlink(path);
	vm_path(vm, "vmm.sock", path, sizeof(path));
	unlink(path);

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	/* an incoming VM takes pre-populated RAM when the agent has some that fits */
	int ram_fd = incoming ? gw_ram_pool_take(&ag->pool, (uint64_t)vm->memory_mib << 20) : -1;
	if (ram_fd >= 0)
		gw_info(SUBSYS, "vm '%s': incoming, on %u MiB of pre-populated guest RAM", vm->name,
			vm->memory_mib);
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		if (ram_fd >= 0)
			close(ram_fd);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -e;
	}
	if (child == 0) {
		close(pipefd[0]);
		setsid();
		pid_t gc = fork();
		if (gc != 0)
			_exit(gc < 0 ? 1 : 0);
		exec_vmm(ag, vm, pipefd[1], incoming, ram_fd);
	}
	if (ram_fd >= 0)
		close(ram_fd);
	close(pipefd[1]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	int r = wait_ready(pipefd[0], line, sizeof(line));
	close(pipefd[0]);
	if (r || strncmp(line, "OK ", 3) != 0) {
		if (r == 0 && !strncmp(line, "ERR ", 4))
			snprintf(err, errlen, "vm '%s': %s", vm->name, line + 4);
		else
			snprintf(err, errlen, "vm '%s': VMM did not start (%s); see %s/vmm.log",
				 vm->name, r ? strerror(-r) : line, vm->dir);
		/* whatever it wrote stands; otherwise it is crashed */
		if (read_status_file(vm) || gw_vm_state_active(vm->state)) {
			vm->state = GW_VM_CRASHED;
			snprintf(vm->reason, sizeof(vm->reason), "%s", err);
		}
		vm->pid = 0;
		gw_vmtable_save_state(&ag->vms, vm);
		return r ? r : -EIO;
	}
	vm->pid = atoi(line + 3);
	vm->pid_start = gw_proc_start_ticks(vm->pid);
	vm->started_at_ms = gw_now_wall_ms();
	snprintf(vm->backend, sizeof(vm->backend), "%s",
		 ag->cfg.vm_backend_used[0] ? ag->cfg.vm_backend_used : ag->cfg.vm_backend);
	vm->state = incoming ? GW_VM_MIGRATING : GW_VM_RUNNING;
	vm->has_exit_status = 0;
	vm->reason[0] = 0;
	r = vmm_connect(vm);
	if (r < 0) {
		gw_warn(SUBSYS, "vm '%s': started (pid %d) but its socket: %s", vm->name, vm->pid,
			strerror(-r));
	} else {
		vm->vmm_fd = r;
	}
	gw_vmtable_save_state(&ag->vms, vm);
	gw_info(SUBSYS, "vm '%s' started: pid %d, %u MiB, %u vCPUs", vm->name, vm->pid,
		vm->memory_mib, vm->vcpus);
	return 0;
}

int gw_microvm_start(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	return spawn(ag, vm, 0, err, errlen);
}

int gw_microvm_start_incoming(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	return spawn(ag, vm, 1, err, errlen);
}

/* Send one frame, with an fd attached when pass_fd >= 0 (SCM_RIGHTS). */
static int send_frame_fd(int sock, uint16_t type, const ProtobufCMessage *msg, int pass_fd)
{
	uint8_t hdr[GW_FRAME_HDR_LEN];
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	gw_frame_hdr_encode(hdr, type, (uint32_t)len);
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {buf, len}};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	if (pass_fd >= 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.b;
		mh.msg_controllen = sizeof(cbuf.b);
		struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(ch), &pass_fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	int r = n < 0 ? -errno : (size_t)n == sizeof(hdr) + len ? 0 : -EIO;
	free(buf);
	return r;
}

int gw_microvm_call(struct gw_vm *vm, uint16_t type, const ProtobufCMessage *msg, int pass_fd,
		    uint16_t *rtype, uint8_t **payload, uint32_t *len, char *err, size_t errlen)
{
	int r;
	if (vm->vmm_fd < 0) {
		r = vmm_connect(vm);
		if (r < 0) {
			snprintf(err, errlen, "vm '%s': cannot reach its VMM: %s", vm->name,
				 strerror(-r));
			return r;
		}
		vm->vmm_fd = r;
	}
	r = send_frame_fd(vm->vmm_fd, type, msg, pass_fd);
	if (!r)
		r = gw_frame_recv(vm->vmm_fd, GW_FRAME_MAX_PAYLOAD, GW_DRIVER_TIMEOUT_MS, rtype,
				  payload, len);
	if (r) {
		snprintf(err, errlen, "vm '%s': VMM request failed: %s", vm->name, strerror(-r));
		vmm_disconnect(vm);
		return r;
	}
	if (*rtype == GW_MSG_TYPE__GW_MSG_ERROR) {
		GwError *e = gw_error__unpack(NULL, *len, *payload);
		r = e && e->code < 0 ? e->code : -EPROTO;
		snprintf(err, errlen, "vm '%s': %s", vm->name, e ? e->message : "bad error reply");
		if (e)
			gw_error__free_unpacked(e, NULL);
		free(*payload);
		*payload = NULL;
		return r;
	}
	return 0;
}

/* A migrating VM's process decides when the migration ends: ask it how things stand. */
void gw_microvm_poll(struct gw_agent *ag, struct gw_vm *vm)
{
	char err[256];
	enum gw_vm_state before = vm->state;
	if (vm->vmm_fd < 0) {
		/* lost the connection (a failed request): the process decides what happened */
		if (!vm_process_alive(vm)) {
			settle_ended(ag, vm, "VMM process exited unexpectedly");
			return;
		}
		int fd = vmm_connect(vm);
		if (fd < 0)
			return;
		vm->vmm_fd = fd;
	}
	if (vmm_request(vm, GW_MSG_TYPE__GW_MSG_VMM_STATUS, err, sizeof(err)))
		return;
	if (vm->state != before) {
		if (vm->state != GW_VM_MIGRATING) {
			vm->mig_id = 0;
			vm->mig_incoming = 0;
		}
		gw_info(SUBSYS, "vm '%s' is %s", vm->name, gw_vm_state_name(vm->state));
		gw_vmtable_save_state(&ag->vms, vm);
	}
}

/* Wait (bounded) for the VMM process to be gone. */
static int wait_gone(struct gw_vm *vm, int timeout_ms)
{
	unsigned long long deadline = gw_now_mono_ms() + (unsigned)timeout_ms;
	while (vm_process_alive(vm)) {
		if (gw_now_mono_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(2000);
	}
	return 0;
}

int gw_microvm_stop(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	int r = vmm_request(vm, GW_MSG_TYPE__GW_MSG_VMM_STOP, err, errlen);
	if (r == 0 && wait_gone(vm, GW_DRIVER_TIMEOUT_MS) == 0) {
		vmm_disconnect(vm);
		vm->pid = 0;
		vm->pid_start = 0;
		gw_vmtable_save_state(&ag->vms, vm);
		gw_info(SUBSYS, "vm '%s' stopped by request", vm->name);
		return 0;
	}
	/* an unresponsive VMM is killed: stop must always stop */
	if (vm_process_alive(vm)) {
		gw_warn(SUBSYS, "vm '%s': VMM pid %d did not stop (%s), killing it", vm->name,
			vm->pid, r ? err : "still running");
		kill(vm->pid, SIGKILL);
		wait_gone(vm, GW_DRIVER_TIMEOUT_MS);
	}
	vmm_disconnect(vm);
	vm->state = GW_VM_STOPPED;
	vm->has_exit_status = 0;
	snprintf(vm->reason, sizeof(vm->reason), "VMM killed: it did not stop when asked");
	vm->pid = 0;
	vm->pid_start = 0;
	gw_vmtable_save_state(&ag->vms, vm);
	return 0;
}

static int pause_resume(struct gw_agent *ag, struct gw_vm *vm, uint16_t type, char *err,
			size_t errlen)
{
	int r = vmm_request(vm, type, err, errlen);
	if (r == 0)
		gw_vmtable_save_state(&ag->vms, vm);
	else if (!vm_process_alive(vm))
		settle_ended(ag, vm, "VMM process exited unexpectedly");
	return r;
}

int gw_microvm_pause(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	return pause_resume(ag, vm, GW_MSG_TYPE__GW_MSG_VMM_PAUSE, err, errlen);
}

int gw_microvm_resume(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	return pause_resume(ag, vm, GW_MSG_TYPE__GW_MSG_VMM_RESUME, err, errlen);
}

int gw_microvm_attach(struct gw_agent *ag, struct gw_vm *vm)
{
	char err[256];
	if (!gw_vm_state_active(vm->state))
		return 0;
	if (!vm_process_alive(vm)) {
		settle_ended(ag, vm, "VMM process ended while the agent was down");
		return 0;
	}
	int r = vmm_request(vm, GW_MSG_TYPE__GW_MSG_VMM_STATUS, err, sizeof(err));
	if (r) {
		gw_warn(SUBSYS, "vm '%s': VMM pid %d alive but not answering: %s", vm->name,
			vm->pid, err);
		return r;
	}
	gw_info(SUBSYS, "vm '%s' re-attached: pid %d, %s", vm->name, vm->pid,
		gw_vm_state_name(vm->state));
	gw_vmtable_save_state(&ag->vms, vm);
	return 0;
}

void gw_microvm_reap(struct gw_agent *ag, struct gw_vm *vm)
{
	/* EOF on the socket: the VMM is exiting; give it a moment to be gone */
	vmm_disconnect(vm);
	if (wait_gone(vm, 1000) == -ETIMEDOUT) {
		/* still there: it only dropped this connection; watch it on a new one */
		int fd = vmm_connect(vm);
		if (fd >= 0) {
			vm->vmm_fd = fd;
			return;
		}
		gw_warn(SUBSYS, "vm '%s': VMM pid %d alive but its socket is gone: %s", vm->name,
			vm->pid, strerror(-fd));
		return;
	}
	settle_ended(ag, vm, "VMM process exited unexpectedly");
}
