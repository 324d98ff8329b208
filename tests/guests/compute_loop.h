/* compute_loop.h -- what the compute guest (tests/guests/compute.c) shares with the benchmarks
 * that drive it: the CPU-bound loop, compiled into the guest and into bench/bench_process.c
 * (run natively there, so that both time the same source), and the mailbox of its `dirty`
 * mode (bench/bench_dirty.c). Plain C, no libc: included by freestanding and hosted code. */
#ifndef GW_COMPUTE_LOOP_H
#define GW_COMPUTE_LOOP_H

#include <stdint.h>

/* A chain of dependent multiply / xor-shift / add steps (a splitmix64-style mixer): its speed
 * is the latency of that chain, with no memory access, so it depends neither on how the
 * compiler schedules it nor on caches, and any time the guest loses shows. About 5 cycles an
 * iteration. noinline keeps one copy with one code layout on each side. */
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
