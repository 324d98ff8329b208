/* microvm.c -- the microvm driver: Godwit's own micro-VMs, one godwit-vmm process each
 * (agent/vmm/). Lifecycle in microvm_vmm.c, migration in microvm_migrate.c; this file only
 * puts them in the driver table. */
#include "microvm_int.h"

const struct gw_driver_ops gw_driver_microvm = {
    .name = "microvm",
    .validate = gw_microvm_validate,
    .start = gw_microvm_start,
    .stop = gw_microvm_stop,
    .pause = gw_microvm_pause,
    .resume = gw_microvm_resume,
    .attach = gw_microvm_attach,
    .watch_fd = gw_microvm_watch_fd,
    .reap = gw_microvm_reap,
    .poll = gw_microvm_poll,
    .console_path = gw_microvm_console_path,
    .stats = gw_microvm_stats,
    .migrate_out = gw_microvm_migrate_out,
    .migrate_in = gw_microvm_migrate_in,
    .migrate_join = gw_microvm_migrate_join,
    .progress = gw_microvm_progress,
    .cancel = gw_microvm_cancel,
};
