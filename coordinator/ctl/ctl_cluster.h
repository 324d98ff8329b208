/* ctl_cluster.h -- godwitctl's cluster commands, answered by the coordinator. */
#ifndef CTL_CLUSTER_H
#define CTL_CLUSTER_H

#include <stdbool.h>

#include "ctl_args.h"

/* A libvirt VM's domain XML file, largest sent (the cluster state keeps at most this). */
#define GW_CTL_XML_MAX (64u * 1024)
/* An affinity rule names at most this many VMs and hosts (the coordinator's limits). */
#define GW_CTL_RULE_VMS	  16
#define GW_CTL_RULE_HOSTS 8
#define GW_CTL_MAX_RULES  64 /* rules in the cluster */

/* One cluster VM as a JSON object (stable keys; the same in list, create and import). */
struct gw_json;
struct GwClVm;
void gw_ctl_json_cluster_vm(struct gw_json *j, const struct GwClVm *v);

/* A cluster live migration, requested and followed to its end. */
struct gw_ctl_cl_mig {
	char from[128], to[128];
	const char *result; /* "completed", "failed", "cancelled" or "interrupted" */
	int code;	    /* a failed request to the coordinator: its -errno (result NULL) */
	char err[512];	    /* why it did not complete */
	unsigned long long total_ms;
};

/*
 * Ask the coordinator to live-migrate cluster VM name to to_host (GW_CL_API_VM_MIGRATE)
 * and wait until that migration ended (announce: print "vm N: migrating A -> B" once
 * requested). Prints nothing else. 0 with res->result set, or the -errno of a failed
 * request (refused, connection) with the reason in res->err.
 */
int gw_ctl_cluster_migrate(const struct gw_ctl_args *a, const char *name, const char *to_host,
			   bool announce, struct gw_ctl_cl_mig *res);

/* Each returns the process exit status (0 ok, 1 error). */
int gw_ctl_run_cluster_status(const struct gw_ctl_args *a);
int gw_ctl_run_host_list(const struct gw_ctl_args *a);
/* cluster vm create | import (ctl_cluster_vm.c) */
int gw_ctl_run_cluster_vm_create(const struct gw_ctl_args *a);
int gw_ctl_run_cluster_vm_import(const struct gw_ctl_args *a);
int gw_ctl_run_cluster_vm_list(const struct gw_ctl_args *a);
int gw_ctl_run_events(const struct gw_ctl_args *a);
int gw_ctl_run_cluster_vm_migrate(const struct gw_ctl_args *a);
int gw_ctl_run_host_maint_enter(const struct gw_ctl_args *a);
int gw_ctl_run_host_maint_exit(const struct gw_ctl_args *a);
int gw_ctl_run_cluster_balance(const struct gw_ctl_args *a); /* ctl_balance.c */
/* cluster vm stop | start | delete (ctl_cluster_admin.c) */
int gw_ctl_run_cluster_vm_admin(const struct gw_ctl_args *a);
/* cluster rules add | list | remove (ctl_rules.c) */
int gw_ctl_run_cluster_rules(const struct gw_ctl_args *a);
/* cluster vm migrate-cancel (ctl_cluster_admin.c) */
int gw_ctl_run_cluster_vm_migrate_cancel(const struct gw_ctl_args *a);

#endif
