/* libvirt.c -- the libvirt driver's ops table (libvirt_int.h says which file does what). */
#include "libvirt_int.h"

const struct gw_driver_ops gw_driver_libvirt = {
    .name = "libvirt",
    .init = gw_lv_init,
    .fini = gw_lv_fini,
    .available = gw_lv_available,
    .event_fd = gw_lv_event_fd,
    .on_event = gw_lv_on_event,
    .tick = gw_lv_tick,
    .validate = gw_lv_validate,
    .define = gw_lv_define,
    .start = gw_lv_start,
    .stop = gw_lv_stop,
    .pause = gw_lv_pause,
    .resume = gw_lv_resume,
    .undefine = gw_lv_undefine,
    .attach = gw_lv_attach,
    .watch_fd = gw_lv_watch_fd,
    .reap = gw_lv_reap,
    .poll = gw_lv_poll,
    .console_path = gw_lv_console_path,
    .stats = gw_lv_stats,
    .migrate_out = gw_lv_migrate_out,
    .migrate_in = gw_lv_migrate_in,
    .progress = gw_lv_progress,
    .cancel = gw_lv_cancel,
};
