/* process_run.c -- the process backend's vCPUs: each VMM vCPU thread ptrace-seizes one thread
 * of the sandbox and runs it, the same loop as KVM_RUN (vmm_vcpu.c): PTRACE_CONT, wait for
 * the next stop, decode it.
 *
 * Exits: port I/O, cli/sti, hlt and other privileged instructions fault (#GP, SIGSEGV: this
 * host has no IOPL); the instruction is decoded from guest RAM (process_decode.c), port I/O
 * goes to the shared port handlers, cli/sti are emulated (there are no interrupts), anything
 * else ends the VM crashed with a reason that names it. A system call (any: syscall, int 0x80,
 * sysenter, the vsyscall page) raises SIGSYS from the seccomp filter. A kick is a SIGURG sent
 * to the traced thread: it stops it wherever it is, and one sent while it is already stopped
 * stays pending and stops it right after the next PTRACE_CONT, so no kick is ever lost. The
 * registers read at an exit are kept (pv->regs) and written back only when changed.
 */
#include "process_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_log.h"

#define SUBSYS "process"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#define KICK_SIGNAL  SIGURG   /* ignored by default: harmless if ever delivered untraced */
#define ENTRY_RFLAGS 0x202ull /* IF (the kernel keeps it); IOPL cannot be given here */

void gw_proc_entry_regs(struct gw_vmm *vmm, unsigned idx, bool has_cmdline,
			struct user_regs_struct *regs)
{
	memset(regs, 0, sizeof(*regs));
	regs->rip = vmm->entry;
	regs->rsp = vmm->ram_size - (uint64_t)idx * GW_VMM_STACK_STRIDE;
	regs->eflags = ENTRY_RFLAGS;
	regs->rdi = vmm->ram_size;
	regs->rsi = idx;
	regs->rdx = has_cmdline ? GW_VMM_CMDLINE_GPA : 0;
	regs->rcx = vmm->tsc_khz;
}

/* Wait for the next stop (or end) of this vCPU's thread; EINTR (our own kick signal or the
 * throttle timer) just waits again: the kick it forwarded will stop the thread. */
static int wait_stop(struct gw_pvcpu *pv, int *status)
{
	while (waitpid(pv->tid, status, __WALL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int set_regs(struct gw_pvcpu *pv)
{
	if (ptrace(PTRACE_SETREGS, pv->tid, NULL, &pv->regs) < 0)
		return -errno;
	pv->regs_dirty = false;
	return 0;
}

static int get_xstate(struct gw_pvcpu *pv)
{
	struct iovec iov = {pv->xstate, GW_PROC_XSTATE_MAX};

	if (ptrace(PTRACE_GETREGSET, pv->tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return -errno;
	pv->xstate_len = iov.iov_len;
	pv->xstate_valid = true;
	return 0;
}

/* Seize the vCPU thread (waiting in the stub's pause()), stop it, and give it the guest's
 * registers: the entry state, or a restored one. orig_rax = -1 so that the interrupted
 * pause() is not restarted. */
int gw_proc_vcpu_thread_init(struct gw_vcpu *vcpu, char *err, size_t errlen)
{
	struct gw_pvcpu *pv = vcpu->proc;
	struct user_regs_struct cur;
	int st, r;

	if (ptrace(PTRACE_SEIZE, pv->tid, NULL, (void *)(long)PTRACE_O_EXITKILL) < 0 ||
	    ptrace(PTRACE_INTERRUPT, pv->tid, NULL, NULL) < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "ptrace seize of sandbox thread %d: %s", pv->tid,
			       strerror(errno));
		return r;
	}
	pv->seized = true;
	r = wait_stop(pv, &st);
	if (!r && !WIFSTOPPED(st))
		r = -ESRCH;
	if (!r && ptrace(PTRACE_GETREGS, pv->tid, NULL, &cur) < 0)
		r = -errno;
	if (r) {
		gw_vmm_set_err(err, errlen, "stopping sandbox thread %d: %s", pv->tid,
			       strerror(-r));
		return r;
	}
	/* keep the thread's segment selectors; everything the guest owns comes from pv->regs */
	pv->regs.cs = cur.cs;
	pv->regs.ss = cur.ss;
	pv->regs.ds = cur.ds;
	pv->regs.es = cur.es;
	pv->regs.fs = cur.fs;
	pv->regs.gs = cur.gs;
	pv->regs.orig_rax = ~0ull;
	r = set_regs(pv);
	if (!r && pv->from_blob && pv->xstate_valid) {
		struct iovec iov = {pv->xstate, pv->xstate_len};

		if (ptrace(PTRACE_SETREGSET, pv->tid, (void *)NT_X86_XSTATE, &iov) < 0)
			r = -errno;
	}
	if (r)
		gw_vmm_set_err(err, errlen, "setting vcpu %u registers: %s", vcpu->index,
			       strerror(-r));
	return r;
}

/* A vCPU that stopped itself while others run: its thread must stay stopped, and it stays
 * traced only while this thread lives (EXITKILL), so wait for the end of the VM. */
void gw_proc_vcpu_thread_exit(struct gw_vcpu *vcpu, bool vm_over)
{
	struct gw_vmm *vmm = vcpu->vmm;

	if (vm_over)
		return;
	pthread_mutex_lock(&vmm->lock);
	while (!vmm->exit_req)
		pthread_cond_wait(&vmm->cond, &vmm->lock);
	pthread_mutex_unlock(&vmm->lock);
}

void gw_proc_vcpu_kick(struct gw_vcpu *vcpu)
{
	struct gw_proc *p = vcpu->vmm->proc;

	syscall(SYS_tgkill, p->pid, vcpu->proc->tid, KICK_SIGNAL);
}

static int crash(struct gw_vcpu_exit *ex, struct gw_pvcpu *pv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int crash(struct gw_vcpu_exit *ex, struct gw_pvcpu *pv, const char *fmt, ...)
{
	va_list ap;

	ex->kind = GW_EXIT_CRASH;
	ex->rip = pv->regs.rip;
	va_start(ap, fmt);
	vsnprintf(ex->reason, sizeof(ex->reason), fmt, ap);
	va_end(ap);
	return 0;
}

/* A #GP or #PF (SIGSEGV): port I/O and cli/sti are the guest ABI's; the rest is a crash. */
static int on_segv(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex)
{
	struct gw_vmm *vmm = vcpu->vmm;
	struct gw_pvcpu *pv = vcpu->proc;
	uint64_t rip = pv->regs.rip;
	char why[160];
	siginfo_t si;

	if (rip < vmm->ram_size) {
		size_t avail = vmm->ram_size - rip < 15 ? (size_t)(vmm->ram_size - rip) : 15;

		gw_insn_decode(vmm->ram + rip, avail, &pv->insn);
	} else {
		memset(&pv->insn, 0, sizeof(pv->insn));
	}
	switch (pv->insn.kind) {
	case GW_INSN_IN:
	case GW_INSN_OUT:
	case GW_INSN_INS:
	case GW_INSN_OUTS:
		if (gw_pio_prepare(&pv->regs, &pv->insn, vmm->ram, vmm->ram_size, &pv->pio, why,
				   sizeof(why)) < 0)
			return crash(ex, pv, "%s: %s", pv->insn.text, why);
		if (!pv->pio.count) { /* rep with rCX = 0: no port access, just complete */
			gw_pio_complete(&pv->regs, &pv->insn, &pv->pio, vmm->ram, vmm->ram_size,
					why, sizeof(why));
			pv->regs_dirty = true;
			return 0;
		}
		ex->kind = GW_EXIT_IO;
		ex->port = pv->pio.port;
		ex->size = pv->pio.size;
		ex->in = pv->pio.in;
		ex->count = pv->pio.count;
		ex->data = pv->pio.data;
		ex->rip = rip;
		pv->exits_io++;
		return 0;
	case GW_INSN_CLI:
	case GW_INSN_STI: /* IF is the guest's own business: nothing ever interrupts it */
		pv->regs.rip += pv->insn.len;
		pv->regs_dirty = true;
		return 0;
	case GW_INSN_HLT:
		return crash(ex, pv, "hlt (no interrupts ever arrive)");
	case GW_INSN_UNKNOWN:
		break;
	default:
		return crash(ex, pv, "privileged instruction %s", pv->insn.text);
	}
	memset(&si, 0, sizeof(si));
	ptrace(PTRACE_GETSIGINFO, pv->tid, NULL, &si);
	if (si.si_code == SEGV_MAPERR || si.si_code == SEGV_ACCERR)
		return crash(
		    ex, pv, "page fault at 0x%llx (%s)", (unsigned long long)(uintptr_t)si.si_addr,
		    (uintptr_t)si.si_addr < vmm->ram_size ? "in guest RAM" : "outside guest RAM");
	if (rip >= vmm->ram_size)
		return crash(ex, pv, "general protection fault, rip outside guest RAM");
	return crash(ex, pv, "general protection fault: %s", pv->insn.text);
}

static const char *arch_name(unsigned arch)
{
	return arch == 0xc000003eu ? "x86-64" : arch == 0x40000003u ? "i386" : "unknown arch";
}

/* The thread stopped with signal sig (a fault, the seccomp trap, or our kick). */
static int on_signal(struct gw_vcpu *vcpu, int sig, struct gw_vcpu_exit *ex)
{
	struct gw_pvcpu *pv = vcpu->proc;
	siginfo_t si;

	if (sig == KICK_SIGNAL)
		return 0; /* GW_EXIT_INTR */
	if (ptrace(PTRACE_GETREGS, pv->tid, NULL, &pv->regs) < 0)
		return -errno;
	if (sig == SIGSEGV)
		return on_segv(vcpu, ex);
	memset(&si, 0, sizeof(si));
	ptrace(PTRACE_GETSIGINFO, pv->tid, NULL, &si);
	switch (sig) {
	case SIGSYS:
		return crash(ex, pv, "system call %d (%s) trapped by the sandbox", si.si_syscall,
			     arch_name(si.si_arch));
	case SIGILL:
		return crash(ex, pv, "invalid opcode (#UD)");
	case SIGFPE:
		return crash(ex, pv, "arithmetic exception (#DE/#MF/#XM)");
	case SIGTRAP:
		return crash(ex, pv, "breakpoint or debug trap (int3/int1)");
	case SIGBUS:
		return crash(ex, pv, "bus error at 0x%llx",
			     (unsigned long long)(uintptr_t)si.si_addr);
	default:
		return crash(ex, pv, "signal %d (%s) in the sandbox", sig, strsignal(sig));
	}
}

int gw_proc_vcpu_run(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex)
{
	struct gw_pvcpu *pv = vcpu->proc;
	int st, r;

	ex->kind = GW_EXIT_INTR;
	if (pv->regs_dirty && (r = set_regs(pv)) < 0)
		return r;
	pv->xstate_valid = false; /* the guest runs: the saved XSAVE area goes stale */
	if (ptrace(PTRACE_CONT, pv->tid, NULL, NULL) < 0)
		return -errno;
	r = wait_stop(pv, &st);
	if (r)
		return r;
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		pv->seized = false;
		return crash(ex, pv, "the sandbox thread ended (%s %d)",
			     WIFEXITED(st) ? "exit status" : "signal",
			     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
	if (st >> 16 == PTRACE_EVENT_STOP)
		return 0; /* group-stop or interrupt: re-check requests */
	return on_signal(vcpu, WSTOPSIG(st), ex);
}

/* Complete the I/O instruction in pv->regs (and RAM for ins): written back before the next
 * run, so nothing stays pending. */
bool gw_proc_vcpu_io_done(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex)
{
	struct gw_vmm *vmm = vcpu->vmm;
	struct gw_pvcpu *pv = vcpu->proc;
	uint64_t rdi = pv->insn.addr32 ? (uint32_t)pv->regs.rdi : pv->regs.rdi;
	uint64_t n = (uint64_t)pv->pio.size * pv->pio.count;
	char why[160];

	if (gw_pio_complete(&pv->regs, &pv->insn, &pv->pio, vmm->ram, vmm->ram_size, why,
			    sizeof(why)) < 0) {
		gw_err(SUBSYS, "%s: vcpu %u: completing %s: %s", vmm->name, vcpu->index,
		       pv->insn.text, why);
		return false;
	}
	/* ins wrote guest RAM through this process's mapping: not in the sandbox's log */
	if (pv->insn.kind == GW_INSN_INS)
		gw_vmm_mark_dirty(vmm, pv->regs.eflags & 0x400 ? rdi + pv->pio.size - n : rdi, n);
	pv->regs_dirty = true;
	return false;
}

void gw_proc_vcpu_flush_io(struct gw_vcpu *vcpu)
{
	(void)vcpu; /* io_done never leaves anything pending */
}

/* Before parking or after stopping itself (the thread is stopped): write back what changed,
 * read the XSAVE area, so that gw_vmm_vcpu_save can read both from another thread. */
int gw_proc_vcpu_park(struct gw_vcpu *vcpu)
{
	struct gw_pvcpu *pv = vcpu->proc;
	int r = 0;

	if (!pv->seized)
		return 0;
	if (pv->regs_dirty)
		r = set_regs(pv);
	if (!r && ptrace(PTRACE_GETREGS, pv->tid, NULL, &pv->regs) < 0)
		r = -errno;
	if (!r)
		r = get_xstate(pv);
	return r;
}
