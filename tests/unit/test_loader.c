/* test_loader.c -- cmocka tests of the micro-VMM loader: images, page tables, GDT/TSS, cmdline. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "vmm.h"
#include "vmm_internal.h"

#define MIB	  (1ull << 20)
#define GIB	  (1ull << 30)
#define RAM_SMALL (6 * MIB)

/* Page-table bits the guest ABI needs: present, writable, user; PS on 2 MiB leaves. */
#define PTE_PRU	    0x7ull
#define PTE_PS	    0x80ull
#define PTE_ADDR(e) ((e)&0x000ffffffffff000ull)

struct fixture {
	uint8_t *ram;
	uint64_t size;
	char err[256];
};

static int setup_ram(void **state, uint64_t size)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->ram = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (f->ram == MAP_FAILED) {
		free(f);
		return -1;
	}
	f->size = size;
	*state = f;
	return 0;
}

static int setup_small(void **state)
{
	return setup_ram(state, RAM_SMALL);
}

static int setup_3g(void **state)
{
	return setup_ram(state, 3 * GIB);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	munmap(f->ram, f->size);
	free(f);
	return 0;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* ---- an in-memory ELF64 image with up to two PT_LOAD segments ---- */

struct seg {
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
	uint8_t fill;
};

struct elf_image {
	uint8_t *buf;
	size_t len;
};

#define SEG_DATA_OFF 0x200

static struct elf_image make_elf(uint64_t entry, const struct seg *segs, unsigned nsegs)
{
	struct elf_image img;
	Elf64_Ehdr eh;
	size_t off = SEG_DATA_OFF;

	img.len = SEG_DATA_OFF;
	for (unsigned i = 0; i < nsegs; i++)
		img.len += segs[i].filesz;
	img.buf = calloc(1, img.len);
	assert_non_null(img.buf);

	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = entry;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = (uint16_t)nsegs;
	memcpy(img.buf, &eh, sizeof(eh));
	for (unsigned i = 0; i < nsegs; i++) {
		Elf64_Phdr ph;

		memset(&ph, 0, sizeof(ph));
		ph.p_type = PT_LOAD;
		ph.p_flags = PF_R | PF_W | PF_X;
		ph.p_offset = off;
		ph.p_vaddr = ph.p_paddr = segs[i].paddr;
		ph.p_filesz = segs[i].filesz;
		ph.p_memsz = segs[i].memsz;
		ph.p_align = 0x1000;
		memcpy(img.buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
		memset(img.buf + off, segs[i].fill, segs[i].filesz);
		off += segs[i].filesz;
	}
	return img;
}

static int load(struct fixture *f, unsigned vcpus, const struct elf_image *img, uint64_t *entry)
{
	f->err[0] = '\0';
	return gw_loader_load(f->ram, f->size, vcpus, img->buf, img->len, entry, f->err,
			      sizeof(f->err));
}

/* ---- invalid inputs ---- */

/* An empty image and a vCPU count of 0 are rejected. */
static void test_load_empty_or_no_vcpus(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 0x90;
	uint64_t entry = 0;

	assert_int_equal(
	    gw_loader_load(f->ram, f->size, 1, &byte, 0, &entry, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(
	    gw_loader_load(f->ram, f->size, 0, &byte, 1, &entry, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(gw_loader_load(f->ram, f->size, GW_VMM_MAX_VCPUS + 1, &byte, 1, &entry,
					f->err, sizeof(f->err)),
			 -EINVAL);
}

/* An image starting with the ELF magic but shorter than an ELF header is rejected. */
static void test_elf_truncated_header(void **state)
{
	struct fixture *f = *state;
	struct seg s = {GW_VMM_IMAGE_BASE, 16, 16, 0xcc};
	struct elf_image img = make_elf(GW_VMM_IMAGE_BASE, &s, 1);
	uint64_t entry;

	img.len = sizeof(Elf64_Ehdr) - 1;
	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	assert_non_null(strstr(f->err, "truncated"));
	img.len = SELFMAG;
	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	free(img.buf);
}

/* Program headers that lie past the end of the file are rejected. */
static void test_elf_phdrs_truncated(void **state)
{
	struct fixture *f = *state;
	struct seg s = {GW_VMM_IMAGE_BASE, 16, 16, 0xcc};
	struct elf_image img = make_elf(GW_VMM_IMAGE_BASE, &s, 1);
	uint64_t entry;

	img.len = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) / 2;
	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	free(img.buf);
}

/* A 32-bit or non-x86-64 ELF is rejected. */
static void test_elf_wrong_class_or_machine(void **state)
{
	struct fixture *f = *state;
	struct seg s = {GW_VMM_IMAGE_BASE, 16, 16, 0xcc};
	struct elf_image img = make_elf(GW_VMM_IMAGE_BASE, &s, 1);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img.buf;
	uint64_t entry;

	eh->e_ident[EI_CLASS] = ELFCLASS32;
	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_machine = EM_AARCH64;
	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	free(img.buf);
}

/* A segment below 0x100000 (where the boot tables live) is rejected. */
static void test_elf_segment_below_base(void **state)
{
	struct fixture *f = *state;
	struct seg s = {GW_VMM_IMAGE_BASE - 0x1000, 0x2000, 0x2000, 0xcc};
	struct elf_image img = make_elf(GW_VMM_IMAGE_BASE, &s, 1);
	uint64_t entry;

	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	assert_non_null(strstr(f->err, "below"));
	free(img.buf);
}

/* A segment beyond the end of RAM is rejected, also when its size would wrap around. */
static void test_elf_segment_outside_ram(void **state)
{
	struct fixture *f = *state;
	struct seg s = {f->size + 0x100000, 16, 16, 0xcc};
	struct elf_image img = make_elf(s.paddr, &s, 1);
	uint64_t entry;

	assert_int_equal(load(f, 1, &img, &entry), -E2BIG);
	free(img.buf);

	struct seg wrap = {GW_VMM_IMAGE_BASE, 16, UINT64_MAX - 0x1000, 0xcc};
	img = make_elf(GW_VMM_IMAGE_BASE, &wrap, 1);
	assert_int_equal(load(f, 1, &img, &entry), -E2BIG);
	free(img.buf);
}

/* A segment reaching into the vCPU stack area (top of RAM - vcpus * 64 KiB) is rejected;
 * the same segment fits with fewer vCPUs. */
static void test_elf_segment_overlaps_stacks(void **state)
{
	struct fixture *f = *state;
	uint64_t top2 = f->size - 2 * GW_VMM_STACK_STRIDE;
	struct seg s = {top2 - 0x1000, 0x100, 0x1000 + 1, 0xcc};
	struct elf_image img = make_elf(s.paddr, &s, 1);
	uint64_t entry;

	assert_int_equal(load(f, 2, &img, &entry), -E2BIG);
	assert_int_equal(load(f, 1, &img, &entry), 0);
	free(img.buf);
}

/* File data past the end of the image, or p_filesz > p_memsz, are rejected. */
static void test_elf_bad_file_sizes(void **state)
{
	struct fixture *f = *state;
	struct seg s = {GW_VMM_IMAGE_BASE, 0x100, 0x100, 0xcc};
	struct elf_image img = make_elf(GW_VMM_IMAGE_BASE, &s, 1);
	Elf64_Phdr *ph = (Elf64_Phdr *)(img.buf + sizeof(Elf64_Ehdr));
	uint64_t entry;

	img.len -= 1;
	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	img.len += 1;
	ph->p_memsz = 0x80;
	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	free(img.buf);
}

/* An entry point outside every loaded segment is rejected (nothing copied). */
static void test_elf_entry_outside_segments(void **state)
{
	struct fixture *f = *state;
	struct seg s = {GW_VMM_IMAGE_BASE, 0x100, 0x200, 0xcc};
	struct elf_image img = make_elf(GW_VMM_IMAGE_BASE + 0x200, &s, 1);
	uint64_t entry;

	assert_int_equal(load(f, 1, &img, &entry), -EINVAL);
	assert_non_null(strstr(f->err, "entry"));
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE], 0);
	free(img.buf);
}

/* A flat image that does not fit between 0x100000 and the stacks is rejected. */
static void test_flat_too_big(void **state)
{
	struct fixture *f = *state;
	size_t len = f->size - GW_VMM_IMAGE_BASE - GW_VMM_STACK_STRIDE + 1;
	uint8_t *img = calloc(1, len);
	uint64_t entry;

	assert_non_null(img);
	assert_int_equal(
	    gw_loader_load(f->ram, f->size, 1, img, len, &entry, f->err, sizeof(f->err)), -E2BIG);
	assert_int_equal(
	    gw_loader_load(f->ram, f->size, 1, img, len - 1, &entry, f->err, sizeof(f->err)), 0);
	free(img);
}

/* A command line of GW_VMM_CMDLINE_MAX bytes or more is rejected; MAX-1 fits. */
static void test_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	char *s = malloc(GW_VMM_CMDLINE_MAX + 1);

	assert_non_null(s);
	memset(s, 'x', GW_VMM_CMDLINE_MAX);
	s[GW_VMM_CMDLINE_MAX] = '\0';
	assert_int_equal(gw_loader_put_cmdline(f->ram, f->size, s), -E2BIG);
	s[GW_VMM_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(gw_loader_put_cmdline(f->ram, f->size, s), 0);
	assert_int_equal(f->ram[GW_VMM_CMDLINE_GPA + GW_VMM_CMDLINE_MAX - 2], 'x');
	assert_int_equal(f->ram[GW_VMM_CMDLINE_GPA + GW_VMM_CMDLINE_MAX - 1], 0);
	free(s);
}

/* ---- valid inputs ---- */

/* A flat binary lands at 0x100000 and is entered at its first byte. */
static void test_flat_placement(void **state)
{
	struct fixture *f = *state;
	uint8_t img[] = {0x66, 0xba, 0xf8, 0x03, 0xee, 0xf4}; /* no ELF magic */
	uint64_t entry = 0;

	assert_int_equal(
	    gw_loader_load(f->ram, f->size, 4, img, sizeof(img), &entry, f->err, sizeof(f->err)),
	    0);
	assert_int_equal(entry, GW_VMM_IMAGE_BASE);
	assert_memory_equal(f->ram + GW_VMM_IMAGE_BASE, img, sizeof(img));
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE - 1], 0);
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE + sizeof(img)], 0);
}

/* ELF PT_LOAD segments are copied to p_paddr, bss (memsz > filesz) is zeroed, and the
 * entry is e_entry. */
static void test_elf_load_with_bss(void **state)
{
	struct fixture *f = *state;
	struct seg s[2] = {
	    {GW_VMM_IMAGE_BASE, 0x300, 0x300, 0xc3},
	    {GW_VMM_IMAGE_BASE + 0x2000, 0x10, 0x1000, 0x5a},
	};
	struct elf_image img = make_elf(GW_VMM_IMAGE_BASE + 0x10, s, 2);
	uint64_t entry = 0;

	memset(f->ram + GW_VMM_IMAGE_BASE, 0xee, 0x4000); /* bss must not keep old bytes */
	assert_int_equal(load(f, 1, &img, &entry), 0);
	assert_int_equal(entry, GW_VMM_IMAGE_BASE + 0x10);
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE], 0xc3);
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE + 0x2ff], 0xc3);
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE + 0x300], 0xee); /* between segments */
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE + 0x2000], 0x5a);
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE + 0x200f], 0x5a);
	for (uint64_t a = GW_VMM_IMAGE_BASE + 0x2010; a < GW_VMM_IMAGE_BASE + 0x3000; a++)
		assert_int_equal(f->ram[a], 0);
	assert_int_equal(f->ram[GW_VMM_IMAGE_BASE + 0x3000], 0xee);
	free(img.buf);
}

/* The command line is copied NUL-terminated to 0x80000; NULL writes nothing. */
static void test_cmdline_put(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(gw_loader_put_cmdline(f->ram, f->size, NULL), 0);
	assert_int_equal(f->ram[GW_VMM_CMDLINE_GPA], 0);
	f->ram[GW_VMM_CMDLINE_GPA + 7] = 'z';
	assert_int_equal(gw_loader_put_cmdline(f->ram, f->size, "exit=3"), 0);
	assert_string_equal((char *)f->ram + GW_VMM_CMDLINE_GPA, "exit=3");
}

/* 6 MiB: PML4[0] -> PDPT, PDPT[0] -> one PD with three 2 MiB user+writable pages. */
static void test_tables_6mib(void **state)
{
	struct fixture *f = *state;
	uint64_t cr3 = gw_loader_setup_tables(f->ram, f->size);
	uint64_t pml4e, pdpte;

	assert_int_equal(cr3, 0x1000);
	pml4e = get_u64(f->ram + 0x1000);
	assert_int_equal(PTE_ADDR(pml4e), 0x2000);
	assert_int_equal(pml4e & PTE_PRU, PTE_PRU);
	assert_int_equal(get_u64(f->ram + 0x1008), 0);
	pdpte = get_u64(f->ram + 0x2000);
	assert_int_equal(PTE_ADDR(pdpte), 0x3000);
	assert_int_equal(pdpte & (PTE_PRU | PTE_PS), PTE_PRU);
	assert_int_equal(get_u64(f->ram + 0x2008), 0);
	for (uint64_t i = 0; i < 3; i++) {
		uint64_t pde = get_u64(f->ram + 0x3000 + i * 8);

		assert_int_equal(PTE_ADDR(pde), i * 2 * MIB);
		assert_int_equal(pde & (PTE_PRU | PTE_PS), PTE_PRU | PTE_PS);
	}
	assert_int_equal(get_u64(f->ram + 0x3000 + 3 * 8), 0); /* nothing beyond RAM */
}

/* 3 GiB: three PDPT entries, three full page directories, nothing mapped beyond. */
static void test_tables_3gib(void **state)
{
	struct fixture *f = *state;
	uint64_t last;

	assert_int_equal(gw_loader_setup_tables(f->ram, f->size), 0x1000);
	assert_int_equal(PTE_ADDR(get_u64(f->ram + 0x1000)), 0x2000);
	for (uint64_t g = 0; g < 3; g++) {
		uint64_t pdpte = get_u64(f->ram + 0x2000 + g * 8);

		assert_int_equal(PTE_ADDR(pdpte), 0x3000 + g * 0x1000);
		assert_int_equal(pdpte & PTE_PRU, PTE_PRU);
	}
	assert_int_equal(get_u64(f->ram + 0x2000 + 3 * 8), 0);
	/* first page of GiB 1 and the last 2 MiB page of RAM */
	assert_int_equal(PTE_ADDR(get_u64(f->ram + 0x4000)), GIB);
	last = get_u64(f->ram + 0x5000 + 511 * 8);
	assert_int_equal(PTE_ADDR(last), 3 * GIB - 2 * MIB);
	assert_int_equal(last & (PTE_PRU | PTE_PS), PTE_PRU | PTE_PS);
	for (uint64_t i = 0; i < 512 * 3; i++)
		assert_int_equal(PTE_ADDR(get_u64(f->ram + 0x3000 + i * 8)), i * 2 * MIB);
}

/* GDT: DPL3 64-bit code at 0x18, DPL3 data at 0x20, a 64-bit TSS descriptor at 0x28 whose
 * base and limit cover the TSS and an all-zero I/O bitmap ended by 0xff. */
static void test_gdt_tss(void **state)
{
	struct fixture *f = *state;
	uint64_t code3, data3, tss, base, limit;
	uint16_t iomap;

	gw_loader_setup_tables(f->ram, f->size);
	assert_int_equal(get_u64(f->ram + GW_VMM_GDT_GPA), 0);
	code3 = get_u64(f->ram + GW_VMM_GDT_GPA + (GW_SEL_CODE64_USER & ~7));
	data3 = get_u64(f->ram + GW_VMM_GDT_GPA + (GW_SEL_DATA_USER & ~7));
	assert_int_equal((code3 >> 45) & 3, 3); /* DPL */
	assert_int_equal((code3 >> 53) & 1, 1); /* L */
	assert_int_equal((code3 >> 43) & 1, 1); /* executable */
	assert_int_equal((data3 >> 45) & 3, 3);
	assert_int_equal((data3 >> 43) & 1, 0);
	assert_int_equal((data3 >> 41) & 1, 1); /* writable */
	tss = get_u64(f->ram + GW_VMM_GDT_GPA + GW_SEL_TSS);
	base = ((tss >> 16) & 0xffffff) | (((tss >> 56) & 0xff) << 24) |
	       (get_u64(f->ram + GW_VMM_GDT_GPA + GW_SEL_TSS + 8) << 32);
	limit = (tss & 0xffff) | (((tss >> 48) & 0xf) << 16);
	assert_int_equal(base, GW_VMM_TSS_GPA);
	assert_int_equal(limit, GW_VMM_TSS_LIMIT);
	assert_int_equal((tss >> 40) & 0x9f, 0x8b); /* present, busy 64-bit TSS */
	memcpy(&iomap, f->ram + GW_VMM_TSS_GPA + 102, 2);
	assert_int_equal(iomap, 104);
	for (unsigned i = 0; i < GW_VMM_IOBITMAP_LEN; i++)
		assert_int_equal(f->ram[GW_VMM_TSS_GPA + 104 + i], 0);
	assert_int_equal(f->ram[GW_VMM_TSS_GPA + 104 + GW_VMM_IOBITMAP_LEN], 0xff);
	/* the TSS must not overlap the command line or the image */
	assert_true(GW_VMM_TSS_GPA >= GW_VMM_CMDLINE_GPA + GW_VMM_CMDLINE_MAX);
	assert_true(GW_VMM_TSS_GPA + GW_VMM_TSS_LIMIT < GW_VMM_IMAGE_BASE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_load_empty_or_no_vcpus, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_truncated_header, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_phdrs_truncated, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_wrong_class_or_machine, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_segment_below_base, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_segment_outside_ram, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_segment_overlaps_stacks, setup_small,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_elf_bad_file_sizes, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_entry_outside_segments, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_flat_too_big, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_cmdline_too_long, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_flat_placement, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_elf_load_with_bss, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_cmdline_put, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_tables_6mib, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_tables_3gib, setup_3g, teardown),
	    cmocka_unit_test_setup_teardown(test_gdt_tss, setup_small, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
