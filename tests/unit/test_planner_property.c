/* test_planner_property.c -- the balancing planner over random clusters: the same cluster in
 * any input order plans to the same bytes (determinism), and, with drifting load over many
 * rounds, no VM moves again within the hold window, capacity always holds and must-rule
 * violations never grow (the no-thrash property). */
#include "planner_test_cl.h"

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
	    cmocka_unit_test(test_determinism),
	    cmocka_unit_test(test_property_no_thrash),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
