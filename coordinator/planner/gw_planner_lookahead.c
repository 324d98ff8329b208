/* gw_planner_lookahead.c -- the balance phase's lookahead on small clusters: each step
 * searches every set of 2 to 4 moves (a swap of two VMs between two hosts, a chain, a move
 * that pays only with a second one), not just the best single move. Trial moves are made on
 * the planned state and undone exactly. No allocation. See docs/balancing.md. */
#include "gw_planner_int.h"

#include <string.h>

/* A trial move and what it changed, to undo it bit for bit. */
struct look_undo {
	uint32_t v, s, t;
	struct pl_host hs, ht;
	double s1c, s2c, s1m, s2m, imb, cv_c, cv_m;
};

static void trial_do(struct pl_ws *w, const struct pl_cand *c, struct look_undo *u)
{
	u->v = c->v;
	u->s = w->v[c->v].host;
	u->t = c->t;
	u->hs = w->h[u->s];
	u->ht = w->h[u->t];
	u->s1c = w->s1c, u->s2c = w->s2c, u->s1m = w->s1m, u->s2m = w->s2m;
	u->imb = w->imb, u->cv_c = w->cv_c, u->cv_m = w->cv_m;
	pl_move_state(w, c->v, c->t);
}

static void trial_undo(struct pl_ws *w, const struct look_undo *u)
{
	w->h[u->s] = u->hs;
	w->h[u->t] = u->ht;
	w->v[u->v].host = u->s;
	w->v[u->v].moved = false;
	w->s1c = u->s1c, w->s2c = u->s2c, w->s1m = u->s1m, w->s2m = u->s2m;
	w->imb = u->imb, w->cv_c = u->cv_c, w->cv_m = u->cv_m;
}

/* May the balance phase move VM v now (held: moved within the hold window)? */
static bool movable(const struct pl_ws *w, uint32_t v, bool *held)
{
	const struct pl_vm *vm = &w->v[v];
	bool ok = !vm->migrating && !vm->moved && vm->host != PL_NONE &&
		  w->h[vm->host].state == GW_PLAN_HOST_UP;
	if (held)
		*held = ok && vm->held;
	return ok && !vm->held;
}

uint32_t pl_look_movable(const struct pl_ws *w)
{
	uint32_t n = 0;
	for (uint32_t v = 0; v < w->nv; v++)
		n += movable(w, v, NULL);
	return n;
}

/*
 * The depth of the next step's search, with n VMs movable and at most left moves allowed:
 * the greatest (up to PL_LOOK_MAX_DEPTH) whose sets of moves, about singles^depth / depth!,
 * fit both the step's budget and what is left of the plan's; 1 = no lookahead (the batched
 * greedy). The step's sets are charged to the plan's budget.
 */
uint32_t pl_look_depth(struct pl_ws *w, uint32_t n, uint32_t left)
{
	double singles = (double)n * (w->nbal > 1 ? w->nbal - 1 : 0), sets = 1, cost = 0;
	double room = PL_LOOK_PLAN_EVALS - w->look_spent;
	uint32_t d = 0;
	if (room > PL_LOOK_EVALS)
		room = PL_LOOK_EVALS;
	while (d < PL_LOOK_MAX_DEPTH && d < left && (sets = sets * singles / (d + 1)) <= room) {
		cost = sets;
		d++;
	}
	if (d < 2)
		return 1;
	w->look_spent += cost;
	return d;
}

/* A move the balance phase may make at all, the margin aside: it adds no should violation. */
static bool eval_ok(struct pl_ws *w, uint32_t v, uint32_t t, struct pl_cand *c, enum pl_reject *rej)
{
	enum pl_reject r = pl_eval(w, v, t, c);
	if (rej)
		*rej = r;
	return r == PL_OK && c->should_d <= 0;
}

/* A set of moves, in VM order, and its value: the sum over its moves of score - margin. */
struct look_set {
	struct pl_cand c[PL_LOOK_MAX_DEPTH];
	uint32_t n;
	double value;
};

struct look {
	uint32_t depth;
	struct look_set cur, best; /* best.n == 0: none with value >= 0 yet */
};

/*
 * Extend lk->cur (the moves tried so far, applied as trials) by one move of a VM after
 * from_v, in VM then host order, and recurse; keep the set of the highest value (ties: the
 * first found, so the smaller set and the lower names). Moves scoring under the margin are
 * followed too: a swap's first move often loses on its own.
 */
static void look_dfs(struct pl_ws *w, struct look *lk, uint32_t from_v, double value)
{
	uint32_t d = lk->cur.n;
	for (uint32_t v = from_v; v < w->nv; v++) {
		bool nonconv = false;
		if (!movable(w, v, NULL))
			continue;
		for (uint32_t t = 0; t < w->nh; t++) {
			struct pl_cand *c = &lk->cur.c[d];
			enum pl_reject r;
			if (!eval_ok(w, v, t, c, &r)) {
				nonconv |= r == PL_REJ_NONCONV;
				continue;
			}
			double val = value + (c->score - w->k.margin);
			if (val >= 0 && (lk->best.n == 0 || val > lk->best.value)) {
				lk->best = lk->cur;
				lk->best.n = d + 1;
				lk->best.value = val;
			}
			if (d + 1 < lk->depth) {
				struct look_undo u;
				trial_do(w, c, &u);
				lk->cur.n = d + 1;
				look_dfs(w, lk, v + 1, val);
				lk->cur.n = d;
				trial_undo(w, &u);
			}
		}
		if (d == 0 && nonconv)
			pl_note_nonconv(w, v);
	}
}

/* The next permutation of p[0..n) in lexicographic order; false after the last. */
static bool next_perm(uint8_t *p, uint32_t n)
{
	uint32_t i = n, j = n;
	while (i > 1 && p[i - 2] >= p[i - 1])
		i--;
	if (i <= 1)
		return false;
	while (p[j - 1] <= p[i - 2])
		j--;
	uint8_t x = p[i - 2];
	p[i - 2] = p[j - 1];
	p[j - 1] = x;
	for (uint32_t lo = i - 1, hi = n - 1; lo < hi; lo++, hi--) {
		x = p[lo];
		p[lo] = p[hi];
		p[hi] = x;
	}
	return true;
}

/* Try the set in order p; sc gets each move's score. False if a move no longer passes. */
static bool try_order(struct pl_ws *w, const struct look_set *s, const uint8_t *p, double *sc)
{
	struct look_undo u[PL_LOOK_MAX_DEPTH];
	uint32_t i = 0;
	bool ok = true;
	for (; i < s->n && ok; i++) {
		struct pl_cand c;
		ok = eval_ok(w, s->c[p[i]].v, s->c[p[i]].t, &c, NULL);
		if (ok) {
			sc[i] = c.score;
			trial_do(w, &c, &u[i]);
		}
	}
	for (uint32_t j = ok ? i : i - 1; j-- > 0;)
		trial_undo(w, &u[j]);
	return ok;
}

/* The order to apply the set in (into best): of the orders where every move passes, the one
 * whose scores are the greatest in lexicographic order (the best move first; ties: the
 * first order). The search's own order, VM order, always passes. */
static void apply_order(struct pl_ws *w, const struct look_set *s, uint8_t *best)
{
	uint8_t p[PL_LOOK_MAX_DEPTH];
	double bsc[PL_LOOK_MAX_DEPTH], sc[PL_LOOK_MAX_DEPTH];
	for (uint32_t i = 0; i < s->n; i++)
		best[i] = p[i] = (uint8_t)i;
	try_order(w, s, best, bsc);
	while (next_perm(p, s->n)) {
		uint32_t i = 0;
		if (!try_order(w, s, p, sc))
			continue;
		while (i < s->n && sc[i] == bsc[i])
			i++;
		if (i < s->n && sc[i] > bsc[i]) {
			memcpy(best, p, s->n);
			memcpy(bsc, sc, s->n * sizeof(*sc));
		}
	}
}

/*
 * One balance step with lookahead (depth 2 to 4, from pl_look_depth): the set of up to depth
 * moves of the highest value, sum of (score - margin), is found and ordered best move first;
 * its moves are applied until the ones applied pay their margins together (sum of score -
 * margin >= 0: the first alone when it scores the margin), in this plan; the rest is searched
 * again next step. *held: VMs left alone (hold window). Returns the moves applied.
 */
uint32_t pl_look_step(struct pl_ws *w, uint32_t depth, uint32_t *held)
{
	struct look lk = {.depth = depth};
	*held = 0;
	for (uint32_t v = 0; v < w->nv; v++) {
		bool h;
		movable(w, v, &h);
		*held += h;
	}
	look_dfs(w, &lk, 0, 0);
	if (lk.best.n == 0)
		return 0;
	uint8_t p[PL_LOOK_MAX_DEPTH];
	apply_order(w, &lk.best, p);
	double paid = 0;
	uint32_t n = 0;
	while (n < lk.best.n && (n == 0 || paid < 0)) {
		struct pl_cand c; /* the state of the trial again: the same score */
		const struct pl_cand *m = &lk.best.c[p[n]];
		if (!eval_ok(w, m->v, m->t, &c, NULL))
			break;
		pl_apply(w, &c, GW_PLAN_MOVE_BALANCE);
		paid += c.score - w->k.margin;
		n++;
	}
	return n;
}
