/* ctl_migrate.h -- godwitctl vm migrate, migrate-cancel, migrate-status and vm show's migration. */
#ifndef CTL_MIGRATE_H
#define CTL_MIGRATE_H

#include "ctl_args.h"
#include "migration.pb-c.h"

/* Exit status when a second SIGINT stops `vm migrate` from waiting (128 + SIGINT). */
#define GW_CTL_EXIT_INTERRUPTED 130

/*
 * vm migrate: GW_MIG_VM_MIGRATE, then GW_MIG_VM_MIGRATE_STATUS every 100 ms (one
 * connection each) until the result is no longer "running", showing progress (a bar
 * on a terminal, a line per round otherwise, nothing with --json). The first SIGINT
 * sends GW_MIG_VM_MIGRATE_CANCEL and keeps waiting; a second one exits at once.
 * Returns the exit status: 0 only when the migration completed.
 */
int gw_ctl_run_vm_migrate(const struct gw_ctl_args *a);
/* vm migrate-cancel: 0 when the migration is cancelled or being cancelled, else 1. */
int gw_ctl_run_vm_migrate_cancel(const struct gw_ctl_args *a);
/* vm migrate-status: 0 when the agent reported a current or last migration, else 1. */
int gw_ctl_run_vm_migrate_status(const struct gw_ctl_args *a);

/*
 * Best effort GW_MIG_VM_MIGRATE_STATUS for `vm show`: the progress (free it with
 * protobuf_c_message_free_unpacked), or NULL on any failure.
 */
GwMigProgress *gw_ctl_migration_fetch(const char *socket, int timeout_ms, const char *name);

#endif
