/* guest_rt.c -- entry code and freestanding runtime shared by the Godwit test guests. */
#include "guest_rt.h"

/* _start must be the first byte of the image (flat binaries are entered there): it lives
 * in .text._start, which guest.ld places first. RDI/RSI/RDX/RCX already hold the four
 * arguments of gr_entry in SysV order; RSP arrives 16-byte aligned, so the call leaves the
 * callee with the ABI's alignment. If gr_entry ever returned, stop this vCPU. */
__asm__(".section .text._start,\"ax\",@progbits\n"
	".globl _start\n"
	".type _start,@function\n"
	"_start:\n"
	"	andq $-16, %rsp\n"
	"	xorl %ebp, %ebp\n"
	"	call gr_entry\n"
	"1:	movw $0x502, %dx\n"
	"	xorl %eax, %eax\n"
	"	outb %al, %dx\n"
	"	pause\n"
	"	jmp 1b\n"
	".size _start, . - _start\n"
	".previous\n");

uint64_t gr_ram_bytes;
static uint64_t gr_tsc_khz;
static spinlock_t con_spin;

__attribute__((noreturn, used)) void gr_entry(uint64_t ram, uint64_t vcpu, const char *cmdline,
					      uint64_t khz);

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

/* Used only when the VMM passes RCX = 0: CPUID leaf 0x40000010 (hypervisor TSC kHz),
 * 0x15 (crystal ratio), 0x16 (base MHz), else an assumed 2 GHz. */
static uint64_t tsc_khz_from_cpuid(void)
{
	uint32_t r[4];
	cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000010 && r[0] < 0x40010000) {
		cpuid(0x40000010, 0, r);
		if (r[0])
			return r[0];
	}
	cpuid(0, 0, r);
	uint32_t max = r[0];
	if (max >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2])
			return (uint64_t)r[2] * r[1] / r[0] / 1000;
	}
	if (max >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0] & 0xffff)
			return (uint64_t)(r[0] & 0xffff) * 1000;
	}
	return 2000000;
}

void gr_entry(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t khz)
{
	if (!khz)
		khz = tsc_khz_from_cpuid();
	/* Every vCPU stores the same values. */
	__atomic_store_n(&gr_tsc_khz, khz, __ATOMIC_RELAXED);
	__atomic_store_n(&gr_ram_bytes, ram, __ATOMIC_RELAXED);
	guest_main(ram, vcpu, cmdline ? cmdline : "", khz);
	vcpu_stop();
}

void vm_exit(uint8_t status)
{
	for (;;) {
		outb(GR_PORT_EXIT_VM, status);
		cpu_relax();
	}
}

void vcpu_stop(void)
{
	for (;;) {
		outb(GR_PORT_EXIT_VCPU, 0);
		cpu_relax();
	}
}

/* ---- console ---- */

void con_lock(void)
{
	spin_lock(&con_spin);
}

void con_unlock(void)
{
	spin_unlock(&con_spin);
}

/* The VMM's UART is always ready (LSR reads 0x60), so no polling of 0x3fd per byte. */
void con_putc(char c)
{
	outb(GR_PORT_CONSOLE, (uint8_t)c);
}

void con_puts(const char *s)
{
	while (*s)
		con_putc(*s++);
}

static void put_num(uint64_t v, unsigned base, bool upper, int width, char pad, bool left, bool neg)
{
	const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char buf[24];
	int n = 0;
	do {
		buf[n++] = dig[v % base];
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	int len = n;
	if (!left) {
		if (neg && pad == '0') {
			con_putc('-');
			n--;
		}
		for (int i = len; i < width; i++)
			con_putc(pad);
	}
	while (n > 0)
		con_putc(buf[--n]);
	if (left)
		for (int i = len; i < width; i++)
			con_putc(' ');
}

void con_put_u64(uint64_t v)
{
	put_num(v, 10, false, 0, ' ', false, false);
}

void con_put_hex(uint64_t v, int digits)
{
	put_num(v, 16, false, digits, '0', false, false);
}

void gvprintf(const char *fmt, va_list ap)
{
	con_lock();
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			con_putc(*p);
			continue;
		}
		p++;
		char pad = ' ';
		bool left = false;
		for (;; p++) {
			if (*p == '0')
				pad = '0';
			else if (*p == '-')
				left = true;
			else
				break;
		}
		int width = 0;
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		int lng = 0;
		while (*p == 'l' || *p == 'z') {
			lng++;
			p++;
		}
		switch (*p) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
			put_num(u, 10, false, width, pad, left, v < 0);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			put_num(v, *p == 'u' ? 10 : 16, *p == 'X', width, pad, left, false);
			break;
		}
		case 'p':
			con_puts("0x");
			put_num((uint64_t)(uintptr_t)va_arg(ap, void *), 16, false, width, pad,
				left, false);
			break;
		case 'c':
			con_putc((char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int len = (int)strlen(s);
			if (!left)
				for (int i = len; i < width; i++)
					con_putc(' ');
			con_puts(s);
			if (left)
				for (int i = len; i < width; i++)
					con_putc(' ');
			break;
		}
		case '%':
			con_putc('%');
			break;
		case '\0':
			p--;
			break;
		default:
			con_putc('%');
			con_putc(*p);
			break;
		}
	}
	con_unlock();
}

void gprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	gvprintf(fmt, ap);
	va_end(ap);
}

/* ---- command line ---- */

/* Value of key in cmdline (pointer into cmdline, length in *vlen), or NULL. The last
 * occurrence wins, so appended words override earlier ones. */
static const char *cmdline_find(const char *cmdline, const char *key, size_t *vlen)
{
	const char *found = NULL;
	size_t klen = strlen(key);
	const char *p = cmdline;
	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n')
			p++;
		size_t wlen = (size_t)(p - w);
		if (wlen >= klen && memcmp(w, key, klen) == 0) {
			if (wlen == klen) {
				found = w + klen;
				*vlen = 0;
			} else if (w[klen] == '=') {
				found = w + klen + 1;
				*vlen = wlen - klen - 1;
			}
		}
	}
	return found;
}

bool cmdline_has(const char *cmdline, const char *key)
{
	size_t n;
	return cmdline_find(cmdline, key, &n) != NULL;
}

bool cmdline_get_str(const char *cmdline, const char *key, char *buf, size_t len)
{
	size_t n;
	const char *v = cmdline_find(cmdline, key, &n);
	if (!v)
		return false;
	if (len) {
		if (n > len - 1)
			n = len - 1;
		memcpy(buf, v, n);
		buf[n] = '\0';
	}
	return true;
}

uint64_t cmdline_get_u64_ok(const char *cmdline, const char *key, uint64_t def, bool *ok)
{
	size_t n;
	const char *v = cmdline_find(cmdline, key, &n);
	if (ok)
		*ok = true;
	if (!v)
		return def;
	uint64_t base = 10, r = 0;
	size_t i = 0;
	if (n > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n)
		goto bad;
	for (; i < n; i++) {
		char c = v[i];
		uint64_t d;
		if (c >= '0' && c <= '9')
			d = (uint64_t)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (uint64_t)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (uint64_t)(c - 'A' + 10);
		else
			goto bad;
		if (r > (UINT64_MAX - d) / base)
			goto bad;
		r = r * base + d;
	}
	return r;
bad:
	if (ok)
		*ok = false;
	return def;
}

/* ---- time ---- */

uint64_t tsc_khz(void)
{
	return __atomic_load_n(&gr_tsc_khz, __ATOMIC_RELAXED);
}

/* Split so that nothing overflows for centuries of ticks, without 128-bit division. */
uint64_t tsc_to_ns(uint64_t ticks)
{
	uint64_t khz = tsc_khz();
	return ticks / khz * 1000000 + ticks % khz * 1000000 / khz;
}

void delay_ns(uint64_t ns)
{
	uint64_t end = rdtsc() + ns_to_tsc(ns);
	while ((int64_t)(rdtsc() - end) < 0)
		cpu_relax();
}

/* ---- barrier ---- */

void barrier_wait(struct spin_barrier *b, uint64_t n)
{
	uint64_t gen = atomic_load_u64(&b->gen);
	if (atomic_add_u64(&b->count, 1) == n) {
		atomic_store_u64(&b->count, 0);
		atomic_add_u64(&b->gen, 1);
		return;
	}
	while (atomic_load_u64(&b->gen) == gen)
		cpu_relax();
}

/* ---- libc subset (built with -fno-tree-loop-distribute-patterns so these loops are
 * not turned back into calls to themselves) ---- */

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if (dp < sp) {
		while (n--)
			*dp++ = *sp++;
	} else {
		while (n--)
			dp[n] = sp[n];
	}
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}
