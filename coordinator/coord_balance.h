/* coord_balance.h -- memory rebalancing: a pure planner over the cluster state. */
#ifndef COORD_BALANCE_H
#define COORD_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "coord_state.h"

#define GW_COORD_BALANCE_MAX_MOVES	   64
#define GW_COORD_BALANCE_DEFAULT_MOVES	   3
#define GW_COORD_BALANCE_DEFAULT_THRESHOLD 10.0 /* percentage points */

struct gw_coord_balance_opts {
	unsigned max_moves;   /* 1 .. GW_COORD_BALANCE_MAX_MOVES (0: the default) */
	double threshold_pct; /* a move must narrow its hosts' gap by more than this */
};

struct gw_coord_balance_move {
	char vm[GW_COORD_NAME_MAX];
	char from[GW_COORD_NAME_MAX];
	char to[GW_COORD_NAME_MAX];
	uint32_t memory_mib;
	double from_before, from_after; /* load of from, percent of its memory */
	double to_before, to_after;
	double benefit; /* percentage points by which the gap between from and to narrows */
};

/* A host balanced over (up, not in maintenance): memory used before and after the plan. */
struct gw_coord_balance_host {
	char name[GW_COORD_NAME_MAX];
	uint64_t total_mib;
	uint64_t used_before, used_after;
	double load_before, load_after; /* percent */
};

struct gw_coord_balance_plan {
	struct gw_coord_balance_move moves[GW_COORD_BALANCE_MAX_MOVES];
	size_t n_moves;
	struct gw_coord_balance_host hosts[GW_COORD_MAX_HOSTS];
	size_t n_hosts;			    /* sorted by name */
	double spread_before, spread_after; /* max - min load, percentage points */
};

/*
 * Plan memory rebalancing (pure, deterministic). A host's load is the memory of its
 * starting/running VMs (and of those migrating to it) over its total; only up hosts not in
 * maintenance count. Greedy: from the most loaded host with a useful move, the running,
 * non-migrating VM and the least loaded host it fits on (gw_coord_fits: anti-affinity,
 * memory) whose move narrows the gap between the two hosts by more than threshold_pct,
 * without widening the cluster's spread; among those, the most benefit per MiB moved
 * (migration cost ~ memory), then the smaller VM, then the name. Repeated on the planned
 * state, at most max_moves times; a VM moves at most once. A cluster whose spread is at
 * most threshold_pct yields no moves. 0, or -ENOMEM.
 */
int gw_coord_balance_plan(const struct gw_coord_state *st, const struct gw_coord_balance_opts *o,
			  struct gw_coord_balance_plan *plan);

#endif
