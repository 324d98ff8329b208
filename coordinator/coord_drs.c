/* coord_drs.c -- the DRS planner over the replicated cluster state: the state mapped onto
 * gw_plan's input (hosts, active VMs, rules, anti-affinity groups, failback), the plan mapped
 * back onto a balancing run. Pure: every member computes the same plan. */
#include "coord_drs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_balance.h"
#include "gw_planner.h"

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

static bool vm_active(const struct gw_coord_vm *vm)
{
	return vm->state == GW_CVM_STARTING || vm->state == GW_CVM_RUNNING;
}

static enum gw_plan_host_state host_state(const struct gw_coord_host *h)
{
	switch (h->state) {
	case GW_HOST_UP:
		return h->maintenance ? GW_PLAN_HOST_MAINTENANCE : GW_PLAN_HOST_UP;
	case GW_HOST_MAINTENANCE:
		return GW_PLAN_HOST_MAINTENANCE;
	case GW_HOST_FENCING:
	case GW_HOST_FENCED:
		return GW_PLAN_HOST_FENCED;
	default:
		return GW_PLAN_HOST_DOWN;
	}
}

/* Everything gw_plan borrows, in one allocation set. */
struct drs_in {
	struct gw_plan_input in;
	struct gw_plan_host *hosts;
	struct gw_plan_vm *vms;
	struct gw_plan_rule *rules;
	const char **names; /* rule members */
	size_t n_names;
	char (*rname)[GW_COORD_NAME_MAX + 16];
};

static void drs_in_free(struct drs_in *d)
{
	free(d->hosts);
	free(d->vms);
	free(d->rules);
	free(d->names);
	free(d->rname);
}

static void map_hosts(const struct gw_coord_state *st, struct drs_in *d)
{
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *h = &st->hosts[i];
		struct gw_plan_host *p = &d->hosts[i];
		p->name = h->name;
		p->state = host_state(h);
		p->cpus = h->cpus_milli ? h->cpus_milli / 1000.0 : 1.0;
		p->mem_mib = h->mem_total_mib;
		p->bw_bps = (h->link_mbps ? h->link_mbps : GW_COORD_DRS_DEF_MBPS) * 1e6;
		p->max_in = (uint16_t)h->max_in;
		p->max_out = (uint16_t)h->max_out;
		p->backend = h->vm_backend;
	}
	d->in.hosts = d->hosts;
	d->in.n_hosts = st->n_hosts;
}

static void map_vms(const struct gw_coord_state *st, struct drs_in *d)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_vms; i++) {
		const struct gw_coord_vm *v = &st->vms[i];
		if (!vm_active(v))
			continue;
		struct gw_plan_vm *p = &d->vms[n++];
		p->name = v->name;
		p->host = v->host;
		p->migrate_to = v->migrate_to;
		p->cpu = v->cpu_milli / 1000.0;
		p->mem_mib = v->memory_mib;
		p->dirty_bps = (double)v->dirty_pps * 4096.0;
		if (gw_coord_vm_is_libvirt(v)) /* QEMU migrates between any VMM backends */
			p->backend = GW_PLAN_ANY_BACKEND;
	}
	d->in.vms = d->vms;
	d->in.n_vms = n;
}

static bool is_planned_vm(const struct drs_in *d, const char *name)
{
	for (size_t i = 0; i < d->in.n_vms; i++)
		if (strcmp(d->vms[i].name, name) == 0)
			return true;
	return false;
}

static struct gw_plan_rule *new_rule(struct drs_in *d, const char *prefix, const char *name,
				     enum gw_plan_rule_kind kind, bool must)
{
	size_t k = d->in.n_rules++;
	snprintf(d->rname[k], sizeof(d->rname[k]), "%s%s", prefix, name);
	d->rules[k] = (struct gw_plan_rule){.name = d->rname[k], .kind = kind, .must = must};
	d->rules[k].vms = &d->names[d->n_names];
	return &d->rules[k];
}

/* The operator's rules (members that are not active VMs left out), one must anti-affinity
 * rule per anti-affinity group, one should VM-host rule per failback VM away from home. */
static void map_rules(const struct gw_coord_state *st, struct drs_in *d)
{
	d->in.rules = d->rules;
	for (size_t i = 0; i < st->n_rules; i++) {
		const struct gw_coord_rule *r = &st->rules[i];
		struct gw_plan_rule *p =
		    new_rule(d, "", r->name, (enum gw_plan_rule_kind)r->kind, r->must);
		for (size_t j = 0; j < r->n_vms; j++)
			if (is_planned_vm(d, r->vms[j]))
				d->names[d->n_names++] = r->vms[j], p->n_vms++;
		p->hosts = &d->names[d->n_names];
		for (size_t j = 0; j < r->n_hosts; j++)
			d->names[d->n_names++] = r->hosts[j], p->n_hosts++;
	}
	for (size_t i = 0; i < d->in.n_vms; i++) { /* groups: the first VM of each opens it */
		const struct gw_coord_vm *v =
		    gw_coord_vm_find((struct gw_coord_state *)st, d->vms[i].name);
		bool first = v && v->group[0];
		for (size_t j = 0; first && j < i; j++) {
			const struct gw_coord_vm *w =
			    gw_coord_vm_find((struct gw_coord_state *)st, d->vms[j].name);
			first = !(w && strcmp(w->group, v->group) == 0);
		}
		if (!first)
			continue;
		struct gw_plan_rule *p =
		    new_rule(d, "group:", v->group, GW_PLAN_ANTI_AFFINITY, true);
		for (size_t j = i; j < d->in.n_vms; j++) {
			const struct gw_coord_vm *w =
			    gw_coord_vm_find((struct gw_coord_state *)st, d->vms[j].name);
			if (w && strcmp(w->group, v->group) == 0)
				d->names[d->n_names++] = w->name, p->n_vms++;
		}
	}
	for (size_t i = 0; i < d->in.n_vms; i++) {
		const struct gw_coord_vm *v =
		    gw_coord_vm_find((struct gw_coord_state *)st, d->vms[i].name);
		const struct gw_coord_host *h =
		    v && v->failback && v->pref_host[0]
			? gw_coord_host_by_name((struct gw_coord_state *)st, v->pref_host)
			: NULL;
		if (!h || strcmp(v->host, h->name) == 0 || host_state(h) != GW_PLAN_HOST_UP)
			continue;
		struct gw_plan_rule *p = new_rule(d, "failback:", v->name, GW_PLAN_VM_HOST, false);
		d->names[d->n_names++] = v->name;
		p->n_vms = 1;
		p->hosts = &d->names[d->n_names];
		d->names[d->n_names++] = h->name;
		p->n_hosts = 1;
	}
}

/* One must VM-host rule per VM driver that some up host lacks ("driver:libvirt"): its VMs
 * go only to hosts that run that driver now (gw_coord_host_has_driver). */
static void map_driver_rules(const struct gw_coord_state *st, struct drs_in *d)
{
	static const char *const drivers[] = {"microvm", "libvirt"};
	for (size_t k = 0; k < 2; k++) {
		bool lv = k == 1, lacking = false;
		for (size_t i = 0; i < st->n_hosts; i++)
			lacking |= host_state(&st->hosts[i]) == GW_PLAN_HOST_UP &&
				   !gw_coord_host_has_driver(&st->hosts[i], drivers[k]);
		if (!lacking)
			continue;
		struct gw_plan_rule *p = new_rule(d, "driver:", drivers[k], GW_PLAN_VM_HOST, true);
		for (size_t i = 0; i < d->in.n_vms; i++) {
			const struct gw_coord_vm *v =
			    gw_coord_vm_find((struct gw_coord_state *)st, d->vms[i].name);
			if (v && gw_coord_vm_is_libvirt(v) == lv)
				d->names[d->n_names++] = v->name, p->n_vms++;
		}
		p->hosts = &d->names[d->n_names];
		for (size_t i = 0; i < st->n_hosts; i++)
			if (gw_coord_host_has_driver(&st->hosts[i], drivers[k]))
				d->names[d->n_names++] = st->hosts[i].name, p->n_hosts++;
		if (!p->n_vms) /* no VM of that driver: no rule */
			d->in.n_rules--, d->n_names -= p->n_hosts;
	}
}

static int build_input(const struct gw_coord_state *st, struct drs_in *d)
{
	size_t n_rules = st->n_rules + 2 * st->n_vms + 3;
	size_t n_names = st->n_rules * (GW_COORD_RULE_VMS + GW_COORD_RULE_HOSTS) + 4 * st->n_vms +
			 2 * st->n_hosts + 1;
	memset(d, 0, sizeof(*d));
	d->hosts = calloc(st->n_hosts + 1, sizeof(*d->hosts));
	d->vms = calloc(st->n_vms + 1, sizeof(*d->vms));
	d->rules = calloc(n_rules, sizeof(*d->rules));
	d->names = calloc(n_names, sizeof(*d->names));
	d->rname = calloc(n_rules, sizeof(*d->rname));
	if (!d->hosts || !d->vms || !d->rules || !d->names || !d->rname) {
		drs_in_free(d);
		return -ENOMEM;
	}
	map_hosts(st, d);
	map_vms(st, d);
	map_rules(st, d);
	map_driver_rules(st, d);
	return 0;
}

static void hist_in(const struct gw_coord_balance *b, struct gw_plan_history *h)
{
	h->round = b->hist_round;
	h->over_rounds = b->hist_over;
	h->n_moved = 0;
	for (size_t i = 0; i < b->n_hist && i < GW_PLAN_HIST_MAX; i++) {
		COPY(h->moved[i].vm, b->hist[i].vm);
		h->moved[i].round = b->hist[i].round;
		h->n_moved++;
	}
}

static void result_out(const struct gw_plan_result *r, struct gw_coord_balance *out)
{
	out->n_moves = 0;
	for (size_t i = 0; i < r->n_moves && out->n_moves < GW_COORD_BAL_MOVES; i++) {
		const struct gw_plan_move *m = &r->moves[i];
		struct gw_coord_bal_move *o = &out->moves[out->n_moves++];
		memset(o, 0, sizeof(*o));
		COPY(o->vm, m->vm);
		COPY(o->from, m->from);
		COPY(o->to, m->to);
		COPY(o->kind, gw_plan_move_kind_name(m->kind));
		COPY(o->result, "planned");
		o->time_s = m->time_s;
		o->downtime_s = m->downtime_s;
		o->data_mib = m->data_mib;
		o->score = m->score;
		o->gain = m->gain;
		o->cost = m->cost;
		o->imbalance_after = m->imbalance_after;
	}
	out->n_notes = 0;
	for (size_t i = 0; i < r->n_notes && out->n_notes < GW_COORD_BAL_NOTES; i++)
		snprintf(out->notes[out->n_notes++], sizeof(out->notes[0]), "%s: %s",
			 gw_plan_note_name(r->notes[i].code), r->notes[i].text);
	out->imbalance_before = r->imbalance_before;
	out->imbalance_after = r->imbalance_after;
	out->hist_round = r->history.round;
	out->hist_over = r->history.over_rounds;
	out->n_hist = 0;
	for (size_t i = 0; i < r->history.n_moved && out->n_hist < GW_COORD_BAL_HIST; i++) {
		COPY(out->hist[out->n_hist].vm, r->history.moved[i].vm);
		out->hist[out->n_hist++].round = r->history.moved[i].round;
	}
}

/* The memory-only planner of earlier versions (`--threshold`). */
static int plan_memory(const struct gw_coord_state *st, const struct gw_coord_drs_req *rq,
		       struct gw_coord_balance *out)
{
	struct gw_coord_balance_opts o = {.max_moves = rq->max_moves,
					  .threshold_pct = rq->threshold_pct};
	struct gw_coord_balance_plan *p = malloc(sizeof(*p));
	if (!p || gw_coord_balance_plan(st, &o, p)) {
		free(p);
		return -ENOMEM;
	}
	out->n_moves = 0;
	out->n_notes = 0;
	for (size_t i = 0; i < p->n_moves && i < GW_COORD_BAL_MOVES; i++) {
		struct gw_coord_bal_move *m = &out->moves[out->n_moves++];
		memset(m, 0, sizeof(*m));
		COPY(m->vm, p->moves[i].vm);
		COPY(m->from, p->moves[i].from);
		COPY(m->to, p->moves[i].to);
		COPY(m->kind, "memory");
		COPY(m->result, "planned");
		m->gain = p->moves[i].benefit;
	}
	out->imbalance_before = p->spread_before;
	out->imbalance_after = p->spread_after;
	COPY(out->planner, "memory");
	free(p);
	return 0;
}

int gw_coord_drs_plan(const struct gw_coord_state *st, const struct gw_coord_drs_req *rq,
		      struct gw_coord_balance *out, struct gw_coord_drs_figs *figs)
{
	if (rq->memory)
		return plan_memory(st, rq, out);
	struct drs_in d;
	struct gw_plan_knobs k;
	int r = build_input(st, &d);
	if (r)
		return r;
	gw_planner_knobs_for_aggressiveness(
	    rq->aggressiveness ? rq->aggressiveness : GW_COORD_DRS_DEF_LEVEL, &k);
	if (rq->max_moves)
		k.max_moves =
		    rq->max_moves < GW_COORD_BAL_MOVES ? rq->max_moves : GW_COORD_BAL_MOVES;
	else if (k.max_moves > GW_COORD_BAL_MOVES)
		k.max_moves = GW_COORD_BAL_MOVES;
	struct gw_plan_history *h = malloc(sizeof(*h));
	struct gw_plan_result *res = malloc(sizeof(*res));
	if (!h || !res) {
		r = -ENOMEM;
		goto out;
	}
	hist_in(&st->bal, h);
	if (rq->manual && h->over_rounds + 1 < k.hold) /* an operator's run skips the hold */
		h->over_rounds = k.hold - 1;
	r = gw_plan(&d.in, &k, h, res);
	if (r)
		goto out;
	result_out(res, out);
	COPY(out->planner, "drs");
	if (figs)
		*figs = (struct gw_coord_drs_figs){res->cpu_cv_before, res->cpu_cv_after,
						   res->mem_cv_before, res->mem_cv_after};
out:
	free(h);
	free(res);
	drs_in_free(&d);
	return r;
}
