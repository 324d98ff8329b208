/* vmm_dirty.c -- the dirty-log API for live migration (gw_vmm_dirty_*), shared by every
 * backend: locking, the "on" state, the pending bitmap (VMM writes and pages a backend
 * carries over), and the auto-converge vCPU throttle. What reads and re-protects the log is
 * the backend's (kvm_dirty.c: KVM dirty bitmap or ring; process_dirty.c: userfaultfd
 * write-protect read with PAGEMAP_SCAN).
 *
 * Throttle: each vCPU thread, while a throttle is set, runs for (100 - pct) % of a 10 ms
 * slice and sleeps the rest in a timed wait on vmm->cond (so pause and stop wake it); a
 * per-thread one-shot POSIX timer sends the kick signal at the end of the run part, and the
 * kick handler makes the backend leave guest code (kvm: immediate_exit; process: a signal
 * to the traced thread), so a timer that fires just before the next run is not lost.
 */
#include "vmm_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "dirty"

#define PAGE_SHIFT	  12
#define THROTTLE_SLICE_NS 10000000ull

size_t gw_vmm_dirty_words(struct gw_vmm *vmm)
{
	return (size_t)((vmm->ram_size >> PAGE_SHIFT) + 63) / 64;
}

const char *gw_vmm_dirty_mode(struct gw_vmm *vmm)
{
	return vmm->be->dirty_mode(vmm);
}

long gw_dirty_merge_words(uint64_t *dst, const uint64_t *src, size_t words)
{
	long n = 0;

	for (size_t i = 0; i < words; i++) {
		uint64_t w = src[i];

		if (!w)
			continue;
		n += __builtin_popcountll(w & ~dst[i]);
		dst[i] |= w;
	}
	return n;
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
	gw_info(SUBSYS, "%s: dirty logging on (%s, %llu pages)", vmm->name, gw_vmm_dirty_mode(vmm),
		(unsigned long long)d->npages);
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
	gw_info(SUBSYS, "%s: dirty logging off", vmm->name);
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

/* ---- throttle ---- */

int gw_vmm_set_throttle(struct gw_vmm *vmm, unsigned pct)
{
	unsigned old;

	if (pct > 99)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	old = vmm->throttle_pct;
	vmm->throttle_pct = pct;
	if (pct && !old && vmm->state == GW_VMM_RUNNING)
		gw_vcpu_kick_all_locked(vmm); /* out of KVM_RUN to start slicing */
	else
		pthread_cond_broadcast(&vmm->cond); /* sleepers re-evaluate */
	pthread_mutex_unlock(&vmm->lock);
	if (pct != old)
		gw_info(SUBSYS, "%s: vCPU throttle %u%% -> %u%%", vmm->name, old, pct);
	return 0;
}

unsigned gw_vmm_get_throttle(struct gw_vmm *vmm)
{
	unsigned pct;

	pthread_mutex_lock(&vmm->lock);
	pct = vmm->throttle_pct;
	pthread_mutex_unlock(&vmm->lock);
	return pct;
}

static void ns_to_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* Arm this thread's one-shot kick timer for the end of the run slice (created lazily). */
static void throttle_arm(struct gw_vcpu *vcpu, uint64_t at_ns)
{
	struct itimerspec its;

	if (!vcpu->throttle_timer_ok) {
		struct sigevent sev;

		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = GW_VCPU_KICK_SIGNAL;
		sev._sigev_un._tid = gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &vcpu->throttle_timer) < 0) {
			gw_warn(SUBSYS, "%s: vcpu %u: timer_create: %s; throttle only on exits",
				vcpu->vmm->name, vcpu->index, strerror(errno));
			return;
		}
		vcpu->throttle_timer_ok = true;
	}
	memset(&its, 0, sizeof(its));
	ns_to_ts(at_ns, &its.it_value);
	timer_settime(vcpu->throttle_timer, TIMER_ABSTIME, &its, NULL);
}

bool gw_throttle_vcpu_locked(struct gw_vcpu *vcpu)
{
	struct gw_vmm *vmm = vcpu->vmm;
	unsigned pct = vmm->throttle_pct;
	uint64_t now, until;

	if (!pct) {
		vcpu->run_until_ns = 0;
		return false;
	}
	now = gw_now_mono_ns();
	if (now < vcpu->run_until_ns)
		return false; /* in the run part of the slice; the timer ends it */
	until = now + THROTTLE_SLICE_NS * pct / 100;
	while (vmm->throttle_pct && !vmm->pause_req && !vmm->exit_req) {
		struct timespec ts;

		ns_to_ts(until, &ts);
		if (pthread_cond_timedwait(&vmm->cond, &vmm->lock, &ts) == ETIMEDOUT)
			break;
		if (gw_now_mono_ns() >= until)
			break;
	}
	now = gw_now_mono_ns();
	vcpu->run_until_ns = now + THROTTLE_SLICE_NS * (100 - pct) / 100;
	throttle_arm(vcpu, vcpu->run_until_ns);
	return true;
}

void gw_throttle_vcpu_exit(struct gw_vcpu *vcpu)
{
	if (vcpu->throttle_timer_ok) {
		timer_delete(vcpu->throttle_timer);
		vcpu->throttle_timer_ok = false;
	}
}
