/* vmm_blob.h -- the container of vCPU and VM state blobs (vmm_state.c): header, then
 * type-length-value sections, little-endian. Backends write and read their own sections
 * through these helpers; the layout is described in vmm_state.c. */
#ifndef GW_VMM_BLOB_H
#define GW_VMM_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Section types: one number space for every backend, so that a blob from another backend
 * is recognised (and refused by name) rather than misread. */
enum gw_sec_type {
	GW_SEC_REGS = 1,    /* kvm: struct kvm_regs */
	GW_SEC_SREGS,	    /* kvm: struct kvm_sregs */
	GW_SEC_FPU,	    /* kvm: struct kvm_fpu */
	GW_SEC_XSAVE,	    /* kvm: KVM_GET_XSAVE(2) area */
	GW_SEC_XCRS,	    /* kvm: struct kvm_xcrs */
	GW_SEC_MSRS,	    /* kvm: struct kvm_msrs + entries */
	GW_SEC_EVENTS,	    /* kvm: struct kvm_vcpu_events */
	GW_SEC_DEBUGREGS,   /* kvm: struct kvm_debugregs */
	GW_SEC_GODWIT,	    /* shared: u32 flags (GW_BLOB_STOPPED), u32 reserved */
	GW_SEC_VMINFO,	    /* VM blob: u64 RAM bytes, u32 vCPUs, u32 TSC kHz */
	GW_SEC_PROC_REGS,   /* process: GPRs, RIP, RFLAGS, FS/GS base (process_state.c) */
	GW_SEC_PROC_XSTATE, /* process: the XSAVE area as ptrace NT_X86_XSTATE has it */
	GW_SEC_MAX_
};

#define GW_BLOB_STOPPED 1u

struct gw_blob_writer {
	uint8_t *p;
	size_t cap, len; /* len keeps counting past cap, to report the size needed */
};

struct gw_blob_sections {
	const uint8_t *data[GW_SEC_MAX_];
	uint32_t len[GW_SEC_MAX_];
};

void gw_blob_put(struct gw_blob_writer *w, const void *src, size_t n);
void gw_blob_put_le16(struct gw_blob_writer *w, uint16_t v);
void gw_blob_put_le32(struct gw_blob_writer *w, uint32_t v);
void gw_blob_put_le64(struct gw_blob_writer *w, uint64_t v);
/* One section: type, flags 0, length, payload padded with zeroes to 8 bytes. */
void gw_blob_put_section(struct gw_blob_writer *w, enum gw_sec_type type, const void *data,
			 size_t n);
uint16_t gw_blob_le16(const uint8_t *p);
uint32_t gw_blob_le32(const uint8_t *p);
uint64_t gw_blob_le64(const uint8_t *p);
/* Present with exactly n bytes (or absent, when optional). */
bool gw_blob_sec_ok(const struct gw_blob_sections *s, enum gw_sec_type t, size_t n, bool optional);
/* Any section of types [first, last] present? */
bool gw_blob_has_any(const struct gw_blob_sections *s, enum gw_sec_type first,
		     enum gw_sec_type last);

#endif
