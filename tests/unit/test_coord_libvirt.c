/* test_coord_libvirt.c -- libvirt VMs in the coordinator's cluster state: driver and domain XML
 * through VM_DEFINE, snapshots and the durable copy; the size limit; import (adopt, XML back
 * with the first running report); placement only on hosts with an available libvirt driver;
 * HA restart after the fence. */
#include "coord_test_msgs.h"

#include <unistd.h>

#include "coord_drs.h"
#include "gw_fsutil.h"

#define XML_SMALL                                                                                  \
	"<domain type='kvm'><name>lv</name><memory unit='MiB'>512</memory><vcpu>2</vcpu>"          \
	"</domain>"

/* Messages too large for struct msg: packed into a malloc'd buffer, applied, freed. */
static int apply_big(struct gw_coord_state *st, uint16_t type, const ProtobufCMessage *m,
		     uint32_t from)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	protobuf_c_message_pack(m, buf);
	int r = gw_coord_state_apply(st, type, buf, len, from);
	free(buf);
	return r;
}

/* HELLO with a driver list: microvm always available, libvirt as given (NULL = not listed). */
static void hello_drivers(struct gw_coord_state *st, uint32_t nodeid, const char *name,
			  uint64_t mem, const bool *libvirt)
{
	GwClHello h = GW_CL_HELLO__INIT;
	GwClDriver d[2] = {GW_CL_DRIVER__INIT, GW_CL_DRIVER__INIT}, *dp[2] = {&d[0], &d[1]};
	h.nodeid = nodeid;
	h.name = (char *)name;
	h.has_mem_total_mib = 1;
	h.mem_total_mib = mem;
	h.time_ms = 1000;
	h.vm_backend = "kvm";
	d[0].name = "microvm";
	d[0].available = true;
	d[1].name = "libvirt";
	d[1].available = libvirt && *libvirt;
	d[1].status = libvirt && *libvirt ? "qemu:///system" : "libvirtd not reachable";
	h.n_drivers = libvirt ? 2 : 1;
	h.drivers = dp;
	assert_int_equal(apply_big(st, GW_CL_MSG_TYPE__GW_CL_HELLO, &h.base, nodeid), 0);
}

static int define_lv(struct gw_coord_state *st, const char *name, const char *host, const char *xml,
		     bool importing, uint32_t mem)
{
	GwClVm v = GW_CL_VM__INIT;
	GwClVmDefine d = GW_CL_VM_DEFINE__INIT;
	v.name = (char *)name;
	v.host = (char *)host;
	v.state = "starting";
	v.ha = true;
	v.image = "";
	v.memory_mib = mem;
	v.driver = "libvirt";
	v.xml = (char *)xml;
	v.has_importing = importing;
	v.importing = importing;
	d.vm = &v;
	d.time_ms = 2000;
	return apply_big(st, GW_CL_MSG_TYPE__GW_CL_VM_DEFINE, &d.base, 1);
}

static void report(struct gw_coord_state *st, const char *name, const char *host, uint32_t from,
		   const char *state, const char *xml, uint32_t mem)
{
	GwClVmStateMsg s = GW_CL_VM_STATE_MSG__INIT;
	s.name = (char *)name;
	s.host = (char *)host;
	s.state = (char *)state;
	s.reason = "test";
	s.time_ms = 3000;
	s.xml = (char *)xml;
	s.has_memory_mib = s.has_vcpus = mem != 0;
	s.memory_mib = mem;
	s.vcpus = 2;
	assert_int_equal(apply_big(st, GW_CL_MSG_TYPE__GW_CL_VM_STATE, &s.base, from), 0);
}

/* n1 without libvirt, n2 with it available, n3 with it listed but down. */
static void lv_hosts(struct gw_coord_state *st, const char *path)
{
	bool yes = true, no = false;
	gw_coord_state_init(st, path);
	hello_drivers(st, 1, "n1", 4000, NULL);
	hello_drivers(st, 2, "n2", 2000, &yes);
	hello_drivers(st, 3, "n3", 8000, &no);
}

static void test_define_and_snapshot(void **state)
{
	struct gw_coord_state st, back;
	char big[8192];
	lv_hosts(&st, NULL);
	/* a realistic size: 8 KiB of XML survives VM_DEFINE and a snapshot byte for byte */
	snprintf(big, sizeof(big), "%s", XML_SMALL);
	size_t off = strlen(big) - strlen("</domain>");
	while (off + 40 < sizeof(big) - 20)
		off += (size_t)snprintf(big + off, sizeof(big) - off, "<!-- padding padding -->\n");
	snprintf(big + off, sizeof(big) - off, "</domain>");
	assert_int_equal(define_lv(&st, "lv", "n2", big, false, 512), 0);
	struct gw_coord_vm *vm = gw_coord_vm_find(&st, "lv");
	assert_non_null(vm);
	assert_string_equal(vm->driver, "libvirt");
	assert_string_equal(vm->xml, big);
	assert_int_equal(st.hosts[1].n_drivers, 2);
	assert_string_equal(st.hosts[1].drivers[1].name, "libvirt");
	assert_true(st.hosts[1].drivers[1].available);
	assert_false(st.hosts[2].drivers[1].available);

	uint8_t *buf, *buf2;
	size_t len, len2;
	assert_int_equal(gw_coord_state_encode(&st, 1, true, &buf, &len), 0);
	gw_coord_state_init(&back, NULL);
	assert_int_equal(gw_coord_state_decode(&back, buf, len), 0);
	vm = gw_coord_vm_find(&back, "lv");
	assert_non_null(vm);
	assert_string_equal(vm->driver, "libvirt");
	assert_string_equal(vm->xml, big);
	assert_false(vm->importing);
	assert_string_equal(back.hosts[2].drivers[1].status, "libvirtd not reachable");
	assert_int_equal(gw_coord_state_encode(&back, 1, true, &buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	free(buf);
	free(buf2);
	gw_coord_state_free(&back);
	gw_coord_state_free(&st);
}

/* Over 64 KiB is refused by the apply (an event, no VM); a micro-VM keeps no XML. */
static void test_xml_limit(void **state)
{
	struct gw_coord_state st;
	size_t n = GW_COORD_XML_MAX + 1;
	char *huge = malloc(n + 1);
	assert_non_null(huge);
	memset(huge, ' ', n);
	huge[n] = 0;
	memcpy(huge, "<domain>", 8);
	lv_hosts(&st, NULL);
	assert_int_equal(define_lv(&st, "big", "n2", huge, false, 512), 0);
	assert_null(gw_coord_vm_find(&st, "big"));
	/* libvirt without XML and without import: refused too */
	assert_int_equal(define_lv(&st, "noxml", "n2", NULL, false, 512), 0);
	assert_null(gw_coord_vm_find(&st, "noxml"));
	struct gw_coord_vm vm = {0};
	assert_int_equal(gw_coord_vm_set_xml(&vm, huge), -EMSGSIZE);
	huge[GW_COORD_XML_MAX] = 0;
	assert_int_equal(gw_coord_vm_set_xml(&vm, huge), 0);
	assert_int_equal(strlen(vm.xml), GW_COORD_XML_MAX);
	free(vm.xml);
	free(huge);
	gw_coord_state_free(&st);
}

/* Placement and fits: a libvirt VM only on hosts whose libvirt driver is available. */
static void test_placement_by_driver(void **state)
{
	struct gw_coord_state st;
	char out[GW_COORD_NAME_MAX], why[256];
	lv_hosts(&st, NULL);
	/* n3 has the most memory, n1 next: but only n2 runs libvirt VMs */
	assert_int_equal(gw_coord_place(&st, "x", 100, NULL, "libvirt", "kvm", out, sizeof(out)),
			 0);
	assert_string_equal(out, "n2");
	assert_int_equal(gw_coord_place(&st, "x", 2001, NULL, "libvirt", NULL, out, sizeof(out)),
			 -ENOSPC);
	/* micro-VMs: every host lists microvm available */
	assert_int_equal(gw_coord_place(&st, "x", 100, NULL, NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "n3");
	assert_int_equal(define_lv(&st, "lv", "n2", XML_SMALL, false, 512), 0);
	report(&st, "lv", "n2", 2, "running", NULL, 0);
	struct gw_coord_vm *vm = gw_coord_vm_find(&st, "lv");
	assert_int_equal(vm->state, GW_CVM_RUNNING);
	assert_int_equal(gw_coord_fits(&st, vm, "n1", why, sizeof(why)), -EXDEV);
	assert_non_null(strstr(why, "libvirt"));
	assert_int_equal(gw_coord_fits(&st, vm, "n3", why, sizeof(why)), -EXDEV);
	/* libvirtd back on n3: fits, whatever n3's VMM backend (not a micro-VM rule) */
	bool yes = true;
	hello_drivers(&st, 3, "n3", 8000, &yes);
	snprintf(st.hosts[2].vm_backend, sizeof(st.hosts[2].vm_backend), "process");
	vm = gw_coord_vm_find(&st, "lv");
	assert_int_equal(gw_coord_fits(&st, vm, "n3", why, sizeof(why)), 0);
	/* an agent that lists no drivers runs micro-VMs only */
	struct msg h = hello(4, "n4", 100000);
	apply(&st, &h);
	assert_false(gw_coord_host_has_driver(gw_coord_host_by_name(&st, "n4"), "libvirt"));
	assert_true(gw_coord_host_has_driver(gw_coord_host_by_name(&st, "n4"), ""));
	assert_int_equal(gw_coord_place(&st, "x", 9000, NULL, "libvirt", NULL, out, sizeof(out)),
			 -ENOSPC);
	assert_int_equal(gw_coord_place(&st, "x", 9000, NULL, "microvm", NULL, out, sizeof(out)),
			 0);
	assert_string_equal(out, "n4");
	gw_coord_state_free(&st);
}

/* The balancer in a mixed cluster: libvirt VMs move between hosts of any VMM backend (QEMU
 * migrates them), but only to hosts whose libvirt driver is available. */
static void test_balance_mixed_backends(void **state)
{
	struct gw_coord_state st;
	bool yes = true, no = false;
	gw_coord_state_init(&st, NULL);
	hello_drivers(&st, 1, "n1", 4000, &yes);
	hello_drivers(&st, 2, "n2", 4000, &yes);
	hello_drivers(&st, 3, "n3", 4000, &no);
	snprintf(st.hosts[1].vm_backend, sizeof(st.hosts[1].vm_backend), "process");
	const char *names[] = {"lv1", "lv2", "lv3"};
	for (int i = 0; i < 3; i++) {
		char xml[256];
		snprintf(xml, sizeof(xml),
			 "<domain type='kvm'><name>%s</name><memory unit='MiB'>1000</memory>"
			 "</domain>",
			 names[i]);
		assert_int_equal(define_lv(&st, names[i], "n1", xml, false, 1000), 0);
		report(&st, names[i], "n1", 1, "running", NULL, 0);
	}
	struct gw_coord_drs_req rq = {.aggressiveness = 5, .manual = true};
	struct gw_coord_balance *out = calloc(1, sizeof(*out));
	assert_non_null(out);
	assert_int_equal(gw_coord_drs_plan(&st, &rq, out, NULL), 0);
	assert_true(out->n_moves >= 1);
	for (size_t i = 0; i < out->n_moves; i++) {
		assert_string_equal(out->moves[i].from, "n1");
		assert_string_equal(out->moves[i].to,
				    "n2"); /* process backend: fine; n3: no libvirt */
	}
	free(out);
	gw_coord_state_free(&st);
}

/* Import: defined importing, no XML; the host's running report brings XML, memory, vCPUs. */
static void test_import(void **state)
{
	struct gw_coord_state st;
	lv_hosts(&st, NULL);
	assert_int_equal(define_lv(&st, "lv", "n2", NULL, true, 0), 0);
	struct gw_coord_vm *vm = gw_coord_vm_find(&st, "lv");
	assert_non_null(vm);
	assert_true(vm->importing);
	assert_null(vm->xml);
	/* a report from another host is ignored; one without XML fails the import */
	report(&st, "lv", "n3", 3, "running", XML_SMALL, 512);
	assert_true(vm->importing);
	report(&st, "lv", "n2", 2, "running", XML_SMALL, 512);
	assert_false(vm->importing);
	assert_int_equal(vm->state, GW_CVM_RUNNING);
	assert_string_equal(vm->xml, XML_SMALL);
	assert_int_equal(vm->memory_mib, 512);
	assert_int_equal(vm->vcpus, 2);

	assert_int_equal(define_lv(&st, "lv2", "n2", NULL, true, 0), 0);
	report(&st, "lv2", "n2", 2, "running", NULL, 0);
	vm = gw_coord_vm_find(&st, "lv2");
	assert_int_equal(vm->state, GW_CVM_FAILED);
	assert_non_null(strstr(vm->reason, "no domain XML"));
	/* a failed import starts again only on its own host */
	struct msg a = admin("lv2", "start");
	apply(&st, &a);
	vm = gw_coord_vm_find(&st, "lv2");
	assert_int_equal(vm->state, GW_CVM_STARTING);
	assert_string_equal(vm->host, "n2");
	assert_true(vm->importing);
	/* its host fenced before the import finished: lost, not restarted (no definition) */
	uint32_t members[] = {1, 3};
	gw_coord_state_members(&st, members, 2, 5000);
	struct msg fs = fence_msg(GW_CL_MSG_TYPE__GW_CL_FENCE_START, "n2"),
		   fc = fence_msg(GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, "n2");
	apply(&st, &fs);
	apply(&st, &fc);
	assert_int_equal(gw_coord_vm_find(&st, "lv2")->state, GW_CVM_LOST);
	/* the imported one is HA with its XML: pending, restarted where libvirt is */
	vm = gw_coord_vm_find(&st, "lv");
	assert_int_equal(vm->state, GW_CVM_PENDING);
	char out[GW_COORD_NAME_MAX];
	assert_int_equal(gw_coord_place(&st, vm->name, vm->memory_mib, vm->group, vm->driver, NULL,
					out, sizeof(out)),
			 -ENOSPC); /* n3's libvirt is down, n1 has none */
	bool yes = true;
	hello_drivers(&st, 3, "n3", 8000, &yes);
	assert_int_equal(gw_coord_place(&st, vm->name, vm->memory_mib, vm->group, vm->driver, NULL,
					out, sizeof(out)),
			 0);
	assert_string_equal(out, "n3");
	gw_coord_state_free(&st);
}

/* The durable copy keeps driver, XML and the importing flag; delete frees the XML. */
static void test_durable_and_delete(void **state)
{
	char dir[] = "/tmp/gw-coordlv-XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	struct gw_coord_state st, back;
	lv_hosts(&st, path);
	assert_int_equal(define_lv(&st, "lv", "n2", XML_SMALL, false, 512), 0);
	assert_int_equal(define_lv(&st, "imp", "n2", NULL, true, 0), 0);
	gw_coord_state_init(&back, path);
	assert_int_equal(gw_coord_state_load(&back), 0);
	assert_string_equal(gw_coord_vm_find(&back, "lv")->xml, XML_SMALL);
	assert_true(gw_coord_vm_find(&back, "imp")->importing);
	assert_null(gw_coord_vm_find(&back, "imp")->xml);
	struct msg s = admin("lv", "stop"), d = admin("lv", "delete");
	apply(&back, &s);
	apply(&back, &d);
	assert_null(gw_coord_vm_find(&back, "lv"));
	assert_non_null(gw_coord_vm_find(&back, "imp"));
	gw_coord_state_free(&back);
	gw_coord_state_free(&st);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_define_and_snapshot),
	    cmocka_unit_test(test_xml_limit),
	    cmocka_unit_test(test_placement_by_driver),
	    cmocka_unit_test(test_balance_mixed_backends),
	    cmocka_unit_test(test_import),
	    cmocka_unit_test(test_durable_and_delete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
