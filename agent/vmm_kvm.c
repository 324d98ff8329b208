/* vmm_kvm.c -- micro-VMM set-up: /dev/kvm, the VM, memfd guest RAM, vCPUs and their entry state.
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
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "kvm"

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

void gw_vmm_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *gw_vmm_state_name(enum gw_vmm_state s)
{
	switch (s) {
	case GW_VMM_CREATED:
		return "created";
	case GW_VMM_RUNNING:
		return "running";
	case GW_VMM_PAUSED:
		return "paused";
	case GW_VMM_STOPPED:
		return "stopped";
	case GW_VMM_CRASHED:
		return "crashed";
	}
	return "unknown";
}

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

/* The entry state of the guest ABI (vmm.h, README) for one vCPU. */
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
	r = gw_dirty_vcpu_init(vmm, vcpu);
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

static int check_config(const struct gw_vmm_config *cfg, char *err, size_t errlen)
{
	if (!cfg->name || (!cfg->image_path && !cfg->incoming)) {
		gw_vmm_set_err(err, errlen, "name and image are required");
		return -EINVAL;
	}
	if (cfg->mem_bytes % (2ull << 20) || cfg->mem_bytes < (uint64_t)GW_VMM_MIN_MEM_MIB << 20 ||
	    cfg->mem_bytes > (uint64_t)GW_VMM_MAX_MEM_MIB << 20) {
		gw_vmm_set_err(err, errlen, "memory must be a multiple of 2 MiB in [%d, %d] MiB",
			       GW_VMM_MIN_MEM_MIB, GW_VMM_MAX_MEM_MIB);
		return -EINVAL;
	}
	if (cfg->vcpus < 1 || cfg->vcpus > GW_VMM_MAX_VCPUS) {
		gw_vmm_set_err(err, errlen, "vCPU count must be in [1, %d]", GW_VMM_MAX_VCPUS);
		return -EINVAL;
	}
	return 0;
}

/* Open /dev/kvm, create the VM and its RAM (memfd, one slot at guest-physical 0). */
static int vm_create(struct gw_vmm *vmm, const struct gw_vmm_config *cfg, char *err, size_t errlen)
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
	if (cfg->ram_fd > 0) { /* pre-populated by the agent: resident, zero */
		struct stat sb;
		if (fstat(cfg->ram_fd, &sb) < 0 || (uint64_t)sb.st_size < vmm->ram_size) {
			gw_vmm_set_err(err, errlen, "pool RAM fd %d: too small or unusable",
				       cfg->ram_fd);
			return -EINVAL;
		}
		fcntl(cfg->ram_fd, F_SETFD, FD_CLOEXEC);
		/* a pool larger than this VM: the tail goes back once the migration has ended
		 * (gw_vmm_ram_trim), not now, while the source waits */
		vmm->ram_tail = (uint64_t)sb.st_size > vmm->ram_size;
		vmm->mem_fd = cfg->ram_fd;
		gw_info(SUBSYS, "%s: guest RAM from the agent's pre-populated pool (%llu MiB)",
			cfg->name, (unsigned long long)(sb.st_size >> 20));
	} else {
		vmm->mem_fd = memfd_create("godwit-ram", MFD_CLOEXEC);
	}
	if (vmm->mem_fd < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "memfd_create: %s", strerror(errno));
		return r;
	}
	if (!vmm->ram_tail && ftruncate(vmm->mem_fd, (off_t)vmm->ram_size) < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "ftruncate of guest RAM to %llu bytes: %s",
			       (unsigned long long)vmm->ram_size, strerror(errno));
		return r;
	}
	vmm->ram = mmap(NULL, vmm->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			vmm->mem_fd, 0);
	if (vmm->ram == MAP_FAILED) {
		r = -errno;
		vmm->ram = NULL;
		gw_vmm_set_err(err, errlen, "mmap of guest RAM: %s", strerror(errno));
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

/* Read the image file and place it, the boot tables and the command line in RAM. */
static int load_guest(struct gw_vmm *vmm, const struct gw_vmm_config *cfg, char *err, size_t errlen)
{
	char *image = NULL;
	size_t len = 0;
	int r;

	r = gw_file_read(cfg->image_path, (size_t)vmm->ram_size, &image, &len);
	if (r) {
		gw_vmm_set_err(err, errlen, "read image %s: %s", cfg->image_path, strerror(-r));
		return r;
	}
	r = gw_loader_load(vmm->ram, vmm->ram_size, vmm->nr_vcpus, (const uint8_t *)image, len,
			   &vmm->entry, err, errlen);
	free(image);
	if (r)
		return r;
	gw_loader_setup_tables(vmm->ram, vmm->ram_size);
	r = gw_loader_put_cmdline(vmm->ram, vmm->ram_size, cfg->cmdline);
	if (r) {
		gw_vmm_set_err(err, errlen, "command line longer than %d bytes",
			       GW_VMM_CMDLINE_MAX - 1);
		return r;
	}
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

int gw_vmm_create(const struct gw_vmm_config *cfg, struct gw_vmm **out, char *err, size_t errlen)
{
	pthread_condattr_t cattr;
	struct gw_vmm *vmm;
	int r;

	r = check_config(cfg, err, errlen);
	if (r)
		return r;
	vmm = calloc(1, sizeof(*vmm));
	if (!vmm) {
		gw_vmm_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(vmm->name, sizeof(vmm->name), "%s", cfg->name);
	vmm->console_fd = cfg->console_fd;
	vmm->kvm_fd = vmm->vm_fd = vmm->mem_fd = vmm->event_fd = -1;
	vmm->ram_size = cfg->mem_bytes;
	vmm->nr_vcpus = cfg->vcpus;
	vmm->incoming = cfg->incoming;
	vmm->state = GW_VMM_CREATED;
	pthread_mutex_init(&vmm->lock, NULL);
	/* monotonic: the throttle sleeps with timed waits on it */
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&vmm->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	pthread_mutex_init(&vmm->console_lock, NULL);
	pthread_rwlock_init(&vmm->dirty_lock, NULL);
	vmm->vcpus = calloc(vmm->nr_vcpus, sizeof(*vmm->vcpus));
	if (!vmm->vcpus) {
		r = -ENOMEM;
		gw_vmm_set_err(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < vmm->nr_vcpus; i++)
		vmm->vcpus[i].fd = -1;
	vmm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vmm->event_fd < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	r = vm_create(vmm, cfg, err, errlen);
	if (r)
		goto fail;
	r = gw_dirty_vm_init(vmm, cfg->dirty_ring_entries, err, errlen);
	if (r)
		goto fail;
	if (!vmm->incoming) {
		r = load_guest(vmm, cfg, err, errlen);
		if (r)
			goto fail;
	}
	r = vcpus_create(vmm, cfg->cmdline != NULL, err, errlen);
	if (r)
		goto fail;
	gw_info(SUBSYS,
		"%s: VM created%s: %llu MiB, %u vCPU(s), entry 0x%llx, TSC %u kHz, xsave/avx %s, "
		"dirty log %s",
		vmm->name, vmm->incoming ? " (incoming)" : "",
		(unsigned long long)(vmm->ram_size >> 20), vmm->nr_vcpus,
		(unsigned long long)vmm->entry, vmm->tsc_khz, vmm->have_xsave ? "on" : "off",
		gw_vmm_dirty_mode(vmm));
	*out = vmm;
	return 0;
fail:
	gw_vmm_destroy(vmm);
	return r;
}

void gw_vmm_destroy(struct gw_vmm *vmm)
{
	if (!vmm)
		return;
	gw_vcpu_threads_join(vmm);
	gw_vmm_console_flush(vmm);
	gw_dirty_destroy(vmm);
	gw_state_destroy(vmm);
	if (vmm->vcpus) {
		for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
			struct gw_vcpu *vcpu = &vmm->vcpus[i];

			if (vcpu->run)
				munmap(vcpu->run, vmm->run_size);
			if (vcpu->fd >= 0)
				close(vcpu->fd);
		}
		free(vmm->vcpus);
	}
	if (vmm->vm_fd >= 0)
		close(vmm->vm_fd);
	if (vmm->ram)
		munmap(vmm->ram, vmm->ram_size);
	if (vmm->mem_fd >= 0)
		close(vmm->mem_fd);
	if (vmm->kvm_fd >= 0)
		close(vmm->kvm_fd);
	if (vmm->event_fd >= 0)
		close(vmm->event_fd);
	pthread_rwlock_destroy(&vmm->dirty_lock);
	pthread_mutex_destroy(&vmm->console_lock);
	pthread_cond_destroy(&vmm->cond);
	pthread_mutex_destroy(&vmm->lock);
	free(vmm);
}

uint8_t *gw_vmm_ram(struct gw_vmm *vmm, uint64_t *size)
{
	if (size)
		*size = vmm->ram_size;
	return vmm->ram;
}

unsigned gw_vmm_vcpu_count(struct gw_vmm *vmm)
{
	return vmm->nr_vcpus;
}

int gw_vmm_event_fd(struct gw_vmm *vmm)
{
	return vmm->event_fd;
}

enum gw_vmm_state gw_vmm_get_state(struct gw_vmm *vmm, int *exit_status, char *reason,
				   size_t reason_len)
{
	enum gw_vmm_state s;

	pthread_mutex_lock(&vmm->lock);
	s = vmm->state;
	if (exit_status)
		*exit_status = vmm->exit_status;
	if (reason && reason_len)
		snprintf(reason, reason_len, "%s", vmm->reason);
	pthread_mutex_unlock(&vmm->lock);
	return s;
}

uint64_t gw_vmm_guest_runtime_ns(struct gw_vmm *vmm)
{
	uint64_t ns;

	pthread_mutex_lock(&vmm->lock);
	ns = vmm->runtime_ns;
	if (vmm->state == GW_VMM_RUNNING)
		ns += gw_now_mono_ns() - vmm->run_since_ns;
	pthread_mutex_unlock(&vmm->lock);
	return ns;
}

int gw_vmm_ram_extent(struct gw_vmm *vmm, uint64_t from, uint64_t *start, uint64_t *end)
{
	if (from >= vmm->ram_size)
		return -ENXIO;
	off_t d = lseek(vmm->mem_fd, (off_t)from, SEEK_DATA);
	if (d < 0)
		return -errno;
	if ((uint64_t)d >= vmm->ram_size) /* data only in an untrimmed pool tail */
		return -ENXIO;
	off_t h = lseek(vmm->mem_fd, d, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*start = (uint64_t)d;
	*end = (uint64_t)h < vmm->ram_size ? (uint64_t)h : vmm->ram_size;
	return 0;
}

void gw_vmm_ram_trim(struct gw_vmm *vmm)
{
	struct stat sb;
	if (!vmm->ram_tail)
		return;
	vmm->ram_tail = false;
	if (fstat(vmm->mem_fd, &sb) < 0 || ftruncate(vmm->mem_fd, (off_t)vmm->ram_size) < 0) {
		gw_warn(SUBSYS, "%s: cannot give back pool RAM beyond the guest's: %s", vmm->name,
			strerror(errno));
		return;
	}
	gw_info(SUBSYS, "%s: gave back %llu MiB of pool RAM beyond the guest's", vmm->name,
		(unsigned long long)(((uint64_t)sb.st_size - vmm->ram_size) >> 20));
}
