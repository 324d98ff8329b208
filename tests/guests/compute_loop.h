/* compute_loop.h -- what the compute guest (tests/guests/compute.c) shares with the benchmarks
 * that drive it: the CPU-bound loop, compiled into the guest and into bench/bench_process.c
 * (run natively there, so that both time the same source), and the mailbox of its `dirty`
 * mode (bench/bench_dirty.c). Plain C, no libc: included by freestanding and hosted code. */
#ifndef GW_COMPUTE_LOOP_H
#define GW_COMPUTE_LOOP_H

#include <stdint.h>

/* A chain of dependent multiply / xor-shift / add steps (a splitmix64-style mixer): its speed
 * is the latency of that chain, with no memory access, so it depends neither on how the
 * compiler schedules it nor on caches, and any time the guest loses shows. About 6 core
 * cycles an iteration. noinline keeps one copy with one code layout on each side. */
static __attribute__((noinline, unused)) uint64_t compute_loop(uint64_t iters, uint64_t seed)
{
	uint64_t x = seed, acc = 0;

	for (uint64_t i = 0; i < iters; i++) {
		x ^= x >> 31;
		x *= 0x9e3779b97f4a7c15ull;
		x += i;
		acc ^= x;
	}
	return x ^ acc;
}

/* The loop cut into n slices of iters / n iterations, each seeded with the result of the
 * one before (so the final result checks them all) and timed with rdtsc into cycles[]: the
 * median slice is the steady speed, which preemption by other processes on a busy host
 * leaves alone (it hits a few slices), while any cost that comes with running as a guest
 * (timer exits, a tracer's signals) spreads over all of them. Returns the result. */
#define COMPUTE_MAX_SLICES 256

static inline uint64_t compute_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

static __attribute__((unused)) uint64_t compute_slices(uint64_t iters, uint64_t seed, unsigned n,
						       uint64_t *cycles)
{
	uint64_t x = seed;

	for (unsigned k = 0; k < n; k++) {
		uint64_t t0 = compute_rdtsc();

		x = compute_loop(iters / n, x);
		cycles[k] = compute_rdtsc() - t0;
	}
	return x;
}

/* Sorts v[0..n) (insertion sort: n <= COMPUTE_MAX_SLICES) and returns its median. */
static __attribute__((unused)) uint64_t compute_median(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n ? v[n / 2] : 0;
}

/* Mode `dirty`: a mailbox at this guest-physical address (between the command line page and
 * the image, unused by the VMM's layout), written by the bench through its own mapping of
 * guest RAM. The guest waits (sleeping 1 ms at a time) until go != done; then it writes one
 * word into every step-th page of its region, times that with rdtsc, stores cycles, ns and
 * pages, and sets done = go. The bench's writes do not go through the guest's mapping, so
 * they are never part of the guest's dirty log; the guest's own write to the mailbox is (one
 * page). */
#define COMPUTE_MBOX_GPA 0x90000ull

struct compute_mbox {
	volatile uint64_t go;		/* bench: round number, > done to start a round */
	volatile uint64_t step;		/* bench: write every step-th page of the region (>= 1) */
	volatile uint64_t done;		/* guest: last round finished */
	volatile uint64_t pages;	/* guest: pages written in that round */
	volatile uint64_t cycles;	/* guest: TSC cycles the round's writes took */
	volatile uint64_t ns;		/* guest: the same in ns (the guest's TSC rate) */
	volatile uint64_t region_pages; /* guest: pages in its region (set before round 1) */
};

#endif
