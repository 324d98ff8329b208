/* vmm_internal.h -- the micro-VMM's private state, shared by the core (vmm_*.c) and the
 * backends (kvm_*.c, process_*.c). Not for godwit-vmm's main, the engine or the agent. */
#ifndef GW_VMM_INTERNAL_H
#define GW_VMM_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <linux/kvm.h>

#include "vmm.h"
#include "vmm_backend.h"

/* Boot structures written by gw_loader_setup_tables() (layout in vmm.h). */
#define GW_VMM_GDT_GPA	    0x500ull
#define GW_VMM_GDT_LIMIT    0x37u /* 7 qwords: null, 4 segments, 16-byte TSS descriptor */
#define GW_VMM_TSS_GPA	    0x81000ull
#define GW_VMM_TSS_HDR	    104u  /* the 64-bit TSS proper; the I/O bitmap follows it */
#define GW_VMM_IOBITMAP_LEN 8192u /* one bit per port, all clear (allowed) */
/* TSS limit covers header, bitmap and the mandatory trailing 0xff byte */
#define GW_VMM_TSS_LIMIT   (GW_VMM_TSS_HDR + GW_VMM_IOBITMAP_LEN)
#define GW_VMM_PML4_GPA	   0x1000ull
#define GW_SEL_CODE64_DPL0 0x08
#define GW_SEL_DATA_DPL0   0x10
#define GW_SEL_CODE64_USER 0x1b /* GDT index 3, RPL 3 */
#define GW_SEL_DATA_USER   0x23 /* GDT index 4, RPL 3 */
#define GW_SEL_TSS	   0x28

/* Signal used to kick vCPU threads out of guest code (the handler calls the backend's
 * vcpu_kick_async; no SA_RESTART). */
#define GW_VCPU_KICK_SIGNAL SIGUSR1

#define GW_VMM_CONSOLE_BUF 4096
#define GW_VMM_REASON_MAX  256

struct gw_vcpu {
	struct gw_vmm *vmm;
	unsigned index;
	/* kvm backend */
	int fd;
	struct kvm_run *run; /* mmap of the vCPU fd, run_size bytes */
	/* process backend (process_*.c) */
	struct gw_pvcpu *proc;
	pthread_t thread;
	bool thread_started;
	/* below: protected by vmm->lock */
	bool parked;   /* waiting in the pause loop, out of KVM_RUN */
	bool stopped;  /* wrote the vCPU exit port (or its thread ended) */
	bool exited;   /* thread has left its run loop */
	bool restored; /* given its state by gw_vmm_vcpu_restore (incoming VMs) */
	/* dirty ring (ring mode): mapping of ring_entries entries; ring_fetch = next entry to
	 * harvest, under vmm->dirty_lock (write) */
	struct kvm_dirty_gfn *ring;
	uint32_t ring_fetch;
	/* throttle: only the vCPU's own thread touches these */
	timer_t throttle_timer; /* one-shot CLOCK_MONOTONIC timer kicking this thread */
	bool throttle_timer_ok;
	uint64_t run_until_ns; /* end of the current run slice (monotonic) */
};

/* Dirty-tracking state (vmm_dirty.c; backends use scratch and pending). */
struct gw_dirty {
	bool active;	    /* logging on (dirty_lock) */
	uint64_t npages;    /* pages of guest RAM */
	size_t words;	    /* 64-bit words of a whole-RAM bitmap */
	uint64_t *scratch;  /* a whole-RAM bitmap for the backend (dirty_lock held for writing) */
	uint64_t *pending;  /* VMM writes and pages backends carry over: atomic, merged by sync */
	uint64_t ring_full; /* KVM_EXIT_DIRTY_RING_FULL exits this session (dirty_lock) */
};

struct gw_state_caps; /* kvm_state.c */
struct gw_proc;	      /* process_vm.c */

/*
 * VM state machine (enforced by vmm_vcpu.c; CREATED only before gw_vmm_start):
 *
 *              | start    pause    resume   stop()   guest 0x501/all 0x502   fault
 *   -----------+---------------------------------------------------------------------
 *   CREATED    | RUNNING  -EINVAL  -EINVAL  STOPPED  -                       -
 *   RUNNING    | -EINVAL  PAUSED   RUNNING  STOPPED  STOPPED                 CRASHED
 *   PAUSED     | -EINVAL  PAUSED   RUNNING  STOPPED  -                       -
 *   STOPPED    | -EINVAL  -EINVAL  -EINVAL  STOPPED  -                       -
 *   CRASHED    | -EINVAL  -EINVAL  -EINVAL  CRASHED  -                       -
 */
struct gw_vmm {
	char name[64];
	int console_fd;
	int event_fd; /* written on state changes the guest causes */

	const struct gw_vmm_backend *be; /* chosen at creation */
	bool be_created;		 /* be->vm_create was called: call vm_destroy */
	struct gw_proc *proc;		 /* the process backend's VM state */
	size_t console_max;		 /* console log cap in bytes (0: none) */
	size_t console_written;		 /* bytes in the console log now */
	uint64_t console_dropped;	 /* bytes the cap dropped */

	/* KVM objects: set up by gw_vmm_create, immutable afterwards */
	int kvm_fd;
	int vm_fd;
	unsigned dirty_ring_req; /* gw_vmm_config.dirty_ring_entries */
	int mem_fd;		 /* memfd backing guest RAM (slot 0, guest-physical 0) */
	uint8_t *ram;		 /* MAP_SHARED mapping of mem_fd */
	uint64_t ram_size;
	bool ram_tail;	  /* mem_fd (pool RAM) is larger than ram_size: gw_vmm_ram_trim */
	size_t run_size;  /* KVM_GET_VCPU_MMAP_SIZE */
	uint32_t tsc_khz; /* guest TSC frequency, passed in RCX */
	bool have_xsave;  /* CR4.OSXSAVE set and XCR0 = x87|SSE|AVX */
	uint64_t entry;
	bool incoming;	       /* migration destination: state comes from vmm_state.c */
	bool manual_protect;   /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 on, with INITIALLY_SET */
	uint32_t ring_entries; /* dirty ring mode when non-zero (entries per vCPU) */
	unsigned nr_vcpus;
	struct gw_vcpu *vcpus; /* nr_vcpus entries */

	/* run control: protected by lock, waited on with cond */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum gw_vmm_state state;
	bool pause_req;	     /* vCPUs must park */
	bool exit_req;	     /* vCPUs must leave their run loops */
	unsigned nr_parked;  /* vCPU threads parked */
	unsigned nr_live;    /* vCPU threads inside their run loop */
	unsigned nr_stopped; /* vCPUs stopped through the vCPU exit port */
	int exit_status;
	char reason[GW_VMM_REASON_MAX];
	uint64_t run_since_ns; /* monotonic time RUNNING was last entered */
	uint64_t runtime_ns;   /* RUNNING time before run_since_ns */
	unsigned throttle_pct; /* % of wall time each vCPU sleeps out of KVM_RUN */

	/* dirty tracking (vmm_dirty.c): the state is allocated by the first dirty_start and
	 * freed by destroy; sync/start/stop/ring harvests hold dirty_lock for writing, clear
	 * for reading; gw_vmm_mark_dirty takes no lock (atomic bits, dirty_marking flag) */
	pthread_rwlock_t dirty_lock;
	struct gw_dirty *dirty;
	bool dirty_marking; /* accessed atomically */
	bool dirty_quiet;   /* the load sampler's short sessions: on/off logged at debug level */

	/* what KVM offers for vCPU state, probed on first use under lock (vmm_state.c) */
	struct gw_state_caps *state_caps;

	/* guest console: protected by console_lock */
	pthread_mutex_t console_lock;
	size_t console_len;
	char console_buf[GW_VMM_CONSOLE_BUF];
};

/* vmm_vcpu.c */
int gw_vcpu_threads_start(struct gw_vmm *vmm);
void gw_vcpu_threads_join(struct gw_vmm *vmm);
/* Make every vCPU thread leave KVM_RUN soon and wake sleeping ones (vmm->lock held). */
void gw_vcpu_kick_all_locked(struct gw_vmm *vmm);

/* vmm_dirty.c */
/* OR src into dst; the count of bits newly set (inline: the core and backends both use it). */
static inline long gw_dirty_merge_words(uint64_t *dst, const uint64_t *src, size_t words)
{
	long n = 0;

	for (size_t i = 0; i < words; i++) {
		uint64_t w = src[i];

		if (!w)
			continue;
		n += __builtin_popcountll(w & ~dst[i]);
		dst[i] |= w;
	}
	return n;
}
/* Free the tracking state (destroy). */
void gw_dirty_free(struct gw_vmm *vmm);
/* At the top of the run loop, vmm->lock held, the backend armed (vcpu_arm):
 * sleeps out the throttle slice when one is due; true when it slept (re-check requests). */
bool gw_throttle_vcpu_locked(struct gw_vcpu *vcpu);
/* The vCPU thread leaves its run loop: drop its throttle timer. */
void gw_throttle_vcpu_exit(struct gw_vcpu *vcpu);

/* Format a message into err[0..errlen) (nothing when err is NULL or errlen 0). */
void gw_vmm_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
