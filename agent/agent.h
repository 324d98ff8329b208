/* agent.h -- the host agent's shared types: configuration, the VM record, the agent. */
#ifndef GW_AGENT_H
#define GW_AGENT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "ram_pool.h"

#define GW_NAME_MAX   64 /* including the NUL */
#define GW_REASON_MAX 256

struct gw_agent_config {
	char config_path[PATH_MAX]; /* "" when none was read */
	char state_dir[PATH_MAX];
	char socket_path[PATH_MAX];
	char listen[128];
	char metrics_listen[128]; /* Prometheus endpoint ADDR:PORT, "" = none */
	char node[GW_NAME_MAX];
	char cluster_key[PATH_MAX];
	char vmm_path[PATH_MAX];
	unsigned long long memory_reserve_mib;	  /* host memory never given to guests */
	unsigned long long incoming_ram_pool_mib; /* pre-populated RAM for incoming VMs, 0 = none */
	int log_level;				  /* enum gw_log_level */
	char migration_transport[8]; /* data streams of outgoing migrations: tcp|rdma */
	char vm_backend[16];	     /* auto|kvm|process, as configured */
	char vm_backend_used[16]; /* what auto resolved to at start (godwit-vmm --probe-backend) */
	unsigned console_max_kib; /* guest console log cap per VM, 0 = none */
	/* [libvirt]: the libvirt driver is on when enabled (enabled = yes, or a uri given) */
	int libvirt_enabled;
	char libvirt_uri[256];	       /* uri (default qemu:///system) */
	char libvirt_migrate_uri[256]; /* how peers' libvirtds reach ours, "" = from listen */
	int libvirt_migrate_unsafe;    /* VIR_MIGRATE_UNSAFE: test clusters' local "shared" dir */
	/* [tls]: peer links (migration control and data, BEGIN, outcome queries); gw_tls.h */
	char tls_mode[16]; /* off|on|required */
	char tls_ca[PATH_MAX];
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
};

/*
 * VM states as the agent reports them. A VM is "active" while a VMM process owns it
 * (running, paused, migrating).
 *
 *                 start        pause        resume       stop / guest exit    crash
 *   defined     running        -            -            -                    -
 *   running       -          paused         -          stopped              crashed
 *   paused        -            -          running      stopped              crashed
 *   stopped     running        -            -            -                    -
 *   crashed     running        -            -            -                    -
 */
enum gw_vm_state {
	GW_VM_DEFINED = 0,
	GW_VM_RUNNING,
	GW_VM_PAUSED,
	GW_VM_STOPPED,
	GW_VM_CRASHED,
	GW_VM_MIGRATING,
};

const char *gw_vm_state_name(enum gw_vm_state s);
int gw_vm_state_parse(const char *s, enum gw_vm_state *out);
int gw_vm_state_active(enum gw_vm_state s);

struct gw_vm {
	char name[GW_NAME_MAX];
	char image[PATH_MAX];
	char *cmdline; /* malloc'd, may be NULL */
	unsigned memory_mib;
	unsigned vcpus;
	enum gw_vm_state state;
	int has_exit_status;
	int exit_status;
	char reason[GW_REASON_MAX];
	char backend[16]; /* VM backend of its VMM: "kvm", "process", "" = not started yet */
	char driver[16];  /* its driver (drivers/driver.h): "microvm" or "libvirt" */
	char *xml;	  /* libvirt: the domain XML (malloc'd), NULL for micro-VMs */
	int pid;	  /* VMM pid while active, else 0 */
	unsigned long long pid_start; /* /proc/PID/stat starttime, guards pid reuse */
	unsigned long long started_at_ms;
	char dir[PATH_MAX]; /* STATE/vms/NAME */
	int vmm_fd;	    /* connection to the VMM's socket, -1 when none */
	/* live migration (not persisted) */
	uint64_t mig_id;		      /* running migration, either direction, or 0 */
	int mig_incoming;		      /* this record was created by an incoming migration */
	int mig_handed_over;		      /* the VMM exited after handing the VM to a peer */
	unsigned long long mig_deadline_ms;   /* incoming (libvirt): give up waiting after this */
	unsigned long long mig_next_check_ms; /* incoming (libvirt): next outcome query */
	char mig_peer[128];		      /* incoming: where the source answers queries */
};

struct gw_vmtable {
	struct gw_vm **vms;
	size_t count, cap;
	char state_dir[PATH_MAX];
};

struct gw_conn;
struct gw_driver;
struct gw_tls_ctx;

struct gw_agent {
	struct gw_agent_config cfg;
	struct gw_vmtable vms;
	int listen_fd;
	struct gw_conn *peer_lst; /* migration listener (NULL when disabled) */
	char peer_addr[128];	  /* where it listens, with the real port */
	uint8_t *key;		  /* cluster key (NULL when none could be read) */
	size_t keylen;
	struct gw_tls_ctx *tls;	   /* [tls] certificates (NULL: mode off) */
	struct gw_ram_pool pool;   /* guest RAM ready for incoming migrations (ram_pool.h) */
	struct gw_driver *drivers; /* every driver, microvm first (drivers/drivers.c) */
	size_t n_drivers;
};

#endif
