/* fuzz_process_decode.c -- libFuzzer: the process backend's instruction decoder and port-I/O
 * emulation (agent/vmm/process_decode.c), which read guest-controlled bytes and registers.
 * Input: u8 bytes available | 15 code bytes | rax rcx rdx rsi rdi rflags (u64 each) | u16 RAM
 * size | RAM contents. Checks: a decoded instruction has 1 <= len <= available bytes and is
 * decoded the same from exactly its own bytes (nothing past it was read); a refusal has
 * kind UNKNOWN, len 0 and a reason; gw_insn_decode_at agrees with gw_insn_decode near the end
 * of RAM; gw_pio_prepare/gw_pio_complete keep within RAM, keep counts within bounds, move RIP
 * past the instruction unless a REP has work left, and change nothing when they refuse. */
#include <errno.h>

#include "fuzz_common.h"
#include "process_decode.h"

#define DF (1ull << 10)

static void same_insn(const struct gw_insn *a, const struct gw_insn *b)
{
	FUZZ_CHECK(a->kind == b->kind && a->len == b->len && a->size == b->size);
	FUZZ_CHECK(a->port_imm == b->port_imm && a->imm == b->imm && a->rep == b->rep);
	FUZZ_CHECK(a->addr32 == b->addr32 && a->int_vector == b->int_vector);
	FUZZ_CHECK(!strcmp(a->text, b->text));
}

static void check_pio(const struct gw_insn *insn, struct user_regs_struct *regs, uint8_t *ram,
		      uint64_t ram_size)
{
	static struct gw_pio pio;
	char err[128] = "";
	int r = gw_pio_prepare(regs, insn, ram, ram_size, &pio, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EFAULT);
	if (r) {
		FUZZ_CHECK(err[0] && memchr(err, 0, sizeof(err)));
		return;
	}
	FUZZ_CHECK(pio.size == insn->size && (pio.size == 1 || pio.size == 2 || pio.size == 4));
	FUZZ_CHECK((uint64_t)pio.count * pio.size <= GW_PIO_DATA_MAX);
	FUZZ_CHECK(insn->rep || pio.count == 1);
	FUZZ_CHECK(pio.in == (insn->kind == GW_INSN_IN || insn->kind == GW_INSN_INS));
	if (insn->port_imm)
		FUZZ_CHECK(pio.port == insn->imm);
	else
		FUZZ_CHECK(pio.port == (uint16_t)regs->rdx);
	if (pio.in)
		for (size_t i = 0; i < (size_t)pio.count * pio.size; i++)
			pio.data[i] = (uint8_t)(0xa5 ^ i); /* what a device answers */

	struct user_regs_struct after = *regs;
	uint8_t *ram_before = malloc(ram_size ? ram_size : 1);
	FUZZ_CHECK(ram_before);
	memcpy(ram_before, ram, ram_size);
	r = gw_pio_complete(&after, insn, &pio, ram, ram_size, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EFAULT);
	if (r) {
		FUZZ_CHECK(!memcmp(&after, regs, sizeof(after)));
		FUZZ_CHECK(!memcmp(ram_before, ram, ram_size));
	} else {
		bool string = insn->kind == GW_INSN_INS || insn->kind == GW_INSN_OUTS;
		uint64_t cmask = insn->addr32 ? 0xffffffffull : ~0ull;
		if (insn->rep) {
			uint64_t left = after.rcx & cmask;
			FUZZ_CHECK(left == ((regs->rcx & cmask) - pio.count) ||
				   (regs->rcx & cmask) == 0);
			FUZZ_CHECK(after.rip == (left ? regs->rip : regs->rip + insn->len));
		} else {
			FUZZ_CHECK(after.rip == regs->rip + insn->len);
		}
		if (!string) {
			FUZZ_CHECK(after.rsi == regs->rsi && after.rdi == regs->rdi);
			FUZZ_CHECK(!memcmp(ram_before, ram, ram_size)); /* IN/OUT touch no RAM */
		}
		if (insn->kind == GW_INSN_OUT || insn->kind == GW_INSN_OUTS)
			FUZZ_CHECK(after.rax == regs->rax && !memcmp(ram_before, ram, ram_size));
		if (insn->kind == GW_INSN_OUTS)
			FUZZ_CHECK(after.rdi == regs->rdi);
		if (insn->kind == GW_INSN_INS)
			FUZZ_CHECK(after.rsi == regs->rsi);
	}
	free(ram_before);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t code[GW_INSN_MAX_LEN];
	size_t avail = fuzz_u8(&in) % (GW_INSN_MAX_LEN + 1);
	for (size_t i = 0; i < sizeof(code); i++)
		code[i] = fuzz_u8(&in);
	struct user_regs_struct regs;
	memset(&regs, 0, sizeof(regs));
	regs.rax = fuzz_uint(&in, 8);
	regs.rcx = fuzz_uint(&in, 8);
	regs.rdx = fuzz_uint(&in, 8);
	regs.rsi = fuzz_uint(&in, 8);
	regs.rdi = fuzz_uint(&in, 8);
	regs.eflags = fuzz_uint(&in, 8) & (DF | 0x2);
	uint64_t ram_size = fuzz_uint(&in, 2) + 1;

	/* exactly avail bytes in their own allocation: ASan sees any read past them */
	uint8_t *exact = malloc(avail ? avail : 1);
	FUZZ_CHECK(exact);
	memcpy(exact, code, avail);
	struct gw_insn insn, again;
	int r = gw_insn_decode(exact, avail, &insn);
	FUZZ_CHECK(FUZZ_TERMINATED(insn.text));
	if (r) {
		FUZZ_CHECK(r == -EINVAL && insn.kind == GW_INSN_UNKNOWN && insn.len == 0);
		FUZZ_CHECK(insn.text[0]);
	} else {
		FUZZ_CHECK(insn.kind != GW_INSN_UNKNOWN && insn.len >= 1 && insn.len <= avail);
		FUZZ_CHECK(gw_insn_decode(exact, insn.len, &again) == 0);
		same_insn(&insn, &again);
		if (gw_insn_is_pio(&insn))
			FUZZ_CHECK(insn.size == 1 || insn.size == 2 || insn.size == 4);
	}
	free(exact);

	/* the same bytes at the end of guest RAM, through gw_insn_decode_at */
	uint8_t *ram = calloc(1, ram_size);
	FUZZ_CHECK(ram);
	memcpy(ram, in.p, in.n < ram_size ? in.n : ram_size);
	uint64_t rip = ram_size > avail ? ram_size - avail : 0;
	memcpy(ram + rip, code, ram_size - rip < avail ? ram_size - rip : avail);
	int r2 = gw_insn_decode_at(ram, ram_size, rip, &again);
	if (ram_size > avail && avail) { /* it reads the same avail bytes: the same answer */
		FUZZ_CHECK(r2 == r);
		if (!r)
			same_insn(&insn, &again);
	}
	FUZZ_CHECK(gw_insn_decode_at(ram, ram_size, ram_size, &again) == -EFAULT);

	if (!r && gw_insn_is_pio(&insn)) {
		regs.rip = rip;
		check_pio(&insn, &regs, ram, ram_size);
	}
	free(ram);
	return 0;
}
