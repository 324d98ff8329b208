/* qemu_init.c -- /init of the initramfs bench/bench_migrate.sh boots under QEMU (TCG).
 *
 * The QEMU side of the migration benchmark needs the same guest as Godwit's dirtier with
 * fill=: N MiB of pseudo-random (never zero) memory, then idle or dirtying at a set rate.
 * Kernel command line (unknown key=value words reach init as environment variables, and
 * /proc/cmdline is read as a fallback): gwfill=<MiB> (default 256), gwrate=<pages/s>
 * (default 0 = idle: block in pause(), the kernel halts the vCPU).
 * Console lines (on /dev/console, i.e. ttyS0 with console=ttyS0):
 *   gwinit filled <MiB> MiB rate=<r>     -- the fill is done, migration may start
 *   gwinit error: <what>                  -- then it sleeps forever (init must not exit)
 * Built with `gcc -static -O2`; never exits (PID 1 exiting panics the kernel).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB  (1024UL * 1024UL)

static void console_open(void)
{
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd < 0) {
		mkdir("/dev", 0755);
		mknod("/dev/console", S_IFCHR | 0600, makedev(5, 1));
		fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	}
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	setvbuf(stdout, NULL, _IONBF, 0);
}

static __attribute__((noreturn)) void idle_forever(void)
{
	for (;;)
		pause();
}

/* Value of key=<u64> from the environment or /proc/cmdline, def when absent. */
static uint64_t param(const char *key, uint64_t def)
{
	const char *v = getenv(key);
	static char cmdline[4096];
	if (!v) {
		if (!cmdline[0]) {
			mkdir("/proc", 0555);
			mount("proc", "/proc", "proc", 0, NULL);
			int fd = open("/proc/cmdline", O_RDONLY);
			if (fd >= 0) {
				ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
				cmdline[n > 0 ? n : 0] = 0;
				close(fd);
			}
		}
		size_t kl = strlen(key);
		for (const char *p = cmdline; (p = strstr(p, key)) != NULL; p += kl)
			if ((p == cmdline || p[-1] == ' ') && p[kl] == '=') {
				v = p + kl + 1;
				break;
			}
	}
	return v ? strtoull(v, NULL, 0) : def;
}

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(void)
{
	console_open();
	uint64_t mib = param("gwfill", 256), rate = param("gwrate", 0);
	size_t len = mib * MIB;
	uint64_t *w = mmap(NULL, len ? len : PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (w == MAP_FAILED) {
		printf("gwinit error: mmap %lu MiB: %s\n", (unsigned long)mib, strerror(errno));
		idle_forever();
	}
	/* Same generator and seed as tests/guests/dirtier.c fill=. */
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < len / 8; i += 4) {
		w[i] = xorshift64(&s);
		w[i + 1] = xorshift64(&s);
		w[i + 2] = xorshift64(&s);
		w[i + 3] = xorshift64(&s);
	}
	printf("gwinit filled %lu MiB rate=%lu\n", (unsigned long)mib, (unsigned long)rate);
	if (rate == 0 || len == 0)
		idle_forever();

	/* Dirty `rate` random pages per second of the filled region: one 8-byte word per page,
	 * in 1 ms ticks; a token bucket capped at 100 ms so a pause does not cause a burst. */
	uint64_t pages = len / PAGE, rng = 0x2545f4914f6cdd1dull, counter = 0;
	uint64_t last = now_ns();
	double credit = 0;
	const struct timespec tick = {0, 1000000};
	for (;;) {
		nanosleep(&tick, NULL);
		uint64_t t = now_ns();
		credit += (double)(t - last) * 1e-9 * (double)rate;
		last = t;
		if (credit > (double)rate / 10 + 1)
			credit = (double)rate / 10 + 1;
		for (; credit >= 1; credit -= 1) {
			uint64_t p = xorshift64(&rng) % pages;
			counter++;
			w[p * (PAGE / 8) + (counter & 511)] = counter;
		}
	}
}
