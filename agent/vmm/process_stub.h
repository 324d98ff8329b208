/* process_stub.h -- the protocol between godwit-vmm (process_vm.c) and the sandbox stub it
 * execs (process_stub.c). Both sides include it; the stub is freestanding, so only fixed-size
 * integer types here.
 *
 * The stub starts with fd 3 = guest RAM (memfd), fd 4 = a SOCK_SEQPACKET socket to the VMM,
 * fd 5 = its own executable (closed at once), nothing else. Sequence:
 *   VMM -> stub   struct gw_stub_setup
 *   stub          maps RAM at 0, registers it for userfaultfd write-protect (async), drops every
 *                 capability, sets no_new_privs, clones the vCPU threads (each waits in
 *                 pause(), touching no memory)
 *   stub -> VMM   struct gw_stub_status (err != 0: the step that failed and its errno)
 *   VMM           checks that every vCPU thread waits in pause(), reads the stub's maps
 *   VMM -> stub   struct gw_stub_go: the stub's own mappings to unmap or write-protect
 *   stub          applies them, closes the socket, makes its stack PROT_NONE, installs the
 *                 seccomp filter (every syscall traps) on all threads, and stops on int3
 *                 with RAX = the seccomp result, for good.
 */
#ifndef GW_PROCESS_STUB_H
#define GW_PROCESS_STUB_H

#define GW_STUB_FD_RAM	 3
#define GW_STUB_FD_SOCK	 4
#define GW_STUB_FD_SELF	 5
#define GW_STUB_MAGIC	 0x42545347u /* "GSTB" */
#define GW_STUB_MAX_OPS	 16
#define GW_STUB_OP_UNMAP 1
#define GW_STUB_OP_RO	 2 /* mprotect PROT_READ (its data: the seccomp filter lives there) */
#define GW_STUB_OP_STACK 3 /* mprotect PROT_NONE as the very last step */

/* Steps reported in gw_stub_status.step when one fails. */
enum gw_stub_step {
	GW_STUB_OK = 0,
	GW_STUB_STEP_SETUP,    /* reading the set-up message */
	GW_STUB_STEP_MMAP,     /* mapping guest RAM at address 0 */
	GW_STUB_STEP_UFFD,     /* userfaultfd() */
	GW_STUB_STEP_UFFD_API, /* UFFDIO_API with WP_ASYNC | WP_UNPOPULATED | WP_HUGETLBFS_SHMEM */
	GW_STUB_STEP_UFFD_REG, /* UFFDIO_REGISTER (write-protect mode) */
	GW_STUB_STEP_CAPS,     /* dropping capabilities */
	GW_STUB_STEP_NNP,      /* PR_SET_NO_NEW_PRIVS */
	GW_STUB_STEP_CLONE,    /* a vCPU thread */
	GW_STUB_STEP_GO,       /* reading the go message */
	GW_STUB_STEP_OPS,      /* unmapping / protecting the stub's mappings */
};

struct gw_stub_setup {
	unsigned int magic;
	unsigned int vcpus;
	unsigned long long ram_size;
};

struct gw_stub_status {
	unsigned int magic;
	unsigned int step; /* enum gw_stub_step */
	int err;	   /* errno of the failed step */
	int uffd;	   /* the userfaultfd's number in the stub */
};

struct gw_stub_op {
	unsigned int op;
	unsigned int pad;
	unsigned long long start, len;
};

struct gw_stub_go {
	unsigned int magic;
	unsigned int nr_ops;
	struct gw_stub_op ops[GW_STUB_MAX_OPS];
};

#endif
