/* vmm_state.c -- vCPU and VM state as versioned blobs for live migration: the container,
 * the shared checks, and the VM-wide blob. Each backend writes and reads its own sections
 * (kvm_state.c, process_state.c).
 *
 * Blob, little-endian:
 *   header  u32 magic ("GWCP" vCPU, "GWVM" VM) | u16 version (1) | u16 header bytes (24) |
 *           u32 vCPU index | u32 vCPU count of the VM | u32 body bytes | u32 reserved (0)
 *   body    sections: u16 type | u16 flags (0) | u32 length | payload, padded with zeroes
 *           to 8 bytes. Every type at most once; unknown types are refused (a newer
 *           format bumps the version); payload sizes are exact.
 * Section types are listed in vmm_blob.h, one number space for every backend: a vCPU blob
 * of another backend is refused with both backends named (the agents also refuse such a
 * migration before anything moves, see agent_migrate.c). Every vCPU blob ends with the
 * shared GODWIT section (flags: stopped).
 */
#include "vmm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_log.h"
#include "vmm_blob.h"

#define SUBSYS "state"

#define VCPU_MAGIC   0x50435747u /* "GWCP" */
#define VM_MAGIC     0x4d565747u /* "GWVM" */
#define BLOB_VERSION 1
#define HDR_LEN	     24
#define SEC_HDR_LEN  8

/* ---- writing ---- */

static void put_header(struct gw_blob_writer *w, uint32_t magic, uint32_t index, uint32_t nvcpus)
{
	gw_blob_put_le32(w, magic);
	gw_blob_put_le16(w, BLOB_VERSION);
	gw_blob_put_le16(w, HDR_LEN);
	gw_blob_put_le32(w, index);
	gw_blob_put_le32(w, nvcpus);
	gw_blob_put_le32(w, 0); /* body length, patched by finish() */
	gw_blob_put_le32(w, 0);
}

static int finish(struct gw_blob_writer *w, size_t *len)
{
	uint32_t body = (uint32_t)(w->len - HDR_LEN);

	*len = w->len;
	if (w->len > w->cap)
		return -ENOSPC;
	for (int i = 0; i < 4; i++)
		w->p[16 + i] = (uint8_t)(body >> (8 * i));
	return 0;
}

/* ---- reading ---- */

/* Check header and section framing; fill s. Only framing: sizes are checked by callers. */
static int parse(struct gw_vmm *vmm, const uint8_t *buf, size_t len, uint32_t magic, uint32_t index,
		 struct gw_blob_sections *s)
{
	size_t off;

	memset(s, 0, sizeof(*s));
	if (!buf || len < HDR_LEN || gw_blob_le32(buf) != magic)
		return -EINVAL;
	if (gw_blob_le16(buf + 4) != BLOB_VERSION) {
		gw_err(SUBSYS, "%s: state blob version %u, this VMM reads %u", vmm->name,
		       gw_blob_le16(buf + 4), BLOB_VERSION);
		return -EINVAL;
	}
	if (gw_blob_le16(buf + 6) != HDR_LEN || gw_blob_le32(buf + 8) != index ||
	    gw_blob_le32(buf + 12) != vmm->nr_vcpus || gw_blob_le32(buf + 16) != len - HDR_LEN ||
	    gw_blob_le32(buf + 20) != 0)
		return -EINVAL;
	for (off = HDR_LEN; off < len;) {
		uint16_t type;
		uint32_t n;
		size_t padded;

		if (len - off < SEC_HDR_LEN)
			return -EINVAL;
		type = gw_blob_le16(buf + off);
		n = gw_blob_le32(buf + off + 4);
		if (type == 0 || type >= GW_SEC_MAX_ || gw_blob_le16(buf + off + 2) != 0 ||
		    s->data[type])
			return -EINVAL;
		off += SEC_HDR_LEN;
		padded = (size_t)n + (8 - n % 8) % 8;
		if (padded > len - off)
			return -EINVAL;
		s->data[type] = buf + off;
		s->len[type] = n;
		for (size_t i = n; i < padded; i++)
			if (buf[off + i])
				return -EINVAL;
		off += padded;
	}
	return 0;
}

/* ---- vCPU state ---- */

int gw_vmm_vcpu_save(struct gw_vmm *vmm, unsigned idx, uint8_t *buf, size_t cap, size_t *len)
{
	struct gw_blob_writer w = {.p = buf, .cap = buf ? cap : 0};
	struct gw_vcpu *vcpu;
	int r;

	if (idx >= vmm->nr_vcpus || !len)
		return -EINVAL;
	vcpu = &vmm->vcpus[idx];
	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_PAUSED) {
		r = -EINVAL;
		goto out;
	}
	put_header(&w, VCPU_MAGIC, idx, vmm->nr_vcpus);
	r = vmm->be->vcpu_save(vcpu, &w);
	if (r) {
		gw_err(SUBSYS, "%s: saving vcpu %u (%s): %s", vmm->name, idx, vmm->be->name,
		       strerror(-r));
		goto out;
	}
	{
		uint8_t g[8] = {vcpu->stopped ? GW_BLOB_STOPPED : 0, 0, 0, 0, 0, 0, 0, 0};

		gw_blob_put_section(&w, GW_SEC_GODWIT, g, sizeof(g));
	}
	r = finish(&w, len);
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}

/* Which backend wrote these sections (by the first backend-specific one found)? */
static const char *blob_backend(const struct gw_blob_sections *s)
{
	if (gw_blob_has_any(s, GW_SEC_REGS, GW_SEC_DEBUGREGS))
		return "kvm";
	if (gw_blob_has_any(s, GW_SEC_PROC_REGS, GW_SEC_PROC_XSTATE))
		return "process";
	return "unknown";
}

static int godwit_section_check(const struct gw_blob_sections *s)
{
	const uint8_t *g = s->data[GW_SEC_GODWIT];

	if (!gw_blob_sec_ok(s, GW_SEC_GODWIT, 8, false) || s->data[GW_SEC_VMINFO])
		return -EINVAL;
	if (gw_blob_le32(g) & ~GW_BLOB_STOPPED || gw_blob_le32(g + 4))
		return -EINVAL;
	return 0;
}

int gw_vmm_vcpu_restore(struct gw_vmm *vmm, unsigned idx, const uint8_t *buf, size_t len)
{
	struct gw_blob_sections s;
	struct gw_vcpu *vcpu;
	const char *from;
	bool stopped;
	int r;

	if (idx >= vmm->nr_vcpus)
		return -EINVAL;
	vcpu = &vmm->vcpus[idx];
	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_CREATED) {
		r = -EINVAL;
		goto out;
	}
	r = parse(vmm, buf, len, VCPU_MAGIC, idx, &s);
	if (!r)
		r = godwit_section_check(&s);
	from = r ? "unknown" : blob_backend(&s);
	if (!r && strcmp(from, vmm->be->name)) {
		gw_err(SUBSYS, "%s: vcpu %u state comes from the %s backend, this VM runs on %s",
		       vmm->name, idx, from, vmm->be->name);
		r = -EPROTONOSUPPORT;
		goto out;
	}
	if (!r)
		r = vmm->be->vcpu_restore(vcpu, &s);
	if (r) {
		gw_err(SUBSYS,
		       "%s: vcpu %u state blob of %zu bytes refused (corrupt, truncated "
		       "or for another VM shape): %s",
		       vmm->name, idx, len, strerror(-r));
		goto out;
	}
	stopped = gw_blob_le32(s.data[GW_SEC_GODWIT]) & GW_BLOB_STOPPED;
	if (stopped != vcpu->stopped) {
		vcpu->stopped = stopped;
		if (stopped)
			vmm->nr_stopped++;
		else
			vmm->nr_stopped--;
	}
	vcpu->restored = true;
	gw_debug(SUBSYS, "%s: vcpu %u restored (%zu bytes%s)", vmm->name, idx, len,
		 stopped ? ", stopped" : "");
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}

/* ---- VM-wide state ---- */

int gw_vmm_vm_save(struct gw_vmm *vmm, uint8_t *buf, size_t cap, size_t *len)
{
	struct gw_blob_writer w = {.p = buf, .cap = buf ? cap : 0};
	struct gw_blob_writer info;
	uint8_t raw[16];
	int r;

	if (!len)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_PAUSED) {
		r = -EINVAL;
		goto out;
	}
	info = (struct gw_blob_writer){.p = raw, .cap = sizeof(raw)};
	gw_blob_put_le64(&info, vmm->ram_size);
	gw_blob_put_le32(&info, vmm->nr_vcpus);
	gw_blob_put_le32(&info, vmm->tsc_khz);
	put_header(&w, VM_MAGIC, 0, vmm->nr_vcpus);
	gw_blob_put_section(&w, GW_SEC_VMINFO, raw, sizeof(raw));
	r = finish(&w, len);
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}

int gw_vmm_vm_restore(struct gw_vmm *vmm, const uint8_t *buf, size_t len)
{
	struct gw_blob_sections s;
	uint32_t khz;
	int r;

	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_CREATED) {
		r = -EINVAL;
		goto out;
	}
	r = parse(vmm, buf, len, VM_MAGIC, 0, &s);
	if (r)
		goto bad;
	for (int t = 1; t < GW_SEC_MAX_; t++)
		if (t != GW_SEC_VMINFO && s.data[t])
			goto bad;
	if (!gw_blob_sec_ok(&s, GW_SEC_VMINFO, 16, false) ||
	    gw_blob_le64(s.data[GW_SEC_VMINFO]) != vmm->ram_size ||
	    gw_blob_le32(s.data[GW_SEC_VMINFO] + 8) != vmm->nr_vcpus)
		goto bad;
	khz = gw_blob_le32(s.data[GW_SEC_VMINFO] + 12);
	if (khz && vmm->tsc_khz &&
	    (uint64_t)(khz > vmm->tsc_khz ? khz - vmm->tsc_khz : vmm->tsc_khz - khz) * 1000 >
		vmm->tsc_khz) {
		gw_err(SUBSYS,
		       "%s: guest TSC runs at %u kHz, this host at %u kHz and the VMM cannot "
		       "scale it (no TSC scaling)",
		       vmm->name, khz, vmm->tsc_khz);
		r = -ENOTSUP;
		goto out;
	}
	if (khz != vmm->tsc_khz)
		gw_warn(SUBSYS, "%s: guest TSC %u kHz, host %u kHz (within 0.1 %%)", vmm->name, khz,
			vmm->tsc_khz);
	vmm->tsc_khz = khz ? khz : vmm->tsc_khz;
	r = 0;
	goto out;
bad:
	gw_err(SUBSYS, "%s: VM state blob of %zu bytes refused", vmm->name, len);
	r = -EINVAL;
out:
	pthread_mutex_unlock(&vmm->lock);
	return r;
}
