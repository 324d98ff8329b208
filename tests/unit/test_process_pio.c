/* test_process_pio.c -- port-I/O emulation on ptrace registers for the process backend
 * (gw_pio_prepare, gw_pio_complete): IN/OUT, INS/OUTS, REP rounds, guest-RAM bounds. */
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

#define DF	 (1ull << 10)
#define RAM_SIZE 16384u

/* Guest RAM for the port-I/O tests, with guard words either side. */
static struct {
	uint64_t lo[8];
	uint8_t ram[RAM_SIZE];
	uint64_t hi[8];
} g;

#define GUARD 0x5a5aa5a5deadbeefull

static void ram_reset(void)
{
	for (int i = 0; i < 8; i++)
		g.lo[i] = g.hi[i] = GUARD;
	for (unsigned i = 0; i < RAM_SIZE; i++)
		g.ram[i] = (uint8_t)(i * 7 + 3);
}

static void guards_intact(void)
{
	for (int i = 0; i < 8; i++) {
		assert_true(g.lo[i] == GUARD);
		assert_true(g.hi[i] == GUARD);
	}
}

/* A byte string as (pointer, length) arguments. */
#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static struct user_regs_struct regs_at(uint64_t rip)
{
	struct user_regs_struct r;
	memset(&r, 0, sizeof(r));
	r.rip = rip;
	r.eflags = 0x202;
	return r;
}

/* Decode and prepare, expecting success. */
static struct gw_insn prep(const uint8_t *code, size_t n, const struct user_regs_struct *r,
			   struct gw_pio *pio)
{
	struct gw_insn insn;
	char err[128] = "";
	assert_int_equal(gw_insn_decode(code, n, &insn), 0);
	if (gw_pio_prepare(r, &insn, g.ram, RAM_SIZE, pio, err, sizeof(err)))
		fail_msg("prepare %s: %s", insn.text, err);
	return insn;
}

static void complete_ok(struct user_regs_struct *r, const struct gw_insn *insn,
			const struct gw_pio *pio)
{
	char err[128] = "";
	if (gw_pio_complete(r, insn, pio, g.ram, RAM_SIZE, err, sizeof(err)))
		fail_msg("complete %s: %s", insn->text, err);
}

/* NULL arguments, non-I/O instructions and bad sizes are refused with -EINVAL. */
static void test_pio_invalid_args(void **state)
{
	struct user_regs_struct r = regs_at(0);
	struct gw_insn insn, cli, bad;
	static struct gw_pio pio;
	char err[128];

	assert_int_equal(gw_insn_decode(B(0xee), &insn), 0);
	assert_int_equal(gw_insn_decode(B(0xfa), &cli), 0);
	assert_false(gw_insn_is_pio(&cli));
	assert_int_equal(gw_pio_prepare(NULL, &insn, g.ram, RAM_SIZE, &pio, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "gw_pio_prepare: bad arguments");
	assert_int_equal(gw_pio_prepare(&r, NULL, g.ram, RAM_SIZE, &pio, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(gw_pio_prepare(&r, &insn, g.ram, RAM_SIZE, NULL, NULL, 0), -EINVAL);
	assert_int_equal(gw_pio_prepare(&r, &cli, g.ram, RAM_SIZE, &pio, err, sizeof(err)),
			 -EINVAL);
	bad = insn;
	bad.size = 3;
	assert_int_equal(gw_pio_prepare(&r, &bad, g.ram, RAM_SIZE, &pio, NULL, 0), -EINVAL);
	bad = insn;
	bad.len = 0;
	assert_int_equal(gw_pio_prepare(&r, &bad, g.ram, RAM_SIZE, &pio, NULL, 0), -EINVAL);
	assert_int_equal(gw_insn_decode(B(0x6e), &bad), 0);
	assert_int_equal(gw_pio_prepare(&r, &bad, NULL, RAM_SIZE, &pio, NULL, 0), -EINVAL);

	assert_int_equal(gw_pio_prepare(&r, &insn, NULL, 0, &pio, NULL, 0), 0); /* OUT: no RAM */
	assert_int_equal(gw_pio_complete(NULL, &insn, &pio, g.ram, RAM_SIZE, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "gw_pio_complete: bad arguments");
	assert_int_equal(gw_pio_complete(&r, NULL, &pio, g.ram, RAM_SIZE, NULL, 0), -EINVAL);
	assert_int_equal(gw_pio_complete(&r, &insn, NULL, g.ram, RAM_SIZE, NULL, 0), -EINVAL);
	assert_int_equal(gw_pio_complete(&r, &cli, &pio, g.ram, RAM_SIZE, NULL, 0), -EINVAL);
	assert_int_equal(r.rip, 0);
}

/* IN/OUT: port from DX or imm8, OUT data from RAX, RIP advanced past the instruction. */
static void test_pio_in_out(void **state)
{
	struct user_regs_struct r = regs_at(0x1000), before;
	static struct gw_pio pio;
	struct gw_insn insn;

	r.rax = 0x1122334455667788ull;
	r.rdx = 0xffff03f8ull;
	before = r;
	insn = prep(B(0xee), &r, &pio);
	assert_int_equal(pio.port, 0x3f8);
	assert_int_equal(pio.size, 1);
	assert_int_equal(pio.count, 1);
	assert_false(pio.in);
	assert_int_equal(pio.data[0], 0x88);
	complete_ok(&r, &insn, &pio);
	before.rip += 1;
	assert_memory_equal(&r, &before, sizeof(r));

	insn = prep(B(0x66, 0xef), &r, &pio);
	assert_int_equal(pio.size, 2);
	assert_memory_equal(pio.data, ((uint8_t[]){0x88, 0x77}), 2);
	insn = prep(B(0x48, 0xef), &r, &pio);
	assert_int_equal(pio.size, 4);
	assert_memory_equal(pio.data, ((uint8_t[]){0x88, 0x77, 0x66, 0x55}), 4);
	insn = prep(B(0xe6, 0x80), &r, &pio);
	assert_int_equal(pio.port, 0x80);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rip, 0x1003);
	insn = prep(B(0xe7, 0xf0), &r, &pio);
	assert_int_equal(pio.port, 0xf0);
	assert_int_equal(pio.size, 4);
}

/* IN: AL and AX keep the rest of RAX, EAX zero-extends (REX.W too). */
static void test_pio_in_extension(void **state)
{
	struct user_regs_struct r = regs_at(0x2000);
	static struct gw_pio pio;
	struct gw_insn insn;

	r.rax = 0x1122334455667788ull;
	r.rdx = 0x60;
	insn = prep(B(0xe4, 0x64), &r, &pio);
	assert_int_equal(pio.port, 0x64);
	assert_true(pio.in);
	assert_int_equal(pio.data[0], 0);
	pio.data[0] = 0xab;
	complete_ok(&r, &insn, &pio);
	assert_true(r.rax == 0x11223344556677abull);
	assert_int_equal(r.rip, 0x2002);

	insn = prep(B(0x66, 0xed), &r, &pio);
	assert_int_equal(pio.port, 0x60);
	pio.data[0] = 0xcd;
	pio.data[1] = 0xab;
	complete_ok(&r, &insn, &pio);
	assert_true(r.rax == 0x112233445566abcdull);
	assert_int_equal(r.rip, 0x2004);

	insn = prep(B(0xed), &r, &pio);
	memcpy(pio.data, ((uint8_t[]){0x78, 0x56, 0x34, 0x12}), 4);
	complete_ok(&r, &insn, &pio);
	assert_true(r.rax == 0x12345678ull);

	r.rax = ~0ull;
	insn = prep(B(0x48, 0xed), &r, &pio);
	memcpy(pio.data, ((uint8_t[]){1, 0, 0, 0x80}), 4);
	complete_ok(&r, &insn, &pio);
	assert_true(r.rax == 0x80000001ull);
	assert_int_equal(r.rip, 0x2007);
}

/* OUTS forward and with DF=1, rep and single, data in execution order. */
static void test_pio_outs(void **state)
{
	struct user_regs_struct r = regs_at(0x3000);
	static struct gw_pio pio;
	struct gw_insn insn;

	ram_reset();
	r.rdx = 0x3f8;
	r.rsi = 0x100;
	r.rcx = 3;
	insn = prep(B(0xf3, 0x66, 0x6f), &r, &pio);
	assert_int_equal(pio.count, 3);
	assert_int_equal(pio.size, 2);
	assert_memory_equal(pio.data, g.ram + 0x100, 6);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rsi, 0x106);
	assert_int_equal(r.rcx, 0);
	assert_int_equal(r.rip, 0x3003);

	r.eflags |= DF;
	r.rsi = 0x104;
	r.rcx = 3;
	insn = prep(B(0xf3, 0x66, 0x6f), &r, &pio);
	assert_memory_equal(pio.data + 0, g.ram + 0x104, 2);
	assert_memory_equal(pio.data + 2, g.ram + 0x102, 2);
	assert_memory_equal(pio.data + 4, g.ram + 0x100, 2);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rsi, 0xfe);
	assert_int_equal(r.rcx, 0);
	assert_int_equal(r.rip, 0x3006);

	r.rcx = 77; /* no rep: rcx is left alone */
	insn = prep(B(0x6f), &r, &pio);
	assert_int_equal(pio.count, 1);
	assert_memory_equal(pio.data, g.ram + 0xfe, 4);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rsi, 0xfa);
	assert_int_equal(r.rcx, 77);
	r.eflags &= ~DF;
	insn = prep(B(0x6e), &r, &pio);
	assert_int_equal(pio.data[0], g.ram[0xfa]);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rsi, 0xfb);
	assert_int_equal(r.rip, 0x3008);
	guards_intact();
}

/* INS forward and with DF=1: data stored at RDI in execution order, nothing else touched. */
static void test_pio_ins(void **state)
{
	struct user_regs_struct r = regs_at(0x4000);
	static struct gw_pio pio;
	static uint8_t copy[RAM_SIZE];
	struct gw_insn insn;

	ram_reset();
	memcpy(copy, g.ram, RAM_SIZE);
	r.rdi = 0x200;
	r.rcx = 2;
	insn = prep(B(0xf3, 0x6d), &r, &pio);
	assert_true(pio.in);
	assert_int_equal(pio.count, 2);
	memcpy(pio.data, "ABCDEFGH", 8);
	complete_ok(&r, &insn, &pio);
	memcpy(copy + 0x200, "ABCDEFGH", 8);
	assert_memory_equal(g.ram, copy, RAM_SIZE);
	assert_int_equal(r.rdi, 0x208);
	assert_int_equal(r.rcx, 0);
	assert_int_equal(r.rip, 0x4002);

	r.eflags |= DF;
	r.rdi = 0x304;
	r.rcx = 2;
	insn = prep(B(0xf2, 0x6d), &r, &pio);
	memcpy(pio.data, "abcdefgh", 8);
	complete_ok(&r, &insn, &pio);
	memcpy(copy + 0x304, "abcd", 4);
	memcpy(copy + 0x300, "efgh", 4);
	assert_memory_equal(g.ram, copy, RAM_SIZE);
	assert_int_equal(r.rdi, 0x2fc);

	insn = prep(B(0x6c), &r, &pio);
	pio.data[0] = 'z';
	complete_ok(&r, &insn, &pio);
	copy[0x2fc] = 'z';
	assert_memory_equal(g.ram, copy, RAM_SIZE);
	assert_int_equal(r.rdi, 0x2fb);
	assert_int_equal(r.rip, 0x4005);
	guards_intact();
}

/* REP with rCX larger than a gw_pio: RIP stays, rCX shrinks, the next round finishes. */
static void test_pio_rep_partial(void **state)
{
	struct user_regs_struct r = regs_at(0x5000);
	static struct gw_pio pio;
	struct gw_insn insn;

	ram_reset();
	r.rsi = 0;
	r.rcx = 5000;
	insn = prep(B(0xf3, 0x6e), &r, &pio);
	assert_int_equal(pio.count, 4096);
	assert_memory_equal(pio.data, g.ram, 4096);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rip, 0x5000);
	assert_int_equal(r.rcx, 904);
	assert_int_equal(r.rsi, 4096);
	insn = prep(B(0xf3, 0x6e), &r, &pio);
	assert_int_equal(pio.count, 904);
	assert_memory_equal(pio.data, g.ram + 4096, 904);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rip, 0x5002);
	assert_int_equal(r.rcx, 0);
	assert_int_equal(r.rsi, 5000);

	r.rdi = 0x100;
	r.rcx = 2000;
	insn = prep(B(0xf3, 0x6d), &r, &pio);
	assert_int_equal(pio.count, 1024);
	memset(pio.data, 0xa1, 4096);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rip, 0x5002);
	assert_int_equal(r.rcx, 976);
	assert_int_equal(r.rdi, 0x1100);
	insn = prep(B(0xf3, 0x6d), &r, &pio);
	assert_int_equal(pio.count, 976);
	memset(pio.data, 0xa2, 976 * 4);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rip, 0x5004);
	assert_int_equal(r.rdi, 0x100 + 8000);
	assert_int_equal(g.ram[0x100], 0xa1);
	assert_int_equal(g.ram[0x1100], 0xa2);
	assert_int_equal(g.ram[0x100 + 7999], 0xa2);
	assert_int_equal(g.ram[0x100 + 8000], (uint8_t)((0x100 + 8000) * 7 + 3));
	guards_intact();
}

/* REP with rCX == 0 moves nothing and just steps over the instruction. */
static void test_pio_rep_zero(void **state)
{
	struct user_regs_struct r = regs_at(0x6000);
	static struct gw_pio pio;
	struct gw_insn insn;

	r.rsi = RAM_SIZE * 4; /* not looked at */
	insn = prep(B(0xf3, 0x6e), &r, &pio);
	assert_int_equal(pio.count, 0);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rip, 0x6002);
	assert_int_equal(r.rsi, RAM_SIZE * 4);
	assert_int_equal(r.rcx, 0);

	r.rcx = 0x100000000ull; /* ECX is 0 */
	insn = prep(B(0x67, 0xf3, 0x6c), &r, &pio);
	assert_int_equal(pio.count, 0);
	complete_ok(&r, &insn, &pio);
	assert_int_equal(r.rip, 0x6005);
	assert_int_equal(r.rcx, 0);
}

/* 0x67: ESI/EDI/ECX are used, wrap at 32 bits and are written zero-extended. */
static void test_pio_addr32(void **state)
{
	struct user_regs_struct r = regs_at(0x7000);
	static struct gw_pio pio;
	struct gw_insn insn;

	ram_reset();
	r.rsi = 0xdead000000000010ull;
	r.rcx = 0xbeef000000000002ull;
	insn = prep(B(0x67, 0xf3, 0x6e), &r, &pio);
	assert_int_equal(pio.count, 2);
	assert_memory_equal(pio.data, g.ram + 0x10, 2);
	complete_ok(&r, &insn, &pio);
	assert_true(r.rsi == 0x12);
	assert_true(r.rcx == 0);
	assert_int_equal(r.rip, 0x7003);

	r.rcx = 0xffff000000001001ull;
	r.rdi = 0xffffffff00000000ull;
	insn = prep(B(0x67, 0xf3, 0x6c), &r, &pio);
	assert_int_equal(pio.count, 4096);
	complete_ok(&r, &insn, &pio);
	assert_true(r.rcx == 1);
	assert_true(r.rdi == 4096);
	assert_int_equal(r.rip, 0x7003);

	r.eflags |= DF; /* non-rep with DF from EDI 0: wraps to 0xffffffff, zero-extended */
	r.rdi = 0x1234567800000000ull;
	insn = prep(B(0x67, 0x6c), &r, &pio);
	complete_ok(&r, &insn, &pio);
	assert_true(r.rdi == 0xffffffffull);
	guards_intact();
}

/* Guest ranges outside RAM, or wrapping, are -EFAULT with registers and RAM untouched. */
static void test_pio_out_of_range(void **state)
{
	static const struct {
		uint8_t code[3];
		size_t n;
		uint64_t reg, rcx;
		bool df;
	} cases[] = {
	    {{0x6e}, 1, RAM_SIZE, 0, false},				/* just past the end */
	    {{0x66, 0x6f}, 2, RAM_SIZE - 1, 0, false},			/* straddles the end */
	    {{0xf3, 0x6e}, 2, RAM_SIZE - 10, 11, false},		/* rep runs off the end */
	    {{0xf3, 0x6e}, 2, 2, 4, true},				/* DF wraps below 0 */
	    {{0x6f}, 1, ~0ull - 1, 0, false},				/* wraps at 2^64 */
	    {{0xf3, 0x6f}, 2, 0x8000000000000000ull, 1, true},		/* far away */
	    {{0x6c}, 1, RAM_SIZE, 0, false},				/* INS past the end */
	    {{0xf3, 0x6d}, 2, 4, 3, true},				/* INS wraps below 0 */
	    {{0x67, 0x6d}, 2, 0x100000000ull + RAM_SIZE - 2, 0, false}, /* EDI straddles */
	    {{0x67, 0xf3, 0x6e}, 3, 1, 3, true},			/* ESI wraps below 0 */
	};
	static struct gw_pio pio;
	static uint8_t copy[RAM_SIZE];
	struct user_regs_struct r, before;
	struct gw_insn insn;
	char err[160];

	ram_reset();
	memcpy(copy, g.ram, RAM_SIZE);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		r = regs_at(0x8000);
		r.rsi = r.rdi = cases[c].reg;
		r.rcx = cases[c].rcx;
		r.eflags |= cases[c].df ? DF : 0;
		before = r;
		assert_int_equal(gw_insn_decode(cases[c].code, cases[c].n, &insn), 0);
		assert_int_equal(gw_pio_prepare(&r, &insn, g.ram, RAM_SIZE, &pio, err, sizeof(err)),
				 -EFAULT);
		assert_non_null(strstr(err, "outside guest RAM"));
		assert_memory_equal(&r, &before, sizeof(r));
	}
	/* the last byte of RAM is fine */
	r = regs_at(0x8000);
	r.rsi = RAM_SIZE - 1;
	insn = prep(B(0x6e), &r, &pio);
	assert_int_equal(pio.data[0], g.ram[RAM_SIZE - 1]);

	/* RDI moved out of RAM between prepare and complete: refused, nothing written */
	r.rdi = RAM_SIZE - 4;
	r.rcx = 2;
	insn = prep(B(0xf3, 0x66, 0x6d), &r, &pio);
	memset(pio.data, 0xee, 4);
	r.rdi = RAM_SIZE - 2;
	before = r;
	assert_int_equal(gw_pio_complete(&r, &insn, &pio, g.ram, RAM_SIZE, err, sizeof(err)),
			 -EFAULT);
	assert_string_equal(err, "rep insw (%dx),%es:(%rdi): destination 0x3ffe, 4 bytes, "
				 "outside guest RAM (0x4000 bytes)");
	assert_memory_equal(&r, &before, sizeof(r));
	assert_memory_equal(g.ram, copy, RAM_SIZE);
	guards_intact();
}

/* ESI near 4 GiB: a range that would wrap at 2^32 is refused even if RAM were that big. */
static void test_pio_addr32_wrap(void **state)
{
	struct user_regs_struct r = regs_at(0x9000);
	static struct gw_pio pio;
	struct gw_insn insn;
	char err[160];

	r.rsi = 0xffffffffull;
	assert_int_equal(gw_insn_decode(B(0x67, 0x66, 0x6f), &insn), 0);
	assert_int_equal(gw_pio_prepare(&r, &insn, g.ram, 1ull << 33, &pio, err, sizeof(err)),
			 -EFAULT);
	assert_string_equal(err, "outsw %ds:(%esi),(%dx): source 0xffffffff, 2 bytes, outside "
				 "guest RAM (0x200000000 bytes)");
	assert_int_equal(r.rip, 0x9000);
}

/* A pio that does not match the instruction and registers is refused, nothing changed. */
static void test_pio_complete_mismatch(void **state)
{
	struct user_regs_struct r = regs_at(0xa000), before;
	static struct gw_pio pio;
	struct gw_insn out, in;
	char err[160];

	out = prep(B(0xee), &r, &pio);
	assert_int_equal(gw_insn_decode(B(0xec), &in), 0);
	before = r;
	assert_int_equal(gw_pio_complete(&r, &in, &pio, g.ram, RAM_SIZE, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err,
			    "inb (%dx),%al: port access (size 1, count 1, out) does not match");
	pio.size = 2;
	assert_int_equal(gw_pio_complete(&r, &out, &pio, g.ram, RAM_SIZE, NULL, 0), -EINVAL);
	pio.size = 1;
	pio.count = 2;
	assert_int_equal(gw_pio_complete(&r, &out, &pio, g.ram, RAM_SIZE, NULL, 0), -EINVAL);
	r.rcx = 3;
	out = prep(B(0xf3, 0x6e), &r, &pio);
	before = r;
	r.rcx = 2; /* rCX changed under the pio */
	assert_int_equal(gw_pio_complete(&r, &out, &pio, g.ram, RAM_SIZE, NULL, 0), -EINVAL);
	r.rcx = 3;
	assert_memory_equal(&r, &before, sizeof(r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pio_invalid_args),
	    cmocka_unit_test(test_pio_in_out),
	    cmocka_unit_test(test_pio_in_extension),
	    cmocka_unit_test(test_pio_outs),
	    cmocka_unit_test(test_pio_ins),
	    cmocka_unit_test(test_pio_rep_partial),
	    cmocka_unit_test(test_pio_rep_zero),
	    cmocka_unit_test(test_pio_addr32),
	    cmocka_unit_test(test_pio_out_of_range),
	    cmocka_unit_test(test_pio_addr32_wrap),
	    cmocka_unit_test(test_pio_complete_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
