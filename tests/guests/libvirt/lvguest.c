/* lvguest.c -- /init of the libvirt test guest (deploy/libvirt/build-guest.sh): dirties
 * memory at a set rate and prints a hash chain on ttyS0, so a test can check that a live
 * migration continued the guest exactly.
 *
 * As PID 1 (in the guest): mounts /proc and /dev, reads gw.* from /proc/cmdline, writes to
 * /dev/ttyS0, paces rounds at gw.hz per second and powers the VM off after gw.rounds rounds.
 * Otherwise (on the host, the reference run): reads gw.* from its arguments, writes to
 * stdout, runs the rounds back to back (no pacing) and needs gw.rounds > 0.
 *
 *   gw.mem=MiB      memory the workload owns (default 64), filled from a PRNG seeded by seed
 *   gw.rate=PAGES   pages dirtied per second (default 2560, 10 MiB/s); rate/hz per round
 *   gw.hz=N         rounds per second (default 10)
 *   gw.seed=N       (default 1)
 *   gw.rounds=K     stop after K rounds: print the final line, power off (default 0: never)
 *
 * Output, one line each (\n, no \r):
 *   lvguest start mem=M rate=R hz=H seed=S rounds=K
 *   round=N hash=HEX              every round, N = 1, 2, ...
 *   lvguest final rounds=K hash=HEX   (a hash over all of the memory and the chain)
 * Round N reads every page it is about to dirty (and one more), hashes it into the chain and
 * rewrites it from the new hash: its hash depends on the parameters, N and the memory
 * contents only, never on time, so the reference run prints the same lines. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE	   4096u
#define PAGE_WORDS (PAGE / 8)
#define MIB	   (1024u * 1024u)

static int out_fd = 1;
static bool as_init;

struct params {
	uint64_t mem, rate, hz, seed, rounds;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	/* one write per line: lines do not interleave with the kernel's */
	for (int off = 0; off < n;) {
		ssize_t w = write(out_fd, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (int)w;
	}
}

static __attribute__((noreturn)) void finish(int status)
{
	if (!as_init)
		exit(status);
	sync();
	reboot(RB_POWER_OFF);
	for (;;) /* PID 1 must not exit (the kernel would panic) */
		pause();
}

static __attribute__((noreturn)) void die(const char *what, const char *arg)
{
	say("lvguest error: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	finish(1);
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static inline uint64_t splitmix64(uint64_t *st)
{
	uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

/* Hash one page into h (two lanes, so it is not one long dependency chain). */
static uint64_t hash_page(const uint64_t *w, uint64_t h)
{
	uint64_t a = h ^ 0x243f6a8885a308d3ull, b = rotl64(h, 29) ^ 0x13198a2e03707344ull;
	for (unsigned j = 0; j < PAGE_WORDS; j += 2) {
		a = rotl64((a ^ w[j]) * 0x100000001b3ull, 17);
		b = rotl64((b ^ w[j + 1]) * 0x9e3779b97f4a7c15ull, 31);
	}
	return mix64(a ^ rotl64(b, 32) ^ h);
}

static void fill_page(uint64_t *w, uint64_t h)
{
	for (unsigned j = 0; j < PAGE_WORDS; j++)
		w[j] = h ^ ((uint64_t)j * 0xd6e8feb86659fd93ull);
}

/* "gw.KEY=VALUE" tokens of s (space separated) into p; unknown keys are ignored. */
static void parse(const char *s, struct params *p)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
	    {"gw.mem=", offsetof(struct params, mem)},
	    {"gw.rate=", offsetof(struct params, rate)},
	    {"gw.hz=", offsetof(struct params, hz)},
	    {"gw.seed=", offsetof(struct params, seed)},
	    {"gw.rounds=", offsetof(struct params, rounds)},
	};
	while (*s) {
		while (*s == ' ' || *s == '\n' || *s == '\t')
			s++;
		const char *tok = s;
		while (*s && *s != ' ' && *s != '\n' && *s != '\t')
			s++;
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			size_t kl = strlen(keys[k].key);
			if ((size_t)(s - tok) <= kl || strncmp(tok, keys[k].key, kl) != 0)
				continue;
			char num[32], *end;
			size_t nl = (size_t)(s - tok) - kl;
			if (nl >= sizeof(num))
				die("number too long", keys[k].key);
			memcpy(num, tok + kl, nl);
			num[nl] = '\0';
			errno = 0;
			unsigned long long v = strtoull(num, &end, 10);
			if (errno || *end || num[0] == '-')
				die("malformed number", keys[k].key);
			*(uint64_t *)((char *)p + keys[k].off) = v;
		}
	}
}

static void init_setup(char *cmdline, size_t size)
{
	int fd;
	ssize_t n;

	mkdir("/proc", 0555);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	fd = open("/dev/ttyS0", O_WRONLY | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		struct termios t;
		if (tcgetattr(fd, &t) == 0) {
			t.c_oflag &= ~(tcflag_t)OPOST; /* "\n" stays "\n" */
			tcsetattr(fd, TCSANOW, &t);
		}
		out_fd = fd;
	}
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		die("cannot open /proc/cmdline", strerror(errno));
	n = read(fd, cmdline, size - 1);
	close(fd);
	cmdline[n > 0 ? n : 0] = '\0';
}

static void sleep_until(const struct timespec *t0, uint64_t ns)
{
	struct timespec t = *t0;
	t.tv_sec += (time_t)(ns / 1000000000u);
	t.tv_nsec += (long)(ns % 1000000000u);
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

int main(int argc, char **argv)
{
	struct params p = {.mem = 64, .rate = 2560, .hz = 10, .seed = 1, .rounds = 0};
	static char cmdline[4096];
	struct timespec t0;

	as_init = getpid() == 1;
	if (as_init) {
		init_setup(cmdline, sizeof(cmdline));
		parse(cmdline, &p);
	} else {
		for (int i = 1; i < argc; i++)
			parse(argv[i], &p);
		if (p.rounds == 0)
			die("the reference run needs gw.rounds=K (K > 0)", NULL);
	}
	if (p.mem == 0 || p.mem > (1u << 20))
		die("gw.mem out of range (1..1048576)", NULL);
	if (p.hz == 0 || p.hz > 1000)
		die("gw.hz out of range (1..1000)", NULL);

	uint64_t pages = p.mem * (MIB / PAGE);
	uint64_t per_round = p.rate / p.hz;
	if (per_round > pages)
		per_round = pages;
	uint64_t *mem = mmap(NULL, p.mem * MIB, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		die("cannot map gw.mem", strerror(errno));

	say("lvguest start mem=%" PRIu64 " rate=%" PRIu64 " hz=%" PRIu64 " seed=%" PRIu64
	    " rounds=%" PRIu64 "\n",
	    p.mem, p.rate, p.hz, p.seed, p.rounds);
	uint64_t st = mix64(p.seed ^ 0x6a09e667f3bcc908ull);
	for (uint64_t i = 0; i < pages * PAGE_WORDS; i++)
		mem[i] = splitmix64(&st);

	uint64_t h = mix64(p.seed + 0xbb67ae8584caa73bull);
	uint64_t pick_key = mix64(p.seed ^ 0x3c6ef372fe94f82bull);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t r = 1; p.rounds == 0 || r <= p.rounds; r++) {
		h = mix64(h ^ r);
		for (uint64_t i = 0; i <= per_round; i++) {
			uint64_t pg = mix64(pick_key ^ mix64(r * 0x100000001ull + i)) % pages;
			uint64_t *w = mem + pg * PAGE_WORDS;
			h = hash_page(w, h) + pg;
			if (i < per_round) /* the last one is only read */
				fill_page(w, h);
		}
		say("round=%" PRIu64 " hash=%016" PRIx64 "\n", r, h);
		if (as_init)
			sleep_until(&t0, r * (1000000000u / p.hz));
	}
	for (uint64_t pg = 0; pg < pages; pg++)
		h = hash_page(mem + pg * PAGE_WORDS, h);
	say("lvguest final rounds=%" PRIu64 " hash=%016" PRIx64 "\n", p.rounds, h);
	finish(0);
}
