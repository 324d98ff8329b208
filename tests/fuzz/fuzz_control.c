/* fuzz_control.c -- libFuzzer: the control-socket byte stream. The input is what a client
 * writes: frames (u32 length | u16 type | payload) cut by gw_frame_parse as the agent and the
 * coordinator do, each payload decoded as the daemon that accepts that type decodes it:
 * the agent's control API (gw_control_decode), the coordinator's API (gw_coord_api_decode),
 * the agent's peer listener and the VMM's control socket (their message types), and the
 * replies the agent and coordinator read back (VMM status, agent VM info). Checks: frame
 * bounds, header re-encoding, protobuf required fields, pack -> unpack -> pack stable, the
 * name validation the handlers apply, and GwVmInfo -> struct gw_vm -> GwVmInfo (the
 * agent's state files) exact. */
#include <errno.h>

#include "control.h"
#include "control.pb-c.h"
#include "coord.h"
#include "fuzz_common.h"
#include "gw_frame.h"
#include "migration.pb-c.h"
#include "vmtable.h"

/* Types read outside the two API tables: the agent's migration listener (agent_migrate.c),
 * the VMM's control socket (vmm_mig_control.c) and replies the daemons read back. */
static const ProtobufCMessageDescriptor *other_desc(uint16_t type)
{
	switch (type) {
	case GW_MSG_TYPE__GW_MSG_ERROR:
		return &gw_error__descriptor;
	case GW_MSG_TYPE__GW_MSG_VM_INFO:
		return &gw_vm_info__descriptor;
	case GW_MSG_TYPE__GW_MSG_VM_LIST_REPLY:
		return &gw_vm_list__descriptor;
	case GW_MSG_TYPE__GW_MSG_AGENT_INFO_REPLY:
		return &gw_agent_info__descriptor;
	case GW_MSG_TYPE__GW_MSG_VMM_STATUS:
	case GW_MSG_TYPE__GW_MSG_VMM_PAUSE:
	case GW_MSG_TYPE__GW_MSG_VMM_RESUME:
	case GW_MSG_TYPE__GW_MSG_VMM_STOP:
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_CANCEL:
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_PROGRESS:
		return &gw_vmm_req__descriptor;
	case GW_MSG_TYPE__GW_MSG_VMM_STATUS_REPLY:
		return &gw_vmm_status__descriptor;
	case GW_MIG_MSG_TYPE__GW_MIG_PROGRESS:
		return &gw_mig_progress__descriptor;
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_OUT:
		return &gw_vmm_migrate_out__descriptor;
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_IN:
		return &gw_vmm_migrate_in__descriptor;
	case GW_MIG_MSG_TYPE__GW_MIG_BEGIN:
		return &gw_mig_begin__descriptor;
	case GW_MIG_MSG_TYPE__GW_MIG_JOIN:
		return &gw_mig_join__descriptor;
	case GW_MIG_MSG_TYPE__GW_MIG_OUTCOME_QUERY:
		return &gw_mig_outcome_query__descriptor;
	default:
		return NULL;
	}
}

/* What gw_vm_name_valid accepts is safe to use as a file name under the state dir. */
static void check_name(const char *name)
{
	if (!name || !gw_vm_name_valid(name))
		return;
	size_t n = strlen(name);
	FUZZ_CHECK(n > 0 && n < GW_NAME_MAX && name[0] != '.' && name[0] != '-');
	FUZZ_CHECK(!strchr(name, '/'));
}

/* A VM's state file: GwVmInfo -> struct gw_vm -> GwVmInfo -> struct gw_vm, same VM. */
static void check_vm_info(const GwVmInfo *info)
{
	struct gw_vm a = {.vmm_fd = -1}, b = {.vmm_fd = -1};
	GwVmInfo back;
	if (gw_vm_from_info(&a, info) == 0) {
		FUZZ_CHECK(FUZZ_TERMINATED(a.name) && FUZZ_TERMINATED(a.image));
		FUZZ_CHECK(FUZZ_TERMINATED(a.reason) && FUZZ_TERMINATED(a.backend));
		FUZZ_CHECK(gw_vm_name_valid(a.name));
		gw_vm_to_info(&a, "node", &back);
		FUZZ_CHECK(gw_vm_from_info(&b, &back) == 0);
		FUZZ_CHECK(!strcmp(a.name, b.name) && !strcmp(a.image, b.image));
		FUZZ_CHECK(a.state == b.state && a.memory_mib == b.memory_mib &&
			   a.vcpus == b.vcpus && a.pid == b.pid);
		FUZZ_CHECK(!strcmp(a.reason, b.reason) && !strcmp(a.backend, b.backend));
		FUZZ_CHECK((!a.cmdline && !b.cmdline) ||
			   (a.cmdline && b.cmdline && !strcmp(a.cmdline, b.cmdline)));
		FUZZ_CHECK(!strcmp(a.driver, b.driver));
		FUZZ_CHECK((!a.xml && !b.xml) || (a.xml && b.xml && !strcmp(a.xml, b.xml)));
	}
	gw_vm_clear(&a);
	gw_vm_clear(&b);
}

static void check_message(uint16_t type, const ProtobufCMessage *m)
{
	fuzz_pb_round_trip(m);
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (d == &gw_vm_create_req__descriptor)
		check_name(((const GwVmCreateReq *)m)->name);
	else if (d == &gw_vm_name_req__descriptor)
		check_name(((const GwVmNameReq *)m)->name);
	else if (d == &gw_vm_migrate_req__descriptor)
		check_name(((const GwVmMigrateReq *)m)->name);
	else if (d == &gw_mig_begin__descriptor)
		check_name(((const GwMigBegin *)m)->name);
	else if (d == &gw_vm_info__descriptor)
		check_vm_info((const GwVmInfo *)m);
	else if (d == &gw_vm_list__descriptor)
		for (size_t i = 0; i < ((const GwVmList *)m)->n_vms; i++)
			check_vm_info(((const GwVmList *)m)->vms[i]);
}

static void one_frame(const struct gw_frame *f)
{
	const char *name;
	ProtobufCMessage *m = gw_control_decode(f->type, f->payload, f->len, &name);
	if (!name)
		m = gw_coord_api_decode(f->type, f->payload, f->len, &name);
	if (!name) {
		const ProtobufCMessageDescriptor *d = other_desc(f->type);
		if (!d)
			return; /* refused as an unknown type */
		m = protobuf_c_message_unpack(d, NULL, f->len, f->payload);
	}
	if (!m)
		return; /* refused as malformed */
	check_message(f->type, m);
	protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	const uint32_t max = GW_FRAME_MAX_PAYLOAD;
	for (;;) {
		struct gw_frame f;
		long used = gw_frame_parse(data + off, size - off, max, &f);
		if (used < 0) {
			FUZZ_CHECK(used == -EMSGSIZE);
			return 0; /* the daemon closes the connection */
		}
		if (used == 0)
			return 0; /* waits for more bytes */
		FUZZ_CHECK((size_t)used == GW_FRAME_HDR_LEN + f.len && (size_t)used <= size - off);
		FUZZ_CHECK(f.len <= max && f.payload == data + off + GW_FRAME_HDR_LEN);
		uint8_t hdr[GW_FRAME_HDR_LEN];
		gw_frame_hdr_encode(hdr, f.type, f.len);
		FUZZ_CHECK(memcmp(hdr, data + off, GW_FRAME_HDR_LEN) == 0);
		one_frame(&f);
		off += (size_t)used;
	}
}
