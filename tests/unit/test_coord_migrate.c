/* test_coord_migrate.c -- the coordinator's apply handlers for live migration (coord_state.c):
 * MIGRATE_START/DONE, refusals of stale, forged or unknown messages, races with fencing and VM
 * failures, and determinism through the snapshot encoder. Real functions, no mocks. */
#include "coord_test_msgs.h"

/* ---- live migration ---- */

/* START marks the migration (memory held on both ends); a completed DONE moves the VM. */
static void test_migrate_completed(void **state)
{
	struct gw_coord_state st;
	char out[GW_COORD_NAME_MAX], why[256];
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 300);

	struct msg s = mstart("a", "n1", "n2", 7); /* any member may ask: sent by node 3 */
	apply(&st, &s);
	struct gw_coord_vm *a = vm_of(&st, "a");
	assert_string_equal(a->migrate_to, "n2");
	assert_int_equal(a->mig_id, 7);
	assert_string_equal(a->host, "n1");
	assert_int_equal(a->state, GW_CVM_RUNNING);
	assert_string_equal(a->migrate_error, "");
	assert_last_event(&st, "migration-started", "n1", "a", "n1 -> n2");

	/* under way, its memory counts on the source and on the target */
	struct msg big = define("big", "n3", NULL, 701);
	apply(&st, &big);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "big"), "n2", why, sizeof(why)), -ENOSPC);
	assert_true(str_has(why, "700 MiB free"));
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "big"), "n1", why, sizeof(why)), -ENOSPC);
	assert_int_equal(gw_coord_place(&st, "x", 701, NULL, NULL, NULL, out, sizeof(out)), -ENOSPC);
	assert_int_equal(gw_coord_place(&st, "x", 700, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n1"); /* n1 and n2 tie at 700 free: lowest node id */

	/* only its host reports its state while it migrates */
	struct msg early = vmstate("a", "n2", "running", 2);
	assert_refused(&st, &early, "vm-state-ignored", "n2", "a", NULL);

	struct msg d = mdone("a", "n1", "n2", 7, "completed", "", 1);
	apply(&st, &d);
	a = vm_of(&st, "a");
	assert_string_equal(a->host, "n2");
	assert_string_equal(a->migrate_to, "");
	assert_int_equal(a->state, GW_CVM_RUNNING);
	assert_int_equal(a->mig_id, 7);
	assert_string_equal(a->migrate_error, "");
	assert_last_event(&st, "migration-done", "n2", "a", "n1 -> n2");

	/* its memory left n1: 1000 free there again, 700 on n2 */
	assert_int_equal(gw_coord_place(&st, "x", 1000, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n1");
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "big"), "n2", why, sizeof(why)), -ENOSPC);
	assert_int_equal(gw_coord_fits(&st, vm_of(&st, "big"), "n1", why, sizeof(why)), 0);

	/* the new host owns it now; the old one does not */
	struct msg old = vmstate("a", "n1", "failed", 1);
	assert_refused(&st, &old, "vm-state-ignored", "n1", "a", NULL);
	struct msg now = vmstate("a", "n2", "failed", 2);
	apply(&st, &now);
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_FAILED);
	gw_coord_state_free(&st);
}

/* Anything but "completed" leaves the VM where it was, running, with the reason and an event;
 * the target's memory is released and a retry goes through. */
static void test_migrate_not_completed(void **state)
{
	static const struct {
		const char *result, *error, *want_error;
	} cases[] = {
	    {"failed", "no acknowledgement from 198.18.0.2:7420: Connection timed out",
	     "failed: no acknowledgement from 198.18.0.2:7420: Connection timed out"},
	    {"cancelled", "cancelled by the operator", "cancelled: cancelled by the operator"},
	    {"failed", "", "failed: no reason"},
	    {NULL, NULL, "failed: no reason"},
	    {"aborted", "destination aborted: bad CRC", "aborted: destination aborted: bad CRC"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_coord_state st;
		char why[256];
		three_hosts(&st, 1000);
		running_vm(&st, "a", "n1", 1, "g", 600);
		struct msg s = mstart("a", "n1", "n2", 40 + i);
		apply(&st, &s);
		struct msg d = mdone("a", "n1", "n2", 40 + i, cases[i].result, cases[i].error, 1);
		apply(&st, &d);
		struct gw_coord_vm *a = vm_of(&st, "a");
		assert_string_equal(a->host, "n1");
		assert_int_equal(a->state, GW_CVM_RUNNING);
		assert_string_equal(a->migrate_to, "");
		assert_string_equal(a->migrate_error, cases[i].want_error);
		bool cancelled = cases[i].result && strcmp(cases[i].result, "cancelled") == 0;
		assert_last_event(&st, cancelled ? "migration-cancelled" : "migration-failed", "n1",
				  "a", cases[i].want_error);
		assert_true(str_has(last_event(&st)->text, "stays on n1"));

		/* n2 no longer holds its memory nor its anti-affinity group */
		struct msg b = define("b", "n3", "g", 1000);
		apply(&st, &b);
		assert_int_equal(gw_coord_fits(&st, vm_of(&st, "b"), "n2", why, sizeof(why)), 0);

		/* a retry with a new id goes through, and clears the error */
		struct msg s2 = mstart("a", "n1", "n2", 90 + i);
		apply(&st, &s2);
		assert_string_equal(vm_of(&st, "a")->migrate_to, "n2");
		assert_string_equal(vm_of(&st, "a")->migrate_error, "");
		struct msg d2 = mdone("a", "n1", "n2", 90 + i, "completed", NULL, 1);
		apply(&st, &d2);
		assert_string_equal(vm_of(&st, "a")->host, "n2");
		gw_coord_state_free(&st);
	}
}

/* A MIGRATE_START that does not fit the state is refused: the VM stays, unmoved and not
 * migrating, with the reason in migrate_error (for the asking godwitctl) and an event. */
static void test_migrate_start_refused(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, "g", 400);
	running_vm(&st, "g2", "n2", 2, "g", 100);
	running_vm(&st, "fat", "n3", 3, NULL, 700);
	struct msg starting = define("s", "n1", NULL, 10);
	apply(&st, &starting);

	/* an unknown VM: nothing at all changes but the event */
	struct msg nosuch = mstart("nosuch", "n1", "n3", 5);
	assert_refused(&st, &nosuch, "migration-rejected", "n1", "nosuch", "no such VM");

	static const struct {
		const char *vm, *from, *to, *why;
	} cases[] = {
	    {"a", "n1", "n9", "no host 'n9'"},
	    {"a", "n1", "n1", "already runs on n1"},
	    {"a", "n2", "n3", "VM is on n1, not on n2"},
	    {"a", "n1", "n2", "anti-affinity"},
	    {"a", "n1", "n3", "has 300 MiB free, vm a needs 400 MiB"},
	    {"s", "n1", "n2", "VM is starting, not running"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_coord_vm before = *vm_of(&st, cases[i].vm);
		struct msg m = mstart(cases[i].vm, cases[i].from, cases[i].to, 100 + i);
		apply(&st, &m);
		struct gw_coord_vm *v = vm_of(&st, cases[i].vm);
		assert_string_equal(v->host, before.host);
		assert_int_equal(v->state, before.state);
		assert_string_equal(v->migrate_to, "");
		assert_int_equal(v->mig_id, 100 + i); /* godwitctl follows its id to the refusal */
		if (!str_has(v->migrate_error, cases[i].why))
			fail_msg("case %zu: migrate_error '%s' lacks '%s'", i, v->migrate_error,
				 cases[i].why);
		assert_last_event(&st, "migration-rejected", cases[i].from, cases[i].vm,
				  cases[i].why);
	}

	/* a target that is lost, and a source that is lost */
	uint32_t members[] = {1, 2};
	gw_coord_state_members(&st, members, 2, 6000);
	struct msg tolost = mstart("g2", "n2", "n3", 200);
	apply(&st, &tolost);
	assert_string_equal(vm_of(&st, "g2")->migrate_to, "");
	assert_true(str_has(vm_of(&st, "g2")->migrate_error, "host n3 is lost"));
	struct msg fromlost = mstart("fat", "n3", "n1", 201);
	apply(&st, &fromlost);
	assert_string_equal(vm_of(&st, "fat")->migrate_to, "");
	assert_string_equal(vm_of(&st, "fat")->host, "n3");
	assert_true(str_has(vm_of(&st, "fat")->migrate_error, "source host n3 is lost"));

	/* a VM whose host nobody knows */
	struct msg ghost = define("gh", "ghost", NULL, 10);
	struct msg ghostrun = vmstate("gh", "ghost", "running", 9);
	apply(&st, &ghost);
	apply(&st, &ghostrun);
	struct msg fromghost = mstart("gh", "ghost", "n1", 202);
	apply(&st, &fromghost);
	assert_string_equal(vm_of(&st, "gh")->migrate_to, "");
	assert_true(str_has(vm_of(&st, "gh")->migrate_error, "source host ghost is unknown"));
	gw_coord_state_free(&st);
}

/* Results for a migration not under way (stale id, wrong sender, wrong ends, unknown VM or
 * node, a second copy of the result) are ignored: nothing changes but one event each. */
static void test_migrate_done_stale(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	running_vm(&st, "b", "n1", 1, NULL, 100);

	/* nothing under way for b */
	struct msg idle = mdone("b", "n1", "n2", 1, "completed", NULL, 1);
	assert_refused(&st, &idle, "migration-ignored", "n1", "b", "not under way");

	struct msg s = mstart("a", "n1", "n2", 7);
	apply(&st, &s);
	struct msg stale[] = {
	    mdone("a", "n1", "n2", 6, "completed", NULL, 1),	  /* an older migration's id */
	    mdone("a", "n1", "n2", 7, "completed", NULL, 2),	  /* the target claims it */
	    mdone("a", "n1", "n2", 7, "completed", NULL, 3),	  /* a bystander claims it */
	    mdone("a", "n1", "n2", 7, "completed", NULL, 99),	  /* an unknown node */
	    mdone("a", "n2", "n2", 7, "completed", NULL, 2),	  /* wrong source */
	    mdone("a", "n1", "n3", 7, "completed", NULL, 1),	  /* wrong target */
	    mdone("nosuch", "n1", "n2", 7, "completed", NULL, 1), /* unknown VM */
	    mdone("a", "n1", "n2", 6, "failed", "old news", 1),	  /* a stale failure */
	};
	for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
		const char *vm = i == 6 ? "nosuch" : "a";
		const char *from = i == 4 ? "n2" : "n1";
		assert_refused(&st, &stale[i], "migration-ignored", from, vm, "not under way");
	}
	assert_string_equal(vm_of(&st, "a")->migrate_to, "n2");

	/* the genuine result applies; a second copy of it, or a late failure, does not */
	struct msg d = mdone("a", "n1", "n2", 7, "completed", NULL, 1);
	apply(&st, &d);
	assert_string_equal(vm_of(&st, "a")->host, "n2");
	assert_refused(&st, &d, "migration-ignored", "n1", "a", NULL);
	struct msg late = mdone("a", "n1", "n2", 7, "failed", "too late", 1);
	assert_refused(&st, &late, "migration-ignored", "n1", "a", NULL);
	assert_string_equal(vm_of(&st, "a")->host, "n2");
	assert_string_equal(vm_of(&st, "a")->migrate_error, "");

	/* undecodable payloads are errors, not applied */
	struct frozen f;
	freeze(&st, &f);
	assert_int_equal(gw_coord_state_apply(&st, GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE,
					      (const uint8_t *)"\xff\xff\xff", 3, 1),
			 -EBADMSG);
	assert_int_equal(gw_coord_state_apply(&st, GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER,
					      (const uint8_t *)"\x08", 1, 1),
			 -EBADMSG);
	assert_unchanged(&st, &f, 0);
	gw_coord_state_free(&st);
}

/* A second MIGRATE_START while one is under way is refused and leaves that one alone: it
 * still targets the same host and its own result still applies. */
static void test_migrate_start_duplicate(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	struct msg s = mstart("a", "n1", "n2", 7);
	apply(&st, &s);

	/* the same message twice: refused, the migration goes on */
	apply(&st, &s);
	assert_last_event(&st, "migration-rejected", "n1", "a", "already migrating to n2");
	assert_string_equal(vm_of(&st, "a")->migrate_to, "n2");
	assert_string_equal(vm_of(&st, "a")->host, "n1");
	assert_int_equal(vm_of(&st, "a")->mig_id, 7);

	/* n3 was not reserved by the refused copy */
	char out[GW_COORD_NAME_MAX];
	assert_int_equal(gw_coord_place(&st, "x", 1000, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n3");

	struct msg d = mdone("a", "n1", "n2", 7, "completed", NULL, 1);
	apply(&st, &d);
	assert_string_equal(vm_of(&st, "a")->host, "n2");
	assert_string_equal(vm_of(&st, "a")->migrate_to, "");
	assert_string_equal(vm_of(&st, "a")->migrate_error, "");
	gw_coord_state_free(&st);
}

/* FENCE_CONFIRMED of the source host ends its migration: the VM is handled as its host's. */
static void test_migrate_source_fenced(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	struct msg s = mstart("a", "n1", "n2", 7);
	apply(&st, &s);
	uint32_t members[] = {2, 3};
	gw_coord_state_members(&st, members, 2, 6000);
	GwClFence fs = GW_CL_FENCE__INIT;
	fs.host = "n1";
	fs.time_ms = 6100;
	struct msg start = pack(GW_CL_MSG_TYPE__GW_CL_FENCE_START, &fs, 2);
	struct msg conf = pack(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, &fs, 2);
	apply(&st, &start);
	apply(&st, &conf);
	struct gw_coord_vm *a = vm_of(&st, "a");
	assert_string_equal(a->migrate_to, "");
	assert_string_equal(a->host, "n1");
	assert_int_equal(a->state, GW_CVM_PENDING);
	assert_true(str_has(a->migrate_error, "fenced"));
	/* the dead source's result, if it ever comes, changes nothing */
	struct msg d = mdone("a", "n1", "n2", 7, "completed", NULL, 1);
	assert_refused(&st, &d, "migration-ignored", "n1", "a", NULL);
	gw_coord_state_free(&st);
}

/* ---- determinism ---- */

static void encode(const struct gw_coord_state *st, uint8_t **buf, size_t *len)
{
	assert_int_equal(gw_coord_state_encode(st, 0, false, buf, len), 0);
}

static void assert_same_encoding(const struct gw_coord_state *a, const struct gw_coord_state *b)
{
	uint8_t *ba, *bb;
	size_t la, lb;
	encode(a, &ba, &la);
	encode(b, &bb, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	free(ba);
	free(bb);
}

/* Every migration/maintenance field survives a snapshot (a joiner sees what members see). */
static void assert_same_fields(struct gw_coord_state *a, struct gw_coord_state *b)
{
	assert_int_equal(a->n_hosts, b->n_hosts);
	for (size_t i = 0; i < a->n_hosts; i++) {
		const struct gw_coord_host *x = &a->hosts[i], *y = &b->hosts[i];
		assert_string_equal(x->name, y->name);
		assert_int_equal(x->state, y->state);
		assert_int_equal(x->maintenance, y->maintenance);
		assert_int_equal(x->evacuating, y->evacuating);
		assert_int_equal(x->evac_id, y->evac_id);
		assert_string_equal(x->maint_error, y->maint_error);
	}
	assert_int_equal(a->n_vms, b->n_vms);
	for (size_t i = 0; i < a->n_vms; i++) {
		const struct gw_coord_vm *x = &a->vms[i], *y = &b->vms[i];
		assert_string_equal(x->name, y->name);
		assert_string_equal(x->host, y->host);
		assert_int_equal(x->state, y->state);
		assert_string_equal(x->migrate_to, y->migrate_to);
		assert_int_equal(x->mig_id, y->mig_id);
		assert_string_equal(x->migrate_error, y->migrate_error);
	}
	assert_int_equal(a->n_events, b->n_events);
	assert_int_equal(a->next_event_seq, b->next_event_seq);
}

/* Two members fed the same sequence (migrations, a failure, maintenance, an evacuation, a stop,
 * stale and refused messages) end byte-identical; a joiner given a snapshot halfway continues
 * identically; and the encoding tells apart states that differ only in migration fields. */
static void test_deterministic(void **state)
{
	struct msg seq[] = {
	    hello(3, "n3", 2000),
	    hello(1, "n1", 2000),
	    hello(2, "n2", 2000),
	    define("web", "n1", "fe", 256),
	    define("db", "n1", NULL, 512),
	    define("cache", "n1", "fe", 128),
	    vmstate("web", "n1", "running", 1),
	    vmstate("db", "n1", "running", 1),
	    vmstate("cache", "n1", "running", 1),
	    mstart("db", "n1", "n2", 5),
	    mstart("db", "n1", "n2", 5), /* twice: refused, already migrating */
	    mdone("db", "n1", "n2", 4, "completed", NULL, 1), /* stale */
	    mdone("db", "n1", "n2", 5, "failed", "no acknowledgement", 1),
	    mstart("db", "n1", "n2", 7),
	    mdone("db", "n1", "n2", 7, "completed", NULL, 1),
	    maint(T_ENTER, "n1", 11, NULL),
	    mstart_evac("web", "n1", "n2", 21),
	    /* -- a joiner takes its snapshot here: n1 evacuating, web migrating -- */
	    mdone("web", "n1", "n2", 21, "completed", NULL, 1),
	    mstart_evac("cache", "n1", "n2", 22), /* refused: anti-affinity, stops it */
	    maint(T_EVEND, "n1", 11, ""),	  /* late: ignored */
	    mstart("cache", "n1", "n3", 23),
	    mdone("cache", "n1", "n3", 23, "cancelled", "operator", 1),
	    maint(T_EXIT, "n1", 0, NULL),
	    maint(T_EXIT, "n1", 0, NULL), /* not in maintenance */
	    mdone("nosuch", "n1", "n2", 1, "completed", NULL, 1),
	};
	const size_t n = sizeof(seq) / sizeof(seq[0]), half = 17;
	struct gw_coord_state s1, s2, joiner;
	gw_coord_state_init(&s1, NULL);
	gw_coord_state_init(&s2, NULL);
	gw_coord_state_init(&joiner, NULL);
	for (size_t i = 0; i < n; i++) {
		if (i == half) {
			uint8_t *b;
			size_t l;
			encode(&s1, &b, &l);
			assert_int_equal(gw_coord_state_decode(&joiner, b, l), 0);
			free(b);
			assert_same_fields(&s1, &joiner);
		}
		apply(&s1, &seq[i]);
		apply(&s2, &seq[i]);
		if (i >= half)
			apply(&joiner, &seq[i]);
		assert_same_encoding(&s1, &s2);
		/* and every step survives a snapshot round trip */
		struct gw_coord_state copy;
		uint8_t *b;
		size_t l;
		gw_coord_state_init(&copy, NULL);
		encode(&s1, &b, &l);
		assert_int_equal(gw_coord_state_decode(&copy, b, l), 0);
		free(b);
		assert_same_fields(&s1, &copy);
		assert_same_encoding(&s1, &copy);
		gw_coord_state_free(&copy);
	}
	assert_same_encoding(&s1, &joiner);
	assert_same_fields(&s1, &joiner);

	/* the sequence did what it says */
	assert_string_equal(vm_of(&s1, "db")->host, "n2");
	assert_string_equal(vm_of(&s1, "web")->host, "n2");
	assert_string_equal(vm_of(&s1, "cache")->host, "n1");
	assert_string_equal(vm_of(&s1, "cache")->migrate_error, "cancelled: operator");
	assert_true(str_has(host_of(&s1, "n1")->maint_error, "anti-affinity"));
	assert_int_equal(host_of(&s1, "n1")->state, GW_HOST_UP);

	/* each migration and maintenance field is in the encoding: changing one alone changes it */
	struct gw_coord_vm *v = vm_of(&s2, "cache");
	struct gw_coord_host *h = host_of(&s2, "n1");
	const struct gw_coord_vm v0 = *v;
	const struct gw_coord_host h0 = *h;
	for (int field = 0; field < 7; field++) {
		switch (field) {
		case 0:
			snprintf(v->migrate_to, sizeof(v->migrate_to), "n3");
			break;
		case 1:
			v->mig_id++;
			break;
		case 2:
			snprintf(v->migrate_error, sizeof(v->migrate_error), "x");
			break;
		case 3:
			h->maintenance = !h->maintenance;
			break;
		case 4:
			h->evacuating = !h->evacuating;
			break;
		case 5:
			h->evac_id++;
			break;
		case 6:
			snprintf(h->maint_error, sizeof(h->maint_error), "x");
			break;
		}
		uint8_t *b1, *b2;
		size_t l1, l2;
		encode(&s1, &b1, &l1);
		encode(&s2, &b2, &l2);
		if (l1 == l2 && memcmp(b1, b2, l1) == 0)
			fail_msg("field %d is not in the encoding", field);
		free(b1);
		free(b2);
		*v = v0;
		*h = h0;
		assert_same_encoding(&s1, &s2);
	}
	gw_coord_state_free(&s1);
	gw_coord_state_free(&s2);
	gw_coord_state_free(&joiner);
}

/* A start refused because another migration runs keeps that migration's id: its result is
 * applied; the refused request is recorded in refused_id. */
static void test_migrate_refused_keeps_running_id(void **state)
{
	(void)state;
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	struct msg s = mstart("a", "n1", "n2", 7);
	apply(&st, &s);
	struct msg other = mstart("a", "n1", "n3", 8); /* a second godwitctl, raced */
	apply(&st, &other);
	assert_last_event(&st, "migration-rejected", "n1", "a", "already migrating to n2");
	assert_int_equal(vm_of(&st, "a")->mig_id, 7);
	assert_int_equal(vm_of(&st, "a")->refused_id, 8);
	assert_string_equal(vm_of(&st, "a")->migrate_to, "n2");
	assert_string_equal(vm_of(&st, "a")->migrate_error, "");
	struct msg d = mdone("a", "n1", "n2", 7, "completed", NULL, 1);
	apply(&st, &d);
	assert_string_equal(vm_of(&st, "a")->host, "n2");
	assert_string_equal(vm_of(&st, "a")->migrate_to, "");
	assert_last_event(&st, "migration-done", "n2", "a", "n1 -> n2");
	gw_coord_state_free(&st);
}

/* The target is fenced before the source's "completed" arrives: the VM is not left running
 * on a dead host; an HA VM waits for a restart. */
static void test_migrate_completed_to_fenced_target(void **state)
{
	(void)state;
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	vm_of(&st, "a")->ha = true;
	struct msg s = mstart("a", "n1", "n2", 7);
	apply(&st, &s);
	uint32_t members[] = {1, 3};
	gw_coord_state_members(&st, members, 2, 6000);
	GwClFence fs = GW_CL_FENCE__INIT;
	fs.host = "n2";
	fs.time_ms = 6100;
	struct msg start = pack(GW_CL_MSG_TYPE__GW_CL_FENCE_START, &fs, 1);
	struct msg conf = pack(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, &fs, 1);
	apply(&st, &start);
	apply(&st, &conf);
	struct msg d = mdone("a", "n1", "n2", 7, "completed", NULL, 1);
	apply(&st, &d);
	assert_string_equal(vm_of(&st, "a")->host, "n2");
	assert_int_equal(vm_of(&st, "a")->state, GW_CVM_PENDING);
	assert_ptr_equal(gw_coord_next_pending(&st), vm_of(&st, "a"));
	gw_coord_state_free(&st);
}

/* An HA VM that fails during its migration and is restarted elsewhere drops the migration. */
static void test_migrate_vm_fails_during_migration(void **state)
{
	(void)state;
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 100);
	vm_of(&st, "a")->ha = true;
	vm_of(&st, "a")->restarts = 1; /* it was failed over once already */
	struct msg s = mstart("a", "n1", "n2", 7);
	apply(&st, &s);
	struct msg f = vmstate("a", "n1", "failed", 1);
	apply(&st, &f);
	assert_string_equal(vm_of(&st, "a")->migrate_to, "");
	assert_non_null(strstr(vm_of(&st, "a")->migrate_error, "failed during the migration"));
	GwClVmRestart r = GW_CL_VM_RESTART__INIT;
	r.name = "a";
	r.target = "n3";
	r.time_ms = 6200;
	struct msg rs = pack(GW_CL_MSG_TYPE__GW_CL_VM_RESTART, &r, 1);
	apply(&st, &rs);
	struct msg d = mdone("a", "n1", "n2", 7, "failed", "guest died", 1);
	apply(&st, &d);
	assert_last_event(&st, "migration-ignored", "n1", "a", NULL);
	assert_string_equal(vm_of(&st, "a")->host, "n3");
	assert_string_equal(vm_of(&st, "a")->migrate_to, "");
	gw_coord_state_free(&st);
}

/* MIGRATE_CANCEL only records the cancel (from any member) for the migration under way; the
 * VM stays migrating until the source's MIGRATE_DONE "cancelled", which ends it on the source. */
static void test_migrate_cancel(void **state)
{
	struct gw_coord_state st;
	struct frozen f;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 300);
	running_vm(&st, "b", "n2", 2, NULL, 300);

	/* no migration under way, an unknown VM, a stale id: ignored with an event */
	struct msg none = mcancel("b", "n2", "n3", 5, 3);
	assert_refused(&st, &none, "migration-cancel-ignored", "n2", "b", NULL);
	struct msg unknown = mcancel("zz", "n2", "n3", 5, 3);
	assert_refused(&st, &unknown, "migration-cancel-ignored", "n2", "zz", NULL);
	struct msg s = mstart("a", "n1", "n2", 21);
	apply(&st, &s);
	assert_false(vm_of(&st, "a")->migrate_cancel);
	struct msg stale = mcancel("a", "n1", "n2", 20, 3);
	assert_refused(&st, &stale, "migration-cancel-ignored", "n1", "a", NULL);

	/* the matching id: recorded, nothing else changes; a second one is a no-op */
	struct msg c = mcancel("a", "n1", "n2", 21, 3);
	apply(&st, &c);
	struct gw_coord_vm *a = vm_of(&st, "a");
	assert_true(a->migrate_cancel);
	assert_string_equal(a->migrate_to, "n2");
	assert_string_equal(a->host, "n1");
	assert_int_equal(a->state, GW_CVM_RUNNING);
	assert_int_equal(a->mig_id, 21);
	assert_last_event(&st, "migration-cancel", "n1", "a", "n1 -> n2");
	freeze(&st, &f);
	apply(&st, &c);
	assert_unchanged(&st, &f, 0);

	/* survives the snapshot (a joiner's source member must still cancel) */
	uint8_t *buf;
	size_t len;
	struct gw_coord_state copy;
	assert_int_equal(gw_coord_state_encode(&st, 1, true, &buf, &len), 0);
	gw_coord_state_init(&copy, NULL);
	assert_int_equal(gw_coord_state_decode(&copy, buf, len), 0);
	assert_true(vm_of(&copy, "a")->migrate_cancel);
	assert_false(vm_of(&copy, "b")->migrate_cancel);
	free(buf);
	gw_coord_state_free(&copy);

	/* the source reports it cancelled: on n1, not migrating, flag cleared, own event */
	struct msg d = mdone("a", "n1", "n2", 21, "cancelled", "cancelled by the operator", 1);
	apply(&st, &d);
	a = vm_of(&st, "a");
	assert_string_equal(a->host, "n1");
	assert_int_equal(a->state, GW_CVM_RUNNING);
	assert_string_equal(a->migrate_to, "");
	assert_false(a->migrate_cancel);
	assert_string_equal(a->migrate_error, "cancelled: cancelled by the operator");
	assert_last_event(&st, "migration-cancelled", "n1", "a", "stays on n1");

	/* a cancel that came too late: the migration completed, the VM moved anyway */
	struct msg s2 = mstart("a", "n1", "n3", 22);
	apply(&st, &s2);
	assert_false(vm_of(&st, "a")->migrate_cancel);
	struct msg c2 = mcancel("a", "n1", "n3", 22, 2);
	apply(&st, &c2);
	struct msg d2 = mdone("a", "n1", "n3", 22, "completed", NULL, 1);
	apply(&st, &d2);
	assert_string_equal(vm_of(&st, "a")->host, "n3");
	assert_false(vm_of(&st, "a")->migrate_cancel);
	struct msg late = mcancel("a", "n1", "n3", 22, 2);
	assert_refused(&st, &late, "migration-cancel-ignored", "n1", "a", NULL);
	gw_coord_state_free(&st);
}

/* A cancelled migration of an evacuation stops the evacuation, saying so. */
static void test_migrate_cancel_evacuation(void **state)
{
	struct gw_coord_state st;
	three_hosts(&st, 1000);
	running_vm(&st, "a", "n1", 1, NULL, 300);
	struct msg e = maint(T_ENTER, "n1", 3, NULL);
	apply(&st, &e);
	struct msg s = mstart_evac("a", "n1", "n2", 31);
	apply(&st, &s);
	struct msg c = mcancel("a", "n1", "n2", 31, 2);
	apply(&st, &c);
	assert_true(host_of(&st, "n1")->evacuating);
	struct msg d = mdone("a", "n1", "n2", 31, "cancelled", "cancelled", 1);
	apply(&st, &d);
	struct gw_coord_host *h = host_of(&st, "n1");
	assert_false(h->evacuating);
	assert_int_equal(h->state, GW_HOST_MAINTENANCE);
	assert_true(str_has(h->maint_error, "cancelled by the operator"));
	assert_string_equal(vm_of(&st, "a")->host, "n1");
	assert_last_event(&st, "maintenance-stopped", "n1", "", "cancelled by the operator");
	gw_coord_state_free(&st);
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_migrate_completed),
	    cmocka_unit_test(test_migrate_not_completed),
	    cmocka_unit_test(test_migrate_start_refused),
	    cmocka_unit_test(test_migrate_done_stale),
	    cmocka_unit_test(test_migrate_start_duplicate),
	    cmocka_unit_test(test_migrate_source_fenced),
	    cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_migrate_refused_keeps_running_id),
	    cmocka_unit_test(test_migrate_completed_to_fenced_target),
	    cmocka_unit_test(test_migrate_vm_fails_during_migration),
	    cmocka_unit_test(test_migrate_cancel),
	    cmocka_unit_test(test_migrate_cancel_evacuation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
