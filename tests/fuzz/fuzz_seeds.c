/* fuzz_seeds.c -- writes the seed corpora of the fuzz harnesses: valid inputs of every kind
 * each decoder takes, so that fuzzing starts deep in the code rather than at "bad magic".
 * Usage: fuzz_seeds DIR (tests/fuzz): writes DIR/<harness>/seed-*; run by deploy/fuzz.sh
 * --seeds, its output is committed. Not a fuzzer itself. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "coord_state.h"
#include "gw_pagebatch.h"
#include "migration.pb-c.h"

static const char *root;

static void put_file(const char *harness, const char *name, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, harness);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%s", root, harness, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* A growing byte buffer. */
struct buf {
	uint8_t b[1 << 16];
	size_t n;
};

static void add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > sizeof(b->b))
		abort();
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void add_le(struct buf *b, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t c = (uint8_t)(v >> (8 * i));
		add(b, &c, 1);
	}
}

static void add_msg(struct buf *b, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	if (b->n + n > sizeof(b->b))
		abort();
	protobuf_c_message_pack(m, b->b + b->n);
	b->n += n;
}

/* ---- control: frames ---- */

static struct buf stream; /* every control seed, one after the other */

static void frame(const char *name, uint16_t type, const ProtobufCMessage *m)
{
	struct buf f = {.n = 0};
	uint8_t hdr[6];
	size_t n = protobuf_c_message_get_packed_size(m);
	hdr[0] = (uint8_t)(n >> 24), hdr[1] = (uint8_t)(n >> 16), hdr[2] = (uint8_t)(n >> 8);
	hdr[3] = (uint8_t)n, hdr[4] = (uint8_t)(type >> 8), hdr[5] = (uint8_t)type;
	add(&f, hdr, 6);
	add_msg(&f, m);
	put_file("control", name, f.b, f.n);
	add(&stream, f.b, f.n);
}

static void control_seeds(void)
{
	GwVmCreateReq cr = GW_VM_CREATE_REQ__INIT;
	cr.name = "vm1", cr.image = "/var/lib/godwit/images/hello.bin", cr.memory_mib = 64;
	cr.has_vcpus = 1, cr.vcpus = 2, cr.cmdline = "console=1";
	frame("vm-create", GW_MSG_TYPE__GW_MSG_VM_CREATE, &cr.base);
	GwVmNameReq nr = GW_VM_NAME_REQ__INIT;
	nr.name = "vm1";
	frame("vm-start", GW_MSG_TYPE__GW_MSG_VM_START, &nr.base);
	frame("vm-show", GW_MSG_TYPE__GW_MSG_VM_SHOW, &nr.base);
	frame("vm-migrate-status", GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &nr.base);
	GwVmListReq lr = GW_VM_LIST_REQ__INIT;
	frame("vm-list", GW_MSG_TYPE__GW_MSG_VM_LIST, &lr.base);
	GwConsoleReq co = GW_CONSOLE_REQ__INIT;
	co.name = "vm1", co.has_offset = 1, co.offset = 100, co.has_max_bytes = 1,
	co.max_bytes = 4096;
	frame("vm-console", GW_MSG_TYPE__GW_MSG_VM_CONSOLE, &co.base);
	GwAgentInfoReq ai = GW_AGENT_INFO_REQ__INIT;
	frame("agent-info", GW_MSG_TYPE__GW_MSG_AGENT_INFO, &ai.base);
	GwVmMigrateReq mr = GW_VM_MIGRATE_REQ__INIT;
	mr.name = "vm1", mr.to = "198.18.0.2:7420", mr.has_streams = 1, mr.streams = 4;
	mr.transport = "tcp";
	frame("vm-migrate", GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE, &mr.base);

	GwVmInfo vi = GW_VM_INFO__INIT;
	vi.name = "vm1", vi.state = "running", vi.memory_mib = 64, vi.vcpus = 2, vi.node = "n1";
	vi.image = "/img/hello.bin", vi.cmdline = "x=1", vi.reason = "started";
	vi.has_pid = 1, vi.pid = 1234, vi.backend = "process";
	frame("vm-info", GW_MSG_TYPE__GW_MSG_VM_INFO, &vi.base);
	GwVmmStatus vs = GW_VMM_STATUS__INIT;
	vs.state = "running", vs.has_pid = 1, vs.pid = 99, vs.migrated_to = "n2";
	frame("vmm-status-reply", GW_MSG_TYPE__GW_MSG_VMM_STATUS_REPLY, &vs.base);
	GwVmmMigrateOut vo = GW_VMM_MIGRATE_OUT__INIT;
	uint8_t key[32] = {1, 2, 3};
	vo.to = "198.18.0.2:7420", vo.streams = 2, vo.downtime_ms = 50, vo.timeout_s = 300;
	vo.key.data = key, vo.key.len = sizeof(key), vo.migration_id = 77,
	vo.outcome_dir = "/run/x";
	vo.transport = "tcp";
	frame("vmm-out", GW_MIG_MSG_TYPE__GW_MIG_VMM_OUT, &vo.base);
	GwMigBegin mb = GW_MIG_BEGIN__INIT;
	mb.version = 1, mb.migration_id = 77, mb.name = "vm1", mb.memory_mib = 64, mb.vcpus = 2;
	mb.image = "/img/hello.bin", mb.streams = 2, mb.page_size = 4096, mb.vm_backend = "kvm";
	frame("mig-begin", GW_MIG_MSG_TYPE__GW_MIG_BEGIN, &mb.base);
	GwVmmMigrateIn vin = GW_VMM_MIGRATE_IN__INIT;
	uint8_t bb[256];
	vin.migration_id = 77, vin.stream = -1, vin.has_begin = 1;
	vin.begin.len = protobuf_c_message_pack(&mb.base, bb), vin.begin.data = bb;
	frame("vmm-in", GW_MIG_MSG_TYPE__GW_MIG_VMM_IN, &vin.base);
	GwMigJoin j = GW_MIG_JOIN__INIT;
	j.migration_id = 77, j.stream = 1;
	frame("mig-join", GW_MIG_MSG_TYPE__GW_MIG_JOIN, &j.base);

	/* the coordinator's API */
	GwClStatusReq st = GW_CL_STATUS_REQ__INIT;
	frame("cl-status", GW_CL_MSG_TYPE__GW_CL_API_STATUS, &st.base);
	GwClVmCreateReq cc = GW_CL_VM_CREATE_REQ__INIT;
	cc.name = "vm2", cc.image = "/img/a", cc.memory_mib = 128, cc.ha = 1, cc.has_priority = 1;
	cc.priority = 5, cc.anti_affinity = "web", cc.host = "n1";
	frame("cl-vm-create", GW_CL_MSG_TYPE__GW_CL_API_VM_CREATE, &cc.base);
	GwClVmMigrateReq cm = GW_CL_VM_MIGRATE_REQ__INIT;
	cm.name = "vm2", cm.to_host = "n2";
	frame("cl-vm-migrate", GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE, &cm.base);
	GwClHostMaintReq hm = GW_CL_HOST_MAINT_REQ__INIT;
	hm.host = "n1", hm.enter = 1;
	frame("cl-host-maint", GW_CL_MSG_TYPE__GW_CL_API_HOST_MAINT, &hm.base);
	GwClBalanceReq ba = GW_CL_BALANCE_REQ__INIT;
	ba.has_max_moves = 1, ba.max_moves = 2, ba.has_threshold_pct = 1, ba.threshold_pct = 5;
	frame("cl-balance", GW_CL_MSG_TYPE__GW_CL_API_BALANCE, &ba.base);
	GwClVmAdminReq ad = GW_CL_VM_ADMIN_REQ__INIT;
	ad.name = "vm2", ad.action = "stop";
	frame("cl-vm-admin", GW_CL_MSG_TYPE__GW_CL_API_VM_ADMIN, &ad.base);
	GwClEventsReq ev = GW_CL_EVENTS_REQ__INIT;
	ev.has_since_seq = 1, ev.since_seq = 3;
	frame("cl-events", GW_CL_MSG_TYPE__GW_CL_API_EVENTS, &ev.base);
	GwClVmMigrateCancelReq mc = GW_CL_VM_MIGRATE_CANCEL_REQ__INIT;
	mc.name = "vm2";
	frame("cl-vm-migrate-cancel", GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE_CANCEL, &mc.base);
	put_file("control", "stream", stream.b, stream.n);
}

/* ---- migrate: mode byte, then the decoder's input ---- */

static void migrate_msg(const char *name, uint8_t idx, const ProtobufCMessage *m)
{
	struct buf b = {.n = 0};
	add_le(&b, 3, 1);
	add_le(&b, idx, 1);
	add_le(&b, 1024, 2); /* RAM pages, for ROUND_ACK runs */
	add_msg(&b, m);
	put_file("migrate", name, b.b, b.n);
}

/* A state blob as vmm_state.c frames it: header, then sections padded to 8 bytes. */
static void blob(struct buf *b, uint32_t magic, uint32_t idx, uint32_t nvcpus,
		 const uint16_t *types, const uint32_t *lens, size_t n)
{
	size_t start = b->n;
	add_le(b, magic, 4), add_le(b, 1, 2), add_le(b, 24, 2), add_le(b, idx, 4);
	add_le(b, nvcpus, 4), add_le(b, 0, 4), add_le(b, 0, 4);
	for (size_t i = 0; i < n; i++) {
		add_le(b, types[i], 2), add_le(b, 0, 2), add_le(b, lens[i], 4);
		if (types[i] == 10) { /* VMINFO: RAM bytes, vCPUs, TSC kHz of the harness's VM */
			add_le(b, 1ull << 28, 8), add_le(b, nvcpus, 4), add_le(b, 2000000, 4);
			continue;
		}
		for (uint32_t k = 0; k < lens[i]; k++)
			add_le(b, types[i] == 9 ? (k == 0) : (uint8_t)(k * 7 + i), 1);
		for (uint32_t k = lens[i]; k % 8; k++)
			add_le(b, 0, 1);
	}
	uint32_t body = (uint32_t)(b->n - start - 24);
	for (int i = 0; i < 4; i++)
		b->b[start + 16 + i] = (uint8_t)(body >> (8 * i));
}

static void migrate_seeds(void)
{
	struct buf b;
	struct gw_pagebatch_hdr h;
	static const uint16_t flags[] = {0, GW_PAGEBATCH_F_LAST, GW_PAGEBATCH_F_ZERO,
					 GW_PAGEBATCH_F_PLACED | GW_PAGEBATCH_F_LAST};
	for (unsigned i = 0; i < 4; i++) {
		b.n = 0;
		add_le(&b, 0, 1);
		add_le(&b, 262144, 8); /* RAM pages (1 GiB) */
		add_le(&b, 4096, 4);   /* the connection's batch limit */
		add_le(&b, 0, 1);      /* the CRC as sent */
		gw_pagebatch_encode(&h, 1000 * i, 16 << i, flags[i], flags[i] & 2 ? 0 : 0x1234567u);
		add(&b, &h, sizeof(h));
		char name[32];
		snprintf(name, sizeof(name), "batch-%u", i);
		put_file("migrate", name, b.b, b.n);
	}
	b.n = 0; /* page runs */
	add_le(&b, 1, 1), add_le(&b, 1024, 2);
	static const uint64_t runs[] = {0, 4, 10, 1, 100, 200, 1023, 1};
	for (size_t i = 0; i < 8; i++)
		add_le(&b, runs[i], 8);
	put_file("migrate", "runs", b.b, b.n);
	b.n = 0; /* a bitmap and room for 3 runs */
	add_le(&b, 2, 1), add_le(&b, 300, 2), add_le(&b, 3, 1);
	for (int w = 0; w < 5; w++)
		add_le(&b, 0x00ff00f0f0000f0full << w, 8);
	put_file("migrate", "bitmap", b.b, b.n);

	GwMigBegin mb = GW_MIG_BEGIN__INIT;
	mb.version = 1, mb.migration_id = 5, mb.name = "vm1", mb.memory_mib = 64, mb.vcpus = 1;
	mb.image = "/img", mb.streams = 2, mb.page_size = 4096, mb.transport = "rdma";
	migrate_msg("begin", 0, &mb.base);
	GwMigBeginReply br = GW_MIG_BEGIN_REPLY__INIT;
	br.ok = 1, br.has_data_port = 1, br.data_port = 7500, br.has_resends_unverified = 1;
	br.resends_unverified = 1;
	migrate_msg("begin-reply", 1, &br.base);
	GwMigSwitchover so = GW_MIG_SWITCHOVER__INIT;
	ProtobufCBinaryData vcs[2] = {{3, (uint8_t *)"abc"}, {2, (uint8_t *)"de"}};
	uint64_t sb[2] = {10, 12}, sp[2] = {1000, 1200};
	so.rounds = 3, so.pages_total = 2200, so.n_vcpu_state = 2, so.vcpu_state = vcs;
	so.paused_at_ns = 123456789, so.n_stream_batches = 2, so.stream_batches = sb;
	so.n_stream_pages = 2, so.stream_pages = sp;
	migrate_msg("switchover", 3, &so.base);
	GwMigAck ack = GW_MIG_ACK__INIT;
	ack.ok = 1, ack.pages_received = 2200;
	migrate_msg("ack", 4, &ack.base);
	GwMigCommitDone cd = GW_MIG_COMMIT_DONE__INIT;
	cd.resumed_at_ns = 5, cd.boot_id = "0f0e0d0c-0000-4000-8000-000000000000";
	migrate_msg("commit-done", 6, &cd.base);
	GwMigAbort ab = GW_MIG_ABORT__INIT;
	ab.reason = "cancelled";
	migrate_msg("abort", 7, &ab.base);
	GwMigOutcome oc = GW_MIG_OUTCOME__INIT;
	oc.migration_id = 5, oc.outcome = "committed";
	migrate_msg("outcome", 9, &oc.base);
	GwMigRoundEnd re = GW_MIG_ROUND_END__INIT;
	uint64_t ur[4] = {5, 3, 900, 100};
	re.round = 1, re.pages = 1024, re.n_stream_batches = 2, re.stream_batches = sb;
	re.n_unverified_runs = 4, re.unverified_runs = ur, re.has_unverified_pages = 1;
	re.unverified_pages = 103;
	migrate_msg("round-ack", 10, &re.base);
	GwMigPlacement pl = GW_MIG_PLACEMENT__INIT;
	pl.addr = 0x7f0000000000ull, pl.len = 1 << 26, pl.rkey = 42;
	migrate_msg("placement", 11, &pl.base);

	/* vCPU blobs: kvm-shaped (regs, sregs, ..., godwit) and process-shaped */
	static const uint16_t kt[] = {1, 2, 3, 5, 6, 7, 8, 9};
	static const uint32_t kl[] = {144, 312, 416, 24, 72, 64, 128, 8};
	static const uint16_t pt[] = {11, 12, 9};
	static const uint32_t pl2[] = {160, 832, 8};
	b.n = 0;
	add_le(&b, 4, 1), add_le(&b, 0, 1), add_le(&b, 0x02, 1); /* vcpu 0 of 2, kvm */
	blob(&b, 0x50435747u, 0, 2, kt, kl, 8);
	put_file("migrate", "vcpu-kvm", b.b, b.n);
	b.n = 0;
	add_le(&b, 4, 1), add_le(&b, 1, 1), add_le(&b, 0x03, 1); /* vcpu 1 of 2, process */
	blob(&b, 0x50435747u, 1, 2, pt, pl2, 3);
	put_file("migrate", "vcpu-process", b.b, b.n);
	b.n = 0;
	static const uint16_t vt[] = {10};
	static const uint32_t vl[] = {16};
	add_le(&b, 5, 1), add_le(&b, 0, 1), add_le(&b, 0x00, 1); /* VM blob, 1 vCPU */
	blob(&b, 0x4d565747u, 0, 1, vt, vl, 1);
	put_file("migrate", "vm-blob", b.b, b.n);
}

/* ---- cluster: deliveries (u8 from | u16 length | u16 type | payload) ---- */

static void deliver(struct buf *b, uint8_t from, uint16_t type, const ProtobufCMessage *m)
{
	size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
	add_le(b, from, 1);
	uint8_t hdr[4] = {(uint8_t)((n + 2) >> 8), (uint8_t)(n + 2), (uint8_t)(type >> 8),
			  (uint8_t)type};
	add(b, hdr, 4);
	if (m)
		add_msg(b, m);
}

static void members(struct buf *b, const uint32_t *ids, size_t n)
{
	add_le(b, 0, 1);
	uint8_t hdr[4] = {(uint8_t)((4 * n + 2) >> 8), (uint8_t)(4 * n + 2), 0xff, 0xff};
	add(b, hdr, 4);
	for (size_t i = 0; i < n; i++)
		add_le(b, ids[i], 4);
}

static void hellos(struct buf *b)
{
	static const char *const names[] = {"n1", "n2", "n3"};
	for (uint32_t i = 0; i < 3; i++) {
		GwClHello h = GW_CL_HELLO__INIT;
		h.nodeid = i + 1, h.name = (char *)names[i], h.has_mem_total_mib = 1;
		h.mem_total_mib = 8192, h.has_mem_avail_mib = 1, h.mem_avail_mib = 6000;
		h.agent_listen = "198.18.0.1:7420", h.time_ms = 1000 + i, h.vm_backend = "process";
		h.has_watchdog_s = i == 2, h.watchdog_s = 10;
		deliver(b, (uint8_t)(i + 1), GW_CL_MSG_TYPE__GW_CL_HELLO, &h.base);
	}
}

static void define(struct buf *b, const char *name, const char *host, bool ha)
{
	GwClVm vm = GW_CL_VM__INIT;
	GwClVmDefine d = GW_CL_VM_DEFINE__INIT;
	vm.name = (char *)name, vm.host = (char *)host, vm.state = "starting", vm.ha = ha;
	vm.has_priority = 1, vm.priority = 3, vm.anti_affinity = "g", vm.image = "/img/a";
	vm.memory_mib = 256, vm.has_vcpus = 1, vm.vcpus = 2, vm.cmdline = "c";
	d.vm = &vm, d.time_ms = 2000;
	deliver(b, 1, GW_CL_MSG_TYPE__GW_CL_VM_DEFINE, &d.base);
}

static void vm_state(struct buf *b, const char *name, const char *host, const char *state)
{
	GwClVmStateMsg s = GW_CL_VM_STATE_MSG__INIT;
	s.name = (char *)name, s.host = (char *)host, s.state = (char *)state, s.time_ms = 2100;
	s.reason = "seed";
	deliver(b, 2, GW_CL_MSG_TYPE__GW_CL_VM_STATE, &s.base);
}

static void cluster_seeds(void)
{
	static struct buf b;
	uint32_t two[] = {1, 3}, all[] = {1, 2, 3};

	/* failover: a host is lost, fenced, its HA VM restarted elsewhere */
	b.n = 0;
	hellos(&b);
	define(&b, "a", "n2", true);
	define(&b, "b", "n2", false);
	vm_state(&b, "a", "n2", "running");
	members(&b, two, 2);
	GwClFence f = GW_CL_FENCE__INIT;
	f.host = "n2", f.has_attempt = 1, f.attempt = 1, f.detail = "test", f.time_ms = 3000;
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_FENCE_START, &f.base);
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_FENCE_FAILED, &f.base);
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, &f.base);
	GwClVmRestart rs = GW_CL_VM_RESTART__INIT;
	rs.name = "a", rs.target = "n3", rs.reason = "host n2 fenced", rs.time_ms = 3100;
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_VM_RESTART, &rs.base);
	rs.name = "b", rs.target = NULL;
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_VM_UNPLACED, &rs.base);
	members(&b, all, 3);
	put_file("cluster", "failover", b.b, b.n);

	/* migration, maintenance, admin */
	b.n = 0;
	hellos(&b);
	define(&b, "a", "n1", true);
	vm_state(&b, "a", "n1", "running");
	GwClMigrate mg = GW_CL_MIGRATE__INIT;
	mg.vm = "a", mg.from = "n1", mg.to = "n2", mg.id = 7, mg.time_ms = 4000;
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_MIGRATE_START, &mg.base);
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_MIGRATE_CANCEL, &mg.base);
	mg.result = "completed", mg.has_total_ms = 1, mg.total_ms = 900;
	mg.has_downtime_ms = 1, mg.downtime_ms = 3.5;
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE, &mg.base);
	GwClMaint mt = GW_CL_MAINT__INIT;
	mt.host = "n2", mt.has_id = 1, mt.id = 9, mt.time_ms = 5000;
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER, &mt.base);
	mt.error = "";
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_EVAC_END, &mt.base);
	deliver(&b, 1, GW_CL_MSG_TYPE__GW_CL_MAINT_EXIT, &mt.base);
	static const char *const actions[] = {"stop", "start", "stop", "delete"};
	for (int i = 0; i < 4; i++) {
		GwClVmAdmin ad = GW_CL_VM_ADMIN__INIT;
		ad.name = "a", ad.action = (char *)actions[i], ad.time_ms = 6000 + i;
		deliver(&b, 3, GW_CL_MSG_TYPE__GW_CL_VM_ADMIN, &ad.base);
	}
	put_file("cluster", "migrate-maint-admin", b.b, b.n);

	/* a joiner takes a snapshot of a state with hosts, VMs, events and tombstones */
	struct gw_coord_state st;
	gw_coord_state_init(&st, "");
	b.n = 0;
	hellos(&b);
	define(&b, "a", "n1", true);
	define(&b, "c", "n3", false);
	for (size_t o = 0; o < b.n;) { /* apply what is in b so far */
		uint32_t from = b.b[o];
		size_t len = (size_t)b.b[o + 1] << 8 | b.b[o + 2];
		const uint8_t *m = b.b + o + 3;
		gw_coord_state_apply(&st, (uint16_t)(m[0] << 8 | m[1]), m + 2, len - 2, from);
		o += 3 + len;
	}
	uint8_t *snap;
	size_t sl;
	if (gw_coord_state_encode(&st, 1, true, &snap, &sl))
		abort();
	struct buf s2 = {.n = 0};
	add_le(&s2, 1, 1);
	uint8_t hdr[4] = {(uint8_t)((sl + 2) >> 8), (uint8_t)(sl + 2), 0x01, 0x2d}; /* 301 */
	add(&s2, hdr, 4);
	add(&s2, snap, sl);
	vm_state(&s2, "c", "n3", "failed");
	put_file("cluster", "snapshot", s2.b, s2.n);
	free(snap);
	gw_coord_state_free(&st);
}

/* ---- config, metrics, process decode: text and bytes ---- */

static void text_seeds(void)
{
	static const char conf[] =
	    "# godwit.conf\n[agent]\nnode = n1\nstate_dir = /var/lib/godwit\n"
	    "socket = /run/godwit/agent.sock\nlisten = 0.0.0.0:7420\n"
	    "metrics_listen = [::1]:9100\ncluster_key = /etc/godwit/cluster.key\n"
	    "memory_reserve_mib = 512\nincoming_ram_pool_mib = 1024\n"
	    "migration_transport = tcp\nvm_backend = auto\nconsole_max_kib = 1024\n"
	    "log_level = warn\n\n[coordinator]\nnode = n1\nsocket = /run/godwit/coord.sock\n"
	    "agent_socket = /run/godwit/agent.sock\nstate_dir = /var/lib/godwit\n"
	    "watchdog = /dev/watchdog\nwatchdog_timeout = 10\n"
	    "metrics_listen = 127.0.0.1:9101\n\n[fence.n2]\nagent = /usr/sbin/fence_ipmilan\n"
	    "timeout = 30\nip = 10.0.0.2\nusername = \"admin\"\n; done\n";
	put_file("config", "godwit.conf", conf, sizeof(conf) - 1);
	static const char addr[] = "198.18.0.1:7420\n[agent]\nlisten = [::]:7420\n";
	put_file("config", "addr", addr, sizeof(addr) - 1);

	static const char *const reqs[] = {
	    "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
	    "GET /metrics?x=1 HTTP/1.0\n\n", "POST /metrics HTTP/1.1\r\n\r\n",
	    "GET /other HTTP/1.1\r\n\r\n", "GET\n"};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "req-%zu", i);
		put_file("metrics", name, reqs[i], strlen(reqs[i]));
	}

	/* avail | 15 code bytes | rax rcx rdx rsi rdi rflags | u16 RAM size | RAM */
	static const uint8_t insns[][16] = {
	    {1, 0xee},		   /* out %al,(%dx) */
	    {2, 0xe6, 0xf8},	   /* out %al,$0xf8 */
	    {1, 0xec},		   /* in (%dx),%al */
	    {2, 0x66, 0xed},	   /* in (%dx),%ax */
	    {2, 0xf3, 0x6e},	   /* rep outsb */
	    {3, 0xf3, 0x66, 0x6d}, /* rep insw */
	    {3, 0x67, 0xf3, 0x6f}, /* addr32 rep outsl */
	    {1, 0xfa},		   /* cli */
	    {2, 0xcd, 0x80},	   /* int $0x80 */
	    {3, 0x0f, 0x01, 0x10}, /* lgdt */
	    {2, 0x0f, 0x05},	   /* syscall */
	    {15, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
	     0xee},	     /* 15 bytes */
	    {2, 0xf0, 0xee}, /* lock out: #UD */
	};
	for (size_t i = 0; i < sizeof(insns) / sizeof(insns[0]); i++) {
		struct buf b = {.n = 0};
		add(&b, insns[i], 16);
		add_le(&b, 0x41, 8), add_le(&b, 3, 8), add_le(&b, 0x3f8, 8);
		add_le(&b, 0x100, 8), add_le(&b, 0x200, 8), add_le(&b, i & 1 ? 0x402 : 0x2, 8);
		add_le(&b, 4095, 2);
		for (int k = 0; k < 64; k++)
			add_le(&b, (uint8_t)k, 1);
		char name[16];
		snprintf(name, sizeof(name), "insn-%02zu", i);
		put_file("process_decode", name, b.b, b.n);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR (tests/fuzz)\n");
		return 2;
	}
	root = argv[1];
	control_seeds();
	migrate_seeds();
	cluster_seeds();
	text_seeds();
	return 0;
}
