/* gw_planner_moves.c -- the planner's inner loop: imbalance, rule deltas, scoring one move,
 * applying it, and the three phases (evacuate, repair must rules, balance). No allocation. */
#include "gw_planner_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB 1073741824.0
#define MIB 1048576.0

void pl_note(struct pl_ws *w, enum gw_plan_note_code code, const char *vm, const char *host,
	     const char *fmt, ...)
{
	struct gw_plan_result *o = w->out;
	if (o->n_notes >= GW_PLAN_MAX_NOTES) {
		o->notes_dropped++;
		return;
	}
	struct gw_plan_note *n = &o->notes[o->n_notes++];
	va_list ap;
	n->code = code;
	snprintf(n->vm, sizeof(n->vm), "%s", vm ? vm : "");
	snprintf(n->host, sizeof(n->host), "%s", host ? host : "");
	va_start(ap, fmt);
	vsnprintf(n->text, sizeof(n->text), fmt, ap);
	va_end(ap);
}

/* The coefficient of variation of n normalised loads (sum s1, sum of squares s2), its mean
 * floored at `floor`: in a nearly idle cluster a few milli-CPUs on one host are no
 * imbalance worth a migration (the plain CV of 0.01, 0, 0 is the maximum, sqrt(2)). */
static double cv(double s1, double s2, uint32_t n, double floor)
{
	if (n == 0)
		return 0;
	double mean = s1 / n, var = s2 / n - mean * mean;
	if (!(var > 0) || !(mean > 0))
		return 0;
	return sqrt(var) / (mean > floor ? mean : floor);
}

static double imb_of(const struct pl_ws *w, double s1c, double s2c, double s1m, double s2m)
{
	return w->k.w_cpu * cv(s1c, s2c, w->nbal, w->k.cv_floor) +
	       w->k.w_mem * cv(s1m, s2m, w->nbal, w->k.cv_floor);
}

/* Recompute the sums of normalised loads (and the imbalance) in host order. */
void pl_sums(struct pl_ws *w)
{
	w->s1c = w->s2c = w->s1m = w->s2m = 0;
	for (uint32_t i = 0; i < w->nh; i++) {
		const struct pl_host *h = &w->h[i];
		if (!h->bal)
			continue;
		double xc = h->load_cpu / h->cpus, xm = h->load_mem / h->mem;
		w->s1c += xc;
		w->s2c += xc * xc;
		w->s1m += xm;
		w->s2m += xm * xm;
	}
	w->cv_c = cv(w->s1c, w->s2c, w->nbal, w->k.cv_floor);
	w->cv_m = cv(w->s1m, w->s2m, w->nbal, w->k.cv_floor);
	w->imb = w->k.w_cpu * w->cv_c + w->k.w_mem * w->cv_m;
}

static bool in_set(const struct pl_ws *w, const struct pl_rule *r, uint32_t h)
{
	const uint32_t *a = w->rhosts + r->host_off;
	uint32_t lo = 0, hi = r->host_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (a[mid] == h)
			return true;
		if (a[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool up(const struct pl_ws *w, uint32_t h)
{
	return h != PL_NONE && w->h[h].state == GW_PLAN_HOST_UP;
}

/*
 * Violations of one rule, counted over up hosts only (a VM on a host in maintenance is
 * leaving it; one on a dead host is HA's): affinity = distinct hosts - 1, anti-affinity =
 * sum over hosts of (members there - 1), VM-host = members off the hosts, VM-not-host =
 * members on them.
 */
uint32_t pl_rule_viol(struct pl_ws *w, const struct pl_rule *r)
{
	const uint32_t *m = w->members + r->mem_off;
	uint32_t n = 0;
	w->epoch++;
	for (uint32_t i = 0; i < r->mem_n; i++) {
		uint32_t h = w->v[m[i]].host;
		if (!up(w, h))
			continue;
		switch (r->src->kind) {
		case GW_PLAN_VM_HOST:
			n += !in_set(w, r, h);
			break;
		case GW_PLAN_VM_NOT_HOST:
			n += in_set(w, r, h);
			break;
		case GW_PLAN_ANTI_AFFINITY:
		case GW_PLAN_AFFINITY:
			if (w->h[h].stamp != w->epoch) {
				w->h[h].stamp = w->epoch;
				n += r->src->kind == GW_PLAN_AFFINITY; /* a new host */
			} else {
				n += r->src->kind == GW_PLAN_ANTI_AFFINITY; /* a second VM there */
			}
			break;
		}
	}
	return r->src->kind == GW_PLAN_AFFINITY && n > 0 ? n - 1 : n;
}

void pl_viol_totals(struct pl_ws *w, uint32_t *must, uint32_t *should)
{
	*must = *should = 0;
	for (uint32_t i = 0; i < w->nr; i++)
		*(w->r[i].src->must ? must : should) += pl_rule_viol(w, &w->r[i]);
}

/* How the violations of rule r change when VM v moves from s to t (t is up). */
static int rule_delta(struct pl_ws *w, const struct pl_rule *r, uint32_t v, uint32_t s, uint32_t t)
{
	bool s_up = up(w, s);
	switch (r->src->kind) {
	case GW_PLAN_VM_HOST:
		return (int)!in_set(w, r, t) - (int)(s_up && !in_set(w, r, s));
	case GW_PLAN_VM_NOT_HOST:
		return (int)in_set(w, r, t) - (int)(s_up && in_set(w, r, s));
	default:
		break;
	}
	const uint32_t *m = w->members + r->mem_off;
	uint32_t a = 0, b = 0, k = 0; /* others on s, on t, distinct up hosts of others */
	w->epoch++;
	for (uint32_t i = 0; i < r->mem_n; i++) {
		uint32_t h = w->v[m[i]].host;
		if (m[i] == v || !up(w, h))
			continue;
		a += h == s;
		b += h == t;
		if (w->h[h].stamp != w->epoch) {
			w->h[h].stamp = w->epoch;
			k++;
		}
	}
	if (r->src->kind == GW_PLAN_ANTI_AFFINITY)
		return (int)(b >= 1) - (int)(s_up && a >= 1);
	uint32_t kb = k + (s_up && a == 0), ka = k + (b == 0);
	return (int)(ka ? ka - 1 : 0) - (int)(kb ? kb - 1 : 0);
}

/* The prediction for v at bandwidth bw, cached for the last bandwidth asked. */
static const struct gw_migcost *migcost(struct pl_ws *w, struct pl_vm *vm, double bw)
{
	if (!vm->mc_done || vm->mc_bw != bw) {
		struct gw_migcost_in in = {.mem_bytes = vm->mem * MIB,
					   .dirty_bps = vm->dirty,
					   .bw_bps = bw,
					   .downtime_limit_s = vm->dl,
					   .max_rounds = w->k.max_rounds,
					   .switch_overhead_s = w->k.switch_overhead_s};
		gw_migcost_predict(&in, &vm->mc);
		vm->mc_done = true;
		vm->mc_bw = bw;
	}
	return &vm->mc;
}

/* Can a VM of backend a live-migrate to a host of backend b? Unknown ("") matches any, and
 * GW_PLAN_ANY_BACKEND (a libvirt VM: QEMU migrates whatever VMM backend the host has) too. */
static bool same_backend(const char *a, const char *b)
{
	return !a || !b || !a[0] || !b[0] || strcmp(a, b) == 0 ||
	       strcmp(a, GW_PLAN_ANY_BACKEND) == 0;
}

/* Imbalance once load (c CPUs, m MiB) moves from host s to host t. */
static double imb_moved(const struct pl_ws *w, uint32_t s, uint32_t t, double c, double m)
{
	double s1c = w->s1c, s2c = w->s2c, s1m = w->s1m, s2m = w->s2m;
	const struct pl_host *hs = &w->h[s], *ht = &w->h[t];
	if (hs->bal) {
		double x0 = hs->load_cpu / hs->cpus, x1 = (hs->load_cpu - c) / hs->cpus;
		double y0 = hs->load_mem / hs->mem, y1 = (hs->load_mem - m) / hs->mem;
		s1c += x1 - x0;
		s2c += x1 * x1 - x0 * x0;
		s1m += y1 - y0;
		s2m += y1 * y1 - y0 * y0;
	}
	double x0 = ht->load_cpu / ht->cpus, x1 = (ht->load_cpu + c) / ht->cpus;
	double y0 = ht->load_mem / ht->mem, y1 = (ht->load_mem + m) / ht->mem;
	s1c += x1 - x0;
	s2c += x1 * x1 - x0 * x0;
	s1m += y1 - y0;
	s2m += y1 * y1 - y0 * y0;
	return imb_of(w, s1c, s2c, s1m, s2m);
}

/*
 * Score moving VM v to host t in the planned state: hard checks first (host, backend,
 * slots, capacity, no must rule worse, convergence), then gain = hosts x imbalance
 * reduction + should_penalty x should violations removed, cost = GiB sent x cost_per_gib +
 * downtime x cost_per_down_s, score = gain - cost.
 */
enum pl_reject pl_eval(struct pl_ws *w, uint32_t v, uint32_t t, struct pl_cand *c)
{
	struct pl_vm *vm = &w->v[v];
	uint32_t s = vm->host;
	const struct pl_host *hs = &w->h[s], *ht = &w->h[t];
	if (t == s || !ht->bal || !same_backend(vm->backend, ht->backend))
		return PL_REJ_HOST;
	if (hs->out_used >= hs->max_out || ht->in_used >= ht->max_in)
		return PL_REJ_SLOTS;
	if (ht->res_mem + vm->mem > ht->mem || ht->res_cpu + vm->cpu > ht->cpus * (1 + 1e-12))
		return PL_REJ_CAPACITY;
	c->v = v;
	c->t = t;
	c->must_d = c->should_d = 0;
	for (uint32_t i = 0; i < vm->rule_n; i++) {
		const struct pl_rule *r = &w->r[w->vm_rules[vm->rule_off + i]];
		int d = rule_delta(w, r, v, s, t);
		if (r->src->must && d > 0)
			return PL_REJ_MUST;
		*(r->src->must ? &c->must_d : &c->should_d) += d;
	}
	double bs = hs->bw / hs->max_out, bt = ht->bw / ht->max_in;
	c->bw = bs < bt ? bs : bt;
	c->mc = *migcost(w, vm, c->bw);
	if (!c->mc.converges)
		return PL_REJ_NONCONV;
	c->imb_after = imb_moved(w, s, t, vm->cpu, vm->mem);
	c->gain = (double)w->nbal * (w->imb - c->imb_after) - w->k.should_penalty * c->should_d;
	c->cost =
	    w->k.cost_per_gib * c->mc.data_bytes / GIB + w->k.cost_per_down_s * c->mc.downtime_s;
	c->score = c->gain - c->cost;
	return PL_OK;
}

static void unlink_vm(struct pl_ws *w, uint32_t v, uint32_t h)
{
	uint32_t *p = &w->h[h].head;
	while (*p != PL_NONE && *p != v)
		p = &w->v[*p].next;
	if (*p == v)
		*p = w->v[v].next;
}

/* The planned state once VM v moves to host t: loads, reservations, slots, its host, the
 * sums (the host lists are the caller's). Shared by pl_apply and the lookahead's trial moves,
 * so a trial scores bit for bit what the move scores once applied. */
void pl_move_state(struct pl_ws *w, uint32_t v, uint32_t t)
{
	struct pl_vm *vm = &w->v[v];
	struct pl_host *hs = &w->h[vm->host], *ht = &w->h[t];
	hs->load_cpu -= vm->cpu;
	hs->load_mem -= vm->mem;
	ht->load_cpu += vm->cpu;
	ht->load_mem += vm->mem;
	ht->res_cpu += vm->cpu; /* the source keeps its share until the migration ends */
	ht->res_mem += vm->mem;
	hs->out_used++;
	ht->in_used++;
	vm->host = t;
	vm->moved = true;
	pl_sums(w);
}

void pl_apply(struct pl_ws *w, const struct pl_cand *c, enum gw_plan_move_kind kind)
{
	struct pl_vm *vm = &w->v[c->v];
	uint32_t s = vm->host, t = c->t;
	struct pl_host *hs = &w->h[s], *ht = &w->h[t];
	unlink_vm(w, c->v, s);
	vm->next = ht->head;
	ht->head = c->v;
	pl_move_state(w, c->v, t);

	struct gw_plan_result *o = w->out;
	struct gw_plan_move *mv = &o->moves[o->n_moves++];
	snprintf(mv->vm, sizeof(mv->vm), "%s", vm->name);
	snprintf(mv->from, sizeof(mv->from), "%s", hs->name);
	snprintf(mv->to, sizeof(mv->to), "%s", ht->name);
	mv->kind = kind;
	mv->rounds = c->mc.rounds;
	mv->time_s = c->mc.time_s;
	mv->downtime_s = c->mc.downtime_s;
	mv->data_mib = c->mc.data_bytes / MIB;
	mv->bw_bps = c->bw;
	mv->gain = c->gain;
	mv->cost = c->cost;
	mv->score = c->score;
	mv->imbalance_after = w->imb;
	o->cost_total += c->cost;
}

/* Forced moves (evacuation, repair): fewer must violations, then fewer should violations,
 * then the higher score, then the lower VM and host index. */
static bool forced_better(const struct pl_cand *c, const struct pl_cand *b, bool have)
{
	if (!have)
		return true;
	if (c->must_d != b->must_d)
		return c->must_d < b->must_d;
	if (c->should_d != b->should_d)
		return c->should_d < b->should_d;
	if (c->score != b->score)
		return c->score > b->score;
	return c->v != b->v ? c->v < b->v : c->t < b->t;
}

/* The best target of v over every host; false if none. *nonconv: some host failed only on
 * convergence. */
static bool best_forced(struct pl_ws *w, uint32_t v, bool must_fix, struct pl_cand *best, bool have,
			bool *nonconv)
{
	struct pl_cand c;
	bool found = false;
	for (uint32_t t = 0; t < w->nh; t++) {
		enum pl_reject r = pl_eval(w, v, t, &c);
		if (r == PL_REJ_NONCONV)
			*nonconv = true;
		if (r != PL_OK || (must_fix && c.must_d >= 0))
			continue;
		if (forced_better(&c, best, have || found)) {
			*best = c;
			found = true;
		}
	}
	return found;
}

static int by_mem_desc(const void *x, const void *y, void *ctx)
{
	const struct pl_ws *w = ctx;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	if (w->v[a].mem != w->v[b].mem)
		return w->v[a].mem > w->v[b].mem ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* Phase 1: every VM on a host in maintenance, biggest first, to its best target. */
void pl_evacuate(struct pl_ws *w)
{
	uint32_t n = 0;
	for (uint32_t h = 0; h < w->nh; h++)
		if (w->h[h].state == GW_PLAN_HOST_MAINTENANCE)
			for (uint32_t v = w->h[h].head; v != PL_NONE; v = w->v[v].next)
				if (!w->v[v].migrating && !w->v[v].moved)
					w->scratch[n++] = v;
	qsort_r(w->scratch, n, sizeof(*w->scratch), by_mem_desc, w);
	for (uint32_t i = 0; i < n && w->out->n_moves < GW_PLAN_MAX_MOVES; i++) {
		uint32_t v = w->scratch[i];
		struct pl_host *hs = &w->h[w->v[v].host];
		struct pl_cand best;
		bool nonconv = false;
		if (hs->out_used >= hs->max_out) {
			if (!hs->noted)
				pl_note(
				    w, GW_PLAN_NOTE_SLOTS, NULL, hs->name,
				    "host %s: %u outgoing migrations (its limit), the rest of its "
				    "evacuation waits",
				    hs->name, hs->max_out);
			hs->noted = true;
			continue;
		}
		if (best_forced(w, v, false, &best, false, &nonconv))
			pl_apply(w, &best, GW_PLAN_MOVE_EVACUATE);
		else if (nonconv)
			pl_note(w, GW_PLAN_NOTE_NONCONVERGENT, w->v[v].name, hs->name,
				"vm %s cannot leave %s (maintenance): its migration would not "
				"converge under %.3f s downtime",
				w->v[v].name, hs->name, w->v[v].dl);
		else
			pl_note(w, GW_PLAN_NOTE_NO_TARGET, w->v[v].name, hs->name,
				"vm %s cannot leave %s (maintenance): no host fits it",
				w->v[v].name, hs->name);
	}
}

/* Phase 2: while a must rule is violated, the move (of a VM in one) that removes the most
 * violations; VMs moved within the hold window wait. */
void pl_fix_must(struct pl_ws *w)
{
	for (;;) {
		struct pl_cand best;
		bool have = false, nonconv = false, violated = false;
		for (uint32_t i = 0; i < w->nr; i++) {
			const struct pl_rule *r = &w->r[i];
			if (!r->src->must || pl_rule_viol(w, r) == 0)
				continue;
			violated = true;
			for (uint32_t j = 0; j < r->mem_n; j++) {
				struct pl_vm *vm = &w->v[w->members[r->mem_off + j]];
				if (vm->migrating || vm->moved || !up(w, vm->host))
					continue;
				if (vm->held) {
					if (!vm->noted)
						pl_note(w, GW_PLAN_NOTE_HELD, vm->name,
							w->h[vm->host].name,
							"vm %s (rule %s) moved within the hold "
							"window: it waits",
							vm->name, r->src->name);
					vm->noted = true;
					continue;
				}
				have |= best_forced(w, w->members[r->mem_off + j], true, &best,
						    have, &nonconv);
			}
		}
		if (!violated)
			return;
		if (!have || w->out->n_moves >= GW_PLAN_MAX_MOVES) {
			pl_note(
			    w, nonconv ? GW_PLAN_NOTE_NONCONVERGENT : GW_PLAN_NOTE_NO_TARGET, NULL,
			    NULL, "%s",
			    nonconv
				? "a must rule stays violated: the moves that would repair it "
				  "would not converge"
				: "a must rule stays violated: no move repairs it now (capacity, "
				  "slots or other rules)");
			return;
		}
		pl_apply(w, &best, GW_PLAN_MOVE_FIX_MUST);
	}
}

static int by_pressure_desc(const void *x, const void *y)
{
	const struct pl_order *a = x, *b = y;
	if (a->p != b->p)
		return a->p > b->p ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Up hosts by weighted load, most loaded first (ties by name); returns how many. */
static uint32_t order_hosts(struct pl_ws *w)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < w->nh; i++) {
		const struct pl_host *h = &w->h[i];
		if (!h->bal)
			continue;
		w->order[n].p =
		    w->k.w_cpu * h->load_cpu / h->cpus + w->k.w_mem * h->load_mem / h->mem;
		w->order[n++].i = i;
	}
	qsort(w->order, n, sizeof(*w->order), by_pressure_desc);
	return n;
}

/* Balance: is c better than best (higher score, then lower VM, then lower host)? */
static bool bal_better(const struct pl_cand *c, const struct pl_cand *b, bool have)
{
	if (!have || c->score != b->score)
		return !have || c->score > b->score;
	return c->v != b->v ? c->v < b->v : c->t < b->t;
}

static int by_score_desc(const void *x, const void *y)
{
	const struct pl_cand *a = x, *b = y;
	return bal_better(a, b, true) ? -1 : bal_better(b, a, true) ? 1 : 0;
}

struct bal_scan {
	uint32_t n;	  /* up hosts in w->order, most loaded first */
	uint32_t nt;	  /* targets: w->tgt[0..nt), the least loaded with a free in-slot
			     (a VM in a violated should rule tries every up host) */
	bool act_balance; /* else only moves that remove should violations */
	uint32_t held;	  /* VMs skipped (moved within the hold window), for the notes */
	uint32_t nc;	  /* w->cands[0..nc): the best move of each group scanned */
	bool have;	  /* the current group's best, in best */
	struct pl_cand best;
};

/* Does c pass as a balance move (a should violation never added; should-only mode: one
 * removed; the margin)? */
static bool bal_ok(const struct pl_ws *w, const struct bal_scan *b, const struct pl_cand *c)
{
	return c->should_d <= 0 && (b->act_balance || c->should_d < 0) && c->score >= w->k.margin;
}

/* Balance: VM v stays, its move would not converge (one note per VM). */
void pl_note_nonconv(struct pl_ws *w, uint32_t v)
{
	struct pl_vm *vm = &w->v[v];
	if (vm->noted)
		return;
	vm->noted = true;
	pl_note(w, GW_PLAN_NOTE_NONCONVERGENT, vm->name, w->h[vm->host].name,
		"vm %s stays on %s: moving it would not converge under %.3f s downtime "
		"(dirty %.1f MiB/s)",
		vm->name, w->h[vm->host].name, vm->dl, vm->dirty / MIB);
}

/* Try every target for VM v; keep the group's best balance move in b. */
static void bal_vm(struct pl_ws *w, uint32_t v, struct bal_scan *b)
{
	struct pl_vm *vm = &w->v[v];
	struct pl_cand c;
	if (vm->migrating || vm->moved || !up(w, vm->host))
		return;
	if (vm->held) {
		b->held++;
		return;
	}
	bool all = false; /* a VM in a violated should rule may go anywhere */
	for (uint32_t i = 0; i < vm->rule_n && !all; i++) {
		const struct pl_rule *r = &w->r[w->vm_rules[vm->rule_off + i]];
		all = !r->src->must && pl_rule_viol(w, r) > 0;
	}
	if (!b->act_balance && !all)
		return;
	bool nonconv = false;
	for (uint32_t j = 0; j < (all ? b->n : b->nt); j++) {
		enum pl_reject r = pl_eval(w, v, all ? w->order[j].i : w->tgt[j], &c);
		nonconv |= r == PL_REJ_NONCONV;
		if (r == PL_OK && bal_ok(w, b, &c) && bal_better(&c, &b->best, b->have)) {
			b->best = c;
			b->have = true;
		}
	}
	if (nonconv)
		pl_note_nonconv(w, v);
}

static void bal_group_end(struct pl_ws *w, struct bal_scan *b)
{
	if (b->have)
		w->cands[b->nc++] = b->best;
	b->have = false;
}

/*
 * The candidates of this step: the best move off each of the scan_sources most loaded hosts
 * (with an out-slot, and not found dry before) and of the VMs in violated should rules, to
 * the scan_targets least loaded hosts; sorted best first. A source with nothing worth moving
 * is dry for the rest of the plan (the scan goes further down the list). Returns how many.
 */
static uint32_t bal_step(struct pl_ws *w, struct bal_scan *b)
{
	b->n = order_hosts(w);
	b->nt = b->nc = b->held = 0;
	b->have = false;
	for (uint32_t j = b->n; j-- > 0 && b->nt < w->k.scan_targets;) {
		const struct pl_host *h = &w->h[w->order[j].i];
		if (h->in_used < h->max_in)
			w->tgt[b->nt++] = w->order[j].i;
	}
	for (uint32_t j = 0, srcs = 0; j < b->n && srcs < w->k.scan_sources; j++) {
		struct pl_host *h = &w->h[w->order[j].i];
		if (h->out_used >= h->max_out || h->dry)
			continue;
		srcs++;
		for (uint32_t v = h->head; v != PL_NONE; v = w->v[v].next)
			bal_vm(w, v, b);
		h->dry = !b->have;
		bal_group_end(w, b);
	}
	for (uint32_t i = 0; i < w->nr; i++) { /* VMs in violated should rules */
		const struct pl_rule *r = &w->r[i];
		if (r->src->must || pl_rule_viol(w, r) == 0)
			continue;
		for (uint32_t j = 0; j < r->mem_n; j++)
			bal_vm(w, w->members[r->mem_off + j], b);
	}
	bal_group_end(w, b);
	qsort(w->cands, b->nc, sizeof(*w->cands), by_score_desc);
	return b->nc;
}

/*
 * Phase 3: batched greedy. act_balance: the imbalance was over threshold for hold rounds
 * (else only should-rule repairs are considered). Each step takes the best move of each
 * source and applies them best first, each re-scored on the state the ones before it left
 * (and dropped if it no longer passes), so the first is the step's best move and every one
 * applied was worth its cost then. Stops at max_moves, when no move scores the margin, or
 * once the imbalance is at most half the threshold.
 */
void pl_balance(struct pl_ws *w, bool act_balance)
{
	struct bal_scan b = {.act_balance = act_balance};
	uint32_t done = 0, applied = 1, movable = pl_look_movable(w); /* less one a move */
	while (applied && done < w->k.max_moves && w->out->n_moves < GW_PLAN_MAX_MOVES) {
		uint32_t left = w->k.max_moves - done, depth = 1;
		if (left > GW_PLAN_MAX_MOVES - w->out->n_moves)
			left = GW_PLAN_MAX_MOVES - w->out->n_moves;
		if (b.act_balance && w->imb > w->k.threshold / 2)
			depth = pl_look_depth(w, movable - done, left);
		if (depth > 1) { /* small cluster: sets of moves, not the best single one */
			applied = pl_look_step(w, depth, &b.held);
			done += applied;
			continue;
		}
		uint32_t n = bal_step(w, &b);
		applied = 0;
		for (uint32_t i = 0; i < n && done < w->k.max_moves; i++) {
			struct pl_cand c;
			if (w->out->n_moves >= GW_PLAN_MAX_MOVES)
				break;
			if (b.act_balance && w->imb <= w->k.threshold / 2)
				b.act_balance = false; /* balanced: should repairs only */
			if (pl_eval(w, w->cands[i].v, w->cands[i].t, &c) != PL_OK ||
			    !bal_ok(w, &b, &c))
				continue;
			pl_apply(w, &c, GW_PLAN_MOVE_BALANCE);
			done++;
			applied++;
		}
	}
	if (!applied && act_balance)
		pl_note(w, GW_PLAN_NOTE_NO_GAIN, NULL, NULL,
			"no further move (or set of moves) scores the margin %.3f (imbalance %.4f)",
			w->k.margin, w->imb);
	if (done == w->k.max_moves && act_balance)
		pl_note(w, GW_PLAN_NOTE_MAX_MOVES, NULL, NULL,
			"stopped at %u balance moves (max_moves); imbalance %.4f", done, w->imb);
	if (b.held)
		pl_note(w, GW_PLAN_NOTE_HELD, NULL, NULL,
			"%u VM(s) left alone: moved within the last %u rounds", b.held, w->k.hold);
}
