/* vmtable.h -- the agent's VMs: in-memory table, persisted one file per VM. */
#ifndef GW_VMTABLE_H
#define GW_VMTABLE_H

#include "agent.h"
#include "control.pb-c.h"

/* 1-63 chars of [A-Za-z0-9_.-], not starting with '.' or '-'. */
int gw_vm_name_valid(const char *name);

/* Set the state directory (created with mode 0700 when missing) and load every
 * STATE/vms/NAME/vm.pb. Unreadable records are logged and skipped, never fatal. */
int gw_vmtable_open(struct gw_vmtable *t, const char *state_dir);
void gw_vmtable_close(struct gw_vmtable *t);

struct gw_vm *gw_vmtable_find(struct gw_vmtable *t, const char *name);
/* Create a new defined VM record (directory + vm.pb). -EEXIST, -EINVAL, -errno. */
int gw_vmtable_add(struct gw_vmtable *t, const char *name, const char *image, unsigned memory_mib,
		   unsigned vcpus, const char *cmdline, struct gw_vm **out);
/* Free what a VM record owns (command line, domain XML), for records not in a table (e.g.
 * on the stack); the struct itself stays. */
void gw_vm_clear(struct gw_vm *vm);
/* Give a record its driver (and, for libvirt, its domain XML; NULL keeps the one it has) and
 * save it. 0, -EINVAL (name too long), -ENOMEM or -errno from saving. */
int gw_vmtable_set_driver(struct gw_vmtable *t, struct gw_vm *vm, const char *driver,
			  const char *xml);
/* Forget the record but keep its directory as STATE/departed/NAME (logs, console, last
 * migration result), replacing an older one of that name. */
int gw_vmtable_retire(struct gw_vmtable *t, struct gw_vm *vm);
/* Remove the record and its directory. */
int gw_vmtable_remove(struct gw_vmtable *t, struct gw_vm *vm);
/* Persist vm (atomic write + fsync of STATE/vms/NAME/vm.pb). */
int gw_vmtable_save(struct gw_vmtable *t, const struct gw_vm *vm);
/* Persist a runtime state change (atomic, no fsync: a host crash ends the VM anyway). */
int gw_vmtable_save_state(struct gw_vmtable *t, const struct gw_vm *vm);

/* Conversions between the record and its wire/disk form. to_info's strings point into vm. */
void gw_vm_to_info(const struct gw_vm *vm, const char *node, GwVmInfo *info);
int gw_vm_from_info(struct gw_vm *vm, const GwVmInfo *info);

#endif
