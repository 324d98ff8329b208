/* host_info.h -- facts about this host read from /proc (host_info.c). */
#ifndef GW_HOST_INFO_H
#define GW_HOST_INFO_H

/* Host memory figures from /proc/meminfo, in MiB. */
int gw_host_meminfo(unsigned long long *total_mib, unsigned long long *avail_mib);
/* starttime (field 22) of /proc/PID/stat, 0 when the process does not exist. */
unsigned long long gw_proc_start_ticks(int pid);
/* CPU time (user + system) of process pid and its direct children (those of any of its
 * threads), in ns; 0 when gone. */
unsigned long long gw_proc_cpu_ns(int pid);

#endif
