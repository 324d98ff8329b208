/* coord_state.h -- the replicated cluster state: hosts, VMs, events, and the one apply function. */
#ifndef COORD_STATE_H
#define COORD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_COORD_MAX_HOSTS    64
#define GW_COORD_MAX_EVENTS   256
#define GW_COORD_NAME_MAX     64
#define GW_COORD_MAX_RESTARTS 3	 /* restart attempts of one HA VM after its host failed */
#define GW_COORD_MAX_DELETED  32 /* tombstones of deleted VMs kept (coord_state_admin.c) */
#define GW_COORD_MAX_DRIVERS  4	 /* VM drivers one host's agent announces */
#define GW_COORD_DRIVER_MAX   16 /* a driver name, with its NUL */
/*
 * A libvirt VM's domain XML, largest accepted (bytes, without the NUL). Typical domains
 * are 2-8 KiB; the XML travels in VM_DEFINE and in every snapshot, each one CPG message.
 */
#define GW_COORD_XML_MAX (64u * 1024)
/* balancing (coord_drs.c, coord_state_drs.c) */
#define GW_COORD_MAX_RULES   64
#define GW_COORD_RULE_VMS    16
#define GW_COORD_RULE_HOSTS  8
#define GW_COORD_BAL_MOVES   64	 /* moves of one balancing run */
#define GW_COORD_BAL_HIST    512 /* VMs moved within the hold window (planner history) */
#define GW_COORD_BAL_REFUSED 8
#define GW_COORD_BAL_NOTES   16

/* clang-format off */
/*
 * Host states. Events are CPG messages (HELLO, FENCE_*) and membership changes
 * (gw_coord_state_members). "-" = no change (the message is ignored, with an event).
 *
 *   state \ event | HELLO | left membership | FENCE_START | FENCE_CONFIRMED | FENCE_FAILED
 *   --------------+-------+-----------------+-------------+-----------------+-------------
 *   up            | up    | lost            | -           | -               | -
 *   lost          | up    | lost            | fencing     | -               | -
 *   fencing       | up    | fencing         | fencing     | fenced          | fencing
 *   fenced        | up    | fenced          | -           | -               | -
 *   maintenance   | maint.| lost (*)        | -           | -               | -
 *
 * FENCE_CONFIRMED also moves the host's VMs: HA ones to pending, the others to lost.
 * MAINT_ENTER: up -> maintenance (evacuating); MAINT_EXIT: maintenance -> up. Nothing is
 * placed on a host in maintenance. While evacuating, the acting member migrates its VMs
 * away one at a time; the evacuation ends with EVAC_END (every VM moved, or none could be
 * placed) or with a failed MIGRATE_DONE of one of its VMs (stopped, the host stays in
 * maintenance). A host in maintenance that is lost and comes back (HELLO) is in
 * maintenance again, until MAINT_EXIT. (*) A host in maintenance that is not evacuating and
 * runs no VM (none starting or running there, none migrating to it) stays in maintenance
 * when it leaves the membership (event host-left): nothing to fence or restart, e.g. after a
 * graceful shutdown (coord_shutdown.c).
 */
enum gw_coord_host_state {
	GW_HOST_UP = 0,
	GW_HOST_LOST,
	GW_HOST_FENCING,
	GW_HOST_FENCED,
	GW_HOST_MAINTENANCE,
};
/* clang-format on */

/* clang-format off */
/*
 * VM states (cluster view). Events: VM_STATE from the VM's host, FENCE_CONFIRMED of its
 * host, VM_RESTART / VM_UNPLACED from the acting member, HELLO of any host, VM_ADMIN
 * (stop / start / delete) from an operator (coord_state_admin.c).
 *
 *   state \ event | VM_STATE running | VM_STATE failed       | host FENCE_CONFIRMED | VM_RESTART     | VM_UNPLACED | HELLO   | stop     | start           | delete
 *   --------------+------------------+-----------------------+----------------------+----------------+-------------+---------+----------+-----------------+--------
 *   starting      | running          | pending (HA, retries  | HA: pending          | -              | -           | -       | stopped  | -               | -
 *                 |                  | left) else failed     | else: lost           |                |             |         |          |                 |
 *   running       | running          | (same as starting)    | (same)               | -              | -           | -       | stopped  | -               | -
 *   pending       | -                | -                     | -                    | starting@target| unplaced    | -       | stopped  | -               | -
 *   unplaced      | -                | -                     | -                    | starting@target| unplaced    | pending | stopped  | -               | removed
 *   failed / lost | running          | -                     | -                    | -              | -           | -       | -        | starting@host * | removed
 *   stopped       | -                | -                     | -                    | -              | -           | -       | -        | starting@host * | removed
 *
 * "-" under stop / start / delete: refused (an event, no change). stop is also refused while
 * the VM migrates. * start: on its own host if that host is up (not in maintenance) and
 * the VM fits there, else on the host gw_coord_place picks; refused if none fits. A
 * stopped VM is never restarted by failover: its host failing leaves it stopped. delete
 * removes the VM and records a tombstone (name, host): that host's member deletes the
 * agent's copy (coord_admin.c).
 *
 * Live migration does not change the state: MIGRATE_START (VM running, target up, fits)
 * sets migrate_to; MIGRATE_DONE from the source clears it and, only when completed, moves
 * the VM to the target. FENCE_CONFIRMED of its host also clears it. MIGRATE_CANCEL (same
 * id as the migration under way) only sets migrate_cancel: the source's member then has
 * its agent cancel, and the migration ends as any other, with MIGRATE_DONE (cancelled).
 */
enum gw_coord_vm_state {
	GW_CVM_STARTING = 0,
	GW_CVM_RUNNING,
	GW_CVM_PENDING,
	GW_CVM_UNPLACED,
	GW_CVM_FAILED,
	GW_CVM_LOST,
	GW_CVM_STOPPED,
	GW_CVM_COUNT
};
/* clang-format on */

struct gw_coord_host {
	uint32_t nodeid;
	char name[GW_COORD_NAME_MAX];
	enum gw_coord_host_state state;
	uint64_t mem_total_mib;
	uint64_t mem_avail_mib;
	char agent_listen[64];
	uint32_t fence_attempts;
	bool maintenance;      /* MAINT_ENTER .. MAINT_EXIT: back in maintenance after a reboot */
	bool evacuating;       /* maintenance: its VMs are being migrated away */
	uint64_t evac_id;      /* the last MAINT_ENTER applied */
	char maint_error[256]; /* why the last evacuation stopped, "" = it did not */
	uint32_t watchdog_s;   /* its last HELLO: watchdog armed with this timeout, 0 = none */
	char vm_backend[16];   /* its agent's VM backend (kvm, process), "" = unknown */
	struct gw_coord_driver {
		char name[GW_COORD_DRIVER_MAX];
		bool available;
		char status[128];
	} drivers[GW_COORD_MAX_DRIVERS]; /* its last HELLO's; none: an older agent (microvm) */
	size_t n_drivers;
	bool offline; /* left the membership in maintenance, running no VM (not fenced); HELLO
		       * clears it */
	uint32_t cpus_milli;	  /* balancing: CPUs x 1000 (HELLO, LOAD); 0 = unknown */
	uint32_t link_mbps;	  /* balancing: migration bandwidth, MB/s (HELLO); 0 = default */
	uint32_t max_in, max_out; /* balancing: concurrent migrations (HELLO); 0 = 2 */
};

struct gw_coord_vm {
	char name[GW_COORD_NAME_MAX];
	char host[GW_COORD_NAME_MAX];
	enum gw_coord_vm_state state;
	bool ha;
	uint32_t priority;
	char group[GW_COORD_NAME_MAX]; /* anti-affinity group, "" = none */
	char image[1024];
	uint32_t memory_mib;
	uint32_t vcpus;
	char cmdline[512];
	uint32_t restarts;
	char reason[256];
	char migrate_to[GW_COORD_NAME_MAX]; /* live migration under way to this host, "" = none */
	uint64_t mig_id;		    /* the last MIGRATE_START applied to it */
	char migrate_error[256];	    /* why that migration failed or was refused */
	uint64_t refused_id; /* the last MIGRATE_START refused because one was under way */
	bool migrate_cancel; /* MIGRATE_CANCEL applied to the migration under way */
	char driver[GW_COORD_DRIVER_MAX]; /* "" = microvm, or "libvirt" */
	char *xml;			  /* libvirt: the domain XML (malloc'd), NULL = none */
	bool importing;	    /* libvirt import: its host adopts the domain; no XML until it runs */
	uint32_t cpu_milli; /* load: CPUs in use x 1000 (its host's LOAD messages) */
	uint64_t dirty_pps; /* load: pages written per second, 0 = unknown */
	bool failback;	    /* back to pref_host when it returns (through the balancer) */
	char pref_host[GW_COORD_NAME_MAX]; /* where it was created or placed */
};

/* An affinity rule (`cluster rule add`). kind: GW_COORD_RULE_* (the planner's order). */
enum gw_coord_rule_kind {
	GW_COORD_RULE_AFFINITY = 0,
	GW_COORD_RULE_ANTI_AFFINITY,
	GW_COORD_RULE_VM_HOST,
	GW_COORD_RULE_VM_NOT_HOST,
	GW_COORD_RULE_KINDS
};
struct gw_coord_rule {
	char name[GW_COORD_NAME_MAX];
	enum gw_coord_rule_kind kind;
	bool must;
	char vms[GW_COORD_RULE_VMS][GW_COORD_NAME_MAX];
	size_t n_vms;
	char hosts[GW_COORD_RULE_HOSTS][GW_COORD_NAME_MAX];
	size_t n_hosts;
};

/* One move of a balancing run. */
struct gw_coord_bal_move {
	char vm[GW_COORD_NAME_MAX], from[GW_COORD_NAME_MAX], to[GW_COORD_NAME_MAX];
	char kind[16];	 /* evacuate | fix-must | balance | memory */
	char result[16]; /* planned | running | completed | failed | cancelled | not run */
	char error[256];
	double time_s, downtime_s, data_mib, score, gain, cost, imbalance_after;
	uint64_t mig_id, total_ms;
};

/* The last balancing run (one at a time, cluster-wide) and the planner's history. */
struct gw_coord_balance {
	uint64_t id; /* 0 = none yet */
	char requester[GW_COORD_NAME_MAX];
	bool automatic;
	char state[16];	 /* running | done | failed | balanced */
	char planner[8]; /* drs | memory */
	uint32_t aggressiveness, max_moves;
	double threshold_pct;
	struct gw_coord_bal_move moves[GW_COORD_BAL_MOVES];
	size_t n_moves;
	double imbalance_before, imbalance_after;
	uint64_t started_ms, ended_ms;
	uint64_t refused[GW_COORD_BAL_REFUSED]; /* ring of run ids refused while this one ran */
	size_t n_refused;
	struct gw_coord_bal_past { /* the runs before this one, oldest first (for their askers) */
		uint64_t id;
		char state[16];
		uint32_t n_moves, n_done;
	} past[GW_COORD_BAL_REFUSED];
	size_t n_past;
	char notes[GW_COORD_BAL_NOTES][160];
	size_t n_notes;
	uint64_t hist_round; /* the planner's history (struct gw_plan_history) */
	uint32_t hist_over;
	struct gw_coord_bal_hist {
		char vm[GW_COORD_NAME_MAX];
		uint64_t round;
	} hist[GW_COORD_BAL_HIST];
	size_t n_hist;
};

struct gw_coord_event {
	uint64_t seq;
	uint64_t time_ms;
	char kind[32];
	char host[GW_COORD_NAME_MAX];
	char vm[GW_COORD_NAME_MAX];
	char text[256];
};

/* A deleted VM whose host's agent may still hold a copy. */
struct gw_coord_deleted {
	char name[GW_COORD_NAME_MAX];
	char host[GW_COORD_NAME_MAX];
};

/* Everything every member holds identically. Only the functions below change it. */
struct gw_coord_state {
	struct gw_coord_host hosts[GW_COORD_MAX_HOSTS];
	size_t n_hosts;
	struct gw_coord_vm *vms; /* sorted by name */
	size_t n_vms, cap_vms;
	struct gw_coord_event events[GW_COORD_MAX_EVENTS]; /* ring, oldest first from ev_first */
	size_t ev_first, n_events;
	uint64_t next_event_seq;
	struct gw_coord_deleted deleted[GW_COORD_MAX_DELETED]; /* oldest first */
	size_t n_deleted;
	struct gw_coord_rule rules[GW_COORD_MAX_RULES]; /* sorted by name */
	size_t n_rules;
	struct gw_coord_balance bal;
	char path[4096]; /* durable copy; "" = not persisted (unit tests) */
};

void gw_coord_state_init(struct gw_coord_state *st, const char *path);
void gw_coord_state_free(struct gw_coord_state *st);

/*
 * Apply one delivered CPG message (type, payload) sent by from_nodeid. Deterministic:
 * the same messages in the same order give the same state on every member. Persists the
 * state afterwards (when a path is set). Returns 0, -EBADMSG (undecodable) or
 * -EOPNOTSUPP (unknown type); a well-formed message that does not fit the state is
 * applied as "ignored" with an event, never as an error.
 */
int gw_coord_state_apply(struct gw_coord_state *st, uint16_t type, const uint8_t *payload,
			 size_t len, uint32_t from_nodeid);

/* Apply a CPG membership: known hosts not in nodeids[] that were up become lost. */
void gw_coord_state_members(struct gw_coord_state *st, const uint32_t *nodeids, size_t n,
			    uint64_t time_ms);

/* Encode the whole state as a GwClSnapshot (malloc'd). 0 or -ENOMEM. */
int gw_coord_state_encode(const struct gw_coord_state *st, uint32_t from_nodeid, bool quorate,
			  uint8_t **buf, size_t *len);
/* Replace the state with a decoded GwClSnapshot. 0 or -EBADMSG / -ENOMEM. */
int gw_coord_state_decode(struct gw_coord_state *st, const uint8_t *buf, size_t len);
/* Durable copy: atomic write + fsync of the encoded state; load it back (-ENOENT if none). */
int gw_coord_state_save(const struct gw_coord_state *st);
int gw_coord_state_load(struct gw_coord_state *st);

struct gw_coord_host *gw_coord_host_by_name(struct gw_coord_state *st, const char *name);
struct gw_coord_host *gw_coord_host_by_nodeid(struct gw_coord_state *st, uint32_t nodeid);
struct gw_coord_vm *gw_coord_vm_find(struct gw_coord_state *st, const char *name);

const char *gw_coord_host_state_name(enum gw_coord_host_state s);
const char *gw_coord_vm_state_name(enum gw_coord_vm_state s);

/*
 * Placement (pure): the up host with the most free memory (total minus starting/running
 * VMs placed there) that can hold memory_mib, runs VMs of driver (gw_coord_host_has_driver;
 * NULL or "" = microvm) and holds no active VM of group (unless group is ""); ties go to
 * the lowest node id. backend (NULL or "" = any): only hosts whose VM backend is that one
 * or unknown (a micro-VM live migration's target; ignored for libvirt VMs). Writes its name
 * to out. 0 or -ENOSPC.
 */
int gw_coord_place(const struct gw_coord_state *st, const char *vm_name, uint32_t memory_mib,
		   const char *group, const char *driver, const char *backend, char *out,
		   size_t outlen);
/*
 * Can vm move to host (pure)? 0, or -errno with the reason in why: unknown or not up
 * host, its own host, a host without the VM's driver (-EXDEV), for a micro-VM another VM
 * backend than its host's (-EXDEV: live migration needs the same), anti-affinity, not
 * enough memory (migrating VMs count on both).
 */
int gw_coord_fits(const struct gw_coord_state *st, const struct gw_coord_vm *vm, const char *host,
		  char *why, size_t whylen);
/* Is vm a libvirt VM (driver "libvirt")? Else a micro-VM. */
bool gw_coord_vm_is_libvirt(const struct gw_coord_vm *vm);
/*
 * Does host h run VMs of driver ("" or NULL = microvm) now? A host whose agent listed no
 * drivers (older agent) runs micro-VMs only; otherwise the driver must be listed available.
 */
bool gw_coord_host_has_driver(const struct gw_coord_host *h, const char *driver);
/* Replace vm's XML with a copy of xml (NULL or "" = none). 0 or -ENOMEM / -EMSGSIZE. */
int gw_coord_vm_set_xml(struct gw_coord_vm *vm, const char *xml);
/* Remove vms[i] (frees what it owns). */
void gw_coord_vm_remove(struct gw_coord_state *st, size_t i);

/* The pending HA VM to restart next: highest priority, then name. NULL if none. */
struct gw_coord_vm *gw_coord_next_pending(struct gw_coord_state *st);

/* coord_state_drs.c: balancing messages (LOAD, RULE, BALANCE_START / ABORT), registered in
 * coord_state.c's table; after_migrate follows a run's moves (MIGRATE_START / DONE applied). */
struct ProtobufCMessage;
void gw_coord_apply_load(struct gw_coord_state *st, const struct ProtobufCMessage *m,
			 uint32_t from);
void gw_coord_apply_rule(struct gw_coord_state *st, const struct ProtobufCMessage *m,
			 uint32_t from);
void gw_coord_apply_balance_start(struct gw_coord_state *st, const struct ProtobufCMessage *m,
				  uint32_t from);
void gw_coord_apply_balance_abort(struct gw_coord_state *st, const struct ProtobufCMessage *m,
				  uint32_t from);
void gw_coord_drs_after_migrate(struct gw_coord_state *st, uint16_t type,
				const struct ProtobufCMessage *m);
/* Snapshot parts (coord_state_drs.c): rules and the balancing run, into / from a GwClSnapshot
 * (encode allocates what it hangs on s: free with gw_coord_drs_encode_free). */
struct GwClSnapshot;
int gw_coord_drs_encode(const struct gw_coord_state *st, struct GwClSnapshot *s);
void gw_coord_drs_encode_free(struct GwClSnapshot *s);
int gw_coord_drs_decode(struct gw_coord_state *st, const struct GwClSnapshot *s);
/* r as a GwClRule message whose strings are borrowed from r; names holds
 * GW_COORD_RULE_VMS + GW_COORD_RULE_HOSTS pointers (coord_snapshot_drs.c). */
struct GwClRule;
void gw_coord_rule_encode(const struct gw_coord_rule *r, struct GwClRule *o, char **names);
/* Is there a must anti-affinity rule with both VMs / does a must VM-host rule keep vm off
 * host? (coord_place.c, pure) */
bool gw_coord_rule_clash(const struct gw_coord_state *st, const char *a, const char *b);
bool gw_coord_rule_forbids(const struct gw_coord_state *st, const char *vm, const char *host);
const char *gw_coord_rule_kind_name(enum gw_coord_rule_kind k);
/* Is vm in a must rule that placement honours (anti-affinity, VM-host, VM-not-host)? */
bool gw_coord_rule_binds(const struct gw_coord_state *st, const char *vm);
/* The rule of that name, or NULL (coord_place.c). */
struct gw_coord_rule *gw_coord_rule_find(struct gw_coord_state *st, const char *name);
int gw_coord_rule_kind_parse(const char *s);

/* Shared by coord_state.c and coord_snapshot.c (internal). */
extern const char *const gw_coord_host_names[];
extern const char *const gw_coord_vm_names[];
int gw_coord_parse_name(const char *const *names, size_t n, const char *s);
struct gw_coord_vm *gw_coord_vm_insert(struct gw_coord_state *st, const char *name);
struct gw_coord_host *gw_coord_host_insert(struct gw_coord_state *st, uint32_t nodeid);
/* Append an event to the ring (internal: coord_state.c, coord_state_admin.c). */
void gw_coord_event(struct gw_coord_state *st, uint64_t time_ms, const char *kind, const char *host,
		    const char *vm, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The VM_ADMIN handler (coord_state_admin.c), registered in coord_state.c's table. */
struct ProtobufCMessage;
void gw_coord_apply_vm_admin(struct gw_coord_state *st, const struct ProtobufCMessage *m,
			     uint32_t from);

#endif
