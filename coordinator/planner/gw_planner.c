/* gw_planner.c -- the planner's entry point: knobs and the aggressiveness mapping, the input
 * brought into canonical (name) order, the hysteresis gate, the history in and out. */
#include "gw_planner_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
/*
 * Aggressiveness, as vSphere DRS's migration threshold (docs/balancing.md):
 *   level | threshold (weighted CV) | hold rounds | margin (score) | balance moves
 *   1     | (0.25: reported only)   | 3           | -              | 0: maintenance and must rules only
 *   2     | 0.25                    | 4           | 0.10           | 4
 *   3     | 0.15                    | 3           | 0.04           | 8   (default)
 *   4     | 0.10                    | 2           | 0.02           | 16
 *   5     | 0.05                    | 1           | 0.005          | 32
 */
/* clang-format on */
void gw_planner_knobs_for_aggressiveness(int level, struct gw_plan_knobs *k)
{
	static const struct {
		double threshold, margin;
		uint32_t hold, max_moves;
	} lv[5] = {{0.25, 1e9, 3, 0},
		   {0.25, 0.10, 4, 4},
		   {0.15, 0.04, 3, 8},
		   {0.10, 0.02, 2, 16},
		   {0.05, 0.005, 1, 32}};
	int i = level < 1 ? 0 : level > 5 ? 4 : level - 1;
	memset(k, 0, sizeof(*k));
	k->w_cpu = 0.5;
	k->w_mem = 0.5;
	k->cv_floor = GW_PLAN_DEF_CV_FLOOR;
	k->threshold = lv[i].threshold;
	k->hold = lv[i].hold;
	k->margin = lv[i].margin;
	k->max_moves = lv[i].max_moves;
	k->cost_per_gib = 0.002;
	k->cost_per_down_s = 0.1;
	k->should_penalty = 0.5;
	k->downtime_s = GW_PLAN_DEF_DOWNTIME_S;
	k->max_rounds = GW_MIGCOST_DEFAULT_ROUNDS;
	k->scan_sources = 32;
	k->scan_targets = 64;
}

static bool finite_nonneg(double x)
{
	return x >= 0 && x <= 1e300;
}

/* Copy the knobs, fill in defaults, check them. 0 or -EINVAL. */
static int resolve_knobs(const struct gw_plan_knobs *in, struct gw_plan_knobs *k)
{
	if (!in) {
		gw_planner_knobs_for_aggressiveness(3, k);
		return 0;
	}
	*k = *in;
	if (!finite_nonneg(k->w_cpu) || !finite_nonneg(k->w_mem) || !finite_nonneg(k->cv_floor) ||
	    !finite_nonneg(k->threshold) || !(k->margin >= -1e300 && k->margin <= 1e300) ||
	    !finite_nonneg(k->cost_per_gib) || !finite_nonneg(k->cost_per_down_s) ||
	    !finite_nonneg(k->should_penalty) || !finite_nonneg(k->downtime_s) ||
	    !finite_nonneg(k->switch_overhead_s))
		return -EINVAL;
	double sum = k->w_cpu + k->w_mem;
	k->w_cpu = sum > 0 ? k->w_cpu / sum : 0.5;
	k->w_mem = sum > 0 ? k->w_mem / sum : 0.5;
	k->hold = k->hold < 1 ? 1 : k->hold > GW_PLAN_MAX_HOLD ? GW_PLAN_MAX_HOLD : k->hold;
	if (k->max_moves > GW_PLAN_MAX_MOVES)
		k->max_moves = GW_PLAN_MAX_MOVES;
	if (k->downtime_s == 0)
		k->downtime_s = GW_PLAN_DEF_DOWNTIME_S;
	if (k->max_rounds == 0)
		k->max_rounds = GW_MIGCOST_DEFAULT_ROUNDS;
	if (k->scan_sources == 0)
		k->scan_sources = 32;
	if (k->scan_targets == 0)
		k->scan_targets = 64;
	return 0;
}

static int name_cmp(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int host_by_name(const void *x, const void *y)
{
	return name_cmp(((const struct pl_host *)x)->name, ((const struct pl_host *)y)->name);
}

static int vm_by_name(const void *x, const void *y)
{
	return name_cmp(((const struct pl_vm *)x)->name, ((const struct pl_vm *)y)->name);
}

static int rule_by_name(const void *x, const void *y)
{
	return name_cmp(((const struct pl_rule *)x)->src->name,
			((const struct pl_rule *)y)->src->name);
}

static int u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

static uint32_t find_host(const struct pl_ws *w, const char *name)
{
	if (!name || !name[0])
		return PL_NONE;
	struct pl_host key = {.name = name};
	const struct pl_host *h = bsearch(&key, w->h, w->nh, sizeof(*w->h), host_by_name);
	return h ? (uint32_t)(h - w->h) : PL_NONE;
}

static uint32_t find_vm(const struct pl_ws *w, const char *name)
{
	struct pl_vm key = {.name = name};
	const struct pl_vm *v = bsearch(&key, w->v, w->nv, sizeof(*w->v), vm_by_name);
	return v ? (uint32_t)(v - w->v) : PL_NONE;
}

static void ws_free(struct pl_ws *w)
{
	free(w->h);
	free(w->v);
	free(w->r);
	free(w->members);
	free(w->rhosts);
	free(w->vm_rules);
	free(w->scratch);
	free(w->tgt);
	free(w->cands);
	free(w->order);
}

/* Hosts and VMs in name order; -EINVAL on a missing or duplicate name. */
static int load_hosts_vms(struct pl_ws *w, const struct gw_plan_input *in)
{
	for (uint32_t i = 0; i < w->nh; i++) {
		const struct gw_plan_host *s = &in->hosts[i];
		struct pl_host *h = &w->h[i];
		if (!s->name || !s->name[0])
			return -EINVAL;
		h->name = s->name;
		h->state = s->state;
		h->cpus = s->cpus;
		h->mem = (double)s->mem_mib;
		h->bw = s->bw_bps > 0 ? s->bw_bps : 0;
		h->max_in = s->max_in ? s->max_in : GW_PLAN_DEF_SLOTS;
		h->max_out = s->max_out ? s->max_out : GW_PLAN_DEF_SLOTS;
		h->backend = s->backend;
		h->bal = s->state == GW_PLAN_HOST_UP && s->cpus > 0 && s->mem_mib > 0;
		h->head = PL_NONE;
	}
	qsort(w->h, w->nh, sizeof(*w->h), host_by_name);
	for (uint32_t i = 0; i < w->nv; i++) {
		const struct gw_plan_vm *s = &in->vms[i];
		struct pl_vm *v = &w->v[i];
		if (!s->name || !s->name[0])
			return -EINVAL;
		v->name = s->name;
		v->cpu = s->cpu > 0 ? s->cpu : 0;
		v->mem = s->mem_mib;
		v->dirty = s->dirty_bps > 0 ? s->dirty_bps : 0;
		v->dl = s->downtime_limit_s > 0 ? s->downtime_limit_s : w->k.downtime_s;
		v->backend = s->backend;
		/* host / migrate_to names are resolved after sorting: keep them in scratch */
		v->host = i;
	}
	qsort(w->v, w->nv, sizeof(*w->v), vm_by_name);
	for (uint32_t i = 1; i < w->nh; i++)
		if (strcmp(w->h[i - 1].name, w->h[i].name) == 0)
			return -EINVAL;
	for (uint32_t i = 1; i < w->nv; i++)
		if (strcmp(w->v[i - 1].name, w->v[i].name) == 0)
			return -EINVAL;
	return 0;
}

/* Place each VM: load at its (planned) host, reservations and slots on both ends of a
 * migration under way. */
static void place_vms(struct pl_ws *w, const struct gw_plan_input *in)
{
	for (uint32_t i = w->nv; i-- > 0;) { /* backwards: host lists come out in name order */
		struct pl_vm *v = &w->v[i];
		const struct gw_plan_vm *s = &in->vms[v->host];
		uint32_t h = find_host(w, s->host), t = find_host(w, s->migrate_to);
		v->host = PL_NONE;
		v->next = PL_NONE;
		if (h == PL_NONE) {
			pl_note(w, GW_PLAN_NOTE_UNKNOWN, v->name, s->host,
				"vm %s: unknown host '%s', left out", v->name,
				s->host ? s->host : "");
			continue;
		}
		if (!v->backend || !v->backend[0])
			v->backend = w->h[h].backend;
		w->h[h].res_cpu += v->cpu;
		w->h[h].res_mem += v->mem;
		if (s->migrate_to && s->migrate_to[0]) {
			v->migrating = true;
			w->h[h].out_used++;
			if (t != PL_NONE) {
				w->h[t].in_used++;
				w->h[t].res_cpu += v->cpu;
				w->h[t].res_mem += v->mem;
				h = t; /* it counts where it is going */
			}
		}
		struct pl_host *ph = &w->h[h];
		v->host = h;
		v->next = ph->head;
		ph->head = i;
		ph->load_cpu += v->cpu;
		ph->load_mem += v->mem;
		if ((ph->state == GW_PLAN_HOST_FENCED || ph->state == GW_PLAN_HOST_DOWN) &&
		    !ph->noted) {
			ph->noted = true;
			pl_note(w, GW_PLAN_NOTE_HOST_DOWN, NULL, ph->name,
				"host %s is %s: its VMs are HA's to restart, not moved", ph->name,
				ph->state == GW_PLAN_HOST_FENCED ? "fenced" : "down");
		}
	}
	for (uint32_t i = 0; i < w->nh; i++)
		w->h[i].noted = false;
}

/* Rules in name order; members and hosts as sorted indices; each VM's rules. */
static int load_rules(struct pl_ws *w, const struct gw_plan_input *in)
{
	size_t nm = 0, nhs = 0;
	for (uint32_t i = 0; i < w->nr; i++) {
		if (!in->rules[i].name || !in->rules[i].name[0])
			return -EINVAL;
		w->r[i].src = &in->rules[i];
		nm += in->rules[i].n_vms;
		nhs += in->rules[i].n_hosts;
	}
	qsort(w->r, w->nr, sizeof(*w->r), rule_by_name);
	for (uint32_t i = 1; i < w->nr; i++)
		if (strcmp(w->r[i - 1].src->name, w->r[i].src->name) == 0)
			return -EINVAL;
	w->members = malloc((nm + 1) * sizeof(*w->members));
	w->rhosts = malloc((nhs + 1) * sizeof(*w->rhosts));
	w->vm_rules = malloc((nm + 1) * sizeof(*w->vm_rules));
	if (!w->members || !w->rhosts || !w->vm_rules)
		return -ENOMEM;
	uint32_t om = 0, oh = 0;
	for (uint32_t i = 0; i < w->nr; i++) {
		struct pl_rule *r = &w->r[i];
		bool unknown = false;
		r->mem_off = om;
		r->host_off = oh;
		for (size_t j = 0; j < r->src->n_vms; j++) {
			uint32_t v = find_vm(w, r->src->vms[j]);
			if (v == PL_NONE || w->v[v].host == PL_NONE)
				unknown = true;
			else
				w->members[om++] = v;
		}
		for (size_t j = 0; j < r->src->n_hosts; j++) {
			uint32_t h = find_host(w, r->src->hosts[j]);
			if (h == PL_NONE)
				unknown = true;
			else
				w->rhosts[oh++] = h;
		}
		r->mem_n = om - r->mem_off;
		r->host_n = oh - r->host_off;
		qsort(w->members + r->mem_off, r->mem_n, sizeof(uint32_t), u32_cmp);
		qsort(w->rhosts + r->host_off, r->host_n, sizeof(uint32_t), u32_cmp);
		if (unknown)
			pl_note(w, GW_PLAN_NOTE_UNKNOWN, NULL, NULL,
				"rule %s names unknown (or unplaced) VMs or hosts: ignored there",
				r->src->name);
		for (uint32_t j = 0; j < r->mem_n; j++)
			w->v[w->members[r->mem_off + j]].rule_n++;
	}
	uint32_t off = 0;
	for (uint32_t v = 0; v < w->nv; v++) {
		w->v[v].rule_off = off;
		off += w->v[v].rule_n;
		w->v[v].rule_n = 0;
	}
	for (uint32_t i = 0; i < w->nr; i++) /* rules in name order for each VM */
		for (uint32_t j = 0; j < w->r[i].mem_n; j++) {
			struct pl_vm *v = &w->v[w->members[w->r[i].mem_off + j]];
			w->vm_rules[v->rule_off + v->rule_n++] = i;
		}
	return 0;
}

static int ws_build(struct pl_ws *w, const struct gw_plan_input *in)
{
	if (in->n_hosts > UINT32_MAX / 2 || in->n_vms > UINT32_MAX / 2 ||
	    in->n_rules > UINT32_MAX / 2)
		return -EINVAL;
	w->nh = (uint32_t)in->n_hosts;
	w->nv = (uint32_t)in->n_vms;
	w->nr = (uint32_t)in->n_rules;
	w->h = calloc(w->nh + 1, sizeof(*w->h));
	w->v = calloc(w->nv + 1, sizeof(*w->v));
	w->r = calloc(w->nr + 1, sizeof(*w->r));
	w->scratch = calloc(w->nv + 1, sizeof(*w->scratch));
	w->order = calloc(w->nh + 1, sizeof(*w->order));
	w->tgt = calloc(w->nh + 1, sizeof(*w->tgt));
	w->cands = calloc(w->nh + 2, sizeof(*w->cands));
	if (!w->h || !w->v || !w->r || !w->scratch || !w->order || !w->tgt || !w->cands)
		return -ENOMEM;
	int r = load_hosts_vms(w, in);
	if (r)
		return r;
	place_vms(w, in);
	for (uint32_t i = 0; i < w->nh; i++)
		w->nbal += w->h[i].bal;
	return load_rules(w, in);
}

static int hist_cmp(const void *x, const void *y)
{
	const struct gw_plan_hist_entry *a = x, *b = y;
	int c = strcmp(a->vm, b->vm);
	if (c)
		return c;
	return a->round > b->round ? -1 : a->round < b->round; /* newest first */
}

/* Mark the VMs moved within the hold window as held. */
static void hist_in(struct pl_ws *w, const struct gw_plan_history *hist)
{
	uint32_t n = hist->n_moved < GW_PLAN_HIST_MAX ? hist->n_moved : GW_PLAN_HIST_MAX;
	for (uint32_t i = 0; i < n; i++) {
		const struct gw_plan_hist_entry *e = &hist->moved[i];
		if (e->round >= w->round || w->round - e->round > w->k.hold)
			continue;
		char name[GW_PLAN_NAME_MAX];
		memcpy(name, e->vm, sizeof(name));
		name[sizeof(name) - 1] = 0;
		uint32_t v = find_vm(w, name);
		if (v != PL_NONE)
			w->v[v].held = true;
	}
}

/* The next history: entries still inside the window next round, plus this round's moves. */
static void hist_out(struct pl_ws *w, const struct gw_plan_history *hist, uint32_t over)
{
	struct gw_plan_history *o = &w->out->history;
	uint32_t n = hist->n_moved < GW_PLAN_HIST_MAX ? hist->n_moved : GW_PLAN_HIST_MAX;
	o->round = w->round;
	o->over_rounds = over;
	for (uint32_t i = 0; i < n && o->n_moved < GW_PLAN_HIST_MAX; i++) {
		const struct gw_plan_hist_entry *e = &hist->moved[i];
		if (e->round < w->round && w->round + 1 - e->round <= w->k.hold) {
			memcpy(o->moved[o->n_moved].vm, e->vm, GW_PLAN_NAME_MAX);
			o->moved[o->n_moved].vm[GW_PLAN_NAME_MAX - 1] = 0;
			o->moved[o->n_moved++].round = e->round;
		}
	}
	for (uint32_t i = 0; i < w->out->n_moves && o->n_moved < GW_PLAN_HIST_MAX; i++) {
		memcpy(o->moved[o->n_moved].vm, w->out->moves[i].vm, GW_PLAN_NAME_MAX);
		o->moved[o->n_moved++].round = w->round;
	}
	qsort(o->moved, o->n_moved, sizeof(*o->moved), hist_cmp);
	uint32_t k = 0;
	for (uint32_t i = 0; i < o->n_moved; i++)
		if (k == 0 || strcmp(o->moved[k - 1].vm, o->moved[i].vm) != 0)
			o->moved[k++] = o->moved[i];
	memset(&o->moved[k], 0, (o->n_moved - k) * sizeof(*o->moved));
	o->n_moved = k;
}

int gw_plan(const struct gw_plan_input *in, const struct gw_plan_knobs *knobs,
	    const struct gw_plan_history *hist, struct gw_plan_result *out)
{
	static const struct gw_plan_history empty;
	struct pl_ws w;
	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.out = out;
	if (!hist)
		hist = &empty;
	int r = resolve_knobs(knobs, &w.k);
	if (r == 0)
		r = ws_build(&w, in);
	if (r) {
		ws_free(&w);
		memset(out, 0, sizeof(*out));
		return r;
	}
	w.round = hist->round + 1;
	hist_in(&w, hist);
	pl_sums(&w);
	out->imbalance_before = w.imb;
	out->cpu_cv_before = w.cv_c;
	out->mem_cv_before = w.cv_m;
	pl_viol_totals(&w, &out->must_before, &out->should_before);
	bool over = w.imb > w.k.threshold;
	uint32_t over_rounds = over ? hist->over_rounds + 1 : 0;

	pl_evacuate(&w);
	pl_fix_must(&w);
	uint32_t must, should;
	pl_viol_totals(&w, &must, &should);
	bool act = over && over_rounds >= w.k.hold;
	if (w.k.max_moves == 0) {
		if (over)
			pl_note(&w, GW_PLAN_NOTE_AGGRESSIVENESS, NULL, NULL,
				"imbalance %.4f over %.4f, but balancing is off (max_moves 0)",
				w.imb, w.k.threshold);
	} else {
		if (!over)
			pl_note(&w, GW_PLAN_NOTE_BALANCED, NULL, NULL,
				"imbalance %.4f is within the threshold %.4f", w.imb,
				w.k.threshold);
		else if (!act)
			pl_note(&w, GW_PLAN_NOTE_HOLDING, NULL, NULL,
				"imbalance %.4f over %.4f for %u of %u rounds: waiting", w.imb,
				w.k.threshold, over_rounds, w.k.hold);
		if (act || should > 0)
			pl_balance(&w, act);
	}
	out->imbalance_after = w.imb;
	out->cpu_cv_after = w.cv_c;
	out->mem_cv_after = w.cv_m;
	pl_viol_totals(&w, &out->must_after, &out->should_after);
	hist_out(&w, hist, over_rounds);
	ws_free(&w);
	return 0;
}

double gw_plan_imbalance(const struct gw_plan_input *in, const struct gw_plan_knobs *k,
			 double *cpu_cv, double *mem_cv)
{
	struct gw_plan_input hv = {
	    .hosts = in->hosts, .n_hosts = in->n_hosts, .vms = in->vms, .n_vms = in->n_vms};
	struct gw_plan_result *out = calloc(1, sizeof(*out));
	struct pl_ws w;
	double imb = NAN;
	memset(&w, 0, sizeof(w));
	w.out = out;
	if (out && resolve_knobs(k, &w.k) == 0 && ws_build(&w, &hv) == 0) {
		pl_sums(&w);
		imb = w.imb;
		if (cpu_cv)
			*cpu_cv = w.cv_c;
		if (mem_cv)
			*mem_cv = w.cv_m;
	}
	ws_free(&w);
	free(out);
	return imb;
}

const char *gw_plan_move_kind_name(enum gw_plan_move_kind k)
{
	static const char *const n[] = {"evacuate", "fix-must", "balance"};
	return (unsigned)k < 3 ? n[k] : "?";
}

const char *gw_plan_note_name(enum gw_plan_note_code c)
{
	static const char *const n[] = {"balanced",	 "holding",   "no-gain",       "max-moves",
					"nonconvergent", "no-target", "held",	       "slots",
					"host-down",	 "unknown",   "aggressiveness"};
	return (unsigned)c < sizeof(n) / sizeof(n[0]) ? n[c] : "?";
}
