/* ctl_output.h -- godwitctl output: human tables and key: value lines, or JSON documents. */
#ifndef CTL_OUTPUT_H
#define CTL_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include "control.pb-c.h"
#include "gw_json.h"
#include "migration.pb-c.h"

/*
 * One VM as a JSON object with the keys, in order: name, state, exit_status,
 * memory_mib, vcpus, node, image, cmdline, reason, pid (absent optionals are null).
 */
void gw_ctl_json_vm(struct gw_json *j, const GwVmInfo *vm);

/*
 * `vm show`: key: value lines, or the JSON object. 0 or -errno (write failed). When the
 * VM's state is migrating, mig (may be NULL) adds a "migration:" line, and the JSON
 * object ends with "migration": its status object (gw_ctl_json_migration) or null.
 */
int gw_ctl_print_vm(FILE *out, const GwVmInfo *vm, const GwMigProgress *mig, bool json);
/* create/start/stop/pause/resume: "vm NAME: STATE", or the same JSON object as show. */
int gw_ctl_print_vm_state(FILE *out, const GwVmInfo *vm, bool json);
/* `vm list`: NAME STATE VCPUS MEMORY(MiB) NODE EXIT table, or a JSON array of VMs. */
int gw_ctl_print_vm_list(FILE *out, const GwVmList *list, bool json);
/* `vm delete`: "vm NAME: deleted", or {"name": NAME, "deleted": true}. */
int gw_ctl_print_deleted(FILE *out, const char *name, bool json);
/* `agent info`: key: value lines or an object (node, version, mem_*_mib, vm_count, listen). */
int gw_ctl_print_agent_info(FILE *out, const GwAgentInfo *ai, bool json);
/*
 * A failure: "godwitctl: MSG" on err and, with json, {"error": MSG, "code": code} on
 * out (code is a positive errno).
 */
void gw_ctl_print_error(FILE *out, FILE *err, const char *msg, int code, bool json);

#endif
