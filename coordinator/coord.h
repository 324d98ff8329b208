/* coord.h -- godwit-coordinator: the daemon's context shared by its subsystems. */
#ifndef COORD_H
#define COORD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <corosync/cpg.h>
#include <corosync/votequorum.h>

#include "coord_state.h"

#define GW_COORD_DEFAULT_CONFIG	    "/etc/godwit/godwit.conf"
#define GW_COORD_DEFAULT_SOCKET	    "/run/godwit/coordinator.sock"
#define GW_COORD_DEFAULT_AGENT	    "/run/godwit/agent.sock"
#define GW_COORD_DEFAULT_STATE	    "/var/lib/godwit/coordinator"
#define GW_COORD_MAX_CLIENTS	    64
#define GW_COORD_FENCE_PARAMS	    4096
#define GW_COORD_FENCE_TIMEOUT_S    30
#define GW_COORD_HELLO_PERIOD_MS    10000
#define GW_COORD_HELLO_RETRY_MS	    2000 /* while the agent or one of its drivers is not up */
#define GW_COORD_WATCHDOG_TIMEOUT_S 10
#define GW_COORD_SELFSTOP_MAX	    256 /* HA VMs one host stops when it loses quorum */
#define GW_COORD_SHUTDOWN_TIMEOUT_S 300 /* evacuate_on_shutdown: then the rest are stopped */

/* [fence.HOST]: a fence-agents program and the key=value parameters it gets on stdin. */
struct gw_coord_fence_dev {
	char host[GW_COORD_NAME_MAX];
	char agent[PATH_MAX];
	unsigned timeout_s;
	char params[GW_COORD_FENCE_PARAMS]; /* "key=value\n" lines, in config order */
};

/* [balance] (coord_drs_run.c) */
enum gw_coord_bal_mode { GW_BAL_MANUAL = 0, GW_BAL_OFF, GW_BAL_AUTOMATIC };
struct gw_coord_bal_cfg {
	enum gw_coord_bal_mode mode; /* off: `cluster balance` refused; manual (default) */
	unsigned interval_s;	     /* automatic: a run every interval (default 60) */
	unsigned aggressiveness;     /* 1..5 (default 3) */
	unsigned max_in, max_out;    /* this host's concurrent migrations (default 2 / 2) */
	unsigned cpus_milli;	     /* capacity announced, CPUs x 1000 (0: online CPUs) */
	unsigned link_mbps;	     /* migration bandwidth announced, MB/s (default 1000) */
	unsigned load_period_ms;     /* load sampled and reported every (default 3000) */
};

struct gw_coord_config {
	char node[GW_COORD_NAME_MAX];
	char agent_socket[PATH_MAX];
	char socket[PATH_MAX];
	char state_dir[PATH_MAX];
	struct gw_coord_fence_dev fence[GW_COORD_MAX_HOSTS];
	size_t n_fence;
	char watchdog[PATH_MAX];     /* [coordinator] watchdog = /dev/watchdog, "" = none */
	unsigned watchdog_timeout_s; /* watchdog_timeout (default GW_COORD_WATCHDOG_TIMEOUT_S) */
	char metrics_listen[128];    /* Prometheus endpoint ADDR:PORT, "" = none */
	enum gw_coord_evac_mode {
		GW_EVAC_NO = 0,
		GW_EVAC_YES,	     /* on a system shutdown (systemd says "stopping") */
		GW_EVAC_ALWAYS,	     /* on every SIGTERM */
	} evacuate_on_shutdown;	     /* coord_shutdown.c */
	unsigned shutdown_timeout_s; /* shutdown_timeout (default GW_COORD_SHUTDOWN_TIMEOUT_S) */
	struct gw_coord_bal_cfg bal;
};

/* One godwitctl connection: bytes read so far. */
struct gw_coord_client {
	int fd;
	uint8_t *buf;
	size_t len, cap;
};

/* clang-format off */
/*
 * Fencing of one host, run by the acting member (coord_fence.c).
 *
 *   state \ event | start   | child exit 0      | exit != 0 / timeout / no device | backoff over | host leaves lost/fencing
 *   --------------+---------+-------------------+---------------------------------+--------------+-------------------------
 *   idle          | running | -                 | -                               | -            | -
 *   running       | -       | done (CONFIRMED)  | backoff (FENCE_FAILED)          | -            | -
 *   backoff       | -       | -                 | -                               | running      | idle
 *   watchdog      | -       | -                 | -                               | -            | idle
 *   done          | -       | -                 | -                               | -            | idle (slot freed)
 *
 * Watchdog: a host whose last HELLO announced an armed watchdog (timeout T) is also counted
 * off once 2 x T have passed since this member saw it lost (from any phase but done:
 * CONFIRMED); with no fence device configured for it, start goes to "watchdog" (waiting).
 * A host is never treated as off before its device said so or its watchdog deadline passed:
 * there is no other way out of running/backoff/watchdog but the host coming back (HELLO).
 */
enum gw_coord_fence_phase {
	GW_FENCE_IDLE = 0,
	GW_FENCE_RUNNING,
	GW_FENCE_BACKOFF,
	GW_FENCE_WATCHDOG,
	GW_FENCE_DONE
};
/* clang-format on */

struct gw_coord_fence_run {
	char host[GW_COORD_NAME_MAX];
	enum gw_coord_fence_phase phase;
	pid_t pid;
	unsigned attempt;
	unsigned long long started_ms;	 /* this attempt */
	unsigned long long first_ms;	 /* the first attempt */
	unsigned long long deadline_ms;	 /* kill the child / end of backoff */
	unsigned long long lost_seen_ms; /* this member saw the host lost (watchdog deadline) */
	int out_fd;			 /* child's stdout+stderr, for the event text */
	char out[256];
	size_t out_len;
};

/* A migration's figures from its source agent's progress record (GwMigProgress), shared
 * through CPG (GW_CL_MIG_PROGRESS) for the status page; never part of the cluster state. */
struct gw_coord_mig_fig {
	char vm[GW_COORD_NAME_MAX]; /* "" = free slot */
	char from[GW_COORD_NAME_MAX], to[GW_COORD_NAME_MAX];
	uint64_t id;
	char result[16], phase[16];
	uint32_t round, throttle_pct;
	uint64_t total_ms, bytes, pages_sent, pages_remaining, pages_total, dirty_pps;
	double mbps, expected_downtime_ms, downtime_ms;
	unsigned long long seen_ms; /* monotonic: when this member got it */
};

/* A live migration of a VM of this host, driven by its member (coord_migrate.c). */
struct gw_coord_mig_run {
	char vm[GW_COORD_NAME_MAX]; /* "" = free slot */
	uint64_t id;
	char from[GW_COORD_NAME_MAX], to[GW_COORD_NAME_MAX];
	bool reported;	  /* MIGRATE_DONE sent, waiting for it to be applied */
	bool cancel_sent; /* the agent was asked to cancel it (MIGRATE_CANCEL applied) */
	unsigned errors;  /* status polls in a row that failed */
	unsigned long long next_poll_ms;
	bool has_stats; /* the agent's last progress report, for the event */
	uint64_t total_ms, bytes;
	double downtime_ms;
	struct gw_coord_mig_fig fig;	  /* the last progress record (fig.vm "" = none) */
	unsigned long long next_share_ms; /* its next progress multicast */
};

/* One step of the periodic tick (coord_tick.c). */
struct gw_coord;
typedef void (*gw_coord_step_fn)(struct gw_coord *c);
#define GW_COORD_STEP_SYNCED 1u /* only while this member holds the cluster state */
#define GW_COORD_MAX_STEPS   16
struct gw_coord_step {
	const char *name;
	unsigned flags;
	gw_coord_step_fn fn;
};

struct gw_coord {
	struct gw_coord_config cfg;
	struct gw_coord_step steps[GW_COORD_MAX_STEPS]; /* the tick, in order (coord_tick.c) */
	size_t n_steps;
	struct gw_coord_state st;
	/* corosync (coord_cluster.c) */
	cpg_handle_t cpg;
	votequorum_handle_t vq;
	int cpg_fd, vq_fd;
	bool cpg_ok, vq_ok;
	uint32_t local_nodeid;
	uint32_t members[GW_COORD_MAX_HOSTS];
	size_t n_members;
	bool quorate;
	uint32_t vq_members[GW_COORD_MAX_HOSTS]; /* MEMBER nodes of the last quorum notification */
	size_t n_vq;
	bool views_agree; /* CPG and votequorum describe the same partition (coord_cluster_tick) */
	bool had_quorum;  /* holds state of a quorate partition: CPG == votequorum members, quorate;
			   * cleared when quorum is lost; marks our snapshots as preferred */
	unsigned long long disagree_since_ms;
	bool synced;  /* holds the cluster state: from a snapshot, or it made the first one */
	bool waiting; /* after a membership change, until the first snapshot is delivered */
	unsigned long long wait_since_ms;
	uint8_t *cand; /* first snapshot from a partition without quorum, adopted after 1 s */
	size_t cand_len;
	uint32_t cand_from;
	uint8_t **pending; /* messages delivered while waiting for a snapshot, replayed after */
	size_t *pending_len;
	uint32_t *pending_from;
	size_t n_pending, cap_pending;
	unsigned long long last_hello_ms;
	bool hello_incomplete; /* the last HELLO lacked the agent's facts or a driver */
	/* control API (coord_api.c) */
	int listen_fd;
	struct gw_coord_client clients[GW_COORD_MAX_CLIENTS];
	/* HA (coord_ha.c, coord_fence.c) */
	struct gw_coord_fence_run fence[GW_COORD_MAX_HOSTS];
	char restart_inflight[GW_COORD_NAME_MAX]; /* VM_RESTART sent, not yet applied */
	char local_busy[GW_COORD_MAX_HOSTS][GW_COORD_NAME_MAX]; /* VMs this host is starting */
	/* live migration and maintenance (coord_migrate.c) */
	struct gw_coord_mig_run mig[GW_COORD_MAX_HOSTS];      /* migrations of this host's VMs */
	struct gw_coord_mig_fig progress[GW_COORD_MAX_HOSTS]; /* every member's, coord_progress.c */
	unsigned long long evac_wait_until_ms; /* acting: a message sent, not yet applied */
	uint64_t evac_sent_id;		       /* its MIGRATE_START id, 0 = EVAC_END */
	char evac_sent_host[GW_COORD_NAME_MAX];
	/* self-fencing (coord_selffence.c) */
	int wd_fd;	       /* the watchdog device, -1 = not armed */
	unsigned wd_timeout_s; /* its timeout once armed */
	unsigned long long wd_last_feed_ms, wd_warned_ms;
	bool wd_disarming; /* shutting down: announce no watchdog */
	bool ever_quorate; /* held quorum since it started */
	bool selffenced;   /* no quorum: its HA VMs are stopped */
	unsigned long long started_ms, noquorum_since_ms, selfstop_next_ms;
	char selfstopped[GW_COORD_SELFSTOP_MAX][GW_COORD_NAME_MAX]; /* HA VMs it stopped */
	size_t n_selfstopped;
	unsigned long long reconcile_last_ms; /* coord_reconcile.c */
	unsigned long long watch_last_ms;     /* coord_watch.c */
	unsigned long long admin_last_ms;     /* coord_admin.c: last look at the agent */
	size_t admin_followed;		      /* stopped + deleted VMs of this host then */
	/* graceful shutdown (coord_shutdown.c) */
	int shutdown_phase; /* enum in coord_shutdown.c, 0 = running */
	unsigned long long shutdown_deadline_ms, shutdown_next_ms;
	uint64_t shutdown_evac_id;
	struct gw_coord_drs_run *drs;	      /* coord_drs_run.c: load samples, run executor */
};

/* coord_drs_run.c: the balancer's side of the daemon. A [balance] key (0, -ENOENT unknown,
 * -EINVAL bad value); defaults; the tick step (synced): this host's load, reported as LOAD;
 * the acting member's automatic runs and the moves of the run under way. */
int gw_coord_bal_config(struct gw_coord_bal_cfg *b, const char *key, const char *value);
void gw_coord_bal_defaults(struct gw_coord_bal_cfg *b);
void gw_coord_drs_step(struct gw_coord *c);
/* coord_drs_api.c: GW_CL_API_BALANCE and GW_CL_API_RULE handlers (coord_api.c's table) */
int gw_coord_api_balance(struct gw_coord *c, int fd, const struct ProtobufCMessage *m);
int gw_coord_api_rule(struct gw_coord *c, int fd, const struct ProtobufCMessage *m);

/* coord_cluster.c */
int gw_coord_cluster_init(struct gw_coord *c);
int gw_coord_cluster_dispatch_cpg(struct gw_coord *c);
int gw_coord_cluster_dispatch_vq(struct gw_coord *c);
void gw_coord_cluster_close(struct gw_coord *c);
/* Multicast one message (u16 type | packed msg) to the group, agreed order. 0 or -errno. */
int gw_coord_mcast(struct gw_coord *c, uint16_t type, const void *msg);
/* Lowest node id among the members when quorate, else 0. */
uint32_t gw_coord_acting(const struct gw_coord *c);
/*
 * This member may act (fence, plan restarts): it holds the state, the partition is quorate,
 * it has the lowest node id, and CPG and votequorum agree on the partition (right after a
 * change one may lag the other: an isolated host must not act on a stale "quorate").
 */
bool gw_coord_is_acting(const struct gw_coord *c);
/* nodeid is a member of the quorate partition according to votequorum */
bool gw_coord_vq_member(const struct gw_coord *c, uint32_t nodeid);
/* Announce this host (node name, memory, agent address). */
int gw_coord_hello(struct gw_coord *c);
/* Give up waiting for a snapshot that never came (its sender left): keep our state. */
void gw_coord_cluster_tick(struct gw_coord *c);

/* coord_api.c */
int gw_coord_api_listen(struct gw_coord *c);
void gw_coord_api_accept(struct gw_coord *c);
/* Read from client i; closes it on EOF or error. */
void gw_coord_api_readable(struct gw_coord *c, size_t i);
/* Decode an API request's payload (pure): the unpacked request (free with
 * protobuf_c_message_free_unpacked) or NULL; *name (may be NULL) is the request's name,
 * NULL for an unknown type. */
struct ProtobufCMessage *gw_coord_api_decode(uint16_t type, const uint8_t *p, uint32_t len,
					     const char **name);

/* coord_vmdef.c: the GW_CL_API_VM_CREATE handler (a micro-VM, a libvirt VM from its domain
 * XML, or the import of an existing libvirt domain), in coord_api.c's table. */
struct ProtobufCMessage;
int gw_coord_api_vm_create(struct gw_coord *c, int fd, const struct ProtobufCMessage *m);

/* coord_tick.c: run the registered steps, in registration order, once per loop turn. */
int gw_coord_tick_register(struct gw_coord *c, const char *name, unsigned flags,
			   gw_coord_step_fn fn);
void gw_coord_tick(struct gw_coord *c);

/* coord_ha.c (step, synced): the acting member fences lost hosts and plans restarts; every
 * member starts the VMs placed on it. */
void gw_coord_ha_step(struct gw_coord *c);
/* coord_migrate.c (step, synced): this host's migrations; the acting member evacuates. */
void gw_coord_migrate_step(struct gw_coord *c);
/* coord_cluster.c (step, synced): announce this host every GW_COORD_HELLO_PERIOD_MS. */
void gw_coord_hello_step(struct gw_coord *c);

/* coord_agent.c: requests to this host's agent through the shared client library. */
/* Ask the local agent for its host's memory, listen address, VM backend and VM drivers
 * (backend, drivers may be NULL; drivers has GW_COORD_MAX_DRIVERS entries). 0 or -errno. */
int gw_coord_agent_info(struct gw_coord *c, uint64_t *total_mib, uint64_t *avail_mib, char *listen,
			size_t listen_len, char *backend, size_t backend_len,
			struct gw_coord_driver *drivers, size_t *n_drivers);
/* One request to the local agent (reply GW_MSG_VM_INFO); 0 or -errno with err set. */
int gw_coord_agent_call(struct gw_coord *c, uint16_t type, const void *req, char *err,
			size_t errlen);
/* The same, keeping the reply in *info when info is not NULL (free it with
 * protobuf_c_message_free_unpacked). */
struct GwVmInfo;
int gw_coord_agent_vm_call(struct gw_coord *c, uint16_t type, const void *req,
			   struct GwVmInfo **info, char *err, size_t errlen);
/* Stop VM name through the local agent; a VM it does not run (or know) counts as stopped. */
int gw_coord_agent_stop(struct gw_coord *c, const char *name, char *err, size_t errlen);
/* The local agent's VMs (free with protobuf_c_message_free_unpacked). 0 or -errno. */
struct GwVmList;
int gw_coord_agent_list(struct gw_coord *c, struct GwVmList **out);
/* The same with each running VM's load figures (cpu_time_ns, dirty_rate_pps). */
int gw_coord_agent_list_stats(struct gw_coord *c, struct GwVmList **out);
/* Delete a VM from the local agent (reply GW_MSG_OK); 0 or -errno with err set. */
int gw_coord_agent_delete(struct gw_coord *c, const char *name, char *err, size_t errlen);
/* One migration request to the local agent; the reply is the migration's progress record:
 * its result and error are copied out, and its figures into stats (may be NULL). */
struct ProtobufCMessage;
int gw_coord_agent_mig_call(struct gw_coord *c, uint16_t type, const struct ProtobufCMessage *req,
			    char *result, size_t rlen, char *err, size_t errlen,
			    struct gw_coord_mig_run *stats);

/* coord_selffence.c: quorum loss stops local HA VMs; the watchdog is fed only with quorum. */
void gw_coord_selffence_tick(struct gw_coord *c);
/* Shutdown: announce "no watchdog", then disarm it (or leave it armed, with a warning). */
void gw_coord_selffence_close(struct gw_coord *c);
/* The watchdog timeout this member's HELLO announces (0 = not armed). */
static inline uint32_t gw_coord_watchdog_announce(const struct gw_coord *c)
{
	return c->wd_fd >= 0 && !c->wd_disarming ? c->wd_timeout_s : 0;
}

/* coord_watch.c (step, synced): cluster VMs that crashed on this host are reported. */
void gw_coord_watch_step(struct gw_coord *c);

/* coord_reconcile.c: stale copies of cluster VMs placed elsewhere leave the local agent. */
void gw_coord_reconcile_tick(struct gw_coord *c);

/* coord_admin.c: this host's agent follows operator stops and deletes of cluster VMs. */
void gw_coord_admin_tick(struct gw_coord *c);

/* coord_metrics.c: the GET /metrics text (a gw_metrics_render_fn; ctx = struct gw_coord). */
struct gw_mtext;
void gw_coord_metrics_render(void *ctx, struct gw_mtext *t);

/* coord_progress.c: migration progress shared through CPG, for the status page. */
/* A delivered GW_CL_MIG_PROGRESS payload: kept (newest per VM), never applied to the state. */
void gw_coord_progress_deliver(struct gw_coord *c, const uint8_t *payload, size_t len);
/* The kept record of vm's migration id, or NULL; ended ones stay GW_COORD_PROGRESS_KEEP_MS. */
#define GW_COORD_PROGRESS_KEEP_MS 15000
const struct gw_coord_mig_fig *gw_coord_progress_find(const struct gw_coord *c, const char *vm,
						      uint64_t id);

/* coord_status.c: the status page (GET /) and its JSON (GET /api/state), routes of the
 * metrics endpoint. */
struct gw_metrics_srv;
int gw_coord_status_routes(struct gw_coord *c, struct gw_metrics_srv *srv);

/* coord_shutdown.c: SIGTERM with evacuate_on_shutdown = yes (system shutdown) or always. */
/* Start the graceful stop; false = nothing to wait for (stop now). */
bool gw_coord_shutdown_begin(struct gw_coord *c);
/* Drive it, once per loop turn; true = done (the daemon may stop). */
bool gw_coord_shutdown_step(struct gw_coord *c);
/* Tick step (synced): back from a graceful shutdown that entered maintenance, leave it. */
void gw_coord_shutdown_return_step(struct gw_coord *c);

/* A fresh nonzero id for a migration or an evacuation. */
uint64_t gw_coord_new_id(void);

/* coord_fence.c */
const struct gw_coord_fence_dev *gw_coord_fence_dev(const struct gw_coord *c, const char *host);
/* Drive the fencing of host (start, poll the child, retry). Call every loop turn. */
void gw_coord_fence_step(struct gw_coord *c, struct gw_coord_fence_run *f);
void gw_coord_fence_abort(struct gw_coord_fence_run *f);

#endif
