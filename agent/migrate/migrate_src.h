/* migrate_src.h -- the source engine's sending half (migrate_send.c), shared with
 * migrate_src.c: per-stream state, rounds of page batches, fault injection. Internal. */
#ifndef GW_MIGRATE_SRC_H
#define GW_MIGRATE_SRC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "gw_pagebatch.h"
#include "migrate.h"

struct src_stream {
	struct gw_migration *m;
	unsigned idx;
	struct gw_conn *c;
	pthread_t th;
	uint64_t *bitmap;
	int round;
	/* results of this stream (all rounds) */
	uint64_t batches, pages, zero_pages, bytes;
	int err;
	/* per-round scratch */
	double rate_bps; /* this stream's share of the bandwidth cap, 0 = none */
	uint64_t round_start_ns, round_bytes;
	bool staged;		/* this round copies pages into stage (the VM runs) */
	uint8_t *stage;		/* STAGE_PAGES pages, allocated on first use */
	uint32_t stage_used;	/* pages of stage referenced by unsent iovecs */
	uint32_t direct_unsent; /* pages of guest RAM referenced by unsent iovecs */
	/* round 1: the last populated RAM extent [ext_start, ext_end) found (bytes); valid while
	 * ext_valid. Chunks of a stream go up in address, so one lseek pair covers many */
	bool ext_valid;
	uint64_t ext_start, ext_end;
	/* direct placement (RDMA): pages are written straight into the destination's RAM */
	bool placed;
	struct gw_remote_mem place;
	unsigned nb;
	struct gw_pagebatch_hdr hdrs[GW_MIG_IOV_BATCHES];
	struct iovec iov[2 * GW_MIG_IOV_BATCHES];
	int niov;
};

/* One per data stream; the engine thread owns them between rounds. */
extern struct src_stream gw_mig_src_streams[GW_MIG_MAX_STREAMS];
/* The VM is paused (switchover): pages go straight from guest RAM, no staging copy. */
extern bool gw_mig_src_paused;
/* GODWIT_MIGRATE_FAULT=delay-commit=MS (tests). */
extern long gw_mig_fault_delay_commit_ms;

/* Reset per-migration sending state and read GODWIT_MIGRATE_FAULT. */
void gw_mig_send_reset(void);
/* One round over every stream in parallel (heartbeats on the control connection while it
 * runs); returns the bytes sent or -errno. */
long long gw_mig_send_round(struct gw_migration *m, uint64_t *bitmap, unsigned round);

#endif
