/* coord_balance.c -- memory rebalancing: plan a short list of live migrations (pure, no I/O). */
#include "coord_balance.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-9

static bool host_counts(const struct gw_coord_host *h)
{
	return h->state == GW_HOST_UP && !h->maintenance && h->mem_total_mib > 0;
}

static bool vm_active(const struct gw_coord_vm *vm)
{
	return vm->state == GW_CVM_STARTING || vm->state == GW_CVM_RUNNING;
}

/* Memory of the active VMs on h or migrating to it (as gw_coord_fits counts them). */
static uint64_t used_on(const struct gw_coord_state *st, const struct gw_coord_host *h)
{
	uint64_t used = 0;
	for (size_t i = 0; i < st->n_vms; i++) {
		const struct gw_coord_vm *vm = &st->vms[i];
		if (vm_active(vm) &&
		    (strcmp(vm->host, h->name) == 0 || strcmp(vm->migrate_to, h->name) == 0))
			used += vm->memory_mib;
	}
	return used;
}

static double pct(uint64_t used, uint64_t total)
{
	return (double)used * 100.0 / (double)total;
}

/* The hosts that count, with their memory used in the (simulated) state. */
struct load {
	const struct gw_coord_host *h;
	uint64_t used;
	double load;
};

static int by_load_desc(const void *x, const void *y)
{
	const struct load *a = x, *b = y;
	if (a->load > b->load + EPS)
		return -1;
	if (b->load > a->load + EPS)
		return 1;
	return strcmp(a->h->name, b->h->name);
}

static size_t loads(const struct gw_coord_state *st, struct load *l)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *h = &st->hosts[i];
		if (!host_counts(h))
			continue;
		l[n].h = h;
		l[n].used = used_on(st, h);
		l[n].load = pct(l[n].used, h->mem_total_mib);
		n++;
	}
	qsort(l, n, sizeof(*l), by_load_desc); /* most loaded first, ties by name */
	return n;
}

/* max - min load with hosts s and t at new loads ls and lt. */
static double spread_with(const struct load *l, size_t n, size_t s, double ls, size_t t, double lt)
{
	double mx = -1, mn = 1e300;
	for (size_t i = 0; i < n; i++) {
		double v = i == s ? ls : i == t ? lt : l[i].load;
		mx = v > mx ? v : mx;
		mn = v < mn ? v : mn;
	}
	return n ? mx - mn : 0;
}

struct cand {
	size_t vm; /* index into the simulated state's VMs */
	size_t s, t;
	double ls, lt, benefit, score;
	bool found;
};

/* Is c better than best? Most benefit per MiB, then the smaller VM, then the name. */
static bool better(const struct gw_coord_state *st, const struct cand *c, const struct cand *best)
{
	if (!best->found)
		return true;
	if (c->score > best->score * (1 + EPS))
		return true;
	if (best->score > c->score * (1 + EPS))
		return false;
	const struct gw_coord_vm *a = &st->vms[c->vm], *b = &st->vms[best->vm];
	if (a->memory_mib != b->memory_mib)
		return a->memory_mib < b->memory_mib;
	return strcmp(a->name, b->name) < 0;
}

/* The best move off source s (l sorted by load, most loaded first), or none. */
static void best_from(const struct gw_coord_state *sim, const bool *moved, const struct load *l,
		      size_t n, size_t s, double threshold, struct cand *best)
{
	double spread = n ? l[0].load - l[n - 1].load : 0;
	char why[256];
	for (size_t i = 0; i < sim->n_vms; i++) {
		const struct gw_coord_vm *vm = &sim->vms[i];
		if (moved[i] || vm->state != GW_CVM_RUNNING || vm->migrate_to[0] ||
		    vm->memory_mib == 0 || strcmp(vm->host, l[s].h->name) != 0)
			continue;
		/* the least loaded host it fits on, ties by name (l is sorted that way) */
		size_t t = n;
		for (size_t k = 0; k < n; k++) {
			if (k == s || l[k].load >= l[s].load - EPS ||
			    (t < n && l[k].load >= l[t].load - EPS))
				continue;
			if (gw_coord_fits(sim, vm, l[k].h->name, why, sizeof(why)) == 0)
				t = k;
		}
		if (t == n)
			continue;
		struct cand c = {.vm = i, .s = s, .t = t, .found = true};
		c.ls = pct(l[s].used - vm->memory_mib, l[s].h->mem_total_mib);
		c.lt = pct(l[t].used + vm->memory_mib, l[t].h->mem_total_mib);
		c.benefit = (l[s].load - l[t].load) - (c.ls > c.lt ? c.ls - c.lt : c.lt - c.ls);
		if (c.benefit <= threshold + EPS ||
		    spread_with(l, n, s, c.ls, t, c.lt) > spread + EPS)
			continue;
		c.score = c.benefit / vm->memory_mib;
		if (better(sim, &c, best))
			*best = c;
	}
}

int gw_coord_balance_plan(const struct gw_coord_state *st, const struct gw_coord_balance_opts *o,
			  struct gw_coord_balance_plan *plan)
{
	unsigned max = o && o->max_moves ? o->max_moves : GW_COORD_BALANCE_DEFAULT_MOVES;
	double threshold = o ? o->threshold_pct : GW_COORD_BALANCE_DEFAULT_THRESHOLD;
	if (max > GW_COORD_BALANCE_MAX_MOVES)
		max = GW_COORD_BALANCE_MAX_MOVES;
	if (!(threshold >= 0))
		threshold = 0;
	memset(plan, 0, sizeof(*plan));

	/* a copy of the state whose VMs the plan moves (events and path are not used) */
	struct gw_coord_state *sim = malloc(sizeof(*sim));
	struct load *l = calloc(GW_COORD_MAX_HOSTS, sizeof(*l));
	bool *moved = calloc(st->n_vms + 1, sizeof(*moved));
	if (sim)
		*sim = *st;
	if (sim && st->n_vms) {
		sim->vms = malloc(st->n_vms * sizeof(*sim->vms));
		if (sim->vms)
			memcpy(sim->vms, st->vms, st->n_vms * sizeof(*sim->vms));
	}
	if (!sim || !l || !moved || (st->n_vms && !sim->vms)) {
		if (sim && st->n_vms)
			free(sim->vms);
		free(sim);
		free(l);
		free(moved);
		return -ENOMEM;
	}
	sim->path[0] = 0;

	size_t n = loads(sim, l);
	plan->spread_before = n ? l[0].load - l[n - 1].load : 0;
	while (plan->n_moves < max && n >= 2) {
		struct cand best = {0};
		for (size_t s = 0; s + 1 < n && !best.found; s++) {
			if (l[s].load - l[n - 1].load <= threshold + EPS)
				break; /* no gap from here down is wide enough */
			best_from(sim, moved, l, n, s, threshold, &best);
		}
		if (!best.found)
			break;
		struct gw_coord_vm *vm = &sim->vms[best.vm];
		struct gw_coord_balance_move *mv = &plan->moves[plan->n_moves++];
		snprintf(mv->vm, sizeof(mv->vm), "%s", vm->name);
		snprintf(mv->from, sizeof(mv->from), "%s", l[best.s].h->name);
		snprintf(mv->to, sizeof(mv->to), "%s", l[best.t].h->name);
		mv->memory_mib = vm->memory_mib;
		mv->from_before = l[best.s].load;
		mv->from_after = best.ls;
		mv->to_before = l[best.t].load;
		mv->to_after = best.lt;
		mv->benefit = best.benefit;
		snprintf(vm->host, sizeof(vm->host), "%s", mv->to);
		moved[best.vm] = true;
		n = loads(sim, l);
	}
	plan->spread_after = n ? l[0].load - l[n - 1].load : 0;

	/* per host, by name: before (the real state) and after (the planned one) */
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *h = &st->hosts[i];
		if (!host_counts(h))
			continue;
		size_t k = plan->n_hosts++;
		while (k > 0 && strcmp(plan->hosts[k - 1].name, h->name) > 0) {
			plan->hosts[k] = plan->hosts[k - 1];
			k--;
		}
		struct gw_coord_balance_host *ph = &plan->hosts[k];
		snprintf(ph->name, sizeof(ph->name), "%s", h->name);
		ph->total_mib = h->mem_total_mib;
		ph->used_before = used_on(st, h);
		ph->used_after = used_on(sim, &sim->hosts[i]);
		ph->load_before = pct(ph->used_before, h->mem_total_mib);
		ph->load_after = pct(ph->used_after, h->mem_total_mib);
	}
	free(sim->vms);
	free(sim);
	free(l);
	free(moved);
	return 0;
}
