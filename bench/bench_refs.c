/* bench_refs.c -- bench_process's in-run references (see bench_refs.h): the costs a port-I/O
 * exit of the process backend is made of, measured without a VM. */
#include "bench_refs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

double null_syscall_us(void)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < NULL_CALLS; i++)
		syscall(SYS_getppid);
	return (double)(now_ns() - t0) / NULL_CALLS / 1e3;
}

static inline uint8_t lsr_inb(void)
{
	uint8_t v;

	/* "in (%dx), %al": one byte, 0xec; #GP here (no IOPL, no ioperm) */
	__asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"((uint16_t)LSR_PORT) : "memory");
	return v;
}

/* The in-process floor: the #GP of an IN becomes a SIGSEGV handled in this thread, which
 * completes the IN (AL = 0x60) and returns. No ptrace, no other thread (as gVisor's systrap
 * does for system calls). */
static void segv_complete_in(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	greg_t *g = uc->uc_mcontext.gregs;

	(void)sig;
	(void)si;
	if (*(const uint8_t *)(uintptr_t)g[REG_RIP] != 0xec)
		abort();
	g[REG_RAX] = (g[REG_RAX] & ~0xffll) | LSR_VALUE;
	g[REG_RIP] += 1;
}

double signal_fault_us(void)
{
	struct sigaction sa, old;
	unsigned bad = 0;
	uint64_t t0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_complete_in;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	t0 = now_ns();
	for (int i = 0; i < SIG_FAULTS; i++)
		bad += lsr_inb() != LSR_VALUE;
	t0 = now_ns() - t0;
	sigaction(SIGSEGV, &old, NULL);
	if (bad)
		fprintf(stderr, "bench_process: signal floor: %u INs without 0x60\n", bad);
	return (double)t0 / SIG_FAULTS / 1e3;
}

/* The ptrace floor: a traced child runs n INs; each #GP stops it, and this process (its
 * tracer) reads the registers, completes the IN and continues it -- what the process
 * backend does per exit, minus the decoder, the port handlers and the VMM's locks. */
double ptrace_fault_us(unsigned n)
{
	struct user_regs_struct regs;
	uint64_t t0 = 0;
	unsigned done = 0;
	pid_t pid;
	int st;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		unsigned bad = 0;

		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		for (unsigned i = 0; i < n; i++)
			bad += lsr_inb() != LSR_VALUE;
		_exit(bad ? 1 : 0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
		goto fail;
	ptrace(PTRACE_CONT, pid, NULL, NULL);
	t0 = now_ns();
	for (;;) {
		if (waitpid(pid, &st, 0) != pid)
			goto fail;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			break;
		if (WSTOPSIG(st) != SIGSEGV || ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0)
			goto fail;
		regs.rax = (regs.rax & ~0xffull) | LSR_VALUE;
		regs.rip += 1;
		if (ptrace(PTRACE_SETREGS, pid, NULL, &regs) < 0 ||
		    ptrace(PTRACE_CONT, pid, NULL, NULL) < 0)
			goto fail;
		done++;
	}
	t0 = now_ns() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) || done != n)
		return -1;
	return (double)t0 / n / 1e3;
fail:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* Two processes passing one byte back and forth over two pipes: the cost of waking another
 * process and being woken by it, which every ptrace exit pays too. */
double pipe_rtt_us(unsigned n)
{
	int ab[2], ba[2];
	uint64_t t0;
	char c = 0;
	pid_t pid;

	if (pipe(ab) || pipe(ba))
		return -1;
	pid = fork();
	if (pid == 0) {
		for (unsigned i = 0; i < n; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	t0 = now_ns();
	for (unsigned i = 0; i < n && pid > 0; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			break;
	t0 = now_ns() - t0;
	if (pid > 0)
		waitpid(pid, NULL, 0);
	close(ab[0]);
	close(ab[1]);
	close(ba[0]);
	close(ba[1]);
	return pid > 0 ? (double)t0 / n / 1e3 : -1;
}

double spawn_ms(void)
{
	uint64_t t0 = now_ns();
	pid_t p = fork();

	if (p == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	waitpid(p, NULL, 0);
	return (double)(now_ns() - t0) / 1e6;
}
