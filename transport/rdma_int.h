/* rdma_int.h -- what the RDMA transport's files share: the connection state, the wire
 * format of its hello and credit messages, the memory registration cache. */
#ifndef GW_RDMA_INT_H
#define GW_RDMA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "transport_int.h"

/*
 * The byte stream over RDMA (see rdma_stream.c for the flow):
 *   - each end owns a receive ring (RING_BYTES, registered for remote write) and tells the
 *     peer its address and rkey in the connection's private data (struct gw_rdma_hello);
 *   - the sender RDMA-WRITEs bytes into the peer's ring at its running head, WITH_IMM: the
 *     immediate is the byte count, and the peer's receive completion says they arrived (RC
 *     keeps them in order). Sources are the caller's buffers, gathered with up to max_sge
 *     SGEs per write (zero copy from memory given to register_mem; other bytes go through
 *     a small registered bounce buffer);
 *   - the receiver copies out of its ring into the caller's buffers and returns credits:
 *     a SEND of struct gw_rdma_credit (bytes consumed and receive WRs re-posted so far),
 *     once a quarter of the ring or of the receive queue has been used;
 *   - direct placement (expose_mem / write_placed): the receiver registers e.g. guest RAM for
 *     remote write and tells the peer (addr, rkey) in a message of its own; the sender
 *     RDMA-WRITEs (no immediate: no receive WR, no ring space) straight there, and RC
 *     ordering makes those bytes land before anything the sender sends after them;
 *   - a sender never has more than the peer's ring in flight, nor more messages than the
 *     peer has receive WRs posted (data may use half of them; credits the rest), so a
 *     receiver never sees RNR, and the peer is never overrun.
 */
#define GW_RDMA_MAGIC	    0x47575244u /* "GWRD" */
#define GW_RDMA_VERSION	    1
#define GW_RDMA_RING_BYTES  (8u << 20)
#define GW_RDMA_RQ_DEPTH    256u
#define GW_RDMA_SQ_DEPTH    256u
#define GW_RDMA_MAX_SGE	    16u
#define GW_RDMA_MAX_MSG	    (256u << 10) /* bytes per RDMA WRITE: finer-grained arrival */
#define GW_RDMA_BOUNCE	    (256u << 10)
#define GW_RDMA_CHUNK_SHIFT 21 /* register_mem regions are registered 2 MiB at a time */

/* Private data of connect and accept (network byte order). 24 bytes: fits the 56 an IB
 * connect request carries. */
struct gw_rdma_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t rq_depth;  /* receive WRs this end keeps posted */
	uint64_t ring_addr; /* its receive ring */
	uint32_t ring_rkey;
	uint32_t ring_size;
} __attribute__((packed));

/* A credit message (network byte order): cumulative counts since the connection began. */
struct gw_rdma_credit {
	uint64_t consumed; /* ring bytes the receiver has copied out */
	uint64_t msgs;	   /* receive completions it has handled (and re-posted) */
};

/* A memory region given to register_mem: registered lazily, one MR per 2 MiB chunk, on
 * the first send that touches the chunk (pinning only what is actually sent). Shared by
 * every connection of the process on the same protection domain; reference counted. */
struct gw_rdma_region;

/* Per-connection state behind struct gw_conn.priv. Locking: `lock` guards everything below
 * it; the receive ring's bytes between rx_tail and rx_end are read by the receiving thread
 * without the lock (only it moves rx_tail, and the peer never writes there before it is
 * credited back). */
struct gw_rdma_conn {
	struct rdma_event_channel *ech;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cch;
	struct ibv_cq *cq;
	unsigned max_sge;
	int wake_fd[2]; /* eventfds: a thread waiting to send [0] / to receive [1] */

	uint8_t *ring; /* receive ring */
	struct ibv_mr *ring_mr;
	struct gw_rdma_credit *slots; /* receive WR buffers [RQ_DEPTH], then credit send
				       * buffers [SQ_DEPTH] */
	struct ibv_mr *slots_mr;
	uint8_t *bounce;
	struct ibv_mr *bounce_mr;
	struct gw_rdma_region *regions[8];
	unsigned nregions;
	struct ibv_mr *exposed[4]; /* expose_mem registrations this connection holds */
	unsigned nexposed;

	pthread_mutex_t lock;
	bool waiting[2];
	bool peer_gone; /* DISCONNECTED seen or the QP flushed */
	int err;	/* first fatal error (-errno), 0 = none */
	/* receiving side */
	uint64_t rx_end;		/* bytes arrived in the ring, cumulative */
	uint64_t rx_tail;		/* bytes copied out, cumulative */
	uint64_t rx_msgs;		/* receive completions handled (each re-posted at once) */
	uint64_t told_bytes, told_msgs; /* what the last credit message said */
	/* sending side */
	uint64_t peer_ring_addr;
	uint32_t peer_rkey, peer_ring_size, peer_rq;
	uint64_t tx_head;		   /* bytes written into the peer's ring, cumulative */
	uint64_t tx_msgs;		   /* messages that took a peer receive WR */
	uint64_t peer_consumed, peer_msgs; /* from the peer's last credit message */
	uint64_t sq_posted, sq_done;	   /* send WRs: wr_id = sq_posted after posting */
	size_t bounce_used;
	uint64_t bounced; /* bytes sent through the bounce buffer (not zero copy) */
};

static inline struct gw_rdma_conn *gw_rdma_priv(struct gw_conn *c)
{
	return c->priv;
}

/* rdma_mem.c */
/* The protection domain shared by every connection on this device (reference counted). */
struct ibv_pd *gw_rdma_pd_get(struct ibv_context *verbs);
void gw_rdma_pd_put(struct ibv_pd *pd);
/* Find or create the region [addr, addr + len) on pd (reference counted). */
struct gw_rdma_region *gw_rdma_region_get(struct ibv_pd *pd, void *addr, size_t len);
void gw_rdma_region_put(struct gw_rdma_region *r);
/* [addr, addr + len) registered for remote write on pd, as one MR (pinned whole; shared by
 * the process's connections, reference counted). NULL and errno on failure. */
struct ibv_mr *gw_rdma_exposed_get(struct ibv_pd *pd, void *addr, size_t len);
void gw_rdma_exposed_put(struct ibv_mr *mr);
/*
 * Local key for [p, p + *len) if it lies in one of regions[0..n): registers the chunk on
 * first use and trims *len to the chunk's end. 0 and *lkey set; -ENOENT when p is in
 * none of them; -errno when the registration fails.
 */
int gw_rdma_region_lkey(struct gw_rdma_region *const *regions, unsigned n, const uint8_t *p,
			size_t *len, uint32_t *lkey);

/* rdma_stream.c */
int gw_rdma_post_recvs(struct gw_rdma_conn *rc, unsigned first, unsigned count);
int gw_rdma_sendv(struct gw_conn *c, const struct iovec *iov, int iovcnt);
int gw_rdma_recv(struct gw_conn *c, void *buf, size_t len);
int gw_rdma_recvv(struct gw_conn *c, const struct iovec *iov, int iovcnt);
int gw_rdma_write_placed(struct gw_conn *c, const struct iovec *iov, int iovcnt,
			 const struct gw_remote_mem *dst, uint64_t offset);

#endif
