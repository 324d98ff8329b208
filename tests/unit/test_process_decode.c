/* test_process_decode.c -- the process backend's instruction decoder (gw_insn_decode), and a
 * randomized run through it and the port-I/O helpers; invalid arguments first. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "process_decode.h"

#define DF    (1ull << 10)
#define GUARD 0x5a5aa5a5deadbeefull

/* Decode bytes that must decode, checking kind, length and text. */
static struct gw_insn decode_ok(const uint8_t *code, size_t n, enum gw_insn_kind kind, uint8_t len,
				const char *text)
{
	struct gw_insn insn;
	int r = gw_insn_decode(code, n, &insn);
	if (r || insn.kind != kind || insn.len != len || strcmp(insn.text, text))
		fail_msg("decode: r %d kind %d len %u text '%s', want kind %d len %u '%s'", r,
			 insn.kind, insn.len, insn.text, kind, len, text);
	return insn;
}

/* Decode bytes that must be refused, checking the text. */
static void decode_bad(const uint8_t *code, size_t n, const char *text)
{
	struct gw_insn insn;
	assert_int_equal(gw_insn_decode(code, n, &insn), -EINVAL);
	assert_int_equal(insn.kind, GW_INSN_UNKNOWN);
	assert_int_equal(insn.len, 0);
	assert_string_equal(insn.text, text);
}

/* A byte string as (pointer, length) arguments. */
#define B(...)	 (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define OK(...)	 decode_ok(__VA_ARGS__)
#define BAD(...) decode_bad(__VA_ARGS__)
#define P66x14	 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66

/* NULL arguments are refused; gw_insn_decode_at refuses a rip outside RAM. */
static void test_decode_invalid_args(void **state)
{
	static const uint8_t ram[16] = {0xec};
	struct gw_insn insn;

	assert_int_equal(gw_insn_decode(NULL, 1, &insn), -EINVAL);
	assert_string_equal(insn.text, "no code");
	assert_int_equal(gw_insn_decode(B(0xec), NULL), -EINVAL);
	assert_int_equal(gw_insn_decode_at(NULL, 1, 0, &insn), -EINVAL);
	assert_int_equal(gw_insn_decode_at(ram, sizeof(ram), 0, NULL), -EINVAL);
	assert_int_equal(gw_insn_decode_at(ram, sizeof(ram), sizeof(ram), &insn), -EFAULT);
	assert_string_equal(insn.text, "rip 0x10 outside guest RAM");
	assert_int_equal(insn.kind, GW_INSN_UNKNOWN);
	assert_int_equal(gw_insn_decode_at(ram, sizeof(ram), ~0ull, &insn), -EFAULT);
	assert_int_equal(gw_insn_decode_at(ram, sizeof(ram), 0, &insn), 0);
	assert_string_equal(insn.text, "inb (%dx),%al");
	assert_false(gw_insn_is_pio(NULL));
}

/* Every IN/OUT form and size: imm8 and DX ports, b/w/l. */
static void test_decode_inout_forms(void **state)
{
	struct gw_insn i;

	i = OK(B(0xe4, 0x60), GW_INSN_IN, 2, "inb $0x60,%al");
	assert_true(i.port_imm);
	assert_int_equal(i.imm, 0x60);
	assert_int_equal(i.size, 1);
	i = OK(B(0xe5, 0x71), GW_INSN_IN, 2, "inl $0x71,%eax");
	assert_int_equal(i.size, 4);
	i = OK(B(0x66, 0xe5, 0x71), GW_INSN_IN, 3, "inw $0x71,%ax");
	assert_int_equal(i.size, 2);
	i = OK(B(0xe6, 0x80), GW_INSN_OUT, 2, "outb %al,$0x80");
	assert_int_equal(i.size, 1);
	OK(B(0xe7, 0x80), GW_INSN_OUT, 2, "outl %eax,$0x80");
	OK(B(0x66, 0xe7, 0xff), GW_INSN_OUT, 3, "outw %ax,$0xff");
	i = OK(B(0xec), GW_INSN_IN, 1, "inb (%dx),%al");
	assert_false(i.port_imm);
	assert_false(i.rep);
	OK(B(0xed), GW_INSN_IN, 1, "inl (%dx),%eax");
	OK(B(0x66, 0xed), GW_INSN_IN, 2, "inw (%dx),%ax");
	OK(B(0xee), GW_INSN_OUT, 1, "outb %al,(%dx)");
	OK(B(0xef), GW_INSN_OUT, 1, "outl %eax,(%dx)");
	i = OK(B(0x66, 0xef), GW_INSN_OUT, 2, "outw %ax,(%dx)");
	assert_int_equal(i.size, 2);
	assert_true(gw_insn_is_pio(&i));
}

/* 0x66, REX (W wins over 0x66, ignored unless right before the opcode), rep and segment
 * prefixes on IN/OUT. */
static void test_decode_prefixes(void **state)
{
	struct gw_insn i;

	i = OK(B(0x48, 0xed), GW_INSN_IN, 2, "inl (%dx),%eax");
	assert_int_equal(i.size, 4);
	i = OK(B(0x66, 0x48, 0xed), GW_INSN_IN, 3, "inl (%dx),%eax");
	assert_int_equal(i.size, 4);
	OK(B(0x41, 0xee), GW_INSN_OUT, 2, "outb %al,(%dx)");
	OK(B(0x48, 0xe6, 0x10), GW_INSN_OUT, 3, "outb %al,$0x10");
	i = OK(B(0x48, 0x66, 0xed), GW_INSN_IN, 3, "inw (%dx),%ax"); /* REX dropped */
	assert_int_equal(i.size, 2);
	i = OK(B(0xf3, 0xec), GW_INSN_IN, 2, "inb (%dx),%al");
	assert_false(i.rep);
	OK(B(0x2e, 0xec), GW_INSN_IN, 2, "inb (%dx),%al");
	OK(B(0x26, 0x3e, 0x36, 0xee), GW_INSN_OUT, 4, "outb %al,(%dx)");
	OK(B(0x64, 0x65, 0xef), GW_INSN_OUT, 3, "outl %eax,(%dx)");
	OK(B(0x67, 0x66, 0xe5, 0x01), GW_INSN_IN, 4, "inw $0x1,%ax");
}

/* INS/OUTS in every size, with rep (F3 and F2), 0x67 and segment overrides. */
static void test_decode_string_forms(void **state)
{
	struct gw_insn i;

	i = OK(B(0x6c), GW_INSN_INS, 1, "insb (%dx),%es:(%rdi)");
	assert_false(i.rep);
	assert_false(i.addr32);
	assert_int_equal(i.size, 1);
	OK(B(0x6d), GW_INSN_INS, 1, "insl (%dx),%es:(%rdi)");
	i = OK(B(0x66, 0x6d), GW_INSN_INS, 2, "insw (%dx),%es:(%rdi)");
	assert_int_equal(i.size, 2);
	OK(B(0x6e), GW_INSN_OUTS, 1, "outsb %ds:(%rsi),(%dx)");
	i = OK(B(0x6f), GW_INSN_OUTS, 1, "outsl %ds:(%rsi),(%dx)");
	assert_int_equal(i.size, 4);
	OK(B(0x66, 0x6f), GW_INSN_OUTS, 2, "outsw %ds:(%rsi),(%dx)");
	i = OK(B(0xf3, 0x6e), GW_INSN_OUTS, 2, "rep outsb %ds:(%rsi),(%dx)");
	assert_true(i.rep);
	i = OK(B(0xf2, 0x6c), GW_INSN_INS, 2, "rep insb (%dx),%es:(%rdi)");
	assert_true(i.rep);
	i = OK(B(0x67, 0xf3, 0x6d), GW_INSN_INS, 3, "rep insl (%dx),%es:(%edi)");
	assert_true(i.addr32);
	OK(B(0x67, 0x66, 0xf3, 0x48, 0x6f), GW_INSN_OUTS, 5, "rep outsl %ds:(%esi),(%dx)");
	OK(B(0x2e, 0x6e), GW_INSN_OUTS, 2, "outsb %cs:(%rsi),(%dx)");
	OK(B(0x26, 0x66, 0x6f), GW_INSN_OUTS, 3, "outsw %es:(%rsi),(%dx)");
	OK(B(0x64, 0x6c), GW_INSN_INS, 2, "insb (%dx),%es:(%rdi)"); /* ES can't be overridden */
}

/* FS/GS overrides on OUTS are refused: their bases are not modelled. */
static void test_decode_fs_gs_outs(void **state)
{
	BAD(B(0x64, 0x6e), "outsb %fs:(%rsi),(%dx) unsupported");
	BAD(B(0x65, 0xf3, 0x6f), "rep outsl %gs:(%rsi),(%dx) unsupported");
	OK(B(0x64, 0x3e, 0x6e), GW_INSN_OUTS, 3, "outsb %ds:(%rsi),(%dx)"); /* last one wins */
}

/* cli/sti/hlt, the int family, syscall/sysenter and the other system instructions. */
static void test_decode_system(void **state)
{
	struct gw_insn i;

	OK(B(0xfa), GW_INSN_CLI, 1, "cli");
	OK(B(0xfb), GW_INSN_STI, 1, "sti");
	OK(B(0xf4), GW_INSN_HLT, 1, "hlt");
	OK(B(0xf3, 0xf4), GW_INSN_HLT, 2, "hlt");
	OK(B(0x66, 0xfa), GW_INSN_CLI, 2, "cli");
	i = OK(B(0xcc), GW_INSN_INT, 1, "int3");
	assert_int_equal(i.int_vector, 3);
	assert_false(gw_insn_is_pio(&i));
	i = OK(B(0xcd, 0x80), GW_INSN_INT, 2, "int $0x80");
	assert_int_equal(i.int_vector, 0x80);
	i = OK(B(0xcd, 0x03), GW_INSN_INT, 2, "int $0x3");
	assert_int_equal(i.int_vector, 3);
	i = OK(B(0xce), GW_INSN_INT, 1, "into");
	assert_int_equal(i.int_vector, 4);
	i = OK(B(0xf1), GW_INSN_INT, 1, "int1");
	assert_int_equal(i.int_vector, 1);
	OK(B(0x0f, 0x05), GW_INSN_SYSCALL, 2, "syscall");
	OK(B(0x0f, 0x34), GW_INSN_SYSENTER, 2, "sysenter");
	OK(B(0x48, 0x0f, 0x07), GW_INSN_PRIV, 3, "sysretq");
	OK(B(0x0f, 0x07), GW_INSN_PRIV, 2, "sysretl");
	OK(B(0x0f, 0x35), GW_INSN_PRIV, 2, "sysexit");
	OK(B(0x48, 0xcf), GW_INSN_PRIV, 2, "iretq");
	OK(B(0xcf), GW_INSN_PRIV, 1, "iretl");
	OK(B(0x66, 0xcf), GW_INSN_PRIV, 2, "iretw");
	OK(B(0x0f, 0x06), GW_INSN_PRIV, 2, "clts");
	OK(B(0x0f, 0x08), GW_INSN_PRIV, 2, "invd");
	OK(B(0x0f, 0x09), GW_INSN_PRIV, 2, "wbinvd");
	OK(B(0x0f, 0x30), GW_INSN_PRIV, 2, "wrmsr");
	OK(B(0x0f, 0x32), GW_INSN_PRIV, 2, "rdmsr");
	OK(B(0x0f, 0x33), GW_INSN_PRIV, 2, "rdpmc");
	OK(B(0x0f, 0x31), GW_INSN_RDTSC, 2, "rdtsc");
	OK(B(0x0f, 0x01, 0xf9), GW_INSN_RDTSC, 3, "rdtscp");
	OK(B(0x0f, 0xa2), GW_INSN_CPUID, 2, "cpuid");
}

/* The 0F 00 / 0F 01 groups (ModRM, SIB and displacement lengths) and mov CRn/DRn. */
static void test_decode_system_groups(void **state)
{
	OK(B(0x0f, 0x01, 0x15, 1, 2, 3, 4), GW_INSN_PRIV, 7, "lgdt");		 /* rip-relative */
	OK(B(0x0f, 0x01, 0x18), GW_INSN_PRIV, 3, "lidt");			 /* (%rax) */
	OK(B(0x0f, 0x01, 0x5c, 0x24, 0x08), GW_INSN_PRIV, 5, "lidt");		 /* 8(%rsp) */
	OK(B(0x0f, 0x01, 0x3c, 0x25, 0, 0x10, 0, 0), GW_INSN_PRIV, 8, "invlpg"); /* abs32 */
	OK(B(0x0f, 0x01, 0x90, 1, 2, 3, 4), GW_INSN_PRIV, 7, "lgdt");		 /* disp32(%rax) */
	OK(B(0x0f, 0x01, 0x04, 0x24), GW_INSN_PRIV, 4, "sgdt");			 /* (%rsp) */
	OK(B(0x0f, 0x01, 0x44, 0x24, 0x10), GW_INSN_PRIV, 5, "sgdt");
	OK(B(0x67, 0x0f, 0x01, 0x10), GW_INSN_PRIV, 4, "lgdt");
	OK(B(0x0f, 0x01, 0x0c, 0x65, 1, 2, 3, 4), GW_INSN_PRIV, 8, "sidt"); /* no base */
	OK(B(0x0f, 0x01, 0xf8), GW_INSN_PRIV, 3, "swapgs");
	OK(B(0x0f, 0x01, 0xca), GW_INSN_PRIV, 3, "clac");
	OK(B(0x0f, 0x01, 0xc1), GW_INSN_PRIV, 3, "vmcall");
	OK(B(0x0f, 0x01, 0xd9), GW_INSN_PRIV, 3, "vmmcall");
	OK(B(0x0f, 0x01, 0xe0), GW_INSN_PRIV, 3, "smsw");
	OK(B(0x0f, 0x01, 0xf0), GW_INSN_PRIV, 3, "lmsw");
	OK(B(0x0f, 0x01, 0x30), GW_INSN_PRIV, 3, "lmsw");
	OK(B(0x0f, 0x00, 0xd8), GW_INSN_PRIV, 3, "ltr");
	OK(B(0x0f, 0x00, 0xd0), GW_INSN_PRIV, 3, "lldt");
	OK(B(0x0f, 0x00, 0xc8), GW_INSN_PRIV, 3, "str");
	OK(B(0x0f, 0x00, 0x50, 0x10), GW_INSN_PRIV, 4, "lldt");
	OK(B(0x0f, 0x20, 0xd8), GW_INSN_PRIV, 3, "mov %cr3,%rax");
	OK(B(0x0f, 0x20, 0x18), GW_INSN_PRIV, 3, "mov %cr3,%rax"); /* mod ignored */
	OK(B(0x0f, 0x22, 0xc3), GW_INSN_PRIV, 3, "mov %rbx,%cr0");
	OK(B(0x0f, 0x22, 0xe6), GW_INSN_PRIV, 3, "mov %rsi,%cr4");
	OK(B(0x44, 0x0f, 0x20, 0xc0), GW_INSN_PRIV, 4, "mov %cr8,%rax");
	OK(B(0x41, 0x0f, 0x22, 0xc7), GW_INSN_PRIV, 4, "mov %r15,%cr0");
	OK(B(0x0f, 0x21, 0xf8), GW_INSN_PRIV, 3, "mov %dr7,%rax");
	OK(B(0x0f, 0x23, 0xc1), GW_INSN_PRIV, 3, "mov %rcx,%dr0");
}

/* Code that ends early is refused as truncated; nothing past avail is read. */
static void test_decode_truncated(void **state)
{
	struct gw_insn i;

	BAD((const uint8_t[]){0xec}, 0, "truncated insn (no bytes)");
	BAD(B(0xe4), "truncated insn e4");
	BAD((const uint8_t[]){0xe4, 0x60}, 1, "truncated insn e4");
	BAD(B(0xcd), "truncated insn cd");
	BAD(B(0x0f), "truncated insn 0f");
	BAD(B(0x0f, 0x01), "truncated insn 0f 01");
	BAD(B(0x0f, 0x01, 0x15, 0, 0), "truncated insn 0f 01 15 00 00");
	BAD(B(0x0f, 0x01, 0x04), "truncated insn 0f 01 04");
	BAD(B(0x0f, 0x20), "truncated insn 0f 20");
	BAD(B(0x66), "truncated insn 66");
	BAD(B(0xf3, 0x66, 0x48), "truncated insn f3 66 48");
	BAD(B(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66),
	    "truncated insn 66 66 66 66 66 66 66 66");

	/* at the end of RAM: gw_insn_decode_at gives only what is left */
	static uint8_t ram[64];
	ram[sizeof(ram) - 1] = 0xec;
	assert_int_equal(gw_insn_decode_at(ram, sizeof(ram), sizeof(ram) - 1, &i), 0);
	assert_string_equal(i.text, "inb (%dx),%al");
	ram[sizeof(ram) - 1] = 0xe4;
	assert_int_equal(gw_insn_decode_at(ram, sizeof(ram), sizeof(ram) - 1, &i), -EINVAL);
	assert_string_equal(i.text, "truncated insn e4");
	memset(ram, 0x66, 32);
	ram[14] = 0xee;
	assert_int_equal(gw_insn_decode_at(ram, sizeof(ram), 0, &i), 0);
	assert_int_equal(i.len, 15);
}

/* 15 bytes is the limit, however they are made of. */
static void test_decode_too_long(void **state)
{
	struct gw_insn i;

	i = OK(B(P66x14, 0xec), GW_INSN_IN, 15, "inb (%dx),%al");
	assert_int_equal(i.size, 1);
	OK(B(P66x14, 0xed), GW_INSN_IN, 15, "inw (%dx),%ax");
	OK(B(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0xe4, 1),
	   GW_INSN_IN, 15, "inb $0x1,%al");
	OK(B(0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x48, 0x0f,
	     0x05),
	   GW_INSN_SYSCALL, 15, "syscall");
	BAD(B(P66x14, 0xe4, 0x01), "insn longer than 15 bytes");
	BAD(B(P66x14, 0x2e, 0xec), "insn longer than 15 bytes");
	BAD((const uint8_t[]){P66x14, 0x2e, 0xec}, 15, "insn longer than 15 bytes");
	BAD(B(P66x14, 0x0f, 0x01, 0x15, 0, 0, 0, 0), "insn longer than 15 bytes");
	BAD(B(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x0f, 0x01, 0x15, 0, 0, 0,
	      0),
	    "insn longer than 15 bytes");
}

/* LOCK on anything decoded here is #UD: refused, the text names it. */
static void test_decode_lock(void **state)
{
	BAD(B(0xf0, 0xee), "lock outb %al,(%dx) (#UD)");
	BAD(B(0xf0, 0xe4, 0x60), "lock inb $0x60,%al (#UD)");
	BAD(B(0xf0, 0xf3, 0x6e), "lock rep outsb %ds:(%rsi),(%dx) (#UD)");
	BAD(B(0x66, 0xf0, 0x6d), "lock insw (%dx),%es:(%rdi) (#UD)");
	BAD(B(0xf0, 0xfa), "lock cli (#UD)");
	BAD(B(0xf0, 0x0f, 0x01, 0x10), "lock lgdt (#UD)");
}

/* Opcodes that are not ours (or not valid) are refused with their bytes. */
static void test_decode_unknown(void **state)
{
	BAD(B(0x90), "unknown opcode 90");
	BAD(B(0x0f, 0x0b, 0x90, 0x90), "unknown opcode 0f 0b 90 90");
	BAD(B(0x0f, 0xff, 0x00), "unknown opcode 0f ff 00");
	BAD(B(0x0f, 0x00, 0xf0), "unknown opcode 0f 00 f0");
	BAD(B(0x0f, 0x01, 0x28), "unknown opcode 0f 01 28");
	BAD(B(0x0f, 0x01, 0xd0), "unknown opcode 0f 01 d0");
	BAD(B(0x66, 0x0f, 0x0b), "unknown opcode 66 0f 0b");
	BAD(B(0x06), "unknown opcode 06");
	BAD(B(0x48), "truncated insn 48");
	BAD(B(0x90, 1, 2, 3, 4, 5, 6, 7, 8, 9), "unknown opcode 90 01 02 03 04 05 06 07");
}

/* ---- randomized ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Mostly the bytes the decoder cares about, sometimes anything. */
static uint8_t fuzz_byte(void)
{
	static const uint8_t hot[] = {0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x64, 0x65, 0x26,
				      0x48, 0x41, 0x4f, 0x0f, 0x6c, 0x6d, 0x6e, 0x6f, 0xe4,
				      0xe5, 0xe6, 0xe7, 0xec, 0xed, 0xee, 0xef, 0xcd, 0x01,
				      0x00, 0x20, 0x22, 0x04, 0x05, 0x15, 0x24, 0x25, 0xcf};
	uint64_t v = rnd();
	return v & 1 ? hot[(v >> 8) % sizeof(hot)] : (uint8_t)(v >> 16);
}

/* Register values around the interesting edges: RAM ends, 2^32, 2^64, junk upper halves. */
static uint64_t fuzz_reg(uint64_t ram_size)
{
	uint64_t v = rnd(), small = (v >> 8) % 24;
	switch (v % 9) {
	case 0:
		return small;
	case 1:
		return ram_size - small;
	case 2:
		return ram_size + small;
	case 3:
		return 0xffffffffull - small;
	case 4:
		return ~0ull - small;
	case 5:
		return (rnd() & ~0xffffffffull) | ((v >> 8) % (ram_size + 24));
	case 6:
		return 4096 + small - 12;
	case 7:
		return (v >> 8) % (ram_size + 24);
	}
	return rnd();
}

#define FUZZ_RAM 8192u
static struct {
	uint64_t lo[8];
	uint8_t ram[FUZZ_RAM];
	uint64_t hi[8];
} fz;

static void fuzz_guards(void)
{
	for (int i = 0; i < 8; i++) {
		assert_true(fz.lo[i] == GUARD);
		assert_true(fz.hi[i] == GUARD);
	}
}

/* Decoding looks only at code[0, avail): bytes after it change nothing. */
static void fuzz_decode_stable(const uint8_t *code, size_t avail, const struct gw_insn *a)
{
	uint8_t other[GW_INSN_MAX_LEN + 1];
	struct gw_insn b;
	int r;

	memcpy(other, code, sizeof(other));
	for (size_t i = avail; i < sizeof(other); i++)
		other[i] = (uint8_t)rnd();
	r = gw_insn_decode(other, avail, &b);
	assert_int_equal(r, a->kind == GW_INSN_UNKNOWN ? -EINVAL : 0);
	assert_int_equal(b.kind, a->kind);
	assert_int_equal(b.len, a->len);
	assert_int_equal(b.size, a->size);
	assert_string_equal(b.text, a->text);
}

/* Prepare/complete rounds on random registers: either refused with registers untouched, or
 * done within RAM; a REP either finishes or leaves RIP in place. */
static void fuzz_pio(const struct gw_insn *insn, uint64_t ram_size)
{
	static struct gw_pio pio;
	struct user_regs_struct r, before;
	char err[160];

	memset(&r, 0, sizeof(r));
	r.rip = rnd() % FUZZ_RAM;
	r.rax = rnd();
	r.rdx = rnd();
	r.rsi = fuzz_reg(ram_size);
	r.rdi = fuzz_reg(ram_size);
	r.rcx = rnd() & 1 ? rnd() % 40 : fuzz_reg(ram_size);
	r.eflags = rnd() & 1 ? DF : 0;
	for (int round = 0; round < 3; round++) {
		before = r;
		int rc = gw_pio_prepare(&r, insn, fz.ram, ram_size, &pio, err, sizeof(err));
		assert_memory_equal(&r, &before, sizeof(r));
		if (rc) {
			assert_int_equal(rc, -EFAULT);
			return;
		}
		assert_true(pio.count * pio.size <= GW_PIO_DATA_MAX);
		if (pio.in)
			memset(pio.data, (int)(rnd() & 0xff), (size_t)pio.count * pio.size);
		rc = gw_pio_complete(&r, insn, &pio, fz.ram, ram_size, err, sizeof(err));
		if (rc)
			fail_msg("complete after prepare: %s", err);
		if (r.rip != before.rip) {
			assert_int_equal(r.rip, before.rip + insn->len);
			return;
		}
		assert_true(insn->rep);
		assert_true(r.rcx != before.rcx);
	}
}

/* 200000 random byte strings through the decoder and the port-I/O helpers: never a crash,
 * never a write outside RAM, never longer than 15 bytes. */
static void test_fuzz(void **state)
{
	uint8_t code[GW_INSN_MAX_LEN + 1];
	struct gw_insn insn;
	int decoded = 0, pio = 0;

	for (int i = 0; i < 8; i++)
		fz.lo[i] = fz.hi[i] = GUARD;
	for (unsigned i = 0; i < FUZZ_RAM; i++)
		fz.ram[i] = (uint8_t)rnd();
	for (int it = 0; it < 200000; it++) {
		size_t avail = rnd() % (sizeof(code) + 1);
		uint64_t ram_size = rnd() & 3 ? FUZZ_RAM : rnd() % (FUZZ_RAM + 1);
		for (size_t i = 0; i < sizeof(code); i++)
			code[i] = fuzz_byte();
		int r = gw_insn_decode(code, avail, &insn);
		assert_true(insn.len <= GW_INSN_MAX_LEN && insn.len <= avail);
		assert_true(strlen(insn.text) < sizeof(insn.text) && insn.text[0]);
		assert_int_equal(r == 0, insn.kind != GW_INSN_UNKNOWN);
		assert_int_equal(r == 0, insn.len > 0);
		fuzz_decode_stable(code, avail, &insn);
		decoded += !r;
		if (gw_insn_is_pio(&insn)) {
			pio++;
			fuzz_pio(&insn, ram_size);
		}
		if (it % 64 == 0) {
			uint64_t rip = fuzz_reg(FUZZ_RAM);
			r = gw_insn_decode_at(fz.ram, FUZZ_RAM, rip, &insn);
			assert_true(rip < FUZZ_RAM || r == -EFAULT);
			assert_true(insn.len <= GW_INSN_MAX_LEN);
		}
		fuzz_guards();
	}
	print_message("fuzz: %d decoded, %d port I/O\n", decoded, pio);
	assert_true(pio > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_invalid_args),	 cmocka_unit_test(test_decode_inout_forms),
	    cmocka_unit_test(test_decode_prefixes),	 cmocka_unit_test(test_decode_string_forms),
	    cmocka_unit_test(test_decode_fs_gs_outs),	 cmocka_unit_test(test_decode_system),
	    cmocka_unit_test(test_decode_system_groups), cmocka_unit_test(test_decode_truncated),
	    cmocka_unit_test(test_decode_too_long),	 cmocka_unit_test(test_decode_lock),
	    cmocka_unit_test(test_decode_unknown),	 cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
