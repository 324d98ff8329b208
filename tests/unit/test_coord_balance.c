/* test_coord_balance.c -- the memory rebalancing planner (coord_balance.c) on real cluster states
 * built from CPG messages: balanced, overloaded, anti-affinity, maintenance, VMs that cannot move,
 * max moves, determinism. Real functions, no mocks. */
#include "coord_balance.h"
#include "coord_test_msgs.h"

static struct gw_coord_balance_opts opts(unsigned max, double threshold)
{
	struct gw_coord_balance_opts o = {.max_moves = max, .threshold_pct = threshold};
	return o;
}

static void plan_of(const struct gw_coord_state *st, unsigned max, double threshold,
		    struct gw_coord_balance_plan *p)
{
	struct gw_coord_balance_opts o = opts(max, threshold);
	assert_int_equal(gw_coord_balance_plan(st, &o, p), 0);
}

static const struct gw_coord_balance_host *phost(const struct gw_coord_balance_plan *p,
						 const char *name)
{
	for (size_t i = 0; i < p->n_hosts; i++)
		if (strcmp(p->hosts[i].name, name) == 0)
			return &p->hosts[i];
	return NULL;
}

static void assert_move(const struct gw_coord_balance_plan *p, size_t i, const char *vm,
			const char *from, const char *to)
{
	assert_true(i < p->n_moves);
	assert_string_equal(p->moves[i].vm, vm);
	assert_string_equal(p->moves[i].from, from);
	assert_string_equal(p->moves[i].to, to);
}

/* Equal or nearly equal loads: nothing to do, whatever the order of the hosts. */
static void test_balanced(void **state)
{
	struct gw_coord_state st;
	struct gw_coord_balance_plan p;
	three_hosts(&st, 1000);
	plan_of(&st, 3, 10, &p); /* empty cluster */
	assert_int_equal(p.n_moves, 0);
	assert_int_equal(p.n_hosts, 3);
	running_vm(&st, "a", "n1", 1, NULL, 300);
	running_vm(&st, "b", "n2", 2, NULL, 250);
	running_vm(&st, "c", "n3", 3, NULL, 220);
	plan_of(&st, 3, 10, &p); /* spread 8 points <= 10 */
	assert_int_equal(p.n_moves, 0);
	assert_true(p.spread_before > 7.99 && p.spread_before < 8.01);
	assert_true(p.spread_after == p.spread_before);
	assert_true(phost(&p, "n1")->load_before > 29.99 && phost(&p, "n1")->load_after < 30.01);
	/* defaults (opts NULL): 3 moves, 10 points */
	assert_int_equal(gw_coord_balance_plan(&st, NULL, &p), 0);
	assert_int_equal(p.n_moves, 0);
	/* a gap wider than the threshold that no single VM can narrow enough: no move */
	struct gw_coord_state st2;
	three_hosts(&st2, 1000);
	running_vm(&st2, "big", "n1", 1, NULL, 400);
	running_vm(&st2, "big2", "n2", 2, NULL, 400);
	running_vm(&st2, "big3", "n3", 3, NULL, 100);
	plan_of(&st2, 3, 10, &p); /* moving any VM overshoots: gap 30 -> 50 or 70 */
	assert_int_equal(p.n_moves, 0);
	gw_coord_state_free(&st2);
	gw_coord_state_free(&st);
}

/* One host full of VMs: moves off it, to the least loaded host first, smaller VMs first. */
static void test_overloaded(void **state)
{
	struct gw_coord_state st;
	struct gw_coord_balance_plan p;
	three_hosts(&st, 1000);
	running_vm(&st, "v1", "n1", 1, NULL, 200);
	running_vm(&st, "v2", "n1", 1, NULL, 200);
	running_vm(&st, "v3", "n1", 1, NULL, 200);
	running_vm(&st, "small", "n1", 1, NULL, 50);
	running_vm(&st, "w", "n2", 2, NULL, 100);
	plan_of(&st, 3, 5, &p);
	/* n1 65%, n2 10%, n3 0%: a 200 MiB VM to n3 narrows the gap by 40 points, as much per
	 * MiB as small (10 points); the smaller VM wins the tie of benefit per MiB */
	assert_true(p.n_moves >= 2);
	assert_move(&p, 0, "small", "n1", "n3");
	assert_true(p.moves[0].benefit > 9.99 && p.moves[0].benefit < 10.01);
	assert_true(p.moves[0].from_before > 64.99 && p.moves[0].from_after < 60.01);
	for (size_t i = 0; i < p.n_moves; i++) {
		assert_string_equal(p.moves[i].from, "n1");
		assert_true(p.moves[i].benefit > 5);
	}
	assert_true(p.spread_after < p.spread_before);
	assert_int_equal(phost(&p, "n1")->used_before, 650);
	uint64_t after = 0;
	for (size_t i = 0; i < p.n_hosts; i++)
		after += p.hosts[i].used_after;
	assert_int_equal(after, 750);
	assert_true(phost(&p, "n1")->used_after < 650);
	/* the state itself is untouched */
	assert_string_equal(vm_of(&st, "small")->host, "n1");

	/* applying the plan's moves and planning again: nothing more to do (cron-safe) */
	for (size_t i = 0; i < p.n_moves; i++) {
		struct gw_coord_vm *vm = vm_of(&st, p.moves[i].vm);
		struct msg s = mstart(vm->name, vm->host, p.moves[i].to, 100 + i);
		struct msg d = mdone(vm->name, vm->host, p.moves[i].to, 100 + i, "completed", NULL,
				     (uint32_t)(vm->host[1] - '0'));
		apply(&st, &s);
		apply(&st, &d);
		assert_string_equal(vm->host, p.moves[i].to);
	}
	struct gw_coord_balance_plan again;
	plan_of(&st, 3, 5, &again);
	assert_int_equal(again.n_moves, 0);
	assert_true(again.spread_before > p.spread_after - 0.01 &&
		    again.spread_before < p.spread_after + 0.01);
	gw_coord_state_free(&st);
}

/* Anti-affinity: never to a host running a VM of the group; another host is taken. */
static void test_anti_affinity(void **state)
{
	struct gw_coord_state st;
	struct gw_coord_balance_plan p;
	three_hosts(&st, 1000);
	running_vm(&st, "g1", "n1", 1, "g", 300);
	running_vm(&st, "g2", "n2", 2, "g", 100);
	running_vm(&st, "g3", "n3", 3, "g", 10);
	plan_of(&st, 3, 1, &p); /* every host holds a VM of g: nothing can move */
	assert_int_equal(p.n_moves, 0);
	/* a VM outside the group on n1 can go to n3 (least loaded) */
	running_vm(&st, "free", "n1", 1, NULL, 100);
	plan_of(&st, 3, 1, &p);
	assert_int_equal(p.n_moves, 1);
	assert_move(&p, 0, "free", "n1", "n3");
	gw_coord_state_free(&st);

	/* the least loaded host clashes: the next least loaded one is the target */
	three_hosts(&st, 1000);
	running_vm(&st, "a1", "n1", 1, "a", 200);
	running_vm(&st, "b1", "n1", 1, "b", 200);
	running_vm(&st, "a3", "n3", 3, "a", 10);
	running_vm(&st, "x2", "n2", 2, NULL, 50);
	plan_of(&st, 1, 5, &p);
	assert_int_equal(p.n_moves, 1);
	/* a1 cannot go to n3 (group a): it would go to n2; b1 goes to n3 (least loaded) */
	assert_move(&p, 0, "b1", "n1", "n3");
	plan_of(&st, 3, 5, &p);
	for (size_t i = 0; i < p.n_moves; i++)
		assert_false(strcmp(p.moves[i].vm, "a1") == 0 && strcmp(p.moves[i].to, "n3") == 0);
	gw_coord_state_free(&st);
}

/* A host in maintenance is neither counted nor a target; lost hosts neither. */
static void test_maintenance(void **state)
{
	struct gw_coord_state st;
	struct gw_coord_balance_plan p;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 300);
	running_vm(&st, "b", "n1", 1, NULL, 300);
	running_vm(&st, "c", "n2", 2, NULL, 600);
	struct msg enter = maint(T_ENTER, "n3", 11, NULL);
	apply(&st, &enter);
	plan_of(&st, 3, 5, &p); /* n1 60%, n2 60%: n3 (empty, maintenance) does not count */
	assert_int_equal(p.n_moves, 0);
	assert_int_equal(p.n_hosts, 2);
	assert_null(phost(&p, "n3"));
	assert_true(p.spread_before < 0.01);
	struct msg exit = maint(T_EXIT, "n3", 0, NULL);
	apply(&st, &exit);
	plan_of(&st, 3, 5, &p);
	assert_true(p.n_moves >= 1);
	for (size_t i = 0; i < p.n_moves; i++)
		assert_string_equal(p.moves[i].to, "n3");
	/* VMs on a host in maintenance are not moved by the balancer (evacuation does) */
	apply(&st, &enter);
	running_vm(&st, "m", "n2", 2, NULL, 10);
	plan_of(&st, 3, 0, &p);
	for (size_t i = 0; i < p.n_moves; i++) {
		assert_string_not_equal(p.moves[i].to, "n3");
		assert_string_not_equal(p.moves[i].from, "n3");
	}
	/* a lost host neither */
	apply(&st, &exit);
	uint32_t members[] = {1, 2};
	gw_coord_state_members(&st, members, 2, 6000);
	plan_of(&st, 3, 0, &p);
	assert_null(phost(&p, "n3"));
	for (size_t i = 0; i < p.n_moves; i++)
		assert_string_not_equal(p.moves[i].to, "n3");
	gw_coord_state_free(&st);
}

/* Migrating, starting, failed VMs are never moved; a migrating VM counts on both hosts. */
static void test_unmovable(void **state)
{
	struct gw_coord_state st;
	struct gw_coord_balance_plan p;
	three_hosts(&st, 1000);
	running_vm(&st, "mig", "n1", 1, NULL, 300);
	struct msg s = mstart("mig", "n1", "n2", 5);
	apply(&st, &s);
	struct msg d = define("starting", "n1", NULL, 100);
	apply(&st, &d);
	running_vm(&st, "dead", "n1", 1, NULL, 300);
	struct msg f = vmstate("dead", "n1", "failed", 1);
	apply(&st, &f);
	assert_int_equal(vm_of(&st, "dead")->state, GW_CVM_FAILED);
	plan_of(&st, 3, 0, &p);
	assert_int_equal(p.n_moves, 0);
	assert_int_equal(phost(&p, "n1")->used_before, 400); /* mig + starting; dead not */
	assert_int_equal(phost(&p, "n2")->used_before, 300); /* mig, on its way */
	/* once running and the migration done, they may move */
	struct msg r = vmstate("starting", "n1", "running", 1);
	apply(&st, &r);
	struct msg done = mdone("mig", "n1", "n2", 5, "completed", NULL, 1);
	apply(&st, &done);
	running_vm(&st, "extra", "n1", 1, NULL, 300);
	plan_of(&st, 1, 0, &p); /* n1 40%, n2 30%, n3 0%: the smaller VM, as much benefit */
	assert_int_equal(p.n_moves, 1);
	assert_move(&p, 0, "starting", "n1", "n3");
	gw_coord_state_free(&st);
}

/* At most max moves; a VM moves at most once; determinism. */
static void test_max_moves_and_determinism(void **state)
{
	struct gw_coord_state st;
	struct gw_coord_balance_plan p, q;
	gw_coord_state_init(&st, NULL);
	for (uint32_t i = 1; i <= 6; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%u", i);
		struct msg m = hello(i, name, 10000);
		apply(&st, &m);
	}
	for (int i = 0; i < 12; i++) {
		char name[8];
		snprintf(name, sizeof(name), "v%02d", i);
		running_vm(&st, name, "n1", 1, NULL, 500);
	}
	plan_of(&st, 3, 5, &p);
	assert_int_equal(p.n_moves, 3);
	/* equal VMs: by name; targets: least loaded, ties by name */
	assert_move(&p, 0, "v00", "n1", "n2");
	assert_move(&p, 1, "v01", "n1", "n3");
	assert_move(&p, 2, "v02", "n1", "n4");
	plan_of(&st, 1, 5, &q);
	assert_int_equal(q.n_moves, 1);
	plan_of(&st, 64, 5, &p);
	assert_true(p.n_moves > 3 && p.n_moves <= 12);
	for (size_t i = 0; i < p.n_moves; i++)
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(p.moves[i].vm, p.moves[k].vm);
	assert_true(p.spread_after <= 5.0 + 0.01);
	plan_of(&st, 64, 5, &q);
	assert_int_equal(p.n_moves, q.n_moves);
	assert_memory_equal(&p, &q, sizeof(p));
	/* 0 = the default, above the cap = the cap */
	plan_of(&st, 0, 5, &q);
	assert_int_equal(q.n_moves, GW_COORD_BALANCE_DEFAULT_MOVES);
	plan_of(&st, 1000, 5, &q);
	assert_memory_equal(&p, &q, sizeof(p));

	/* the same cluster built in another host order: the same plan */
	struct gw_coord_state st2;
	gw_coord_state_init(&st2, NULL);
	for (uint32_t i = 6; i >= 1; i--) {
		char name[8];
		snprintf(name, sizeof(name), "n%u", i);
		struct msg m = hello(i, name, 10000);
		apply(&st2, &m);
	}
	for (int i = 11; i >= 0; i--) {
		char name[8];
		snprintf(name, sizeof(name), "v%02d", i);
		running_vm(&st2, name, "n1", 1, NULL, 500);
	}
	plan_of(&st2, 64, 5, &q);
	assert_memory_equal(&p, &q, sizeof(p));
	gw_coord_state_free(&st2);
	gw_coord_state_free(&st);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_balanced),	  cmocka_unit_test(test_overloaded),
	    cmocka_unit_test(test_anti_affinity), cmocka_unit_test(test_maintenance),
	    cmocka_unit_test(test_unmovable),	  cmocka_unit_test(test_max_moves_and_determinism),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
