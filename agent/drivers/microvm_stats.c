/* microvm_stats.c -- the microvm driver's stats op (the balancer's load model): CPU time of
 * the VM's godwit-vmm process (its vCPU threads; the process backend's sandbox child too),
 * its RAM, and the dirty rate the VMM samples from its own dirty log (vmm_dirtyrate.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "host_info.h"
#include "microvm_int.h"

int gw_microvm_stats(struct gw_agent *ag, struct gw_vm *vm, struct gw_vm_stats *out, char *err,
		     size_t errlen)
{
	(void)ag;
	memset(out, 0, sizeof(*out));
	out->mem_used_mib = vm->memory_mib;
	if (vm->pid <= 0) {
		snprintf(err, errlen, "vm '%s' has no VMM process", vm->name);
		return -ESRCH;
	}
	out->cpu_time_ns = gw_proc_cpu_ns(vm->pid);
	GwVmmStatus *st;
	int r = gw_microvm_status(vm, GW_MSG_TYPE__GW_MSG_VMM_STATUS, &st, err, errlen);
	if (r)
		return r;
	out->has_dirty_rate = st->has_dirty_rate_pps;
	out->dirty_rate_pps = st->dirty_rate_pps;
	gw_vmm_status__free_unpacked(st, NULL);
	return 0;
}
