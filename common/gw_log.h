/* gw_log.h -- one-line leveled logging with a subsystem tag, to stderr. */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdarg.h>

enum gw_log_level { GW_LOG_DEBUG = 0, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR };

/* Set the minimum level printed (default INFO; GODWIT_LOG_LEVEL=debug overrides). */
void gw_log_set_level(enum gw_log_level level);
/* Name the process in every line ("agent", "vmm[web1]", ...). */
void gw_log_set_ident(const char *ident);
/* Parse "debug|info|warn|error"; returns -EINVAL on anything else. */
int gw_log_level_parse(const char *s, enum gw_log_level *out);

void gw_log_write(enum gw_log_level level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define gw_debug(subsys, ...) gw_log_write(GW_LOG_DEBUG, subsys, __VA_ARGS__)
#define gw_info(subsys, ...) gw_log_write(GW_LOG_INFO, subsys, __VA_ARGS__)
#define gw_warn(subsys, ...) gw_log_write(GW_LOG_WARN, subsys, __VA_ARGS__)
#define gw_err(subsys, ...) gw_log_write(GW_LOG_ERROR, subsys, __VA_ARGS__)

#endif
