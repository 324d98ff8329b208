/* test_process_sandbox.c -- cmocka tests of the process backend on this host: the sandbox's
 * set-up as the kernel reports it (seccomp, capabilities, namespaces, file descriptors,
 * mappings, ptrace), the dirty log against a shadow copy while guest code on several vCPUs
 * writes random pages and scans run, start-up latency and memory, and kicks that stop a
 * spinning guest. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_test_skip.h"
#include "process_int.h"
#include "vmm.h"
#include "vmm_internal.h"

#define MIB	   (1ull << 20)
#define PAGE	   4096ull
#define DIRTIER	   GW_GUEST_DIR "/dirtier.elf"
#define HELLO	   GW_GUEST_DIR "/hello.elf"
#define SCAN_CHUNK (1024ull) /* pages re-protected per dirty_clear, as the engine does */

struct fix {
	struct gw_vmm *vmm;
	char console[64];
	int fd;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static int vm_new(struct fix *f, const char *image, uint64_t mem, unsigned vcpus,
		  const char *cmdline)
{
	struct gw_vmm_config cfg = {.name = "sandbox",
				    .image_path = image,
				    .mem_bytes = mem,
				    .vcpus = vcpus,
				    .cmdline = cmdline,
				    .backend = "process"};
	char err[300] = "";
	int r;

	snprintf(f->console, sizeof(f->console), "/tmp/gw-test-sandbox-XXXXXX");
	f->fd = mkstemp(f->console);
	assert_true(f->fd >= 0);
	cfg.console_fd = f->fd;
	r = gw_vmm_create(&cfg, &f->vmm, err, sizeof(err));
	if (r)
		print_error("gw_vmm_create: %s\n", err);
	return r;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	f->fd = -1;
	*state = f;
	return f ? 0 : -1;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	gw_vmm_destroy(f->vmm);
	if (f->fd >= 0) {
		close(f->fd);
		unlink(f->console);
	}
	free(f);
	return 0;
}

/* The value of "Key:" in /proc/PID/status (as a string, trimmed). */
static void status_field(pid_t pid, const char *key, char *out, size_t n)
{
	char path[64], *data = NULL, *p;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	assert_int_equal(gw_file_read(path, 1 << 16, &data, &len), 0);
	p = strstr(data, key);
	assert_non_null(p);
	p += strlen(key);
	p += strspn(p, " \t");
	snprintf(out, n, "%.*s", (int)strcspn(p, "\n"), p);
	free(data);
}

static bool ns_differs(pid_t pid, const char *ns)
{
	char a[96], b[96], la[64] = "", lb[64] = "";

	snprintf(a, sizeof(a), "/proc/%d/ns/%s", pid, ns);
	snprintf(b, sizeof(b), "/proc/self/ns/%s", ns);
	assert_true(readlink(a, la, sizeof(la) - 1) > 0);
	assert_true(readlink(b, lb, sizeof(lb) - 1) > 0);
	return strcmp(la, lb) != 0;
}

/* What the kernel says of a running sandbox: seccomp filter on, no capabilities, no new
 * privileges, its own namespaces, one fd (the userfaultfd), nothing writable but guest RAM,
 * no vdso, its stack unreachable, every vCPU thread traced by this process. */
static void test_sandbox_setup(void **state)
{
	struct fix *f = *state;
	char v[128], path[96], link[128];
	unsigned fds = 0, writable = 0;
	uint64_t ram = 16 * MIB;

	assert_int_equal(vm_new(f, HELLO, ram, 2, "spin=1"), 0);
	assert_int_equal(gw_vmm_start(f->vmm), 0);
	pid_t pid = f->vmm->proc->pid;
	status_field(pid, "Seccomp:", v, sizeof(v));
	assert_string_equal(v, "2");
	status_field(pid, "Seccomp_filters:", v, sizeof(v));
	assert_string_equal(v, "1");
	status_field(pid, "NoNewPrivs:", v, sizeof(v));
	assert_string_equal(v, "1");
	static const char *const caps[] = {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"};
	static const char *const nss[] = {"pid", "net", "mnt", "ipc", "uts"};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		status_field(pid, caps[i], v, sizeof(v));
		assert_string_equal(v, "0000000000000000");
	}
	status_field(pid, "Threads:", v, sizeof(v));
	assert_int_equal(atoi(v), 3); /* the stopped leader + 2 vCPUs */
	for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++)
		assert_true(ns_differs(pid, nss[i]));
	for (int fd = 0; fd < 64; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		ssize_t n = readlink(path, link, sizeof(link) - 1);

		if (n < 0)
			continue;
		link[n] = 0;
		fds++;
		assert_string_equal(link, "anon_inode:[userfaultfd]");
	}
	assert_int_equal(fds, 1);
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	char *maps = NULL;
	size_t len;
	assert_int_equal(gw_file_read(path, 1 << 16, &maps, &len), 0);
	for (char *line = maps; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		unsigned long long lo, hi;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) != 3)
			continue;
		if (lo == 0) /* guest RAM: the whole of it, RWX, shared */
			assert_true(hi == ram && !strcmp(perms, "rwxs"));
		else if (perms[1] == 'w')
			writable++;
	}
	printf("# sandbox maps:\n%s", maps);
	assert_null(strstr(maps, "[vdso]"));
	assert_null(strstr(maps, "[vvar"));
	assert_int_equal(writable, 0);
	free(maps);
	for (unsigned i = 0; i < 2; i++) { /* vCPU threads seize theirs as they start */
		int tracer = 0;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid,
			 f->vmm->vcpus[i].proc->tid);
		for (int t = 0; t < 1000 && tracer <= 0; t++) {
			char *st = NULL, *tp;

			assert_int_equal(gw_file_read(path, 1 << 16, &st, &len), 0);
			tp = strstr(st, "TracerPid:");
			assert_non_null(tp);
			tracer = atoi(tp + 10);
			free(st);
			if (tracer <= 0)
				usleep(1000);
		}
		/* traced by one of this process's threads (that vCPU's VMM thread) */
		snprintf(path, sizeof(path), "/proc/self/task/%d", tracer);
		if (tracer <= 0 || access(path, F_OK) != 0)
			fail_msg("vcpu %u: traced by %d, not a thread of this process", i, tracer);
	}
}

/* Start-up: create + start -> first console byte, and memory beyond guest RAM (the stub's
 * RSS); printed for the README, bounded loosely (a loaded CI host). */
static void test_sandbox_startup(void **state)
{
	struct fix *f = *state;
	uint64_t t0 = gw_now_mono_ns(), t1 = 0;
	char v[64];
	struct stat sb;

	assert_int_equal(vm_new(f, HELLO, 16 * MIB, 1, "spin=1"), 0);
	assert_int_equal(gw_vmm_start(f->vmm), 0);
	for (int i = 0; i < 5000 && !t1; i++) {
		gw_vmm_console_flush(f->vmm);
		if (fstat(f->fd, &sb) == 0 && sb.st_size > 0)
			t1 = gw_now_mono_ns();
		else
			usleep(100);
	}
	assert_true(t1 > 0);
	status_field(f->vmm->proc->pid, "VmRSS:", v, sizeof(v));
	printf("# create+start -> first console byte: %.1f ms; sandbox set-up %.1f ms; "
	       "stub RSS %s (guest RAM pages it touched included)\n",
	       (double)(t1 - t0) / 1e6, (double)f->vmm->proc->setup_ns / 1e6, v);
	assert_true(t1 - t0 < 1000000000ull);
}

/* A guest spinning with no exits at all stops within a second when asked. */
static void test_sandbox_stop_spinner(void **state)
{
	struct fix *f = *state;
	uint64_t t0;

	assert_int_equal(vm_new(f, GW_GUEST_DIR "/faulter.elf", 16 * MIB, 2, "mode=spin"), 0);
	assert_int_equal(gw_vmm_start(f->vmm), 0);
	sleep_ms(200);
	t0 = gw_now_mono_ns();
	assert_int_equal(gw_vmm_pause(f->vmm), 0);
	assert_int_equal(gw_vmm_resume(f->vmm), 0);
	assert_int_equal(gw_vmm_stop(f->vmm, "test"), 0);
	printf("# pause + resume + stop of 2 spinning vCPUs: %.1f ms\n",
	       (double)(gw_now_mono_ns() - t0) / 1e6);
	assert_true(gw_now_mono_ns() - t0 < 1000000000ull);
	assert_int_equal(gw_vmm_get_state(f->vmm, NULL, NULL, 0), GW_VMM_STOPPED);
}

/* Copy the pages set in bm (whole RAM) from ram to shadow, re-protecting them chunk by chunk
 * just before, as the migration engine does; clears bm. */
static void copy_dirty(struct gw_vmm *vmm, uint64_t *bm, size_t words, uint8_t *shadow,
		       const uint8_t *ram, uint64_t npages)
{
	for (uint64_t first = 0; first < npages; first += SCAN_CHUNK) {
		uint64_t n = npages - first < SCAN_CHUNK ? npages - first : SCAN_CHUNK;

		usleep(500); /* the engine sends other chunks meanwhile: guests write on */
		assert_int_equal(gw_vmm_dirty_clear(vmm, first, n, bm + first / 64), 0);
		for (uint64_t p = first; p < first + n; p++)
			if (bm[p / 64] & (1ull << (p % 64)))
				memcpy(shadow + p * PAGE, ram + p * PAGE, PAGE);
	}
	memset(bm, 0, words * 8);
}

/* The dirty log against a shadow copy: 3 vCPUs write random pages (20000/s each) while
 * rounds of sync + re-protect + copy run; after a final round with the VM paused the shadow
 * equals RAM, so no written page was ever missed (a re-protect that loses a write made
 * between sync and re-protect fails this). */
static void test_sandbox_dirty_shadow(void **state)
{
	struct fix *f = *state;
	uint64_t ram_size = 64 * MIB, npages = ram_size / PAGE, total = 0;
	size_t words;
	uint8_t *ram, *shadow;
	uint64_t *bm;

	assert_int_equal(
	    vm_new(f, DIRTIER, ram_size, 3, "vcpus=3 rate=20000 pattern=random mem=16 report=0"),
	    0);
	assert_string_equal(gw_vmm_dirty_mode(f->vmm), "uffd-wp");
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, (uint64_t[1]){0}), -EINVAL); /* not on */
	assert_int_equal(gw_vmm_start(f->vmm), 0);
	sleep_ms(100);
	words = gw_vmm_dirty_words(f->vmm);
	bm = calloc(words, 8);
	shadow = malloc(ram_size);
	assert_non_null(bm);
	assert_non_null(shadow);
	ram = gw_vmm_ram(f->vmm, NULL);
	assert_int_equal(gw_vmm_dirty_start(f->vmm), 0);
	assert_int_equal(gw_vmm_dirty_start(f->vmm), -EBUSY);
	memcpy(shadow, ram, ram_size); /* anything written from here on is reported */
	for (int round = 0; round < 40; round++) {
		long n = gw_vmm_dirty_sync(f->vmm, bm);

		assert_true(n >= 0);
		total += (uint64_t)n;
		copy_dirty(f->vmm, bm, words, shadow, ram, npages);
		sleep_ms(5);
	}
	assert_int_equal(gw_vmm_pause(f->vmm), 0);
	long n = gw_vmm_dirty_sync(f->vmm, bm);
	assert_true(n >= 0);
	copy_dirty(f->vmm, bm, words, shadow, ram, npages);
	printf("# %llu dirty pages reported over 41 rounds\n", (unsigned long long)(total + n));
	assert_true(total > 1000);
	for (uint64_t p = 0; p < npages; p++)
		if (memcmp(shadow + p * PAGE, ram + p * PAGE, PAGE))
			fail_msg("page %llu written but never reported", (unsigned long long)p);
	/* paused: nothing is written, nothing is reported */
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, bm), 0);
	assert_int_equal(gw_vmm_dirty_stop(f->vmm), 0);
	free(bm);
	free(shadow);
}

/* Writes the VMM makes to guest RAM for the guest (rep insb) are in the dirty log too, though
 * they bypass the sandbox's write protection. */
static void test_sandbox_dirty_ins(void **state)
{
	struct fix *f = *state;
	uint64_t *bm, buf = 0, len = 0;
	char *con = NULL, *p;
	size_t clen;
	assert_int_equal(vm_new(f, GW_GUEST_DIR "/faulter.elf", 16 * MIB, 1, "mode=ins delay=300"),
			 0);
	assert_int_equal(gw_vmm_start(f->vmm), 0);
	for (int t = 0; t < 200 && !buf; t++) {
		gw_vmm_console_flush(f->vmm);
		free(con);
		con = NULL;
		assert_int_equal(gw_file_read(f->console, 1 << 16, &con, &clen), 0);
		if ((p = strstr(con, "buf=0x")))
			sscanf(p, "buf=0x%llx len=%llu", (unsigned long long *)&buf,
			       (unsigned long long *)&len);
		else
			sleep_ms(5);
	}
	assert_true(buf && len == 2 * PAGE);
	assert_int_equal(gw_vmm_dirty_start(f->vmm), 0); /* the guest is in its 300 ms wait */
	for (int t = 0; t < 300 && !strstr(con, "faulter ins done"); t++) {
		sleep_ms(10);
		gw_vmm_console_flush(f->vmm);
		free(con);
		assert_int_equal(gw_file_read(f->console, 1 << 16, &con, &clen), 0);
	}
	assert_non_null(strstr(con, "faulter ins done: ok"));
	free(con);
	assert_int_equal(gw_vmm_pause(f->vmm), 0);
	bm = calloc(gw_vmm_dirty_words(f->vmm), 8);
	assert_true(gw_vmm_dirty_sync(f->vmm, bm) >= 2);
	for (uint64_t pg = buf / PAGE; pg < (buf + len) / PAGE; pg++)
		if (!(bm[pg / 64] & (1ull << (pg % 64))))
			fail_msg("page %llu written by rep insb is not in the dirty log",
				 (unsigned long long)pg);
	free(bm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sandbox_setup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sandbox_startup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sandbox_stop_spinner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sandbox_dirty_shadow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sandbox_dirty_ins, setup, teardown),
	};
	char why[512];

	if (gw_vmm_probe_backend("process", NULL, why, sizeof(why)))
		return gw_test_skip("test_process_sandbox", "%s", why);
	gw_log_set_level(GW_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
