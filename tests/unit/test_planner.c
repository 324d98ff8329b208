/* test_planner.c -- the balancing planner (coordinator/planner/gw_planner.c): balancing CPU and
 * memory, hysteresis, maintenance, slots, convergence, rules (must / should), backends,
 * aggressiveness, determinism under shuffled input, and a property test over random clusters
 * with drifting load (never a move undone or repeated within the hold window). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_planner.h"

#define MIB  1048576.0
#define MAXH 32
#define MAXV 512
#define MAXR 16

struct cl {
	struct gw_plan_host h[MAXH];
	size_t nh;
	struct gw_plan_vm v[MAXV];
	size_t nv;
	struct gw_plan_rule r[MAXR];
	size_t nr;
	char hn[MAXH][16], vn[MAXV][16], rn[MAXR][16], mig[MAXV][16];
	const char *rv[MAXR][MAXV], *rh[MAXR][MAXH];
};

static struct gw_plan_result *res;

static int setup(void **state)
{
	res = malloc(sizeof(*res));
	return res ? 0 : -1;
}

static int teardown(void **state)
{
	free(res);
	return 0;
}

static size_t host(struct cl *c, const char *name, double cpus, uint64_t mem)
{
	size_t i = c->nh++;
	snprintf(c->hn[i], sizeof(c->hn[i]), "%s", name);
	c->h[i] = (struct gw_plan_host){
	    .name = c->hn[i], .cpus = cpus, .mem_mib = mem, .bw_bps = 1000 * MIB};
	return i;
}

static size_t vm(struct cl *c, const char *name, size_t h, double cpu, uint32_t mem, double dirty)
{
	size_t i = c->nv++;
	snprintf(c->vn[i], sizeof(c->vn[i]), "%s", name);
	c->v[i] = (struct gw_plan_vm){.name = c->vn[i],
				      .host = c->hn[h],
				      .cpu = cpu,
				      .mem_mib = mem,
				      .dirty_bps = dirty * MIB};
	return i;
}

/* A rule over VMs (by index) and hosts (by index, -1 ends). */
static void rule(struct cl *c, const char *name, enum gw_plan_rule_kind kind, bool must,
		 const int *vms, const int *hosts)
{
	size_t i = c->nr++, nv = 0, nh = 0;
	snprintf(c->rn[i], sizeof(c->rn[i]), "%s", name);
	for (; vms && vms[nv] >= 0; nv++)
		c->rv[i][nv] = c->vn[vms[nv]];
	for (; hosts && hosts[nh] >= 0; nh++)
		c->rh[i][nh] = c->hn[hosts[nh]];
	c->r[i] = (struct gw_plan_rule){.name = c->rn[i],
					.kind = kind,
					.must = must,
					.vms = c->rv[i],
					.n_vms = nv,
					.hosts = c->rh[i],
					.n_hosts = nh};
}

static struct gw_plan_input input(const struct cl *c)
{
	return (struct gw_plan_input){.hosts = c->h,
				      .n_hosts = c->nh,
				      .vms = c->v,
				      .n_vms = c->nv,
				      .rules = c->r,
				      .n_rules = c->nr};
}

static size_t vm_index(const struct cl *c, const char *name)
{
	for (size_t i = 0; i < c->nv; i++)
		if (strcmp(c->v[i].name, name) == 0)
			return i;
	fail_msg("no vm %s", name);
	return 0;
}

static size_t host_index(const struct cl *c, const char *name)
{
	for (size_t i = 0; i < c->nh; i++)
		if (strcmp(c->h[i].name, name) == 0)
			return i;
	fail_msg("no host %s", name);
	return 0;
}

/* The migrations finish: each moved VM now runs on its target. */
static void apply(struct cl *c, const struct gw_plan_result *p)
{
	for (uint32_t i = 0; i < p->n_moves; i++) {
		size_t v = vm_index(c, p->moves[i].vm);
		assert_string_equal(c->v[v].host, p->moves[i].from);
		c->v[v].host = c->hn[host_index(c, p->moves[i].to)];
	}
}

static void plan(const struct cl *c, const struct gw_plan_knobs *k, struct gw_plan_history *h)
{
	struct gw_plan_input in = input(c);
	assert_int_equal(gw_plan(&in, k, h, res), 0);
	if (h)
		*h = res->history;
}

static bool host_up(const struct cl *c, const char *name)
{
	return c->h[host_index(c, name)].state == GW_PLAN_HOST_UP;
}

/* Independent count of a rule's violations over up hosts (the planner's definition). */
static unsigned violations(const struct cl *c, const struct gw_plan_rule *r)
{
	unsigned n = 0, distinct = 0;
	for (size_t i = 0; i < r->n_vms; i++) {
		const char *h = c->v[vm_index(c, r->vms[i])].host;
		if (!host_up(c, h))
			continue;
		bool listed = false, seen = false;
		for (size_t j = 0; j < r->n_hosts; j++)
			listed |= strcmp(r->hosts[j], h) == 0;
		for (size_t j = 0; j < i; j++) {
			const char *o = c->v[vm_index(c, r->vms[j])].host;
			seen |= strcmp(o, h) == 0;
		}
		switch (r->kind) {
		case GW_PLAN_VM_HOST:
			n += !listed;
			break;
		case GW_PLAN_VM_NOT_HOST:
			n += listed;
			break;
		case GW_PLAN_ANTI_AFFINITY:
			n += seen;
			break;
		case GW_PLAN_AFFINITY:
			distinct += !seen;
			break;
		}
	}
	return r->kind == GW_PLAN_AFFINITY ? (distinct ? distinct - 1 : 0) : n;
}

static unsigned must_violations(const struct cl *c)
{
	unsigned n = 0;
	for (size_t i = 0; i < c->nr; i++)
		if (c->r[i].must)
			n += violations(c, &c->r[i]);
	return n;
}

/* Memory and CPU of every up host within its capacity. */
static void assert_capacity(const struct cl *c)
{
	for (size_t h = 0; h < c->nh; h++) {
		double cpu = 0, mem = 0;
		for (size_t v = 0; v < c->nv; v++)
			if (strcmp(c->v[v].host, c->h[h].name) == 0) {
				cpu += c->v[v].cpu;
				mem += c->v[v].mem_mib;
			}
		if (mem > (double)c->h[h].mem_mib || cpu > c->h[h].cpus * (1 + 1e-9))
			fail_msg("host %s over capacity: %.2f CPUs / %.0f MiB", c->h[h].name, cpu,
				 mem);
	}
}

static struct gw_plan_knobs knobs(int level)
{
	struct gw_plan_knobs k;
	gw_planner_knobs_for_aggressiveness(level, &k);
	return k;
}

static bool has_note(const struct gw_plan_result *p, enum gw_plan_note_code code, const char *vm)
{
	for (uint32_t i = 0; i < p->n_notes; i++)
		if (p->notes[i].code == code && (!vm || strcmp(p->notes[i].vm, vm) == 0))
			return true;
	return false;
}

/* Four hosts, one hot in CPU and memory: moves off it, the imbalance falls, capacity holds,
 * and a second plan of the result makes no move. */
static void test_relieves_hot_host(void **state)
{
	struct cl c = {0};
	for (int i = 0; i < 4; i++) {
		char n[8];
		snprintf(n, sizeof(n), "h%d", i);
		host(&c, n, 16, 65536);
	}
	for (int i = 0; i < 8; i++) {
		char n[8];
		snprintf(n, sizeof(n), "hot%d", i);
		vm(&c, n, 0, 1.5, 6144, 1);
	}
	for (int i = 1; i < 4; i++) {
		char n[8];
		snprintf(n, sizeof(n), "c%d", i);
		vm(&c, n, (size_t)i, 1.5, 6144, 1);
	}
	struct gw_plan_knobs k = knobs(5);
	struct gw_plan_history h = {0};
	plan(&c, &k, &h);
	assert_true(res->imbalance_before > 0.5);
	assert_int_equal(res->n_moves, 2); /* h0's out-slots */
	assert_true(res->imbalance_after < res->imbalance_before);
	for (uint32_t i = 0; i < res->n_moves; i++) {
		assert_string_equal(res->moves[i].from, "h0");
		assert_int_equal(res->moves[i].kind, GW_PLAN_MOVE_BALANCE);
		assert_true(res->moves[i].score >= k.margin);
		assert_true(res->moves[i].time_s > 0 && res->moves[i].downtime_s <= 0.3);
	}
	apply(&c, res);
	assert_capacity(&c);
	for (int r = 0; r < 6; r++) {
		plan(&c, &k, &h);
		apply(&c, res);
		assert_capacity(&c);
	}
	/* 11 equal VMs on 4 equal hosts: 3, 3, 3, 2 is the best there is (CV 0.157) */
	assert_true(res->imbalance_after < 0.158);
	/* settled: more rounds make no move */
	for (int r = 0; r < 4; r++) {
		plan(&c, &k, &h);
		assert_int_equal(res->n_moves, 0);
	}
}

/*
 * Lookahead: no single move pays, a swap does. a runs x (4 CPUs) and a VM pinned there (6
 * CPUs, dirtying 4x its link share: it never converges), b runs y (2 CPUs) and a pinned VM of
 * 4 CPUs; memory is the same on both. Moving x alone only mirrors the imbalance (10 / 6 CPUs
 * becomes 6 / 10) and costs; moving y makes it worse; swapping x and y gives 8 / 8, the
 * optimum. The planner makes the pair in one plan, x first (the better move of the two), though
 * x alone scores under the margin. With one move allowed it makes none.
 */
static void test_lookahead_swap(void **state)
{
	struct cl c = {0};
	size_t a = host(&c, "a", 16, 65536), b = host(&c, "b", 16, 65536);
	vm(&c, "pin-a", a, 6, 8192, 2000);
	vm(&c, "pin-b", b, 4, 8192, 2000);
	vm(&c, "x", a, 4, 2048, 1);
	vm(&c, "y", b, 2, 2048, 1);
	struct gw_plan_knobs k = knobs(5);
	struct gw_plan_history h = {0};
	plan(&c, &k, &h);
	assert_true(res->imbalance_before > 0.12);
	assert_int_equal(res->n_moves, 2);
	assert_string_equal(res->moves[0].vm, "x");
	assert_string_equal(res->moves[0].to, "b");
	assert_string_equal(res->moves[1].vm, "y");
	assert_string_equal(res->moves[1].to, "a");
	assert_true(res->moves[0].score < k.margin); /* pays only with its follow-up */
	assert_true(res->moves[0].score + res->moves[1].score >= 2 * k.margin);
	assert_true(res->imbalance_after < 1e-6);
	assert_int_equal(res->must_after, 0);
	apply(&c, res);
	assert_capacity(&c);
	plan(&c, &k, &h); /* balanced: no move, and x and y are held anyway */
	assert_int_equal(res->n_moves, 0);
	/* one move allowed: no pair, and no single move scores the margin */
	struct cl d = {0};
	a = host(&d, "a", 16, 65536), b = host(&d, "b", 16, 65536);
	vm(&d, "pin-a", a, 6, 8192, 2000);
	vm(&d, "pin-b", b, 4, 8192, 2000);
	vm(&d, "x", a, 4, 2048, 1);
	vm(&d, "y", b, 2, 2048, 1);
	k.max_moves = 1;
	plan(&d, &k, NULL);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_NO_GAIN, NULL));
	assert_true(has_note(res, GW_PLAN_NOTE_NONCONVERGENT, "pin-a"));
}

/* Hysteresis: nothing until the imbalance has stayed over threshold for hold rounds; a
 * balanced cluster gives no move and a "balanced" note. */
static void test_hysteresis(void **state)
{
	struct cl c = {0};
	host(&c, "a", 8, 16384);
	host(&c, "b", 8, 16384);
	vm(&c, "v1", 0, 2, 4096, 0);
	vm(&c, "v2", 0, 2, 4096, 0);
	struct gw_plan_knobs k = knobs(3); /* hold 3 */
	struct gw_plan_history h = {0};
	for (uint32_t r = 1; r < k.hold; r++) {
		plan(&c, &k, &h);
		assert_int_equal(res->n_moves, 0);
		assert_true(has_note(res, GW_PLAN_NOTE_HOLDING, NULL));
		assert_int_equal(h.over_rounds, r);
	}
	plan(&c, &k, &h);
	assert_int_equal(res->n_moves, 1);
	assert_int_equal(h.over_rounds, k.hold);
	assert_int_equal(h.n_moved, 1);
	apply(&c, res);
	plan(&c, &k, &h);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_BALANCED, NULL));
	/* a dip below threshold restarts the count */
	struct gw_plan_history h2 = {.over_rounds = 2};
	plan(&c, &k, &h2);
	assert_int_equal(h2.over_rounds, 0);
	/* aggressiveness 1: never balances, says why */
	struct cl d = {0};
	host(&d, "a", 8, 16384);
	host(&d, "b", 8, 16384);
	vm(&d, "v1", 0, 4, 8192, 0);
	vm(&d, "v2", 0, 4, 8192, 0);
	struct gw_plan_knobs k1 = knobs(1);
	struct gw_plan_history h1 = {0};
	for (int r = 0; r < 5; r++) {
		plan(&d, &k1, &h1);
		assert_int_equal(res->n_moves, 0);
		assert_true(has_note(res, GW_PLAN_NOTE_AGGRESSIVENESS, NULL));
	}
}

/* The aggressiveness levels: thresholds and margins fall, moves rise, hold shortens. */
static void test_aggressiveness_mapping(void **state)
{
	struct gw_plan_knobs prev = knobs(2);
	assert_int_equal(knobs(1).max_moves, 0);
	assert_int_equal(knobs(0).max_moves, 0); /* clamped */
	assert_int_equal(knobs(9).max_moves, knobs(5).max_moves);
	for (int l = 3; l <= 5; l++) {
		struct gw_plan_knobs k = knobs(l);
		assert_true(k.threshold < prev.threshold);
		assert_true(k.margin < prev.margin);
		assert_true(k.max_moves > prev.max_moves);
		assert_true(k.hold <= prev.hold);
		prev = k;
	}
}

/* A host in maintenance is drained (two at a time: its out-slots) and never a target;
 * a VM that would not converge stays, with a note. */
static void test_maintenance(void **state)
{
	struct cl c = {0};
	size_t m = host(&c, "m", 16, 65536);
	host(&c, "a", 16, 65536);
	host(&c, "b", 16, 65536);
	c.h[m].state = GW_PLAN_HOST_MAINTENANCE;
	for (int i = 0; i < 5; i++) {
		char n[8];
		snprintf(n, sizeof(n), "v%d", i);
		vm(&c, n, m, 1, 2048, 1);
	}
	size_t busy = vm(&c, "busy", m, 1, 8192, 2000); /* dirties 2x the link */
	struct gw_plan_knobs k = knobs(1);		/* maintenance still happens at level 1 */
	struct gw_plan_history h = {0};
	for (int r = 0; r < 3; r++) {
		plan(&c, &k, &h);
		assert_true(res->n_moves <= 2);
		for (uint32_t i = 0; i < res->n_moves; i++) {
			assert_int_equal(res->moves[i].kind, GW_PLAN_MOVE_EVACUATE);
			assert_string_not_equal(res->moves[i].to, "m");
			assert_string_not_equal(res->moves[i].vm, "busy");
		}
		apply(&c, res);
	}
	for (size_t v = 0; v < c.nv; v++)
		if (v != busy)
			assert_string_not_equal(c.v[v].host, "m");
	assert_string_equal(c.v[busy].host, "m");
	plan(&c, &k, &h);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_NONCONVERGENT, "busy"));
	/* fenced / down hosts: their VMs are HA's, never moved; no target either */
	c.h[host_index(&c, "m")].state = GW_PLAN_HOST_FENCED;
	plan(&c, &k, &h);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_HOST_DOWN, NULL));
}

/* Slots: migrations under way count; per-host in and out limits hold in the plan. */
static void test_slots(void **state)
{
	struct cl c = {0};
	size_t hot = host(&c, "hot", 64, 262144);
	for (int i = 0; i < 6; i++) {
		char n[8];
		snprintf(n, sizeof(n), "t%d", i);
		host(&c, n, 64, 262144);
	}
	for (int i = 0; i < 30; i++) {
		char n[8];
		snprintf(n, sizeof(n), "v%02d", i);
		vm(&c, n, hot, 2, 8192, 1);
	}
	struct gw_plan_knobs k = knobs(5);
	k.max_moves = 32;
	c.h[hot].max_out = 4;
	plan(&c, &k, NULL);
	assert_int_equal(res->n_moves, 4);
	unsigned in[MAXH] = {0};
	for (uint32_t i = 0; i < res->n_moves; i++)
		in[host_index(&c, res->moves[i].to)]++;
	for (size_t i = 0; i < c.nh; i++)
		assert_true(in[i] <= 2);
	/* one migration already under way out of hot: 3 more */
	snprintf(c.mig[0], sizeof(c.mig[0]), "t0");
	c.v[0].migrate_to = c.mig[0];
	plan(&c, &k, NULL);
	assert_int_equal(res->n_moves, 3);
	for (uint32_t i = 0; i < res->n_moves; i++)
		assert_string_not_equal(res->moves[i].vm, "v00"); /* never a migrating VM */
	/* in-limit 1 everywhere: 4 moves to 4 distinct targets */
	c.v[0].migrate_to = NULL;
	for (size_t i = 1; i < c.nh; i++)
		c.h[i].max_in = 1;
	plan(&c, &k, NULL);
	assert_int_equal(res->n_moves, 4);
	for (uint32_t i = 0; i < res->n_moves; i++)
		for (uint32_t j = 0; j < i; j++)
			assert_string_not_equal(res->moves[i].to, res->moves[j].to);
}

/* Cost: the hot host holds a big busy VM and a small idle one of the same CPU; the cheap one
 * moves. A VM that would not converge is never moved even when it alone would balance. */
static void test_cost_and_convergence(void **state)
{
	struct cl c = {0};
	host(&c, "a", 8, 65536);
	host(&c, "b", 8, 65536);
	vm(&c, "busy", 0, 3, 16384, 400); /* 0.4 of the link share, converges, costs more */
	vm(&c, "cheap", 0, 3, 1024, 0);
	vm(&c, "x", 0, 1, 1024, 0);
	struct gw_plan_knobs k = knobs(5);
	k.max_moves = 1;
	k.cost_per_gib = 0.1;
	plan(&c, &k, NULL);
	assert_int_equal(res->n_moves, 1);
	assert_string_equal(res->moves[0].vm, "cheap");
	/* the non-converging VM is never moved, though moving it would help most */
	struct cl d = {0};
	host(&d, "a", 8, 65536);
	host(&d, "b", 8, 65536);
	host(&d, "c", 8, 65536);
	vm(&d, "wild", 0, 4, 32768, 450); /* 450 MiB/s on a 500 MiB/s share: 51 rounds */
	vm(&d, "wild2", 0, 4, 32768, 450);
	k.max_moves = 3;
	k.cost_per_gib = 0.001;
	k.cost_per_down_s = 0.01;
	plan(&d, &k, NULL);
	assert_true(res->imbalance_before > 1);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_NONCONVERGENT, "wild"));
	assert_true(has_note(res, GW_PLAN_NOTE_NONCONVERGENT, "wild2"));
	/* a roomier downtime limit lets it go (18 rounds, 9.9 s) */
	d.v[0].downtime_limit_s = 10;
	plan(&d, &k, NULL);
	assert_int_equal(res->n_moves, 1);
	const struct gw_plan_move *w = &res->moves[0];
	assert_string_equal(w->vm, "wild");
	assert_true(w->downtime_s > 9 && w->downtime_s <= 10);
	assert_int_equal(w->rounds, 18);
}

/* A nearly idle cluster: milli-CPUs of noise are no imbalance (the CV's mean is floored at
 * cv_floor), so memory decides; a plain CV (cv_floor 0) would see the noise as the largest
 * imbalance there is and move VMs for it. */
static void test_idle_noise(void **state)
{
	struct cl c = {0};
	host(&c, "a", 16, 65536);
	host(&c, "b", 16, 65536);
	host(&c, "c", 16, 65536);
	vm(&c, "m1", 0, 0.01, 4096, 0);
	vm(&c, "m2", 0, 0, 4096, 0);
	vm(&c, "m3", 0, 0, 4096, 0);
	vm(&c, "m4", 0, 0.01, 4096, 0);
	vm(&c, "m5", 1, 0.01, 8192, 0);
	struct gw_plan_knobs k = knobs(5), plain = k;
	plain.cv_floor = 0;
	assert_true(k.cv_floor > 0.01 && k.cv_floor < 0.1);
	plan(&c, &plain, NULL);
	assert_true(res->cpu_cv_before > 0.8); /* 0.02, 0.01, 0 CPUs of 16: CV 0.816 */
	plan(&c, &k, NULL);
	assert_true(res->cpu_cv_before < 0.05);
	assert_true(res->mem_cv_before > 0.8);
	/* memory decides: two 4 GiB VMs from a to c, whichever their CPU noise */
	assert_int_equal(res->n_moves, 2);
	for (uint32_t i = 0; i < res->n_moves; i++) {
		assert_string_equal(res->moves[i].from, "a");
		assert_string_equal(res->moves[i].to, "c");
	}
	assert_true(res->mem_cv_after < 1e-9);
	apply(&c, res);
	plan(&c, &k, NULL);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_BALANCED, NULL));
	/* memory even, all the noise on one host: balanced, where a plain CV moves VMs */
	struct cl d = {0};
	for (int h = 0; h < 3; h++) {
		char n[8];
		snprintf(n, sizeof(n), "h%d", h);
		host(&d, n, 16, 65536);
		for (int i = 0; i < 2; i++) {
			snprintf(n, sizeof(n), "v%d%d", h, i);
			vm(&d, n, (size_t)h, h == 0 ? 0.02 : 0, 4096, 0);
		}
	}
	plan(&d, &k, NULL);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_BALANCED, NULL));
	plan(&d, &plain, NULL);
	assert_true(res->imbalance_before > 0.5);
	assert_true(res->n_moves >= 1);
}

/* Moves only between hosts of the same backend (unknown = any). */
static void test_backends(void **state)
{
	struct cl c = {0};
	size_t a = host(&c, "a", 8, 32768), b = host(&c, "b", 8, 32768);
	size_t d = host(&c, "c", 8, 32768);
	c.h[a].backend = "kvm";
	c.h[b].backend = "process";
	c.h[d].backend = "process";
	for (int i = 0; i < 4; i++) {
		char n[8];
		snprintf(n, sizeof(n), "v%d", i);
		vm(&c, n, a, 2, 4096, 0);
	}
	struct gw_plan_knobs k = knobs(5);
	plan(&c, &k, NULL);
	assert_int_equal(res->n_moves, 0);
	c.h[d].backend = "kvm";
	plan(&c, &k, NULL);
	assert_true(res->n_moves >= 1);
	for (uint32_t i = 0; i < res->n_moves; i++)
		assert_string_equal(res->moves[i].to, "c");
	/* VMs of any backend (libvirt domains: QEMU migrates whatever the host's VMM backend)
	 * go to the process hosts as well */
	c.h[d].backend = "process";
	for (size_t i = 0; i < c.nv; i++)
		c.v[i].backend = GW_PLAN_ANY_BACKEND;
	plan(&c, &k, NULL);
	assert_true(res->n_moves >= 2);
	bool to_b = false, to_c = false;
	for (uint32_t i = 0; i < res->n_moves; i++) {
		to_b |= strcmp(res->moves[i].to, "b") == 0;
		to_c |= strcmp(res->moves[i].to, "c") == 0;
	}
	assert_true(to_b && to_c);
}

/* Must rules are never violated by a move and are repaired first (even when balanced);
 * should rules yield only when nothing else fits. */
static void test_rules(void **state)
{
	struct cl c = {0};
	size_t a = host(&c, "a", 16, 65536), b = host(&c, "b", 16, 65536);
	host(&c, "c", 16, 65536);
	vm(&c, "db1", a, 1, 2048, 0);
	vm(&c, "db2", a, 1, 2048, 0); /* anti-affinity with db1, violated */
	vm(&c, "web", b, 1, 2048, 0);
	vm(&c, "app", b, 1, 2048, 0);
	vm(&c, "cache", a, 1, 2048, 0); /* must run with app: violated */
	vm(&c, "lic", b, 1, 2048, 0);	/* must run on c: violated */
	rule(&c, "anti-db", GW_PLAN_ANTI_AFFINITY, true, (int[]){0, 1, -1}, NULL);
	rule(&c, "aff-app", GW_PLAN_AFFINITY, true, (int[]){3, 4, -1}, NULL);
	rule(&c, "lic-on-c", GW_PLAN_VM_HOST, true, (int[]){5, -1}, (int[]){2, -1});
	assert_int_equal(must_violations(&c), 3);
	struct gw_plan_knobs k = knobs(1); /* no balancing: repairs happen anyway */
	struct gw_plan_history h = {0};
	plan(&c, &k, &h);
	assert_int_equal(res->must_before, 3);
	for (uint32_t i = 0; i < res->n_moves; i++)
		assert_int_equal(res->moves[i].kind, GW_PLAN_MOVE_FIX_MUST);
	apply(&c, res);
	for (int r = 0; r < 3 && must_violations(&c); r++) {
		plan(&c, &k, &h);
		apply(&c, res);
	}
	assert_int_equal(must_violations(&c), 0);
	assert_string_equal(c.v[5].host, "c");
	assert_string_equal(c.v[3].host, c.v[4].host);
	assert_string_not_equal(c.v[0].host, c.v[1].host);
	/* balancing hard never breaks them: pile load on one host */
	struct gw_plan_knobs k5 = knobs(5);
	for (int i = 0; i < 10; i++) {
		char n[8];
		snprintf(n, sizeof(n), "w%d", i);
		vm(&c, n, a, 1, 4096, 0);
	}
	for (int r = 0; r < 10; r++) {
		plan(&c, &k5, &h);
		apply(&c, res);
		assert_int_equal(must_violations(&c), 0);
		assert_capacity(&c);
	}

	/* should: an evacuation avoids the should-not host while another fits ... */
	struct cl s = {0};
	size_t m = host(&s, "m", 16, 8192);
	size_t x = host(&s, "x", 16, 8192);
	host(&s, "y", 16, 8192);
	s.h[m].state = GW_PLAN_HOST_MAINTENANCE;
	vm(&s, "v", m, 1, 2048, 0);
	vm(&s, "filler", x, 1, 1024, 0);
	rule(&s, "not-y", GW_PLAN_VM_NOT_HOST, false, (int[]){0, -1}, (int[]){2, -1});
	plan(&s, &k, NULL);
	assert_int_equal(res->n_moves, 1);
	assert_string_equal(res->moves[0].to, "x"); /* the fuller host, but allowed */
	/* ... and takes it when nothing else fits */
	s.v[1].mem_mib = 7168;
	plan(&s, &k, NULL);
	assert_int_equal(res->n_moves, 1);
	assert_string_equal(res->moves[0].to, "y");
	assert_int_equal(res->should_after, 1);
	/* a must-not host is never taken: the VM stays, with a note */
	s.r[0].must = true;
	plan(&s, &k, NULL);
	assert_int_equal(res->n_moves, 0);
	assert_true(has_note(res, GW_PLAN_NOTE_NO_TARGET, "v"));
}

/* The same cluster in another order gives the same bytes. */
static void shuffle(struct cl *c, unsigned *seed)
{
	for (size_t i = c->nh; i > 1; i--) {
		size_t j = (size_t)rand_r(seed) % i;
		struct gw_plan_host t = c->h[i - 1];
		c->h[i - 1] = c->h[j];
		c->h[j] = t;
	}
	for (size_t i = c->nv; i > 1; i--) {
		size_t j = (size_t)rand_r(seed) % i;
		struct gw_plan_vm t = c->v[i - 1];
		c->v[i - 1] = c->v[j];
		c->v[j] = t;
	}
	for (size_t i = c->nr; i > 1; i--) {
		size_t j = (size_t)rand_r(seed) % i;
		struct gw_plan_rule t = c->r[i - 1];
		c->r[i - 1] = c->r[j];
		c->r[j] = t;
	}
}

/* A random cluster: hosts of a few shapes, VMs placed within capacity, a host in
 * maintenance now and then, a few must and should rules. Names point into c. */
static void random_cluster(struct cl *c, unsigned *seed, size_t nh, size_t nv)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < nh; i++) {
		char n[8];
		snprintf(n, sizeof(n), "h%02zu", i);
		host(c, n, 8 << (rand_r(seed) % 3), (uint64_t)32768 << (rand_r(seed) % 3));
		c->h[i].bw_bps = (250 + rand_r(seed) % 1000) * MIB;
	}
	if (rand_r(seed) % 3 == 0)
		c->h[rand_r(seed) % nh].state = GW_PLAN_HOST_MAINTENANCE;
	double cpu[MAXH] = {0}, mem[MAXH] = {0};
	for (size_t i = 0; i < nv; i++) {
		double vc = 0.25 * (1 + rand_r(seed) % 8);
		uint32_t vmem = 512u << (rand_r(seed) % 4);
		size_t h = (size_t)rand_r(seed) % (nh / 2 + 1); /* skewed: the first half */
		for (size_t tries = 0; tries < nh; tries++, h = (h + 1) % nh)
			if (cpu[h] + vc <= c->h[h].cpus && mem[h] + vmem <= c->h[h].mem_mib)
				break;
		if (cpu[h] + vc > c->h[h].cpus || mem[h] + vmem > c->h[h].mem_mib)
			continue;
		cpu[h] += vc;
		mem[h] += vmem;
		char n[8];
		snprintf(n, sizeof(n), "v%03zu", i);
		vm(c, n, h, vc, vmem, (rand_r(seed) % 4 == 0 ? 300 : 20) * (rand_r(seed) % 4));
	}
	for (int r = 0; r < 4 && c->nv >= 8; r++) {
		int m[4] = {rand_r(seed) % (int)c->nv, rand_r(seed) % (int)c->nv, -1, -1};
		int hs[3] = {rand_r(seed) % (int)nh, rand_r(seed) % (int)nh, -1};
		if (m[0] == m[1])
			continue;
		char n[8];
		snprintf(n, sizeof(n), "r%d", r);
		switch (r) {
		case 0:
			rule(c, n, GW_PLAN_ANTI_AFFINITY, true, m, NULL);
			break;
		case 1:
			rule(c, n, GW_PLAN_ANTI_AFFINITY, false, m, NULL);
			break;
		case 2:
			rule(c, n, GW_PLAN_VM_NOT_HOST, true, m, hs);
			break;
		default:
			rule(c, n, GW_PLAN_VM_HOST, false, m, hs);
			break;
		}
	}
}

static void test_determinism(void **state)
{
	unsigned seed = 7;
	struct gw_plan_result *ref = malloc(sizeof(*ref));
	static struct cl c;
	assert_non_null(ref);
	for (int t = 0; t < 30; t++) {
		if (t < 20)
			random_cluster(&c, &seed, 12, 120);
		else /* small: the balance phase's lookahead searches sets of moves */
			random_cluster(&c, &seed, 4 + (size_t)t % 3, 12 + (size_t)t % 5);
		struct gw_plan_knobs k = knobs(5);
		struct gw_plan_history h = {.round = 4, .n_moved = 1};
		snprintf(h.moved[0].vm, sizeof(h.moved[0].vm), "v010");
		h.moved[0].round = 4;
		struct gw_plan_input in = input(&c);
		assert_int_equal(gw_plan(&in, &k, &h, ref), 0);
		for (int s = 0; s < 5; s++) {
			shuffle(&c, &seed);
			in = input(&c);
			assert_int_equal(gw_plan(&in, &k, &h, res), 0);
			assert_memory_equal(ref, res, sizeof(*res));
		}
	}
	/* duplicate names are refused */
	struct cl d = {0};
	host(&d, "a", 1, 1024);
	host(&d, "a", 1, 1024);
	struct gw_plan_input in = input(&d);
	assert_int_equal(gw_plan(&in, NULL, NULL, res), -22);
	free(ref);
}

/*
 * Property: random clusters, load drifting every round, the planner's moves applied and its
 * history fed back, hundreds of rounds: no VM moves twice within the hold window (so no move
 * is undone within it), capacity always holds, must violations never grow and never come
 * back once repaired.
 */
static void test_property_no_thrash(void **state)
{
	unsigned seed = 12345;
	static struct cl c;
	uint64_t last[MAXV];
	unsigned total_moves = 0, rounds = 0;
	for (int cluster = 0; cluster < 18; cluster++) {
		if (cluster < 12)
			random_cluster(&c, &seed, 6 + (size_t)cluster % 10,
				       40 + (size_t)cluster * 25);
		else /* small: with the lookahead (pairs, swaps) in the balance phase */
			random_cluster(&c, &seed, 3 + (size_t)cluster % 4,
				       10 + (size_t)cluster % 7);
		struct gw_plan_knobs k = knobs(3 + cluster % 3);
		struct gw_plan_history h = {0};
		for (size_t v = 0; v < MAXV; v++)
			last[v] = 0;
		unsigned must = must_violations(&c);
		for (int r = 1; r <= 60; r++, rounds++) {
			plan(&c, &k, &h);
			assert_int_equal(res->must_before, must);
			assert_true(res->must_after <= res->must_before);
			for (uint32_t i = 0; i < res->n_moves; i++) {
				size_t v = vm_index(&c, res->moves[i].vm);
				if (last[v] && (uint64_t)r - last[v] <= k.hold)
					fail_msg(
					    "cluster %d round %d: %s moved again (last in round "
					    "%llu, hold %u)",
					    cluster, r, res->moves[i].vm,
					    (unsigned long long)last[v], k.hold);
				last[v] = (uint64_t)r;
			}
			total_moves += res->n_moves;
			apply(&c, res);
			assert_capacity(&c);
			unsigned now = must_violations(&c);
			assert_true(now <= must);
			must = now;
			/* drift: every VM's CPU use wanders (x0.8 .. x1.25), within its host */
			for (size_t v = 0; v < c.nv; v++) {
				double f = 0.8 + 0.45 * (rand_r(&seed) % 1000) / 1000.0;
				c.v[v].cpu *= f;
				if (c.v[v].cpu < 0.05)
					c.v[v].cpu = 0.05;
				if (c.v[v].cpu > 4)
					c.v[v].cpu = 4;
				c.v[v].dirty_bps = (rand_r(&seed) % 400) * MIB;
			}
			for (size_t hi = 0; hi < c.nh; hi++) { /* scale back a host over its CPUs */
				double sum = 0;
				for (size_t v = 0; v < c.nv; v++)
					if (strcmp(c.v[v].host, c.h[hi].name) == 0)
						sum += c.v[v].cpu;
				for (size_t v = 0; sum > c.h[hi].cpus && v < c.nv; v++)
					if (strcmp(c.v[v].host, c.h[hi].name) == 0)
						c.v[v].cpu *= c.h[hi].cpus / sum * 0.999;
			}
		}
	}
	print_message("property: %u rounds, %u moves, none repeated within the hold window\n",
		      rounds, total_moves);
	assert_true(total_moves > 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_relieves_hot_host),
	    cmocka_unit_test(test_lookahead_swap),
	    cmocka_unit_test(test_hysteresis),
	    cmocka_unit_test(test_aggressiveness_mapping),
	    cmocka_unit_test(test_maintenance),
	    cmocka_unit_test(test_slots),
	    cmocka_unit_test(test_cost_and_convergence),
	    cmocka_unit_test(test_idle_noise),
	    cmocka_unit_test(test_backends),
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_determinism),
	    cmocka_unit_test(test_property_no_thrash),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
