/* faulter.c -- test guest that ends its VM a chosen way: crash, clean exit or vCPU stops. */
#include "guest_rt.h"

#define PTE_P	    1ull
#define PTE_PS	    0x80ull
#define PTE_ADDR(e) ((e)&0x000ffffffffff000ull)

/* Map the 2 MiB just past the end of RAM (identity, user, writable) by editing the VMM's
 * page tables, which the ABI leaves user-writable at PML4 = 0x1000 (agent/vmm.h). Not
 * present before, so nothing is cached in the TLB and no invlpg is needed. Returns false
 * when the tables do not have the expected shape (then the write page-faults instead). */
static uint64_t extra_pd[512] __attribute__((aligned(4096)));

static bool map_past_ram(uint64_t ram)
{
	volatile uint64_t *pml4 = (volatile uint64_t *)(uintptr_t)0x1000;
	uint64_t e = pml4[(ram >> 39) & 511];
	if (!(e & PTE_P) || PTE_ADDR(e) + GR_PAGE > ram)
		return false;
	volatile uint64_t *pdpt = (volatile uint64_t *)(uintptr_t)PTE_ADDR(e);
	e = pdpt[(ram >> 30) & 511];
	if (!(e & PTE_P)) {
		/* RAM ends on a GiB boundary: hang a page directory of our own there. */
		pdpt[(ram >> 30) & 511] = (uint64_t)(uintptr_t)extra_pd | 0x7;
		e = pdpt[(ram >> 30) & 511];
	}
	if ((e & PTE_PS) || PTE_ADDR(e) + GR_PAGE > ram)
		return false;
	volatile uint64_t *pd = (volatile uint64_t *)(uintptr_t)PTE_ADDR(e);
	e = pd[(ram >> 21) & 511];
	if (e & PTE_P)
		return true;						  /* already mapped */
	pd[(ram >> 21) & 511] = (ram & ~(2 * GR_MIB - 1)) | PTE_PS | 0x7; /* P, RW, US */
	return true;
}

void guest_main(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t khz)
{
	char mode[32];
	bool ok;
	uint64_t delay = cmdline_get_u64_ok(cmdline, "delay", 0, &ok);

	if (!cmdline_get_str(cmdline, "mode", mode, sizeof(mode)) || !ok) {
		if (vcpu == 0)
			gprintf("faulter error: need "
				"mode=port|inport|mmio|pagefault|ud2|hlt|exit:<n>|vcpustop "
				"[delay=<ms>]\n");
		vm_exit(GR_EXIT_BADARG);
	}
	if (strcmp(mode, "vcpustop") == 0) {
		gprintf("faulter vcpu=%lu mode=vcpustop\n", vcpu);
		if (delay)
			delay_ms(delay);
		vcpu_stop();
	}
	/* Every other mode acts on vCPU 0 only; the others stop themselves. */
	if (vcpu != 0)
		vcpu_stop();

	uint64_t status = 0;
	if (memcmp(mode, "exit:", 5) == 0) {
		const char *p = mode + 5;
		if (!*p)
			ok = false;
		for (; *p; p++) {
			if (*p < '0' || *p > '9' || status > 255) {
				ok = false;
				break;
			}
			status = status * 10 + (uint64_t)(*p - '0');
		}
		if (!ok || status > 255) {
			gprintf("faulter error: exit status must be 0..255\n");
			vm_exit(GR_EXIT_BADARG);
		}
	} else if (strcmp(mode, "port") && strcmp(mode, "inport") && strcmp(mode, "mmio") &&
		   strcmp(mode, "pagefault") && strcmp(mode, "ud2") && strcmp(mode, "hlt")) {
		gprintf("faulter error: unknown mode=%s\n", mode);
		vm_exit(GR_EXIT_BADARG);
	}

	gprintf("faulter mode=%s\n", mode);
	if (delay)
		delay_ms(delay);

	if (memcmp(mode, "exit:", 5) == 0) {
		vm_exit((uint8_t)status);
	} else if (strcmp(mode, "port") == 0) {
		outb(0x80, 0x42); /* unknown port: crash */
	} else if (strcmp(mode, "inport") == 0) {
		(void)inb(0x60); /* unknown port: crash */
	} else if (strcmp(mode, "mmio") == 0) {
		/* RAM + 4 KiB, mapped by us but backed by no memory: an MMIO exit. If the
		 * tables could not be edited this is a page fault (triple fault) instead. */
		if (!map_past_ram(ram))
			gprintf("faulter: page tables not as expected, expect a page fault\n");
		*(volatile uint64_t *)(uintptr_t)(ram + 4096) = 0x42;
	} else if (strcmp(mode, "pagefault") == 0) {
		/* RAM + 4 KiB is not mapped by the VMM: #PF with no IDT, a triple fault. */
		*(volatile uint64_t *)(uintptr_t)(ram + 4096) = 0x42;
	} else if (strcmp(mode, "ud2") == 0) {
		__asm__ volatile("ud2"); /* #UD, no IDT: triple fault */
	} else if (strcmp(mode, "hlt") == 0) {
		__asm__ volatile("hlt"); /* privileged at CPL 3: #GP, triple fault */
	}
	/* Not reached when the VMM behaves; say so if it did not stop the VM. */
	gprintf("faulter error: mode=%s did not stop the VM\n", mode);
	vm_exit(1);
}
