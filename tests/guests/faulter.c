/* faulter.c -- test guest that ends its VM a chosen way: crash, clean exit or vCPU stops,
 * or misbehaves on purpose (host system calls, wild writes, console floods, spinning). */
#include "guest_rt.h"

#define PTE_P	    1ull
#define PTE_PS	    0x80ull
#define PTE_ADDR(e) ((e)&0x000ffffffffff000ull)

/* Linux numbers used by the modes that try to create a file on the host. */
#define LX_O_WRONLY  01
#define LX_O_CREAT   0100
#define LX_AT_FDCWD  (-100)
#define LX64_OPEN    2
#define LX64_OPENAT  257
#define LX32_OPEN    5
#define LX32_CREAT   8
#define HOSTILE_PATH "/tmp/gw-hostile-"
#define HOSTILE_MODE 0644
#define FLOOD_LINE   64 /* 'A's per flood line */

/* The hostile instructions sit at global labels (hostile_*_insn) so the guest can print
 * their address and a test can match it against the rip of a crash reason: under KVM with
 * no IDT most of them only become "triple fault at rip ...". Each stub takes its
 * arguments in the SysV registers and moves them where the instruction wants them. */
long hostile_syscall(long nr, long a1, long a2, long a3, long a4); /* x86-64 Linux ABI */
long hostile_int80(long nr, long a1, long a2, long a3);		   /* i386 ABI: int $0x80 */
long hostile_sysenter(long nr, long a1, long a2, long a3);	   /* i386 regs + sysenter */
void hostile_store(uint64_t addr, uint64_t val);
void hostile_jump(uint64_t addr);
void hostile_hlt(void);
extern char hostile_syscall_insn[], hostile_int80_insn[], hostile_sysenter_insn[],
    hostile_store_insn[], hostile_hlt_insn[];

__asm__(".text\n"
	".globl hostile_syscall, hostile_syscall_insn\n"
	"hostile_syscall:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"hostile_syscall_insn:\n"
	"	syscall\n"
	"	ret\n"
	".globl hostile_int80, hostile_int80_insn\n"
	"hostile_int80:\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rbx\n"
	"	xchg %rdx, %rcx\n"
	"hostile_int80_insn:\n"
	"	int $0x80\n"
	"	pop %rbx\n"
	"	ret\n"
	".globl hostile_sysenter, hostile_sysenter_insn\n"
	"hostile_sysenter:\n"
	"	push %rbp\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rbx\n"
	"	xchg %rdx, %rcx\n"
	"	mov %rsp, %rbp\n"
	"hostile_sysenter_insn:\n"
	"	sysenter\n"
	"	pop %rbx\n"
	"	pop %rbp\n"
	"	ret\n"
	".globl hostile_store, hostile_store_insn\n"
	"hostile_store:\n"
	"hostile_store_insn:\n"
	"	mov %rsi, (%rdi)\n"
	"	ret\n"
	".globl hostile_jump\n"
	"hostile_jump:\n"
	"	jmp *%rdi\n"
	".globl hostile_hlt, hostile_hlt_insn\n"
	"hostile_hlt:\n"
	"hostile_hlt_insn:\n"
	"	hlt\n"
	"	ret\n");

/* Map the 2 MiB just past the end of RAM (identity, user, writable) by editing the VMM's
 * page tables, which the ABI leaves user-writable at PML4 = 0x1000 (agent/vmm.h). Not
 * present before, so nothing is cached in the TLB and no invlpg is needed. Returns false
 * when the tables do not have the expected shape (then the write page-faults instead). */
static uint64_t extra_pd[512] __attribute__((aligned(4096)));

static bool map_past_ram(uint64_t ram)
{
	volatile uint64_t *pml4 = (volatile uint64_t *)(uintptr_t)0x1000;
	uint64_t e = pml4[(ram >> 39) & 511];
	if (!(e & PTE_P) || PTE_ADDR(e) + GR_PAGE > ram)
		return false;
	volatile uint64_t *pdpt = (volatile uint64_t *)(uintptr_t)PTE_ADDR(e);
	e = pdpt[(ram >> 30) & 511];
	if (!(e & PTE_P)) {
		/* RAM ends on a GiB boundary: hang a page directory of our own there. */
		pdpt[(ram >> 30) & 511] = (uint64_t)(uintptr_t)extra_pd | 0x7;
		e = pdpt[(ram >> 30) & 511];
	}
	if ((e & PTE_PS) || PTE_ADDR(e) + GR_PAGE > ram)
		return false;
	volatile uint64_t *pd = (volatile uint64_t *)(uintptr_t)PTE_ADDR(e);
	e = pd[(ram >> 21) & 511];
	if (e & PTE_P)
		return true;						  /* already mapped */
	pd[(ram >> 21) & 511] = (ram & ~(2 * GR_MIB - 1)) | PTE_PS | 0x7; /* P, RW, US */
	return true;
}

/* The path the syscall/int80/sysenter modes try to create: HOSTILE_PATH + tag. It lives in
 * guest RAM below 4 GiB, so the i386 ABI's 32-bit registers can carry its address too. */
static char hostile_path[sizeof(HOSTILE_PATH) + 48];

static bool set_hostile_path(const char *cmdline)
{
	char tag[48];
	if (!cmdline_get_str(cmdline, "tag", tag, sizeof(tag)))
		memcpy(tag, "faulter", sizeof("faulter"));
	if (!tag[0] || strlen(tag) >= sizeof(tag) - 1)
		return false; /* empty, or (maybe) truncated */
	for (const char *p = tag; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	memcpy(hostile_path, HOSTILE_PATH, sizeof(HOSTILE_PATH) - 1);
	memcpy(hostile_path + sizeof(HOSTILE_PATH) - 1, tag, strlen(tag) + 1);
	return true;
}

/* Console lines as fast as the VMM takes them, forever: "flood <n> AAA...A\n". One OUT per
 * byte with no lock or formatting in the loop; only a stop from outside ends it. */
static __attribute__((noreturn)) void flood(void)
{
	char num[24];
	for (uint64_t n = 0;; n++) {
		int i = (int)sizeof(num);
		uint64_t v = n;
		do {
			num[--i] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		con_puts("flood ");
		for (; i < (int)sizeof(num); i++)
			con_putc(num[i]);
		con_putc(' ');
		for (int k = 0; k < FLOOD_LINE; k++)
			con_putc('A');
		con_putc('\n');
	}
}

/* mode=ins: fill a buffer, wait delay ms (the test turns the dirty log on meanwhile), then
 * rep insb 8 KiB from the console LSR (0x3fd, answered 0x60) into it and idle (port 0x503)
 * until stopped. Only the VMM writes those pages after the wait: the dirty log must report
 * them anyway. */
static uint8_t ins_buf[2 * GR_PAGE] __attribute__((aligned(4096)));

static __attribute__((noreturn)) void ins_mode(uint64_t delay)
{
	void *dst = ins_buf;
	uint64_t n = sizeof(ins_buf);

	memset(ins_buf, 0x11, sizeof(ins_buf));
	gprintf("faulter mode=ins buf=0x%lx len=%lu\n", (uint64_t)(uintptr_t)ins_buf, n);
	delay_ms(delay);
	__asm__ volatile("rep insb" : "+D"(dst), "+c"(n) : "d"((uint16_t)0x3fd) : "memory");
	gprintf("faulter ins done: %s\n",
		ins_buf[0] == 0x60 && ins_buf[sizeof(ins_buf) - 1] == 0x60 ? "ok" : "bad");
	for (;;)
		outb(0x503, 100); /* the VMM's idle port: off the CPU for 100 ms */
}

/* A loop with no exits at all: no port I/O, no pause, no memory outside the stack. */
static __attribute__((noreturn)) void spin(void)
{
	volatile uint64_t n = 0;
	for (;;)
		n = n + 1;
}

static const char *const modes[] = {
    "port",  "inport",	 "mmio", "pagefault", "ud2",   "hlt",  "syscall",
    "int80", "sysenter", "wild", "jump",      "flood", "spin", "ins",
};

static bool mode_known(const char *mode)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(mode, modes[i]) == 0)
			return true;
	return false;
}

static __attribute__((noreturn)) void bad_arg(const char *what)
{
	gprintf("faulter error: %s\n", what);
	vm_exit(GR_EXIT_BADARG);
}

void guest_main(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t khz)
{
	char mode[32], call[16];
	bool ok, addr_ok;
	uint64_t delay = cmdline_get_u64_ok(cmdline, "delay", 0, &ok);
	uint64_t addr = cmdline_get_u64_ok(cmdline, "addr", 0, &addr_ok);

	if (!cmdline_get_str(cmdline, "mode", mode, sizeof(mode)) || !ok) {
		if (vcpu == 0)
			gprintf(
			    "faulter error: need "
			    "mode=port|inport|mmio|pagefault|ud2|hlt|syscall|int80|sysenter|"
			    "wild|jump|flood|spin|ins|exit:<n>|vcpustop [delay=<ms>] [tag=<name>] "
			    "[call=open|openat|creat] [addr=<hex>]\n");
		vm_exit(GR_EXIT_BADARG);
	}
	if (strcmp(mode, "vcpustop") == 0) {
		gprintf("faulter vcpu=%lu mode=vcpustop\n", vcpu);
		if (delay)
			delay_ms(delay);
		vcpu_stop();
	}
	/* Every other mode acts on vCPU 0 only; the others stop themselves. */
	if (vcpu != 0)
		vcpu_stop();

	uint64_t status = 0;
	if (memcmp(mode, "exit:", 5) == 0) {
		const char *p = mode + 5;
		if (!*p)
			ok = false;
		for (; *p; p++) {
			if (*p < '0' || *p > '9' || status > 255) {
				ok = false;
				break;
			}
			status = status * 10 + (uint64_t)(*p - '0');
		}
		if (!ok || status > 255)
			bad_arg("exit status must be 0..255");
	} else if (!mode_known(mode)) {
		gprintf("faulter error: unknown mode=%s\n", mode);
		vm_exit(GR_EXIT_BADARG);
	}

	if (!strcmp(mode, "ins"))
		ins_mode(delay);

	/* Arguments of the hostile modes, checked before anything is printed or done. */
	bool sys = !strcmp(mode, "syscall") || !strcmp(mode, "int80") || !strcmp(mode, "sysenter");
	long nr = 0;
	if (sys) {
		if (!set_hostile_path(cmdline))
			bad_arg("tag must be 1..46 characters of [A-Za-z0-9._-]");
		if (!cmdline_get_str(cmdline, "call", call, sizeof(call)))
			memcpy(call, "open", sizeof("open"));
		bool i386 = strcmp(mode, "syscall") != 0;
		if (strcmp(call, "open") == 0)
			nr = i386 ? LX32_OPEN : LX64_OPEN;
		else if (!i386 && strcmp(call, "openat") == 0)
			nr = LX64_OPENAT;
		else if (i386 && strcmp(call, "creat") == 0)
			nr = LX32_CREAT;
		else
			bad_arg(
			    "call must be open|openat (syscall) or open|creat (int80, sysenter)");
	}
	if (!strcmp(mode, "wild") || !strcmp(mode, "jump")) {
		if (!addr_ok || !cmdline_has(cmdline, "addr"))
			bad_arg("wild and jump need addr=<0x hex or decimal>");
	}

	uint64_t path = (uint64_t)(uintptr_t)hostile_path;
	if (sys) {
		char *insn = hostile_sysenter_insn;
		if (!strcmp(mode, "syscall"))
			insn = hostile_syscall_insn;
		else if (!strcmp(mode, "int80"))
			insn = hostile_int80_insn;
		gprintf("faulter mode=%s insn=0x%lx call=%s nr=%ld path=%s\n", mode,
			(uint64_t)(uintptr_t)insn, call, nr, hostile_path);
	} else if (!strcmp(mode, "wild")) {
		gprintf("faulter mode=wild insn=0x%lx addr=0x%lx\n",
			(uint64_t)(uintptr_t)hostile_store_insn, addr);
	} else if (!strcmp(mode, "jump")) {
		gprintf("faulter mode=jump insn=0x%lx addr=0x%lx\n", addr, addr);
	} else if (!strcmp(mode, "hlt")) {
		gprintf("faulter mode=hlt insn=0x%lx\n", (uint64_t)(uintptr_t)hostile_hlt_insn);
	} else {
		gprintf("faulter mode=%s\n", mode);
	}
	if (delay)
		delay_ms(delay);

	long ret = 0;
	if (memcmp(mode, "exit:", 5) == 0) {
		vm_exit((uint8_t)status);
	} else if (strcmp(mode, "port") == 0) {
		outb(0x80, 0x42); /* unknown port: crash */
	} else if (strcmp(mode, "inport") == 0) {
		(void)inb(0x60); /* unknown port: crash */
	} else if (strcmp(mode, "mmio") == 0) {
		/* RAM + 4 KiB, mapped by us but backed by no memory: an MMIO exit. If the
		 * tables could not be edited this is a page fault (triple fault) instead. */
		if (!map_past_ram(ram))
			gprintf("faulter: page tables not as expected, expect a page fault\n");
		*(volatile uint64_t *)(uintptr_t)(ram + 4096) = 0x42;
	} else if (strcmp(mode, "pagefault") == 0) {
		/* RAM + 4 KiB is not mapped by the VMM: #PF with no IDT, a triple fault. */
		*(volatile uint64_t *)(uintptr_t)(ram + 4096) = 0x42;
	} else if (strcmp(mode, "ud2") == 0) {
		__asm__ volatile("ud2"); /* #UD, no IDT: triple fault */
	} else if (strcmp(mode, "hlt") == 0) {
		hostile_hlt(); /* privileged at CPL 3: #GP, triple fault */
	} else if (strcmp(mode, "syscall") == 0) {
		/* open(path, O_CREAT|O_WRONLY, 0644) or openat(AT_FDCWD, ...). Under KVM,
		 * EFER.SCE is clear: #UD (kvm_pvm instead faults at rip 0x508, in the GDT:
		 * apparently it enters the guest's supervisor mode at LSTAR = 0). Run natively the
		 * host kernel gets it: seccomp must stop it there. */
		if (nr == LX64_OPENAT)
			ret = hostile_syscall(nr, LX_AT_FDCWD, (long)path, LX_O_CREAT | LX_O_WRONLY,
					      HOSTILE_MODE);
		else
			ret = hostile_syscall(nr, (long)path, LX_O_CREAT | LX_O_WRONLY,
					      HOSTILE_MODE, 0);
	} else if (strcmp(mode, "int80") == 0 || strcmp(mode, "sysenter") == 0) {
		/* i386 open(path, O_CREAT|O_WRONLY, 0644) or creat(path, 0644): ebx, ecx, edx.
		 * int $0x80 with no IDT is a #GP; sysenter in long mode is #UD on AMD and a
		 * compat system call on an Intel host kernel. */
		long a2 = nr == LX32_CREAT ? HOSTILE_MODE : LX_O_CREAT | LX_O_WRONLY;
		long a3 = nr == LX32_CREAT ? 0 : HOSTILE_MODE;
		if (strcmp(mode, "int80") == 0)
			ret = hostile_int80(nr, (long)path, a2, a3);
		else
			ret = hostile_sysenter(nr, (long)path, a2, a3);
	} else if (strcmp(mode, "wild") == 0) {
		hostile_store(addr, 0x4242424242424242ull); /* outside RAM: #PF or MMIO */
	} else if (strcmp(mode, "jump") == 0) {
		hostile_jump(addr); /* execute whatever is (not) there */
	} else if (strcmp(mode, "flood") == 0) {
		flood();
	} else if (strcmp(mode, "spin") == 0) {
		spin();
	}
	/* Not reached when the VMM behaves; say so if it did not stop the VM. */
	if (sys)
		gprintf("faulter error: mode=%s returned %ld\n", mode, ret);
	gprintf("faulter error: mode=%s did not stop the VM\n", mode);
	vm_exit(1);
}
