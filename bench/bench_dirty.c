/* bench_dirty.c -- cost of one dirty-bitmap sync (+ clear of everything) per GiB of guest RAM,
 * bitmap vs ring mode, idle and under a dirtier guest, next to references measured in the same
 * run (memcpy of a bitmap of the same size, one read of 1 GiB of guest RAM).
 * Run by hand: bench/bench_dirty [seconds per case] (default 2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_log.h"
#include "vmm.h"

#define GIB	     (1ull << 30)
#define PAGE	     4096ull
#define RING_ENTRIES 65536 /* the largest this host allows (1 MiB per vCPU) */
#define INTERVAL_MS  100   /* between syncs under load, like short pre-copy rounds */
#define IDLE_ITERS   2000

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
	const char *mode, *load;
	double sync_us, clear_us; /* mean per call, for 1 GiB */
	double pages_per_sync;
	double pages_per_s; /* distinct pages dirtied per second, as the syncs saw them */
	double syncs;
};

static struct gw_vmm *make_vm(unsigned ring, const char *cmdline)
{
	struct gw_vmm_config cfg = {
	    .name = ring ? "bench-ring" : "bench-bitmap",
	    .image_path = GW_GUEST_DIR "/dirtier.elf",
	    .mem_bytes = GIB,
	    .vcpus = 1,
	    .cmdline = cmdline,
	    .console_fd = -1,
	    .dirty_ring_entries = ring,
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
static void run_idle(unsigned ring, uint64_t *bm, struct result *res)
{
	struct gw_vmm *vmm = make_vm(ring, "rate=0");
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
	res->mode = gw_vmm_dirty_mode(vmm);
	res->load = "idle";
	res->sync_us = ts / IDLE_ITERS * 1e6;
	res->clear_us = tc / IDLE_ITERS * 1e6;
	res->syncs = IDLE_ITERS;
	gw_vmm_dirty_stop(vmm);
	gw_vmm_destroy(vmm);
}

/* The dirtier runs flat out with a pattern; sync + clear every INTERVAL_MS for `secs`. */
static void run_load(unsigned ring, const char *pattern, double secs, uint64_t *bm,
		     struct result *res)
{
	char cmdline[128];
	struct gw_vmm *vmm;
	double ts = 0, tc = 0, start, end, pages = 0;
	uint64_t size;
	uint8_t *ram;
	size_t words;
	int n = 0;

	snprintf(cmdline, sizeof(cmdline), "rate=0 pattern=%s report=0", pattern);
	vmm = make_vm(ring, cmdline);
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

int main(int argc, char **argv)
{
	static const char *const patterns[] = {"hot", "random"};
	double secs = argc > 1 ? atof(argv[1]) : 2.0, memcpy_us, read_ms;
	struct result res[8];
	unsigned rings[2] = {0, RING_ENTRIES};
	int nres = 0;
	uint64_t *bm = calloc(GIB / PAGE / 64, 8);

	if (!bm || secs <= 0)
		return 1;
	gw_log_set_level(GW_LOG_WARN);
	references(&memcpy_us, &read_ms);
	for (int m = 0; m < 2; m++) {
		run_idle(rings[m], bm, &res[nres++]);
		for (int p = 0; p < 2; p++)
			run_load(rings[m], patterns[p], secs, bm, &res[nres++]);
	}

	printf("dirty tracking, 1 GiB guest, 1 vCPU (dirtier rate=0), sync + clear every %d ms "
	       "under load\n\n",
	       INTERVAL_MS);
	printf("%-14s %-7s %12s %12s %14s %16s %8s\n", "mode", "load", "sync us/GiB",
	       "clear us/GiB", "pages/sync", "dirty pages/s", "syncs");
	for (int i = 0; i < nres; i++)
		printf("%-14s %-7s %12.1f %12.1f %14.0f %16.0f %8.0f\n", res[i].mode, res[i].load,
		       res[i].sync_us, res[i].clear_us, res[i].pages_per_sync, res[i].pages_per_s,
		       res[i].syncs);
	printf("\nreferences (same run): memcpy of a 1 GiB dirty bitmap (32 KiB): %.2f us; "
	       "reading 1 GiB of RAM once: %.1f ms\n",
	       memcpy_us, read_ms);
	free(bm);
	return 0;
}
