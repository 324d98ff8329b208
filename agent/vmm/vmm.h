/* vmm.h -- the micro-VMM: one VM, guest RAM in a memfd, one thread per vCPU, guest code run
 * by a backend: KVM, or a ptrace-supervised sandbox process on hosts without /dev/kvm
 * (vmm_backend.h). Same guest ABI, same API, whichever runs it.
 *
 * Used by godwit-vmm (one process per VM) and, later, by the migration engine, which
 * reads RAM, dirty logs and vCPU state through these calls (never through KVM ioctls of
 * its own).
 *
 * Guest-physical layout set up by the VMM (the guest ABI, see docs/design.md):
 *   0x000500  GDT (null, code64 DPL0, data DPL0, code64 DPL3, data DPL3, TSS)
 *   0x001000  PML4, 0x2000 PDPT, 0x3000.. one page directory per GiB (2 MiB pages)
 *   0x080000  command line, NUL-terminated, at most GW_VMM_CMDLINE_MAX-1 bytes
 *   0x081000  TSS (104 bytes) + I/O permission bitmap allowing every port (8 KiB + 0xff);
 *             PVM hosts drop RFLAGS.IOPL and check port I/O against this bitmap
 *   0x100000  image (flat binary: entered at its first byte)
 *   top of RAM - index * 64 KiB: initial RSP of vCPU index
 */
#ifndef GW_VMM_H
#define GW_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_VMM_IMAGE_BASE   0x100000ull
#define GW_VMM_CMDLINE_GPA  0x80000ull
#define GW_VMM_CMDLINE_MAX  4096
#define GW_VMM_STACK_STRIDE (64 * 1024ull)
#define GW_VMM_MAX_VCPUS    64
#define GW_VMM_MIN_MEM_MIB  4
#define GW_VMM_MAX_MEM_MIB  (120 * 1024)

/* Console and exit ports of the guest ABI. */
#define GW_PORT_CONSOLE	    0x3f8
#define GW_PORT_CONSOLE_LSR 0x3fd
#define GW_PORT_EXIT_VM	    0x501
#define GW_PORT_EXIT_VCPU   0x502
#define GW_PORT_SLEEP	    0x503 /* Godwit extension: OUT n = this vCPU sleeps n ms (idle) */

enum gw_vmm_state {
	GW_VMM_CREATED = 0, /* built, vCPUs not started */
	GW_VMM_RUNNING,
	GW_VMM_PAUSED,
	GW_VMM_STOPPED, /* exit port written, or every vCPU stopped */
	GW_VMM_CRASHED, /* unknown port, MMIO, shutdown, internal error */
};

const char *gw_vmm_state_name(enum gw_vmm_state s);

struct gw_vmm_config {
	const char *name;
	const char *image_path;
	uint64_t mem_bytes;  /* multiple of 2 MiB */
	unsigned vcpus;	     /* 1..GW_VMM_MAX_VCPUS */
	const char *cmdline; /* may be NULL */
	int console_fd;	     /* guest console bytes are written here (O_APPEND file) */
	/* Dirty tracking mode, fixed at creation (KVM wants the ring before any vCPU):
	 * 0 = dirty bitmap (with manual protect when the host has it), else the per-vCPU
	 * dirty ring with this many entries per vCPU (power of two, >= 256). */
	unsigned dirty_ring_entries;
	/* Migration destination: no image, boot tables, command line or entry registers;
	 * RAM stays zero (the engine fills gw_vmm_ram()) and every vCPU must be given its
	 * state with gw_vmm_vcpu_restore() before gw_vmm_start(). image_path may be NULL. */
	bool incoming;
	/* > 0: guest RAM is this memfd (already populated, zero, at least mem_bytes long: the
	 * agent's pool for incoming migrations), taken over; else a fresh memfd. */
	int ram_fd;
	/* VM backend: "auto" (or NULL: kvm where /dev/kvm is usable, else process), "kvm" or
	 * "process". */
	const char *backend;
	/* Console log cap in bytes: past it the console file is cut back to its newest half
	 * (a ring of the last bytes the guest wrote). 0 = no cap. */
	size_t console_max_bytes;
};

struct gw_vmm;

/* The backend that would run a VM (name as in gw_vmm_config.backend): 0 with its name in
 * chosen, or -ENODEV with why none is usable. */
int gw_vmm_probe_backend(const char *name, const char **chosen, char *why, size_t len);
/* "kvm" or "process". */
const char *gw_vmm_backend_name(struct gw_vmm *vmm);
/* Bytes of guest console output the cap dropped so far. */
uint64_t gw_vmm_console_dropped(struct gw_vmm *vmm);


/* Pick the backend, make the memfd RAM, load the image, create the VM and its vCPUs with the
 * entry state. Nothing runs yet. 0 or -errno with a message in err. */
int gw_vmm_create(const struct gw_vmm_config *cfg, struct gw_vmm **out, char *err, size_t errlen);
/* Start the vCPU threads. */
int gw_vmm_start(struct gw_vmm *vmm);
/* Bring every vCPU out of KVM_RUN and park it; returns once all are parked. */
int gw_vmm_pause(struct gw_vmm *vmm);
int gw_vmm_resume(struct gw_vmm *vmm);
/* Stop the VM from outside (state STOPPED with the given reason). */
int gw_vmm_stop(struct gw_vmm *vmm, const char *reason);
/* Current state; exit status and reason (for STOPPED/CRASHED) when non-NULL. */
enum gw_vmm_state gw_vmm_get_state(struct gw_vmm *vmm, int *exit_status, char *reason,
				   size_t reason_len);
/* An eventfd that becomes readable whenever the state changes on its own (guest stop,
 * crash); read it to clear. */
int gw_vmm_event_fd(struct gw_vmm *vmm);
/* Flush buffered console bytes to console_fd. */
void gw_vmm_console_flush(struct gw_vmm *vmm);
/* Join the vCPU threads and free everything. */
void gw_vmm_destroy(struct gw_vmm *vmm);

/* Guest RAM as mapped in this process (for the migration engine). */
uint8_t *gw_vmm_ram(struct gw_vmm *vmm, uint64_t *size);
/* The first populated range of guest RAM at or after byte from (SEEK_DATA/SEEK_HOLE on the
 * memfd): 0 with [*start, *end), -ENXIO when the rest is a hole, or -errno. */
int gw_vmm_ram_extent(struct gw_vmm *vmm, uint64_t from, uint64_t *start, uint64_t *end);
/* Give back pool RAM beyond the guest's (kept while the incoming migration runs: freeing
 * it costs ~0.1 s per GiB, which the migration would wait for). Idempotent. */
void gw_vmm_ram_trim(struct gw_vmm *vmm);
/* Nanoseconds the VM has spent in state RUNNING (for GwVmmStatus.guest_runtime_ns). */
uint64_t gw_vmm_guest_runtime_ns(struct gw_vmm *vmm);

/* ---- for the migration engine (agent/migrate*.c) ---- */

/* Number of vCPUs of the VM (stopped ones included). */
unsigned gw_vmm_vcpu_count(struct gw_vmm *vmm);

/* -- dirty tracking (vmm_dirty.c). All callable from any thread, while the VM runs or is
 * paused; bitmaps have one bit per 4 KiB page of guest RAM (bit p of word p / 64), that is
 * gw_vmm_dirty_words() 64-bit words. -- */

/* Words of a dirty bitmap covering the whole of guest RAM. */
size_t gw_vmm_dirty_words(struct gw_vmm *vmm);
/* "ring", "bitmap-manual" (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) or "bitmap": the mode chosen
 * at creation, whether tracking is on or not. */
const char *gw_vmm_dirty_mode(struct gw_vmm *vmm);
/* Start logging writes to guest RAM: from now on every page the guest (or the VMM, see
 * gw_vmm_mark_dirty) writes is reported by the next sync. Nothing is reported as dirty at
 * start (the engine's first round sends all non-zero pages anyway). -EBUSY if already on. */
int gw_vmm_dirty_start(struct gw_vmm *vmm);
/* THE dirty-bitmap sync: OR every page dirtied since the last sync into bitmap and return
 * how many bits were newly set in it (or -errno; -EINVAL when tracking is off). In bitmap
 * mode with manual protect a page stays reported (and not write-protected) until it is
 * passed to gw_vmm_dirty_clear(); in ring mode and plain bitmap mode it is reported once
 * and re-protected by the sync itself. No allocation, one ioctl per slot (bitmap) or one
 * per sync (ring). */
long gw_vmm_dirty_sync(struct gw_vmm *vmm, uint64_t *bitmap);
/* Re-protect the pages set in bitmap (bit i = page first_page + i) so that later writes
 * are reported again: call it just before reading those pages to send them. first_page a
 * multiple of 64, [first_page, first_page + npages) inside RAM, else -EINVAL. A no-op (0)
 * in ring mode and without manual protect. Safe from several sender threads at once. */
int gw_vmm_dirty_clear(struct gw_vmm *vmm, uint64_t first_page, uint64_t npages,
		       const uint64_t *bitmap);
/* Stop logging (what was not synced is dropped). -EINVAL when tracking is off. */
int gw_vmm_dirty_stop(struct gw_vmm *vmm);
/* Record a write the VMM itself made to guest RAM while tracking is on (thread-safe, no
 * syscall); merged by the next sync. No-op when tracking is off. */
void gw_vmm_mark_dirty(struct gw_vmm *vmm, uint64_t gpa, uint64_t len);

/* -- dirty rate outside migrations, for the balancer (vmm_dirtyrate.c): each poll starts a
 * sample of the dirty log or, at least 200 ms later, reads it (pages dirtied / time) and
 * stops; 2 s of no logging between samples. allowed = false (a migration, a paused VM)
 * stops a sample at once. -- */
struct gw_vmm_dirtyrate {
	bool on, has;
	uint64_t since_ns, next_ns, rate_pps;
	uint64_t *bm;
	size_t words;
};
void gw_vmm_dirtyrate_poll(struct gw_vmm *vmm, struct gw_vmm_dirtyrate *d, bool allowed);
void gw_vmm_dirtyrate_stop(struct gw_vmm *vmm, struct gw_vmm_dirtyrate *d);

/* -- auto-converge throttle (vmm_dirty.c) -- */

/* Keep every vCPU out of KVM_RUN (sleeping) for about pct % of wall time, in 10 ms slices;
 * 0 = full speed, at most 99 (-EINVAL above). Any state; survives pause/resume. */
int gw_vmm_set_throttle(struct gw_vmm *vmm, unsigned pct);
unsigned gw_vmm_get_throttle(struct gw_vmm *vmm);

/* -- vCPU and VM state (vmm_state.c) --
 * Blobs are versioned and self-describing: a header (magic, version, vCPU index and count,
 * body length) then type-length-value sections, little-endian. Restores check everything
 * before touching the VM: a truncated, corrupt or mismatched blob is -EINVAL and changes
 * nothing. Save only while PAUSED, restore only while CREATED (normally incoming). */

/* Enough for any vCPU blob on this host (XSAVE areas up to 64 KiB included). */
#define GW_VMM_VCPU_STATE_MAX (96 * 1024)
#define GW_VMM_VM_STATE_MAX   256

/* regs, sregs, FPU, XSAVE and XCRs (when KVM has them), MSRs (TSC, SYSCALL/SYSENTER, PAT,
 * ...), pending events, debug registers and Godwit's "stopped" flag of vCPU idx. -ENOSPC
 * (with *len = the size needed) when cap is too small. The guest TSC is saved as its value
 * at save time and restored as is: on the destination it continues from there (monotonic,
 * the downtime is not added) -- except on PVM hosts, where the guest TSC is always the host
 * TSC (see vmm_state.c). */
int gw_vmm_vcpu_save(struct gw_vmm *vmm, unsigned idx, uint8_t *buf, size_t cap, size_t *len);
int gw_vmm_vcpu_restore(struct gw_vmm *vmm, unsigned idx, const uint8_t *buf, size_t len);
/* VM-wide state: RAM size, vCPU count and guest TSC rate (checked on restore: a different
 * shape is -EINVAL, a TSC rate off by more than 0.1 % is -ENOTSUP since this host cannot
 * scale the guest TSC). Save: PAUSED; restore: CREATED. */
int gw_vmm_vm_save(struct gw_vmm *vmm, uint8_t *buf, size_t cap, size_t *len);
int gw_vmm_vm_restore(struct gw_vmm *vmm, const uint8_t *buf, size_t len);
/* A vCPU that stopped itself (port 0x502) stays stopped: no thread is started for it, and
 * gw_vmm_start() of an incoming VM is -EINVAL until every vCPU was restored. A vCPU parked
 * by gw_vmm_pause() has completed its last I/O exit (see vmm_vcpu.c), so its register state
 * is consistent for saving. */

/* ---- loader (vmm_loader.c): pure functions on a RAM buffer, unit tested ---- */

/* Load an image (flat binary, or ELF64 x86-64 executable detected by its magic) into
 * ram[0..ram_size). Flat: copied to GW_VMM_IMAGE_BASE, entry = GW_VMM_IMAGE_BASE. ELF:
 * every PT_LOAD segment copied to p_paddr (bss zeroed), entry = e_entry. Segments must
 * lie inside [GW_VMM_IMAGE_BASE, ram_size - vcpus * GW_VMM_STACK_STRIDE) and the entry
 * inside a loaded segment; anything else is -EINVAL/-E2BIG with a message in err. */
int gw_loader_load(uint8_t *ram, uint64_t ram_size, unsigned vcpus, const uint8_t *image,
		   size_t image_len, uint64_t *entry, char *err, size_t errlen);
/* Write identity-mapping page tables (2 MiB pages, user+writable) for ram_size bytes,
 * the GDT and TSS into ram. Returns the CR3 value (0x1000). */
uint64_t gw_loader_setup_tables(uint8_t *ram, uint64_t ram_size);
/* Copy the command line to GW_VMM_CMDLINE_GPA; -E2BIG when too long. */
int gw_loader_put_cmdline(uint8_t *ram, uint64_t ram_size, const char *cmdline);

#endif
