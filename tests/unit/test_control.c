/* test_control.c -- the agent's control dispatch: malformed, unknown and valid requests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_config.h"
#include "control.h"
#include "control.pb-c.h"
#include "driver.h"
#include "host_info.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "vmtable.h"

struct fixture {
	char dir[64];
	char image[128];
	struct gw_agent ag;
	int sv[2];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/gw-test-control-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->image, sizeof(f->image), "%s/guest.bin", f->dir);
	if (gw_file_write_atomic(f->image, "\xf4", 1, 0600))
		return -1;
	gw_agent_config_defaults(&f->ag.cfg);
	snprintf(f->ag.cfg.node, sizeof(f->ag.cfg.node), "testnode");
	char sdir[128];
	snprintf(sdir, sizeof(sdir), "%s/state", f->dir);
	if (gw_vmtable_open(&f->ag.vms, sdir))
		return -1;
	gw_drivers_init(&f->ag);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	gw_drivers_fini(&f->ag);
	gw_vmtable_close(&f->ag.vms);
	close(f->sv[0]);
	close(f->sv[1]);
	gw_rm_rf(f->dir);
	free(f);
	return 0;
}

/* Dispatch raw bytes as a request and return the reply type (payload in *out). */
static uint16_t call(struct fixture *f, uint16_t type, const void *payload, uint32_t len,
		     uint8_t **out, uint32_t *outlen)
{
	uint16_t rtype = 0;
	assert_int_equal(gw_control_dispatch(&f->ag, f->sv[0], type, payload, len), 0);
	assert_int_equal(gw_frame_recv(f->sv[1], GW_FRAME_MAX_PAYLOAD, 1000, &rtype, out, outlen),
			 0);
	return rtype;
}

static int call_error(struct fixture *f, uint16_t type, const ProtobufCMessage *msg, char *text,
		      size_t len)
{
	uint8_t buf[4096], *out;
	uint32_t olen;
	size_t n = msg ? protobuf_c_message_pack(msg, buf) : 0;
	uint16_t rt = call(f, type, buf, (uint32_t)n, &out, &olen);
	assert_int_equal(rt, GW_MSG_TYPE__GW_MSG_ERROR);
	GwError *e = gw_error__unpack(NULL, olen, out);
	assert_non_null(e);
	int code = e->code;
	snprintf(text, len, "%s", e->message);
	gw_error__free_unpacked(e, NULL);
	free(out);
	return code;
}

/* Unknown types and undecodable payloads get an error reply, nothing else happens. */
static void test_malformed(void **state)
{
	struct fixture *f = *state;
	char text[512];
	uint8_t *out;
	uint32_t olen;
	assert_int_equal(call(f, 999, "x", 1, &out, &olen), GW_MSG_TYPE__GW_MSG_ERROR);
	free(out);
	assert_int_equal(call(f, 0, NULL, 0, &out, &olen), GW_MSG_TYPE__GW_MSG_ERROR);
	free(out);
	/* a reply type sent as a request */
	assert_int_equal(call(f, GW_MSG_TYPE__GW_MSG_VM_INFO, NULL, 0, &out, &olen),
			 GW_MSG_TYPE__GW_MSG_ERROR);
	free(out);
	/* garbage protobuf, and a create request missing its required fields */
	assert_int_equal(call(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, "\xff\xff\xff\xff", 4, &out, &olen),
			 GW_MSG_TYPE__GW_MSG_ERROR);
	free(out);
	assert_int_equal(call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, NULL, text, sizeof(text)),
			 -EBADMSG);
	assert_string_equal(text, "malformed vm-create request");
	assert_int_equal(f->ag.vms.count, 0);
}

/* Create refuses bad names, relative or missing images, bad sizes, too much memory. */
static void test_create_invalid(void **state)
{
	struct fixture *f = *state;
	char text[512];
	GwVmCreateReq req = GW_VM_CREATE_REQ__INIT;
	req.name = "../etc";
	req.image = f->image;
	req.memory_mib = 64;
	assert_int_equal(
	    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)), -EINVAL);
	req.name = "vm1";
	req.image = "relative.bin";
	assert_int_equal(
	    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)), -EINVAL);
	req.image = "/nonexistent/guest.bin";
	assert_int_equal(
	    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)), -ENOENT);
	assert_non_null(strstr(text, "image not found: /nonexistent/guest.bin"));
	/* a driver this agent does not have is refused, naming it */
	req.driver = "xen-pv";
	assert_int_equal(
	    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)), -EINVAL);
	assert_non_null(strstr(text, "unknown driver 'xen-pv'"));
	req.driver = NULL;
	req.image = f->image;
	req.memory_mib = 3;
	assert_int_equal(
	    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)), -EINVAL);
	req.memory_mib = 64;
	req.has_vcpus = 1;
	req.vcpus = 65;
	assert_int_equal(
	    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)), -EINVAL);
	req.vcpus = 1;
	req.memory_mib = 100 * 1024; /* more than this host has */
	unsigned long long total, avail;
	assert_int_equal(gw_host_meminfo(&total, &avail), 0);
	if (total < 100 * 1024) {
		assert_int_equal(
		    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)),
		    -ENOMEM);
		assert_non_null(strstr(text, "not enough host memory"));
	}
	assert_int_equal(f->ag.vms.count, 0);
}

/* A valid create is stored and reported; show/list/delete then work on it. */
static void test_create_show_delete(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4096], *out;
	uint32_t olen;
	char text[512];
	GwVmCreateReq req = GW_VM_CREATE_REQ__INIT;
	req.name = "vm1";
	req.image = f->image;
	req.memory_mib = 64;
	req.has_vcpus = 1;
	req.vcpus = 2;
	req.cmdline = "mode=test";
	size_t n = gw_vm_create_req__pack(&req, buf);
	assert_int_equal(call(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, buf, (uint32_t)n, &out, &olen),
			 GW_MSG_TYPE__GW_MSG_VM_INFO);
	GwVmInfo *info = gw_vm_info__unpack(NULL, olen, out);
	assert_non_null(info);
	assert_string_equal(info->state, "defined");
	assert_string_equal(info->node, "testnode");
	assert_int_equal(info->vcpus, 2);
	gw_vm_info__free_unpacked(info, NULL);
	free(out);
	assert_int_equal(
	    call_error(f, GW_MSG_TYPE__GW_MSG_VM_CREATE, &req.base, text, sizeof(text)), -EEXIST);

	GwVmNameReq nr = GW_VM_NAME_REQ__INIT;
	nr.name = "vm1";
	assert_int_equal(call_error(f, GW_MSG_TYPE__GW_MSG_VM_PAUSE, &nr.base, text, sizeof(text)),
			 -EINVAL);
	assert_string_equal(text, "vm 'vm1' is defined: cannot pause it");
	assert_int_equal(call_error(f, GW_MSG_TYPE__GW_MSG_VM_STOP, &nr.base, text, sizeof(text)),
			 -EINVAL);

	GwVmListReq lr = GW_VM_LIST_REQ__INIT;
	n = gw_vm_list_req__pack(&lr, buf);
	assert_int_equal(call(f, GW_MSG_TYPE__GW_MSG_VM_LIST, buf, (uint32_t)n, &out, &olen),
			 GW_MSG_TYPE__GW_MSG_VM_LIST_REPLY);
	GwVmList *list = gw_vm_list__unpack(NULL, olen, out);
	assert_non_null(list);
	assert_int_equal(list->n_vms, 1);
	assert_string_equal(list->vms[0]->cmdline, "mode=test");
	gw_vm_list__free_unpacked(list, NULL);
	free(out);

	n = gw_vm_name_req__pack(&nr, buf);
	assert_int_equal(call(f, GW_MSG_TYPE__GW_MSG_VM_DELETE, buf, (uint32_t)n, &out, &olen),
			 GW_MSG_TYPE__GW_MSG_OK);
	free(out);
	assert_int_equal(call_error(f, GW_MSG_TYPE__GW_MSG_VM_SHOW, &nr.base, text, sizeof(text)),
			 -ENOENT);
	assert_string_equal(text, "vm 'vm1': no such VM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_show_delete, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
