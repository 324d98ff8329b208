/* microvm_int.h -- what the microvm driver's files share: microvm_vmm.c (lifecycle, the VMM
 * connection), microvm_migrate.c (migration ops) and microvm.c (the ops table). */
#ifndef GW_MICROVM_INT_H
#define GW_MICROVM_INT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "control.pb-c.h"
#include "driver.h"

/* The lifecycle ops of gw_driver_microvm (microvm_vmm.c; driver.h has their contracts). */
int gw_microvm_validate(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_microvm_start(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_microvm_pause(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_microvm_resume(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_microvm_attach(struct gw_agent *ag, struct gw_vm *vm);
int gw_microvm_watch_fd(struct gw_vm *vm);
void gw_microvm_reap(struct gw_agent *ag, struct gw_vm *vm);
void gw_microvm_poll(struct gw_agent *ag, struct gw_vm *vm);
void gw_microvm_console_path(const struct gw_vm *vm, char *buf, size_t len);
/* microvm_stats.c: the stats op */
int gw_microvm_stats(struct gw_agent *ag, struct gw_vm *vm, struct gw_vm_stats *out, char *err,
		     size_t errlen);

/* One request to the VM's godwit-vmm, optionally handing it an fd; the reply frame is
 * returned (caller frees *payload). GW_MSG_ERROR replies become -code with err set. */
int gw_microvm_call(struct gw_vm *vm, uint16_t type, const ProtobufCMessage *msg, int pass_fd,
		    uint16_t *rtype, uint8_t **payload, uint32_t *len, char *err, size_t errlen);
/* One request to the VMM answered by its status (GW_MSG_VMM_STATUS_REPLY), unpacked into
 * *out (free with gw_vmm_status__free_unpacked); a malformed reply drops the connection. */
int gw_microvm_status(struct gw_vm *vm, uint16_t type, GwVmmStatus **out, char *err, size_t errlen);
/* Start a godwit-vmm as the empty target of an incoming migration (state migrating). */
int gw_microvm_start_incoming(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_microvm_stop(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);

/* The migration ops of gw_driver_microvm (driver.h has their contracts). */
int gw_microvm_migrate_out(struct gw_agent *ag, struct gw_vm *vm, const GwVmMigrateReq *req,
			   uint64_t id, GwMigProgress **out, char *err, size_t errlen);
int gw_microvm_migrate_in(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
			  const GwMigBegin *begin, const uint8_t *raw, uint32_t rawlen, char *err,
			  size_t errlen);
int gw_microvm_migrate_join(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
			    unsigned stream, char *err, size_t errlen);
int gw_microvm_progress(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
			size_t errlen);
int gw_microvm_cancel(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
		      size_t errlen);

#endif
