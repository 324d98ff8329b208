/* coord_drs.h -- the DRS planner (coordinator/planner) over the replicated cluster state. */
#ifndef COORD_DRS_H
#define COORD_DRS_H

#include <stdbool.h>
#include <stdint.h>

#include "coord_state.h"

#define GW_COORD_DRS_DEF_LEVEL 3
#define GW_COORD_DRS_DEF_MBPS  1000 /* migration bandwidth of a host that announced none */

struct gw_coord_drs_req {
	int aggressiveness;   /* 1..5 (0: GW_COORD_DRS_DEF_LEVEL) */
	uint32_t max_moves;   /* 0: the level's */
	bool manual;	      /* an operator's run: acts at once when over threshold */
	bool memory;	      /* the memory-only planner of earlier versions (coord_balance.c) */
	double threshold_pct; /* memory: its threshold */
};

struct gw_coord_drs_figs {
	double cpu_cv_before, cpu_cv_after, mem_cv_before, mem_cv_after;
};

/*
 * Plan one balancing round from the state (pure, deterministic: every member computes the
 * same plan from the same state). Writes the moves (result "planned"), notes, imbalance and
 * planner into out and, for the DRS planner, the next history (out->hist*); leaves the
 * run's other fields alone. figs may be NULL. 0 or -ENOMEM / -EINVAL.
 */
int gw_coord_drs_plan(const struct gw_coord_state *st, const struct gw_coord_drs_req *rq,
		      struct gw_coord_balance *out, struct gw_coord_drs_figs *figs);

#endif
