/* test_coord_maint.c -- the coordinator's apply handlers for host maintenance (coord_state.c):
 * MAINT_ENTER/EXIT, evacuation VM by VM and when it stops, restarts and placement around hosts in
 * maintenance, placement with migrations under way. Real functions, no mocks. */
#include "coord_test_msgs.h"

/* ---- maintenance ---- */

/* ENTER marks the host; nothing is placed on it or migrated to it until EXIT; it stays in
 * maintenance across a loss and return. Refusals change nothing. */
static void test_maintenance_enter_exit(void **state)
{
	struct gw_coord_state st;
	char out[GW_COORD_NAME_MAX], why[256];
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n2", 2, NULL, 500);
	running_vm(&st, "b", "n3", 3, NULL, 400);

	/* n1 has the most free memory: placement's first choice */
	assert_int_equal(gw_coord_place(&st, "x", 10, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n1");

	struct msg enter = maint(T_ENTER, "n1", 11, NULL);
	apply(&st, &enter);
	struct gw_coord_host *n1 = host_of(&st, "n1");
	assert_int_equal(n1->state, GW_HOST_MAINTENANCE);
	assert_true(n1->maintenance);
	assert_true(n1->evacuating);
	assert_int_equal(n1->evac_id, 11);
	assert_string_equal(n1->maint_error, "");
	assert_last_event(&st, "maintenance-entered", "n1", "", NULL);

	/* never a target: placement, fits, MIGRATE_START (VM_RESTART: see the next test) */
	assert_int_equal(gw_coord_place(&st, "x", 10, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n3");
	assert_int_equal(gw_coord_place(&st, "x", 700, NULL, NULL, NULL, out, sizeof(out)), -ENOSPC);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "a"), "n1", why, sizeof(why)), -EHOSTDOWN);
	assert_true(str_has(why, "host n1 is maintenance"));
	struct msg to1 = mstart("a", "n2", "n1", 12);
	apply(&st, &to1);
	assert_string_equal(vm_of(&st, "a")->migrate_to, "");
	assert_last_event(&st, "migration-rejected", "n2", "a", "host n1 is maintenance");

	/* a host in maintenance that is lost and comes back is in maintenance again */
	uint32_t members[] = {2, 3};
	gw_coord_state_members(&st, members, 2, 6000);
	assert_int_equal(host_of(&st, "n1")->state, GW_HOST_LOST);
	struct msg back = hello(1, "n1", 1000);
	apply(&st, &back);
	assert_int_equal(host_of(&st, "n1")->state, GW_HOST_MAINTENANCE);
	assert_int_equal(gw_coord_place(&st, "x", 700, NULL, NULL, NULL, out, sizeof(out)), -ENOSPC);

	/* refusals: unknown host, a lost host, exit of a host not in maintenance */
	struct msg unknown = maint(T_ENTER, "n9", 13, NULL);
	assert_refused(&st, &unknown, "maintenance-ignored", "n9", "", "unknown");
	struct msg unknown_exit = maint(T_EXIT, "n9", 0, NULL);
	assert_refused(&st, &unknown_exit, "maintenance-ignored", "n9", "", "unknown");
	struct msg exit3 = maint(T_EXIT, "n3", 0, NULL);
	assert_refused(&st, &exit3, "maintenance-ignored", "n3", "", "not in maintenance");
	uint32_t members2[] = {1, 2};
	gw_coord_state_members(&st, members2, 2, 6500);
	struct msg enter3 = maint(T_ENTER, "n3", 14, NULL);
	assert_refused(&st, &enter3, "maintenance-ignored", "n3", "", "lost");
	struct msg back3 = hello(3, "n3", 1000);
	apply(&st, &back3);

	struct msg exit = maint(T_EXIT, "n1", 0, NULL);
	apply(&st, &exit);
	n1 = host_of(&st, "n1");
	assert_int_equal(n1->state, GW_HOST_UP);
	assert_false(n1->maintenance);
	assert_false(n1->evacuating);
	assert_last_event(&st, "maintenance-exited", "n1", "", NULL);
	assert_int_equal(gw_coord_place(&st, "x", 700, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n1");
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "a"), "n1", why, sizeof(why)), 0);
	/* exit twice: the second is refused */
	assert_refused(&st, &exit, "maintenance-ignored", "n1", "", "not in maintenance");
	/* and after the exit a loss and return makes it up, not maintenance */
	uint32_t members3[] = {2, 3};
	gw_coord_state_members(&st, members3, 2, 7000);
	apply(&st, &back);
	assert_int_equal(host_of(&st, "n1")->state, GW_HOST_UP);
	gw_coord_state_free(&st);
}

/* An HA restart never targets a host in maintenance; VMs nobody could place become pending
 * again when a host leaves maintenance, and may then go there. */
static void test_maintenance_restarts(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	struct msg enter = maint(T_ENTER, "n1", 11, NULL);
	apply(&st, &enter);
	running_vm(&st, "p", "n3", 3, NULL, 100);
	uint32_t members[] = {1, 2};
	gw_coord_state_members(&st, members, 2, 6000);
	GwClFence f = GW_CL_FENCE__INIT;
	f.host = "n3";
	f.time_ms = 6100;
	struct msg fs = pack(GW_CL_MSG_TYPE__GW_CL_FENCE_START, &f, 1);
	struct msg fc = pack(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, &f, 1);
	apply(&st, &fs);
	apply(&st, &fc);
	assert_int_equal(vm_of(&st, "p")->state, GW_CVM_PENDING);
	GwClVmRestart r = GW_CL_VM_RESTART__INIT;
	r.name = "p";
	r.target = "n1";
	r.reason = "test";
	r.time_ms = 6200;
	struct msg to_maint = pack(GW_CL_MSG_TYPE__GW_CL_VM_RESTART, &r, 1);
	assert_refused(&st, &to_maint, "vm-restart-ignored", "n1", "p", NULL);
	r.target = NULL;
	r.reason = "no up host";
	struct msg unplaced = pack(GW_CL_MSG_TYPE__GW_CL_VM_UNPLACED, &r, 1);
	apply(&st, &unplaced);
	assert_int_equal(vm_of(&st, "p")->state, GW_CVM_UNPLACED);
	struct msg exit = maint(T_EXIT, "n1", 0, NULL);
	apply(&st, &exit);
	assert_int_equal(vm_of(&st, "p")->state, GW_CVM_PENDING);
	apply(&st, &to_maint);
	assert_int_equal(vm_of(&st, "p")->state, GW_CVM_STARTING);
	assert_string_equal(vm_of(&st, "p")->host, "n1");
	gw_coord_state_free(&st);
}

/*
 * The acting member's evacuation as messages: one VM at a time, each to what placement says
 * (most free memory, anti-affinity honoured, never a host in maintenance), then EVAC_END.
 * n2 has 1000 MiB, n3 600: a(g) -> n2, b(g) -> n3 (n2 holds g), c -> n2 (700 free vs 300).
 */
static void test_evacuation_vm_by_vm(void **state)
{
	struct gw_coord_state st;
	gw_coord_state_init(&st, NULL);
	struct msg h[] = {hello(1, "n1", 4000), hello(2, "n2", 1000), hello(3, "n3", 600)};
	for (int i = 0; i < 3; i++)
		apply(&st, &h[i]);
	running_vm(&st, "a", "n1", 1, "g", 300);
	running_vm(&st, "b", "n1", 1, "g", 300);
	running_vm(&st, "c", "n1", 1, NULL, 400);

	struct msg enter = maint(T_ENTER, "n1", 11, NULL);
	apply(&st, &enter);
	struct msg early_end = maint(T_EVEND, "n1", 10, NULL); /* another evacuation's id */
	struct frozen f;
	freeze(&st, &f);
	apply(&st, &early_end);
	assert_unchanged(&st, &f, 0);
	assert_true(host_of(&st, "n1")->evacuating);

	static const struct {
		const char *vm, *want;
	} order[] = {{"a", "n2"}, {"b", "n3"}, {"c", "n2"}};
	for (size_t i = 0; i < 3; i++) {
		struct gw_coord_vm *v = vm_of(&st, order[i].vm);
		char target[GW_COORD_NAME_MAX];
		assert_int_equal(gw_coord_place(&st, v->name, v->memory_mib, v->group, NULL, NULL, target,
						sizeof(target)),
				 0);
		assert_string_equal(target, order[i].want);
		struct msg s = mstart_evac(v->name, "n1", target, 20 + i);
		apply(&st, &s);
		assert_string_equal(vm_of(&st, order[i].vm)->migrate_to, order[i].want);
		assert_last_event(&st, "migration-started", "n1", order[i].vm, "(maintenance)");
		struct msg d = mdone(order[i].vm, "n1", target, 20 + i, "completed", NULL, 1);
		apply(&st, &d);
		/* moved so far: exactly order[0..i]; the rest still run on n1 */
		for (size_t j = 0; j < 3; j++) {
			struct gw_coord_vm *w = vm_of(&st, order[j].vm);
			assert_string_equal(w->host, j <= i ? order[j].want : "n1");
			assert_int_equal(w->state, GW_CVM_RUNNING);
			assert_string_equal(w->migrate_to, "");
		}
		assert_true(host_of(&st, "n1")->evacuating);
		assert_int_equal(host_of(&st, "n1")->state, GW_HOST_MAINTENANCE);
	}
	struct msg end = maint(T_EVEND, "n1", 11, "");
	apply(&st, &end);
	struct gw_coord_host *n1 = host_of(&st, "n1");
	assert_false(n1->evacuating);
	assert_true(n1->maintenance);
	assert_int_equal(n1->state, GW_HOST_MAINTENANCE);
	assert_string_equal(n1->maint_error, "");
	assert_last_event(&st, "maintenance-evacuated", "n1", "", NULL);
	/* a second EVAC_END of it is ignored */
	freeze(&st, &f);
	apply(&st, &end);
	assert_unchanged(&st, &f, 0);
	gw_coord_state_free(&st);
}

/* A VM of the evacuation that cannot move stops it: the host stays in maintenance, not
 * evacuating, with the reason; the VM and the others not yet moved run on, unchanged. */
static void test_evacuation_stops(void **state)
{
	/* 1: a failed MIGRATE_DONE of the second VM */
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	running_vm(&st, "b", "n1", 1, NULL, 100);
	running_vm(&st, "c", "n1", 1, NULL, 100);
	struct msg enter = maint(T_ENTER, "n1", 11, NULL);
	apply(&st, &enter);
	struct msg sa = mstart_evac("a", "n1", "n2", 21),
		   da = mdone("a", "n1", "n2", 21, "completed", NULL, 1);
	apply(&st, &sa);
	apply(&st, &da);
	struct msg sb = mstart_evac("b", "n1", "n3", 22);
	struct msg db = mdone("b", "n1", "n3", 22, "failed", "destination rejected the state", 1);
	apply(&st, &sb);
	apply(&st, &db);
	struct gw_coord_host *n1 = host_of(&st, "n1");
	assert_false(n1->evacuating);
	assert_true(n1->maintenance);
	assert_int_equal(n1->state, GW_HOST_MAINTENANCE);
	assert_true(str_has(n1->maint_error, "vm b could not move to n3"));
	assert_true(str_has(n1->maint_error, "destination rejected the state"));
	assert_last_event(&st, "maintenance-stopped", "n1", "", "vm b could not move to n3");
	assert_string_equal(vm_of(&st, "a")->host, "n2");
	for (const char *const *v = (const char *const[]){"b", "c", NULL}; *v; v++) {
		assert_string_equal(vm_of(&st, *v)->host, "n1");
		assert_int_equal(vm_of(&st, *v)->state, GW_CVM_RUNNING);
		assert_string_equal(vm_of(&st, *v)->migrate_to, "");
	}
	assert_string_equal(vm_of(&st, "c")->migrate_error, "");
	/* the acting member's late EVAC_END for it changes nothing */
	struct msg end = maint(T_EVEND, "n1", 11, "");
	struct frozen f;
	freeze(&st, &f);
	apply(&st, &end);
	assert_unchanged(&st, &f, 0);
	/* entering again restarts it, with the error cleared */
	struct msg again = maint(T_ENTER, "n1", 12, NULL);
	apply(&st, &again);
	assert_true(host_of(&st, "n1")->evacuating);
	assert_string_equal(host_of(&st, "n1")->maint_error, "");
	assert_int_equal(host_of(&st, "n1")->evac_id, 12);
	gw_coord_state_free(&st);

	/* 2: a refused evacuation MIGRATE_START (the target filled up meanwhile) */
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 600);
	running_vm(&st, "z", "n2", 2, NULL, 500);
	apply(&st, &enter);
	struct msg bad = mstart_evac("a", "n1", "n2", 23);
	apply(&st, &bad);
	n1 = host_of(&st, "n1");
	assert_false(n1->evacuating);
	assert_true(str_has(n1->maint_error, "has 500 MiB free, vm a needs 600 MiB"));
	assert_last_event(&st, "maintenance-stopped", "n1", "", "needs 600 MiB");
	assert_string_equal(vm_of(&st, "a")->host, "n1");
	assert_string_equal(vm_of(&st, "a")->migrate_to, "");
	gw_coord_state_free(&st);

	/* 3: nowhere to go: the acting member ends it with the reason */
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, "g", 100);
	running_vm(&st, "g2", "n2", 2, "g", 100);
	running_vm(&st, "g3", "n3", 3, "g", 100);
	apply(&st, &enter);
	char target[GW_COORD_NAME_MAX];
	assert_int_equal(gw_coord_place(&st, "a", 100, "g", NULL, NULL, target, sizeof(target)), -ENOSPC);
	struct msg user = mstart("a", "n1", "n2", 24); /* a user's refusal does not stop it */
	apply(&st, &user);
	assert_true(host_of(&st, "n1")->evacuating);
	struct msg stop = maint(T_EVEND, "n1", 11, "vm a: no up host outside maintenance");
	apply(&st, &stop);
	n1 = host_of(&st, "n1");
	assert_false(n1->evacuating);
	assert_int_equal(n1->state, GW_HOST_MAINTENANCE);
	assert_string_equal(n1->maint_error, "vm a: no up host outside maintenance");
	assert_last_event(&st, "maintenance-stopped", "n1", "", "no up host outside maintenance");
	assert_string_equal(vm_of(&st, "a")->host, "n1");
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_RUNNING);
	/* exit: up again, the reason stays for the record */
	struct msg exit = maint(T_EXIT, "n1", 0, NULL);
	apply(&st, &exit);
	assert_int_equal(host_of(&st, "n1")->state, GW_HOST_UP);
	assert_false(host_of(&st, "n1")->evacuating);
	gw_coord_state_free(&st);
}

/* ---- placement with migrations ---- */

/* Anti-affinity and free memory count VMs migrating to a host and ignore inactive ones; only
 * up hosts are candidates. */
static void test_placement_rules(void **state)
{
	struct gw_coord_state st;
	char out[GW_COORD_NAME_MAX], why[256];
	gw_coord_state_init(&st, NULL);
	struct msg h[] = {hello(1, "n1", 1000), hello(2, "n2", 2000), hello(3, "n3", 1500)};
	for (int i = 0; i < 3; i++)
		apply(&st, &h[i]);
	running_vm(&st, "a", "n1", 1, "g", 200);

	/* most free memory wins: n2 */
	assert_int_equal(gw_coord_place(&st, "x", 100, "g", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n2");
	/* a migrating to n2: its group now holds n2 too */
	struct msg s = mstart("a", "n1", "n2", 7);
	apply(&st, &s);
	assert_int_equal(gw_coord_place(&st, "x", 100, "g", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n3");
	/* n2 1800 free, n3 1500: without a group n2 still wins; 1801 fits nowhere */
	assert_int_equal(gw_coord_place(&st, "x", 100, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n2");
	assert_int_equal(gw_coord_place(&st, "x", 1801, NULL, NULL, NULL, out, sizeof(out)), -ENOSPC);
	running_vm(&st, "b", "n3", 3, "g", 100);
	assert_int_equal(gw_coord_place(&st, "x", 1, "g", NULL, NULL, out, sizeof(out)), -ENOSPC);
	struct msg sb = mstart("b", "n3", "n2", 8);
	apply(&st, &sb);
	assert_last_event(&st, "migration-rejected", "n3", "b", "anti-affinity");

	/* a failed VM holds neither memory nor its group */
	struct msg d = mdone("a", "n1", "n2", 7, "completed", NULL, 1);
	apply(&st, &d);
	struct msg fail = vmstate("a", "n2", "failed", 2);
	apply(&st, &fail);
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_FAILED);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "b"), "n2", why, sizeof(why)), 0);
	assert_int_equal(gw_coord_place(&st, "x", 2000, "g", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n2");

	/* exact fit is a fit; one MiB more is not */
	running_vm(&st, "c", "n2", 2, NULL, 100);
	struct msg big = define("big", "n3", NULL, 1900);
	apply(&st, &big);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "big"), "n2", why, sizeof(why)), 0);
	running_vm(&st, "d", "n2", 2, NULL, 1);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "big"), "n2", why, sizeof(why)), -ENOSPC);
	assert_string_equal(why, "host n2 has 1899 MiB free, vm big needs 1900 MiB");

	/* a lost host is never a candidate: n2 (1899 MiB free) is the only one with room */
	assert_int_equal(gw_coord_place(&st, "x", 1500, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n2");
	uint32_t members[] = {1, 3};
	gw_coord_state_members(&st, members, 2, 6000);
	assert_int_equal(gw_coord_place(&st, "x", 1500, NULL, NULL, NULL, out, sizeof(out)), -ENOSPC);
	gw_coord_state_free(&st);
}

/* VM backends: a live migration's target runs VMs on the source host's backend (placement for
 * an evacuation, fits for a migration, MIGRATE_START); unknown backends (older agents) do not
 * restrict; restarts (fresh boots) go anywhere. The snapshot carries the backend. */
static void test_placement_backends(void **state)
{
	struct gw_coord_state st, copy;
	char out[GW_COORD_NAME_MAX], why[256];
	static const char *const backend[] = {"kvm", "process", "kvm"};
	static const uint64_t mem[] = {1000, 4000, 2000};

	gw_coord_state_init(&st, NULL);
	for (uint32_t i = 1; i <= 3; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%u", i);
		struct msg h = hello_backend(i, name, mem[i - 1], backend[i - 1]);
		apply(&st, &h);
	}
	assert_string_equal(host_of(&st, "n1")->vm_backend, "kvm");
	assert_string_equal(host_of(&st, "n2")->vm_backend, "process");
	running_vm(&st, "a", "n1", 1, NULL, 100);
	/* a fresh start goes to the most free memory, whatever the backend */
	assert_int_equal(gw_coord_place(&st, "x", 10, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n2");
	/* a migration off a kvm host: the other kvm host, though n2 has more room */
	assert_int_equal(gw_coord_place(&st, "a", 100, NULL, NULL, "kvm", out, sizeof(out)), 0);
	assert_string_equal(out, "n3");
	assert_int_equal(gw_coord_place(&st, "a", 2100, NULL, NULL, "kvm", out, sizeof(out)), -ENOSPC);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "a"), "n2", why, sizeof(why)), -EXDEV);
	assert_true(str_has(why, "process") && str_has(why, "kvm"));
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "a"), "n3", why, sizeof(why)), 0);
	struct msg to2 = mstart("a", "n1", "n2", 21);
	apply(&st, &to2);
	assert_string_equal(vm_of(&st, "a")->migrate_to, "");
	assert_last_event(&st, "migration-rejected", "n1", "a", "same VM backend");
	/* an agent that does not say (older): not restricted either way */
	struct msg h4 = hello_backend(4, "n4", 8000, NULL);
	apply(&st, &h4);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "a"), "n4", why, sizeof(why)), 0);
	assert_int_equal(gw_coord_place(&st, "a", 100, NULL, NULL, "kvm", out, sizeof(out)), 0);
	assert_string_equal(out, "n4");
	/* a joining member learns the backends from the snapshot */
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(gw_coord_state_encode(&st, 1, true, &buf, &len), 0);
	gw_coord_state_init(&copy, NULL);
	assert_int_equal(gw_coord_state_decode(&copy, buf, len), 0);
	free(buf);
	assert_string_equal(host_of(&copy, "n2")->vm_backend, "process");
	assert_string_equal(host_of(&copy, "n4")->vm_backend, "");
	gw_coord_state_free(&copy);
	gw_coord_state_free(&st);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_maintenance_enter_exit),
	    cmocka_unit_test(test_maintenance_restarts),
	    cmocka_unit_test(test_evacuation_vm_by_vm),
	    cmocka_unit_test(test_evacuation_stops),
	    cmocka_unit_test(test_placement_rules),
	    cmocka_unit_test(test_placement_backends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
