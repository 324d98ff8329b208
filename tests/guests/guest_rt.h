/* guest_rt.h -- freestanding runtime for the test guests: ports, console, cmdline, time, atomics.
 */
#ifndef GW_GUEST_RT_H
#define GW_GUEST_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest ABI (see tests/guests/README.md and agent/vmm.h). */
#define GR_PORT_CONSOLE	    0x3f8
#define GR_PORT_CONSOLE_LSR 0x3fd
#define GR_PORT_EXIT_VM	    0x501
#define GR_PORT_EXIT_VCPU   0x502
#define GR_IMAGE_BASE	    ((uint64_t)0x100000)
#define GR_STACK_STRIDE	    ((uint64_t)64 * 1024)
#define GR_MAX_VCPUS	    64
#define GR_PAGE		    ((uint64_t)4096)
#define GR_MIB		    ((uint64_t)1024 * 1024)

/* Exit statuses shared by the guests. */
#define GR_EXIT_OK     0
#define GR_EXIT_BADARG 2 /* a cmdline value is invalid */
#define GR_EXIT_NOMEM  3 /* RAM too small for the requested layout */

/* First and one-past-last byte of the loaded image (linker script), page aligned. */
extern char _image_start[], _image_end[];

/* Written by the C entry before guest_main; identical for every vCPU. */
extern uint64_t gr_ram_bytes;

/* Every guest defines this; it runs on every vCPU. Returning stops the calling vCPU. */
void guest_main(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t tsc_khz);

/* ---- port I/O and CPU helpers (all legal at CPL 3 with IOPL 3) ---- */
static inline void outb(uint16_t port, uint8_t val)
{
	__asm__ volatile("outb %0, %1" : : "a"(val), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Stop the whole VM with this exit status (port 0x501). */
__attribute__((noreturn)) void vm_exit(uint8_t status);
/* Stop the calling vCPU (port 0x502); the VM stops with status 0 when all are stopped. */
__attribute__((noreturn)) void vcpu_stop(void);

/* ---- console (port 0x3f8) ----
 * gprintf takes the console lock for the whole call, so one call = one unbroken line.
 * Formats: %s %c %d %i %u %x %X %p %%, with flags '0' '-', a width and l/ll/z. */
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gvprintf(const char *fmt, va_list ap);
/* Unlocked pieces; wrap a sequence in con_lock()/con_unlock() on multi-vCPU guests. */
void con_lock(void);
void con_unlock(void);
void con_putc(char c);
void con_puts(const char *s);
void con_put_u64(uint64_t v);
void con_put_hex(uint64_t v, int digits); /* digits 0 = as many as needed */

/* ---- command line: words "key=value" separated by spaces; a bare "key" has value "" ---- */
/* Copy the value of key into buf (NUL-terminated, truncated to len-1); false if absent. */
bool cmdline_get_str(const char *cmdline, const char *key, char *buf, size_t len);
/* Decimal or 0x-hex value of key; def when absent; *ok (if non-NULL) false when malformed
 * (then def is returned too). */
uint64_t cmdline_get_u64_ok(const char *cmdline, const char *key, uint64_t def, bool *ok);
static inline uint64_t cmdline_get_u64(const char *cmdline, const char *key, uint64_t def)
{
	return cmdline_get_u64_ok(cmdline, key, def, NULL);
}
bool cmdline_has(const char *cmdline, const char *key);

/* ---- time: rdtsc with the TSC frequency passed in RCX (or found through CPUID) ---- */
uint64_t tsc_khz(void);
uint64_t tsc_to_ns(uint64_t ticks);
static inline uint64_t ns_to_tsc(uint64_t ns)
{
	return ns / 1000000 * tsc_khz() + ns % 1000000 * tsc_khz() / 1000000;
}
static inline uint64_t now_ns(void)
{
	return tsc_to_ns(rdtsc());
}
void delay_ns(uint64_t ns);
static inline void delay_ms(uint64_t ms)
{
	delay_ns(ms * 1000000);
}

/* ---- atomics, spinlocks, barriers (shared memory between vCPUs) ---- */
typedef struct {
	uint32_t v;
} spinlock_t;

static inline void spin_lock(spinlock_t *l)
{
	for (;;) {
		if (!__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
			return;
		while (__atomic_load_n(&l->v, __ATOMIC_RELAXED))
			cpu_relax();
	}
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
}

static inline uint64_t atomic_add_u64(uint64_t *p, uint64_t v)
{
	return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

static inline uint64_t atomic_load_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void atomic_store_u64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Sense-reversing barrier for n vCPUs; zero-initialised is ready to use. */
struct spin_barrier {
	uint64_t count;
	uint64_t gen;
};
void barrier_wait(struct spin_barrier *b, uint64_t n);

/* ---- PRNG ---- */
static inline uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- the few libc functions gcc may call ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

#endif
