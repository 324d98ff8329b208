/* test_vmm_dirty.c -- cmocka tests of dirty-page tracking on the real /dev/kvm: bitmap and ring. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_log.h"
#include "gw_test_skip.h"
#include "vmm.h"
#include "vmm_internal.h"

#define MIB		(1ull << 20)
#define PAGE		4096ull
#define RAM		(64 * MIB)
#define NPAGES		(RAM / PAGE)
#define RING_ENTRIES	512 /* small on purpose: the 8 MiB dirtier fills it (ring-full exits) */
#define DIRTIER		GW_GUEST_DIR "/dirtier.elf"
#define DIRTIER_CMDLINE "rate=0 mem=8 seconds=0"

struct fixture {
	struct gw_vmm *vmm;
	char console[64];
	int console_fd;
	uint64_t *bm;
	uint64_t *bm2;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static long popcount(const uint64_t *bm, size_t words)
{
	long n = 0;

	for (size_t i = 0; i < words; i++)
		n += __builtin_popcountll(bm[i]);
	return n;
}

/* Create a dirtier VM (not started); ring_entries 0 = bitmap mode. -ENOTSUP passes through. */
static int vm_make(struct fixture *f, unsigned ring_entries)
{
	struct gw_vmm_config cfg = {
	    .name = ring_entries ? "dirty-ring" : "dirty-bitmap",
	    .image_path = DIRTIER,
	    .mem_bytes = RAM,
	    .vcpus = 1,
	    .cmdline = DIRTIER_CMDLINE,
	    .dirty_ring_entries = ring_entries,
	};
	char err[256] = "";
	int r;

	snprintf(f->console, sizeof(f->console), "/tmp/gw-test-dirty-XXXXXX");
	f->console_fd = mkstemp(f->console);
	assert_true(f->console_fd >= 0);
	cfg.console_fd = f->console_fd;
	r = gw_vmm_create(&cfg, &f->vmm, err, sizeof(err));
	if (r)
		printf("# gw_vmm_create: %s\n", err);
	return r;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->console_fd = -1;
	f->bm = calloc(NPAGES / 64, sizeof(uint64_t));
	f->bm2 = calloc(NPAGES / 64, sizeof(uint64_t));
	*state = f;
	return f->bm && f->bm2 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gw_vmm_destroy(f->vmm);
	if (f->console_fd >= 0) {
		close(f->console_fd);
		unlink(f->console);
	}
	free(f->bm);
	free(f->bm2);
	free(f);
	return 0;
}

/* Invalid uses: sync/clear/stop while off, bad ranges, double start. */
static void test_dirty_invalid(void **state)
{
	struct fixture *f = *state;
	uint64_t w = ~0ull;

	assert_int_equal(vm_make(f, 0), 0);
	assert_int_equal(gw_vmm_dirty_words(f->vmm), NPAGES / 64);
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, f->bm), -EINVAL);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, 0, 64, &w), -EINVAL);
	assert_int_equal(gw_vmm_dirty_stop(f->vmm), -EINVAL);
	assert_int_equal(gw_vmm_dirty_start(f->vmm), 0);
	assert_int_equal(gw_vmm_dirty_start(f->vmm), -EBUSY);
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, NULL), -EINVAL);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, 1, 64, &w), -EINVAL);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, 63, 1, &w), -EINVAL);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, NPAGES - 64, 65, &w), -EINVAL);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, NPAGES + 64, 1, &w), -EINVAL);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, 0, 64, NULL), -EINVAL);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, NPAGES - 64, 64, &w), 0);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, NPAGES, 0, NULL), 0);
	/* nothing ran: nothing dirty (INITIALLY_SET must not leak out of dirty_start) */
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, f->bm), 0);
	assert_int_equal(gw_vmm_dirty_stop(f->vmm), 0);
	assert_int_equal(gw_vmm_dirty_stop(f->vmm), -EINVAL);
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, f->bm), -EINVAL);
	assert_int_equal(gw_vmm_set_throttle(f->vmm, 100), -EINVAL);
}

/* VMM-side writes: gw_vmm_mark_dirty only while tracking, merged once by the next sync. */
static void test_dirty_mark(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vm_make(f, 0), 0);
	gw_vmm_mark_dirty(f->vmm, 0x10000, 1); /* off: ignored */
	assert_int_equal(gw_vmm_dirty_start(f->vmm), 0);
	gw_vmm_mark_dirty(f->vmm, 0x5000 + 100, 2 * PAGE); /* pages 5, 6, 7 */
	gw_vmm_mark_dirty(f->vmm, RAM - 1, 100);	   /* last page, clipped */
	gw_vmm_mark_dirty(f->vmm, RAM, 100);		   /* outside: ignored */
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, f->bm), 4);
	assert_int_equal(f->bm[0], 0xe0ull);
	assert_true(f->bm[NPAGES / 64 - 1] & (1ull << 63));
	assert_int_equal(popcount(f->bm, NPAGES / 64), 4);
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, f->bm), 0);
	gw_vmm_mark_dirty(f->vmm, 0x5000, 1); /* already set in bm: not new */
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, f->bm), 0);
	assert_int_equal(gw_vmm_dirty_stop(f->vmm), 0);
}

/* Is page p where the dirtier may write: boot tables (A/D bits), image data + its region
 * (1 MiB past the image, 8 MiB), or the stack at the top of RAM? */
static bool page_allowed(uint64_t p)
{
	uint64_t gpa = p * PAGE;

	return gpa < GW_VMM_IMAGE_BASE + 16 * MIB || gpa >= RAM - GW_VMM_STACK_STRIDE;
}

static void sync_clear_all(struct fixture *f, uint64_t *bm)
{
	assert_true(gw_vmm_dirty_sync(f->vmm, bm) >= 0);
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, 0, NPAGES, bm), 0);
	memset(bm, 0, NPAGES / 8);
}

/* The scenario of both modes: running sync, paused sync is empty after a clear, and every
 * page whose content changed between two paused points is reported. */
static void run_scenario(struct fixture *f)
{
	uint8_t *ram, *shadow;
	uint64_t size;
	long n, in_region = 0;

	ram = gw_vmm_ram(f->vmm, &size);
	shadow = malloc(size);
	assert_non_null(shadow);
	assert_int_equal(gw_vmm_dirty_start(f->vmm), 0);
	assert_int_equal(gw_vmm_start(f->vmm), 0);
	sleep_ms(200);
	n = gw_vmm_dirty_sync(f->vmm, f->bm);
	printf("# %s: %ld pages dirty after 200 ms\n", gw_vmm_dirty_mode(f->vmm), n);
	assert_true(n > 0);
	for (uint64_t p = 0; p < NPAGES; p++) {
		if (!(f->bm[p / 64] & (1ull << (p % 64))))
			continue;
		if (!page_allowed(p))
			fail_msg(
			    "page %llu (gpa 0x%llx) reported dirty outside the dirtier's areas",
			    (unsigned long long)p, (unsigned long long)(p * PAGE));
		in_region += p * PAGE >= GW_VMM_IMAGE_BASE + MIB;
	}
	assert_true(in_region > 0);

	/* paused: after sync + clear of everything nothing more is dirty */
	assert_int_equal(gw_vmm_pause(f->vmm), 0);
	sync_clear_all(f, f->bm);
	assert_int_equal(gw_vmm_dirty_sync(f->vmm, f->bm), 0);
	assert_int_equal(popcount(f->bm, NPAGES / 64), 0);

	/* every page that changed while running again is reported */
	memcpy(shadow, ram, size);
	assert_int_equal(gw_vmm_resume(f->vmm), 0);
	sleep_ms(100);
	n = gw_vmm_dirty_sync(f->vmm, f->bm);
	assert_true(n > 0);
	assert_int_equal(gw_vmm_pause(f->vmm), 0);
	n += gw_vmm_dirty_sync(f->vmm, f->bm);
	printf("# %s: %ld pages dirty in the next ~100 ms\n", gw_vmm_dirty_mode(f->vmm), n);
	for (uint64_t p = 0; p < NPAGES; p++) {
		if (memcmp(shadow + p * PAGE, ram + p * PAGE, PAGE) == 0)
			continue;
		if (!(f->bm[p / 64] & (1ull << (p % 64))))
			fail_msg("page %llu changed but was not reported dirty",
				 (unsigned long long)p);
	}
	/* resume, still tracking after the paused syncs */
	assert_int_equal(gw_vmm_dirty_clear(f->vmm, 0, NPAGES, f->bm), 0);
	memset(f->bm, 0, NPAGES / 8);
	assert_int_equal(gw_vmm_resume(f->vmm), 0);
	sleep_ms(100);
	assert_true(gw_vmm_dirty_sync(f->vmm, f->bm) > 0);
	assert_int_equal(gw_vmm_dirty_stop(f->vmm), 0);
	assert_int_equal(gw_vmm_get_state(f->vmm, NULL, NULL, 0), GW_VMM_RUNNING);
	gw_vmm_stop(f->vmm, "test over");
	free(shadow);
}

static void test_dirty_bitmap(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(vm_make(f, 0), 0);
	printf("# bitmap mode: %s\n", gw_vmm_dirty_mode(f->vmm));
	run_scenario(f);
}

static void test_dirty_ring(void **state)
{
	struct fixture *f = *state;
	int r = vm_make(f, RING_ENTRIES);

	if (r == -ENOTSUP) {
		printf("# skipped: this KVM has no dirty ring\n");
		skip();
	}
	assert_int_equal(r, 0);
	assert_string_equal(gw_vmm_dirty_mode(f->vmm), "ring");
	run_scenario(f);
}

/* Bad ring sizes are refused at creation. */
static void test_dirty_ring_bad_size(void **state)
{
	struct fixture *f = *state;
	int r = vm_make(f, 1000);

	assert_true(r == -EINVAL || r == -ENOTSUP);
	assert_null(f->vmm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dirty_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_mark, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_ring_bad_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_bitmap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_ring, setup, teardown),
	};

	if (gw_test_require_kvm("test_vmm_dirty"))
		return GW_TEST_SKIP;
	gw_log_set_level(GW_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
