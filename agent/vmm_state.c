/* vmm_state.c -- vCPU and VM state as versioned blobs for live migration: save, check, restore.
 *
 * vCPU blob, little-endian (x86 only; the KVM structs are copied as the kernel ABI lays
 * them out, which is little-endian on x86):
 *   header  u32 magic "GWCP" | u16 version (1) | u16 header bytes (24) | u32 vCPU index |
 *           u32 vCPU count of the VM | u32 body bytes | u32 reserved (0)
 *   body    sections: u16 type | u16 flags (0) | u32 length | payload, padded with zeroes
 *           to 8 bytes. Every type at most once; unknown types are refused (a newer
 *           format bumps the version); payload sizes are exact.
 * Sections: REGS, SREGS, FPU, MSRS and GODWIT (flags: stopped) always; XSAVE, XCRS,
 * EVENTS and DEBUGREGS when this KVM has them. Restore order: sregs, xcrs, fpu, xsave,
 * regs, msrs, events, debugregs, then Godwit's flags.
 *
 * Findings on this host (kvm_pvm): KVM_GET_MSR_INDEX_LIST has 40 MSRs; of the list below
 * all but TSC_AUX (0xc0000103, not reported: RDTSCP is not in the supported CPUID) are
 * there. KVM_CAP_XSAVE2 = 4096 bytes; XCRS, VCPU_EVENTS, DEBUGREGS are present. There is no
 * in-kernel irqchip, so no LAPIC/PIC/IOAPIC/PIT state exists to migrate.
 *
 * TSC: IA32_TSC is saved with the other MSRs and written back as is (a host-initiated write
 * goes through KVM's TSC synchronisation, so vCPUs restored close together stay in step).
 * The destination adds nothing for the downtime: where KVM can offset the guest TSC it
 * continues from the saved value (monotonic; the guest does not see the time it was paused).
 * On this PVM host, by experiment (tests/unit/test_vmm_state.c prints it): the write is
 * accepted but KVM's IA32_TSC of every vCPU, before and after, is the host TSC (a new VM
 * does not start at 0; guest RDTSC runs natively at CPL 3 without an offset). So here the
 * guest TSC is monotonic on one machine, includes the downtime, and across machines jumps
 * by the difference of the host TSCs (backwards if the destination's is behind).
 */
#include "vmm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "gw_log.h"

#define SUBSYS "state"

#define VCPU_MAGIC   0x50435747u /* "GWCP" */
#define VM_MAGIC     0x4d565747u /* "GWVM" */
#define BLOB_VERSION 1
#define HDR_LEN	     24
#define SEC_HDR_LEN  8
#define MAX_MSRS     32
#define XSAVE_MAX    (64 * 1024)

enum sec_type {
	SEC_REGS = 1,
	SEC_SREGS,
	SEC_FPU,
	SEC_XSAVE,
	SEC_XCRS,
	SEC_MSRS,
	SEC_EVENTS,
	SEC_DEBUGREGS,
	SEC_GODWIT, /* u32 flags (GODWIT_STOPPED), u32 reserved */
	SEC_VMINFO, /* VM blob: u64 RAM bytes, u32 vCPUs, u32 TSC kHz */
	SEC_MAX_
};

#define GODWIT_STOPPED 1u

/* MSRs that matter to a CPL-3 long-mode guest (EFER travels in sregs); the ones KVM does
 * not list are skipped. */
static const uint32_t wanted_msrs[] = {
    0x00000010, /* IA32_TSC */
    0x0000003b, /* IA32_TSC_ADJUST */
    0x00000174, /* IA32_SYSENTER_CS */
    0x00000175, /* IA32_SYSENTER_ESP */
    0x00000176, /* IA32_SYSENTER_EIP */
    0x00000277, /* IA32_PAT */
    0x000001a0, /* IA32_MISC_ENABLE */
    0xc0000081, /* STAR */
    0xc0000082, /* LSTAR */
    0xc0000083, /* CSTAR */
    0xc0000084, /* SYSCALL_MASK */
    0xc0000102, /* KERNEL_GS_BASE */
    0xc0000103, /* TSC_AUX */
};

struct gw_state_caps {
	size_t xsave_size; /* 0: no KVM_GET_XSAVE */
	bool xsave2;
	bool xcrs, events, debugregs;
	unsigned nr_msrs;
	uint32_t msrs[MAX_MSRS];
};

/* ---- probing (vmm->lock held) ---- */

static int caps_get(struct gw_vmm *vmm, struct gw_state_caps **out)
{
	struct gw_state_caps *c = vmm->state_caps;
	struct kvm_msr_list *list;
	int n;

	if (c) {
		*out = c;
		return 0;
	}
	c = calloc(1, sizeof(*c));
	list = calloc(1, sizeof(*list) + 1024 * sizeof(uint32_t));
	if (!c || !list) {
		free(c);
		free(list);
		return -ENOMEM;
	}
	n = ioctl(vmm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (n > 0) {
		c->xsave_size =
		    (size_t)n < sizeof(struct kvm_xsave) ? sizeof(struct kvm_xsave) : (size_t)n;
		c->xsave2 = true;
	} else if (ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		c->xsave_size = sizeof(struct kvm_xsave);
	}
	if (c->xsave_size > XSAVE_MAX) {
		gw_warn(SUBSYS, "%s: XSAVE area of %zu bytes not supported; FPU state only",
			vmm->name, c->xsave_size);
		c->xsave_size = 0;
	}
	c->xcrs = ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	c->events = ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0;
	c->debugregs = ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0;
	list->nmsrs = 1024;
	if (ioctl(vmm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		n = -errno;
		gw_err(SUBSYS, "%s: KVM_GET_MSR_INDEX_LIST: %s", vmm->name, strerror(errno));
		free(list);
		free(c);
		return n;
	}
	for (size_t w = 0; w < sizeof(wanted_msrs) / sizeof(wanted_msrs[0]); w++)
		for (uint32_t i = 0; i < list->nmsrs; i++)
			if (list->indices[i] == wanted_msrs[w])
				c->msrs[c->nr_msrs++] = wanted_msrs[w];
	free(list);
	vmm->state_caps = c;
	*out = c;
	return 0;
}

void gw_state_destroy(struct gw_vmm *vmm)
{
	free(vmm->state_caps);
	vmm->state_caps = NULL;
}

/* ---- writing blobs ---- */

struct wbuf {
	uint8_t *p;
	size_t cap, len; /* len keeps counting past cap, to report the size needed */
};

static void put(struct wbuf *w, const void *src, size_t n)
{
	if (w->len + n <= w->cap)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_le16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	put(w, b, 2);
}

static void put_le32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	put(w, b, 4);
}

static void put_le64(struct wbuf *w, uint64_t v)
{
	put_le32(w, (uint32_t)v);
	put_le32(w, (uint32_t)(v >> 32));
}

static void put_section(struct wbuf *w, enum sec_type type, const void *data, size_t n)
{
	static const uint8_t zero[8];

	put_le16(w, (uint16_t)type);
	put_le16(w, 0);
	put_le32(w, (uint32_t)n);
	put(w, data, n);
	put(w, zero, (8 - n % 8) % 8);
}

static void put_header(struct wbuf *w, uint32_t magic, uint32_t index, uint32_t nvcpus)
{
	put_le32(w, magic);
	put_le16(w, BLOB_VERSION);
	put_le16(w, HDR_LEN);
	put_le32(w, index);
	put_le32(w, nvcpus);
	put_le32(w, 0); /* body length, patched by finish() */
	put_le32(w, 0);
}

static int finish(struct wbuf *w, size_t *len)
{
	uint32_t body = (uint32_t)(w->len - HDR_LEN);

	*len = w->len;
	if (w->len > w->cap)
		return -ENOSPC;
	for (int i = 0; i < 4; i++)
		w->p[16 + i] = (uint8_t)(body >> (8 * i));
	return 0;
}

/* ---- reading blobs ---- */

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

struct sections {
	const uint8_t *data[SEC_MAX_];
	uint32_t len[SEC_MAX_];
};

/* Check header and section framing; fill s. Only framing: sizes are checked by callers. */
static int parse(struct gw_vmm *vmm, const uint8_t *buf, size_t len, uint32_t magic, uint32_t index,
		 struct sections *s)
{
	size_t off;

	memset(s, 0, sizeof(*s));
	if (!buf || len < HDR_LEN || get_le32(buf) != magic)
		return -EINVAL;
	if (get_le16(buf + 4) != BLOB_VERSION) {
		gw_err(SUBSYS, "%s: state blob version %u, this VMM reads %u", vmm->name,
		       get_le16(buf + 4), BLOB_VERSION);
		return -EINVAL;
	}
	if (get_le16(buf + 6) != HDR_LEN || get_le32(buf + 8) != index ||
	    get_le32(buf + 12) != vmm->nr_vcpus || get_le32(buf + 16) != len - HDR_LEN ||
	    get_le32(buf + 20) != 0)
		return -EINVAL;
	for (off = HDR_LEN; off < len;) {
		uint16_t type;
		uint32_t n;
		size_t padded;

		if (len - off < SEC_HDR_LEN)
			return -EINVAL;
		type = get_le16(buf + off);
		n = get_le32(buf + off + 4);
		if (type == 0 || type >= SEC_MAX_ || get_le16(buf + off + 2) != 0 || s->data[type])
			return -EINVAL;
		off += SEC_HDR_LEN;
		padded = (size_t)n + (8 - n % 8) % 8;
		if (padded > len - off)
			return -EINVAL;
		s->data[type] = buf + off;
		s->len[type] = n;
		for (size_t i = n; i < padded; i++)
			if (buf[off + i])
				return -EINVAL;
		off += padded;
	}
	return 0;
}

/* A section that must be present with exactly n bytes (optional: may be absent). */
static bool sec_ok(const struct sections *s, enum sec_type t, size_t n, bool optional)
{
	if (!s->data[t])
		return optional;
	return s->len[t] == n;
}

/* ---- vCPU state ---- */

static int vcpu_save_locked(struct gw_vmm *vmm, struct gw_vcpu *vcpu, struct gw_state_caps *c,
			    struct wbuf *w)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} msrs;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	uint8_t *xsave = NULL;
	uint32_t flags;
	int r = 0;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0 || ioctl(vcpu->fd, KVM_GET_FPU, &fpu) < 0)
		return -errno;
	put_section(w, SEC_REGS, &regs, sizeof(regs));
	put_section(w, SEC_SREGS, &sregs, sizeof(sregs));
	put_section(w, SEC_FPU, &fpu, sizeof(fpu));
	if (c->xsave_size) {
		xsave = calloc(1, c->xsave_size);
		if (!xsave)
			return -ENOMEM;
		if (ioctl(vcpu->fd, c->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0) {
			r = -errno;
			goto out;
		}
		put_section(w, SEC_XSAVE, xsave, c->xsave_size);
	}
	if (c->xcrs) {
		struct kvm_xcrs xcrs;

		if (ioctl(vcpu->fd, KVM_GET_XCRS, &xcrs) < 0) {
			r = -errno;
			goto out;
		}
		put_section(w, SEC_XCRS, &xcrs, sizeof(xcrs));
	}
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = c->nr_msrs;
	for (unsigned i = 0; i < c->nr_msrs; i++)
		msrs.e[i].index = c->msrs[i];
	r = ioctl(vcpu->fd, KVM_GET_MSRS, &msrs);
	if (r != (int)c->nr_msrs) {
		r = r < 0 ? -errno : -EIO;
		gw_err(SUBSYS, "%s: vcpu %u: KVM_GET_MSRS read %d of %u", vmm->name, vcpu->index, r,
		       c->nr_msrs);
		goto out;
	}
	r = 0;
	put_section(w, SEC_MSRS, &msrs, sizeof(msrs.hdr) + c->nr_msrs * sizeof(msrs.e[0]));
	if (c->events) {
		struct kvm_vcpu_events ev;

		if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0) {
			r = -errno;
			goto out;
		}
		put_section(w, SEC_EVENTS, &ev, sizeof(ev));
	}
	if (c->debugregs) {
		struct kvm_debugregs dr;

		if (ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &dr) < 0) {
			r = -errno;
			goto out;
		}
		put_section(w, SEC_DEBUGREGS, &dr, sizeof(dr));
	}
	flags = vcpu->stopped ? GODWIT_STOPPED : 0;
	{
		uint8_t g[8] = {(uint8_t)flags, 0, 0, 0, 0, 0, 0, 0};

		put_section(w, SEC_GODWIT, g, sizeof(g));
	}
out:
	free(xsave);
	return r;
}

int gw_vmm_vcpu_save(struct gw_vmm *vmm, unsigned idx, uint8_t *buf, size_t cap, size_t *len)
{
	struct wbuf w = {.p = buf, .cap = buf ? cap : 0};
	struct gw_state_caps *c;
	int r;

	if (idx >= vmm->nr_vcpus || !len)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_PAUSED) {
		r = -EINVAL;
		goto out;
	}
	r = caps_get(vmm, &c);
	if (r)
		goto out;
	put_header(&w, VCPU_MAGIC, idx, vmm->nr_vcpus);
	r = vcpu_save_locked(vmm, &vmm->vcpus[idx], c, &w);
	if (r) {
		gw_err(SUBSYS, "%s: saving vcpu %u: %s", vmm->name, idx, strerror(-r));
		goto out;
	}
	r = finish(&w, len);
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}

/* Everything a restore needs is checked here, before the first KVM call. */
static int vcpu_blob_check(struct gw_vmm *vmm, struct gw_state_caps *c, const struct sections *s)
{
	const struct kvm_msrs *mh;
	const uint8_t *g;

	if (!sec_ok(s, SEC_REGS, sizeof(struct kvm_regs), false) ||
	    !sec_ok(s, SEC_SREGS, sizeof(struct kvm_sregs), false) ||
	    !sec_ok(s, SEC_FPU, sizeof(struct kvm_fpu), false) ||
	    !sec_ok(s, SEC_GODWIT, 8, false) || !s->data[SEC_MSRS] ||
	    !sec_ok(s, SEC_XCRS, sizeof(struct kvm_xcrs), true) ||
	    !sec_ok(s, SEC_EVENTS, sizeof(struct kvm_vcpu_events), true) ||
	    !sec_ok(s, SEC_DEBUGREGS, sizeof(struct kvm_debugregs), true) ||
	    (s->data[SEC_XSAVE] && s->len[SEC_XSAVE] != c->xsave_size) || s->data[SEC_VMINFO])
		return -EINVAL;
	if ((s->data[SEC_XCRS] && !c->xcrs) || (s->data[SEC_EVENTS] && !c->events) ||
	    (s->data[SEC_DEBUGREGS] && !c->debugregs))
		return -EINVAL;
	if (s->data[SEC_XCRS]) {
		struct kvm_xcrs x;

		memcpy(&x, s->data[SEC_XCRS], sizeof(x));
		if (x.nr_xcrs > KVM_MAX_XCRS)
			return -EINVAL;
	}
	g = s->data[SEC_GODWIT];
	if (get_le32(g) & ~GODWIT_STOPPED || get_le32(g + 4))
		return -EINVAL;
	/* MSRs: header, then entries; every index one this KVM lists and we want */
	if (s->len[SEC_MSRS] < sizeof(struct kvm_msrs))
		return -EINVAL;
	mh = (const struct kvm_msrs *)(const void *)s->data[SEC_MSRS];
	if (mh->nmsrs > MAX_MSRS ||
	    s->len[SEC_MSRS] != sizeof(struct kvm_msrs) + mh->nmsrs * sizeof(struct kvm_msr_entry))
		return -EINVAL;
	for (uint32_t i = 0; i < mh->nmsrs; i++) {
		struct kvm_msr_entry e;
		bool known = false;

		memcpy(&e, s->data[SEC_MSRS] + sizeof(struct kvm_msrs) + i * sizeof(e), sizeof(e));
		for (unsigned k = 0; k < c->nr_msrs; k++)
			known |= c->msrs[k] == e.index;
		if (!known || e.reserved) {
			gw_err(SUBSYS, "%s: state blob carries MSR 0x%x this host cannot restore",
			       vmm->name, e.index);
			return -EINVAL;
		}
	}
	return 0;
}

static int vcpu_apply(struct gw_vcpu *vcpu, const struct sections *s)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} msrs;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	int r;

	memcpy(&sregs, s->data[SEC_SREGS], sizeof(sregs));
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (s->data[SEC_XCRS]) {
		struct kvm_xcrs xcrs;

		memcpy(&xcrs, s->data[SEC_XCRS], sizeof(xcrs));
		if (ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) < 0)
			return -errno;
	}
	memcpy(&fpu, s->data[SEC_FPU], sizeof(fpu));
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	if (s->data[SEC_XSAVE]) {
		/* KVM_SET_XSAVE reads the whole (XSAVE2-sized) area from user memory */
		void *x = malloc(s->len[SEC_XSAVE]);

		if (!x)
			return -ENOMEM;
		memcpy(x, s->data[SEC_XSAVE], s->len[SEC_XSAVE]);
		r = ioctl(vcpu->fd, KVM_SET_XSAVE, x) < 0 ? -errno : 0;
		free(x);
		if (r)
			return r;
	}
	memcpy(&regs, s->data[SEC_REGS], sizeof(regs));
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	memcpy(&msrs, s->data[SEC_MSRS], s->len[SEC_MSRS]);
	r = ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);
	if (r != (int)msrs.hdr.nmsrs)
		return r < 0 ? -errno : -EIO;
	if (s->data[SEC_EVENTS]) {
		struct kvm_vcpu_events ev;

		memcpy(&ev, s->data[SEC_EVENTS], sizeof(ev));
		if (ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
			return -errno;
	}
	if (s->data[SEC_DEBUGREGS]) {
		struct kvm_debugregs dr;

		memcpy(&dr, s->data[SEC_DEBUGREGS], sizeof(dr));
		if (ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &dr) < 0)
			return -errno;
	}
	return 0;
}

int gw_vmm_vcpu_restore(struct gw_vmm *vmm, unsigned idx, const uint8_t *buf, size_t len)
{
	struct gw_state_caps *c;
	struct gw_vcpu *vcpu;
	struct sections s;
	bool stopped;
	int r;

	if (idx >= vmm->nr_vcpus)
		return -EINVAL;
	vcpu = &vmm->vcpus[idx];
	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_CREATED) {
		r = -EINVAL;
		goto out;
	}
	r = caps_get(vmm, &c);
	if (r)
		goto out;
	r = parse(vmm, buf, len, VCPU_MAGIC, idx, &s);
	if (!r)
		r = vcpu_blob_check(vmm, c, &s);
	if (r) {
		gw_err(SUBSYS,
		       "%s: vcpu %u state blob of %zu bytes refused (corrupt, truncated "
		       "or for another VM shape)",
		       vmm->name, idx, len);
		goto out;
	}
	r = vcpu_apply(vcpu, &s);
	if (r) {
		gw_err(SUBSYS, "%s: restoring vcpu %u: %s", vmm->name, idx, strerror(-r));
		goto out;
	}
	stopped = get_le32(s.data[SEC_GODWIT]) & GODWIT_STOPPED;
	if (stopped != vcpu->stopped) {
		vcpu->stopped = stopped;
		if (stopped)
			vmm->nr_stopped++;
		else
			vmm->nr_stopped--;
	}
	vcpu->restored = true;
	gw_debug(SUBSYS, "%s: vcpu %u restored (%zu bytes%s)", vmm->name, idx, len,
		 stopped ? ", stopped" : "");
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}

/* ---- VM-wide state ---- */

int gw_vmm_vm_save(struct gw_vmm *vmm, uint8_t *buf, size_t cap, size_t *len)
{
	struct wbuf w = {.p = buf, .cap = buf ? cap : 0};
	struct wbuf info;
	uint8_t raw[16];
	int r;

	if (!len)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_PAUSED) {
		r = -EINVAL;
		goto out;
	}
	info = (struct wbuf){.p = raw, .cap = sizeof(raw)};
	put_le64(&info, vmm->ram_size);
	put_le32(&info, vmm->nr_vcpus);
	put_le32(&info, vmm->tsc_khz);
	put_header(&w, VM_MAGIC, 0, vmm->nr_vcpus);
	put_section(&w, SEC_VMINFO, raw, sizeof(raw));
	r = finish(&w, len);
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}

int gw_vmm_vm_restore(struct gw_vmm *vmm, const uint8_t *buf, size_t len)
{
	struct sections s;
	uint32_t khz;
	int r;

	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_CREATED) {
		r = -EINVAL;
		goto out;
	}
	r = parse(vmm, buf, len, VM_MAGIC, 0, &s);
	if (r)
		goto bad;
	for (int t = 1; t < SEC_MAX_; t++)
		if (t != SEC_VMINFO && s.data[t])
			goto bad;
	if (!sec_ok(&s, SEC_VMINFO, 16, false) || get_le64(s.data[SEC_VMINFO]) != vmm->ram_size ||
	    get_le32(s.data[SEC_VMINFO] + 8) != vmm->nr_vcpus)
		goto bad;
	khz = get_le32(s.data[SEC_VMINFO] + 12);
	if (khz && vmm->tsc_khz &&
	    (uint64_t)(khz > vmm->tsc_khz ? khz - vmm->tsc_khz : vmm->tsc_khz - khz) * 1000 >
		vmm->tsc_khz) {
		gw_err(SUBSYS,
		       "%s: guest TSC runs at %u kHz, this host at %u kHz and KVM cannot "
		       "scale it (no KVM_CAP_TSC_CONTROL)",
		       vmm->name, khz, vmm->tsc_khz);
		r = -ENOTSUP;
		goto out;
	}
	if (khz != vmm->tsc_khz)
		gw_warn(SUBSYS, "%s: guest TSC %u kHz, host %u kHz (within 0.1 %%)", vmm->name, khz,
			vmm->tsc_khz);
	vmm->tsc_khz = khz ? khz : vmm->tsc_khz;
	r = 0;
	goto out;
bad:
	gw_err(SUBSYS, "%s: VM state blob of %zu bytes refused", vmm->name, len);
	r = -EINVAL;
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}
