/* bench_dirty.c -- cost of one dirty-bitmap sync (+ clear of everything) per GiB of guest RAM,
 * per backend: KVM bitmap vs ring mode, and the process backend (userfaultfd write-protect +
 * PAGEMAP_SCAN), idle and under a dirtier guest; then, on a guest that has touched all of its
 * RAM (tests/guests/compute.elf mode=dirty), get + clear idle and with ~10 % of the pages
 * dirty, and the cost of a first write to a protected page next to the same writes with
 * tracking off, timed in the guest. References measured in the same run: memcpy of a bitmap
 * of the same size, one read of 1 GiB of RAM, the guest's writes with tracking off.
 * Run by hand, as root: bench/bench_dirty [-b kvm|process|all] [-r ROUNDS] [seconds per case]
 * (defaults: all usable backends, 5 rounds, 2 s). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compute_loop.h"
#include "gw_log.h"
#include "vmm.h"

#define GIB	     (1ull << 30)
#define PAGE	     4096ull
#define RING_ENTRIES 65536 /* the largest this host allows (1 MiB per vCPU) */
#define INTERVAL_MS  100   /* between syncs under load, like short pre-copy rounds */
#define IDLE_ITERS   2000
#define MAX_ROUNDS   50
#define TOUCH_STEP   10 /* mode=dirty: every 10th page, ~10 % of guest RAM */
#define ROUND_WAIT_S 120

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

struct result {
	const char *backend, *mode, *load;
	double sync_us, clear_us; /* mean per call, for 1 GiB */
	double pages_per_sync;
	double pages_per_s; /* distinct pages dirtied per second, as the syncs saw them */
	double syncs;
};

static struct gw_vmm *make_vm(const char *backend, unsigned ring, const char *image,
			      const char *cmdline)
{
	struct gw_vmm_config cfg = {
	    .name = ring ? "bench-ring" : "bench-bitmap",
	    .image_path = image,
	    .mem_bytes = GIB,
	    .vcpus = 1,
	    .cmdline = cmdline,
	    .console_fd = -1,
	    .dirty_ring_entries = ring,
	    .backend = backend,
	};
	struct gw_vmm *vmm = NULL;
	char err[256] = "";
	int r = gw_vmm_create(&cfg, &vmm, err, sizeof(err));

	if (r) {
		fprintf(stderr, "bench_dirty: %s: %s\n", cfg.name, err);
		return NULL;
	}
	return vmm;
}

/* Back-to-back sync + clear on a VM that does not run. */
static void run_idle(const char *backend, unsigned ring, uint64_t *bm, struct result *res)
{
	struct gw_vmm *vmm = make_vm(backend, ring, GW_GUEST_DIR "/dirtier.elf", "rate=0");
	size_t words;
	double ts = 0, tc = 0;

	if (!vmm)
		exit(1);
	words = gw_vmm_dirty_words(vmm);
	if (gw_vmm_dirty_start(vmm)) {
		fprintf(stderr, "bench_dirty: dirty_start failed\n");
		exit(1);
	}
	for (int i = 0; i < IDLE_ITERS; i++) {
		double t0 = now_s(), t1, t2;

		memset(bm, 0, words * 8);
		if (gw_vmm_dirty_sync(vmm, bm) < 0)
			exit(1);
		t1 = now_s();
		gw_vmm_dirty_clear(vmm, 0, words * 64, bm);
		t2 = now_s();
		ts += t1 - t0;
		tc += t2 - t1;
	}
	res->backend = backend;
	res->mode = gw_vmm_dirty_mode(vmm);
	res->load = "idle";
	res->sync_us = ts / IDLE_ITERS * 1e6;
	res->clear_us = tc / IDLE_ITERS * 1e6;
	res->syncs = IDLE_ITERS;
	gw_vmm_dirty_stop(vmm);
	gw_vmm_destroy(vmm);
}

/* The dirtier runs flat out with a pattern; sync + clear every INTERVAL_MS for `secs`. */
static void run_load(const char *backend, unsigned ring, const char *pattern, double secs,
		     uint64_t *bm, struct result *res)
{
	char cmdline[128];
	struct gw_vmm *vmm;
	double ts = 0, tc = 0, start, end, pages = 0;
	uint64_t size;
	uint8_t *ram;
	size_t words;
	int n = 0;

	snprintf(cmdline, sizeof(cmdline), "rate=0 pattern=%s report=0", pattern);
	vmm = make_vm(backend, ring, GW_GUEST_DIR "/dirtier.elf", cmdline);
	if (!vmm)
		exit(1);
	words = gw_vmm_dirty_words(vmm);
	ram = gw_vmm_ram(vmm, &size);
	memset(ram + 16 * (1 << 20), 0, size - 32 * (1 << 20)); /* fault the memfd in first */
	if (gw_vmm_dirty_start(vmm) || gw_vmm_start(vmm)) {
		fprintf(stderr, "bench_dirty: start failed\n");
		exit(1);
	}
	sleep_ms(300); /* past the guest's start-up */
	memset(bm, 0, words * 8);
	gw_vmm_dirty_sync(vmm, bm);
	gw_vmm_dirty_clear(vmm, 0, words * 64, bm);
	start = now_s();
	end = start + secs;
	while (now_s() < end) {
		double t0, t1, t2;
		long got;

		sleep_ms(INTERVAL_MS);
		memset(bm, 0, words * 8);
		t0 = now_s();
		got = gw_vmm_dirty_sync(vmm, bm);
		t1 = now_s();
		if (got < 0)
			exit(1);
		gw_vmm_dirty_clear(vmm, 0, words * 64, bm);
		t2 = now_s();
		ts += t1 - t0;
		tc += t2 - t1;
		pages += (double)got;
		n++;
	}
	res->backend = backend;
	res->mode = gw_vmm_dirty_mode(vmm);
	res->load = pattern;
	res->sync_us = ts / n * 1e6;
	res->clear_us = tc / n * 1e6;
	res->pages_per_sync = pages / n;
	res->pages_per_s = pages / (now_s() - start);
	res->syncs = n;
	gw_vmm_stop(vmm, "bench over");
	gw_vmm_dirty_stop(vmm);
	gw_vmm_destroy(vmm);
}

/* References: memcpy of a 1 GiB bitmap (32 KiB), one read of 1 GiB of (faulted-in) RAM. */
static void references(double *memcpy_us, double *read_ms)
{
	size_t words = GIB / PAGE / 64;
	uint64_t *a = calloc(words, 8), *b = calloc(words, 8);
	uint64_t *ram = malloc(GIB);
	volatile uint64_t sink;
	uint64_t sum = 0;
	double t0;
	int iters = 20000;

	if (!a || !b || !ram)
		exit(1);
	memset(a, 0x5a, words * 8);
	t0 = now_s();
	for (int i = 0; i < iters; i++) {
		memcpy(b, a, words * 8);
		__asm__ volatile("" : : "r"(b) : "memory");
	}
	*memcpy_us = (now_s() - t0) / iters * 1e6;
	memset(ram, 1, GIB);
	t0 = now_s();
	for (size_t i = 0; i < GIB / 8; i++)
		sum += ram[i];
	*read_ms = (now_s() - t0) * 1e3;
	sink = sum;
	(void)sink;
	free(a);
	free(b);
	free(ram);
}

/* ---- compute.elf mode=dirty: the guest writes on request (compute_loop.h's mailbox) ---- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median, min, max of v[0..n) (sorts v). */
static void stat3(double *v, int n, double out[3])
{
	out[0] = out[1] = out[2] = 0;
	if (n <= 0)
		return;
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	out[0] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	out[1] = v[0];
	out[2] = v[n - 1];
}

struct touch_res {
	const char *backend, *mode;
	uint64_t region_pages, round_pages;
	int n;
	/* per round: get (sync) and clear of the whole GiB with nothing written since the last
	 * clear, and after the guest wrote every TOUCH_STEP-th page; pages the sync found */
	double idle_sync_us[MAX_ROUNDS], idle_clear_us[MAX_ROUNDS], idle_pages[MAX_ROUNDS];
	double d10_sync_us[MAX_ROUNDS], d10_clear_us[MAX_ROUNDS], d10_pages[MAX_ROUNDS];
	/* per round: ns per page write in the guest, tracking off (pages present and writable)
	 * and first write after a clear (protected) */
	double off_ns[MAX_ROUNDS], on_ns[MAX_ROUNDS];
};

/* One round of guest writes (every step-th page); false on timeout. */
static bool touch_round(struct compute_mbox *mb, uint64_t step, uint64_t *round)
{
	double end = now_s() + ROUND_WAIT_S;

	mb->step = step;
	__atomic_store_n(&mb->go, ++*round, __ATOMIC_RELEASE);
	while (__atomic_load_n(&mb->done, __ATOMIC_ACQUIRE) != *round) {
		if (now_s() > end) {
			fprintf(stderr, "bench_dirty: guest did not finish round %llu in %d s\n",
				(unsigned long long)*round, ROUND_WAIT_S);
			return false;
		}
		sleep_ms(1);
	}
	return true;
}

static void timed_sync_clear(struct gw_vmm *vmm, uint64_t *bm, size_t words, double *sync_us,
			     double *clear_us, double *pages)
{
	double t0, t1, t2;
	long got;

	memset(bm, 0, words * 8);
	t0 = now_s();
	got = gw_vmm_dirty_sync(vmm, bm);
	t1 = now_s();
	if (got < 0 || gw_vmm_dirty_clear(vmm, 0, words * 64, bm)) {
		fprintf(stderr, "bench_dirty: sync/clear failed\n");
		exit(1);
	}
	t2 = now_s();
	*sync_us = (t1 - t0) * 1e6;
	*clear_us = (t2 - t1) * 1e6;
	*pages = (double)got;
}

/* The guest first touches all of its RAM (so that every page is mapped where the dirty log
 * looks: the sandbox's page tables, KVM's), then per round: the writes with tracking off,
 * dirty_start + a full sync + clear (everything protected), a sync + clear with nothing
 * written (idle), the same writes again (each a first write to a protected page), a sync +
 * clear of those, dirty_stop and a throw-away round that takes the leftover protection off. */
static void run_touch(const char *backend, int rounds, uint64_t *bm, struct touch_res *res)
{
	struct gw_vmm *vmm = make_vm(backend, 0, GW_GUEST_DIR "/compute.elf", "mode=dirty");
	struct compute_mbox *mb;
	uint64_t size, round = 0;
	double end, junk[3];
	size_t words;

	memset(res, 0, sizeof(*res));
	res->backend = backend;
	if (!vmm)
		exit(1);
	words = gw_vmm_dirty_words(vmm);
	mb = (struct compute_mbox *)(gw_vmm_ram(vmm, &size) + COMPUTE_MBOX_GPA);
	res->mode = gw_vmm_dirty_mode(vmm);
	if (gw_vmm_start(vmm)) {
		fprintf(stderr, "bench_dirty: %s: start failed\n", backend);
		exit(1);
	}
	end = now_s() + 10;
	while (!mb->region_pages && now_s() < end)
		sleep_ms(1);
	res->region_pages = mb->region_pages;
	if (!res->region_pages || !touch_round(mb, 1, &round) || !touch_round(mb, 1, &round))
		goto out;
	for (int r = 0; r < rounds; r++) {
		if (!touch_round(mb, TOUCH_STEP, &round))
			goto out;
		res->off_ns[r] = (double)mb->ns / (double)mb->pages;
		res->round_pages = mb->pages;
		if (gw_vmm_dirty_start(vmm)) {
			fprintf(stderr, "bench_dirty: %s: dirty_start failed\n", backend);
			goto out;
		}
		timed_sync_clear(vmm, bm, words, &junk[0], &junk[1], &junk[2]);
		sleep_ms(20);
		timed_sync_clear(vmm, bm, words, &res->idle_sync_us[r], &res->idle_clear_us[r],
				 &res->idle_pages[r]);
		if (!touch_round(mb, TOUCH_STEP, &round))
			goto out;
		res->on_ns[r] = (double)mb->ns / (double)mb->pages;
		timed_sync_clear(vmm, bm, words, &res->d10_sync_us[r], &res->d10_clear_us[r],
				 &res->d10_pages[r]);
		gw_vmm_dirty_stop(vmm);
		if (!touch_round(mb, TOUCH_STEP, &round))
			goto out;
		res->n = r + 1;
	}
out:
	if (res->n < rounds)
		fprintf(stderr, "bench_dirty: %s: %d of %d rounds\n", backend, res->n, rounds);
	gw_vmm_stop(vmm, "bench over");
	gw_vmm_destroy(vmm);
}

static void print_touch(struct touch_res *t)
{
	double a[3], b[3], c[3];

	if (!t->n)
		return;
	printf("%-8s %-14s region %llu pages, %llu written per round (every %dth), %d rounds\n",
	       t->backend, t->mode, (unsigned long long)t->region_pages,
	       (unsigned long long)t->round_pages, TOUCH_STEP, t->n);
	stat3(t->idle_sync_us, t->n, a);
	stat3(t->idle_clear_us, t->n, b);
	stat3(t->idle_pages, t->n, c);
	printf("  idle     get %9.1f us/GiB [%.1f .. %.1f]  clear %9.1f us/GiB [%.1f .. %.1f]  "
	       "pages %.0f\n",
	       a[0], a[1], a[2], b[0], b[1], b[2], c[0]);
	stat3(t->d10_sync_us, t->n, a);
	stat3(t->d10_clear_us, t->n, b);
	stat3(t->d10_pages, t->n, c);
	printf("  ~10%%     get %9.1f us/GiB [%.1f .. %.1f]  clear %9.1f us/GiB [%.1f .. %.1f]  "
	       "pages %.0f\n",
	       a[0], a[1], a[2], b[0], b[1], b[2], c[0]);
	stat3(t->off_ns, t->n, a);
	stat3(t->on_ns, t->n, b);
	printf("  write    tracking off %7.0f ns/page [%.0f .. %.0f]  first write to a protected "
	       "page %7.0f ns [%.0f .. %.0f]  (+%.0f ns)\n",
	       a[0], a[1], a[2], b[0], b[1], b[2], b[0] - a[0]);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_dirty [-b kvm|process|all] [-r ROUNDS] [seconds per case]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const char *const patterns[] = {"hot", "random"};
	static struct result res[16];
	static struct touch_res touch[2];
	const char *want = "all", *backends[2], *chosen;
	double secs = 2.0, memcpy_us, read_ms;
	unsigned rings[2] = {0, RING_ENTRIES};
	int nres = 0, nb = 0, rounds = 5, o;
	uint64_t *bm = calloc(GIB / PAGE / 64, 8);
	char why[256];

	while ((o = getopt(argc, argv, "b:r:h")) != -1) {
		switch (o) {
		case 'b':
			want = optarg;
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind < argc)
		secs = atof(argv[optind]);
	if (!bm || secs <= 0 || rounds < 1 || rounds > MAX_ROUNDS ||
	    (strcmp(want, "all") && strcmp(want, "kvm") && strcmp(want, "process")))
		usage();
	if (geteuid() != 0) {
		fprintf(stderr,
			"bench_dirty: run as root (/dev/kvm, the process backend's sandbox)\n");
		return 1;
	}
	gw_log_set_level(GW_LOG_WARN);
	for (int i = 0; i < 2; i++) {
		const char *b = i ? "process" : "kvm";

		if (strcmp(want, "all") && strcmp(want, b))
			continue;
		if (gw_vmm_probe_backend(b, &chosen, why, sizeof(why)) == 0)
			backends[nb++] = b;
		else
			fprintf(stderr, "bench_dirty: %s backend not usable here: %s\n", b, why);
	}
	if (!nb)
		return 1;
	references(&memcpy_us, &read_ms);
	for (int b = 0; b < nb; b++) {
		bool kvm = !strcmp(backends[b], "kvm");

		for (int m = 0; m < (kvm ? 2 : 1); m++) {
			if (kvm) /* a VM that never ran: only KVM's bitmap work */
				run_idle(backends[b], rings[m], bm, &res[nres++]);
			for (int p = 0; p < 2; p++)
				run_load(backends[b], rings[m], patterns[p], secs, bm,
					 &res[nres++]);
		}
	}
	for (int b = 0; b < nb; b++)
		run_touch(backends[b], rounds, bm, &touch[b]);

	printf("dirty tracking, 1 GiB guest, 1 vCPU (dirtier rate=0), sync + clear every %d ms "
	       "under load (means)\n\n",
	       INTERVAL_MS);
	printf("%-8s %-14s %-7s %12s %12s %14s %16s %8s\n", "backend", "mode", "load",
	       "sync us/GiB", "clear us/GiB", "pages/sync", "dirty pages/s", "syncs");
	for (int i = 0; i < nres; i++)
		printf("%-8s %-14s %-7s %12.1f %12.1f %14.0f %16.0f %8.0f\n", res[i].backend,
		       res[i].mode, res[i].load, res[i].sync_us, res[i].clear_us,
		       res[i].pages_per_sync, res[i].pages_per_s, res[i].syncs);
	printf("\nguest with all of its RAM touched (compute.elf mode=dirty), KVM in bitmap mode; "
	       "medians [min .. max] over the rounds:\n");
	for (int b = 0; b < nb; b++)
		print_touch(&touch[b]);
	printf("\nreferences (same run): memcpy of a 1 GiB dirty bitmap (32 KiB): %.2f us; "
	       "reading 1 GiB of RAM once: %.1f ms; the guest's writes with tracking off (above)\n",
	       memcpy_us, read_ms);
	free(bm);
	return 0;
}
