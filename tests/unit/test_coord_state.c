/* test_coord_state.c -- the coordinator's cluster state: apply is deterministic, fencing gates
 * restarts, placement. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.pb-c.h"
#include "coord_state.h"
#include "coord_test_msgs.h"
#include "gw_fsutil.h"

static struct msg define_vm(const char *name, const char *host, bool ha, uint32_t prio,
			    const char *group, uint32_t mem)
{
	GwClVm v = GW_CL_VM__INIT;
	GwClVmDefine d = GW_CL_VM_DEFINE__INIT;
	v.name = (char *)name;
	v.host = (char *)host;
	v.state = "starting";
	v.ha = ha;
	v.has_priority = 1;
	v.priority = prio;
	v.anti_affinity = (char *)group;
	v.image = "/img/hello.elf";
	v.memory_mib = mem;
	d.vm = &v;
	d.time_ms = 2000;
	return pack(GW_CL_MSG_TYPE__GW_CL_VM_DEFINE, &d, 1);
}

static struct msg fence(uint16_t type, const char *host, uint32_t attempt)
{
	GwClFence f = GW_CL_FENCE__INIT;
	f.host = (char *)host;
	f.has_attempt = 1;
	f.attempt = attempt;
	f.detail = "test";
	f.time_ms = 4000;
	return pack(type, &f, 1);
}

static struct msg restart(const char *name, const char *target)
{
	GwClVmRestart r = GW_CL_VM_RESTART__INIT;
	r.name = (char *)name;
	r.target = (char *)target;
	r.time_ms = 5000;
	return pack(GW_CL_MSG_TYPE__GW_CL_VM_RESTART, &r, 1);
}

static void encode(const struct gw_coord_state *st, uint8_t **buf, size_t *len)
{
	assert_int_equal(gw_coord_state_encode(st, 0, false, buf, len), 0);
}

/* Bad input is refused without touching the state: unknown type, undecodable payload. */
static void test_apply_invalid(void **state)
{
	struct gw_coord_state st;
	uint8_t junk[] = {0xff, 0xff, 0xff};
	gw_coord_state_init(&st, NULL);
	assert_int_equal(gw_coord_state_apply(&st, 999, junk, sizeof(junk), 1), -EOPNOTSUPP);
	assert_int_equal(gw_coord_state_apply(&st, 42, junk, sizeof(junk), 1), -EOPNOTSUPP);
	assert_int_equal(gw_coord_state_apply(&st, GW_CL_MSG_TYPE__GW_CL_SNAPSHOT, junk, 3, 1),
			 -EOPNOTSUPP);
	assert_int_equal(gw_coord_state_apply(&st, GW_CL_MSG_TYPE__GW_CL_HELLO, junk, 3, 1),
			 -EBADMSG);
	assert_int_equal(st.n_hosts, 0);
	assert_int_equal(st.n_events, 0);
	gw_coord_state_free(&st);
}

/* The same messages in the same order give byte-identical states (and the same events). */
static void test_apply_deterministic(void **state)
{
	struct msg seq[] = {
	    hello(2, "n2", 4096),
	    hello(1, "n1", 4096),
	    hello(3, "n3", 4096),
	    define_vm("b", "n3", true, 5, "g", 64),
	    define_vm("a", "n3", false, 0, NULL, 64),
	    vmstate("b", "n3", "running", 3),
	    vmstate("a", "n3", "running", 3),
	    define_vm("a", "n1", true, 1, NULL, 64), /* duplicate: rejected with an event */
	};
	struct gw_coord_state s1, s2;
	uint8_t *b1, *b2;
	size_t l1, l2;
	gw_coord_state_init(&s1, NULL);
	gw_coord_state_init(&s2, NULL);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		apply(&s1, &seq[i]);
		apply(&s2, &seq[i]);
	}
	uint32_t members[] = {1, 2};
	gw_coord_state_members(&s1, members, 2, 6000);
	gw_coord_state_members(&s2, members, 2, 6000);
	encode(&s1, &b1, &l1);
	encode(&s2, &b2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	/* hosts sorted by node id, VMs by name, whatever the arrival order */
	assert_int_equal(s1.hosts[0].nodeid, 1);
	assert_string_equal(s1.vms[0].name, "a");
	assert_false(s1.vms[0].ha); /* the duplicate define did not overwrite it */
	assert_int_equal(gw_coord_host_by_name(&s1, "n3")->state, GW_HOST_LOST);

	/* a snapshot of it decodes to the same state */
	struct gw_coord_state s3;
	uint8_t *b3;
	size_t l3;
	gw_coord_state_init(&s3, NULL);
	assert_int_equal(gw_coord_state_decode(&s3, b1, l1), 0);
	encode(&s3, &b3, &l3);
	assert_int_equal(l3, l1);
	assert_memory_equal(b3, b1, l1);
	assert_int_equal(gw_coord_state_decode(&s3, (const uint8_t *)"\xff\xff", 2), -EBADMSG);
	free(b1);
	free(b2);
	free(b3);
	gw_coord_state_free(&s1);
	gw_coord_state_free(&s2);
	gw_coord_state_free(&s3);
}

/* The balancing parts of a snapshot (rules, the last run with its predecessors' outcomes)
 * survive encode / decode: a member that joins later answers a replaced run's asker. */
static void test_snapshot_drs_parts(void **state)
{
	struct gw_coord_state s1, s2;
	uint8_t *b1, *b2;
	size_t l1, l2;
	gw_coord_state_init(&s1, NULL);
	gw_coord_state_init(&s2, NULL);
	struct gw_coord_rule *r = &s1.rules[s1.n_rules++];
	snprintf(r->name, sizeof(r->name), "spread");
	r->kind = GW_COORD_RULE_ANTI_AFFINITY;
	r->must = true;
	snprintf(r->vms[r->n_vms++], sizeof(r->vms[0]), "a1");
	snprintf(r->vms[r->n_vms++], sizeof(r->vms[0]), "a2");
	s1.bal.id = 9;
	snprintf(s1.bal.state, sizeof(s1.bal.state), "running");
	s1.bal.past[0] =
	    (struct gw_coord_bal_past){.id = 7, .state = "done", .n_moves = 3, .n_done = 3};
	s1.bal.past[1] =
	    (struct gw_coord_bal_past){.id = 8, .state = "failed", .n_moves = 2, .n_done = 1};
	s1.bal.n_past = 2;
	encode(&s1, &b1, &l1);
	assert_int_equal(gw_coord_state_decode(&s2, b1, l1), 0);
	assert_int_equal(s2.n_rules, 1);
	assert_string_equal(s2.rules[0].name, "spread");
	assert_int_equal(s2.rules[0].n_vms, 2);
	assert_true(s2.rules[0].must);
	assert_int_equal(s2.bal.n_past, 2);
	assert_int_equal(s2.bal.past[1].id, 8);
	assert_string_equal(s2.bal.past[1].state, "failed");
	assert_int_equal(s2.bal.past[1].n_moves, 2);
	assert_int_equal(s2.bal.past[1].n_done, 1);
	encode(&s2, &b2, &l2);
	assert_int_equal(l2, l1);
	assert_memory_equal(b2, b1, l1);
	free(b1);
	free(b2);
	gw_coord_state_free(&s1);
	gw_coord_state_free(&s2);
}

/* A lost host's VMs move only after FENCE_CONFIRMED; HA ones become pending, others lost. */
static void test_fencing_gates_restart(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 4096);
	struct msg m[] = {define_vm("ha1", "n3", true, 1, NULL, 64),
			  define_vm("plain", "n3", false, 0, NULL, 64)};
	apply(&st, &m[0]);
	apply(&st, &m[1]);
	uint32_t members[] = {1, 2};
	gw_coord_state_members(&st, members, 2, 6000);
	assert_int_equal(gw_coord_host_by_name(&st, "n3")->state, GW_HOST_LOST);
	assert_null(gw_coord_next_pending(&st));

	/* a restart before the fence is refused */
	struct msg r = restart("ha1", "n1");
	apply(&st, &r);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_STARTING);
	assert_string_equal(gw_coord_vm_find(&st, "ha1")->host, "n3");

	/* confirmation without a FENCE_START is ignored; a failure changes nothing */
	struct msg conf = fence(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, "n3", 1);
	apply(&st, &conf);
	assert_int_equal(gw_coord_host_by_name(&st, "n3")->state, GW_HOST_LOST);
	struct msg start = fence(GW_CL_MSG_TYPE__GW_CL_FENCE_START, "n3", 1);
	struct msg failed = fence(GW_CL_MSG_TYPE__GW_CL_FENCE_FAILED, "n3", 1);
	apply(&st, &start);
	apply(&st, &failed);
	assert_int_equal(gw_coord_host_by_name(&st, "n3")->state, GW_HOST_FENCING);
	assert_null(gw_coord_next_pending(&st));

	apply(&st, &conf);
	assert_int_equal(gw_coord_host_by_name(&st, "n3")->state, GW_HOST_FENCED);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_PENDING);
	assert_int_equal(gw_coord_vm_find(&st, "plain")->state, GW_CVM_LOST);
	assert_ptr_equal(gw_coord_next_pending(&st), gw_coord_vm_find(&st, "ha1"));

	/* a restart onto a host that is not up is refused; onto n1 it goes */
	struct msg bad = restart("ha1", "n3");
	apply(&st, &bad);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_PENDING);
	apply(&st, &r);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_STARTING);
	assert_string_equal(gw_coord_vm_find(&st, "ha1")->host, "n1");

	/* only the VM's host may report its state */
	struct msg liar = vmstate("ha1", "n2", "running", 2);
	apply(&st, &liar);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_STARTING);
	/* a failed restart is retried (pending) until the bound, then failed */
	for (unsigned i = 1; i < GW_COORD_MAX_RESTARTS; i++) {
		struct msg f = vmstate("ha1", gw_coord_vm_find(&st, "ha1")->host, "failed", 1);
		apply(&st, &f);
		assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_PENDING);
		struct msg again = restart("ha1", i % 2 ? "n2" : "n1");
		apply(&st, &again);
	}
	struct msg last = vmstate("ha1", gw_coord_vm_find(&st, "ha1")->host, "failed", 1);
	apply(&st, &last);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_FAILED);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->restarts, GW_COORD_MAX_RESTARTS);

	/* the host coming back is up again */
	struct msg back = hello(3, "n3", 4096);
	apply(&st, &back);
	assert_int_equal(gw_coord_host_by_name(&st, "n3")->state, GW_HOST_UP);
	gw_coord_state_free(&st);
}

/* A VM that crashes on a live host: HA ones are restarted (bounded), the others fail; a
 * report from another host or for a VM that is not running changes nothing. */
static void test_crash_restart(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 4096);
	struct msg m[] = {define_vm("ha1", "n1", true, 1, NULL, 64),
			  define_vm("plain", "n1", false, 0, NULL, 64)};
	apply(&st, &m[0]);
	apply(&st, &m[1]);
	struct msg up1 = vmstate("ha1", "n1", "running", 2),
		   up2 = vmstate("plain", "n1", "running", 2);
	apply(&st, &up1);
	apply(&st, &up2);
	struct msg liar = vmstate("ha1", "n2", "crashed", 3);
	apply(&st, &liar);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_RUNNING);

	struct msg c1 = vmstate("ha1", "n1", "crashed", 3),
		   c2 = vmstate("plain", "n1", "crashed", 3);
	apply(&st, &c1);
	apply(&st, &c2);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_PENDING);
	assert_int_equal(gw_coord_vm_find(&st, "plain")->state, GW_CVM_FAILED);
	assert_ptr_equal(gw_coord_next_pending(&st), gw_coord_vm_find(&st, "ha1"));
	/* a crash loop ends at the restart limit */
	for (unsigned i = 0; i < GW_COORD_MAX_RESTARTS; i++) {
		struct msg r = restart("ha1", "n1"), up = vmstate("ha1", "n1", "running", 4);
		apply(&st, &r);
		apply(&st, &up);
		struct msg c = vmstate("ha1", "n1", "crashed", 5);
		apply(&st, &c);
	}
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->state, GW_CVM_FAILED);
	assert_int_equal(gw_coord_vm_find(&st, "ha1")->restarts, GW_COORD_MAX_RESTARTS);
	gw_coord_state_free(&st);
}

/* Placement: most free memory, anti-affinity, capacity; priority order of pending VMs. */
static void test_placement(void **state)
{
	struct gw_coord_state st;
	char out[GW_COORD_NAME_MAX];
	three_hosts(&st, 1000);
	struct msg m[] = {define_vm("a", "n1", true, 1, "g", 600),
			  define_vm("b", "n2", true, 1, NULL, 300)};
	apply(&st, &m[0]);
	apply(&st, &m[1]);
	assert_int_equal(gw_coord_place(&st, "x", 100, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n3"); /* 1000 free */
	assert_int_equal(gw_coord_place(&st, "x", 800, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n3");
	assert_int_equal(gw_coord_place(&st, "x", 1001, NULL, NULL, NULL, out, sizeof(out)),
			 -ENOSPC);
	struct msg c = define_vm("c", "n3", true, 1, "g", 600);
	apply(&st, &c);
	/* n1 and n3 hold group g; n2 has 700 free */
	assert_int_equal(gw_coord_place(&st, "x", 500, "g", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n2");
	assert_int_equal(gw_coord_place(&st, "x", 800, "g", NULL, NULL, out, sizeof(out)), -ENOSPC);
	/* ties: lowest node id */
	struct gw_coord_state t;
	three_hosts(&t, 1000);
	assert_int_equal(gw_coord_place(&t, "x", 1, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n1");
	gw_coord_state_free(&t);
	/* pending order: priority, then name */
	struct msg d[] = {define_vm("p1", "n3", true, 1, NULL, 1),
			  define_vm("p9", "n3", true, 9, NULL, 1),
			  define_vm("p9b", "n3", true, 9, NULL, 1)};
	for (int i = 0; i < 3; i++)
		apply(&st, &d[i]);
	uint32_t members[] = {1, 2};
	gw_coord_state_members(&st, members, 2, 1);
	struct msg s = fence(GW_CL_MSG_TYPE__GW_CL_FENCE_START, "n3", 1);
	struct msg cf = fence(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, "n3", 1);
	apply(&st, &s);
	apply(&st, &cf);
	assert_string_equal(gw_coord_next_pending(&st)->name, "p9");
	gw_coord_state_free(&st);
}

/* The durable copy: saved on every apply, loaded back identical. */
static void test_durable(void **state)
{
	char dir[] = "/tmp/gw-test-coord-XXXXXX", path[64];
	struct gw_coord_state st, back;
	uint8_t *b1, *b2;
	size_t l1, l2;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cluster.state", dir);
	gw_coord_state_init(&st, path);
	gw_coord_state_init(&back, path);
	assert_int_equal(gw_coord_state_load(&back), -ENOENT);
	struct msg h = hello(1, "n1", 100), d = define_vm("v", "n1", true, 3, "g", 10);
	apply(&st, &h);
	apply(&st, &d);
	assert_int_equal(gw_coord_state_load(&back), 0);
	encode(&st, &b1, &l1);
	encode(&back, &b2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b1);
	free(b2);
	gw_coord_state_free(&st);
	gw_coord_state_free(&back);
	gw_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_apply_invalid),
	    cmocka_unit_test(test_apply_deterministic),
	    cmocka_unit_test(test_snapshot_drs_parts),
	    cmocka_unit_test(test_fencing_gates_restart),
	    cmocka_unit_test(test_crash_restart),
	    cmocka_unit_test(test_placement),
	    cmocka_unit_test(test_durable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
