/* gw_sdnotify.h -- systemd's notify protocol (sd_notify(3)) without libsystemd: readiness,
 * status, stop-timeout extension and the service watchdog, for units with Type=notify. Every
 * call is a no-op when the daemon was not started by systemd ($NOTIFY_SOCKET unset). */
#ifndef GW_SDNOTIFY_H
#define GW_SDNOTIFY_H

/* Send one state datagram ("READY=1", "STATUS=...", lines joined by \n); printf-style.
 * 0, or -errno (nothing is sent, -ENOENT, without $NOTIFY_SOCKET). */
int gw_sd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The service watchdog period ($WATCHDOG_USEC for this pid) in ms, 0 = none. */
unsigned long long gw_sd_watchdog_ms(void);
/* Call every loop turn: sends WATCHDOG=1 every half watchdog period. */
void gw_sd_watchdog_tick(void);

#endif
