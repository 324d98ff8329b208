/* vmm_engine_ops.c -- the migration engine's VM operations (gw_mig_vmm_ops), mapped onto the
 * micro-VMM API. */
#include "migrate.h"
#include "vmm.h"

static uint8_t *op_ram(void *vm, uint64_t *size)
{
	return gw_vmm_ram(vm, size);
}
static int op_ram_extent(void *vm, uint64_t from, uint64_t *start, uint64_t *end)
{
	return gw_vmm_ram_extent(vm, from, start, end);
}
static unsigned op_vcpu_count(void *vm)
{
	return gw_vmm_vcpu_count(vm);
}
static int op_pause(void *vm)
{
	return gw_vmm_pause(vm);
}
static int op_resume(void *vm)
{
	return gw_vmm_resume(vm);
}
static int op_start(void *vm)
{
	return gw_vmm_start(vm);
}
static int op_dirty_start(void *vm)
{
	return gw_vmm_dirty_start(vm);
}
static long op_dirty_sync(void *vm, uint64_t *bitmap)
{
	return gw_vmm_dirty_sync(vm, bitmap);
}
static int op_dirty_clear(void *vm, uint64_t first, uint64_t n, const uint64_t *bitmap)
{
	return gw_vmm_dirty_clear(vm, first, n, bitmap);
}
static int op_dirty_stop(void *vm)
{
	return gw_vmm_dirty_stop(vm);
}
static int op_set_throttle(void *vm, unsigned pct)
{
	return gw_vmm_set_throttle(vm, pct);
}
static int op_vcpu_save(void *vm, unsigned idx, uint8_t *buf, size_t cap, size_t *len)
{
	return gw_vmm_vcpu_save(vm, idx, buf, cap, len);
}
static int op_vcpu_restore(void *vm, unsigned idx, const uint8_t *buf, size_t len)
{
	return gw_vmm_vcpu_restore(vm, idx, buf, len);
}
static const char *op_dirty_mode(void *vm)
{
	return gw_vmm_dirty_mode(vm);
}

const struct gw_mig_vm_ops gw_mig_vmm_ops = {
    .ram = op_ram,
    .ram_extent = op_ram_extent,
    .vcpu_count = op_vcpu_count,
    .pause = op_pause,
    .resume = op_resume,
    .start = op_start,
    .dirty_start = op_dirty_start,
    .dirty_sync = op_dirty_sync,
    .dirty_clear = op_dirty_clear,
    .dirty_stop = op_dirty_stop,
    .set_throttle = op_set_throttle,
    .vcpu_save = op_vcpu_save,
    .vcpu_restore = op_vcpu_restore,
    .dirty_mode = op_dirty_mode,
};
