/* fakeverbs: a software RDMA provider in user space, queue pair part.
 * RC semantics over the id's TCP connection: ibv_post_send/ibv_post_recv (through the fake
 * context's ops), a TX thread per connected QP that transmits posted WRs in order (gathering
 * the caller's memory at transmit time, except inline data, copied at post time) and sends
 * the receiver's ACK/NAK frames, and the RX loop that places WRITEs into registered memory
 * (rkey checked), scatters SENDs into posted receives, and turns ACKs/NAKs into send
 * completions. Errors move the QP to error: flushes, DISCONNECTED, the socket shut down.
 * GW_FAKEVERBS_CUT_AFTER=N cuts the link once N bytes of RDMA WRITE payload went out. */
#include "fakeverbs_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- socket helpers ---- */

int fv_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t r = recv(fd, p, len, MSG_WAITALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int fv_writev_full(struct fv_id *f, struct iovec *iov, int n)
{
	int rc = 0;
	pthread_mutex_lock(&f->wlock);
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(f->fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -1;
			break;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	pthread_mutex_unlock(&f->wlock);
	return rc;
}

int fv_write_full(struct fv_id *f, const void *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};
	return fv_writev_full(f, &iov, 1);
}

/* ---- completions ---- */

static void fv_send_cqe(struct fv_id *f, const struct fv_swr *s, enum ibv_wc_status st)
{
	struct ibv_wc wc = {0};
	wc.wr_id = s->wr_id;
	wc.status = st;
	wc.opcode =
	    (s->type == FV_F_SEND || s->type == FV_F_SEND_IMM) ? IBV_WC_SEND : IBV_WC_RDMA_WRITE;
	wc.qp_num = f->qp.qp_num;
	if (st == IBV_WC_SUCCESS && (s->type == FV_F_WRITE || s->type == FV_F_WRITE_IMM))
		wc.byte_len = 0;
	fv_cq_push(f->qp.send_cq, &wc);
}

static void fv_recv_cqe(struct fv_id *f, uint64_t wr_id, enum ibv_wc_status st,
			enum ibv_wc_opcode op, uint32_t len, int has_imm, uint32_t imm)
{
	struct ibv_wc wc = {0};
	wc.wr_id = wr_id;
	wc.status = st;
	wc.opcode = op;
	wc.byte_len = len;
	wc.qp_num = f->qp.qp_num;
	wc.src_qp = f->peer_qpn;
	if (has_imm) {
		wc.wc_flags |= IBV_WC_WITH_IMM;
		wc.imm_data = imm;
	}
	fv_cq_push(f->qp.recv_cq, &wc);
}

static void fv_free_slot(struct fv_swr *s)
{
	free(s->inl);
	s->inl = NULL;
}

/* every WR not yet completed completes with a flush error (signaled or not) */
static void fv_flush_locked(struct fv_id *f)
{
	uint64_t i;
	if (!f->has_qp)
		return;
	for (i = f->sq_free; i < f->sq_tail; i++) {
		struct fv_swr *s = &f->sq[i % f->cap.max_send_wr];
		if (i >= f->sq_done)
			fv_send_cqe(f, s, IBV_WC_WR_FLUSH_ERR);
		fv_free_slot(s);
	}
	f->sq_free = f->sq_done = f->sq_tx = f->sq_tail;
	for (i = f->rq_head; i < f->rq_tail; i++)
		fv_recv_cqe(f, f->rq[i % f->cap.max_recv_wr].wr_id, IBV_WC_WR_FLUSH_ERR,
			    IBV_WC_RECV, 0, 0, 0);
	f->rq_head = f->rq_tail;
}

/* QP to error: flush, DISCONNECTED once (if it was connected), shut the socket (how >= 0) */
void fv_fail_locked(struct fv_id *f, int how)
{
	if (!f->err) {
		f->err = 1;
		f->qp.state = IBV_QPS_ERR;
		fv_flush_locked(f);
		if (f->connected && !f->disc_queued && !f->stop) {
			f->disc_queued = 1;
			fv_queue_event_locked(f, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, 0);
		}
	}
	if (how >= 0 && f->fd >= 0 && f->shut != 2) {
		shutdown(f->fd, how);
		f->shut = how == SHUT_RDWR ? 2 : 1;
	}
	pthread_cond_broadcast(&f->cond);
}

/* ---- posting ---- */

static int fv_wr_type(enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_RDMA_WRITE:
		return FV_F_WRITE;
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return FV_F_WRITE_IMM;
	case IBV_WR_SEND:
		return FV_F_SEND;
	case IBV_WR_SEND_WITH_IMM:
		return FV_F_SEND_IMM;
	default:
		return -1;
	}
}

/* a local SGE: lkey names an MR of this PD covering [addr, addr+length) */
static char *fv_local_sge(struct fv_id *f, const struct ibv_sge *sg, int need_write)
{
	struct fv_mr_info m;
	if (fv_mr_lookup(sg->lkey, &m) < 0 || m.pd != f->qp.pd)
		return NULL;
	if (need_write && !(m.access & IBV_ACCESS_LOCAL_WRITE))
		return NULL;
	if (sg->addr < m.iova || sg->addr - m.iova > m.length ||
	    sg->length > m.length - (sg->addr - m.iova))
		return NULL;
	return m.addr + (sg->addr - m.iova);
}

int fv_qp_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr)
{
	struct fv_id *f = fv_container_of(qp, struct fv_id, qp);
	int rc = 0;
	pthread_mutex_lock(&f->lock);
	for (; wr; wr = wr->next) {
		struct fv_swr s = {0};
		uint64_t len = 0;
		int i, type = fv_wr_type(wr->opcode);
		if (type < 0 || wr->num_sge < 0 || (uint32_t)wr->num_sge > f->cap.max_send_sge) {
			rc = EINVAL;
			break;
		}
		for (i = 0; i < wr->num_sge; i++)
			len += wr->sg_list[i].length;
		if (len > 0x80000000ULL ||
		    ((wr->send_flags & IBV_SEND_INLINE) && len > f->cap.max_inline_data)) {
			rc = EINVAL;
			break;
		}
		if (f->sq_tail - f->sq_free >= f->cap.max_send_wr) {
			rc = ENOMEM;
			break;
		}
		s.wr_id = wr->wr_id;
		s.type = type;
		s.signaled = f->sq_sig_all || (wr->send_flags & IBV_SEND_SIGNALED);
		s.len = (uint32_t)len;
		if (type == FV_F_WRITE || type == FV_F_WRITE_IMM) {
			s.rkey = wr->wr.rdma.rkey;
			s.raddr = wr->wr.rdma.remote_addr;
		}
		if (type == FV_F_WRITE_IMM || type == FV_F_SEND_IMM)
			s.imm = wr->imm_data;
		if (wr->send_flags & IBV_SEND_INLINE) {
			s.inl = malloc(len ? len : 1);
			if (!s.inl) {
				rc = ENOMEM;
				break;
			}
			for (i = 0, len = 0; i < wr->num_sge; i++) {
				memcpy(s.inl + len, (void *)(uintptr_t)wr->sg_list[i].addr,
				       wr->sg_list[i].length);
				len += wr->sg_list[i].length;
			}
			s.nsge = 1;
			s.iov[0].iov_base = s.inl;
			s.iov[0].iov_len = s.len;
		} else {
			for (i = 0; i < wr->num_sge; i++) {
				char *p = fv_local_sge(f, &wr->sg_list[i], 0);
				if (!p) {
					s.local_err = 1;
					break;
				}
				s.iov[i].iov_base = p;
				s.iov[i].iov_len = wr->sg_list[i].length;
			}
			s.nsge = wr->num_sge;
		}
		if (f->err) {
			/* real hardware accepts the post and flushes it */
			fv_send_cqe(f, &s, IBV_WC_WR_FLUSH_ERR);
			fv_free_slot(&s);
			continue;
		}
		f->sq[f->sq_tail % f->cap.max_send_wr] = s;
		f->sq_tail++;
	}
	if (rc)
		*bad_wr = wr;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fv_qp_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr)
{
	struct fv_id *f = fv_container_of(qp, struct fv_id, qp);
	int rc = 0;
	pthread_mutex_lock(&f->lock);
	for (; wr; wr = wr->next) {
		struct fv_rwr *r;
		if (wr->num_sge < 0 || (uint32_t)wr->num_sge > f->cap.max_recv_sge) {
			rc = EINVAL;
			break;
		}
		if (f->rq_tail - f->rq_head >= f->cap.max_recv_wr) {
			rc = ENOMEM;
			break;
		}
		if (f->err) {
			fv_recv_cqe(f, wr->wr_id, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV, 0, 0, 0);
			continue;
		}
		r = &f->rq[f->rq_tail % f->cap.max_recv_wr];
		r->wr_id = wr->wr_id;
		r->nsge = wr->num_sge;
		memcpy(r->sge, wr->sg_list, sizeof(r->sge[0]) * (size_t)wr->num_sge);
		f->rq_tail++;
	}
	if (rc)
		*bad_wr = wr;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* ---- fault injection: GW_FAKEVERBS_CUT_AFTER ---- */

static long long fv_cut_after = -1;
static unsigned long long fv_written;
static pthread_once_t fv_cut_once = PTHREAD_ONCE_INIT;

static void fv_cut_init(void)
{
	const char *e = getenv("GW_FAKEVERBS_CUT_AFTER");
	if (e && *e)
		fv_cut_after = strtoll(e, NULL, 0);
}

/* ---- TX thread ---- */

static void fv_complete_acked_locked(struct fv_id *f, uint64_t upto)
{
	while (f->sq_done <= upto && f->sq_done < f->sq_tx) {
		struct fv_swr *s = &f->sq[f->sq_done % f->cap.max_send_wr];
		f->sq_done++;
		if (s->signaled) {
			fv_send_cqe(f, s, IBV_WC_SUCCESS);
			/* a CQE frees its slot and those of the unsignaled WRs before it */
			while (f->sq_free < f->sq_done)
				fv_free_slot(&f->sq[f->sq_free++ % f->cap.max_send_wr]);
		}
	}
	pthread_cond_broadcast(&f->cond);
}

static void *fv_tx_main(void *arg)
{
	struct fv_id *f = arg;
	pthread_once(&fv_cut_once, fv_cut_init);
	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		struct fv_hdr h = {0};
		if (f->ack_pending || (f->nak_pending && !f->nak_sent)) {
			int nak = !f->ack_pending;
			h.type = nak ? FV_F_NAK : FV_F_ACK;
			h.seq = nak ? f->nak_seq : f->ack_upto;
			h.status = f->nak_status;
			if (nak)
				f->nak_sent = 1;
			else
				f->ack_pending = 0;
			pthread_mutex_unlock(&f->lock);
			int rc = fv_write_full(f, &h, sizeof(h));
			pthread_mutex_lock(&f->lock);
			if (nak) /* nothing more from us: FIN, the RX side drains until the peer's
				  */
				fv_fail_locked(f, SHUT_WR);
			else if (rc < 0)
				fv_fail_locked(f, SHUT_RDWR);
			continue;
		}
		if (!f->err && f->sq_tx < f->sq_tail) {
			struct fv_swr *s = &f->sq[f->sq_tx % f->cap.max_send_wr];
			struct iovec iov[FV_MAX_SGE + 1];
			uint8_t *inl;
			int n, rc;
			if (s->local_err) {
				/* fails when its turn comes, after the WRs before it completed */
				if (f->sq_done == f->sq_tx) {
					f->sq_tx++;
					f->sq_done++;
					fv_send_cqe(f, s, IBV_WC_LOC_PROT_ERR);
					f->sq_free = f->sq_done;
					fv_free_slot(s);
					fv_fail_locked(f, SHUT_RDWR);
				} else {
					pthread_cond_wait(&f->cond, &f->lock);
				}
				continue;
			}
			h.type = (uint8_t)s->type;
			h.seq = f->sq_tx;
			h.raddr = s->raddr;
			h.rkey = s->rkey;
			h.imm = s->imm;
			h.len = s->len;
			iov[0].iov_base = &h;
			iov[0].iov_len = sizeof(h);
			memcpy(iov + 1, s->iov, sizeof(s->iov[0]) * (size_t)s->nsge);
			n = 1 + s->nsge;
			inl = s->inl; /* the TX thread owns the inline copy from now on */
			s->inl = NULL;
			f->sq_tx++;
			pthread_mutex_unlock(&f->lock);
			rc = fv_writev_full(f, iov, n);
			free(inl);
			pthread_mutex_lock(&f->lock);
			if (rc < 0) {
				fv_fail_locked(f, SHUT_RDWR);
				continue;
			}
			if ((h.type == FV_F_WRITE || h.type == FV_F_WRITE_IMM) &&
			    fv_cut_after >= 0) {
				unsigned long long old =
				    __atomic_fetch_add(&fv_written, h.len, __ATOMIC_SEQ_CST);
				if (old < (unsigned long long)fv_cut_after &&
				    old + h.len >= (unsigned long long)fv_cut_after) {
					fprintf(stderr,
						"fakeverbs: cutting the link after %llu bytes\n",
						old + h.len);
					fv_fail_locked(f, SHUT_RDWR);
				}
			}
			continue;
		}
		pthread_cond_wait(&f->cond, &f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int fv_start_tx(struct fv_id *f)
{
	if (pthread_create(&f->tx_thr, NULL, fv_tx_main, f) != 0)
		return -1;
	f->has_tx = 1;
	return 0;
}

/* ---- RX ---- */

/* receiver-side failure of WR seq: the sender completes it with st; we stop executing */
static void fv_nak_locked(struct fv_id *f, uint64_t seq, enum ibv_wc_status st)
{
	f->nak_pending = 1;
	f->nak_seq = seq;
	f->nak_status = st;
	fv_fail_locked(f, -1);
}

static void fv_ack_locked(struct fv_id *f, uint64_t seq)
{
	f->ack_pending = 1;
	f->ack_upto = seq;
	pthread_cond_broadcast(&f->cond);
}

/* The next posted receive for the message with sequence seq; none (or the QP failed): NAK it
 * RNR as an RC responder would, and return 1 (the message is consumed). */
static int fv_take_recv(struct fv_id *f, uint64_t seq, struct fv_rwr *r)
{
	pthread_mutex_lock(&f->lock);
	if (f->err || f->rq_head == f->rq_tail) {
		fv_nak_locked(f, seq, IBV_WC_RNR_RETRY_EXC_ERR);
		pthread_mutex_unlock(&f->lock);
		return 1;
	}
	*r = f->rq[f->rq_head++ % f->cap.max_recv_wr];
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* returns 0 to go on, 1 after a NAK (drain), -1 when the connection is gone */
static int fv_rx_data(struct fv_id *f, const struct fv_hdr *h)
{
	struct fv_mr_info m;
	struct fv_rwr r = {0};
	int imm = h->type == FV_F_WRITE_IMM || h->type == FV_F_SEND_IMM;
	int i;
	if (h->type == FV_F_WRITE || h->type == FV_F_WRITE_IMM) {
		char *dst;
		if (fv_mr_lookup(h->rkey, &m) < 0 || m.pd != f->qp.pd ||
		    !(m.access & IBV_ACCESS_REMOTE_WRITE) || h->raddr < m.iova ||
		    h->raddr - m.iova > m.length || h->len > m.length - (h->raddr - m.iova)) {
			pthread_mutex_lock(&f->lock);
			fv_nak_locked(f, h->seq, IBV_WC_REM_ACCESS_ERR);
			pthread_mutex_unlock(&f->lock);
			return 1;
		}
		if (imm) {
			if (fv_take_recv(f, h->seq, &r))
				return 1;
		}
		dst = m.addr + (h->raddr - m.iova);
		if (h->len && fv_read_full(f->fd, dst, h->len) < 0)
			return -1;
		pthread_mutex_lock(&f->lock);
		if (imm)
			fv_recv_cqe(f, r.wr_id, IBV_WC_SUCCESS, IBV_WC_RECV_RDMA_WITH_IMM, h->len,
				    1, h->imm);
		fv_ack_locked(f, h->seq);
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	/* SEND: consumes a posted receive, scattered into its SGEs */
	char *dst[FV_MAX_SGE];
	uint64_t room = 0;
	uint32_t left = h->len;
	enum ibv_wc_status bad = IBV_WC_SUCCESS;
	if (fv_take_recv(f, h->seq, &r))
		return 1;
	for (i = 0; i < r.nsge; i++) {
		if (!(dst[i] = fv_local_sge(f, &r.sge[i], 1))) {
			bad = IBV_WC_LOC_PROT_ERR;
			break;
		}
		room += r.sge[i].length;
	}
	if (bad == IBV_WC_SUCCESS && room < h->len)
		bad = IBV_WC_LOC_LEN_ERR;
	if (bad != IBV_WC_SUCCESS) {
		pthread_mutex_lock(&f->lock);
		fv_recv_cqe(f, r.wr_id, bad, IBV_WC_RECV, 0, 0, 0);
		fv_nak_locked(f, h->seq,
			      bad == IBV_WC_LOC_LEN_ERR ? IBV_WC_REM_INV_REQ_ERR
							: IBV_WC_REM_OP_ERR);
		pthread_mutex_unlock(&f->lock);
		return 1;
	}
	for (i = 0; i < r.nsge && left; i++) {
		uint32_t n = left < r.sge[i].length ? left : r.sge[i].length;
		if (fv_read_full(f->fd, dst[i], n) < 0)
			return -1;
		left -= n;
	}
	pthread_mutex_lock(&f->lock);
	fv_recv_cqe(f, r.wr_id, IBV_WC_SUCCESS, IBV_WC_RECV, h->len, imm, h->imm);
	fv_ack_locked(f, h->seq);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* reads frames until the connection ends; the caller runs it on the id's RX thread */
void fv_rx_loop(struct fv_id *f)
{
	struct fv_hdr h;
	int draining = 0;
	for (;;) {
		if (draining) {
			char junk[4096];
			ssize_t r = recv(f->fd, junk, sizeof(junk), 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			continue;
		}
		if (fv_read_full(f->fd, &h, sizeof(h)) < 0)
			break;
		if (h.type == FV_F_ACK || h.type == FV_F_NAK) {
			pthread_mutex_lock(&f->lock);
			if (h.type == FV_F_ACK) {
				fv_complete_acked_locked(f, h.seq);
			} else {
				if (h.seq > 0)
					fv_complete_acked_locked(f, h.seq - 1);
				if (!f->err && f->sq_done == h.seq && f->sq_done < f->sq_tx) {
					struct fv_swr *s = &f->sq[f->sq_done % f->cap.max_send_wr];
					f->sq_done++;
					fv_send_cqe(f, s, (enum ibv_wc_status)h.status);
					fv_free_slot(s);
					f->sq_free = f->sq_done;
				}
				fv_fail_locked(f, SHUT_RDWR);
			}
			pthread_mutex_unlock(&f->lock);
			continue;
		}
		if (h.type == FV_F_RTU) {
			pthread_mutex_lock(&f->lock);
			if (!f->err && !f->stop)
				fv_queue_event_locked(f, RDMA_CM_EVENT_ESTABLISHED, 0, NULL, 0);
			pthread_mutex_unlock(&f->lock);
			continue;
		}
		if (h.type < FV_F_WRITE || h.type > FV_F_SEND_IMM)
			break; /* protocol error */
		int rc = fv_rx_data(f, &h);
		if (rc < 0)
			break;
		if (rc > 0)
			draining = 1;
	}
	pthread_mutex_lock(&f->lock);
	fv_fail_locked(f, SHUT_RDWR);
	pthread_mutex_unlock(&f->lock);
}

/* stop and join the id's threads (listener, RX, TX); the socket is shut down, not closed */
void fv_stop_threads(struct fv_id *f)
{
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	if (f->fd >= 0)
		shutdown(f->fd, SHUT_RDWR);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (f->has_lst)
		pthread_join(f->lst_thr, NULL);
	if (f->has_rx)
		pthread_join(f->rx_thr, NULL);
	if (f->has_tx) /* started by the RX thread (client) or rdma_accept: read after the join */
		pthread_join(f->tx_thr, NULL);
	f->has_lst = f->has_rx = f->has_tx = 0;
}
