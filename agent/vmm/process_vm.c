/* process_vm.c -- the process backend's VM: a sandbox child holding only guest RAM, for hosts
 * without /dev/kvm (the idea of gVisor's ptrace/systrap platforms; facts measured for it are
 * in docs/vm-backends.md).
 *
 * A keeper thread per VM forks the child into its own PID, mount, network, IPC and UTS
 * namespaces, with guest RAM (the memfd), a socket and nothing else, and execs the embedded
 * stub (process_stub.c) through PTRACE_TRACEME, so the keeper traces the stub's leader. The
 * stub maps RAM at 0, turns on the dirty log, drops its capabilities and clones the vCPU
 * threads; the keeper checks every vCPU thread waits in pause(), tells the stub which of its
 * own mappings to unmap or protect, and waits for the final int3 (seccomp on, RAX = 0). It
 * then checks what the child can still reach (only guest RAM writable), opens its pagemap
 * for the dirty log, and keeps the leader stopped until the VM ends. The VMM's vCPU threads
 * seize the vCPU threads (process_run.c). If the keeper (the child's parent thread) dies the
 * child gets SIGKILL (PR_SET_PDEATHSIG); each seized vCPU thread has PTRACE_O_EXITKILL.
 */
#include "process_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"
#include "process_stub.h"

#define SUBSYS "process"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#define SETUP_TIMEOUT_MS 5000
#define SANDBOX_NS	 (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)

extern const unsigned char gw_stub_elf[], gw_stub_elf_end[];

/* ---- TSC rate: measured once per VMM against CLOCK_MONOTONIC_RAW (guests get it in RCX) ---- */

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static uint64_t raw_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One (TSC, ns) pair: of 32 tries, the one whose clock read sat between the closest two TSC
 * reads (a preemption or a slow clock read shows as a wide pair and loses). */
static void tsc_pair(uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = ~0ull;

	*tsc = *ns = 0;
	for (int i = 0; i < 32; i++) {
		uint64_t a = rdtsc(), n = raw_ns(), b = rdtsc();

		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*ns = n;
		}
	}
}

/* The TSC rate from two pairs 5 ms apart: each pair is good to well under a microsecond, so
 * the rate to about 0.01 % (two VMMs on one host agree far inside the 0.1 % a migration
 * allows). */
static uint32_t tsc_measure(void)
{
	struct timespec d = {0, 5000000};
	uint64_t t0 = 0, n0 = 0, t1 = 0, n1 = 0;

	tsc_pair(&t0, &n0);
	nanosleep(&d, NULL);
	tsc_pair(&t1, &n1);
	if (n1 <= n0 || t1 <= t0)
		return 0;
	return (uint32_t)((t1 - t0) * 1000000ull / (n1 - n0));
}

static uint32_t tsc_khz;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

#define TSC_CACHE "/run/godwit-tsc-khz" /* "<boot id> <kHz>": measured once per boot */

/* The rate measured by an earlier VMM since this boot, or 0. */
static uint32_t tsc_cached(const char *boot)
{
	char *data = NULL, id[64] = "";
	unsigned long khz = 0;
	size_t len;

	if (gw_file_read(TSC_CACHE, 256, &data, &len))
		return 0;
	if (sscanf(data, "%63s %lu", id, &khz) != 2 || strcmp(id, boot) || khz < 100000 ||
	    khz > 20000000)
		khz = 0;
	free(data);
	return (uint32_t)khz;
}

/* Measured once per boot and shared through TSC_CACHE: every VMM on the host gives its
 * guests the same rate (a local migration then never trips the 0.1 % check) and a VM's
 * start does not wait the 5 ms of a measurement. */
static void tsc_init(void)
{
	char *boot = NULL, line[128];
	size_t len;

	if (gw_file_read("/proc/sys/kernel/random/boot_id", 64, &boot, &len) == 0) {
		boot[strcspn(boot, "\n")] = 0;
		tsc_khz = tsc_cached(boot);
	}
	if (!tsc_khz) {
		tsc_khz = tsc_measure();
		if (boot && tsc_khz) {
			int n = snprintf(line, sizeof(line), "%s %u\n", boot, tsc_khz);

			gw_file_write_atomic(TSC_CACHE, line, (size_t)n, 0644);
		}
	}
	free(boot);
}

uint32_t gw_proc_tsc_khz(void)
{
	pthread_once(&tsc_once, tsc_init);
	return tsc_khz;
}

/* ---- probe ---- */

int gw_proc_probe(char *why, size_t len)
{
	char *scope = NULL;
	size_t slen;
	int r, fd;

	if (geteuid() != 0) {
		snprintf(why, len, "needs root (guest RAM is mapped at address 0: CAP_SYS_RAWIO)");
		return -EPERM;
	}
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
	if (fd < 0) {
		r = -errno;
		snprintf(why, len, "userfaultfd: %s", strerror(errno));
		return r;
	}
	close(fd);
	if (gw_file_read("/proc/sys/kernel/yama/ptrace_scope", 16, &scope, &slen) == 0) {
		int v = atoi(scope);

		free(scope);
		if (v >= 3) {
			snprintf(why, len, "ptrace is disabled (kernel.yama.ptrace_scope = %d)", v);
			return -EPERM;
		}
	}
	r = gw_proc_dirty_probe();
	if (r) {
		snprintf(why, len, "PAGEMAP_SCAN (Linux >= 6.7) is not available: %s",
			 strerror(-r));
		return r;
	}
	if (gw_stub_elf_end - gw_stub_elf < 64) {
		snprintf(why, len, "the sandbox stub is missing from this build");
		return -ENOEXEC;
	}
	return 0;
}

/* ---- the child, between clone and exec: async-signal-safe calls only ---- */

static void __attribute__((noreturn)) child_exec(int ram_fd, int sock, int exe_fd)
{
	char *argv[] = {"godwit-vmm-stub", NULL};
	char *envp[] = {NULL};

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(ram_fd, GW_STUB_FD_RAM) < 0 || dup2(sock, GW_STUB_FD_SOCK) < 0 ||
	    dup2(exe_fd, GW_STUB_FD_SELF) < 0)
		_exit(126);
	syscall(SYS_close_range, GW_STUB_FD_SELF + 1, ~0u, 0);
	close(0);
	close(1);
	close(2);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
		_exit(125);
	syscall(SYS_execveat, GW_STUB_FD_SELF, "", argv, envp, AT_EMPTY_PATH);
	_exit(124);
}

/* ---- keeper: set-up steps (on the keeper thread, the child's tracer) ---- */

/* SIGKILL to the whole sandbox, through its pidfd. */
static void sandbox_kill(struct gw_proc *p)
{
	if (p->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
}

/* Why the child ended before the stub ran (child_exec's exit codes). */
static const char *child_exit_text(int st)
{
	if (!WIFEXITED(st))
		return "killed before exec";
	switch (WEXITSTATUS(st)) {
	case 126:
		return "could not set up its file descriptors";
	case 125:
		return "PTRACE_TRACEME refused (ptrace restricted on this host?)";
	case 124:
		return "execveat of the embedded stub failed";
	}
	return "exited before exec";
}

static int fail(struct gw_proc *p, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct gw_proc *p, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	return r < 0 ? r : -EIO;
}

/* Wait for the next stop of the leader; -errno, or 0 with the stop signal in *sig. */
static int wait_leader_stop(struct gw_proc *p, int *sig)
{
	int st;

	while (waitpid(p->pid, &st, __WALL) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		p->exited = true;
		p->exit_status = st;
		return WIFEXITED(st) ? -ECHILD : -EINTR;
	}
	*sig = WSTOPSIG(st);
	return 0;
}

static const char *stub_step_name(unsigned step)
{
	static const char *const names[] = {"ok",
					    "reading the set-up message",
					    "mapping guest RAM at address 0 (needs CAP_SYS_RAWIO)",
					    "userfaultfd()",
					    "UFFDIO_API with write-protect async features",
					    "UFFDIO_REGISTER (write-protect)",
					    "dropping capabilities",
					    "PR_SET_NO_NEW_PRIVS",
					    "cloning a vCPU thread",
					    "reading the go message",
					    "hiding its own mappings"};

	return step < sizeof(names) / sizeof(names[0]) ? names[step] : "unknown step";
}

/* Read the stub's status (bounded wait). */
static int recv_status(struct gw_proc *p, int sock, struct gw_stub_status *st)
{
	struct pollfd pfd = {sock, POLLIN, 0};
	ssize_t n;

	if (poll(&pfd, 1, SETUP_TIMEOUT_MS) <= 0)
		return fail(p, -ETIMEDOUT, "the sandbox stub did not report within %d ms",
			    SETUP_TIMEOUT_MS);
	n = recv(sock, st, sizeof(*st), 0);
	if (n != (ssize_t)sizeof(*st) || st->magic != GW_STUB_MAGIC)
		return fail(p, -EPROTO, "the sandbox stub died during set-up (no status)");
	if (st->step != GW_STUB_OK)
		return fail(p, -st->err, "sandbox stub: %s: %s", stub_step_name(st->step),
			    strerror(st->err));
	return 0;
}

/* The vCPU threads: every task of the child but the leader, each waiting in pause(). */
static int find_vcpu_threads(struct gw_proc *p, unsigned want)
{
	char path[64], buf[64];
	uint64_t deadline = gw_now_mono_ns() + SETUP_TIMEOUT_MS * 1000000ull;
	unsigned n = 0, waiting;

	snprintf(path, sizeof(path), "/proc/%d/task", p->pid);
	DIR *d = opendir(path);
	if (!d)
		return fail(p, -errno, "%s: %s", path, strerror(errno));
	for (struct dirent *e; (e = readdir(d));) {
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid > 0 && tid != p->pid && n < GW_VMM_MAX_VCPUS)
			p->tids[n++] = tid;
	}
	closedir(d);
	if (n != want)
		return fail(p, -EPROTO, "the sandbox has %u vCPU threads, not %u", n, want);
	do { /* /proc/PID/task/TID/syscall starts with the number of the call it waits in */
		waiting = 0;
		for (unsigned i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", p->pid,
				 p->tids[i]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t k = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

			if (fd >= 0)
				close(fd);
			buf[k > 0 ? k : 0] = 0;
			waiting += atoi(buf) == SYS_pause && buf[0] != 'r';
		}
		if (waiting == n)
			return 0;
		usleep(100);
	} while (gw_now_mono_ns() < deadline);
	return fail(p, -ETIMEDOUT, "the sandbox's vCPU threads did not reach pause()");
}

/* From the stub's /proc/PID/maps: what to take away before the guest runs. Guest RAM stays;
 * vdso/vvar go; other writable mappings become read-only, the stack PROT_NONE. */
static int plan_ops(struct gw_proc *p, uint64_t ram_size, struct gw_stub_go *go)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	f = fopen(path, "re");
	if (!f)
		return fail(p, -errno, "%s: %s", path, strerror(errno));
	memset(go, 0, sizeof(*go));
	go->magic = GW_STUB_MAGIC;
	while (fgets(line, sizeof(line), f) && go->nr_ops < GW_STUB_MAX_OPS) {
		unsigned long long lo, hi;
		char perms[8] = "", name[256] = "";
		struct gw_stub_op *op = &go->ops[go->nr_ops];

		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %255s", &lo, &hi, perms, name) < 3)
			continue;
		if (lo < ram_size) /* guest RAM */
			continue;
		op->start = lo;
		op->len = hi - lo;
		if (!strncmp(name, "[vdso]", 6) || !strncmp(name, "[vvar", 5))
			op->op = GW_STUB_OP_UNMAP;
		else if (!strcmp(name, "[stack]"))
			op->op = GW_STUB_OP_STACK;
		else if (perms[1] == 'w')
			op->op = GW_STUB_OP_RO;
		else
			continue;
		go->nr_ops++;
	}
	fclose(f);
	return 0;
}

/* After the final int3: nothing but guest RAM may be writable, and seccomp must be on. */
static int verify_sandbox(struct gw_proc *p, uint64_t ram_size)
{
	char path[64], line[512];
	struct user_regs_struct regs;
	int bad = 0, seccomp = -1;
	FILE *f;

	if (ptrace(PTRACE_GETREGS, p->pid, NULL, &regs) < 0)
		return fail(p, -errno, "PTRACE_GETREGS of the sandbox leader: %s", strerror(errno));
	if (regs.rax != 0)
		return fail(p, -(long long)regs.rax, "seccomp in the sandbox: %s",
			    strerror((int)-(long long)regs.rax));
	snprintf(path, sizeof(path), "/proc/%d/status", p->pid);
	if ((f = fopen(path, "re"))) {
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "Seccomp:", 8))
				seccomp = atoi(line + 8);
		fclose(f);
	}
	if (seccomp != 2)
		return fail(p, -EPERM, "the sandbox is not in seccomp filter mode (%d)", seccomp);
	snprintf(path, sizeof(path), "/proc/%d/maps", p->pid);
	if (!(f = fopen(path, "re")))
		return fail(p, -errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		char perms[8] = "";

		if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 && lo >= ram_size &&
		    perms[1] == 'w')
			bad++;
	}
	fclose(f);
	if (bad)
		return fail(p, -EPERM, "the sandbox still has %d writable mapping(s) besides RAM",
			    bad);
	return 0;
}

static int xstate_size_of(struct gw_proc *p)
{
	uint8_t *buf = malloc(GW_PROC_XSTATE_MAX);
	struct iovec iov = {buf, GW_PROC_XSTATE_MAX};
	int r = 0;

	if (!buf)
		return fail(p, -ENOMEM, "out of memory");
	if (ptrace(PTRACE_GETREGSET, p->pid, (void *)NT_X86_XSTATE, &iov) < 0)
		r = fail(p, -errno, "PTRACE_GETREGSET NT_X86_XSTATE: %s", strerror(errno));
	else
		p->xstate_size = iov.iov_len;
	free(buf);
	return r;
}

/* Spawn the child and drive the stub to its final int3 (see the top of the file). */
static int sandbox_setup(struct gw_proc *p, const struct gw_vmm *vmm, int exe_fd)
{
	struct gw_stub_setup setup = {GW_STUB_MAGIC, vmm->nr_vcpus, vmm->ram_size};
	struct gw_stub_status st;
	struct gw_stub_go go;
	int sv[2], sig = 0, r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(p, -errno, "socketpair: %s", strerror(errno));
	p->pid = (pid_t)syscall(SYS_clone, SANDBOX_NS | SIGCHLD, 0, NULL, NULL, 0);
	if (p->pid == 0)
		child_exec(vmm->mem_fd, sv[1], exe_fd);
	close(sv[1]);
	/* a pidfd: the kill at the end can never hit a reused pid (the keeper reaps the child) */
	p->pidfd = p->pid > 0 ? (int)syscall(SYS_pidfd_open, p->pid, 0) : -1;
	if (p->pid < 0) {
		p->pid = 0;
		r = fail(p, -errno, "clone of the sandbox (new PID/mount/net namespaces): %s",
			 strerror(errno));
		goto out;
	}
	r = wait_leader_stop(p, &sig); /* the exec */
	if (r || sig != SIGTRAP) {
		r = fail(p, r, "the sandbox stub did not start: %s",
			 !p->exited ? strsignal(sig) : child_exit_text(p->exit_status));
		goto out;
	}
	ptrace(PTRACE_SETOPTIONS, p->pid, NULL, (void *)(long)PTRACE_O_EXITKILL);
	ptrace(PTRACE_CONT, p->pid, NULL, NULL);
	if (send(sv[0], &setup, sizeof(setup), MSG_NOSIGNAL) != sizeof(setup)) {
		r = fail(p, -errno, "sending the set-up to the stub: %s", strerror(errno));
		goto out;
	}
	r = recv_status(p, sv[0], &st);
	if (!r)
		r = find_vcpu_threads(p, vmm->nr_vcpus);
	if (!r)
		r = plan_ops(p, vmm->ram_size, &go);
	if (r)
		goto out;
	if (send(sv[0], &go, sizeof(go), MSG_NOSIGNAL) != sizeof(go)) {
		r = fail(p, -errno, "sending go to the stub: %s", strerror(errno));
		goto out;
	}
	r = wait_leader_stop(p, &sig); /* the final int3 */
	if (!r && sig != SIGTRAP)
		r = fail(p, -EPROTO, "the sandbox stub stopped with %s, not on its int3",
			 strsignal(sig));
	else if (r)
		r = fail(p, r, "the sandbox stub died before sealing itself (see its status)");
	if (!r)
		r = verify_sandbox(p, vmm->ram_size);
	if (!r)
		r = xstate_size_of(p);
out:
	close(sv[0]);
	return r;
}

static int open_pagemap(struct gw_proc *p)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	p->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->pagemap_fd < 0)
		return fail(p, -errno, "%s: %s", path, strerror(errno));
	return 0;
}

static int stub_exe_fd(struct gw_proc *p)
{
	size_t len = (size_t)(gw_stub_elf_end - gw_stub_elf);
	int fd = memfd_create("godwit-vmm-stub", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return fail(p, -errno, "memfd_create for the stub: %s", strerror(errno));
	if (write(fd, gw_stub_elf, len) != (ssize_t)len ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		int r = fail(p, -errno, "writing the stub: %s", strerror(errno));

		close(fd);
		return r;
	}
	return fd;
}

/* The keeper thread: sets the sandbox up, reports, then waits for the leader's end. */
static void *keeper_main(void *arg)
{
	struct gw_proc *p = arg;
	uint64_t t0 = gw_now_mono_ns();
	int exe_fd, r, st;

	pthread_setname_np(pthread_self(), "sandbox");
	exe_fd = stub_exe_fd(p);
	r = exe_fd < 0 ? exe_fd : sandbox_setup(p, p->vmm, exe_fd);
	if (exe_fd >= 0)
		close(exe_fd);
	if (!r)
		r = open_pagemap(p);
	pthread_mutex_lock(&p->lock);
	p->setup_ns = gw_now_mono_ns() - t0;
	p->ready = !r;
	p->failed = r != 0;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (r)
		sandbox_kill(p);
	/* the leader stays stopped on its int3 (or was killed): wait for its end */
	while (p->pid > 0 && !p->exited) {
		if (waitpid(p->pid, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			p->exited = true;
			p->exit_status = st;
		}
	}
	return NULL;
}

/* ---- backend ops ---- */

int gw_proc_vm_create(struct gw_vmm *vmm, bool has_cmdline, char *err, size_t errlen)
{
	struct gw_proc *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->pagemap_fd = p->pidfd = -1;
	p->vmm = vmm;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	vmm->proc = p;
	vmm->tsc_khz = gw_proc_tsc_khz();
	for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
		struct gw_pvcpu *pv = calloc(1, sizeof(*pv));

		if (!pv || !(pv->xstate = malloc(GW_PROC_XSTATE_MAX))) {
			free(pv);
			return -ENOMEM;
		}
		vmm->vcpus[i].proc = pv;
		if (!vmm->incoming)
			gw_proc_entry_regs(vmm, i, has_cmdline, &pv->regs);
	}
	r = -pthread_create(&p->keeper, NULL, keeper_main, p);
	if (r) {
		gw_vmm_set_err(err, errlen, "starting the sandbox keeper thread: %s", strerror(-r));
		return r;
	}
	p->keeper_started = true;
	pthread_mutex_lock(&p->lock);
	while (!p->ready && !p->failed)
		pthread_cond_wait(&p->cond, &p->lock);
	r = p->failed ? -EIO : 0;
	pthread_mutex_unlock(&p->lock);
	if (r) {
		gw_vmm_set_err(err, errlen, "process backend: %s", p->err);
		return r;
	}
	for (unsigned i = 0; i < vmm->nr_vcpus; i++)
		vmm->vcpus[i].proc->tid = p->tids[i];
	gw_info(SUBSYS, "%s: sandbox pid %d ready in %.1f ms (XSAVE area %zu bytes)", vmm->name,
		p->pid, p->setup_ns / 1e6, p->xstate_size);
	return 0;
}

void gw_proc_vm_destroy(struct gw_vmm *vmm)
{
	struct gw_proc *p = vmm->proc;

	if (!p)
		return;
	sandbox_kill(p);
	if (p->keeper_started)
		pthread_join(p->keeper, NULL);
	if (p->pagemap_fd >= 0)
		close(p->pagemap_fd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	for (unsigned i = 0; vmm->vcpus && i < vmm->nr_vcpus; i++) {
		struct gw_pvcpu *pv = vmm->vcpus[i].proc;

		if (pv)
			free(pv->xstate);
		free(pv);
		vmm->vcpus[i].proc = NULL;
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
	vmm->proc = NULL;
}

const struct gw_vmm_backend gw_vmm_backend_process = {
    .name = "process",
    .probe = gw_proc_probe,
    .vm_create = gw_proc_vm_create,
    .vm_destroy = gw_proc_vm_destroy,
    .vcpu_thread_init = gw_proc_vcpu_thread_init,
    .vcpu_thread_exit = gw_proc_vcpu_thread_exit,
    .vcpu_run = gw_proc_vcpu_run,
    .vcpu_io_done = gw_proc_vcpu_io_done,
    .vcpu_flush_io = gw_proc_vcpu_flush_io,
    .vcpu_park = gw_proc_vcpu_park,
    .vcpu_kick = gw_proc_vcpu_kick,
    .vcpu_kick_async = gw_proc_vcpu_kick,
    .vcpu_save = gw_proc_vcpu_save,
    .vcpu_restore = gw_proc_vcpu_restore,
    .dirty_mode = gw_proc_dirty_mode,
    .dirty_enable = gw_proc_dirty_enable,
    .dirty_fetch = gw_proc_dirty_fetch,
    .dirty_reprotect = gw_proc_dirty_reprotect,
    .dirty_disable = gw_proc_dirty_disable,
    .dirty_destroy = gw_proc_dirty_destroy,
};
