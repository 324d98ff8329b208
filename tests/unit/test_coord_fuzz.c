/* test_coord_fuzz.c -- fuzzing the coordinator's decoders: every CPG message type and the
 * snapshot, as valid seeds mutated (bit flips, byte runs, truncation, extension) and as random
 * bytes, through gw_coord_state_apply / gw_coord_state_decode. Nothing may crash or return
 * anything but 0 / -EBADMSG / -EOPNOTSUPP, and the state must stay well-formed: bounded
 * counts, terminated strings, and an encode -> decode -> encode round trip that is exact. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.pb-c.h"
#include "coord_state.h"
#include "gw_log.h"

#define ROUNDS 20000

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

struct seed {
	uint16_t type;
	uint8_t buf[2048];
	size_t len;
};

static struct seed seeds[32];
static size_t n_seeds;

static void add_seed(uint16_t type, const void *m)
{
	assert_true(n_seeds < sizeof(seeds) / sizeof(seeds[0]));
	struct seed *s = &seeds[n_seeds++];
	s->type = type;
	s->len = protobuf_c_message_get_packed_size(m);
	assert_true(s->len <= sizeof(s->buf));
	protobuf_c_message_pack(m, s->buf);
}

static void make_seeds(void)
{
	n_seeds = 0; /* each test makes them afresh */
	GwClHello h = GW_CL_HELLO__INIT;
	h.nodeid = 2;
	h.name = "n2";
	h.has_mem_total_mib = h.has_watchdog_s = 1;
	h.mem_total_mib = 4096;
	h.watchdog_s = 3;
	h.agent_listen = "198.18.0.2:7420";
	h.time_ms = 1;
	add_seed(GW_CL_MSG_TYPE__GW_CL_HELLO, &h);

	GwClVm v = GW_CL_VM__INIT;
	GwClVmDefine d = GW_CL_VM_DEFINE__INIT;
	v.name = "a";
	v.host = "n2";
	v.state = "starting";
	v.ha = true;
	v.image = "/img";
	v.memory_mib = 64;
	v.anti_affinity = "g";
	d.vm = &v;
	d.time_ms = 2;
	add_seed(GW_CL_MSG_TYPE__GW_CL_VM_DEFINE, &d);

	GwClVmStateMsg st = GW_CL_VM_STATE_MSG__INIT;
	st.name = "a";
	st.host = "n2";
	st.state = "running";
	st.time_ms = 3;
	add_seed(GW_CL_MSG_TYPE__GW_CL_VM_STATE, &st);

	GwClFence f = GW_CL_FENCE__INIT;
	f.host = "n2";
	f.time_ms = 4;
	add_seed(GW_CL_MSG_TYPE__GW_CL_FENCE_START, &f);
	add_seed(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, &f);
	add_seed(GW_CL_MSG_TYPE__GW_CL_FENCE_FAILED, &f);

	GwClVmRestart r = GW_CL_VM_RESTART__INIT;
	r.name = "a";
	r.target = "n1";
	r.time_ms = 5;
	add_seed(GW_CL_MSG_TYPE__GW_CL_VM_RESTART, &r);
	add_seed(GW_CL_MSG_TYPE__GW_CL_VM_UNPLACED, &r);

	GwClMigrate g = GW_CL_MIGRATE__INIT;
	g.vm = "a";
	g.from = "n2";
	g.to = "n1";
	g.id = 9;
	g.result = "completed";
	g.time_ms = 6;
	add_seed(GW_CL_MSG_TYPE__GW_CL_MIGRATE_START, &g);
	add_seed(GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE, &g);
	add_seed(GW_CL_MSG_TYPE__GW_CL_MIGRATE_CANCEL, &g);

	GwClMaint mt = GW_CL_MAINT__INIT;
	mt.host = "n2";
	mt.has_id = 1;
	mt.id = 10;
	mt.time_ms = 7;
	add_seed(GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER, &mt);
	add_seed(GW_CL_MSG_TYPE__GW_CL_MAINT_EXIT, &mt);
	add_seed(GW_CL_MSG_TYPE__GW_CL_EVAC_END, &mt);

	GwClVmAdmin ad = GW_CL_VM_ADMIN__INIT;
	ad.name = "a";
	ad.time_ms = 8;
	ad.action = "stop";
	add_seed(GW_CL_MSG_TYPE__GW_CL_VM_ADMIN, &ad);
	ad.action = "start";
	add_seed(GW_CL_MSG_TYPE__GW_CL_VM_ADMIN, &ad);
	ad.action = "delete";
	add_seed(GW_CL_MSG_TYPE__GW_CL_VM_ADMIN, &ad);
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
	switch (rnd() % 5) {
	case 0: /* bit flips */
		for (unsigned k = 1 + rnd() % 4; k && len; k--)
			buf[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
		break;
	case 1: /* a run of one byte value (e.g. huge varints, 0xff lengths) */
		if (len) {
			size_t at = rnd() % len, n = 1 + rnd() % 8;
			memset(buf + at, (rnd() & 1) ? 0xff : (int)(rnd() & 0xff),
			       at + n > len ? len - at : n);
		}
		break;
	case 2: /* truncation */
		len = len ? rnd() % len : 0;
		break;
	case 3: /* extension with random bytes */
		while (len < cap && rnd() % 4)
			buf[len++] = (uint8_t)rnd();
		break;
	default: /* all random */
		len = rnd() % cap;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
	}
	return len;
}

static void assert_terminated(const char *s, size_t size)
{
	assert_true(memchr(s, 0, size) != NULL);
}

/* Counts bounded, strings terminated, encode -> decode -> encode exact. */
static void assert_well_formed(const struct gw_coord_state *st)
{
	assert_true(st->n_hosts <= GW_COORD_MAX_HOSTS);
	assert_true(st->n_events <= GW_COORD_MAX_EVENTS);
	assert_true(st->n_vms <= st->cap_vms || st->cap_vms == 0);
	for (size_t i = 0; i < st->n_hosts; i++) {
		assert_terminated(st->hosts[i].name, sizeof(st->hosts[i].name));
		assert_terminated(st->hosts[i].agent_listen, sizeof(st->hosts[i].agent_listen));
		assert_terminated(st->hosts[i].maint_error, sizeof(st->hosts[i].maint_error));
	}
	for (size_t i = 0; i < st->n_vms; i++) {
		const struct gw_coord_vm *v = &st->vms[i];
		assert_terminated(v->name, sizeof(v->name));
		assert_terminated(v->host, sizeof(v->host));
		assert_terminated(v->image, sizeof(v->image));
		assert_terminated(v->cmdline, sizeof(v->cmdline));
		assert_terminated(v->reason, sizeof(v->reason));
		assert_terminated(v->migrate_to, sizeof(v->migrate_to));
		if (i)
			assert_true(strcmp(st->vms[i - 1].name, v->name) < 0); /* sorted, unique */
	}
	uint8_t *a = NULL, *b = NULL;
	size_t la, lb;
	struct gw_coord_state copy;
	gw_coord_state_init(&copy, "");
	assert_int_equal(gw_coord_state_encode(st, 1, true, &a, &la), 0);
	assert_int_equal(gw_coord_state_decode(&copy, a, la), 0);
	assert_int_equal(gw_coord_state_encode(&copy, 1, true, &b, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	gw_coord_state_free(&copy);
}

static void base_state(struct gw_coord_state *st)
{
	gw_coord_state_init(st, "");
	for (uint32_t n = 1; n <= 3; n++) {
		GwClHello h = GW_CL_HELLO__INIT;
		char name[8];
		snprintf(name, sizeof(name), "n%u", n);
		h.nodeid = n;
		h.name = name;
		h.has_mem_total_mib = 1;
		h.mem_total_mib = 4096;
		h.time_ms = n;
		uint8_t buf[256];
		size_t len = gw_cl_hello__pack(&h, buf);
		assert_int_equal(gw_coord_state_apply(st, GW_CL_MSG_TYPE__GW_CL_HELLO, buf, len, n),
				 0);
	}
	for (size_t i = 0; i < n_seeds; i++) /* every seed once, valid */
		gw_coord_state_apply(st, seeds[i].type, seeds[i].buf, seeds[i].len, 1 + i % 3);
}

static void test_fuzz_messages(void **state)
{
	(void)state;
	struct gw_coord_state st;
	uint8_t buf[4096];
	make_seeds();
	base_state(&st);
	assert_well_formed(&st);
	unsigned bad = 0, ok = 0;
	for (unsigned i = 0; i < ROUNDS; i++) {
		const struct seed *s = &seeds[rnd() % n_seeds];
		memcpy(buf, s->buf, s->len);
		size_t len = mutate(buf, s->len, sizeof(buf));
		uint16_t type = (rnd() % 16) ? s->type : (uint16_t)(rnd() % 400);
		int r = gw_coord_state_apply(&st, type, buf, len, 1 + rnd() % 5);
		assert_true(r == 0 || r == -EBADMSG || r == -EOPNOTSUPP);
		r == 0 ? ok++ : bad++;
		if (i % 500 == 0)
			assert_well_formed(&st);
		if (i % 4000 == 3999) { /* start over now and then, so early states are covered */
			gw_coord_state_free(&st);
			base_state(&st);
		}
	}
	assert_well_formed(&st);
	printf("fuzz: %u messages applied, %u rejected as malformed\n", ok, bad);
	assert_true(ok > 0 && bad > 0); /* both paths were exercised */
	gw_coord_state_free(&st);
}

static void test_fuzz_snapshot(void **state)
{
	(void)state;
	struct gw_coord_state st, dst;
	uint8_t *enc;
	size_t len;
	make_seeds();
	base_state(&st);
	assert_int_equal(gw_coord_state_encode(&st, 1, true, &enc, &len), 0);
	uint8_t *buf = malloc(len + 4096);
	assert_non_null(buf);
	unsigned taken = 0;
	gw_coord_state_init(&dst, "");
	for (unsigned i = 0; i < ROUNDS / 4; i++) {
		memcpy(buf, enc, len);
		size_t l = mutate(buf, len, len + 4096);
		int r = gw_coord_state_decode(&dst, buf, l);
		assert_true(r == 0 || r == -EBADMSG || r == -ENOMEM);
		if (r == 0) {
			taken++;
			assert_well_formed(&dst);
		}
	}
	printf("fuzz: %u of %u mutated snapshots decoded\n", taken, ROUNDS / 4);
	free(buf);
	free(enc);
	gw_coord_state_free(&dst);
	gw_coord_state_free(&st);
}

/* Found by fuzz_cluster: a snapshot naming one VM twice (or with a name too long to keep)
 * was taken, leaving two VMs of one name in the state. It is refused, the state untouched. */
static void test_snapshot_duplicate_vm(void **state)
{
	static const char long_name[] =
	    "a123456789b123456789c123456789d123456789e123456789f123456789g1234";
	const char *const pairs[][2] = {{"c", "c"}, {long_name, "x"}};
	for (size_t k = 0; k < 2; k++) {
		GwClVm v[2] = {GW_CL_VM__INIT, GW_CL_VM__INIT};
		GwClVm *vp[2] = {&v[0], &v[1]};
		for (int i = 0; i < 2; i++) {
			v[i].name = (char *)pairs[k][i];
			v[i].host = "n1", v[i].state = "running", v[i].image = "/img";
			v[i].memory_mib = 64;
		}
		GwClSnapshot snap = GW_CL_SNAPSHOT__INIT;
		snap.n_vms = 2, snap.vms = vp, snap.from_nodeid = 1;
		uint8_t buf[1024];
		size_t len = gw_cl_snapshot__pack(&snap, buf);
		struct gw_coord_state st;
		gw_coord_state_init(&st, "");
		assert_non_null(gw_coord_vm_insert(&st, "keep"));
		assert_int_equal(gw_coord_state_decode(&st, buf, len), -EBADMSG);
		assert_int_equal(st.n_vms, 1);
		assert_string_equal(st.vms[0].name, "keep");
		gw_coord_state_free(&st);
	}
}

int main(void)
{
	gw_log_set_level(GW_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fuzz_messages),
	    cmocka_unit_test(test_fuzz_snapshot),
	    cmocka_unit_test(test_snapshot_duplicate_vm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
