/* test_coord_admin.c -- VM_ADMIN applied to the cluster state (coord_state_admin.c): stop, start
 * and delete of cluster VMs in every state, refusals, failover of stopped HA VMs, and the
 * snapshot carrying the new state and the tombstones. Real functions, no mocks. */
#include "coord_test_msgs.h"

static struct msg unplaced_msg(const char *name)
{
	GwClVmRestart r = GW_CL_VM_RESTART__INIT;
	r.name = (char *)name;
	r.reason = "no room";
	r.time_ms = 5000;
	return pack(GW_CL_MSG_TYPE__GW_CL_VM_UNPLACED, &r, 1);
}

/* n3 leaves the membership, is fenced and confirmed off. */
static void fence_n3(struct gw_coord_state *st)
{
	uint32_t members[] = {1, 2};
	gw_coord_state_members(st, members, 2, 6000);
	struct msg s = fence_msg(GW_CL_MSG_TYPE__GW_CL_FENCE_START, "n3");
	struct msg c = fence_msg(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, "n3");
	apply(st, &s);
	apply(st, &c);
	assert_int_equal(host_of(st, "n3")->state, GW_HOST_FENCED);
}

static bool has_event(const struct gw_coord_state *st, const char *kind, const char *vm)
{
	for (size_t i = 0; i < st->n_events; i++) {
		const struct gw_coord_event *e =
		    &st->events[(st->ev_first + i) % GW_COORD_MAX_EVENTS];
		if (strcmp(e->kind, kind) == 0 && strcmp(e->vm, vm) == 0)
			return true;
	}
	return false;
}

/* stop: starting, running, pending and unplaced VMs stop; the others are refused. */
static void test_stop(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	struct msg stop_a = admin("a", "stop");
	apply(&st, &stop_a);
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_STOPPED);
	assert_string_equal(vm_of(&st, "a")->host, "n1");
	assert_last_event(&st, "vm-stopped", "n1", "a", "was running");
	assert_string_equal(gw_coord_vm_state_name(GW_CVM_STOPPED), "stopped");

	/* stopped twice: refused, nothing changes */
	assert_refused(&st, &stop_a, "vm-stop-refused", "n1", "a", "VM is stopped");
	/* a late "running" report of its host does not start it again */
	struct msg run_a = vmstate("a", "n1", "running", 1);
	assert_refused(&st, &run_a, "vm-state-ignored", "n1", "a", "stopped by an operator");
	/* a stopped VM holds no memory: a 1000 MiB VM fits n1 */
	char out[GW_COORD_NAME_MAX];
	assert_int_equal(gw_coord_place(&st, "x", 1000, NULL, NULL, NULL, out, sizeof(out)), 0);

	/* starting */
	struct msg d = define("b", "n2", NULL, 100), stop_b = admin("b", "stop");
	apply(&st, &d);
	apply(&st, &stop_b);
	assert_int_equal(vm_of(&st, "b")->state, GW_CVM_STOPPED);
	assert_last_event(&st, "vm-stopped", "n2", "b", "was starting");

	/* failed: refused */
	running_vm(&st, "c", "n2", 2, NULL, 100);
	struct msg fail_c = vmstate("c", "n2", "failed", 2), stop_c = admin("c", "stop");
	apply(&st, &fail_c);
	assert_int_equal(vm_of(&st, "c")->state, GW_CVM_FAILED);
	assert_refused(&st, &stop_c, "vm-stop-refused", "n2", "c", "VM is failed");

	/* migrating: refused */
	running_vm(&st, "m", "n2", 2, NULL, 100);
	struct msg ms = mstart("m", "n2", "n1", 5), stop_m = admin("m", "stop");
	apply(&st, &ms);
	assert_string_equal(vm_of(&st, "m")->migrate_to, "n1");
	assert_refused(&st, &stop_m, "vm-stop-refused", "n2", "m", "migrating to n1");

	/* no such VM, unknown action */
	struct msg none = admin("zz", "stop"), bad = admin("a", "reboot");
	assert_refused(&st, &none, "vm-admin-refused", "", "zz", "no such cluster VM");
	assert_refused(&st, &bad, "vm-admin-refused", "n1", "a", "unknown action");
	gw_coord_state_free(&st);
}

/* A pending restart is dropped by stop; an unplaced VM stops too. */
static void test_stop_pending(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "p", "n3", 3, NULL, 100);
	running_vm(&st, "u", "n3", 3, NULL, 100);
	fence_n3(&st);
	assert_int_equal(vm_of(&st, "p")->state, GW_CVM_PENDING);
	struct msg un = unplaced_msg("u");
	apply(&st, &un);
	assert_int_equal(vm_of(&st, "u")->state, GW_CVM_UNPLACED);
	struct msg sp = admin("p", "stop"), su = admin("u", "stop");
	apply(&st, &sp);
	apply(&st, &su);
	assert_int_equal(vm_of(&st, "p")->state, GW_CVM_STOPPED);
	assert_int_equal(vm_of(&st, "u")->state, GW_CVM_STOPPED);
	assert_null(gw_coord_next_pending(&st));
	/* the acting member's VM_RESTART sent before the stop is ignored */
	GwClVmRestart r = GW_CL_VM_RESTART__INIT;
	r.name = "p";
	r.target = "n1";
	r.time_ms = 5000;
	struct msg rs = pack(GW_CL_MSG_TYPE__GW_CL_VM_RESTART, &r, 1);
	assert_refused(&st, &rs, "vm-restart-ignored", "n1", "p", NULL);
	gw_coord_state_free(&st);
}

/* A stopped HA VM whose host is fenced stays stopped: never restarted by failover. */
static void test_stopped_ha_not_restarted(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "h", "n3", 3, NULL, 100);
	assert_true(vm_of(&st, "h")->ha);
	struct msg stop = admin("h", "stop");
	apply(&st, &stop);
	fence_n3(&st);
	assert_int_equal(vm_of(&st, "h")->state, GW_CVM_STOPPED);
	assert_int_equal(vm_of(&st, "h")->restarts, 0);
	assert_null(gw_coord_next_pending(&st));
	assert_false(has_event(&st, "vm-restart-pending", "h"));
	/* n3 coming back does not start it either */
	struct msg back = hello(3, "n3", 1000);
	apply(&st, &back);
	assert_int_equal(vm_of(&st, "h")->state, GW_CVM_STOPPED);
	gw_coord_state_free(&st);
}

/* start: on its own host when it is up and the VM fits, else placed anew, else refused. */
static void test_start(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	struct msg stop = admin("a", "stop"), start = admin("a", "start");
	apply(&st, &stop);
	apply(&st, &start);
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_STARTING);
	assert_string_equal(vm_of(&st, "a")->host, "n1");
	assert_string_equal(vm_of(&st, "a")->reason, "");
	assert_last_event(&st, "vm-start", "n1", "a", "starting on n1 (was stopped)");
	/* starting / running: refused */
	assert_refused(&st, &start, "vm-start-refused", "n1", "a", "VM is starting");
	struct msg run = vmstate("a", "n1", "running", 1);
	apply(&st, &run);
	assert_refused(&st, &start, "vm-start-refused", "n1", "a", "VM is running");

	/* failed -> its host */
	struct msg fail = vmstate("a", "n1", "failed", 1);
	apply(&st, &fail);
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_FAILED);
	apply(&st, &start);
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_STARTING);
	assert_string_equal(vm_of(&st, "a")->host, "n1");

	/* its host in maintenance: placed anew (n3 has the most room) */
	apply(&st, &stop);
	running_vm(&st, "big2", "n2", 2, NULL, 300);
	struct msg enter = maint(T_ENTER, "n1", 1, NULL);
	apply(&st, &enter);
	apply(&st, &start);
	assert_string_equal(vm_of(&st, "a")->host, "n3");
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_STARTING);
	assert_last_event(&st, "vm-start", "n3", "a", "host n1 is maintenance");

	/* its host up but full: placed anew */
	struct msg exitm = maint(T_EXIT, "n1", 1, NULL);
	apply(&st, &exitm);
	apply(&st, &stop);
	running_vm(&st, "fill", "n3", 3, NULL, 950);
	apply(&st, &start);
	assert_string_equal(vm_of(&st, "a")->host, "n1");
	assert_last_event(&st, "vm-start", "n1", "a", "has 50 MiB free");

	/* nothing fits: refused, it stays stopped */
	struct msg d = define("huge", "n2", NULL, 900), sh = admin("huge", "stop"),
		   sth = admin("huge", "start");
	apply(&st, &d);
	apply(&st, &sh);
	running_vm(&st, "f1", "n1", 1, NULL, 500);
	running_vm(&st, "f2", "n2", 2, NULL, 500);
	assert_refused(&st, &sth, "vm-start-refused", "n2", "huge", "no other up host");
	assert_int_equal(vm_of(&st, "huge")->state, GW_CVM_STOPPED);
	gw_coord_state_free(&st);
}

/* start of a lost VM (not HA, host fenced) and of a stopped HA VM of a fenced host. */
static void test_start_after_fence(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "l", "n3", 3, NULL, 100);
	vm_of(&st, "l")->ha = false;
	running_vm(&st, "h", "n3", 3, NULL, 100);
	struct msg stop = admin("h", "stop");
	apply(&st, &stop);
	fence_n3(&st);
	assert_int_equal(vm_of(&st, "l")->state, GW_CVM_LOST);
	struct msg sl = admin("l", "start"), sh = admin("h", "start");
	apply(&st, &sl);
	apply(&st, &sh);
	assert_int_equal(vm_of(&st, "l")->state, GW_CVM_STARTING);
	assert_int_equal(vm_of(&st, "h")->state, GW_CVM_STARTING);
	assert_string_not_equal(vm_of(&st, "l")->host, "n3");
	assert_string_not_equal(vm_of(&st, "h")->host, "n3");
	assert_last_event(&st, "vm-start", vm_of(&st, "h")->host, "h", "host n3 is fenced");
	gw_coord_state_free(&st);
}

/* delete: stopped, failed, lost, unplaced VMs go (with a tombstone); the others are refused. */
static void test_delete(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "r", "n1", 1, NULL, 100);
	struct msg dr = admin("r", "delete");
	assert_refused(&st, &dr, "vm-delete-refused", "n1", "r", "VM is running: stop it first");
	struct msg d = define("s", "n1", NULL, 100), ds = admin("s", "delete");
	apply(&st, &d);
	assert_refused(&st, &ds, "vm-delete-refused", "n1", "s", "VM is starting");

	struct msg stop = admin("r", "stop");
	apply(&st, &stop);
	apply(&st, &dr);
	assert_null(gw_coord_vm_find(&st, "r"));
	assert_int_equal(st.n_vms, 1);
	assert_int_equal(st.n_deleted, 1);
	assert_string_equal(st.deleted[0].name, "r");
	assert_string_equal(st.deleted[0].host, "n1");
	assert_last_event(&st, "vm-deleted", "n1", "r", "was stopped");
	struct msg again = admin("r", "delete");
	assert_refused(&st, &again, "vm-admin-refused", "", "r", "no such cluster VM");

	/* failed */
	struct msg fs = vmstate("s", "n1", "failed", 1);
	apply(&st, &fs);
	apply(&st, &ds);
	assert_null(gw_coord_vm_find(&st, "s"));

	/* pending refused, unplaced and lost deleted */
	running_vm(&st, "p", "n3", 3, NULL, 100);
	running_vm(&st, "u", "n3", 3, NULL, 100);
	running_vm(&st, "l", "n3", 3, NULL, 100);
	vm_of(&st, "l")->ha = false;
	fence_n3(&st);
	struct msg dp = admin("p", "delete"), du = admin("u", "delete"), dl = admin("l", "delete");
	assert_refused(&st, &dp, "vm-delete-refused", "n3", "p", "VM is pending");
	struct msg un = unplaced_msg("u");
	apply(&st, &un);
	apply(&st, &du);
	apply(&st, &dl);
	assert_null(gw_coord_vm_find(&st, "u"));
	assert_null(gw_coord_vm_find(&st, "l"));
	assert_int_equal(st.n_vms, 1);
	assert_int_equal(st.n_deleted, 4);

	/* tombstones: the last GW_COORD_MAX_DELETED, oldest first */
	for (int i = 0; i < GW_COORD_MAX_DELETED; i++) {
		char name[16];
		snprintf(name, sizeof(name), "t%02d", i);
		struct msg td = define(name, "n2", NULL, 1), tf = vmstate(name, "n2", "failed", 2),
			   tx = admin(name, "delete");
		apply(&st, &td);
		apply(&st, &tf);
		apply(&st, &tx);
	}
	assert_int_equal(st.n_deleted, GW_COORD_MAX_DELETED);
	assert_string_equal(st.deleted[0].name, "t00");
	assert_string_equal(st.deleted[GW_COORD_MAX_DELETED - 1].name, "t31");
	gw_coord_state_free(&st);
}

static void encode(const struct gw_coord_state *st, uint8_t **buf, size_t *len)
{
	assert_int_equal(gw_coord_state_encode(st, 1, true, buf, len), 0);
}

/* Two members applying the same messages hold the same bytes; the snapshot carries stopped
 * VMs and tombstones, and a joiner from it goes on identically. */
static void test_determinism_snapshot(void **state)
{
	struct gw_coord_state a, b, j;
	three_hosts(&a, 1000);
	three_hosts(&b, 1000);
	struct gw_coord_state *both[] = {&a, &b};
	for (int k = 0; k < 2; k++) {
		running_vm(both[k], "x", "n3", 3, NULL, 100);
		running_vm(both[k], "y", "n2", 2, NULL, 100);
		running_vm(both[k], "z", "n1", 1, NULL, 100);
		struct msg m1 = admin("x", "stop"), m2 = admin("y", "stop"),
			   m3 = admin("y", "delete");
		apply(both[k], &m1);
		apply(both[k], &m2);
		apply(both[k], &m3);
	}
	uint8_t *ea, *eb, *ej;
	size_t la, lb, lj;
	encode(&a, &ea, &la);
	encode(&b, &eb, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ea, eb, la);

	gw_coord_state_init(&j, NULL);
	assert_int_equal(gw_coord_state_decode(&j, ea, la), 0);
	assert_int_equal(vm_of(&j, "x")->state, GW_CVM_STOPPED);
	assert_int_equal(j.n_deleted, 1);
	assert_string_equal(j.deleted[0].name, "y");
	assert_string_equal(j.deleted[0].host, "n2");
	encode(&j, &ej, &lj);
	assert_int_equal(lj, la);
	assert_memory_equal(ej, ea, la);
	free(ej);

	/* the same next messages on the joiner and an old member: the same state */
	struct gw_coord_state *go[] = {&a, &j};
	for (int k = 0; k < 2; k++) {
		uint32_t members[] = {1, 2};
		gw_coord_state_members(go[k], members, 2, 6000);
		struct msg s = fence_msg(GW_CL_MSG_TYPE__GW_CL_FENCE_START, "n3");
		struct msg c = fence_msg(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, "n3");
		struct msg st = admin("x", "start");
		apply(go[k], &s);
		apply(go[k], &c);
		apply(go[k], &st);
	}
	free(ea);
	encode(&a, &ea, &la);
	encode(&j, &ej, &lj);
	assert_int_equal(la, lj);
	assert_memory_equal(ea, ej, la);
	assert_string_equal(vm_of(&j, "x")->host, "n2"); /* n1 holds z: n2 has more room */
	free(ea);
	free(eb);
	free(ej);
	gw_coord_state_free(&a);
	gw_coord_state_free(&b);
	gw_coord_state_free(&j);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_stop_pending),
	    cmocka_unit_test(test_stopped_ha_not_restarted),
	    cmocka_unit_test(test_start),
	    cmocka_unit_test(test_start_after_fence),
	    cmocka_unit_test(test_delete),
	    cmocka_unit_test(test_determinism_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
