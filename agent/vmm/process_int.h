/* process_int.h -- what the process backend's files share: process_vm.c (the sandbox child
 * and its keeper thread), process_run.c (vCPU threads under ptrace), process_dirty.c
 * (userfaultfd write-protect + PAGEMAP_SCAN) and process_state.c (vCPU state blobs). */
#ifndef GW_PROCESS_INT_H
#define GW_PROCESS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "process_decode.h"
#include "vmm_backend.h"
#include "vmm_internal.h"

#define GW_PROC_XSTATE_MAX (64 * 1024)

/* One VM's sandbox. Set up by process_vm.c before vm_create returns; pid, tids, pagemap_fd
 * and xstate_size are immutable afterwards. */
struct gw_proc {
	pid_t pid;	    /* the stub (thread-group leader), as this VMM sees it */
	int pidfd;	    /* for the final SIGKILL (never a reused pid) */
	int pagemap_fd;	    /* /proc/PID/pagemap: PAGEMAP_SCAN for the dirty log */
	size_t xstate_size; /* bytes of NT_X86_XSTATE on this host */
	pthread_t keeper;   /* forked the stub, traces its leader (stopped on int3 for good) */
	bool keeper_started;
	/* keeper <-> vm_create hand-shake, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready, failed, exited;
	int exit_status;	      /* waitpid status of the leader once exited */
	char err[256];		      /* why the set-up failed */
	const struct gw_vmm *vmm;     /* the VM being set up (keeper reads ram_size etc.) */
	pid_t tids[GW_VMM_MAX_VCPUS]; /* vCPU threads of the stub */
	uint64_t setup_ns;	      /* spawn to ready (log, bench) */
};

/* One vCPU: a thread of the stub, traced by the VMM's vCPU thread (only that thread may make
 * ptrace calls on it). regs/xstate are the vCPU's state whenever it is out of guest code:
 * valid after an exit (regs) and after vcpu_park (both), or given by a restore. */
struct gw_pvcpu {
	pid_t tid;
	bool seized;
	bool regs_dirty;   /* regs changed here: PTRACE_SETREGS before the next run */
	bool from_blob;	   /* regs/xstate came from a restore: apply both at thread start */
	bool xstate_valid; /* xstate holds the vCPU's XSAVE area */
	struct user_regs_struct regs;
	size_t xstate_len;
	uint8_t *xstate; /* GW_PROC_XSTATE_MAX bytes */
	/* the I/O exit being handled */
	struct gw_insn insn;
	struct gw_pio pio;
	uint64_t exits_io; /* port-I/O exits (stats) */
};

/* process_vm.c */
int gw_proc_probe(char *why, size_t len);
int gw_proc_vm_create(struct gw_vmm *vmm, bool has_cmdline, char *err, size_t errlen);
void gw_proc_vm_destroy(struct gw_vmm *vmm);
uint32_t gw_proc_tsc_khz(void);

/* process_run.c */
int gw_proc_vcpu_thread_init(struct gw_vcpu *vcpu, char *err, size_t errlen);
void gw_proc_vcpu_thread_exit(struct gw_vcpu *vcpu, bool vm_over);
int gw_proc_vcpu_run(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex);
bool gw_proc_vcpu_io_done(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex);
void gw_proc_vcpu_flush_io(struct gw_vcpu *vcpu);
int gw_proc_vcpu_park(struct gw_vcpu *vcpu);
void gw_proc_vcpu_kick(struct gw_vcpu *vcpu);
/* The ABI entry registers of vCPU idx (RIP, RSP, RDI, RSI, RDX, RCX, RFLAGS). */
void gw_proc_entry_regs(struct gw_vmm *vmm, unsigned idx, bool has_cmdline,
			struct user_regs_struct *regs);

/* process_state.c */
int gw_proc_vcpu_save(struct gw_vcpu *vcpu, struct gw_blob_writer *w);
int gw_proc_vcpu_restore(struct gw_vcpu *vcpu, const struct gw_blob_sections *s);

/* process_dirty.c */
const char *gw_proc_dirty_mode(struct gw_vmm *vmm);
int gw_proc_dirty_enable(struct gw_vmm *vmm);
long gw_proc_dirty_fetch(struct gw_vmm *vmm, uint64_t *bitmap);
int gw_proc_dirty_reprotect(struct gw_vmm *vmm, uint64_t first, uint64_t n, const uint64_t *bits);
int gw_proc_dirty_disable(struct gw_vmm *vmm);
void gw_proc_dirty_destroy(struct gw_vmm *vmm);
/* Is PAGEMAP_SCAN with write-protect there (probe)? 0 or -errno. */
int gw_proc_dirty_probe(void);

#endif
