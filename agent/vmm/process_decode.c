/* process_decode.c -- decode the guest instruction that faulted to the process backend's
 * supervisor, and emulate port I/O on its ptrace registers (API in process_decode.h). */
#include "process_decode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RFLAGS_DF (1ull << 10)

/* Decoder failures, mapped to insn.text and -EINVAL by decode_fail(). */
#define DEC_TOO_LONG  (-E2BIG)
#define DEC_TRUNCATED (-ENODATA)
#define DEC_UNKNOWN   (-EILSEQ)
#define DEC_SEGMENT   (-EOPNOTSUPP) /* FS/GS override on OUTS */
#define DEC_LOCK      (-EPERM)

enum { SEG_NONE = -1, SEG_FS = 4, SEG_GS = 5 };
static const char *const seg_names[] = {"es", "cs", "ss", "ds", "fs", "gs"};

static const char *const gpr64[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
				    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

/* Decoding state: the bytes, how far we are, and the prefixes seen. */
struct dec {
	const uint8_t *code;
	size_t avail;
	size_t pos;
	bool opsize16, addr32, rep, lock;
	uint8_t rex; /* the REX byte right before the opcode, or 0 */
	int seg;     /* index into seg_names, or SEG_NONE */
};

__attribute__((format(printf, 2, 3))) static void say(struct gw_insn *insn, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(insn->text, sizeof(insn->text), fmt, ap);
	va_end(ap);
}

/* The next instruction byte, unless that would pass 15 bytes or the end of the code. */
static int fetch(struct dec *d, uint8_t *b)
{
	if (d->pos >= GW_INSN_MAX_LEN)
		return DEC_TOO_LONG;
	if (d->pos >= d->avail)
		return DEC_TRUNCATED;
	*b = d->code[d->pos++];
	return 0;
}

/* Record b if it is a legacy prefix; false for anything else. */
static bool legacy_prefix(struct dec *d, uint8_t b)
{
	static const uint8_t segs[] = {0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65};

	switch (b) {
	case 0x66:
		d->opsize16 = true;
		return true;
	case 0x67:
		d->addr32 = true;
		return true;
	case 0xf2:
	case 0xf3:
		d->rep = true;
		return true;
	case 0xf0:
		d->lock = true;
		return true;
	}
	for (int i = 0; i < (int)sizeof(segs); i++) {
		if (b == segs[i]) {
			d->seg = i;
			return true;
		}
	}
	return false;
}

/* Skip the prefixes and return the opcode byte in *op. A REX followed by a legacy prefix
 * is ignored, as the CPU ignores it. */
static int decode_prefixes(struct dec *d, uint8_t *op)
{
	for (;;) {
		int r = fetch(d, op);
		if (r)
			return r;
		if (*op >= 0x40 && *op <= 0x4f) {
			d->rex = *op;
			continue;
		}
		if (!legacy_prefix(d, *op))
			return 0;
		d->rex = 0;
	}
}

/* A ModRM byte and the SIB and displacement it implies (64-bit mode; 0x67 uses the same
 * forms). */
static int modrm(struct dec *d, uint8_t *m)
{
	uint8_t sib = 0, b, skip = 0;
	int r = fetch(d, m);
	if (r || *m >= 0xc0)
		return r;
	uint8_t mod = *m >> 6, rm = *m & 7;
	if (rm == 4 && (r = fetch(d, &sib)))
		return r;
	if (mod == 1)
		skip = 1;
	else if (mod == 2 || (mod == 0 && (rm == 5 || (rm == 4 && (sib & 7) == 5))))
		skip = 4;
	while (skip-- && !r)
		r = fetch(d, &b);
	return r;
}

static int named(struct gw_insn *insn, enum gw_insn_kind kind, const char *name)
{
	insn->kind = kind;
	say(insn, "%s", name);
	return 0;
}

static uint8_t io_size(const struct dec *d, uint8_t op)
{
	if (!(op & 1))
		return 1;
	if (d->rex & 0x08) /* REX.W wins over 0x66; I/O has no 64-bit form */
		return 4;
	return d->opsize16 ? 2 : 4;
}

static char io_suffix(uint8_t size)
{
	return size == 1 ? 'b' : size == 2 ? 'w' : 'l';
}

static const char *io_acc(uint8_t size)
{
	return size == 1 ? "al" : size == 2 ? "ax" : "eax";
}

/* E4-E7 (port imm8) and EC-EF (port DX): bit 1 is the direction, bit 0 the size. */
static int decode_inout(struct dec *d, uint8_t op, struct gw_insn *insn)
{
	char port[8] = "(%dx)";
	bool out = op & 2;

	insn->kind = out ? GW_INSN_OUT : GW_INSN_IN;
	insn->size = io_size(d, op);
	if (op <= 0xe7) {
		int r = fetch(d, &insn->imm);
		if (r)
			return r;
		insn->port_imm = true;
		snprintf(port, sizeof(port), "$0x%x", insn->imm);
	}
	if (out)
		say(insn, "out%c %%%s,%s", io_suffix(insn->size), io_acc(insn->size), port);
	else
		say(insn, "in%c %s,%%%s", io_suffix(insn->size), port, io_acc(insn->size));
	return 0;
}

/* 6C/6D ins, 6E/6F outs; F2 or F3 repeats them; only OUTS' source segment can be
 * overridden, and FS/GS bases are not modelled. */
static int decode_string(struct dec *d, uint8_t op, struct gw_insn *insn)
{
	const char *rep = d->rep ? "rep " : "";
	bool outs = op & 2;

	insn->kind = outs ? GW_INSN_OUTS : GW_INSN_INS;
	insn->size = io_size(d, op);
	insn->rep = d->rep;
	insn->addr32 = d->addr32;
	if (!outs) {
		say(insn, "%sins%c (%%dx),%%es:(%%%s)", rep, io_suffix(insn->size),
		    d->addr32 ? "edi" : "rdi");
		return 0;
	}
	say(insn, "%souts%c %%%s:(%%%s),(%%dx)", rep, io_suffix(insn->size),
	    seg_names[d->seg == SEG_NONE ? 3 : d->seg], d->addr32 ? "esi" : "rsi");
	return d->seg == SEG_FS || d->seg == SEG_GS ? DEC_SEGMENT : 0;
}

static int decode_int(struct gw_insn *insn, uint8_t vector, const char *name)
{
	insn->kind = GW_INSN_INT;
	insn->int_vector = vector;
	if (name)
		say(insn, "%s", name);
	else
		say(insn, "int $0x%x", vector);
	return 0;
}

/* 0F 00: the LDT/TR group (sldt and str fault at CPL 3 only with UMIP). */
static int decode_group6(struct dec *d, struct gw_insn *insn)
{
	static const char *const names[8] = {"sldt", "str", "lldt", "ltr", "verr", "verw"};
	uint8_t m;
	int r = modrm(d, &m);
	if (r)
		return r;
	if (!names[(m >> 3) & 7])
		return DEC_UNKNOWN;
	return named(insn, GW_INSN_PRIV, names[(m >> 3) & 7]);
}

/* 0F 01 with mod == 3: one name per whole ModRM byte. */
static const char *group7_reg_name(uint8_t m)
{
	static const struct {
		uint8_t m;
		const char *name;
	} names[] = {
	    {0xc1, "vmcall"},  {0xc2, "vmlaunch"}, {0xc3, "vmresume"}, {0xc4, "vmxoff"},
	    {0xc8, "monitor"}, {0xc9, "mwait"},	   {0xca, "clac"},     {0xcb, "stac"},
	    {0xd1, "xsetbv"},  {0xd8, "vmrun"},	   {0xd9, "vmmcall"},  {0xda, "vmload"},
	    {0xdb, "vmsave"},  {0xdc, "stgi"},	   {0xdd, "clgi"},     {0xde, "skinit"},
	    {0xdf, "invlpga"}, {0xf8, "swapgs"},
	};
	if (((m >> 3) & 7) == 4)
		return "smsw";
	if (((m >> 3) & 7) == 6)
		return "lmsw";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].m == m)
			return names[i].name;
	}
	return NULL;
}

/* 0F 01: descriptor tables, invlpg, and the register-form system instructions. */
static int decode_group7(struct dec *d, struct gw_insn *insn)
{
	static const char *const mem[8] = {"sgdt", "sidt", "lgdt", "lidt",
					   "smsw", NULL,   "lmsw", "invlpg"};
	const char *name;
	uint8_t m;
	int r = modrm(d, &m);
	if (r)
		return r;
	if (m == 0xf9)
		return named(insn, GW_INSN_RDTSC, "rdtscp");
	name = m >= 0xc0 ? group7_reg_name(m) : mem[(m >> 3) & 7];
	if (!name)
		return DEC_UNKNOWN;
	return named(insn, GW_INSN_PRIV, name);
}

/* 0F 20-23: mov from/to CRn/DRn; always register operands, whatever mod says. */
static int decode_mov_crdr(struct dec *d, uint8_t op, struct gw_insn *insn)
{
	const char *kind = op & 1 ? "dr" : "cr";
	unsigned n;
	const char *gpr;
	uint8_t m;
	int r = fetch(d, &m);
	if (r)
		return r;
	n = ((m >> 3) & 7) | (d->rex & 0x04 ? 8 : 0);
	gpr = gpr64[(m & 7) | (d->rex & 0x01 ? 8 : 0)];
	insn->kind = GW_INSN_PRIV;
	if (op & 2)
		say(insn, "mov %%%s,%%%s%u", gpr, kind, n);
	else
		say(insn, "mov %%%s%u,%%%s", kind, n, gpr);
	return 0;
}

/* The two-byte opcodes that fault at CPL 3 (or are trapped by the supervisor's choice). */
static int decode_0f(struct dec *d, struct gw_insn *insn)
{
	bool w = d->rex & 0x08;
	uint8_t op;
	int r = fetch(d, &op);
	if (r)
		return r;
	switch (op) {
	case 0x00:
		return decode_group6(d, insn);
	case 0x01:
		return decode_group7(d, insn);
	case 0x05:
		return named(insn, GW_INSN_SYSCALL, "syscall");
	case 0x06:
		return named(insn, GW_INSN_PRIV, "clts");
	case 0x07:
		return named(insn, GW_INSN_PRIV, w ? "sysretq" : "sysretl");
	case 0x08:
		return named(insn, GW_INSN_PRIV, "invd");
	case 0x09:
		return named(insn, GW_INSN_PRIV, "wbinvd");
	case 0x20 ... 0x23:
		return decode_mov_crdr(d, op, insn);
	case 0x30:
		return named(insn, GW_INSN_PRIV, "wrmsr");
	case 0x31:
		return named(insn, GW_INSN_RDTSC, "rdtsc");
	case 0x32:
		return named(insn, GW_INSN_PRIV, "rdmsr");
	case 0x33:
		return named(insn, GW_INSN_PRIV, "rdpmc");
	case 0x34:
		return named(insn, GW_INSN_SYSENTER, "sysenter");
	case 0x35:
		return named(insn, GW_INSN_PRIV, w ? "sysexitq" : "sysexit");
	case 0xa2:
		return named(insn, GW_INSN_CPUID, "cpuid");
	}
	return DEC_UNKNOWN;
}

static int decode_opcode(struct dec *d, uint8_t op, struct gw_insn *insn)
{
	uint8_t n;
	int r;

	switch (op) {
	case 0xe4 ... 0xe7:
	case 0xec ... 0xef:
		return decode_inout(d, op, insn);
	case 0x6c ... 0x6f:
		return decode_string(d, op, insn);
	case 0xfa:
		return named(insn, GW_INSN_CLI, "cli");
	case 0xfb:
		return named(insn, GW_INSN_STI, "sti");
	case 0xf4:
		return named(insn, GW_INSN_HLT, "hlt");
	case 0xcc:
		return decode_int(insn, 3, "int3");
	case 0xcd:
		r = fetch(d, &n);
		return r ? r : decode_int(insn, n, NULL);
	case 0xce:
		return decode_int(insn, 4, "into");
	case 0xf1:
		return decode_int(insn, 1, "int1");
	case 0xcf:
		return named(insn, GW_INSN_PRIV,
			     d->rex & 0x08 ? "iretq"
			     : d->opsize16 ? "iretw"
					   : "iretl");
	case 0x0f:
		return decode_0f(d, insn);
	}
	return DEC_UNKNOWN;
}

/* " xx xx ..." for up to 8 bytes of code. */
static void hex_bytes(char *out, size_t outlen, const uint8_t *code, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && i < 8 && used < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, " %02x", code[i]);
}

/* Turn a decoder failure into kind UNKNOWN, len 0 and a text that says why. */
static void decode_fail(const struct dec *d, int why, struct gw_insn *insn)
{
	char done[GW_INSN_TEXT_LEN], hex[32];

	memcpy(done, insn->text, sizeof(done));
	hex_bytes(hex, sizeof(hex), d->code, d->avail);
	memset(insn, 0, sizeof(*insn));
	switch (why) {
	case DEC_TOO_LONG:
		say(insn, "insn longer than %d bytes", GW_INSN_MAX_LEN);
		break;
	case DEC_TRUNCATED:
		say(insn, "truncated insn%s", d->avail ? hex : " (no bytes)");
		break;
	case DEC_SEGMENT:
		say(insn, "%s unsupported", done);
		break;
	case DEC_LOCK:
		say(insn, "lock %s (#UD)", done);
		break;
	default:
		say(insn, "unknown opcode%s", hex);
	}
}

int gw_insn_decode(const uint8_t *code, size_t avail, struct gw_insn *insn)
{
	struct dec d = {.code = code, .avail = avail, .seg = SEG_NONE};
	uint8_t op;
	int r;

	if (!insn)
		return -EINVAL;
	memset(insn, 0, sizeof(*insn));
	if (!code) {
		say(insn, "no code");
		return -EINVAL;
	}
	r = decode_prefixes(&d, &op);
	if (!r)
		r = decode_opcode(&d, op, insn);
	if (!r && d.lock)
		r = DEC_LOCK; /* nothing decoded here is lockable */
	if (r) {
		decode_fail(&d, r, insn);
		return -EINVAL;
	}
	insn->len = (uint8_t)d.pos;
	return 0;
}

int gw_insn_decode_at(const uint8_t *ram, uint64_t ram_size, uint64_t rip, struct gw_insn *insn)
{
	if (!ram || !insn)
		return -EINVAL;
	if (rip >= ram_size) {
		memset(insn, 0, sizeof(*insn));
		say(insn, "rip 0x%llx outside guest RAM", (unsigned long long)rip);
		return -EFAULT;
	}
	uint64_t left = ram_size - rip;
	return gw_insn_decode(ram + rip, left < GW_INSN_MAX_LEN ? (size_t)left : GW_INSN_MAX_LEN,
			      insn);
}

bool gw_insn_is_pio(const struct gw_insn *insn)
{
	return insn && (insn->kind == GW_INSN_IN || insn->kind == GW_INSN_OUT ||
			insn->kind == GW_INSN_INS || insn->kind == GW_INSN_OUTS);
}

/* ---- port I/O on the registers ---- */

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen, const char *fmt,
						       ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* An address register as the instruction sees it (ESI/EDI/ECX with 0x67). */
static uint64_t areg(const struct gw_insn *insn, uint64_t v)
{
	return insn->addr32 ? (uint32_t)v : v;
}

static bool is_rep(const struct gw_insn *insn)
{
	return insn->rep && (insn->kind == GW_INSN_INS || insn->kind == GW_INSN_OUTS);
}

/* Elements this round: 1, or for REP as many of rCX as fit in a gw_pio. */
static uint32_t pio_count(const struct user_regs_struct *regs, const struct gw_insn *insn)
{
	uint64_t max = GW_PIO_DATA_MAX / insn->size, rcx = areg(insn, regs->rcx);
	if (!is_rep(insn))
		return 1;
	return (uint32_t)(rcx < max ? rcx : max);
}

static bool insn_ok(const struct gw_insn *insn)
{
	return gw_insn_is_pio(insn) && (insn->size == 1 || insn->size == 2 || insn->size == 4) &&
	       insn->len >= 1 && insn->len <= GW_INSN_MAX_LEN;
}

/* count elements of size bytes from addr (downwards with df) must lie in RAM, without
 * wrapping at 2^64 (or 2^32 with addr32). */
static int guest_range(const struct gw_insn *insn, uint64_t addr, uint32_t count, bool df,
		       uint64_t ram_size)
{
	uint64_t len = (uint64_t)count * insn->size;
	uint64_t back = df ? len - insn->size : 0, lo;

	if (addr < back)
		return -EFAULT;
	lo = addr - back;
	if (lo > ram_size || len > ram_size - lo)
		return -EFAULT;
	if (insn->addr32 && lo + len > (1ull << 32))
		return -EFAULT;
	return 0;
}

static int range_error(const struct gw_insn *insn, const char *what, uint64_t addr, uint32_t count,
		       bool df, uint64_t ram_size, char *err, size_t errlen)
{
	errf(err, errlen, "%s: %s 0x%llx, %u bytes%s, outside guest RAM (0x%llx bytes)", insn->text,
	     what, (unsigned long long)addr, count * insn->size, df ? " downwards" : "",
	     (unsigned long long)ram_size);
	return -EFAULT;
}

/* Element i of a string op lives at addr + i * size, or addr - i * size with DF. */
static uint64_t elem_addr(uint64_t addr, uint32_t i, uint8_t size, bool df)
{
	return df ? addr - (uint64_t)i * size : addr + (uint64_t)i * size;
}

/* INS/OUTS: the guest range at rDI/rSI is checked before the port handler runs (so a bad
 * INS never touches the device); OUTS data is copied in execution order. */
static int string_prepare(const struct user_regs_struct *regs, const struct gw_insn *insn,
			  const uint8_t *ram, uint64_t ram_size, struct gw_pio *pio, char *err,
			  size_t errlen)
{
	bool outs = insn->kind == GW_INSN_OUTS, df = regs->eflags & RFLAGS_DF;
	uint64_t addr = areg(insn, outs ? regs->rsi : regs->rdi);

	if (!pio->count)
		return 0;
	if (guest_range(insn, addr, pio->count, df, ram_size))
		return range_error(insn, outs ? "source" : "destination", addr, pio->count, df,
				   ram_size, err, errlen);
	for (uint32_t i = 0; outs && i < pio->count; i++)
		memcpy(pio->data + (size_t)i * pio->size, ram + elem_addr(addr, i, pio->size, df),
		       pio->size);
	return 0;
}

int gw_pio_prepare(const struct user_regs_struct *regs, const struct gw_insn *insn,
		   const uint8_t *ram, uint64_t ram_size, struct gw_pio *pio, char *err,
		   size_t errlen)
{
	bool string = insn && (insn->kind == GW_INSN_INS || insn->kind == GW_INSN_OUTS);

	if (!regs || !pio || !insn_ok(insn) || (string && !ram)) {
		errf(err, errlen, "gw_pio_prepare: bad arguments");
		return -EINVAL;
	}
	pio->port = insn->port_imm ? insn->imm : (uint16_t)regs->rdx;
	pio->size = insn->size;
	pio->in = insn->kind == GW_INSN_IN || insn->kind == GW_INSN_INS;
	pio->count = pio_count(regs, insn);
	if (pio->in)
		memset(pio->data, 0, (size_t)pio->count * pio->size);
	if (insn->kind == GW_INSN_OUT) {
		for (int i = 0; i < pio->size; i++)
			pio->data[i] = (uint8_t)(regs->rax >> (8 * i));
	}
	return string ? string_prepare(regs, insn, ram, ram_size, pio, err, errlen) : 0;
}

/* The pio must be what gw_pio_prepare() made of these registers and this insn. */
static int pio_matches(const struct user_regs_struct *regs, const struct gw_insn *insn,
		       const struct gw_pio *pio, char *err, size_t errlen)
{
	bool in = insn->kind == GW_INSN_IN || insn->kind == GW_INSN_INS;

	if (pio->size != insn->size || pio->in != in || pio->count != pio_count(regs, insn)) {
		errf(err, errlen, "%s: port access (size %u, count %u, %s) does not match",
		     insn->text, pio->size, pio->count, pio->in ? "in" : "out");
		return -EINVAL;
	}
	return 0;
}

/* IN: AL and AX keep the rest of RAX, EAX zero-extends into it. */
static void load_acc(struct user_regs_struct *r, const struct gw_pio *pio)
{
	uint64_t v = 0, mask = pio->size == 4 ? ~0ull : (1ull << (8 * pio->size)) - 1;
	for (int i = 0; i < pio->size; i++)
		v |= (uint64_t)pio->data[i] << (8 * i);
	r->rax = (r->rax & ~mask) | v;
}

/* INS: the whole range is checked before any byte of RAM is written. */
static int store_ins(const struct user_regs_struct *r, const struct gw_insn *insn,
		     const struct gw_pio *pio, uint8_t *ram, uint64_t ram_size, char *err,
		     size_t errlen)
{
	uint64_t addr = areg(insn, r->rdi);
	bool df = r->eflags & RFLAGS_DF;

	if (!pio->count)
		return 0;
	if (!ram || guest_range(insn, addr, pio->count, df, ram_size))
		return range_error(insn, "destination", addr, pio->count, df, ram_size, err,
				   errlen);
	for (uint32_t i = 0; i < pio->count; i++)
		memcpy(ram + elem_addr(addr, i, pio->size, df), pio->data + (size_t)i * pio->size,
		       pio->size);
	return 0;
}

/* rSI/rDI after count elements: 32-bit wrap and zero extension with addr32. */
static uint64_t advance(const struct gw_insn *insn, uint64_t reg, const struct gw_pio *pio, bool df)
{
	uint64_t bytes = (uint64_t)pio->count * pio->size;
	uint64_t v = df ? reg - bytes : reg + bytes;
	return insn->addr32 ? (uint32_t)v : v;
}

int gw_pio_complete(struct user_regs_struct *regs, const struct gw_insn *insn,
		    const struct gw_pio *pio, uint8_t *ram, uint64_t ram_size, char *err,
		    size_t errlen)
{
	struct user_regs_struct r;
	bool df;
	int rc;

	if (!regs || !pio || !insn_ok(insn)) {
		errf(err, errlen, "gw_pio_complete: bad arguments");
		return -EINVAL;
	}
	rc = pio_matches(regs, insn, pio, err, errlen);
	if (rc)
		return rc;
	r = *regs;
	df = r.eflags & RFLAGS_DF;
	if (insn->kind == GW_INSN_IN)
		load_acc(&r, pio);
	if (insn->kind == GW_INSN_INS) {
		rc = store_ins(&r, insn, pio, ram, ram_size, err, errlen);
		if (rc)
			return rc;
		r.rdi = advance(insn, r.rdi, pio, df);
	}
	if (insn->kind == GW_INSN_OUTS)
		r.rsi = advance(insn, r.rsi, pio, df);
	if (is_rep(insn))
		r.rcx = areg(insn, r.rcx - pio->count);
	if (!is_rep(insn) || areg(insn, r.rcx) == 0)
		r.rip += insn->len;
	*regs = r;
	return 0;
}
