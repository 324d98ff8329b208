/* fakeverbs: a software RDMA provider in user space (internal header).
 * Replaces the librdmacm/libibverbs entry points with an RC emulation whose "wire" is one TCP
 * connection per connected QP pair. Shared by fakeverbs.c (verbs: PD, MR, CQ, channels),
 * fakeverbs_qp.c (QP, post_send/post_recv, TX/RX threads) and fakeverbs_cm.c (rdma_cm). */
#ifndef GW_FAKEVERBS_INT_H
#define GW_FAKEVERBS_INT_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

#define FV_MAX_SGE    16
#define FV_MAX_WR     4096
#define FV_MAX_INLINE 512
#define FV_PDATA_MAX  256

#define fv_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* wire frame types */
enum {
	FV_F_CONNREQ = 1, /* client -> server: len = private data bytes, seq = client qp_num */
	FV_F_ACCEPT,	  /* server -> client: len = private data bytes, seq = server qp_num */
	FV_F_REJECT,	  /* server -> client: len = private data bytes */
	FV_F_RTU,	  /* client -> server: ready to use */
	FV_F_WRITE,	  /* RDMA WRITE: rkey, raddr, len payload bytes */
	FV_F_WRITE_IMM,	  /* RDMA WRITE with immediate */
	FV_F_SEND,	  /* SEND: len payload bytes */
	FV_F_SEND_IMM,	  /* SEND with immediate */
	FV_F_ACK,	  /* every WR with seq <= hdr.seq executed */
	FV_F_NAK,	  /* WR hdr.seq failed: status = sender's ibv_wc_status */
};

struct fv_hdr {
	uint8_t type;
	uint8_t pad[3];
	uint32_t status;
	uint64_t seq;
	uint64_t raddr;
	uint32_t rkey;
	uint32_t imm; /* network order as posted, passed through */
	uint32_t len;
	uint32_t pad2;
};

struct fv_pd {
	struct ibv_pd pd;
	int users; /* MRs + QPs, atomic */
};

struct fv_mr_info {
	struct ibv_pd *pd;
	char *addr;
	uint64_t iova;
	size_t length;
	int access;
};

struct fv_cq {
	struct ibv_cq cq;
	pthread_mutex_t lock;
	struct ibv_wc *ring;
	unsigned cap, head, count;
	int armed;
	int users; /* QPs, atomic */
	int warned;
};

struct fv_cc {
	struct ibv_comp_channel ch;
	int wfd;
};

struct fv_event {
	struct rdma_cm_event ev;
	uint8_t pdata[FV_PDATA_MAX];
	struct fv_event *next;
};

struct fv_chan {
	struct rdma_event_channel ch;
	int wfd;
	pthread_mutex_t lock;
	struct fv_event *head, *tail;
};

struct fv_swr {
	uint64_t wr_id;
	int type; /* FV_F_* */
	int signaled;
	int local_err;
	uint32_t rkey;
	uint64_t raddr;
	uint32_t imm;
	uint32_t len;
	int nsge;
	struct iovec iov[FV_MAX_SGE];
	uint8_t *inl; /* IBV_SEND_INLINE copy, owned by the slot until the TX thread takes it */
};

struct fv_rwr {
	uint64_t wr_id;
	int nsge;
	struct ibv_sge sge[FV_MAX_SGE];
};

struct fv_id {
	struct rdma_cm_id id;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd; /* listening socket or the connection */
	int listening;
	int stop;
	int resolved;
	int conn_attempted;
	int connected; /* QP reached RTS (client: ACCEPT received; server: rdma_accept) */
	int err;       /* QP in error (connection failed or torn down) */
	int disc_queued;
	int shut;
	pthread_t lst_thr, rx_thr, tx_thr;
	int has_lst, has_rx, has_tx;
	uint8_t pdata[FV_PDATA_MAX];
	int pdlen;
	/* QP (embedded: lives as long as the id) */
	int has_qp;
	struct ibv_qp qp;
	struct ibv_qp_cap cap;
	int sq_sig_all;
	uint32_t peer_qpn;
	struct fv_swr *sq;
	uint64_t sq_free, sq_done, sq_tx, sq_tail; /* free <= done <= tx <= tail; seq = index */
	struct fv_rwr *rq;
	uint64_t rq_head, rq_tail;
	/* receiver -> TX thread: acknowledgements to send */
	int ack_pending;
	uint64_t ack_upto;
	int nak_pending, nak_sent;
	uint64_t nak_seq;
	uint32_t nak_status;
	pthread_mutex_t wlock; /* socket writes */
};

/* fakeverbs.c */
struct ibv_context *fv_context(void);
void fv_cq_push(struct ibv_cq *cq, const struct ibv_wc *wc);
int fv_mr_lookup(uint32_t key, struct fv_mr_info *out);

/* fakeverbs_qp.c */
int fv_qp_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr);
int fv_qp_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr);
void fv_fail_locked(struct fv_id *f, int how);
int fv_start_tx(struct fv_id *f);
void fv_rx_loop(struct fv_id *f);
void fv_stop_threads(struct fv_id *f);
int fv_write_full(struct fv_id *f, const void *buf, size_t len);
int fv_read_full(int fd, void *buf, size_t len);
int fv_pipe(int p[2]);

/* fakeverbs_cm.c */
void fv_queue_event_locked(struct fv_id *f, enum rdma_cm_event_type type, int status,
			   const void *pdata, int pdlen);

#endif
