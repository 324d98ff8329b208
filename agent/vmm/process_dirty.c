/* process_dirty.c -- the process backend's dirty log: the sandbox registered all of guest RAM
 * with userfaultfd write-protect in async mode (process_stub.c), so a guest write to a
 * protected page just unprotects it; PAGEMAP_SCAN on the sandbox's /proc/PID/pagemap reads
 * which pages are "written" (unprotected) and, with PM_SCAN_WP_MATCHING, protects them again
 * in the same call. That is the contract of KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG:
 *   fetch      scan without protecting: every page written since it was last protected;
 *   reprotect  scan-and-protect a range just before its pages are read for sending; pages
 *              found written there that the caller did not ask for (written since the fetch)
 *              are carried into vmm->dirty->pending, so the next sync still reports them.
 * The VMM's own writes to guest RAM (ins) go through gw_vmm_mark_dirty. Stopping the log
 * leaves the protection in place: each page then costs one more fault, once, on its next
 * write. Debian 12's headers predate PAGEMAP_SCAN (Linux 6.7): the uapi bits are here.
 */
#include "process_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gw_log.h"

#define SUBSYS "process-dirty"

#define PAGE_SHIFT 12

#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN	      _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN	      (1 << 1)
#define PM_SCAN_WP_MATCHING   (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#define SCAN_REGIONS 512 /* regions per PAGEMAP_SCAN call (on the caller's stack: 12 KiB) */

const char *gw_proc_dirty_mode(struct gw_vmm *vmm)
{
	(void)vmm;
	return "uffd-wp";
}

int gw_proc_dirty_probe(void)
{
	struct pm_scan_arg a;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.start = a.end = 0; /* an empty range: only asks whether the ioctl exists */
	if (ioctl(fd, PAGEMAP_SCAN, &a) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Scan guest pages [first, first + n): every written region goes to fn; with protect, the
 * written pages are write-protected again in the same call. */
static long scan(struct gw_vmm *vmm, uint64_t first, uint64_t n, bool protect,
		 void (*fn)(void *ctx, uint64_t pg, uint64_t npg), void *ctx)
{
	struct page_region vec[SCAN_REGIONS];
	uint64_t end = (first + n) << PAGE_SHIFT;
	struct pm_scan_arg a;
	long total = 0;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.flags = PM_SCAN_CHECK_WPASYNC | (protect ? PM_SCAN_WP_MATCHING : 0);
	a.start = first << PAGE_SHIFT;
	a.end = end;
	a.vec = (uint64_t)(uintptr_t)vec;
	a.vec_len = SCAN_REGIONS;
	a.category_mask = PAGE_IS_WRITTEN;
	a.return_mask = PAGE_IS_WRITTEN;
	while (a.start < end) {
		int k = ioctl(vmm->proc->pagemap_fd, PAGEMAP_SCAN, &a);

		if (k < 0)
			return -errno;
		for (int i = 0; i < k; i++) {
			uint64_t pg = vec[i].start >> PAGE_SHIFT;
			uint64_t npg = (vec[i].end - vec[i].start) >> PAGE_SHIFT;

			fn(ctx, pg, npg);
			total += (long)npg;
		}
		if (a.walk_end <= a.start)
			break;
		a.start = a.walk_end;
	}
	return total;
}

/* Set pages [pg, pg + npg) in bm a 64-bit word at a time (a region can span a GiB); fresh
 * counts the bits that were clear. */
static void set_bits(uint64_t *bm, uint64_t pg, uint64_t npg, long *fresh)
{
	uint64_t end = pg + npg;

	while (pg < end) {
		unsigned lo = pg & 63;
		uint64_t n = end - pg < 64 - lo ? end - pg : 64 - lo;
		uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << lo;

		*fresh += __builtin_popcountll(mask & ~bm[pg >> 6]);
		bm[pg >> 6] |= mask;
		pg += n;
	}
}

struct fetch_ctx {
	uint64_t *bitmap;
	long fresh;
};

static void fetch_region(void *arg, uint64_t pg, uint64_t npg)
{
	struct fetch_ctx *c = arg;

	set_bits(c->bitmap, pg, npg, &c->fresh);
}

/* Enable: protect every page now, so that the first fetch reports only later writes. */
int gw_proc_dirty_enable(struct gw_vmm *vmm)
{
	struct fetch_ctx c = {vmm->dirty->scratch, 0};
	long r = scan(vmm, 0, vmm->ram_size >> PAGE_SHIFT, true, fetch_region, &c);

	memset(vmm->dirty->scratch, 0, vmm->dirty->words * sizeof(uint64_t));
	if (r < 0) {
		gw_err(SUBSYS, "%s: PAGEMAP_SCAN of the sandbox (protect all): %s", vmm->name,
		       strerror((int)-r));
		return (int)r;
	}
	return 0;
}

long gw_proc_dirty_fetch(struct gw_vmm *vmm, uint64_t *bitmap)
{
	struct fetch_ctx c = {bitmap, 0};
	long r = scan(vmm, 0, vmm->ram_size >> PAGE_SHIFT, false, fetch_region, &c);

	return r < 0 ? r : c.fresh;
}

struct carry_ctx {
	uint64_t first;
	const uint64_t *asked; /* bit i = page first + i */
	uint64_t *pending;
};

/* A page re-protected that the caller did not ask for was written after the fetch: keep it
 * for the next sync. */
static void carry_region(void *arg, uint64_t pg, uint64_t npg)
{
	struct carry_ctx *c = arg;

	for (uint64_t p = pg; p < pg + npg; p++) {
		uint64_t i = p - c->first;

		if (!(c->asked[i >> 6] & (1ull << (i & 63))))
			__atomic_fetch_or(&c->pending[p >> 6], 1ull << (p & 63), __ATOMIC_RELAXED);
	}
}

int gw_proc_dirty_reprotect(struct gw_vmm *vmm, uint64_t first, uint64_t n, const uint64_t *bits)
{
	struct carry_ctx c = {first, bits, vmm->dirty->pending};
	long r = scan(vmm, first, n, true, carry_region, &c);

	return r < 0 ? (int)r : 0;
}

int gw_proc_dirty_disable(struct gw_vmm *vmm)
{
	(void)vmm;
	return 0;
}

void gw_proc_dirty_destroy(struct gw_vmm *vmm)
{
	(void)vmm; /* the pagemap fd belongs to the sandbox (process_vm.c) */
}
