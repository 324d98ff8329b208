/* vmm_loader.c -- guest image loading (flat, ELF64), page tables, GDT/TSS, command line. */
#include "vmm_internal.h"

#include <elf.h>
#include <stdbool.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Guest-physical addresses of the boot structures (see the layout in vmm.h). */
#define GDT_GPA	 GW_VMM_GDT_GPA
#define TSS_GPA	 GW_VMM_TSS_GPA
#define PML4_GPA GW_VMM_PML4_GPA
#define PDPT_GPA 0x2000ull
#define PD_GPA	 0x3000ull

#define PAGE_2M (2ull << 20)
#define PAGE_1G (1ull << 30)

/* Page-table entry bits: present, writable, user, accessed, dirty, 2 MiB page. Accessed
 * and dirty are preset so that the MMU never has to write back into the tables. */
#define PTE_P	   0x001ull
#define PTE_RW	   0x002ull
#define PTE_US	   0x004ull
#define PTE_A	   0x020ull
#define PTE_D	   0x040ull
#define PTE_PS	   0x080ull
#define PTE_TABLE  (PTE_P | PTE_RW | PTE_US | PTE_A)
#define PTE_LEAF2M (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D | PTE_PS)

/* GDT descriptors (accessed bit preset, 4 KiB granularity, limit 0xfffff). */
#define GDT_CODE64_DPL0 0x00af9b000000ffffull
#define GDT_DATA_DPL0	0x00cf93000000ffffull
#define GDT_CODE64_DPL3 0x00affb000000ffffull
#define GDT_DATA_DPL3	0x00cff3000000ffffull

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v)); /* x86 guest, x86 host: little endian both */
}

/* Highest guest-physical address (exclusive) an image may occupy: below the stacks. */
static int image_limit(uint64_t ram_size, unsigned vcpus, uint64_t *limit, char *err, size_t errlen)
{
	uint64_t stacks = (uint64_t)vcpus * GW_VMM_STACK_STRIDE;

	if (vcpus == 0 || vcpus > GW_VMM_MAX_VCPUS) {
		gw_vmm_set_err(err, errlen, "invalid vCPU count %u", vcpus);
		return -EINVAL;
	}
	if (ram_size <= GW_VMM_IMAGE_BASE + stacks) {
		gw_vmm_set_err(err, errlen, "RAM of %llu bytes leaves no room for an image",
			       (unsigned long long)ram_size);
		return -E2BIG;
	}
	*limit = ram_size - stacks;
	return 0;
}

static int load_flat(uint8_t *ram, uint64_t limit, const uint8_t *image, size_t len,
		     uint64_t *entry, char *err, size_t errlen)
{
	if (len > limit - GW_VMM_IMAGE_BASE) {
		gw_vmm_set_err(err, errlen, "flat image of %zu bytes does not fit below 0x%llx",
			       len, (unsigned long long)limit);
		return -E2BIG;
	}
	memcpy(ram + GW_VMM_IMAGE_BASE, image, len);
	*entry = GW_VMM_IMAGE_BASE;
	return 0;
}

/* Check one PT_LOAD program header against the image and the usable RAM window. */
static int check_segment(const Elf64_Phdr *ph, unsigned idx, size_t image_len, uint64_t limit,
			 char *err, size_t errlen)
{
	if (ph->p_filesz > ph->p_memsz) {
		gw_vmm_set_err(err, errlen, "ELF segment %u: file size exceeds memory size", idx);
		return -EINVAL;
	}
	if (ph->p_offset > image_len || ph->p_filesz > image_len - ph->p_offset) {
		gw_vmm_set_err(err, errlen, "ELF segment %u: file data beyond the end of the image",
			       idx);
		return -EINVAL;
	}
	if (ph->p_vaddr != ph->p_paddr) {
		gw_vmm_set_err(
		    err, errlen,
		    "ELF segment %u: virtual 0x%llx != physical 0x%llx (RAM is identity-mapped)",
		    idx, (unsigned long long)ph->p_vaddr, (unsigned long long)ph->p_paddr);
		return -EINVAL;
	}
	if (ph->p_paddr < GW_VMM_IMAGE_BASE) {
		gw_vmm_set_err(err, errlen, "ELF segment %u at 0x%llx lies below 0x%llx", idx,
			       (unsigned long long)ph->p_paddr, GW_VMM_IMAGE_BASE);
		return -EINVAL;
	}
	if (ph->p_paddr >= limit || ph->p_memsz > limit - ph->p_paddr) {
		gw_vmm_set_err(
		    err, errlen,
		    "ELF segment %u [0x%llx, +0x%llx) does not fit below 0x%llx (RAM minus stacks)",
		    idx, (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz,
		    (unsigned long long)limit);
		return -E2BIG;
	}
	return 0;
}

static int load_elf(uint8_t *ram, uint64_t limit, const uint8_t *image, size_t len, uint64_t *entry,
		    char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	bool entry_ok = false;
	unsigned loaded = 0;

	if (len < sizeof(eh)) {
		gw_vmm_set_err(err, errlen, "truncated ELF header (%zu bytes)", len);
		return -EINVAL;
	}
	memcpy(&eh, image, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		gw_vmm_set_err(err, errlen, "not a little-endian ELF64 image");
		return -EINVAL;
	}
	if (eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
		gw_vmm_set_err(err, errlen, "not an x86-64 ELF executable (type %u, machine %u)",
			       eh.e_type, eh.e_machine);
		return -EINVAL;
	}
	if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
		gw_vmm_set_err(err, errlen, "ELF image without usable program headers");
		return -EINVAL;
	}
	if (eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff) {
		gw_vmm_set_err(err, errlen, "ELF program headers beyond the end of the image");
		return -EINVAL;
	}
	/* validate every segment before copying anything */
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		int r;

		memcpy(&ph, image + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		r = check_segment(&ph, i, len, limit, err, errlen);
		if (r)
			return r;
		if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
			entry_ok = true;
		loaded++;
	}
	if (!loaded) {
		gw_vmm_set_err(err, errlen, "ELF image has no loadable segment");
		return -EINVAL;
	}
	if (!entry_ok) {
		gw_vmm_set_err(err, errlen, "ELF entry 0x%llx is outside every loaded segment",
			       (unsigned long long)eh.e_entry);
		return -EINVAL;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, image + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		memcpy(ram + ph.p_paddr, image + ph.p_offset, ph.p_filesz);
		memset(ram + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	*entry = eh.e_entry;
	return 0;
}

int gw_loader_load(uint8_t *ram, uint64_t ram_size, unsigned vcpus, const uint8_t *image,
		   size_t image_len, uint64_t *entry, char *err, size_t errlen)
{
	uint64_t limit;
	int r;

	if (!image || image_len == 0) {
		gw_vmm_set_err(err, errlen, "empty image");
		return -EINVAL;
	}
	r = image_limit(ram_size, vcpus, &limit, err, errlen);
	if (r)
		return r;
	if (image_len >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0)
		return load_elf(ram, limit, image, image_len, entry, err, errlen);
	return load_flat(ram, limit, image, image_len, entry, err, errlen);
}

/* Page tables: one PML4 entry, one PDPT entry per GiB of RAM, one page directory per GiB
 * with a 2 MiB page for every 2 MiB of RAM. Nothing beyond RAM is mapped. */
static void setup_page_tables(uint8_t *ram, uint64_t ram_size)
{
	uint64_t pages = ram_size / PAGE_2M;
	uint64_t gibs = (ram_size + PAGE_1G - 1) / PAGE_1G;

	memset(ram + PML4_GPA, 0, 4096);
	memset(ram + PDPT_GPA, 0, 4096);
	memset(ram + PD_GPA, 0, gibs * 4096);
	put_u64(ram + PML4_GPA, PDPT_GPA | PTE_TABLE);
	for (uint64_t g = 0; g < gibs; g++)
		put_u64(ram + PDPT_GPA + g * 8, (PD_GPA + g * 4096) | PTE_TABLE);
	for (uint64_t p = 0; p < pages; p++)
		put_u64(ram + PD_GPA + p * 8, (p * PAGE_2M) | PTE_LEAF2M);
}

/* GDT: null, code64 DPL0, data DPL0, code64 DPL3, data DPL3, 16-byte TSS descriptor.
 * The TSS carries an I/O permission bitmap that allows every port: IOPL 3 already allows
 * port I/O on plain KVM, but PVM runs the guest with the hardware IOPL at 0, traps I/O
 * instructions and checks them against this bitmap (see vmm_kvm.c). */
static void setup_gdt_tss(uint8_t *ram)
{
	uint64_t tss_lo;

	/* limit, base, type 0xb (busy 64-bit TSS, as loaded in TR), present */
	tss_lo = (GW_VMM_TSS_LIMIT & 0xffff) | ((uint64_t)(GW_VMM_TSS_LIMIT >> 16) << 48) |
		 ((TSS_GPA & 0xffffff) << 16) | (0x8bull << 40) | (((TSS_GPA >> 24) & 0xff) << 56);
	put_u64(ram + GDT_GPA + 0x00, 0);
	put_u64(ram + GDT_GPA + 0x08, GDT_CODE64_DPL0);
	put_u64(ram + GDT_GPA + 0x10, GDT_DATA_DPL0);
	put_u64(ram + GDT_GPA + 0x18, GDT_CODE64_DPL3);
	put_u64(ram + GDT_GPA + 0x20, GDT_DATA_DPL3);
	put_u64(ram + GDT_GPA + 0x28, tss_lo);
	put_u64(ram + GDT_GPA + 0x30, TSS_GPA >> 32);

	memset(ram + TSS_GPA, 0, GW_VMM_TSS_HDR + GW_VMM_IOBITMAP_LEN);
	ram[TSS_GPA + 102] = GW_VMM_TSS_HDR & 0xff; /* I/O map base: right after the TSS */
	ram[TSS_GPA + 103] = GW_VMM_TSS_HDR >> 8;
	ram[TSS_GPA + GW_VMM_TSS_HDR + GW_VMM_IOBITMAP_LEN] = 0xff;
}

uint64_t gw_loader_setup_tables(uint8_t *ram, uint64_t ram_size)
{
	setup_page_tables(ram, ram_size);
	setup_gdt_tss(ram);
	return PML4_GPA;
}

int gw_loader_put_cmdline(uint8_t *ram, uint64_t ram_size, const char *cmdline)
{
	size_t len;

	if (!cmdline)
		return 0;
	len = strlen(cmdline);
	if (len >= GW_VMM_CMDLINE_MAX)
		return -E2BIG;
	if (GW_VMM_CMDLINE_GPA + GW_VMM_CMDLINE_MAX > ram_size)
		return -EINVAL;
	memcpy(ram + GW_VMM_CMDLINE_GPA, cmdline, len + 1);
	return 0;
}
