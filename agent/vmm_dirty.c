/* vmm_dirty.c -- dirty-page tracking for live migration (KVM dirty bitmap or dirty ring) and
 * the auto-converge vCPU throttle.
 *
 * What this host's KVM offers (kvm_pvm, kernel 6.18, by experiment, see bench/bench_dirty.c):
 * - KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 3 (ENABLE and INITIALLY_SET): bitmap mode uses it.
 *   The cap is enabled right after KVM_CREATE_VM, before KVM_MEM_LOG_DIRTY_PAGES is ever set
 *   on the slot (KVM applies INITIALLY_SET when the flag is set, so the order matters).
 *   INITIALLY_SET leaves every page writable and "dirty" when logging starts; dirty_start
 *   then re-protects all of RAM with KVM_CLEAR_DIRTY_LOG in 256 MiB chunks (so mmu_lock is
 *   held briefly each time) to give the engine the "nothing dirty since start" view.
 * - KVM_CAP_DIRTY_LOG_RING and _ACQ_REL both report 1 MiB (65536 entries of 16 bytes per
 *   vCPU); _ACQ_REL is enabled when available. KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP is 0.
 *   The ring must be enabled before the first vCPU, hence struct gw_vmm_config's
 *   dirty_ring_entries; it is mapped at KVM_DIRTY_LOG_PAGE_OFFSET of each vCPU fd. With the
 *   ring, KVM_GET_DIRTY_LOG is refused, so the two modes exclude each other per VM.
 * - A full ring exits KVM_RUN with KVM_EXIT_DIRTY_RING_FULL: the vCPU thread harvests its
 *   own ring into the VMM-side bitmap (the same one gw_vmm_mark_dirty uses), resets and
 *   goes on; the next sync merges it.
 * The VMM itself writes guest RAM only while building the VM (loader), never after boot (the
 * console is port I/O in kvm_run), so nothing calls gw_vmm_mark_dirty today.
 *
 * Throttle: each vCPU thread, while a throttle is set, runs for (100 - pct) % of a 10 ms
 * slice and sleeps the rest in a timed wait on vmm->cond (so pause and stop wake it); a
 * per-thread one-shot POSIX timer sends the kick signal at the end of the run part, and the
 * kick handler sets immediate_exit, so a timer that fires just before KVM_RUN is not lost.
 */
#include "vmm_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "dirty"

#define PAGE_SHIFT	  12
#define CLEAR_CHUNK_PAGES (256ull << (20 - PAGE_SHIFT)) /* 256 MiB per KVM_CLEAR_DIRTY_LOG */
#define RING_MIN_ENTRIES  256u
#define THROTTLE_SLICE_NS 10000000ull
#define GW_MEM_SLOT	  0 /* the VMM has exactly one memslot: all RAM at gpa 0 */

struct gw_dirty {
	bool active;	    /* logging on (dirty_lock) */
	uint64_t npages;    /* pages of guest RAM */
	size_t words;	    /* 64-bit words of a whole-RAM bitmap */
	uint64_t *scratch;  /* KVM_GET_DIRTY_LOG buffer, also the all-ones mask at start */
	uint64_t *pending;  /* VMM writes and ring-full harvests, atomic, merged by sync */
	uint64_t ring_full; /* KVM_EXIT_DIRTY_RING_FULL exits this session (dirty_lock) */
};

size_t gw_vmm_dirty_words(struct gw_vmm *vmm)
{
	return (size_t)((vmm->ram_size >> PAGE_SHIFT) + 63) / 64;
}

const char *gw_vmm_dirty_mode(struct gw_vmm *vmm)
{
	if (vmm->ring_entries)
		return "ring";
	return vmm->manual_protect ? "bitmap-manual" : "bitmap";
}

/* ---- set-up hooks (vmm_kvm.c) ---- */

int gw_dirty_vm_init(struct gw_vmm *vmm, unsigned ring_entries, char *err, size_t errlen)
{
	struct kvm_enable_cap cap;
	int max, r;

	memset(&cap, 0, sizeof(cap));
	/* GODWIT_DIRTY_MODE=bitmap|manual|ring picks a mode by hand (for measurements) */
	const char *mode = getenv("GODWIT_DIRTY_MODE");
	if (mode && !strcmp(mode, "ring") && !ring_entries)
		ring_entries = 4096;
	if (ring_entries) {
		size_t bytes = (size_t)ring_entries * sizeof(struct kvm_dirty_gfn);

		cap.cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
		max = ioctl(vmm->vm_fd, KVM_CHECK_EXTENSION, cap.cap);
		if (max <= 0) {
			cap.cap = KVM_CAP_DIRTY_LOG_RING;
			max = ioctl(vmm->vm_fd, KVM_CHECK_EXTENSION, cap.cap);
		}
		if (max <= 0) {
			snprintf(err, errlen,
				 "this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)");
			return -ENOTSUP;
		}
		if (ring_entries < RING_MIN_ENTRIES || (ring_entries & (ring_entries - 1)) ||
		    bytes > (size_t)max) {
			snprintf(err, errlen,
				 "dirty ring entries must be a power of two in [%u, %zu], not %u",
				 RING_MIN_ENTRIES, (size_t)max / sizeof(struct kvm_dirty_gfn),
				 ring_entries);
			return -EINVAL;
		}
		cap.args[0] = bytes;
		if (ioctl(vmm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
			r = -errno;
			snprintf(err, errlen, "enabling the dirty ring (%u entries): %s",
				 ring_entries, strerror(errno));
			return r;
		}
		vmm->ring_entries = ring_entries;
		return 0;
	}
	if (mode && !strcmp(mode, "bitmap"))
		return 0;
	if (ioctl(vmm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) <
	    (int)(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET))
		return 0; /* plain bitmap mode: GET_DIRTY_LOG clears and re-protects */
	cap.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
	cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
	if (ioctl(vmm->vm_fd, KVM_ENABLE_CAP, &cap) == 0)
		vmm->manual_protect = true;
	else
		gw_warn(SUBSYS, "%s: enabling manual dirty-log protect: %s; plain bitmap mode",
			vmm->name, strerror(errno));
	return 0;
}

int gw_dirty_vcpu_init(struct gw_vmm *vmm, struct gw_vcpu *vcpu)
{
	size_t bytes = (size_t)vmm->ring_entries * sizeof(struct kvm_dirty_gfn);
	void *p;

	if (!vmm->ring_entries)
		return 0;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd,
		 (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * getpagesize());
	if (p == MAP_FAILED)
		return -errno;
	vcpu->ring = p;
	vcpu->ring_fetch = 0;
	return 0;
}

void gw_dirty_destroy(struct gw_vmm *vmm)
{
	size_t bytes = (size_t)vmm->ring_entries * sizeof(struct kvm_dirty_gfn);

	for (unsigned i = 0; vmm->vcpus && i < vmm->nr_vcpus; i++) {
		if (vmm->vcpus[i].ring)
			munmap(vmm->vcpus[i].ring, bytes);
		vmm->vcpus[i].ring = NULL;
	}
	if (vmm->dirty) {
		free(vmm->dirty->scratch);
		free(vmm->dirty->pending);
		free(vmm->dirty);
		vmm->dirty = NULL;
	}
}

/* ---- helpers ---- */

static int slot_set_logging(struct gw_vmm *vmm, bool on)
{
	struct kvm_userspace_memory_region region;

	memset(&region, 0, sizeof(region));
	region.slot = GW_MEM_SLOT;
	region.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;
	region.guest_phys_addr = 0;
	region.memory_size = vmm->ram_size;
	region.userspace_addr = (uint64_t)(uintptr_t)vmm->ram;
	if (ioctl(vmm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -errno;
	return 0;
}

static int clear_log(struct gw_vmm *vmm, uint64_t first, uint64_t n, const uint64_t *bits)
{
	struct kvm_clear_dirty_log c;

	memset(&c, 0, sizeof(c));
	c.slot = GW_MEM_SLOT;
	c.first_page = first;
	c.num_pages = (uint32_t)n;
	c.dirty_bitmap = (void *)(uintptr_t)bits;
	if (ioctl(vmm->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
		return -errno;
	return 0;
}

/* OR src into dst, counting the bits that were not set in dst. */
static long merge_words(uint64_t *dst, const uint64_t *src, size_t words)
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

/*
 * Harvest one vCPU's dirty ring (dirty_lock held for writing): every entry flagged DIRTY
 * goes into dst (plain) or pending (atomic, when dst is NULL), or nowhere when both are NULL,
 * and is flagged RESET for the next KVM_RESET_DIRTY_RINGS. Returns the entries harvested;
 * *fresh counts bits newly set in dst.
 */
static uint32_t ring_harvest(struct gw_vmm *vmm, struct gw_vcpu *vcpu, uint64_t *dst,
			     uint64_t *pending, long *fresh)
{
	uint64_t npages = vmm->ram_size >> PAGE_SHIFT;
	uint32_t mask = vmm->ring_entries - 1, n = 0;

	for (;;) {
		struct kvm_dirty_gfn *e = &vcpu->ring[vcpu->ring_fetch & mask];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		uint64_t pg = e->offset;

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if ((e->slot & 0xffff) != GW_MEM_SLOT || pg >= npages) {
			gw_warn(SUBSYS,
				"%s: vcpu %u dirty ring entry for slot %u page %llu ignored",
				vmm->name, vcpu->index, e->slot, (unsigned long long)pg);
		} else if (dst) {
			uint64_t bit = 1ull << (pg & 63);

			*fresh += !(dst[pg >> 6] & bit);
			dst[pg >> 6] |= bit;
		} else if (pending) {
			__atomic_fetch_or(&pending[pg >> 6], 1ull << (pg & 63), __ATOMIC_RELAXED);
		}
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		vcpu->ring_fetch++;
		n++;
	}
	return n;
}

/* Harvest every ring (into dst, or drop them when dst is NULL) and let KVM re-protect. */
static int rings_harvest_all(struct gw_vmm *vmm, uint64_t *dst, long *fresh)
{
	uint64_t harvested = 0;

	for (unsigned i = 0; i < vmm->nr_vcpus; i++)
		harvested += ring_harvest(vmm, &vmm->vcpus[i], dst, NULL, fresh);
	if (harvested && ioctl(vmm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return -errno;
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
	if (!vmm->dirty) {
		d = calloc(1, sizeof(*d));
		if (!d) {
			r = -ENOMEM;
			goto out;
		}
		d->npages = vmm->ram_size >> PAGE_SHIFT;
		d->words = gw_vmm_dirty_words(vmm);
		d->scratch = calloc(d->words, sizeof(uint64_t));
		d->pending = calloc(d->words, sizeof(uint64_t));
		if (!d->scratch || !d->pending) {
			free(d->scratch);
			free(d->pending);
			free(d);
			r = -ENOMEM;
			goto out;
		}
		vmm->dirty = d;
	}
	d = vmm->dirty;
	memset(d->pending, 0, d->words * sizeof(uint64_t));
	d->ring_full = 0;
	if (vmm->ring_entries) /* leftovers of an earlier session, if any */
		rings_harvest_all(vmm, NULL, NULL);
	r = slot_set_logging(vmm, true);
	if (r) {
		gw_err(SUBSYS, "%s: enabling dirty logging on the RAM slot: %s", vmm->name,
		       strerror(-r));
		goto out;
	}
	if (vmm->manual_protect) {
		/* INITIALLY_SET: every page starts dirty and writable; re-protect all of RAM
		 * chunk by chunk so that the first sync reports only what was written since */
		memset(d->scratch, 0xff, d->words * sizeof(uint64_t));
		for (uint64_t p = 0; p < d->npages; p += CLEAR_CHUNK_PAGES) {
			uint64_t n =
			    d->npages - p < CLEAR_CHUNK_PAGES ? d->npages - p : CLEAR_CHUNK_PAGES;

			r = clear_log(vmm, p, n, d->scratch + p / 64);
			if (r) {
				gw_err(SUBSYS, "%s: initial KVM_CLEAR_DIRTY_LOG at page %llu: %s",
				       vmm->name, (unsigned long long)p, strerror(-r));
				slot_set_logging(vmm, false);
				goto out;
			}
		}
	}
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
	int r;

	if (!bitmap)
		return -EINVAL;
	pthread_rwlock_wrlock(&vmm->dirty_lock);
	d = vmm->dirty;
	if (!d || !d->active) {
		fresh = -EINVAL;
		goto out;
	}
	if (vmm->ring_entries) {
		r = rings_harvest_all(vmm, bitmap, &fresh);
	} else {
		struct kvm_dirty_log log;

		memset(&log, 0, sizeof(log));
		log.slot = GW_MEM_SLOT;
		log.dirty_bitmap = d->scratch;
		r = ioctl(vmm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0 ? -errno : 0;
		if (!r)
			fresh = merge_words(bitmap, d->scratch, d->words);
	}
	if (r) {
		gw_err(SUBSYS, "%s: dirty log sync (%s): %s", vmm->name, gw_vmm_dirty_mode(vmm),
		       strerror(-r));
		fresh = r;
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
	uint64_t total = vmm->ram_size >> PAGE_SHIFT, aligned, tail;
	int r = 0;

	if (first_page % 64 || first_page > total || npages > total - first_page ||
	    (npages && !bitmap))
		return -EINVAL;
	pthread_rwlock_rdlock(&vmm->dirty_lock);
	if (!vmm->dirty || !vmm->dirty->active) {
		r = -EINVAL;
		goto out;
	}
	if (!npages || vmm->ring_entries || !vmm->manual_protect)
		goto out;
	/* KVM reads whole 64-bit words: the whole words straight from the engine's bitmap,
	 * a partial last word masked so that pages past the range are left alone */
	aligned = npages & ~63ull;
	tail = npages & 63;
	for (uint64_t p = 0; p < aligned && !r; p += CLEAR_CHUNK_PAGES) {
		uint64_t n = aligned - p < CLEAR_CHUNK_PAGES ? aligned - p : CLEAR_CHUNK_PAGES;

		r = clear_log(vmm, first_page + p, n, bitmap + p / 64);
	}
	if (!r && tail) {
		uint64_t w = bitmap[aligned / 64] & ((1ull << tail) - 1);
		uint64_t at = first_page + aligned;

		if (w)
			r = clear_log(vmm, at, total - at < 64 ? total - at : 64, &w);
	}
	if (r)
		gw_err(SUBSYS, "%s: KVM_CLEAR_DIRTY_LOG of pages [%llu, +%llu): %s", vmm->name,
		       (unsigned long long)first_page, (unsigned long long)npages, strerror(-r));
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
	r = slot_set_logging(vmm, false);
	if (r)
		gw_err(SUBSYS, "%s: disabling dirty logging: %s", vmm->name, strerror(-r));
	if (vmm->ring_entries)
		rings_harvest_all(vmm, NULL, NULL);
	gw_info(SUBSYS, "%s: dirty logging off (%llu ring-full exits)", vmm->name,
		(unsigned long long)vmm->dirty->ring_full);
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

/* On the vCPU's own thread: its ring is full (soft limit). Harvest it into the pending
 * bitmap (dropped when logging is off) and reset, so that KVM_RUN can go on. */
void gw_dirty_ring_full(struct gw_vcpu *vcpu)
{
	struct gw_vmm *vmm = vcpu->vmm;
	long unused = 0;
	uint64_t *pending;

	pthread_rwlock_wrlock(&vmm->dirty_lock);
	pending = vmm->dirty && vmm->dirty->active ? vmm->dirty->pending : NULL;
	if (pending)
		vmm->dirty->ring_full++;
	if (ring_harvest(vmm, vcpu, NULL, pending, &unused) &&
	    ioctl(vmm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		gw_err(SUBSYS, "%s: vcpu %u: KVM_RESET_DIRTY_RINGS: %s", vmm->name, vcpu->index,
		       strerror(errno));
	pthread_rwlock_unlock(&vmm->dirty_lock);
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
