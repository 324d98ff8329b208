/* hello.c -- smallest test guest: greets, reports each vCPU, then stops, exits or spins. */
#include "guest_rt.h"

static uint64_t greeted;		  /* vCPU 0 printed its two lines */
static uint64_t vcpus_up;		  /* vCPUs that printed "vcpu <i> up" */
static uint64_t spin_count[GR_MAX_VCPUS]; /* busy-loop counters (spin=1), one per vCPU */

/* vCPU 0: give the others time to print their line: until vcpus=<n> have (if given) or
 * 50 ms have passed. */
static void wait_for_others(uint64_t nvcpus)
{
	uint64_t start = rdtsc(), limit = ns_to_tsc((uint64_t)50000000);
	if (nvcpus) {
		while (atomic_load_u64(&vcpus_up) < nvcpus)
			cpu_relax();
		return;
	}
	while (rdtsc() - start < limit)
		cpu_relax();
}

static __attribute__((noreturn)) void spin_forever(uint64_t vcpu)
{
	volatile uint64_t *ctr = &spin_count[vcpu % GR_MAX_VCPUS];
	uint64_t second = ns_to_tsc((uint64_t)1000000000), next = rdtsc() + second, ticks = 0;
	for (;;) {
		*ctr = *ctr + 1;
		if (vcpu == 0) {
			uint64_t now = rdtsc();
			if ((int64_t)(now - next) >= 0) {
				gprintf("tick %lu\n", ++ticks);
				/* After a pause, carry on from now rather than bursting ticks. */
				next = now + second;
			}
		}
	}
}

void guest_main(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t khz)
{
	bool has_exit = cmdline_has(cmdline, "exit");
	uint64_t exit_status = cmdline_get_u64(cmdline, "exit", 0);
	bool spin = cmdline_get_u64(cmdline, "spin", 0) != 0;
	uint64_t nvcpus = cmdline_get_u64(cmdline, "vcpus", 0);

	if (vcpu == 0) {
		gprintf("hello from godwit guest: ram=%lu MiB cmdline=\"%s\"\n", ram / GR_MIB,
			cmdline);
		gprintf("vcpu %lu up\n", vcpu);
		atomic_store_u64(&greeted, 1);
	} else {
		while (!atomic_load_u64(&greeted))
			cpu_relax();
		gprintf("vcpu %lu up\n", vcpu);
	}
	atomic_add_u64(&vcpus_up, 1);

	if (vcpu == 0 && has_exit) {
		wait_for_others(nvcpus);
		vm_exit((uint8_t)exit_status);
	}
	if (spin)
		spin_forever(vcpu);
	if (vcpu == 0)
		wait_for_others(nvcpus);
	vcpu_stop();
}
