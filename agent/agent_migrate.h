/* agent_migrate.h -- the agent's part in live migration: control requests, the peer
 * listener (incoming migrations, data streams, outcome queries), and results. */
#ifndef GW_AGENT_MIGRATE_H
#define GW_AGENT_MIGRATE_H

#include <protobuf-c/protobuf-c.h>

#include "agent.h"

/* Load the cluster key and listen for peers on cfg.listen. Failures are logged: the agent
 * then runs without accepting migrations. */
void gw_agent_mig_init(struct gw_agent *ag);
void gw_agent_mig_shutdown(struct gw_agent *ag);
/* The listener's fd for poll (-1 when none), and what to do when it is readable. */
int gw_agent_mig_listen_fd(struct gw_agent *ag);
void gw_agent_mig_on_accept(struct gw_agent *ag);
/* After a VM's process ended: forget a VM that was handed over or never arrived. Returns 1
 * when vm was removed (and freed). */
int gw_agent_mig_after_reap(struct gw_agent *ag, struct gw_vm *vm);

/* The last migration record kept for a VM that left (or never arrived), as its driver
 * reported it: an unpacked copy (free with gw_mig_progress__free_unpacked), or NULL. */
struct GwMigProgress;
struct GwMigProgress *gw_agent_mig_recent(const char *name);

/* Control API handlers (registered in control.c's table). */
int gw_ctl_vm_migrate(struct gw_agent *ag, int fd, const ProtobufCMessage *msg);
int gw_ctl_vm_migrate_status(struct gw_agent *ag, int fd, const ProtobufCMessage *msg);
int gw_ctl_vm_migrate_cancel(struct gw_agent *ag, int fd, const ProtobufCMessage *msg);

#endif
