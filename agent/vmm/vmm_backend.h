/* vmm_backend.h -- the VMM backend table: what differs between running guest code under KVM
 * (kvm_*.c) and natively in a ptrace-supervised sandbox process (process_*.c).
 *
 * Everything above this table is shared (vmm_core.c, vmm_vcpu.c, vmm_dirty.c, vmm_state.c):
 * guest RAM (the memfd and the agent's pool), the loader, the VM state machine, the port
 * handlers and console, pause/resume/stop, the throttle, the dirty-log API and its pending
 * bitmap, the state-blob container and the migration glue. A backend only runs guest code,
 * reports exits, and gets/sets what the host keeps of a vCPU.
 *
 * Threading: vm_create/vm_destroy run on the thread that creates/destroys the VM; the vcpu_*
 * run ops on that vCPU's own thread (one thread per vCPU, see vmm_vcpu.c); vcpu_kick from any
 * thread with vmm->lock held, and vcpu_kick_async from the kick signal handler (so it must be
 * async-signal-safe); the dirty ops under vmm->dirty_lock as vmm_dirty.c says; the state ops
 * with vmm->lock held and the VM PAUSED (save) or CREATED (restore).
 */
#ifndef GW_VMM_BACKEND_H
#define GW_VMM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

struct gw_vmm;
struct gw_vcpu;
struct gw_blob_writer; /* vmm_blob.h */
struct gw_blob_sections;

/* Why a vCPU left guest code. */
enum gw_exit_kind {
	GW_EXIT_INTR = 0, /* kicked (pause, stop, throttle) or spurious: re-check requests */
	GW_EXIT_IO,	  /* port I/O: handle, then vcpu_io_done */
	GW_EXIT_CRASH,	  /* the guest did something the ABI does not allow: reason says what */
};

#define GW_EXIT_IO_MAX 4096 /* bytes of one I/O exit (string I/O is split into exits) */

struct gw_vcpu_exit {
	enum gw_exit_kind kind;
	/* GW_EXIT_IO */
	uint16_t port;
	uint8_t size; /* 1, 2 or 4 */
	bool in;
	uint32_t count; /* elements; data holds size * count bytes */
	uint8_t *data;	/* backend-owned; IN: the handler fills it */
	/* GW_EXIT_IO, GW_EXIT_CRASH: where */
	uint64_t rip;
	/* GW_EXIT_CRASH */
	char reason[200];
};

struct gw_vmm_backend {
	const char *name; /* "kvm" or "process": logs, status, JSON "backend" */
	/* 0 when this host can run the backend, else -errno with why (no side effects) */
	int (*probe)(char *why, size_t len);

	/* -- VM lifetime -- */
	/* After vmm_core.c made RAM (vmm->ram, mem_fd) and, unless incoming, loaded the image:
	 * create the VM and its vCPUs with the ABI entry state (or none when incoming). Sets
	 * vmm->tsc_khz. */
	int (*vm_create)(struct gw_vmm *vmm, bool has_cmdline, char *err, size_t errlen);
	/* After every vCPU thread was joined: free what vm_create made. Also after a failed
	 * vm_create. */
	void (*vm_destroy)(struct gw_vmm *vmm);

	/* -- vCPU threads (on the vCPU's own thread unless said otherwise) -- */
	int (*vcpu_thread_init)(struct gw_vcpu *vcpu, char *err, size_t errlen);
	/* The loop ended: stopped (this vCPU wrote 0x502; the VM may run on) or VM over. */
	void (*vcpu_thread_exit)(struct gw_vcpu *vcpu, bool vm_over);
	/* Run guest code until the next exit. 0 with *ex filled, or -errno (crash). */
	int (*vcpu_run)(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex);
	/* The I/O exit was handled (IN: ex->data filled): complete the instruction. Returns true
	 * when the completion is pending until the next vcpu_run (KVM); then a pause calls
	 * vcpu_flush_io before parking. */
	bool (*vcpu_io_done)(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex);
	/* Complete a pending I/O without running guest code further (see vcpu_io_done). */
	void (*vcpu_flush_io)(struct gw_vcpu *vcpu);
	/* About to park (pause) or stop: make the vCPU's state readable by vcpu_save from
	 * another thread. */
	int (*vcpu_park)(struct gw_vcpu *vcpu);
	/* Optional: under vmm->lock, requests checked, just before vcpu_run: from now on a kick
	 * must make vcpu_run return at once. */
	void (*vcpu_arm)(struct gw_vcpu *vcpu);
	/* Optional: the guest RIP when an exit left ex->rip at ~0 (KVM reads it lazily). */
	uint64_t (*vcpu_rip)(struct gw_vcpu *vcpu);
	/* Make the vCPU leave guest code soon; any thread, vmm->lock held. */
	void (*vcpu_kick)(struct gw_vcpu *vcpu);
	/* The same from the kick signal handler on the vCPU's own thread. */
	void (*vcpu_kick_async)(struct gw_vcpu *vcpu);

	/* -- vCPU state (vmm_state.c frames the blob; vmm->lock held) -- */
	int (*vcpu_save)(struct gw_vcpu *vcpu, struct gw_blob_writer *w);
	/* Check everything first, then apply; a refused blob changes nothing. */
	int (*vcpu_restore)(struct gw_vcpu *vcpu, const struct gw_blob_sections *s);

	/* -- dirty log: the contract of KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (vmm_dirty.c
	 * holds dirty_lock: write for start/fetch/stop, read for reprotect) -- */
	const char *(*dirty_mode)(struct gw_vmm *vmm);
	/* Start: from now on every guest write is reported by fetch. */
	int (*dirty_enable)(struct gw_vmm *vmm);
	/* OR the pages written since the last fetch (or reprotect) into bitmap; the count of
	 * bits newly set, or -errno. Pages carried by the backend go to vmm->dirty pending. */
	long (*dirty_fetch)(struct gw_vmm *vmm, uint64_t *bitmap);
	/* Write-protect again the pages set in bits ([first, first + n), first % 64 == 0),
	 * just before they are read for sending. */
	int (*dirty_reprotect)(struct gw_vmm *vmm, uint64_t first, uint64_t n,
			       const uint64_t *bits);
	int (*dirty_disable)(struct gw_vmm *vmm);
	/* free the backend's tracking state (destroy) */
	void (*dirty_destroy)(struct gw_vmm *vmm);
};

extern const struct gw_vmm_backend gw_vmm_backend_kvm;
extern const struct gw_vmm_backend gw_vmm_backend_process;

/* The backend named (auto|kvm|process; NULL = auto): auto is kvm where it probes usable,
 * else process. NULL with why filled when the named one (or, for auto, every one) is not
 * usable here. */
const struct gw_vmm_backend *gw_vmm_backend_pick(const char *name, char *why, size_t len);

#endif
