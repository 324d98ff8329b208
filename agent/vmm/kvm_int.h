/* kvm_int.h -- what the KVM backend's files (kvm_vm.c, kvm_dirty.c, kvm_state.c) share. */
#ifndef GW_KVM_INT_H
#define GW_KVM_INT_H

#include "vmm_backend.h"
#include "vmm_internal.h"

/* kvm_dirty.c */
/* After KVM_CREATE_VM, before any vCPU: enable the dirty ring (ring_entries != 0) or manual
 * dirty-log protect. */
int gw_kvm_dirty_vm_init(struct gw_vmm *vmm, unsigned ring_entries, char *err, size_t errlen);
/* After KVM_CREATE_VCPU: map the vCPU's dirty ring (ring mode). */
int gw_kvm_dirty_vcpu_init(struct gw_vmm *vmm, struct gw_vcpu *vcpu);
/* KVM_EXIT_DIRTY_RING_FULL on this vCPU's thread: harvest its ring, reset. */
void gw_kvm_dirty_ring_full(struct gw_vcpu *vcpu);
const char *gw_kvm_dirty_mode(struct gw_vmm *vmm);
int gw_kvm_dirty_enable(struct gw_vmm *vmm);
long gw_kvm_dirty_fetch(struct gw_vmm *vmm, uint64_t *bitmap);
int gw_kvm_dirty_reprotect(struct gw_vmm *vmm, uint64_t first, uint64_t n, const uint64_t *bits);
int gw_kvm_dirty_disable(struct gw_vmm *vmm);
void gw_kvm_dirty_destroy(struct gw_vmm *vmm);

/* kvm_state.c */
int gw_kvm_vcpu_save(struct gw_vcpu *vcpu, struct gw_blob_writer *w);
int gw_kvm_vcpu_restore(struct gw_vcpu *vcpu, const struct gw_blob_sections *s);
void gw_kvm_state_destroy(struct gw_vmm *vmm);

#endif
