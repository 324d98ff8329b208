/* test_planner.c -- the balancing planner (coordinator/planner/gw_planner.c) on hand-built
 * clusters: balancing CPU and memory, the lookahead's swaps, hysteresis, maintenance, slots,
 * convergence, idle noise, backends, rules (must / should), aggressiveness. Determinism and
 * the no-thrash property over random clusters: test_planner_property.c. */
#include "planner_test_cl.h"

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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
