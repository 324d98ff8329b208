/* driver.h -- the VM driver interface of the agent (microvm now; libvirt later).
 *
 * Every op runs in the agent's single event-loop thread and may block for a bounded
 * time (a VMM round trip, at most GW_DRIVER_TIMEOUT_MS). Ops return 0 or -errno and
 * write a one-line reason into err; they update vm->state themselves.
 */
#ifndef GW_DRIVER_H
#define GW_DRIVER_H

#include <stddef.h>

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "agent.h"

#define GW_DRIVER_TIMEOUT_MS 5000

struct gw_driver_ops {
	const char *name;
	/* Check a definition before it is stored (image readable, sizes in range). */
	int (*validate)(struct gw_agent *ag, const struct gw_vm *vm, char *err, size_t errlen);
	int (*start)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	int (*stop)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	int (*pause)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	int (*resume)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	/* After an agent (re)start: find the VM's process again, or learn how it ended. */
	int (*attach)(struct gw_agent *ag, struct gw_vm *vm);
	/* The fd to watch for the VM ending on its own (-1 if none); on POLLIN/POLLHUP
	 * the agent calls reap, which updates the state from what the driver left behind. */
	int (*watch_fd)(struct gw_vm *vm);
	void (*reap)(struct gw_agent *ag, struct gw_vm *vm);
	/* Start a VM as the empty target of an incoming migration (state migrating). */
	int (*start_incoming)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	/* One request to the VM's process, optionally handing it an fd; the reply frame is
	 * returned (caller frees *payload). GW_MSG_ERROR replies become -code with err set. */
	int (*call)(struct gw_vm *vm, uint16_t type, const ProtobufCMessage *msg, int pass_fd,
		    uint16_t *rtype, uint8_t **payload, uint32_t *len, char *err, size_t errlen);
	/* Refresh the state of a migrating VM from its process (periodically). */
	void (*poll)(struct gw_agent *ag, struct gw_vm *vm);
	/* Path of the console log (for console reads). */
	void (*console_path)(const struct gw_vm *vm, char *buf, size_t len);
};

extern const struct gw_driver_ops gw_driver_microvm;

/* Host memory figures from /proc/meminfo, in MiB. */
int gw_host_meminfo(unsigned long long *total_mib, unsigned long long *avail_mib);
/* starttime (field 22) of /proc/PID/stat, 0 when the process does not exist. */
unsigned long long gw_proc_start_ticks(int pid);

#endif
