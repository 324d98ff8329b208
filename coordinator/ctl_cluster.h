/* ctl_cluster.h -- godwitctl's cluster commands, answered by the coordinator. */
#ifndef CTL_CLUSTER_H
#define CTL_CLUSTER_H

#include "ctl_args.h"

/* Each returns the process exit status (0 ok, 1 error). */
int gw_ctl_run_cluster_status(const struct gw_ctl_args *a);
int gw_ctl_run_host_list(const struct gw_ctl_args *a);
int gw_ctl_run_cluster_vm_create(const struct gw_ctl_args *a);
int gw_ctl_run_cluster_vm_list(const struct gw_ctl_args *a);
int gw_ctl_run_events(const struct gw_ctl_args *a);
int gw_ctl_run_cluster_vm_migrate(const struct gw_ctl_args *a);
int gw_ctl_run_host_maint_enter(const struct gw_ctl_args *a);
int gw_ctl_run_host_maint_exit(const struct gw_ctl_args *a);

#endif
