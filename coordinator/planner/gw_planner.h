/* gw_planner.h -- DRS-like balancing planner: a pure, deterministic function from a cluster
 * snapshot (+ its own small history) to an ordered list of live migrations. See docs/balancing.md.
 */
#ifndef GW_PLANNER_H
#define GW_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_PLAN_NAME_MAX       64
#define GW_PLAN_MAX_MOVES      256  /* all kinds together, per plan */
#define GW_PLAN_MAX_NOTES      128  /* reasons for non-moves kept (the rest are counted) */
#define GW_PLAN_MAX_HOLD       16   /* hold rounds (and the no-move-back window) at most */
#define GW_PLAN_HIST_MAX       4096 /* = GW_PLAN_MAX_MOVES * GW_PLAN_MAX_HOLD */
#define GW_PLAN_DEF_SLOTS      2    /* concurrent migrations in and out of a host, by default */
#define GW_PLAN_DEF_DOWNTIME_S 0.3
#define GW_PLAN_DEF_CV_FLOOR   0.02 /* the knobs of every aggressiveness level */
#define GW_PLAN_ANY_BACKEND    "*"  /* a VM that migrates between hosts of any VM backend */

enum gw_plan_host_state {
	GW_PLAN_HOST_UP = 0,
	GW_PLAN_HOST_MAINTENANCE, /* drained: its VMs move away, nothing moves to it */
	GW_PLAN_HOST_FENCED,	  /* its VMs are HA's business, never the planner's */
	GW_PLAN_HOST_DOWN,
};

struct gw_plan_host {
	const char *name; /* unique; the stable key everything is sorted by */
	enum gw_plan_host_state state;
	double cpus;	     /* capacity, in CPUs */
	uint64_t mem_mib;    /* capacity */
	double bw_bps;	     /* migration link bandwidth, bytes/s (shared by its migrations) */
	uint16_t max_in;     /* concurrent incoming migrations (0: GW_PLAN_DEF_SLOTS) */
	uint16_t max_out;    /* concurrent outgoing migrations (0: GW_PLAN_DEF_SLOTS) */
	const char *backend; /* VM backend ("kvm", "process", "libvirt"), NULL or "" = unknown */
};

struct gw_plan_vm {
	const char *name;	/* unique */
	const char *host;	/* the host it runs on (the source while it migrates) */
	const char *migrate_to; /* NULL or "": no migration under way; else its target */
	double cpu;		/* CPUs in use */
	uint32_t mem_mib;
	double dirty_bps;	 /* measured dirty rate, bytes/s */
	double downtime_limit_s; /* 0: the knobs' default */
	const char *backend;	 /* NULL or "": its host's; GW_PLAN_ANY_BACKEND: any */
};

enum gw_plan_rule_kind {
	GW_PLAN_AFFINITY = 0,  /* the VMs run on one host */
	GW_PLAN_ANTI_AFFINITY, /* no two of the VMs on one host */
	GW_PLAN_VM_HOST,       /* the VMs run on one of the hosts */
	GW_PLAN_VM_NOT_HOST,   /* the VMs run on none of the hosts */
};

struct gw_plan_rule {
	const char *name; /* unique */
	enum gw_plan_rule_kind kind;
	bool must; /* must: a hard constraint; else should: a penalty */
	const char *const *vms;
	size_t n_vms;
	const char *const *hosts; /* VM_HOST / VM_NOT_HOST */
	size_t n_hosts;
};

struct gw_plan_input {
	const struct gw_plan_host *hosts;
	size_t n_hosts;
	const struct gw_plan_vm *vms;
	size_t n_vms;
	const struct gw_plan_rule *rules;
	size_t n_rules;
};

struct gw_plan_knobs {
	double w_cpu, w_mem;	/* weights of the two CVs (normalised to sum 1) */
	double cv_floor;	/* least mean a CV divides by (normalised load; 0: plain CV) */
	double threshold;	/* weighted CV above which balancing may start */
	uint32_t hold;		/* rounds over threshold before acting; the no-move-back window */
	double margin;		/* least score of a balance move */
	uint32_t max_moves;	/* balance moves per plan (forced moves: bounded by slots only) */
	double cost_per_gib;	/* score charged per GiB a migration sends (time x bandwidth) */
	double cost_per_down_s; /* score charged per second of predicted downtime */
	double should_penalty;	/* score of one should-rule violation */
	double downtime_s;	/* downtime limit of VMs without their own */
	uint32_t max_rounds;	/* pre-copy rounds (gw_migcost) */
	double switch_overhead_s;
	uint32_t scan_sources; /* balance: most loaded hosts searched per move (0: 32) */
	uint32_t scan_targets; /* balance: least loaded hosts searched per move (0: 64) */
};

enum gw_plan_move_kind {
	GW_PLAN_MOVE_EVACUATE = 0, /* off a host in maintenance */
	GW_PLAN_MOVE_FIX_MUST,	   /* repairs a must rule */
	GW_PLAN_MOVE_BALANCE,
};

struct gw_plan_move {
	char vm[GW_PLAN_NAME_MAX];
	char from[GW_PLAN_NAME_MAX];
	char to[GW_PLAN_NAME_MAX];
	enum gw_plan_move_kind kind;
	uint32_t rounds;   /* predicted pre-copy rounds */
	double time_s;	   /* predicted migration time */
	double downtime_s; /* predicted downtime */
	double data_mib;   /* predicted data sent */
	double bw_bps;	   /* the bandwidth share it was predicted with */
	double gain;	   /* imbalance reduction x hosts, plus should-rule bonus */
	double cost;	   /* migration cost, score units */
	double score;	   /* gain - cost */
	double imbalance_after;
};

enum gw_plan_note_code {
	GW_PLAN_NOTE_BALANCED = 0,   /* imbalance <= threshold */
	GW_PLAN_NOTE_HOLDING,	     /* over threshold, not yet for hold rounds */
	GW_PLAN_NOTE_NO_GAIN,	     /* no move scores at least the margin */
	GW_PLAN_NOTE_MAX_MOVES,	     /* stopped at max_moves */
	GW_PLAN_NOTE_NONCONVERGENT,  /* vm: would not converge under its downtime limit */
	GW_PLAN_NOTE_NO_TARGET,	     /* vm: must leave (or be fixed) and nothing fits */
	GW_PLAN_NOTE_HELD,	     /* vm: moved within the hold window */
	GW_PLAN_NOTE_SLOTS,	     /* host: its migration slots are full; later */
	GW_PLAN_NOTE_HOST_DOWN,	     /* host: fenced/down, its VMs are HA's */
	GW_PLAN_NOTE_UNKNOWN,	     /* vm / rule names an unknown host or VM */
	GW_PLAN_NOTE_AGGRESSIVENESS, /* balancing disabled (max_moves 0) */
};

struct gw_plan_note {
	enum gw_plan_note_code code;
	char vm[GW_PLAN_NAME_MAX];
	char host[GW_PLAN_NAME_MAX];
	char text[192];
};

struct gw_plan_hist_entry {
	char vm[GW_PLAN_NAME_MAX];
	uint64_t round; /* the planning round it was moved in */
};

/* The planner's memory between rounds: passed in, the next one returned in the result. */
struct gw_plan_history {
	uint64_t round;	      /* rounds planned so far; this plan is round + 1 */
	uint32_t over_rounds; /* consecutive rounds with imbalance over threshold */
	uint32_t n_moved;
	struct gw_plan_hist_entry moved[GW_PLAN_HIST_MAX]; /* sorted by vm */
};

struct gw_plan_result {
	struct gw_plan_move moves[GW_PLAN_MAX_MOVES]; /* in the order planned */
	uint32_t n_moves;
	uint32_t n_notes, notes_dropped;
	struct gw_plan_note notes[GW_PLAN_MAX_NOTES];
	double imbalance_before, imbalance_after; /* weighted CV over up hosts */
	double cpu_cv_before, cpu_cv_after, mem_cv_before, mem_cv_after;
	uint32_t must_before, must_after;     /* must-rule violations */
	uint32_t should_before, should_after; /* should-rule violations */
	double cost_total;		      /* sum of the moves' costs */
	struct gw_plan_history history;	      /* to pass to the next round */
};

/*
 * Plan one round. Pure: reads in, knobs and hist (NULL = empty), writes only *out (which
 * holds the next history). Deterministic: the input's order does not matter (everything is
 * sorted by name); the same input gives the same bytes in *out. Phases: evacuate hosts in
 * maintenance, repair must rules, then (hysteresis permitting) balance. 0, -EINVAL
 * (duplicate names, bad knobs) or -ENOMEM. out must not alias the inputs.
 */
int gw_plan(const struct gw_plan_input *in, const struct gw_plan_knobs *knobs,
	    const struct gw_plan_history *hist, struct gw_plan_result *out);

/* The knobs of an aggressiveness level 1..5 (out of range: clamped), like DRS's migration
 * threshold: 1 = only mandatory moves (maintenance, must rules), 5 = act on small gains. */
void gw_planner_knobs_for_aggressiveness(int level, struct gw_plan_knobs *k);

/* Weighted CV of the snapshot's up hosts (as gw_plan measures it); cpu/mem CVs if non-NULL. */
double gw_plan_imbalance(const struct gw_plan_input *in, const struct gw_plan_knobs *k,
			 double *cpu_cv, double *mem_cv);

const char *gw_plan_move_kind_name(enum gw_plan_move_kind k);
const char *gw_plan_note_name(enum gw_plan_note_code c);

#endif
