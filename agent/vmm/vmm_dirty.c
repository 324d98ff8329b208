/* vmm_dirty.c -- the dirty-log API for live migration (gw_vmm_dirty_*), shared by every
 * backend: locking, the "on" state, the pending bitmap (VMM writes and pages a backend
 * carries over). What reads and re-protects the log is
 * the backend's (kvm_dirty.c: KVM dirty bitmap or ring; process_dirty.c: userfaultfd
 * write-protect read with PAGEMAP_SCAN).

 */
#include "vmm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "dirty"

#define PAGE_SHIFT 12

size_t gw_vmm_dirty_words(struct gw_vmm *vmm)
{
	return (size_t)((vmm->ram_size >> PAGE_SHIFT) + 63) / 64;
}

const char *gw_vmm_dirty_mode(struct gw_vmm *vmm)
{
	return vmm->be->dirty_mode(vmm);
}

/* Move the pending (atomic) bits into dst. */
static long merge_pending(uint64_t *dst, uint64_t *pending, size_t words)
{
	long n = 0;

	for (size_t i = 0; i < words; i++) {
		uint64_t w;

		if (!__atomic_load_n(&pending[i], __ATOMIC_RELAXED))
			continue;
		w = __atomic_exchange_n(&pending[i], 0, __ATOMIC_ACQ_REL);
		n += __builtin_popcountll(w & ~dst[i]);
		dst[i] |= w;
	}
	return n;
}

void gw_dirty_free(struct gw_vmm *vmm)
{
	if (vmm->dirty) {
		free(vmm->dirty->scratch);
		free(vmm->dirty->pending);
		free(vmm->dirty);
		vmm->dirty = NULL;
	}
}

static int dirty_alloc(struct gw_vmm *vmm)
{
	struct gw_dirty *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->npages = vmm->ram_size >> PAGE_SHIFT;
	d->words = gw_vmm_dirty_words(vmm);
	d->scratch = calloc(d->words, sizeof(uint64_t));
	d->pending = calloc(d->words, sizeof(uint64_t));
	if (!d->scratch || !d->pending) {
		free(d->scratch);
		free(d->pending);
		free(d);
		return -ENOMEM;
	}
	vmm->dirty = d;
	return 0;
}

/* ---- the API ---- */

int gw_vmm_dirty_start(struct gw_vmm *vmm)
{
	struct gw_dirty *d;
	int r = 0;

	pthread_rwlock_wrlock(&vmm->dirty_lock);
	if (vmm->dirty && vmm->dirty->active) {
		r = -EBUSY;
		goto out;
	}
	if (!vmm->dirty && (r = dirty_alloc(vmm)) != 0)
		goto out;
	d = vmm->dirty;
	memset(d->pending, 0, d->words * sizeof(uint64_t));
	d->ring_full = 0;
	r = vmm->be->dirty_enable(vmm);
	if (r)
		goto out;
	d->active = true;
	__atomic_store_n(&vmm->dirty_marking, true, __ATOMIC_RELEASE);
	gw_log_write(vmm->dirty_quiet ? GW_LOG_DEBUG : GW_LOG_INFO, SUBSYS,
		     "%s: dirty logging on (%s, %llu pages)%s", vmm->name, gw_vmm_dirty_mode(vmm),
		     (unsigned long long)d->npages, vmm->dirty_quiet ? ", a load sample" : "");
out:
	pthread_rwlock_unlock(&vmm->dirty_lock);
	return r;
}

long gw_vmm_dirty_sync(struct gw_vmm *vmm, uint64_t *bitmap)
{
	struct gw_dirty *d;
	long fresh = 0;

	if (!bitmap)
		return -EINVAL;
	pthread_rwlock_wrlock(&vmm->dirty_lock);
	d = vmm->dirty;
	if (!d || !d->active) {
		fresh = -EINVAL;
		goto out;
	}
	fresh = vmm->be->dirty_fetch(vmm, bitmap);
	if (fresh < 0) {
		gw_err(SUBSYS, "%s: dirty log sync (%s): %s", vmm->name, gw_vmm_dirty_mode(vmm),
		       strerror((int)-fresh));
		goto out;
	}
	fresh += merge_pending(bitmap, d->pending, d->words);
out:
	pthread_rwlock_unlock(&vmm->dirty_lock);
	return fresh;
}

int gw_vmm_dirty_clear(struct gw_vmm *vmm, uint64_t first_page, uint64_t npages,
		       const uint64_t *bitmap)
{
	uint64_t total = vmm->ram_size >> PAGE_SHIFT;
	int r = 0;

	if (first_page % 64 || first_page > total || npages > total - first_page ||
	    (npages && !bitmap))
		return -EINVAL;
	pthread_rwlock_rdlock(&vmm->dirty_lock);
	if (!vmm->dirty || !vmm->dirty->active) {
		r = -EINVAL;
		goto out;
	}
	if (npages)
		r = vmm->be->dirty_reprotect(vmm, first_page, npages, bitmap);
	if (r)
		gw_err(SUBSYS, "%s: re-protecting pages [%llu, +%llu) (%s): %s", vmm->name,
		       (unsigned long long)first_page, (unsigned long long)npages,
		       gw_vmm_dirty_mode(vmm), strerror(-r));
out:
	pthread_rwlock_unlock(&vmm->dirty_lock);
	return r;
}

int gw_vmm_dirty_stop(struct gw_vmm *vmm)
{
	int r = 0;

	pthread_rwlock_wrlock(&vmm->dirty_lock);
	if (!vmm->dirty || !vmm->dirty->active) {
		r = -EINVAL;
		goto out;
	}
	__atomic_store_n(&vmm->dirty_marking, false, __ATOMIC_RELEASE);
	vmm->dirty->active = false;
	r = vmm->be->dirty_disable(vmm);
	if (r)
		gw_err(SUBSYS, "%s: disabling dirty logging: %s", vmm->name, strerror(-r));
	gw_log_write(vmm->dirty_quiet ? GW_LOG_DEBUG : GW_LOG_INFO, SUBSYS, "%s: dirty logging off",
		     vmm->name);
out:
	pthread_rwlock_unlock(&vmm->dirty_lock);
	return r;
}

void gw_vmm_mark_dirty(struct gw_vmm *vmm, uint64_t gpa, uint64_t len)
{
	uint64_t first, last;
	uint64_t *pending;

	if (!len || gpa >= vmm->ram_size || !__atomic_load_n(&vmm->dirty_marking, __ATOMIC_ACQUIRE))
		return;
	/* dirty (and its pending bitmap) is never freed before destroy once marking is on */
	pending = vmm->dirty->pending;
	if (len > vmm->ram_size - gpa)
		len = vmm->ram_size - gpa;
	first = gpa >> PAGE_SHIFT;
	last = (gpa + len - 1) >> PAGE_SHIFT;
	for (uint64_t p = first; p <= last; p++)
		__atomic_fetch_or(&pending[p >> 6], 1ull << (p & 63), __ATOMIC_RELAXED);
}
