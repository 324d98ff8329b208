/* kvm_dirty.c -- the KVM backend's dirty log: KVM dirty bitmap (with manual protect) or the
 * per-vCPU dirty ring, behind the dirty ops of vmm_backend.h (the API is vmm_dirty.c).
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
#include "kvm_int.h"

#define SUBSYS "kvm-dirty"

#define PAGE_SHIFT	  12
#define CLEAR_CHUNK_PAGES (256ull << (20 - PAGE_SHIFT)) /* 256 MiB per KVM_CLEAR_DIRTY_LOG */
#define RING_MIN_ENTRIES  256u
#define GW_MEM_SLOT	  0 /* the VMM has exactly one memslot: all RAM at gpa 0 */

const char *gw_kvm_dirty_mode(struct gw_vmm *vmm)
{
	if (vmm->ring_entries)
		return "ring";
	return vmm->manual_protect ? "bitmap-manual" : "bitmap";
}

/* ---- set-up hooks (vmm_kvm.c) ---- */

int gw_kvm_dirty_vm_init(struct gw_vmm *vmm, unsigned ring_entries, char *err, size_t errlen)
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

int gw_kvm_dirty_vcpu_init(struct gw_vmm *vmm, struct gw_vcpu *vcpu)
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

void gw_kvm_dirty_destroy(struct gw_vmm *vmm)
{
	size_t bytes = (size_t)vmm->ring_entries * sizeof(struct kvm_dirty_gfn);

	for (unsigned i = 0; vmm->vcpus && i < vmm->nr_vcpus; i++) {
		if (vmm->vcpus[i].ring)
			munmap(vmm->vcpus[i].ring, bytes);
		vmm->vcpus[i].ring = NULL;
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

/* ---- the backend's dirty ops (vmm_dirty.c holds dirty_lock) ---- */

int gw_kvm_dirty_enable(struct gw_vmm *vmm)
{
	struct gw_dirty *d = vmm->dirty;
	int r;

	if (vmm->ring_entries) /* leftovers of an earlier session, if any */
		rings_harvest_all(vmm, NULL, NULL);
	r = slot_set_logging(vmm, true);
	if (r) {
		gw_err(SUBSYS, "%s: enabling dirty logging on the RAM slot: %s", vmm->name,
		       strerror(-r));
		return r;
	}
	if (!vmm->manual_protect)
		return 0;
	/* INITIALLY_SET: every page starts dirty and writable; re-protect all of RAM chunk by
	 * chunk so that the first sync reports only what was written since */
	memset(d->scratch, 0xff, d->words * sizeof(uint64_t));
	for (uint64_t p = 0; p < d->npages; p += CLEAR_CHUNK_PAGES) {
		uint64_t n = d->npages - p < CLEAR_CHUNK_PAGES ? d->npages - p : CLEAR_CHUNK_PAGES;

		r = clear_log(vmm, p, n, d->scratch + p / 64);
		if (r) {
			gw_err(SUBSYS, "%s: initial KVM_CLEAR_DIRTY_LOG at page %llu: %s",
			       vmm->name, (unsigned long long)p, strerror(-r));
			slot_set_logging(vmm, false);
			return r;
		}
	}
	return 0;
}

long gw_kvm_dirty_fetch(struct gw_vmm *vmm, uint64_t *bitmap)
{
	struct gw_dirty *d = vmm->dirty;
	struct kvm_dirty_log log;
	long fresh = 0;
	int r;

	if (vmm->ring_entries) {
		r = rings_harvest_all(vmm, bitmap, &fresh);
		return r ? r : fresh;
	}
	memset(&log, 0, sizeof(log));
	log.slot = GW_MEM_SLOT;
	log.dirty_bitmap = d->scratch;
	if (ioctl(vmm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	return gw_dirty_merge_words(bitmap, d->scratch, d->words);
}

int gw_kvm_dirty_reprotect(struct gw_vmm *vmm, uint64_t first_page, uint64_t npages,
			   const uint64_t *bitmap)
{
	uint64_t total = vmm->ram_size >> PAGE_SHIFT, aligned, tail;
	int r = 0;

	if (!npages || vmm->ring_entries || !vmm->manual_protect)
		return 0;
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
	return r;
}

int gw_kvm_dirty_disable(struct gw_vmm *vmm)
{
	int r = slot_set_logging(vmm, false);

	if (vmm->ring_entries)
		rings_harvest_all(vmm, NULL, NULL);
	gw_info(SUBSYS, "%s: %llu ring-full exits this session", vmm->name,
		(unsigned long long)vmm->dirty->ring_full);
	return r;
}

/* On the vCPU's own thread: its ring is full (soft limit). Harvest it into the pending
 * bitmap (dropped when logging is off) and reset, so that KVM_RUN can go on. */
void gw_kvm_dirty_ring_full(struct gw_vcpu *vcpu)
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
