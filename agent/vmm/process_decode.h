/* process_decode.h -- the process backend's x86-64 decoder for faulting guest instructions
 * and its port-I/O emulation helpers (pure: no ptrace, no state, no allocation). */
#ifndef GW_PROCESS_DECODE_H
#define GW_PROCESS_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

/*
 * The process backend runs guest code natively at CPL 3 in 64-bit mode; anything that needs
 * IOPL or CPL 0 faults to the supervisor, which decodes the instruction at regs.rip with
 * gw_insn_decode() (or gw_insn_decode_at() straight from guest RAM), then either emulates
 * it (port I/O, cli/sti) or names it in the crash reason (insn.text).
 *
 * Port I/O, like a KVM_EXIT_IO:
 *
 *   gw_pio_prepare(&regs, &insn, ram, ram_size, &pio, err, errlen)
 *   if (pio.count)                      // 0 only for REP with rCX == 0: no port access
 *           run the port handler on pio (fill pio.data for an IN, consume it for an OUT)
 *   gw_pio_complete(&regs, &insn, &pio, ram, ram_size, err, errlen)
 *   PTRACE_SETREGS
 *
 * A REP string op moves at most GW_PIO_DATA_MAX bytes per round; gw_pio_complete() then
 * leaves RIP on the instruction (rCX reduced, rSI/rDI advanced) so that it faults again for
 * the rest, as KVM does. Decoding choices worth knowing:
 * - 0x66 gives 16-bit I/O, REX.W wins over 0x66 and keeps 32-bit (IN/OUT have no 64-bit
 *   form); a REX byte followed by a legacy prefix is ignored, as the CPU does.
 * - F2 and F3 both make INS/OUTS repeat (the CPU does the same); on IN/OUT they are ignored.
 * - CS/DS/ES/SS overrides are accepted (base 0 in 64-bit mode). FS/GS bases are not
 *   modelled: an FS/GS override on OUTS is refused (-EINVAL, "... unsupported"); on
 *   everything else, INS included (its ES destination cannot be overridden), it is ignored.
 * - A LOCK prefix on any instruction decoded here raises #UD: refused (-EINVAL, "lock ...").
 * - INTO (CE) is classified GW_INSN_INT vector 4 although 64-bit mode raises #UD for it.
 */

#define GW_INSN_MAX_LEN	 15   /* the architectural limit, prefixes included */
#define GW_INSN_TEXT_LEN 48   /* insn.text, NUL included */
#define GW_PIO_DATA_MAX	 4096 /* bytes one gw_pio carries (REP string ops are cut to fit) */

enum gw_insn_kind {
	GW_INSN_UNKNOWN = 0, /* not decoded: unknown, invalid, truncated or too long */
	GW_INSN_IN,	     /* in $imm8 / in (%dx) */
	GW_INSN_OUT,	     /* out $imm8 / out (%dx) */
	GW_INSN_INS,	     /* [rep] ins (%dx),%es:(%rdi) */
	GW_INSN_OUTS,	     /* [rep] outs %ds:(%rsi),(%dx) */
	GW_INSN_CLI,
	GW_INSN_STI,
	GW_INSN_HLT,
	GW_INSN_INT,	  /* int $n, int3, into, int1 (int_vector says which) */
	GW_INSN_SYSCALL,  /* 0f 05 */
	GW_INSN_SYSENTER, /* 0f 34 */
	GW_INSN_PRIV,	  /* other system insns: lgdt, ltr, mov %crN, wrmsr, iretq, sysret... */
	GW_INSN_CPUID,	  /* 0f a2: faults only under arch_prctl(ARCH_SET_CPUID, 0) */
	GW_INSN_RDTSC,	  /* rdtsc, rdtscp: fault only under prctl(PR_SET_TSC, SIGSEGV) */
};

/* One decoded instruction. */
struct gw_insn {
	enum gw_insn_kind kind;
	uint8_t len;	    /* whole instruction, prefixes included; 0 when not decoded */
	uint8_t size;	    /* I/O operand bytes: 1, 2 or 4 (0 for non-I/O) */
	bool port_imm;	    /* IN/OUT: the port is imm, not DX */
	uint8_t imm;	    /* IN/OUT port when port_imm */
	bool rep;	    /* INS/OUTS with an F2 or F3 prefix */
	bool addr32;	    /* 0x67: INS/OUTS use ESI/EDI/ECX */
	uint8_t int_vector; /* GW_INSN_INT: 3 for int3, n for int $n, 4 for into, 1 for int1 */
	char text[GW_INSN_TEXT_LEN]; /* AT&T, e.g. "outb %al,(%dx)", "rep insw (%dx),%es:(%rdi)",
					"int $0x80", "lgdt"; or why decoding failed */
};

/*
 * Decode the instruction at code, reading at most avail bytes (avail may be < 15 near the
 * end of RAM). Returns 0 with insn filled, or -EINVAL: kind GW_INSN_UNKNOWN, len 0 and text
 * "unknown opcode 0f 0b ...", "truncated insn ...", "insn longer than 15 bytes",
 * "lock <insn> (#UD)" or "<outs> unsupported" (FS/GS override). -EINVAL too for NULL args.
 */
int gw_insn_decode(const uint8_t *code, size_t avail, struct gw_insn *insn);

/* gw_insn_decode() on guest RAM at rip: -EFAULT (text says so) when rip is outside RAM. */
int gw_insn_decode_at(const uint8_t *ram, uint64_t ram_size, uint64_t rip, struct gw_insn *insn);

/* True for the four port-I/O kinds, the ones gw_pio_prepare() takes. */
bool gw_insn_is_pio(const struct gw_insn *insn);

/* A port access prepared from the registers: what the VMM's port handlers see. */
struct gw_pio {
	uint16_t port;
	uint8_t size;	/* bytes per element: 1, 2 or 4 */
	bool in;	/* IN/INS: the handler fills data */
	uint32_t count; /* elements in data: 1, or for REP min(rCX, GW_PIO_DATA_MAX / size) */
	uint8_t data[GW_PIO_DATA_MAX]; /* element i at data[i * size], in execution order */
};

/*
 * Fill pio for an IN/OUT/INS/OUTS: port from DX or the immediate, OUT data from RAX, OUTS
 * data copied from guest RAM at RSI (ESI with addr32), backwards with RFLAGS.DF, IN/INS
 * data zeroed. The INS destination at RDI is range-checked here too, before any device is
 * touched. Registers are not changed. Returns 0, -EINVAL (NULL args, not port I/O) or
 * -EFAULT when the guest range is outside RAM or wraps; err (may be NULL) says why.
 */
int gw_pio_prepare(const struct user_regs_struct *regs, const struct gw_insn *insn,
		   const uint8_t *ram, uint64_t ram_size, struct gw_pio *pio, char *err,
		   size_t errlen);

/*
 * After the port handler ran on pio: IN loads AL/AX (other bits kept) or EAX (zero-extended
 * into RAX); INS stores pio->data to guest RAM at RDI; string ops move rSI/rDI by
 * count * size (backwards with DF); REP subtracts count from rCX; RIP moves past the
 * instruction unless a REP has rCX left. With addr32, ESI/EDI/ECX wrap at 32 bits and are
 * zero-extended. Returns 0, -EINVAL (NULL args, pio not matching insn and regs) or -EFAULT
 * (INS range outside RAM); on error neither regs nor RAM are changed.
 */
int gw_pio_complete(struct user_regs_struct *regs, const struct gw_insn *insn,
		    const struct gw_pio *pio, uint8_t *ram, uint64_t ram_size, char *err,
		    size_t errlen);

#endif
