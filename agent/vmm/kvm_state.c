/* kvm_state.c -- the KVM backend's vCPU state: what KVM holds of a vCPU, saved into and
 * restored from state-blob sections.
 *
 * The KVM backend's sections of a vCPU blob (container: vmm_state.c, types: vmm_blob.h):
 * REGS, SREGS, FPU, MSRS always; XSAVE, XCRS, EVENTS and DEBUGREGS when this KVM has them.
 * Restore order: sregs, xcrs, fpu, xsave, regs, msrs, events, debugregs.
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
#include "vmm_backend.h"
#include "vmm_blob.h"

#define SUBSYS "kvm-state"

#define MAX_MSRS  32
#define XSAVE_MAX (64 * 1024)

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

void gw_kvm_state_destroy(struct gw_vmm *vmm)
{
	free(vmm->state_caps);
	vmm->state_caps = NULL;
}

/* ---- vCPU state ---- */

static int vcpu_save_locked(struct gw_vmm *vmm, struct gw_vcpu *vcpu, struct gw_state_caps *c,
			    struct gw_blob_writer *w)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} msrs;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	uint8_t *xsave = NULL;
	int r = 0;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0 || ioctl(vcpu->fd, KVM_GET_FPU, &fpu) < 0)
		return -errno;
	gw_blob_put_section(w, GW_SEC_REGS, &regs, sizeof(regs));
	gw_blob_put_section(w, GW_SEC_SREGS, &sregs, sizeof(sregs));
	gw_blob_put_section(w, GW_SEC_FPU, &fpu, sizeof(fpu));
	if (c->xsave_size) {
		xsave = calloc(1, c->xsave_size);
		if (!xsave)
			return -ENOMEM;
		if (ioctl(vcpu->fd, c->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0) {
			r = -errno;
			goto out;
		}
		gw_blob_put_section(w, GW_SEC_XSAVE, xsave, c->xsave_size);
	}
	if (c->xcrs) {
		struct kvm_xcrs xcrs;

		if (ioctl(vcpu->fd, KVM_GET_XCRS, &xcrs) < 0) {
			r = -errno;
			goto out;
		}
		gw_blob_put_section(w, GW_SEC_XCRS, &xcrs, sizeof(xcrs));
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
	gw_blob_put_section(w, GW_SEC_MSRS, &msrs,
			    sizeof(msrs.hdr) + c->nr_msrs * sizeof(msrs.e[0]));
	if (c->events) {
		struct kvm_vcpu_events ev;

		if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0) {
			r = -errno;
			goto out;
		}
		gw_blob_put_section(w, GW_SEC_EVENTS, &ev, sizeof(ev));
	}
	if (c->debugregs) {
		struct kvm_debugregs dr;

		if (ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &dr) < 0) {
			r = -errno;
			goto out;
		}
		gw_blob_put_section(w, GW_SEC_DEBUGREGS, &dr, sizeof(dr));
	}
out:
	free(xsave);
	return r;
}

/* Everything a restore needs is checked here, before the first KVM call. */
static int vcpu_blob_check(struct gw_vmm *vmm, struct gw_state_caps *c,
			   const struct gw_blob_sections *s)
{
	const struct kvm_msrs *mh;

	if (!gw_blob_sec_ok(s, GW_SEC_REGS, sizeof(struct kvm_regs), false) ||
	    !gw_blob_sec_ok(s, GW_SEC_SREGS, sizeof(struct kvm_sregs), false) ||
	    !gw_blob_sec_ok(s, GW_SEC_FPU, sizeof(struct kvm_fpu), false) ||
	    !s->data[GW_SEC_MSRS] ||
	    !gw_blob_sec_ok(s, GW_SEC_XCRS, sizeof(struct kvm_xcrs), true) ||
	    !gw_blob_sec_ok(s, GW_SEC_EVENTS, sizeof(struct kvm_vcpu_events), true) ||
	    !gw_blob_sec_ok(s, GW_SEC_DEBUGREGS, sizeof(struct kvm_debugregs), true) ||
	    (s->data[GW_SEC_XSAVE] && s->len[GW_SEC_XSAVE] != c->xsave_size) ||
	    s->data[GW_SEC_VMINFO])
		return -EINVAL;
	if ((s->data[GW_SEC_XCRS] && !c->xcrs) || (s->data[GW_SEC_EVENTS] && !c->events) ||
	    (s->data[GW_SEC_DEBUGREGS] && !c->debugregs))
		return -EINVAL;
	if (s->data[GW_SEC_XCRS]) {
		struct kvm_xcrs x;

		memcpy(&x, s->data[GW_SEC_XCRS], sizeof(x));
		if (x.nr_xcrs > KVM_MAX_XCRS)
			return -EINVAL;
	}
	/* MSRs: header, then entries; every index one this KVM lists and we want */
	if (s->len[GW_SEC_MSRS] < sizeof(struct kvm_msrs))
		return -EINVAL;
	mh = (const struct kvm_msrs *)(const void *)s->data[GW_SEC_MSRS];
	if (mh->nmsrs > MAX_MSRS ||
	    s->len[GW_SEC_MSRS] !=
		sizeof(struct kvm_msrs) + mh->nmsrs * sizeof(struct kvm_msr_entry))
		return -EINVAL;
	for (uint32_t i = 0; i < mh->nmsrs; i++) {
		struct kvm_msr_entry e;
		bool known = false;

		memcpy(&e, s->data[GW_SEC_MSRS] + sizeof(struct kvm_msrs) + i * sizeof(e),
		       sizeof(e));
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

static int vcpu_apply(struct gw_vcpu *vcpu, const struct gw_blob_sections *s)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} msrs;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	int r;

	memcpy(&sregs, s->data[GW_SEC_SREGS], sizeof(sregs));
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (s->data[GW_SEC_XCRS]) {
		struct kvm_xcrs xcrs;

		memcpy(&xcrs, s->data[GW_SEC_XCRS], sizeof(xcrs));
		if (ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) < 0)
			return -errno;
	}
	memcpy(&fpu, s->data[GW_SEC_FPU], sizeof(fpu));
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	if (s->data[GW_SEC_XSAVE]) {
		/* KVM_SET_XSAVE reads the whole (XSAVE2-sized) area from user memory */
		void *x = malloc(s->len[GW_SEC_XSAVE]);

		if (!x)
			return -ENOMEM;
		memcpy(x, s->data[GW_SEC_XSAVE], s->len[GW_SEC_XSAVE]);
		r = ioctl(vcpu->fd, KVM_SET_XSAVE, x) < 0 ? -errno : 0;
		free(x);
		if (r)
			return r;
	}
	memcpy(&regs, s->data[GW_SEC_REGS], sizeof(regs));
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	memcpy(&msrs, s->data[GW_SEC_MSRS], s->len[GW_SEC_MSRS]);
	r = ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);
	if (r != (int)msrs.hdr.nmsrs)
		return r < 0 ? -errno : -EIO;
	if (s->data[GW_SEC_EVENTS]) {
		struct kvm_vcpu_events ev;

		memcpy(&ev, s->data[GW_SEC_EVENTS], sizeof(ev));
		if (ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
			return -errno;
	}
	if (s->data[GW_SEC_DEBUGREGS]) {
		struct kvm_debugregs dr;

		memcpy(&dr, s->data[GW_SEC_DEBUGREGS], sizeof(dr));
		if (ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &dr) < 0)
			return -errno;
	}
	return 0;
}

/* ---- backend ops (vmm->lock held) ---- */

int gw_kvm_vcpu_save(struct gw_vcpu *vcpu, struct gw_blob_writer *w)
{
	struct gw_state_caps *c;
	int r = caps_get(vcpu->vmm, &c);

	if (r)
		return r;
	return vcpu_save_locked(vcpu->vmm, vcpu, c, w);
}

int gw_kvm_vcpu_restore(struct gw_vcpu *vcpu, const struct gw_blob_sections *s)
{
	struct gw_state_caps *c;
	int r = caps_get(vcpu->vmm, &c);

	if (!r)
		r = vcpu_blob_check(vcpu->vmm, c, s);
	if (!r)
		r = vcpu_apply(vcpu, s);
	return r;
}
