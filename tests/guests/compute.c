/* compute.c -- benchmark guest: a CPU-bound loop (the same source bench/bench_process.c runs
 * natively, compute_loop.h), a port-I/O exit loop, and page writes driven through a mailbox
 * (bench/bench_dirty.c), each timed with rdtsc in the guest. */
#include "compute_loop.h"
#include "guest_rt.h"

/* mode=compute: compute_slices(iters, seed, slices) between two rdtsc. */
static void run_compute(const char *cmdline)
{
	static uint64_t cycles[COMPUTE_MAX_SLICES];
	uint64_t iters = cmdline_get_u64(cmdline, "iters", 100000000);
	uint64_t seed = cmdline_get_u64(cmdline, "seed", 1);
	uint64_t n = cmdline_get_u64(cmdline, "slices", 1);
	uint64_t t0, t1, res, med;

	if (n < 1 || n > COMPUTE_MAX_SLICES || iters < n) {
		gprintf("compute error: slices=%lu must be 1..%d and at most iters\n", n,
			COMPUTE_MAX_SLICES);
		vm_exit(GR_EXIT_BADARG);
	}
	gprintf("compute mode=compute iters=%lu seed=%lu slices=%lu\n", iters, seed, n);
	t0 = rdtsc();
	res = compute_slices(iters, seed, (unsigned)n, cycles);
	t1 = rdtsc();
	med = compute_median(cycles, (unsigned)n);
	gprintf("compute cycles=%lu ns=%lu slice_med=%lu slice_min=%lu result=%016lx\n", t1 - t0,
		tsc_to_ns(t1 - t0), med, cycles[0], res);
}

/* mode=pio: n reads of the console LSR (port 0x3fd, one exit each) between two rdtsc. */
static void run_pio(const char *cmdline)
{
	uint64_t n = cmdline_get_u64(cmdline, "n", 100000);
	uint64_t t0, t1;
	unsigned bad = 0;

	gprintf("compute mode=pio n=%lu\n", n);
	t0 = rdtsc();
	for (uint64_t i = 0; i < n; i++)
		bad += inb(GR_PORT_CONSOLE_LSR) != 0x60;
	t1 = rdtsc();
	gprintf("compute pio n=%lu cycles=%lu ns=%lu bad=%u\n", n, t1 - t0, tsc_to_ns(t1 - t0),
		bad);
}

/* mode=dirty: rounds of page writes on request (the mailbox protocol of compute_loop.h),
 * forever. The region: from the first MiB boundary after the image to 1 MiB below the top
 * of RAM (the stacks). */
static __attribute__((noreturn)) void run_dirty(uint64_t ram)
{
	struct compute_mbox *mb = (struct compute_mbox *)(uintptr_t)COMPUTE_MBOX_GPA;
	uint64_t base = align_up((uint64_t)(uintptr_t)_image_end, GR_MIB);
	uint64_t npages, done = mb->done;

	if (ram < base + 2 * GR_MIB) {
		gprintf("compute error: RAM too small for mode=dirty\n");
		vm_exit(GR_EXIT_NOMEM);
	}
	npages = (ram - GR_MIB - base) / GR_PAGE;
	mb->region_pages = npages;
	gprintf("compute mode=dirty region=%lu pages ready\n", npages);
	for (;;) {
		uint64_t go = mb->go, step = mb->step, n = 0, t0, t1;

		if (go == done) {
			outb(0x503, 1); /* sleep 1 ms (port 0x503) */
			continue;
		}
		if (!step)
			step = 1;
		t0 = rdtsc();
		for (uint64_t p = 0; p < npages; p += step, n++)
			*(volatile uint64_t *)(uintptr_t)(base + p * GR_PAGE) = go;
		t1 = rdtsc();
		mb->pages = n;
		mb->cycles = t1 - t0;
		mb->ns = tsc_to_ns(t1 - t0);
		__atomic_store_n(&mb->done, go, __ATOMIC_RELEASE);
		done = go;
	}
}

void guest_main(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t khz)
{
	char mode[16] = "compute";

	if (vcpu != 0)
		vcpu_stop();
	cmdline_get_str(cmdline, "mode", mode, sizeof(mode));
	if (!strcmp(mode, "compute"))
		run_compute(cmdline);
	else if (!strcmp(mode, "pio"))
		run_pio(cmdline);
	else if (!strcmp(mode, "dirty"))
		run_dirty(ram);
	else {
		gprintf("compute error: unknown mode '%s' (compute, pio or dirty)\n", mode);
		vm_exit(GR_EXIT_BADARG);
	}
	vm_exit(GR_EXIT_OK);
}
