/* process_stub.c -- the process backend's sandbox stub: a freestanding static program that
 * godwit-vmm execs (process_vm.c) to hold one VM's guest RAM, and nothing else.
 *
 * It maps guest RAM at virtual address 0 (guest-physical == virtual: the ABI's identity map),
 * turns on the dirty log (userfaultfd write-protect, async mode: a write to a protected page
 * just clears the protection, which PAGEMAP_SCAN then reports), drops every capability,
 * clones one thread per vCPU (each waits in pause() until a VMM thread ptrace-seizes it and
 * sets the guest's registers), hides or write-protects its own mappings, installs a seccomp filter
 * that traps every system call on every thread, and stops on int3 for good. The protocol is in
 * process_stub.h. No libc: raw system calls, no globals, nothing writable left behind.
 */
#include <asm/unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/ioctl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>

#include "process_stub.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#define O_CLOEXEC_  02000000
#define PROT_RWX    7
#define MAP_SHARED_ 0x01
#define MAP_FIXED_  0x10

typedef unsigned long u64;

/* The filter: every system call (any architecture, any number) raises SIGSYS, which the
 * supervising VMM thread sees as a ptrace stop and reports as a crash naming the call. */
static const struct sock_filter trap_all[] = {
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
};
static const struct sock_fprog trap_prog = {
    .len = 1,
    .filter = (struct sock_filter *)trap_all,
};

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys3(nr, a, b, c) sys6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static void __attribute__((noreturn)) die(int fd, unsigned step, long err)
{
	struct gw_stub_status st = {GW_STUB_MAGIC, step, (int)-err, -1};

	sys3(__NR_write, fd, &st, sizeof(st));
	for (;;)
		sys3(__NR_exit_group, 127, 0, 0);
}

static void drop_caps(int sock)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
	long r;

	for (long cap = 0; cap <= 63; cap++) {
		r = sys3(__NR_prctl, PR_CAPBSET_DROP, cap, 0);
		if (r < 0 && r != -22) /* EINVAL: no such capability */
			die(sock, GW_STUB_STEP_CAPS, r);
	}
	r = sys3(__NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0);
	if (r < 0 && r != -22)
		die(sock, GW_STUB_STEP_CAPS, r);
	r = sys3(__NR_capset, &hdr, data, 0);
	if (r < 0)
		die(sock, GW_STUB_STEP_CAPS, r);
	r = sys6(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
	if (r < 0)
		die(sock, GW_STUB_STEP_NNP, r);
}

/* The dirty log: all of guest RAM registered for userfaultfd write-protect in async mode.
 * Nothing is protected yet: the VMM protects the written pages when a migration starts the
 * log (PAGEMAP_SCAN), so a guest pays the protection fault only while one runs. Returns the
 * uffd, kept open: closing it would end the tracking. */
static int dirty_log_on(int sock, u64 ram_size)
{
	struct uffdio_api api = {.api = UFFD_API,
				 .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
					     UFFD_FEATURE_WP_HUGETLBFS_SHMEM};
	struct uffdio_register reg = {.range = {0, ram_size}, .mode = UFFDIO_REGISTER_MODE_WP};
	long uffd, r;

	uffd = sys3(__NR_userfaultfd, O_CLOEXEC_ | UFFD_USER_MODE_ONLY, 0, 0);
	if (uffd < 0)
		die(sock, GW_STUB_STEP_UFFD, uffd);
	r = sys3(__NR_ioctl, uffd, UFFDIO_API, &api);
	if (r < 0)
		die(sock, GW_STUB_STEP_UFFD_API, r);
	r = sys3(__NR_ioctl, uffd, UFFDIO_REGISTER, &reg);
	if (r < 0)
		die(sock, GW_STUB_STEP_UFFD_REG, r);
	return (int)uffd;
}

/* One vCPU thread: shares everything, uses no stack (clone with sp 0 keeps ours, and the
 * child only loops on pause() in registers), until a VMM thread seizes it. */
static long clone_vcpu_thread(void)
{
	long ret;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 2f\n"
			 "1:\tmov %[pause], %%eax\n\t"
			 "syscall\n\t"
			 "jmp 1b\n"
			 "2:"
			 : "=a"(ret)
			 : "a"((long)__NR_clone),
			   "D"((long)(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
				      CLONE_THREAD | CLONE_SYSVSEM)),
			   "S"(0L), "d"(0L), [pause] "i"(__NR_pause)
			 : "rcx", "r11", "r10", "r8", "memory");
	return ret;
}

/* The last steps, in registers only: the stack goes PROT_NONE, then the seccomp filter on
 * every thread, then int3 (the VMM keeps this thread stopped there until the VM ends). */
static void __attribute__((noreturn)) seal(u64 stack_lo, u64 stack_len)
{
	__asm__ volatile("syscall\n\t" /* mprotect(stack_lo, stack_len, PROT_NONE) */
			 "mov %[seccomp], %%eax\n\t"
			 "mov %[op], %%edi\n\t"
			 "mov %[flags], %%esi\n\t"
			 "lea %[prog], %%rdx\n\t"
			 "syscall\n\t"
			 "int3\n\t"
			 "ud2"
			 :
			 : "a"((long)__NR_mprotect), "D"(stack_lo), "S"(stack_len),
			   "d"(0L), [seccomp] "i"(__NR_seccomp), [op] "i"(SECCOMP_SET_MODE_FILTER),
			   [flags] "i"(SECCOMP_FILTER_FLAG_TSYNC), [prog] "m"(trap_prog)
			 : "rcx", "r11", "memory");
	__builtin_unreachable();
}

static void apply_ops(int sock, const struct gw_stub_go *go, u64 *stack_lo, u64 *stack_len)
{
	for (unsigned i = 0; i < go->nr_ops && i < GW_STUB_MAX_OPS; i++) {
		const struct gw_stub_op *op = &go->ops[i];
		long r = 0;

		if (op->op == GW_STUB_OP_UNMAP)
			r = sys3(__NR_munmap, op->start, op->len, 0);
		else if (op->op == GW_STUB_OP_RO)
			r = sys3(__NR_mprotect, op->start, op->len, 1 /* PROT_READ */);
		else if (op->op == GW_STUB_OP_STACK) {
			*stack_lo = op->start;
			*stack_len = op->len;
		}
		if (r < 0)
			die(sock, GW_STUB_STEP_OPS, r);
	}
}

void __attribute__((noreturn, used)) stub_main(void)
{
	struct gw_stub_setup setup;
	struct gw_stub_status st = {GW_STUB_MAGIC, GW_STUB_OK, 0, -1};
	struct gw_stub_go go;
	u64 stack_lo = 0, stack_len = 0;
	long r;

	sys3(__NR_close, GW_STUB_FD_SELF, 0, 0);
	sys3(__NR_prctl, PR_SET_NAME, "godwit-sandbox", 0);
	r = sys3(__NR_read, GW_STUB_FD_SOCK, &setup, sizeof(setup));
	if (r != sizeof(setup) || setup.magic != GW_STUB_MAGIC || !setup.vcpus)
		die(GW_STUB_FD_SOCK, GW_STUB_STEP_SETUP, r < 0 ? r : -22);
	r = sys6(__NR_mmap, 0, (long)setup.ram_size, PROT_RWX, MAP_SHARED_ | MAP_FIXED_,
		 GW_STUB_FD_RAM, 0);
	if (r != 0)
		die(GW_STUB_FD_SOCK, GW_STUB_STEP_MMAP, r < 0 ? r : -14);
	sys3(__NR_close, GW_STUB_FD_RAM, 0, 0);
	st.uffd = dirty_log_on(GW_STUB_FD_SOCK, setup.ram_size);
	drop_caps(GW_STUB_FD_SOCK);
	for (unsigned i = 0; i < setup.vcpus; i++) {
		r = clone_vcpu_thread();
		if (r < 0)
			die(GW_STUB_FD_SOCK, GW_STUB_STEP_CLONE, r);
	}
	sys3(__NR_write, GW_STUB_FD_SOCK, &st, sizeof(st));
	r = sys3(__NR_read, GW_STUB_FD_SOCK, &go, sizeof(go));
	if (r != sizeof(go) || go.magic != GW_STUB_MAGIC)
		die(GW_STUB_FD_SOCK, GW_STUB_STEP_GO, r < 0 ? r : -22);
	apply_ops(GW_STUB_FD_SOCK, &go, &stack_lo, &stack_len);
	sys3(__NR_close, GW_STUB_FD_SOCK, 0, 0);
	seal(stack_lo, stack_len);
}

/* Entry: the kernel's initial stack is 16-byte aligned at _start; keep it so for C. */
__asm__(".text\n"
	".globl _start\n"
	"_start:\n\t"
	"xor %ebp, %ebp\n\t"
	"and $-16, %rsp\n\t"
	"call stub_main\n\t"
	"ud2\n");
