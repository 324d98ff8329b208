/* gw_fsutil.h -- durable file helpers: atomic replace with fsync, whole-file read, mkdir -p. */
#ifndef GW_FSUTIL_H
#define GW_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Write data to path.tmp, fsync it, rename over path, fsync the directory. 0 or -errno. */
int gw_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same without the fsyncs: survives a process restart, not a host crash. For runtime
 * state that a host crash makes moot anyway (a VM's running/paused status). */
int gw_file_replace(const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole file (at most max bytes, else -EFBIG) into a malloc'd NUL-terminated buffer. */
int gw_file_read(const char *path, size_t max, char **data, size_t *len);
/* mkdir -p with the given mode for created components. 0 or -errno. */
int gw_mkdir_p(const char *path, mode_t mode);
/* Remove a directory tree (used for a deleted VM's state). 0 or -errno. */
int gw_rm_rf(const char *path);
/* Monotonic and wall clocks in ms / ns. */
unsigned long long gw_now_mono_ms(void);
unsigned long long gw_now_mono_ns(void);
unsigned long long gw_now_wall_ms(void);

#endif
