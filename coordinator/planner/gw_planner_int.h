/* gw_planner_int.h -- the planner's working state (internal to gw_planner*.c). */
#ifndef GW_PLANNER_INT_H
#define GW_PLANNER_INT_H

#include "gw_migcost.h"
#include "gw_planner.h"

#define PL_NONE UINT32_MAX

struct pl_host {
	const char *name;
	enum gw_plan_host_state state;
	bool bal;		    /* up with capacity: in the imbalance, a possible target */
	double cpus, mem, bw;	    /* capacity (mem in MiB), link bytes/s */
	uint16_t max_in, max_out;   /* slots */
	uint16_t in_used, out_used; /* migrations under way + planned */
	double load_cpu, load_mem;  /* planned state: a migrating VM counts at its target */
	double res_cpu, res_mem;    /* reserved: a migrating VM counts on both ends */
	const char *backend;
	uint32_t head;	     /* first VM on it (planned state), PL_NONE */
	uint32_t stamp, cnt; /* scratch for rule counting */
	bool noted;	     /* a SLOTS note was written */
	bool dry;	     /* balance: none of its VMs had a move worth making */
};

struct pl_vm {
	const char *name;
	uint32_t host;		    /* planned host (PL_NONE: unknown) */
	uint32_t next;		    /* next VM on the same planned host */
	double cpu, mem, dirty, dl; /* CPUs, MiB, bytes/s, downtime limit s */
	const char *backend;
	uint32_t rule_off, rule_n; /* into pl_ws.vm_rules */
	bool migrating, moved, held, noted;
	bool mc_done; /* mc is the prediction at mc_bw */
	double mc_bw;
	struct gw_migcost mc;
};

struct pl_rule {
	const struct gw_plan_rule *src;
	uint32_t mem_off, mem_n;   /* into pl_ws.members (VM indices, sorted) */
	uint32_t host_off, host_n; /* into pl_ws.rhosts (host indices, sorted) */
};

/* One evaluated move. */
struct pl_cand {
	uint32_t v, t;
	int must_d, should_d; /* change of must / should violations */
	double gain, cost, score, imb_after;
	double bw;
	struct gw_migcost mc;
};

enum pl_reject {
	PL_OK = 0,
	PL_REJ_HOST, /* same host, not up, other backend */
	PL_REJ_SLOTS,
	PL_REJ_CAPACITY,
	PL_REJ_MUST,
	PL_REJ_NONCONV,
};

struct pl_ws {
	struct gw_plan_knobs k; /* resolved: defaults filled in, weights normalised */
	struct pl_host *h;
	uint32_t nh;
	struct pl_vm *v;
	uint32_t nv;
	struct pl_rule *r;
	uint32_t nr;
	uint32_t *members, *rhosts, *vm_rules;
	uint32_t *scratch;     /* nv entries */
	struct pl_cand *cands; /* nh + 2 entries: balance candidates of one step */
	uint32_t *tgt;	       /* nh entries: balance targets */
	struct pl_order {
		double p;
		uint32_t i;
	} * order; /* nh entries */
	uint32_t nbal, epoch;
	double look_spent; /* sets of moves the lookahead searched in this plan (estimated) */
	double s1c, s2c, s1m, s2m, imb, cv_c, cv_m;
	uint64_t round;
	struct gw_plan_result *out;
};

/* gw_planner_moves.c */
void pl_sums(struct pl_ws *w);
uint32_t pl_rule_viol(struct pl_ws *w, const struct pl_rule *r);
void pl_viol_totals(struct pl_ws *w, uint32_t *must, uint32_t *should);
enum pl_reject pl_eval(struct pl_ws *w, uint32_t v, uint32_t t, struct pl_cand *c);
void pl_apply(struct pl_ws *w, const struct pl_cand *c, enum gw_plan_move_kind kind);
void pl_evacuate(struct pl_ws *w);
void pl_fix_must(struct pl_ws *w);
void pl_balance(struct pl_ws *w, bool act_balance);
void pl_move_state(struct pl_ws *w, uint32_t v, uint32_t t);
void pl_note_nonconv(struct pl_ws *w, uint32_t v);
void pl_note(struct pl_ws *w, enum gw_plan_note_code code, const char *vm, const char *host,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* gw_planner_lookahead.c: balance with a lookahead on small clusters; a step searches
 * about singles^depth / depth! sets of moves (singles = movable VMs x (up hosts - 1)), at most
 * PL_LOOK_EVALS, and a plan at most PL_LOOK_PLAN_EVALS in all (then the batched greedy). */
#define PL_LOOK_MAX_DEPTH  4
#define PL_LOOK_EVALS	   65536 /* constants, not knobs: every member plans alike */
#define PL_LOOK_PLAN_EVALS 524288
uint32_t pl_look_movable(const struct pl_ws *w); /* VMs the balance phase may move now */
uint32_t pl_look_depth(struct pl_ws *w, uint32_t n, uint32_t left);
uint32_t pl_look_step(struct pl_ws *w, uint32_t depth, uint32_t *held);

#endif
