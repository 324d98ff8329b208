/* driver.h -- the VM driver interface of the agent. A driver runs VMs of one kind: `microvm`
 * (Godwit's own micro-VMs, one godwit-vmm process each, drivers/microvm*.c) and `libvirt`
 * (libvirt/QEMU domains, drivers/libvirt*.c). The agent holds every driver built in and
 * configured at once and dispatches each request by the VM's record (gw_vm.driver);
 * drivers.c is the registry.
 *
 * Every op runs in the agent's single event-loop thread and may block for a bounded time (at
 * most GW_DRIVER_TIMEOUT_MS). Ops return 0 or -errno and write a one-line reason into err;
 * they update vm->state themselves and save it (gw_vmtable_save_state).
 *
 * Migration progress, whatever the driver, is one record: GwMigProgress (migration.proto).
 * migrate_out, progress and cancel return it unpacked (the caller frees it with
 * gw_mig_progress__free_unpacked); the CLI, the metrics and the coordinator read only that.
 */
#ifndef GW_DRIVER_H
#define GW_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "migration.pb-c.h"

#define GW_DRIVER_TIMEOUT_MS 5000
#define GW_DRIVER_MAX	     4

struct gw_conn;

/* What a driver reports of a VM for the balancer's load model (stats op). */
struct gw_vm_stats {
	uint64_t cpu_time_ns;	 /* guest CPU time so far (all vCPUs) */
	uint64_t mem_used_mib;	 /* memory the guest uses (balloon-aware where known) */
	uint64_t dirty_rate_pps; /* pages written per second, 0 = unknown */
	bool has_dirty_rate;
};

struct gw_driver;

struct gw_driver_ops {
	const char *name;
	/* ---- the driver as a whole (all optional) ---- */
	/* Set up at agent start (connect to a daemon, ...): 0 = ready; > 0 = not enabled in
	 * the configuration (off, not listed in the agent's info); < 0 = failed (logged). A
	 * driver that is not ready stays registered, and available() says why. */
	int (*init)(struct gw_agent *ag, struct gw_driver *d, char *err, size_t errlen);
	void (*fini)(struct gw_agent *ag, struct gw_driver *d);
	/* Can it take requests now? err says why not (daemon down, not configured). */
	bool (*available)(struct gw_driver *d, char *err, size_t errlen);
	/* One fd for the whole driver to watch (its event stream), -1 when none; when it is
	 * readable the agent calls on_event, which applies what happened to the VMs. */
	int (*event_fd)(struct gw_driver *d);
	void (*on_event)(struct gw_agent *ag, struct gw_driver *d);
	/* Every loop turn (about 100 ms): reconnects, timers. */
	void (*tick)(struct gw_agent *ag, struct gw_driver *d);

	/* ---- one VM ---- */
	/* Check a definition before it is stored (image readable, sizes in range, XML). It may
	 * complete the record: libvirt reads memory and vCPUs from the XML, and, with no XML,
	 * takes the existing domain's (adopt). */
	int (*validate)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	/* The record was stored: make the VM known where the driver keeps VMs (optional;
	 * libvirt defines the domain). */
	int (*define)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	int (*start)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	int (*stop)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	int (*pause)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	int (*resume)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	/* The VM's record is deleted: forget what the driver keeps of it (optional). */
	int (*undefine)(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
	/* After an agent (re)start: find the VM again, or learn how it ended. */
	int (*attach)(struct gw_agent *ag, struct gw_vm *vm);
	/* A per-VM fd to watch for the VM ending on its own (-1 if none); on POLLIN/POLLHUP
	 * the agent calls reap, which updates the state from what the driver left behind. */
	int (*watch_fd)(struct gw_vm *vm);
	void (*reap)(struct gw_agent *ag, struct gw_vm *vm);
	/* Refresh a migrating VM's state (called periodically while it migrates). */
	void (*poll)(struct gw_agent *ag, struct gw_vm *vm);
	/* Path of the console log (for console reads). */
	void (*console_path)(const struct gw_vm *vm, char *buf, size_t len);
	/* Load figures (optional). */
	int (*stats)(struct gw_agent *ag, struct gw_vm *vm, struct gw_vm_stats *out, char *err,
		     size_t errlen);

	/* ---- live migration ---- */
	/* Start migrating vm to the agent at req->to; id names the migration; the first
	 * progress record comes back in *out. The VM is then GW_VM_MIGRATING. */
	int (*migrate_out)(struct gw_agent *ag, struct gw_vm *vm, const GwVmMigrateReq *req,
			   uint64_t id, GwMigProgress **out, char *err, size_t errlen);
	/* Destination: a source's BEGIN (already checked by the agent) was accepted for the
	 * new record vm (state migrating). Take the migration over the control connection c:
	 * on 0 the driver has answered BEGIN (or handed c to whoever does) and keeps what it
	 * needs of c, the agent closes only its own copy; on -errno the agent refuses BEGIN
	 * with err and removes the record. raw is BEGIN as it arrived. */
	int (*migrate_in)(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
			  const GwMigBegin *begin, const uint8_t *raw, uint32_t rawlen, char *err,
			  size_t errlen);
	/* Destination: data stream `stream` of vm's incoming migration arrived on c (optional:
	 * drivers whose data does not pass through the agent leave it NULL). */
	int (*migrate_join)(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
			    unsigned stream, char *err, size_t errlen);
	/* The running migration's progress, or the last one's result when none runs; -ENOENT
	 * when the driver knows of none. */
	int (*progress)(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
			size_t errlen);
	/* Cancel the running migration; the VM stays (or goes back to) running on its source. */
	int (*cancel)(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
		      size_t errlen);
};

/* One registered driver: its ops and its own state. */
struct gw_driver {
	const struct gw_driver_ops *ops;
	void *priv;
	bool ready; /* init succeeded */
};

extern const struct gw_driver_ops gw_driver_microvm;

/* ---- the registry (drivers.c) ---- */
/* Register the drivers built in and call their init; the microvm driver is always there. */
void gw_drivers_init(struct gw_agent *ag);
void gw_drivers_fini(struct gw_agent *ag);
/* The driver named name ("" = microvm), or NULL. */
struct gw_driver *gw_driver_by_name(struct gw_agent *ag, const char *name);
/* The driver of vm's record; never NULL: a record naming a driver this agent lacks gets a
 * stand-in whose ops fail with -ENOTSUP and say so (the record is kept as it is). */
struct gw_driver *gw_vm_driver(struct gw_agent *ag, const struct gw_vm *vm);
/* Shorthand: the ops of vm's driver. */
const struct gw_driver_ops *gw_vm_ops(struct gw_agent *ag, const struct gw_vm *vm);

#endif
