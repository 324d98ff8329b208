/* test_vmm_state.c -- cmocka tests of vCPU/VM state save+restore (a local migration, bit-exact:
 * the hashchain result), blob checks, the stopped-vCPU flag, the guest TSC, and the vCPU
 * throttle; on each VM backend: process always, kvm where /dev/kvm is usable (else that half
 * says SKIPPED with the reason). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_test_skip.h"
#include "vmm.h"
#include "process_int.h"
#include "vmm_internal.h"

#define MIB	       (1ull << 20)
#define RAM	       (64 * MIB)
#define HASHCHAIN      GW_GUEST_DIR "/hashchain.elf"
#define HASHCHAIN_ARGS "mem=4 rounds=300 vcpus=2"
#define MAX_VMS	       4

static const char *backend; /* the VM backend this run of the group tests */

static bool on_kvm(void)
{
	return !strcmp(backend, "kvm");
}

struct vm {
	struct gw_vmm *vmm;
	char console[64];
	int fd;
};

struct fixture {
	struct vm vms[MAX_VMS];
	uint8_t *blob[2];
	size_t blob_len[2];
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static int vm_create(struct vm *v, const char *name, const char *image, unsigned vcpus,
		     const char *cmdline, bool incoming)
{
	struct gw_vmm_config cfg = {
	    .name = name,
	    .image_path = image,
	    .mem_bytes = RAM,
	    .vcpus = vcpus,
	    .cmdline = cmdline,
	    .incoming = incoming,
	    .backend = backend,
	};
	char err[256] = "";
	int r;

	snprintf(v->console, sizeof(v->console), "/tmp/gw-test-state-XXXXXX");
	v->fd = mkstemp(v->console);
	assert_true(v->fd >= 0);
	cfg.console_fd = v->fd;
	r = gw_vmm_create(&cfg, &v->vmm, err, sizeof(err));
	if (r)
		print_error("gw_vmm_create %s: %s\n", name, err);
	return r;
}

static void vm_free(struct vm *v)
{
	gw_vmm_destroy(v->vmm);
	v->vmm = NULL;
	if (v->fd >= 0) {
		close(v->fd);
		unlink(v->console);
	}
	v->fd = -1;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	for (int i = 0; i < MAX_VMS; i++)
		f->vms[i].fd = -1;
	for (int i = 0; i < 2; i++) {
		f->blob[i] = malloc(GW_VMM_VCPU_STATE_MAX);
		if (!f->blob[i])
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < MAX_VMS; i++)
		vm_free(&f->vms[i]);
	free(f->blob[0]);
	free(f->blob[1]);
	free(f);
	return 0;
}

/* The console so far (NUL-terminated, caller frees). */
static char *console(struct vm *v)
{
	char *data = NULL;
	size_t len = 0;

	gw_vmm_console_flush(v->vmm);
	if (gw_file_read(v->console, 1 << 20, &data, &len))
		return strdup("");
	return data;
}

/* Wait until the console holds needle (true) or ms pass (false). */
static bool wait_console(struct vm *v, const char *needle, unsigned ms)
{
	for (unsigned t = 0; t <= ms; t += 5) {
		char *c = console(v);
		bool found = strstr(c, needle) != NULL;

		free(c);
		if (found)
			return true;
		sleep_ms(5);
	}
	return false;
}

/* Wait for STOPPED or CRASHED; returns the state. */
static enum gw_vmm_state wait_end(struct vm *v, unsigned ms, int *status)
{
	enum gw_vmm_state s = GW_VMM_RUNNING;

	for (unsigned t = 0; t <= ms; t += 10) {
		s = gw_vmm_get_state(v->vmm, status, NULL, 0);
		if (s == GW_VMM_STOPPED || s == GW_VMM_CRASHED)
			break;
		sleep_ms(10);
	}
	return s;
}

/* "hashchain result=<hex>" of a finished run, copied into out. */
static void result_of(struct vm *v, char *out, size_t n)
{
	char *c = console(v), *p = strstr(c, "hashchain result=");

	assert_non_null(p);
	snprintf(out, n, "%.*s", (int)strcspn(p, "\n"), p);
	free(c);
}

static uint64_t vcpu_tsc(struct gw_vmm *vmm, unsigned idx)
{
	if (!on_kvm()) /* the process backend's guest reads the host TSC natively */
		return __builtin_ia32_rdtsc();
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e.index = 0x10;
	assert_int_equal(ioctl(vmm->vcpus[idx].fd, KVM_GET_MSRS, &m), 1);
	return m.e.data;
}

/* Pause src, save VM and vCPUs, build an incoming dst with src's RAM and state. */
static void migrate_local(struct fixture *f, struct vm *src, struct vm *dst, const char *name)
{
	uint8_t vmblob[GW_VMM_VM_STATE_MAX];
	unsigned n = gw_vmm_vcpu_count(src->vmm);
	uint64_t size_a, size_b, tsc_before;
	size_t vmlen;

	assert_int_equal(gw_vmm_pause(src->vmm), 0);
	tsc_before = vcpu_tsc(src->vmm, 0);
	assert_int_equal(gw_vmm_vm_save(src->vmm, vmblob, sizeof(vmblob), &vmlen), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(gw_vmm_vcpu_save(src->vmm, i, f->blob[i], GW_VMM_VCPU_STATE_MAX,
						  &f->blob_len[i]),
				 0);
	sleep_ms(300); /* "downtime": must not show in the guest TSC */
	assert_int_equal(vm_create(dst, name, NULL, n, NULL, true), 0);
	assert_int_equal(gw_vmm_vm_restore(dst->vmm, vmblob, vmlen), 0);
	uint8_t *ram_a = gw_vmm_ram(src->vmm, &size_a), *ram_b = gw_vmm_ram(dst->vmm, &size_b);
	assert_int_equal(size_a, size_b);
	memcpy(ram_b, ram_a, size_a);
	assert_int_equal(gw_vmm_start(dst->vmm), -EINVAL); /* not restored yet */
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(gw_vmm_vcpu_restore(dst->vmm, i, f->blob[i], f->blob_len[i]), 0);
	/* The guest TSC never goes back. Where KVM can offset it, it continues from the saved
	 * value (downtime not added); on a PVM host the guest reads the host TSC natively and
	 * KVM's IA32_TSC is the host TSC whatever is written, so there it includes the pause. */
	uint64_t tsc_after = vcpu_tsc(dst->vmm, 0), khz = src->vmm->tsc_khz;
	uint64_t host = __builtin_ia32_rdtsc();
	bool follows_host = tsc_after > host - 100 * khz && tsc_after < host + 100 * khz;

	printf("# %s: vCPU blob %zu bytes, guest TSC +%.1f ms across a 300 ms downtime%s\n", name,
	       f->blob_len[0], (double)(tsc_after - tsc_before) / (double)khz,
	       follows_host ? " (guest TSC = host TSC on this host: not settable)" : "");
	assert_true(tsc_after >= tsc_before);
	if (!follows_host)
		assert_true(tsc_after - tsc_before < 150 * khz);
}

/* A hashchain run paused mid-way, moved to an incoming VM, ends with the undisturbed result. */
static void test_state_local_migration(void **state)
{
	struct fixture *f = *state;
	struct vm *c = &f->vms[0], *a = &f->vms[1], *b = &f->vms[2];
	char ref[64], got[64];
	int status = -1;
	char *ca;

	/* reference: undisturbed run */
	assert_int_equal(vm_create(c, "ref", HASHCHAIN, 2, HASHCHAIN_ARGS, false), 0);
	assert_int_equal(gw_vmm_start(c->vmm), 0);
	assert_int_equal(wait_end(c, 15000, &status), GW_VMM_STOPPED);
	assert_int_equal(status, 0);
	result_of(c, ref, sizeof(ref));
	vm_free(c);

	/* A: paused after its first progress line */
	assert_int_equal(vm_create(a, "src", HASHCHAIN, 2, HASHCHAIN_ARGS, false), 0);
	assert_int_equal(gw_vmm_start(a->vmm), 0);
	assert_true(wait_console(a, "hashchain vcpu=0 round=", 10000));
	migrate_local(f, a, b, "dst");
	ca = console(a);
	assert_null(strstr(ca, "result=")); /* A really was stopped mid-run */
	free(ca);
	gw_vmm_stop(a->vmm, "migrated");
	vm_free(a);

	assert_int_equal(gw_vmm_start(b->vmm), 0);
	assert_int_equal(wait_end(b, 15000, &status), GW_VMM_STOPPED);
	assert_int_equal(status, 0);
	result_of(b, got, sizeof(got));
	printf("# reference %s, migrated %s\n", ref, got);
	assert_string_equal(got, ref);
}

/* A vCPU that stopped itself stays stopped on the destination; the other finishes its
 * TSC-timed delay there and ends the VM with its status. */
static void test_state_stopped_vcpu(void **state)
{
	struct fixture *f = *state;
	struct vm *a = &f->vms[0], *b = &f->vms[1];
	int status = -1;
	bool stopped1 = false;
	char *cb;

	assert_int_equal(vm_create(a, "src-stop", GW_GUEST_DIR "/faulter.elf", 2,
				   "mode=exit:7 delay=1500", false),
			 0);
	assert_int_equal(gw_vmm_start(a->vmm), 0);
	assert_true(wait_console(a, "faulter mode=exit:7", 5000));
	for (int t = 0; t < 500 && !stopped1; t++) {
		pthread_mutex_lock(&a->vmm->lock);
		stopped1 = a->vmm->vcpus[1].stopped;
		pthread_mutex_unlock(&a->vmm->lock);
		if (!stopped1)
			sleep_ms(2);
	}
	assert_true(stopped1);
	migrate_local(f, a, b, "dst-stop");
	assert_true(b->vmm->vcpus[1].stopped);
	assert_false(b->vmm->vcpus[0].stopped);
	assert_int_equal(b->vmm->nr_stopped, 1);
	gw_vmm_stop(a->vmm, "migrated");
	vm_free(a);
	assert_int_equal(gw_vmm_start(b->vmm), 0);
	assert_false(b->vmm->vcpus[1].thread_started);
	assert_int_equal(wait_end(b, 10000, &status), GW_VMM_STOPPED);
	assert_int_equal(status, 7);
	cb = console(b);
	assert_null(strstr(cb, "error"));
	free(cb);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Corrupt, truncated and mismatched blobs are refused and change nothing. */
static void test_state_bad_blobs(void **state)
{
	struct fixture *f = *state;
	struct vm *a = &f->vms[0], *b = &f->vms[1], *b2 = &f->vms[2];
	uint8_t *good = f->blob[0], *bad = f->blob[1];
	uint8_t vmblob[GW_VMM_VM_STATE_MAX];
	size_t len, vmlen, need = 0;

	assert_int_equal(vm_create(a, "bad-src", GW_GUEST_DIR "/hello.elf", 1, "spin=1", false), 0);
	assert_int_equal(gw_vmm_vcpu_save(a->vmm, 0, good, GW_VMM_VCPU_STATE_MAX, &len), -EINVAL);
	assert_int_equal(gw_vmm_start(a->vmm), 0);
	assert_int_equal(gw_vmm_vcpu_save(a->vmm, 0, good, GW_VMM_VCPU_STATE_MAX, &len), -EINVAL);
	assert_int_equal(gw_vmm_pause(a->vmm), 0);
	assert_int_equal(gw_vmm_vcpu_save(a->vmm, 1, good, GW_VMM_VCPU_STATE_MAX, &len), -EINVAL);
	assert_int_equal(gw_vmm_vcpu_save(a->vmm, 0, good, 100, &need), -ENOSPC);
	assert_int_equal(gw_vmm_vcpu_save(a->vmm, 0, good, GW_VMM_VCPU_STATE_MAX, &len), 0);
	assert_int_equal(need, len);
	assert_int_equal(gw_vmm_vm_save(a->vmm, vmblob, sizeof(vmblob), &vmlen), 0);
	/* restore into a running (non-CREATED) VM */
	assert_int_equal(gw_vmm_vcpu_restore(a->vmm, 0, good, len), -EINVAL);

	assert_int_equal(vm_create(b, "bad-dst", NULL, 1, NULL, true), 0);
	assert_int_equal(vm_create(b2, "bad-dst2", NULL, 2, NULL, true), 0);
	/* truncated */
	size_t cuts[] = {0, 1, 23, 24, 31, len / 2, len - 8, len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, good, cuts[i]), -EINVAL);
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, NULL, len), -EINVAL);
	/* oversized: trailing bytes past the body */
	memcpy(bad, good, len);
	memset(bad + len, 0, 8);
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, bad, len + 8), -EINVAL);
	/* bad magic */
	memcpy(bad, good, len);
	bad[0] ^= 1;
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, bad, len), -EINVAL);
	/* bad version */
	memcpy(bad, good, len);
	bad[4] = 2;
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, bad, len), -EINVAL);
	/* first section's length past the end */
	memcpy(bad, good, len);
	put32(bad + 24 + 4, 0x7fffffff);
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, bad, len), -EINVAL);
	/* first section's length off by 8 (framing still inside the blob) */
	memcpy(bad, good, len);
	put32(bad + 24 + 4, *(uint32_t *)(void *)(good + 24 + 4) - 8);
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, bad, len), -EINVAL);
	/* unknown section type */
	memcpy(bad, good, len);
	bad[24] = 200;
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, bad, len), -EINVAL);
	/* wrong vCPU count (a 2-vCPU VM) and wrong index */
	assert_int_equal(gw_vmm_vcpu_restore(b2->vmm, 0, good, len), -EINVAL);
	assert_int_equal(gw_vmm_vcpu_restore(b2->vmm, 1, good, len), -EINVAL);
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 1, good, len), -EINVAL);
	memcpy(bad, good, len);
	put32(bad + 12, 2);
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, bad, len), -EINVAL);
	/* nothing was applied: the VM still refuses to start */
	assert_false(b->vmm->vcpus[0].restored);
	assert_int_equal(gw_vmm_start(b->vmm), -EINVAL);
	/* VM blob: shape checked */
	assert_int_equal(gw_vmm_vm_restore(b2->vmm, vmblob, vmlen), -EINVAL);
	assert_int_equal(gw_vmm_vm_restore(b->vmm, vmblob, vmlen - 1), -EINVAL);
	assert_int_equal(gw_vmm_vm_restore(b->vmm, good, len), -EINVAL);
	assert_int_equal(gw_vmm_vm_restore(b->vmm, vmblob, vmlen), 0);
	/* the intact blob works, then the VM runs (hello keeps spinning, printing ticks) */
	assert_int_equal(gw_vmm_vcpu_restore(b->vmm, 0, good, len), 0);
	memcpy(gw_vmm_ram(b->vmm, NULL), gw_vmm_ram(a->vmm, NULL), RAM);
	assert_int_equal(gw_vmm_start(b->vmm), 0);
	assert_true(wait_console(b, "tick ", 3000));
	assert_int_equal(gw_vmm_get_state(b->vmm, NULL, NULL, 0), GW_VMM_RUNNING);
}

/* "dirtier vcpu=0 t=<t> dirtied=<n>": n for the given t, waiting for it. */
static uint64_t dirtied_at(struct vm *v, unsigned t)
{
	char needle[48];
	uint64_t n = 0;
	char *c, *p;

	snprintf(needle, sizeof(needle), "dirtier vcpu=0 t=%u dirtied=", t);
	assert_true(wait_console(v, needle, 5000));
	for (int i = 0; i < 100; i++) { /* the file may hold half a line: wait for its end */
		char *end;

		c = console(v);
		p = strstr(c, needle);
		n = strtoull(p + strlen(needle), &end, 10);
		free(c);
		if (*end == '\n')
			return n;
		sleep_ms(5);
	}
	fail_msg("no complete line \"%s...\"", needle);
	return 0;
}

static double vcpu_cpu_s(struct gw_vmm *vmm)
{
	clockid_t cid;
	struct timespec ts;

	if (!on_kvm()) { /* guest code runs in the sandbox's thread: its schedstat run time */
		char path[96], *data = NULL;
		size_t len = 0;
		double ns;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", vmm->proc->pid,
			 vmm->vcpus[0].proc->tid);
		assert_int_equal(gw_file_read(path, 4096, &data, &len), 0);
		ns = strtod(data, NULL);
		free(data);
		return ns / 1e9;
	}
	assert_int_equal(pthread_getcpuclockid(vmm->vcpus[0].thread, &cid), 0);
	assert_int_equal(clock_gettime(cid, &ts), 0);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Throttle 50 % keeps the vCPU thread off the CPU about half the time (its CPU time over
 * wall time; other load on the host can only lower it, so the check holds on a busy
 * machine); the guest's progress drops too; pause/resume still work. */
static void test_state_throttle(void **state)
{
	struct fixture *f = *state;
	struct vm *v = &f->vms[0];
	uint64_t x[7], full, slow;

	assert_int_equal(vm_create(v, "throttle", GW_GUEST_DIR "/dirtier.elf", 1,
				   "rate=0 mem=8 report=1", false),
			 0);
	assert_int_equal(gw_vmm_get_throttle(v->vmm), 0);
	assert_int_equal(gw_vmm_set_throttle(v->vmm, 100), -EINVAL);
	assert_int_equal(gw_vmm_start(v->vmm), 0);
	x[1] = dirtied_at(v, 1);
	x[2] = dirtied_at(v, 2);
	assert_int_equal(gw_vmm_set_throttle(v->vmm, 50), 0);
	assert_int_equal(gw_vmm_get_throttle(v->vmm), 50);
	x[3] = dirtied_at(v, 3);
	double c0 = vcpu_cpu_s(v->vmm), w0 = (double)gw_now_mono_ns() / 1e9;
	sleep_ms(1000);
	double cpu_share = (vcpu_cpu_s(v->vmm) - c0) / ((double)gw_now_mono_ns() / 1e9 - w0);
	/* pause and resume while throttled */
	assert_int_equal(gw_vmm_pause(v->vmm), 0);
	assert_int_equal(gw_vmm_resume(v->vmm), 0);
	x[4] = dirtied_at(v, 4);
	assert_int_equal(gw_vmm_set_throttle(v->vmm, 0), 0);
	x[5] = dirtied_at(v, 5);
	x[6] = dirtied_at(v, 6);
	full = (x[2] - x[1] + x[6] - x[5]) / 2;
	slow = x[4] - x[3];
	printf("# dirtier writes/s: %llu, %llu unthrottled, %llu at throttle 50%% (%.0f %%)\n",
	       (unsigned long long)(x[2] - x[1]), (unsigned long long)(x[6] - x[5]),
	       (unsigned long long)slow, 100.0 * (double)slow / (double)full);
	printf("# vCPU thread on the CPU %.0f %% of the time at throttle 50%%\n", cpu_share * 100);
	assert_true(slow > 0);
	assert_true(slow < full);
	assert_true(cpu_share < 0.65);
	assert_int_equal(gw_vmm_get_state(v->vmm, NULL, NULL, 0), GW_VMM_RUNNING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_state_bad_blobs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_local_migration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_stopped_vcpu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_throttle, setup, teardown),
	};

	char why[512];
	int r;

	gw_log_set_level(GW_LOG_WARN);
	if (gw_vmm_probe_backend("process", NULL, why, sizeof(why)))
		return gw_test_skip("test_vmm_state", "%s", why);
	backend = "process";
	printf("# backend: process\n");
	r = cmocka_run_group_tests_name("process", tests, NULL, NULL);
	if (gw_vmm_probe_backend("kvm", NULL, why, sizeof(why))) {
		gw_test_skip("test_vmm_state (kvm half)", "%s", why);
		return r;
	}
	backend = "kvm";
	printf("# backend: kvm\n");
	return r | cmocka_run_group_tests_name("kvm", tests, NULL, NULL);
}
