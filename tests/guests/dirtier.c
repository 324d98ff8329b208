/* dirtier.c -- test guest that dirties memory pages at a set rate and access pattern. */
#include "guest_rt.h"

enum pattern { PAT_SEQ, PAT_RANDOM, PAT_HOT };

static const char *const pattern_names[] = {"seq", "random", "hot"};
static uint64_t finished; /* vCPUs whose run time is over */
static uint64_t fill_done; /* set by vCPU 0 once its fill= pass is over */

struct dirtier {
	uint64_t vcpu;
	uint64_t nvcpus;
	uint64_t rate; /* pages per second per vCPU, 0 = unthrottled */
	enum pattern pat;
	uint64_t pages;	  /* region size per vCPU */
	uint64_t seconds; /* 0 = forever */
	uint64_t report;  /* seconds between progress lines, 0 = none */
	uint64_t fill;	  /* MiB vCPU 0 fills with pseudo-random data first, 0 = none */
	bool idle;	  /* idle=1: after the fill, write nothing (slow pause spin) */
	uint8_t *base;	  /* this vCPU's region */
};

/* Report a cmdline/layout error and stop the VM with status. Errors every vCPU sees alike
 * (global) are reported by vCPU 0 alone; the other vCPUs just stop. */
static __attribute__((noreturn)) void fail(uint64_t vcpu, bool global, uint8_t status,
					   const char *what, uint64_t v)
{
	if (global && vcpu != 0)
		vcpu_stop();
	gprintf("dirtier error: %s (%lu)\n", what, v);
	vm_exit(status);
}

static void parse(struct dirtier *d, uint64_t ram, uint64_t vcpu, const char *cmdline)
{
	bool ok_rate, ok_mem, ok_sec, ok_rep, ok_vc, ok_fill, ok_idle;
	char pat[16];

	d->vcpu = vcpu;
	d->nvcpus = cmdline_get_u64_ok(cmdline, "vcpus", 1, &ok_vc);
	d->rate = cmdline_get_u64_ok(cmdline, "rate", 1000, &ok_rate);
	uint64_t mem = cmdline_get_u64_ok(cmdline, "mem", 0, &ok_mem);
	d->seconds = cmdline_get_u64_ok(cmdline, "seconds", 0, &ok_sec);
	d->report = cmdline_get_u64_ok(cmdline, "report", 1, &ok_rep);
	d->fill = cmdline_get_u64_ok(cmdline, "fill", 0, &ok_fill);
	d->idle = cmdline_get_u64_ok(cmdline, "idle", 0, &ok_idle) != 0;
	if (!ok_vc || !ok_rate || !ok_mem || !ok_sec || !ok_rep || !ok_fill || !ok_idle)
		fail(vcpu, true, GR_EXIT_BADARG, "malformed number in cmdline", 0);
	if (d->nvcpus == 0 || d->nvcpus > GR_MAX_VCPUS)
		fail(vcpu, true, GR_EXIT_BADARG, "vcpus= out of range", d->nvcpus);
	if (vcpu >= d->nvcpus)
		fail(vcpu, false, GR_EXIT_BADARG,
		     "vcpu index >= vcpus=, pass vcpus=<n> matching the VM", vcpu);

	d->pat = PAT_SEQ;
	if (cmdline_get_str(cmdline, "pattern", pat, sizeof(pat))) {
		unsigned i;
		for (i = 0; i < 3; i++)
			if (strcmp(pat, pattern_names[i]) == 0)
				break;
		if (i == 3)
			fail(vcpu, true, GR_EXIT_BADARG, "pattern= must be seq, random or hot", 0);
		d->pat = (enum pattern)i;
	}

	/* Regions start 1 MiB past the image and end below the lowest vCPU stack. */
	uint64_t start = align_up((uint64_t)(uintptr_t)_image_end, GR_PAGE) + GR_MIB;
	uint64_t stacks = d->nvcpus * GR_STACK_STRIDE;
	if (ram < stacks || ram - stacks <= start)
		fail(vcpu, true, GR_EXIT_NOMEM, "RAM too small, MiB", ram / GR_MIB);
	uint64_t avail = ram - stacks - start;
	if (d->fill > avail / GR_MIB)
		fail(vcpu, true, GR_EXIT_NOMEM, "fill= too large for RAM, max MiB", avail / GR_MIB);
	if (mem) {
		if (mem > avail / GR_MIB / d->nvcpus)
			fail(vcpu, true, GR_EXIT_NOMEM, "mem= too large for RAM, max MiB per vCPU",
			     avail / GR_MIB / d->nvcpus);
		d->pages = mem * (GR_MIB / GR_PAGE);
	} else {
		d->pages = avail / d->nvcpus / GR_PAGE;
	}
	if (d->pages == 0)
		fail(vcpu, true, GR_EXIT_NOMEM, "RAM too small, MiB", ram / GR_MIB);
	d->base = (uint8_t *)(uintptr_t)(start + vcpu * d->pages * GR_PAGE);
}

static inline uint64_t next_page(const struct dirtier *d, uint64_t *pos, uint64_t *rng)
{
	uint64_t r;
	switch (d->pat) {
	case PAT_SEQ:
		if (++*pos >= d->pages)
			*pos = 0;
		return *pos;
	case PAT_RANDOM:
		return xorshift64(rng) % d->pages;
	case PAT_HOT:
	default: {
		uint64_t hot = d->pages / 10 ? d->pages / 10 : 1;
		r = xorshift64(rng);
		if (r % 10 < 9 || hot >= d->pages)
			return (r >> 8) % hot;
		return hot + (r >> 8) % (d->pages - hot);
	}
	}
}

/* fill=: vCPU 0 writes `mib` MiB of xorshift64 output from its region start (every word
 * non-zero, so no page of it is a zero page); the other vCPUs wait until it is done. */
static void fill_region(const struct dirtier *d)
{
	if (d->vcpu == 0) {
		uint64_t s = 0x9e3779b97f4a7c15ull;
		uint64_t *w = (uint64_t *)d->base;
		uint64_t n = d->fill * (GR_MIB / 8);
		for (uint64_t i = 0; i < n; i += 4) {
			w[i] = xorshift64(&s);
			w[i + 1] = xorshift64(&s);
			w[i + 2] = xorshift64(&s);
			w[i + 3] = xorshift64(&s);
		}
		gprintf("dirtier filled %lu MiB\n", d->fill);
		atomic_store_u64(&fill_done, 1);
	} else {
		while (!atomic_load_u64(&fill_done))
			cpu_relax();
	}
}

void guest_main(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t khz)
{
	struct dirtier d;
	parse(&d, ram, vcpu, cmdline);
	if (vcpu == 0)
		gprintf("dirtier start vcpus=%lu pattern=%s rate=%lu pages=%lu seconds=%lu\n",
			d.nvcpus, pattern_names[d.pat], d.rate, d.pages, d.seconds);
	if (d.fill)
		fill_region(&d);

	uint64_t second = ns_to_tsc((uint64_t)1000000000);
	/* Token bucket in TSC ticks: each page costs `cost`; at most 100 ms of credit is kept,
	 * so after a pause the guest resumes at its rate instead of bursting to catch up. */
	uint64_t cost = d.rate ? second / d.rate : 0;
	uint64_t batch = d.rate ? d.rate / 1000 : 64;
	if (batch < 1)
		batch = 1;
	if (batch > 64)
		batch = 64;
	uint64_t cap = second / 10 > cost * batch ? second / 10 : cost * batch;

	uint64_t rng = 0x2545f4914f6cdd1dull ^ (vcpu + 1) * 0x9e3779b97f4a7c15ull;
	uint64_t pos = d.pages - 1, counter = 0, dirtied = 0;
	uint64_t t0 = rdtsc(), last = t0, credit = cost * batch;
	uint64_t end = t0 + d.seconds * second;
	uint64_t next_report = t0 + d.report * second;

	for (;;) {
		uint64_t now = rdtsc();
		if (d.seconds && (int64_t)(now - end) >= 0)
			break;
		if (d.report && (int64_t)(now - next_report) >= 0) {
			gprintf("dirtier vcpu=%lu t=%lu dirtied=%lu\n", vcpu, (now - t0) / second,
				dirtied);
			next_report += d.report * second;
			if ((int64_t)(now - next_report) >= 0)
				next_report = now + d.report * second;
		}
		if (d.idle) {
			outb(0x503, 20); /* sleep 20 ms: an idle guest leaves the CPU to the host */
			continue;
		}
		if (cost) {
			credit += now - last;
			last = now;
			if (credit > cap)
				credit = cap;
			if (credit < cost * batch) {
				cpu_relax();
				continue;
			}
			credit -= cost * batch;
		}
		for (uint64_t k = 0; k < batch; k++) {
			uint64_t p = next_page(&d, &pos, &rng);
			counter++;
			volatile uint64_t *w =
			    (volatile uint64_t *)(d.base + p * GR_PAGE + (counter & 511) * 8);
			*w = counter;
		}
		dirtied += batch;
	}

	if (d.report)
		gprintf("dirtier vcpu=%lu t=%lu dirtied=%lu\n", vcpu, d.seconds, dirtied);
	atomic_add_u64(&finished, 1);
	if (vcpu != 0)
		vcpu_stop();
	/* Wait (at most 1 s) for the other vCPUs' final lines, then stop the VM. */
	uint64_t wait_end = rdtsc() + second;
	while (atomic_load_u64(&finished) < d.nvcpus && (int64_t)(rdtsc() - wait_end) < 0)
		cpu_relax();
	gprintf("dirtier done\n");
	vm_exit(GR_EXIT_OK);
}
