/* vmm_mig_control.h -- godwit-vmm's side of migration: the MIG_VMM_* requests and the engine. */
#ifndef GW_VMM_MIG_CONTROL_H
#define GW_VMM_MIG_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

struct gw_vmm_mig_ctx {
	struct gw_vmm *vmm;
	const char *name;
	const char *dir;
};

/* Is t one of the migration request types this module answers? */
bool gw_vmm_mig_is_request(uint16_t t);
/* Handle one migration request from the agent and send the reply on fd. passed_fd is an
 * fd that came with the frame (SCM_RIGHTS) or -1; it is consumed. 0 or -errno (send). */
int gw_vmm_mig_handle(struct gw_vmm_mig_ctx *ctx, int fd, uint16_t type, const uint8_t *payload,
		      uint32_t len, int passed_fd);
/* Readable once the running migration has ended; -1 when there is none. */
int gw_vmm_mig_event_fd(void);
bool gw_vmm_mig_active(void);

enum gw_vmm_mig_end {
	GW_VMM_MIG_KEEP_RUNNING, /* source aborted (VM resumed) or destination now running */
	GW_VMM_MIG_EXIT,	 /* source handed the VM over, or destination discarded it */
};
/* The migration ended: join it, write VMDIR/migration.pb (final progress), say what the
 * VMM must do. For EXIT, reason/migrated_to describe the end (migrated_to "" if none). */
enum gw_vmm_mig_end gw_vmm_mig_finish(struct gw_vmm_mig_ctx *ctx, char *reason, size_t rlen,
				      char *migrated_to, size_t mlen, uint64_t *migration_id);
/* Cancel a running migration (on SIGTERM/stop), and wait for it to end. */
void gw_vmm_mig_cancel_and_wait(void);

#endif
