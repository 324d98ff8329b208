/* process_state.c -- the process backend's vCPU state in state-blob sections (container:
 * vmm_state.c): what a CPL-3 guest owns of a thread.
 *   PROC_REGS    20 little-endian u64: rax rbx rcx rdx rsi rdi rbp rsp r8..r15 rip rflags
 *                fs_base gs_base (the selectors are the host's and are not carried)
 *   PROC_XSTATE  the XSAVE area as PTRACE_GETREGSET NT_X86_XSTATE gives it (x87, SSE, AVX
 *                and whatever this CPU has); a restore needs the same size here.
 * Save reads the copy the vCPU thread took when it parked (process_run.c); restore keeps the
 * state for the vCPU thread to apply when it seizes its sandbox thread.
 */
#include "process_int.h"

#include <errno.h>
#include <string.h>

#include "gw_log.h"
#include "vmm_blob.h"

#define SUBSYS	   "process-state"
#define NR_REGS	   20
#define RFLAGS_USR 0x00000cd5ull /* CF PF AF ZF SF DF OF: what user code can set and keep */

static void regs_to_words(const struct user_regs_struct *r, uint64_t w[NR_REGS])
{
	const uint64_t v[NR_REGS] = {r->rax, r->rbx, r->rcx,	r->rdx,	    r->rsi,
				     r->rdi, r->rbp, r->rsp,	r->r8,	    r->r9,
				     r->r10, r->r11, r->r12,	r->r13,	    r->r14,
				     r->r15, r->rip, r->eflags, r->fs_base, r->gs_base};

	memcpy(w, v, sizeof(v));
}

static void words_to_regs(const uint64_t w[NR_REGS], struct user_regs_struct *r)
{
	unsigned long long *dst[NR_REGS] = {&r->rax, &r->rbx, &r->rcx,	  &r->rdx,     &r->rsi,
					    &r->rdi, &r->rbp, &r->rsp,	  &r->r8,      &r->r9,
					    &r->r10, &r->r11, &r->r12,	  &r->r13,     &r->r14,
					    &r->r15, &r->rip, &r->eflags, &r->fs_base, &r->gs_base};

	for (int i = 0; i < NR_REGS; i++)
		*dst[i] = w[i];
}

int gw_proc_vcpu_save(struct gw_vcpu *vcpu, struct gw_blob_writer *w)
{
	struct gw_pvcpu *pv = vcpu->proc;
	uint64_t words[NR_REGS];
	uint8_t raw[NR_REGS * 8];

	if (!pv->xstate_valid) {
		gw_err(SUBSYS, "%s: vcpu %u: no parked state to save", vcpu->vmm->name,
		       vcpu->index);
		return -EAGAIN;
	}
	regs_to_words(&pv->regs, words);
	for (int i = 0; i < NR_REGS; i++)
		for (int b = 0; b < 8; b++)
			raw[i * 8 + b] = (uint8_t)(words[i] >> (8 * b));
	gw_blob_put_section(w, GW_SEC_PROC_REGS, raw, sizeof(raw));
	gw_blob_put_section(w, GW_SEC_PROC_XSTATE, pv->xstate, pv->xstate_len);
	return 0;
}

int gw_proc_vcpu_restore(struct gw_vcpu *vcpu, const struct gw_blob_sections *s)
{
	struct gw_vmm *vmm = vcpu->vmm;
	struct gw_pvcpu *pv = vcpu->proc;
	uint64_t words[NR_REGS];

	if (!gw_blob_sec_ok(s, GW_SEC_PROC_REGS, NR_REGS * 8, false) ||
	    !s->data[GW_SEC_PROC_XSTATE])
		return -EINVAL;
	if (s->len[GW_SEC_PROC_XSTATE] != vmm->proc->xstate_size) {
		gw_err(SUBSYS, "%s: vcpu %u: XSAVE area of %u bytes, this host's is %zu", vmm->name,
		       vcpu->index, s->len[GW_SEC_PROC_XSTATE], vmm->proc->xstate_size);
		return -EINVAL;
	}
	for (int i = 0; i < NR_REGS; i++)
		words[i] = gw_blob_le64(s->data[GW_SEC_PROC_REGS] + i * 8);
	if (words[18] >= (1ull << 47) || words[19] >= (1ull << 47)) /* non-canonical bases */
		return -EINVAL;
	words_to_regs(words, &pv->regs);
	pv->regs.eflags = (pv->regs.eflags & RFLAGS_USR) | 0x202;
	memcpy(pv->xstate, s->data[GW_SEC_PROC_XSTATE], s->len[GW_SEC_PROC_XSTATE]);
	pv->xstate_len = s->len[GW_SEC_PROC_XSTATE];
	pv->xstate_valid = true;
	pv->from_blob = true;
	return 0;
}
