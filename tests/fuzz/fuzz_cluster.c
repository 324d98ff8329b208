/* fuzz_cluster.c -- libFuzzer: what the coordinator takes from CPG. The input is a
 * sequence of deliveries, each u8 sender node id | u16 length (big endian) | message, the
 * message as on_deliver (coord_cluster.c) gets it: u16 type (big endian) | payload. A
 * GW_CL_SNAPSHOT goes to gw_coord_state_decode (a joiner taking the state), type 0xffff is
 * a membership change (payload: u32 node ids, little endian), anything else goes to
 * gw_coord_state_apply. Checks after every step: the result codes are the documented ones,
 * the state stays well-formed (bounded counts, terminated strings, VMs sorted and unique),
 * a refused snapshot leaves the state as it was, and a second member fed the same
 * deliveries holds the same state (the replication guarantee). At the end, the state's
 * encode -> decode -> encode round trip is exact. */
#include <errno.h>

#include "cluster.pb-c.h"
#include "coord_state.h"
#include "fuzz_common.h"

#define MEMBERSHIP 0xffffu

static void encode(const struct gw_coord_state *st, uint8_t **buf, size_t *len)
{
	FUZZ_CHECK(gw_coord_state_encode(st, 1, true, buf, len) == 0);
}

static bool same_state(const struct gw_coord_state *a, const struct gw_coord_state *b)
{
	uint8_t *x, *y;
	size_t lx, ly;
	encode(a, &x, &lx);
	encode(b, &y, &ly);
	bool same = lx == ly && !memcmp(x, y, lx);
	free(x);
	free(y);
	return same;
}

static void check_well_formed(const struct gw_coord_state *st)
{
	FUZZ_CHECK(st->n_hosts <= GW_COORD_MAX_HOSTS && st->n_events <= GW_COORD_MAX_EVENTS);
	FUZZ_CHECK(st->ev_first < GW_COORD_MAX_EVENTS || st->n_events == 0);
	FUZZ_CHECK(st->n_deleted <= GW_COORD_MAX_DELETED);
	FUZZ_CHECK(st->n_vms <= st->cap_vms || (st->n_vms == 0 && st->cap_vms == 0));
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *h = &st->hosts[i];
		FUZZ_CHECK(FUZZ_TERMINATED(h->name) && FUZZ_TERMINATED(h->agent_listen));
		FUZZ_CHECK(FUZZ_TERMINATED(h->maint_error) && FUZZ_TERMINATED(h->vm_backend));
		FUZZ_CHECK(h->state <= GW_HOST_MAINTENANCE);
	}
	for (size_t i = 0; i < st->n_vms; i++) {
		const struct gw_coord_vm *v = &st->vms[i];
		FUZZ_CHECK(FUZZ_TERMINATED(v->name) && FUZZ_TERMINATED(v->host));
		FUZZ_CHECK(FUZZ_TERMINATED(v->group) && FUZZ_TERMINATED(v->image));
		FUZZ_CHECK(FUZZ_TERMINATED(v->cmdline) && FUZZ_TERMINATED(v->reason));
		FUZZ_CHECK(FUZZ_TERMINATED(v->migrate_to) && FUZZ_TERMINATED(v->migrate_error));
		FUZZ_CHECK(v->state < GW_CVM_COUNT);
		if (i)
			FUZZ_CHECK(strcmp(st->vms[i - 1].name, v->name) < 0);
	}
	for (size_t i = 0; i < st->n_events; i++) {
		const struct gw_coord_event *e =
		    &st->events[(st->ev_first + i) % GW_COORD_MAX_EVENTS];
		FUZZ_CHECK(FUZZ_TERMINATED(e->kind) && FUZZ_TERMINATED(e->text));
		FUZZ_CHECK(FUZZ_TERMINATED(e->host) && FUZZ_TERMINATED(e->vm));
	}
}

/* One delivery to one member; returns the decoder's result. */
static int deliver(struct gw_coord_state *st, uint32_t from, const uint8_t *m, size_t len)
{
	if (len < 2)
		return 0; /* a runt: on_deliver ignores it */
	uint16_t type = (uint16_t)(m[0] << 8 | m[1]);
	if (type == MEMBERSHIP) {
		uint32_t ids[GW_COORD_MAX_HOSTS + 8];
		size_t n = 0;
		for (size_t o = 2; o + 4 <= len && n < sizeof(ids) / sizeof(ids[0]); o += 4)
			ids[n++] = (uint32_t)m[o] | (uint32_t)m[o + 1] << 8 |
				   (uint32_t)m[o + 2] << 16 | (uint32_t)m[o + 3] << 24;
		gw_coord_state_members(st, ids, n, 1000);
		return 0;
	}
	if (type == GW_CL_MSG_TYPE__GW_CL_SNAPSHOT) {
		uint8_t *before;
		size_t lb;
		encode(st, &before, &lb);
		int r = gw_coord_state_decode(st, m + 2, len - 2);
		FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
		if (r) { /* take_snapshot keeps its state and waits for another snapshot */
			uint8_t *after;
			size_t la;
			encode(st, &after, &la);
			FUZZ_CHECK(la == lb && !memcmp(before, after, la));
			free(after);
		}
		free(before);
		return r;
	}
	int r = gw_coord_state_apply(st, type, m + 2, len - 2, from);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EOPNOTSUPP);
	return r;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gw_coord_state a, b, c;
	struct fuzz_in in = {data, size};

	gw_coord_state_init(&a, "");
	gw_coord_state_init(&b, "");
	while (in.n >= 3) {
		uint32_t from = fuzz_u8(&in);
		size_t len = (size_t)fuzz_u8(&in) << 8;
		len |= fuzz_u8(&in);
		if (len > in.n)
			len = in.n;
		int ra = deliver(&a, from, in.p, len);
		int rb = deliver(&b, from, in.p, len);
		FUZZ_CHECK(ra == rb);
		in.p += len;
		in.n -= len;
		check_well_formed(&a);
	}
	FUZZ_CHECK(same_state(&a, &b)); /* every member holds the same state */
	/* a joiner given a's snapshot holds a's state */
	uint8_t *snap;
	size_t len;
	encode(&a, &snap, &len);
	gw_coord_state_init(&c, "");
	FUZZ_CHECK(gw_coord_state_decode(&c, snap, len) == 0);
	check_well_formed(&c);
	FUZZ_CHECK(same_state(&a, &c));
	free(snap);
	gw_coord_state_free(&a);
	gw_coord_state_free(&b);
	gw_coord_state_free(&c);
	return 0;
}
