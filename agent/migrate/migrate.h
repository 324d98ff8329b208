/* migrate.h -- the live-migration engine (pre-copy), source and destination roles.
 *
 * The engine runs in the VMM process of the VM it moves, in a thread of its own. It knows
 * neither KVM ioctls nor sockets: guest RAM, dirty logs, pause/resume and vCPU state come
 * through struct gw_mig_vm_ops (migrate_vmm.c maps them onto the micro-VMM), and the peer
 * through transport/ (struct gw_conn).
 *
 * Pages of chunk c (GW_MIG_CHUNK_PAGES pages) always travel on data stream c % streams, so
 * a newer copy of a page can never overtake an older one (TCP keeps each stream's order).
 */
#ifndef GW_MIGRATE_H
#define GW_MIGRATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_transport.h"
#include "migration.pb-c.h"

#define GW_MIG_VERSION	       1
#define GW_MIG_MAX_STREAMS     16
#define GW_MIG_CHUNK_PAGES     4096u /* 16 MiB of guest RAM per work chunk */
#define GW_MIG_BATCH_MAX_PAGES 256u  /* 1 MiB per page batch */
#define GW_MIG_IOV_BATCHES     32u   /* batches gathered into one sendv */
#define GW_MIG_RESEND_MAX_RUNS 1024u /* page runs a ROUND_ACK may ask to be sent again */
#define GW_MIG_VCPU_STATE_MAX  (64 * 1024)

/*
 * Migration phases (one state machine for both roles, enforced by gw_mig_set_phase):
 *
 *               | begin ok   converged   dest acked   commit sent   error/cancel
 *   ------------+------------------------------------------------------------------
 *   SETUP       | ITERATE    -           -            -             ABORTED
 *   ITERATE     | -          SWITCHOVER  -            -             ABORTED
 *   SWITCHOVER  | -          -           COMMIT       -             ABORTED
 *   COMMIT      | -          -           -            DONE          (stays COMMIT:
 *               |                                                    outcome is decided)
 *   DONE        | terminal
 *   ABORTED     | terminal
 *
 * The destination goes SETUP -> ITERATE (receiving) -> SWITCHOVER (state received,
 * acked: PREPARED) -> COMMIT (commit received) -> DONE (vCPUs running).
 * Before COMMIT the source owns the VM (it resumes on any failure); from COMMIT on, the
 * destination does. The source enters COMMIT only after writing its durable record.
 */
enum gw_mig_phase {
	GW_MIG_SETUP = 0,
	GW_MIG_ITERATE,
	GW_MIG_SWITCHOVER,
	GW_MIG_COMMIT,
	GW_MIG_DONE,
	GW_MIG_ABORTED,
};

enum gw_mig_role { GW_MIG_SOURCE = 1, GW_MIG_DEST = 2 };

/* What the engine needs from a VM. Runs in the engine thread unless said otherwise. */
struct gw_mig_vm_ops {
	uint8_t *(*ram)(void *vm, uint64_t *size);
	/* The first populated byte range of RAM at or after from ([*start, *end)), or -ENXIO
	 * when there is none: never-written RAM is known zero without being read (reading it
	 * would allocate it). */
	int (*ram_extent)(void *vm, uint64_t from, uint64_t *start, uint64_t *end);
	unsigned (*vcpu_count)(void *vm);
	int (*pause)(void *vm);
	int (*resume)(void *vm);
	int (*start)(void *vm); /* destination: run the restored vCPUs */
	int (*dirty_start)(void *vm);
	long (*dirty_sync)(void *vm, uint64_t *bitmap);
	int (*dirty_clear)(void *vm, uint64_t first_page, uint64_t npages, const uint64_t *bitmap);
	int (*dirty_stop)(void *vm);
	int (*set_throttle)(void *vm, unsigned pct);
	int (*vcpu_save)(void *vm, unsigned idx, uint8_t *buf, size_t cap, size_t *len);
	int (*vcpu_restore)(void *vm, unsigned idx, const uint8_t *buf, size_t len);
	const char *(*dirty_mode)(void *vm);
};

struct gw_mig_params {
	char to[128];
	unsigned streams;
	unsigned downtime_ms;
	unsigned bandwidth_mibps; /* 0 = unlimited */
	unsigned timeout_s;
	char transport[8]; /* data streams: "tcp" or "rdma" ("" = tcp) */
};

/* Progress figures, copied out under the lock. */
struct gw_mig_stats {
	enum gw_mig_phase phase;
	int result; /* 0 running, 1 completed, -1 failed, -2 cancelled */
	unsigned round;
	uint64_t started_ms, ended_ms; /* monotonic */
	uint64_t bytes;
	uint64_t pages_sent, pages_zero, pages_remaining, pages_total;
	uint64_t pages_resent; /* source: put back after failing the destination's CRC32C */
	uint64_t dirty_rate_pps;
	double bandwidth_bps; /* last round's, bytes/s */
	double expected_downtime_ms;
	double downtime_ms;
	unsigned throttle_pct;
	uint64_t cpu_ms; /* CPU time of this process (all threads) from start to end */
	char error[256];
};

struct gw_mig_data_sink;

struct gw_tls_ctx;

struct gw_migration {
	/* set before the thread starts, read-only afterwards */
	enum gw_mig_role role;
	uint64_t id;
	char name[64];
	char peer[128];
	struct gw_mig_params params;
	const struct gw_mig_vm_ops *vmops;
	void *vm;
	uint8_t *ram;
	uint64_t ram_pages;
	uint8_t *key;
	size_t keylen;
	struct gw_tls_ctx *tls;	 /* [tls] of the agent (NULL = off); not owned */
	char outcome_dir[4096];	 /* source: commit records; dest: unused */
	char source_listen[128]; /* dest: where to ask for the outcome */
	char node[64];
	GwMigBegin *begin;     /* dest: the BEGIN the agent received (owned) */
	uint64_t paused_at_ns; /* source: CLOCK_MONOTONIC at pause */
	uint64_t deadline_ms;  /* source: CLOCK_MONOTONIC ms when pre-copy must give up */
	uint64_t cpu_start_us; /* process CPU time (getrusage) at gw_mig_init */
	bool abort_sent;       /* destination: ABORT already sent (under conn_lock) */
	bool peer_resends;     /* source: the destination lists pages that failed their CRC
				* in each ROUND_ACK (BEGIN_REPLY.resends_unverified) */

	/* connections: the engine thread owns them; others may only gw_conn_shutdown */
	pthread_mutex_t conn_lock;
	struct gw_conn *ctl;
	struct gw_conn *data[GW_MIG_MAX_STREAMS];
	unsigned nstreams;
	unsigned data_joined;
	pthread_cond_t conn_cond;
	/* destination, RDMA data streams: the VMM's own listener (engine thread creates it,
	 * gw_mig_join closes it), the thread accepting on it, and the connection that thread
	 * is authenticating (under conn_lock; others may only gw_conn_shutdown either) */
	struct gw_conn *data_lst;
	struct gw_conn *data_pending;
	const struct gw_mig_data_sink *data_sink; /* where accepted data streams go */
	bool data_stop; /* under conn_lock: accept no more (the engine is ending) */
	pthread_t accept_thread;
	bool accept_started;

	/* progress: under lock */
	pthread_mutex_t lock;
	struct gw_mig_stats st;

	atomic_bool cancel;
	atomic_bool finished;
	atomic_bool data_done; /* destination: every batch arrived and verified; a data stream
				* ending after this (the source closing it) is not an error */
	pthread_t thread;
	int done_efd; /* eventfd written once the engine has ended */
};

/* Start a source migration thread for vm. Returns 0 (progress via gw_mig_stats) or -errno. */
int gw_mig_source_start(struct gw_migration *m);
/* Create the destination side from a BEGIN; the control connection is handed over. */
int gw_mig_dest_start(struct gw_migration *m, struct gw_conn *ctl);
/* Hand a joined data connection (stream index) to a destination migration. */
int gw_mig_dest_add_stream(struct gw_migration *m, unsigned stream, struct gw_conn *c);
/* Ask a running migration to stop (source: resumes the VM; destination: discards). */
void gw_mig_cancel(struct gw_migration *m);
/* Wait for the thread and free what the engine owns (not m itself). */
void gw_mig_join(struct gw_migration *m);

/* The transport of a migration's data streams ("tcp" when none was named). */
const char *gw_mig_transport(const struct gw_migration *m);

/* ---- shared helpers (migrate.c) ---- */
void gw_mig_init(struct gw_migration *m, enum gw_mig_role role);
int gw_mig_set_phase(struct gw_migration *m, enum gw_mig_phase to);
const char *gw_mig_phase_name(enum gw_mig_phase p);
void gw_mig_fail(struct gw_migration *m, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gw_mig_get_stats(struct gw_migration *m, struct gw_mig_stats *out);
void gw_mig_to_progress(const struct gw_migration *m, const struct gw_mig_stats *st,
			GwMigProgress *p);
const char *gw_mig_result_name(int result);
/* Control messages on a transport connection (same framing as the control API). */
int gw_mig_send(struct gw_conn *c, uint16_t type, const ProtobufCMessage *msg);
int gw_mig_recv(struct gw_conn *c, uint16_t *type, uint8_t **payload, uint32_t *len);

/* Convergence model (pure, unit tested). */
double gw_mig_predict_downtime_ms(uint64_t dirty_pages, double bandwidth_bps);
/* Next throttle step given the last two rounds' remaining pages (0 = leave as is). */
unsigned gw_mig_next_throttle(unsigned cur, uint64_t prev_remaining, uint64_t remaining,
			      double predicted_ms, unsigned limit_ms);
/* Boot id of this machine ("" if unknown): equal boot ids = one CLOCK_MONOTONIC. */
void gw_mig_boot_id(char *buf, size_t len);

#endif
