/* test_vmtable.c -- VM records: name rules, add/find/remove, durable reload, corrupt files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_fsutil.h"
#include "vmtable.h"

static char tmpdir[64];

static int setup_tmp(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gw-test-vmtable-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	return gw_rm_rf(tmpdir);
}

static void test_name_rules(void **state)
{
	char longname[80];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_false(gw_vm_name_valid(""));
	assert_false(gw_vm_name_valid(".hidden"));
	assert_false(gw_vm_name_valid("-opt"));
	assert_false(gw_vm_name_valid("a/b"));
	assert_false(gw_vm_name_valid("a b"));
	assert_false(gw_vm_name_valid(longname));
	longname[63] = 0;
	assert_true(gw_vm_name_valid(longname));
	assert_true(gw_vm_name_valid("web-1.prod_x"));
}

/* Invalid records are refused; duplicates are -EEXIST. */
static void test_add_invalid(void **state)
{
	struct gw_vmtable t;
	struct gw_vm *vm;
	assert_int_equal(gw_vmtable_open(&t, tmpdir), 0);
	assert_int_equal(gw_vmtable_add(&t, "bad/name", "/img", 64, 1, NULL, &vm), -EINVAL);
	assert_int_equal(gw_vmtable_add(&t, "ok", "/img", 0, 1, NULL, &vm), -EINVAL);
	assert_int_equal(gw_vmtable_add(&t, "ok", "/img", 64, 0, NULL, &vm), -EINVAL);
	assert_int_equal(gw_vmtable_add(&t, "ok", "/img", 64, 2, "x=1", &vm), 0);
	assert_int_equal(gw_vmtable_add(&t, "ok", "/img", 64, 2, NULL, &vm), -EEXIST);
	gw_vmtable_close(&t);
}

/* What is saved comes back identical after a reopen (agent restart). */
static void test_persist_reload(void **state)
{
	struct gw_vmtable t;
	struct gw_vm *vm;
	assert_int_equal(gw_vmtable_open(&t, tmpdir), 0);
	assert_int_equal(gw_vmtable_add(&t, "a", "/images/a.elf", 128, 4, "rate=5", &vm), 0);
	vm->state = GW_VM_CRASHED;
	snprintf(vm->reason, sizeof(vm->reason), "vcpu 0: triple fault");
	vm->has_exit_status = 1;
	vm->exit_status = 7;
	assert_int_equal(gw_vmtable_save(&t, vm), 0);
	assert_int_equal(gw_vmtable_add(&t, "b", "/images/b.bin", 64, 1, NULL, &vm), 0);
	gw_vmtable_close(&t);

	assert_int_equal(gw_vmtable_open(&t, tmpdir), 0);
	assert_int_equal(t.count, 2);
	vm = gw_vmtable_find(&t, "a");
	assert_non_null(vm);
	assert_string_equal(vm->image, "/images/a.elf");
	assert_int_equal(vm->memory_mib, 128);
	assert_int_equal(vm->vcpus, 4);
	assert_string_equal(vm->cmdline, "rate=5");
	assert_int_equal(vm->state, GW_VM_CRASHED);
	assert_string_equal(vm->reason, "vcpu 0: triple fault");
	assert_int_equal(vm->exit_status, 7);
	assert_int_equal(vm->vmm_fd, -1);
	vm = gw_vmtable_find(&t, "b");
	assert_non_null(vm);
	assert_null(vm->cmdline);
	assert_int_equal(vm->state, GW_VM_DEFINED);
	assert_int_equal(gw_vmtable_remove(&t, vm), 0);
	assert_null(gw_vmtable_find(&t, "b"));
	gw_vmtable_close(&t);

	assert_int_equal(gw_vmtable_open(&t, tmpdir), 0);
	assert_int_equal(t.count, 1);
	gw_vmtable_close(&t);
}

/* A corrupt or truncated record is skipped, never fatal, and others still load. */
static void test_corrupt_record_skipped(void **state)
{
	struct gw_vmtable t;
	struct gw_vm *vm;
	char path[256];
	assert_int_equal(gw_vmtable_open(&t, tmpdir), 0);
	assert_int_equal(gw_vmtable_add(&t, "good", "/i", 64, 1, NULL, &vm), 0);
	assert_int_equal(gw_vmtable_add(&t, "bad", "/i", 64, 1, NULL, &vm), 0);
	gw_vmtable_close(&t);
	snprintf(path, sizeof(path), "%s/vms/bad/vm.pb", tmpdir);
	assert_int_equal(gw_file_write_atomic(path, "\xff\xff\xff", 3, 0600), 0);
	snprintf(path, sizeof(path), "%s/vms/empty", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(gw_vmtable_open(&t, tmpdir), 0);
	assert_int_equal(t.count, 1);
	assert_non_null(gw_vmtable_find(&t, "good"));
	gw_vmtable_close(&t);
}

static void test_state_names(void **state)
{
	enum gw_vm_state s;
	assert_int_equal(gw_vm_state_parse("bogus", &s), -EINVAL);
	const char *names[] = {"defined", "running", "paused", "stopped", "crashed", "migrating"};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(gw_vm_state_parse(names[i], &s), 0);
		assert_string_equal(gw_vm_state_name(s), names[i]);
	}
	assert_true(gw_vm_state_active(GW_VM_PAUSED));
	assert_false(gw_vm_state_active(GW_VM_CRASHED));
}

/* Found by fuzz_control: a state file with a pid <= 0 gave the VM that pid (to_info then
 * dropped it, so the record did not round-trip); a VM's pid is now > 0 or 0 (none). */
static void test_info_pid_not_positive(void **state)
{
	static const int32_t pids[] = {-1, -4242, 0};
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
		GwVmInfo info = GW_VM_INFO__INIT;
		struct gw_vm vm = {.vmm_fd = -1}, back = {.vmm_fd = -1};
		GwVmInfo again;
		info.name = "vm1", info.state = "running", info.image = "/img";
		info.memory_mib = 64, info.vcpus = 1, info.has_pid = 1, info.pid = pids[i];
		assert_int_equal(gw_vm_from_info(&vm, &info), 0);
		assert_int_equal(vm.pid, 0);
		gw_vm_to_info(&vm, "n1", &again);
		assert_int_equal(gw_vm_from_info(&back, &again), 0);
		assert_int_equal(back.pid, vm.pid);
		gw_vm_clear(&vm);
		gw_vm_clear(&back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_rules),
	    cmocka_unit_test_setup_teardown(test_add_invalid, setup_tmp, teardown_tmp),
	    cmocka_unit_test_setup_teardown(test_persist_reload, setup_tmp, teardown_tmp),
	    cmocka_unit_test_setup_teardown(test_corrupt_record_skipped, setup_tmp, teardown_tmp),
	    cmocka_unit_test(test_state_names),
	    cmocka_unit_test(test_info_pid_not_positive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
