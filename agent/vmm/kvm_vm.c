/* kvm_vm.c -- the KVM backend: /dev/kvm, the VM and its memslot, vCPUs, their entry state,
 * the KVM_RUN loop step and its exits (the backend table is at the end).
 *
 * Findings on the PVM nested host (kvm_pvm module, AMD EPYC, kernel 6.18), by experiment:
 * - Entering at CPL 3 through KVM_SET_SREGS (CS DPL 3, EFER.LMA, CR0.PG) is accepted; no
 *   in-kernel irqchip, KVM_SET_TSS_ADDR or identity-map page is needed, so none is made.
 * - RFLAGS.IOPL is NOT honoured: PVM runs guest CPL 3 with the hardware IOPL at 0, so every
 *   IN/OUT raises #GP to the host and KVM's instruction emulator decides. It sees IOPL 0
 *   and falls back to the TSS I/O permission bitmap; with no bitmap the #GP is injected
 *   and, with no IDT (PVM has no event entry set either), becomes a triple fault. Hence the
 *   TSS at 0x81000 carries an all-zero 8 KiB bitmap (see vmm_loader.c). After the first
 *   exit KVM_GET_REGS reports RFLAGS without IOPL and IF (e.g. 0x16), not 0x3002.
 * - Every port access is emulated: about 29 us per IN/OUT round trip to this process
 *   (100 000 INs in 2.9 s), hence "no LSR polling" in guests and console buffering here.
 * - ud2, hlt at CPL 3, a #PF on unmapped memory: KVM_EXIT_SHUTDOWN (triple fault), no
 *   hang. A store to a guest-mapped address outside the memslot: KVM_EXIT_MMIO.
 * - KVM_GET_SUPPORTED_CPUID masks XSAVE/AVX (leaf 1 ECX = 0x81202000: not even SSE3), so
 *   CR4.OSXSAVE stays clear and KVM_SET_XCRS is skipped; SSE/SSE2 and x87 work. But CPUID
 *   at CPL 3 executes natively (no CPUID faulting on this AMD host), so guests see the
 *   host's leaf 1 (XSAVE, OSXSAVE, AVX set) and AVX instructions do execute under the
 *   host's XCR0. Guests must not use AVX: KVM's guest FPU state is not promised to carry it.
 * - KVM_GET_TSC_KHZ works (2596134 kHz); KVM_CAP_TSC_CONTROL is absent (migration between
 *   hosts with different TSC rates cannot scale the guest TSC).
 * - Pause (SIGUSR1 kick + immediate_exit) parks 4 spinning vCPUs on 2 host CPUs in
 *   10-30 ms including the status-file fsync.
 */
#include "vmm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gw_log.h"

#define SUBSYS "kvm"

#include "kvm_int.h"

/* Control-register and flag bits of the entry state. */
#define CR0_PE		 (1ull << 0)
#define CR0_MP		 (1ull << 1)
#define CR0_ET		 (1ull << 4)
#define CR0_NE		 (1ull << 5)
#define CR0_PG		 (1ull << 31)
#define CR4_PAE		 (1ull << 5)
#define CR4_OSFXSR	 (1ull << 9)
#define CR4_OSXMMEXCPT	 (1ull << 10)
#define CR4_OSXSAVE	 (1ull << 18)
#define EFER_LME	 (1ull << 8)
#define EFER_LMA	 (1ull << 10)
#define ENTRY_RFLAGS	 0x3002ull /* IOPL 3, reserved bit 1, IF clear */
#define XCR0_X87_SSE_AVX 0x7ull

#define CPUID_1_ECX_XSAVE (1u << 26)
#define CPUID_1_ECX_AVX	  (1u << 28)

/* KVM_GET_SUPPORTED_CPUID, growing the array until the kernel's table fits. */
static struct kvm_cpuid2 *get_supported_cpuid(int kvm_fd)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	errno = E2BIG;
	return NULL;
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

/* XSAVE with x87|SSE|AVX state usable in the guest? Then CR4.OSXSAVE and XCR0 = 7. */
static bool cpuid_has_avx_xsave(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *l1 = cpuid_find(c, 1, 0), *ld = cpuid_find(c, 0xd, 0);

	if (!l1 || !ld)
		return false;
	return (l1->ecx & CPUID_1_ECX_XSAVE) && (l1->ecx & CPUID_1_ECX_AVX) &&
	       (ld->eax & XCR0_X87_SSE_AVX) == XCR0_X87_SSE_AVX;
}

static void seg_user(struct kvm_segment *s, uint16_t sel, bool code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = code ? 11 : 3; /* execute/read accessed : read/write accessed */
	s->present = 1;
	s->dpl = 3;
	s->db = code ? 0 : 1;
	s->s = 1;
	s->l = code ? 1 : 0;
	s->g = 1;
}

/* The entry state of the guest ABI (vmm.h, docs/design.md) for one vCPU. */
static int vcpu_set_entry_state(struct gw_vmm *vmm, struct gw_vcpu *vcpu, bool has_cmdline)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	seg_user(&sregs.cs, GW_SEL_CODE64_USER, true);
	seg_user(&sregs.ss, GW_SEL_DATA_USER, false);
	seg_user(&sregs.ds, GW_SEL_DATA_USER, false);
	seg_user(&sregs.es, GW_SEL_DATA_USER, false);
	seg_user(&sregs.fs, GW_SEL_DATA_USER, false);
	seg_user(&sregs.gs, GW_SEL_DATA_USER, false);
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = GW_VMM_TSS_GPA;
	sregs.tr.limit = GW_VMM_TSS_LIMIT;
	sregs.tr.selector = GW_SEL_TSS;
	sregs.tr.type = 11; /* busy 64-bit TSS */
	sregs.tr.present = 1;
	sregs.gdt.base = GW_VMM_GDT_GPA;
	sregs.gdt.limit = GW_VMM_GDT_LIMIT;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
	sregs.cr3 = GW_VMM_PML4_GPA;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | (vmm->have_xsave ? CR4_OSXSAVE : 0);
	sregs.efer = EFER_LME | EFER_LMA;
	memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	if (vmm->have_xsave) {
		struct kvm_xcrs xcrs;

		memset(&xcrs, 0, sizeof(xcrs));
		xcrs.nr_xcrs = 1;
		xcrs.xcrs[0].xcr = 0;
		xcrs.xcrs[0].value = XCR0_X87_SSE_AVX;
		if (ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) < 0)
			return -errno;
	}

	memset(&regs, 0, sizeof(regs));
	regs.rip = vmm->entry;
	regs.rsp = vmm->ram_size - (uint64_t)vcpu->index * GW_VMM_STACK_STRIDE;
	regs.rflags = ENTRY_RFLAGS;
	regs.rdi = vmm->ram_size;
	regs.rsi = vcpu->index;
	regs.rdx = has_cmdline ? GW_VMM_CMDLINE_GPA : 0;
	regs.rcx = vmm->tsc_khz;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* Create vCPU idx: fd, kvm_run mapping, CPUID (APIC id patched to the index). */
static int vcpu_create(struct gw_vmm *vmm, unsigned idx, struct kvm_cpuid2 *cpuid, char *err,
		       size_t errlen)
{
	struct gw_vcpu *vcpu = &vmm->vcpus[idx];
	struct kvm_cpuid_entry2 *l1;
	int r;

	vcpu->vmm = vmm;
	vcpu->index = idx;
	vcpu->fd = ioctl(vmm->vm_fd, KVM_CREATE_VCPU, (unsigned long)idx);
	if (vcpu->fd < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "KVM_CREATE_VCPU %u: %s", idx, strerror(errno));
		return r;
	}
	vcpu->run = mmap(NULL, vmm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		r = -errno;
		vcpu->run = NULL;
		gw_vmm_set_err(err, errlen, "mmap of vCPU %u run area: %s", idx, strerror(errno));
		return r;
	}
	r = gw_kvm_dirty_vcpu_init(vmm, vcpu);
	if (r) {
		gw_vmm_set_err(err, errlen, "mmap of vCPU %u dirty ring: %s", idx, strerror(-r));
		return r;
	}
	l1 = cpuid_find(cpuid, 1, 0);
	if (l1)
		l1->ebx = (l1->ebx & 0x00ffffffu) | (idx << 24);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "KVM_SET_CPUID2 on vCPU %u: %s", idx, strerror(errno));
		return r;
	}
	if (idx == 0) {
		int khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);

		if (khz > 0) {
			vmm->tsc_khz = (uint32_t)khz;
		} else {
			gw_warn(SUBSYS, "%s: KVM_GET_TSC_KHZ failed (%s); guests get RCX = 0",
				vmm->name, strerror(errno));
		}
	}
	return 0;
}

/* Open /dev/kvm, create the VM and give it guest RAM (the memfd vmm_core.c mapped) as slot 0
 * at guest-physical 0. */
static int kvm_vm_open(struct gw_vmm *vmm, char *err, size_t errlen)
{
	struct kvm_userspace_memory_region region;
	int r, v;

	vmm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vmm->kvm_fd < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "open /dev/kvm: %s", strerror(errno));
		return r;
	}
	v = ioctl(vmm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		gw_vmm_set_err(err, errlen, "KVM API version %d, expected %d", v, KVM_API_VERSION);
		return -ENOTSUP;
	}
	if (ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		gw_vmm_set_err(err, errlen, "KVM lacks KVM_CAP_IMMEDIATE_EXIT");
		return -ENOTSUP;
	}
	vmm->vm_fd = ioctl(vmm->kvm_fd, KVM_CREATE_VM, 0);
	if (vmm->vm_fd < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return r;
	}
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = vmm->ram_size;
	region.userspace_addr = (uint64_t)(uintptr_t)vmm->ram;
	if (ioctl(vmm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return r;
	}
	r = ioctl(vmm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r <= 0) {
		r = r < 0 ? -errno : -EINVAL;
		gw_vmm_set_err(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(-r));
		return r;
	}
	vmm->run_size = (size_t)r;
	return 0;
}

static int vcpus_create(struct gw_vmm *vmm, bool has_cmdline, char *err, size_t errlen)
{
	struct kvm_cpuid2 *cpuid;
	int r = 0;

	cpuid = get_supported_cpuid(vmm->kvm_fd);
	if (!cpuid) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return r;
	}
	vmm->have_xsave =
	    cpuid_has_avx_xsave(cpuid) && ioctl(vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
		r = vcpu_create(vmm, i, cpuid, err, errlen);
		if (r)
			goto out;
	}
	/* entry state after all vCPUs exist: RCX needs the TSC rate read from vCPU 0; an
	 * incoming VM gets its registers from gw_vmm_vcpu_restore instead */
	for (unsigned i = 0; i < vmm->nr_vcpus && !vmm->incoming; i++) {
		r = vcpu_set_entry_state(vmm, &vmm->vcpus[i], has_cmdline);
		if (r) {
			gw_vmm_set_err(err, errlen, "vCPU %u entry state: %s", i, strerror(-r));
			goto out;
		}
	}
out:
	free(cpuid);
	return r;
}

static int kvm_probe(char *why, size_t len)
{
	int fd, v, r = 0;

	if (getenv("GODWIT_NO_KVM")) {
		snprintf(why, len, "disabled by GODWIT_NO_KVM");
		return -ENODEV;
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return r;
	}
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		snprintf(why, len, "/dev/kvm speaks API %d, not %d", v, KVM_API_VERSION);
		r = -ENOTSUP;
	} else if (ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		snprintf(why, len, "KVM lacks KVM_CAP_IMMEDIATE_EXIT");
		r = -ENOTSUP;
	}
	close(fd);
	return r;
}

static int kvm_vm_create(struct gw_vmm *vmm, bool has_cmdline, char *err, size_t errlen)
{
	int r = kvm_vm_open(vmm, err, errlen);

	if (!r)
		r = gw_kvm_dirty_vm_init(vmm, vmm->dirty_ring_req, err, errlen);
	if (!r)
		r = vcpus_create(vmm, has_cmdline, err, errlen);
	return r;
}

static void kvm_vm_destroy(struct gw_vmm *vmm)
{
	gw_kvm_state_destroy(vmm);
	for (unsigned i = 0; vmm->vcpus && i < vmm->nr_vcpus; i++) {
		struct gw_vcpu *vcpu = &vmm->vcpus[i];

		if (vcpu->run)
			munmap(vcpu->run, vmm->run_size);
		if (vcpu->fd >= 0)
			close(vcpu->fd);
		vcpu->run = NULL;
		vcpu->fd = -1;
	}
	if (vmm->vm_fd >= 0)
		close(vmm->vm_fd);
	if (vmm->kvm_fd >= 0)
		close(vmm->kvm_fd);
	vmm->vm_fd = vmm->kvm_fd = -1;
}

/* ---- the run loop's backend half (on the vCPU's own thread) ---- */

static uint64_t kvm_vcpu_rip(struct gw_vcpu *vcpu)
{
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
		return ~0ull;
	return regs.rip;
}

static int crash(struct gw_vcpu_exit *ex, struct gw_vcpu *vcpu, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int crash(struct gw_vcpu_exit *ex, struct gw_vcpu *vcpu, const char *fmt, ...)
{
	va_list ap;

	ex->kind = GW_EXIT_CRASH;
	ex->rip = kvm_vcpu_rip(vcpu);
	va_start(ap, fmt);
	vsnprintf(ex->reason, sizeof(ex->reason), fmt, ap);
	va_end(ap);
	return 0;
}

/* Called under vmm->lock once the requests were checked: any kick from now on makes the
 * next KVM_RUN return at once. */
static void kvm_vcpu_arm(struct gw_vcpu *vcpu)
{
	vcpu->run->immediate_exit = 0;
}

/* One KVM_RUN, its exit translated for vmm_vcpu.c. */
static int kvm_vcpu_run(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex)
{
	struct kvm_run *run = vcpu->run;

	ex->kind = GW_EXIT_INTR;
	if (ioctl(vcpu->fd, KVM_RUN, 0) < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		ex->kind = GW_EXIT_IO;
		ex->port = run->io.port;
		ex->size = run->io.size;
		ex->in = run->io.direction == KVM_EXIT_IO_IN;
		ex->count = run->io.count;
		ex->data = (uint8_t *)run + run->io.data_offset;
		ex->rip = ~0ull; /* read only when a handler needs it (vcpu_rip) */
		return 0;
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_DIRTY_RING_FULL:
		gw_kvm_dirty_ring_full(vcpu);
		return 0;
	case KVM_EXIT_MMIO:
		return crash(ex, vcpu, "MMIO %s of %u bytes at 0x%llx (no device there)",
			     run->mmio.is_write ? "write" : "read", run->mmio.len,
			     (unsigned long long)run->mmio.phys_addr);
	case KVM_EXIT_SHUTDOWN:
		return crash(ex, vcpu, "triple fault (shutdown)");
	case KVM_EXIT_HLT:
		return crash(ex, vcpu, "hlt (no interrupts ever arrive)");
	case KVM_EXIT_FAIL_ENTRY:
		return crash(ex, vcpu, "VM entry failed, hardware reason 0x%llx",
			     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	case KVM_EXIT_INTERNAL_ERROR:
		return crash(ex, vcpu, "KVM internal error, suberror %u", run->internal.suberror);
	default:
		return crash(ex, vcpu, "unhandled KVM exit reason %u", run->exit_reason);
	}
}

/* KVM completes an I/O exit on the next KVM_RUN (IN data from the run area). */
static bool kvm_vcpu_io_done(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex)
{
	return true;
}

/* Finish the pending I/O instruction so that the parked state is consistent (KVM_RUN
 * returns -EINTR right after completing it). */
static void kvm_vcpu_flush_io(struct gw_vcpu *vcpu)
{
	vcpu->run->immediate_exit = 1;
	ioctl(vcpu->fd, KVM_RUN, 0);
}

static void kvm_vcpu_kick(struct gw_vcpu *vcpu)
{
	vcpu->run->immediate_exit = 1;
	pthread_kill(vcpu->thread, GW_VCPU_KICK_SIGNAL);
}

static void kvm_vcpu_kick_async(struct gw_vcpu *vcpu)
{
	vcpu->run->immediate_exit = 1;
}

const struct gw_vmm_backend gw_vmm_backend_kvm = {
    .name = "kvm",
    .probe = kvm_probe,
    .vm_create = kvm_vm_create,
    .vm_destroy = kvm_vm_destroy,
    .vcpu_arm = kvm_vcpu_arm,
    .vcpu_rip = kvm_vcpu_rip,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_io_done = kvm_vcpu_io_done,
    .vcpu_flush_io = kvm_vcpu_flush_io,
    .vcpu_kick = kvm_vcpu_kick,
    .vcpu_kick_async = kvm_vcpu_kick_async,
    .vcpu_save = gw_kvm_vcpu_save,
    .vcpu_restore = gw_kvm_vcpu_restore,
    .dirty_mode = gw_kvm_dirty_mode,
    .dirty_enable = gw_kvm_dirty_enable,
    .dirty_fetch = gw_kvm_dirty_fetch,
    .dirty_reprotect = gw_kvm_dirty_reprotect,
    .dirty_disable = gw_kvm_dirty_disable,
    .dirty_destroy = gw_kvm_dirty_destroy,
};
