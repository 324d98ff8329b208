/* rdma_stream.c -- the RDMA transport's byte stream: RDMA WRITE WITH IMM into the peer's
 * receive ring, credits back by SEND, completion handling and blocking waits (the protocol
 * is described in rdma_int.h). */
#include "rdma_int.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "gw_fsutil.h"

enum { ROLE_SEND = 0, ROLE_RECV = 1 };

#define SLOT_SEND(i) (GW_RDMA_RQ_DEPTH + (i)) /* credit send buffers follow the recv slots */

int gw_rdma_post_recvs(struct gw_rdma_conn *rc, unsigned first, unsigned count)
{
	struct ibv_recv_wr wr[GW_RDMA_RQ_DEPTH], *bad;
	struct ibv_sge sge[GW_RDMA_RQ_DEPTH];
	if (!count)
		return 0;
	for (unsigned k = 0; k < count; k++) {
		unsigned slot = (first + k) % GW_RDMA_RQ_DEPTH;
		sge[k] = (struct ibv_sge){.addr = (uintptr_t)&rc->slots[slot],
					  .length = sizeof(struct gw_rdma_credit),
					  .lkey = rc->slots_mr->lkey};
		wr[k] = (struct ibv_recv_wr){.wr_id = slot,
					     .sg_list = &sge[k],
					     .num_sge = 1,
					     .next = k + 1 < count ? &wr[k + 1] : NULL};
	}
	int r = ibv_post_recv(rc->id->qp, wr, &bad);
	return r ? -r : 0;
}

static void set_err(struct gw_rdma_conn *rc, int err)
{
	if (!rc->err)
		rc->err = err;
}

/* Map a failed work completion to the error the transport contract promises. */
static int wc_errno(enum ibv_wc_status st)
{
	switch (st) {
	case IBV_WC_WR_FLUSH_ERR:
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return -ECONNRESET;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_REM_INV_REQ_ERR:
	case IBV_WC_LOC_LEN_ERR:
	case IBV_WC_LOC_PROT_ERR:
		return -EPROTO;
	default:
		return -EIO;
	}
}

static void send_credit(struct gw_rdma_conn *rc);

/* Handle every completion and connection event there is (under lock, never blocks).
 * Returns true when anything changed, and wakes the other role if it waits. */
static bool progress(struct gw_rdma_conn *rc)
{
	struct ibv_wc wc[32];
	bool changed = false;
	int n;

	while ((n = ibv_poll_cq(rc->cq, 32, wc)) > 0) {
		unsigned first_slot = 0, nslots = 0;
		changed = true;
		for (int i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				if (wc[i].status == IBV_WC_WR_FLUSH_ERR)
					rc->peer_gone = true;
				else
					set_err(rc, wc_errno(wc[i].status));
				continue;
			}
			switch (wc[i].opcode) {
			case IBV_WC_RECV_RDMA_WITH_IMM: {
				uint32_t len = be32toh(wc[i].imm_data);
				if (len > GW_RDMA_RING_BYTES ||
				    rc->rx_end + len - rc->rx_tail > GW_RDMA_RING_BYTES)
					set_err(rc, -EPROTO); /* the peer overran our ring */
				else
					rc->rx_end += len;
				break;
			}
			case IBV_WC_RECV: {
				const struct gw_rdma_credit *cr = &rc->slots[wc[i].wr_id];
				uint64_t consumed = be64toh(cr->consumed), msgs = be64toh(cr->msgs);
				if (wc[i].byte_len != sizeof(*cr) || consumed > rc->tx_head ||
				    msgs > rc->tx_msgs || consumed < rc->peer_consumed ||
				    msgs < rc->peer_msgs)
					set_err(rc, -EPROTO);
				else {
					rc->peer_consumed = consumed;
					rc->peer_msgs = msgs;
				}
				break;
			}
			case IBV_WC_RDMA_WRITE:
			case IBV_WC_SEND:
				/* every WR is signaled and RC completes them in order */
				rc->sq_done = wc[i].wr_id;
				continue;
			default:
				set_err(rc, -EPROTO);
				continue;
			}
			/* a receive: post its WR again at once (credits count re-posted WRs) */
			if (!nslots)
				first_slot = (unsigned)wc[i].wr_id;
			nslots++;
			rc->rx_msgs++;
		}
		if (nslots && !rc->err && !rc->peer_gone) {
			int r = gw_rdma_post_recvs(rc, first_slot, nslots);
			if (r)
				set_err(rc, r);
		}
	}
	if (n < 0)
		set_err(rc, -EIO);

	struct rdma_cm_event *ev;
	while (rdma_get_cm_event(rc->ech, &ev) == 0) {
		if (ev->event == RDMA_CM_EVENT_DISCONNECTED ||
		    ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL ||
		    ev->event == RDMA_CM_EVENT_TIMEWAIT_EXIT) {
			rc->peer_gone = true;
			changed = true;
		}
		rdma_ack_cm_event(ev);
	}
	if (changed) {
		send_credit(rc);
		for (int role = 0; role < 2; role++) {
			uint64_t one = 1;
			if (rc->waiting[role])
				(void)!write(rc->wake_fd[role], &one, sizeof(one));
		}
	}
	return changed;
}

/* Room to post one more send WR (one is kept for credits). */
static bool sq_room(const struct gw_rdma_conn *rc, bool credit)
{
	return rc->sq_posted - rc->sq_done < GW_RDMA_SQ_DEPTH - (credit ? 0 : 1);
}

static int post_send(struct gw_rdma_conn *rc, struct ibv_send_wr *wr)
{
	struct ibv_send_wr *bad;
	wr->wr_id = ++rc->sq_posted;
	wr->send_flags |= IBV_SEND_SIGNALED;
	int r = ibv_post_send(rc->id->qp, wr, &bad);
	if (r) {
		rc->sq_posted--;
		return -r;
	}
	return 0;
}

/* Tell the peer what we consumed, when a quarter of the ring or of the receive queue has
 * been used since we last did, and the peer has a receive WR left for it. */
static void send_credit(struct gw_rdma_conn *rc)
{
	if (rc->err || rc->peer_gone)
		return;
	if (rc->rx_tail - rc->told_bytes < GW_RDMA_RING_BYTES / 4 &&
	    rc->rx_msgs - rc->told_msgs < GW_RDMA_RQ_DEPTH / 4)
		return;
	if (rc->tx_msgs - rc->peer_msgs >= rc->peer_rq || !sq_room(rc, true))
		return; /* deferred: retried at the next progress */
	struct gw_rdma_credit *cr = &rc->slots[SLOT_SEND(rc->sq_posted % GW_RDMA_SQ_DEPTH)];
	cr->consumed = htobe64(rc->rx_tail);
	cr->msgs = htobe64(rc->rx_msgs);
	struct ibv_sge sge = {
	    .addr = (uintptr_t)cr, .length = sizeof(*cr), .lkey = rc->slots_mr->lkey};
	struct ibv_send_wr wr = {.sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND};
	int r = post_send(rc, &wr);
	if (r) {
		set_err(rc, r);
		return;
	}
	rc->tx_msgs++;
	rc->told_bytes = rc->rx_tail;
	rc->told_msgs = rc->rx_msgs;
}

/*
 * Wait (lock held, released while asleep) until a completion or event arrives, the peer
 * goes, the connection is shut down, or deadline (ms, -1 = none). 0 (check the state
 * again), -ECANCELED or -ETIMEDOUT.
 */
static int wait_event(struct gw_conn *c, struct gw_rdma_conn *rc, int role, long long deadline)
{
	if (atomic_load(&c->shut))
		return -ECANCELED;
	rc->waiting[role] = true;
	if (ibv_req_notify_cq(rc->cq, 0)) {
		rc->waiting[role] = false;
		set_err(rc, -EIO);
		return 0;
	}
	if (progress(rc)) { /* arrived between the last poll and arming */
		rc->waiting[role] = false;
		return 0;
	}
	int timeout = -1;
	if (deadline >= 0) {
		long long left = deadline - (long long)gw_now_mono_ms();
		timeout = left > 0 ? (int)left : 0;
	}
	pthread_mutex_unlock(&rc->lock);
	struct pollfd p[4] = {{.fd = rc->cch->fd, .events = POLLIN},
			      {.fd = rc->ech->fd, .events = POLLIN},
			      {.fd = c->cancel_fd, .events = POLLIN},
			      {.fd = rc->wake_fd[role], .events = POLLIN}};
	int n = poll(p, 4, timeout);
	pthread_mutex_lock(&rc->lock);
	rc->waiting[role] = false;
	if (p[0].revents & POLLIN) {
		struct ibv_cq *cq;
		void *ctx;
		unsigned got = 0;
		while (ibv_get_cq_event(rc->cch, &cq, &ctx) == 0)
			got++;
		if (got)
			ibv_ack_cq_events(rc->cq, got);
	}
	if (p[3].revents & POLLIN) {
		uint64_t v;
		(void)!read(rc->wake_fd[role], &v, sizeof(v));
	}
	/* Whoever took the completion event handles the completions, now: they may be the
	 * other thread's (credits for a waiting sender, data for a waiting receiver), and
	 * that thread is only woken by progress(). */
	bool changed = progress(rc);
	if (atomic_load(&c->shut))
		return -ECANCELED;
	if (n == 0 && !changed)
		return -ETIMEDOUT;
	return 0;
}

/* Why this connection cannot move data any more (0 = it can). */
static int stream_err(struct gw_conn *c, struct gw_rdma_conn *rc)
{
	if (atomic_load(&c->shut))
		return -ECANCELED;
	if (rc->err)
		return rc->err;
	return rc->peer_gone ? -ECONNRESET : 0;
}

/* Gather up to `room` bytes from iov[*i] at offset *off (advanced past what it took) into
 * at most max_sge SGEs: registered memory as it is, anything else copied into the bounce
 * buffer. Lock held. The byte count (0: the bounce buffer is full until earlier writes
 * complete), or -errno. */
static ssize_t gather(struct gw_rdma_conn *rc, const struct iovec *iov, int iovcnt, int *i,
		      size_t *off, size_t room, struct ibv_sge *sge, unsigned *nsge_out)
{
	unsigned nsge = 0;
	size_t total = 0;

	while (*i < iovcnt && nsge < rc->max_sge && total < room) {
		const uint8_t *p = (const uint8_t *)iov[*i].iov_base + *off;
		size_t len = iov[*i].iov_len - *off;
		uint32_t lkey;
		if (len == 0) {
			(*i)++;
			*off = 0;
			continue;
		}
		if (len > room - total)
			len = room - total;
		int r = gw_rdma_region_lkey(rc->regions, rc->nregions, p, &len, &lkey);
		if (r == -ENOENT) {
			/* not registered: through the bounce buffer (headers, small frames) */
			size_t free_b = GW_RDMA_BOUNCE - rc->bounce_used;
			if (free_b == 0)
				break;
			if (len > free_b)
				len = free_b;
			memcpy(rc->bounce + rc->bounce_used, p, len);
			p = rc->bounce + rc->bounce_used;
			rc->bounce_used += len;
			rc->bounced += len;
			lkey = rc->bounce_mr->lkey;
		} else if (r) {
			return r;
		}
		sge[nsge++] =
		    (struct ibv_sge){.addr = (uintptr_t)p, .length = (uint32_t)len, .lkey = lkey};
		total += len;
		*off += len;
		if (*off == iov[*i].iov_len) {
			(*i)++;
			*off = 0;
		}
	}
	*nsge_out = nsge;
	return (ssize_t)total;
}

/* One RDMA WRITE WITH IMM into the peer's ring of up to `room` bytes gathered from iov.
 * Lock held. 1 posted, 0 nothing posted (bounce buffer full), -errno. */
static int post_write(struct gw_rdma_conn *rc, const struct iovec *iov, int iovcnt, int *i,
		      size_t *off, size_t room)
{
	struct ibv_sge sge[GW_RDMA_MAX_SGE];
	unsigned nsge;
	ssize_t total = gather(rc, iov, iovcnt, i, off, room, sge, &nsge);
	if (total <= 0)
		return (int)total;
	struct ibv_send_wr wr = {
	    .sg_list = sge,
	    .num_sge = (int)nsge,
	    .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
	    .imm_data = htobe32((uint32_t)total),
	    .wr.rdma = {.remote_addr = rc->peer_ring_addr + rc->tx_head % rc->peer_ring_size,
			.rkey = rc->peer_rkey},
	};
	int r = post_send(rc, &wr);
	if (r)
		return r;
	rc->tx_head += (uint64_t)total;
	rc->tx_msgs++;
	return 1;
}

int gw_rdma_write_placed(struct gw_conn *c, const struct iovec *iov, int iovcnt,
			 const struct gw_remote_mem *dst, uint64_t offset)
{
	struct gw_rdma_conn *rc = c->priv;
	long long deadline = gw_transport_deadline(atomic_load(&c->timeout_ms));
	uint64_t total = 0;
	int i = 0, r = 0;
	size_t off = 0;

	if (iovcnt < 0 || !dst)
		return -EINVAL;
	for (int k = 0; k < iovcnt; k++)
		total += iov[k].iov_len;
	if (offset > dst->len || total > dst->len - offset)
		return -ERANGE;
	pthread_mutex_lock(&rc->lock);
	uint64_t at = dst->addr + offset, start = at;
	while (!(r = stream_err(c, rc))) {
		while (i < iovcnt && off == iov[i].iov_len) {
			i++;
			off = 0;
		}
		if (i == iovcnt)
			break;
		if (sq_room(rc, false)) {
			struct ibv_sge sge[GW_RDMA_MAX_SGE];
			unsigned nsge;
			if (rc->sq_done == rc->sq_posted)
				rc->bounce_used = 0;
			ssize_t n = gather(rc, iov, iovcnt, &i, &off, SIZE_MAX, sge, &nsge);
			if (n < 0) {
				set_err(rc, r = (int)n);
				break;
			}
			if (n > 0) {
				/* no immediate: takes no receive WR and no ring space at the peer
				 */
				struct ibv_send_wr wr = {
				    .sg_list = sge,
				    .num_sge = (int)nsge,
				    .opcode = IBV_WR_RDMA_WRITE,
				    .wr.rdma = {.remote_addr = at, .rkey = dst->rkey}};
				r = post_send(rc, &wr);
				if (r) {
					set_err(rc, r);
					break;
				}
				at += (uint64_t)n;
				progress(rc);
				continue;
			}
		}
		r = wait_event(c, rc, ROLE_SEND, deadline);
		if (r)
			break;
		progress(rc);
	}
	atomic_fetch_add_explicit(&c->sent, at - start, memory_order_relaxed);
	pthread_mutex_unlock(&rc->lock);
	return r;
}

int gw_rdma_sendv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	struct gw_rdma_conn *rc = c->priv;
	long long deadline = gw_transport_deadline(atomic_load(&c->timeout_ms));
	uint64_t start;
	int i = 0, r = 0;
	size_t off = 0;

	if (iovcnt < 0)
		return -EINVAL;
	pthread_mutex_lock(&rc->lock);
	start = rc->tx_head;
	for (;;) {
		r = stream_err(c, rc);
		if (r)
			break;
		while (i < iovcnt && off == iov[i].iov_len) {
			i++;
			off = 0;
		}
		/* all posted: the caller's buffers are free once every write completed */
		bool posted_all = i == iovcnt;
		if (posted_all && rc->sq_done == rc->sq_posted)
			break;
		if (!posted_all) {
			uint64_t in_flight = rc->tx_head - rc->peer_consumed;
			size_t room = rc->peer_ring_size - in_flight;
			size_t to_end = rc->peer_ring_size - rc->tx_head % rc->peer_ring_size;
			if (room > to_end)
				room = to_end; /* a write never wraps around the ring */
			if (room > GW_RDMA_MAX_MSG)
				room = GW_RDMA_MAX_MSG;
			if (room && sq_room(rc, false) &&
			    rc->tx_msgs - rc->peer_msgs < rc->peer_rq / 2) {
				if (rc->sq_done == rc->sq_posted)
					rc->bounce_used = 0;
				int posted = post_write(rc, iov, iovcnt, &i, &off, room);
				if (posted < 0) {
					set_err(rc, r = posted);
					break;
				}
				if (posted) {
					progress(rc);
					continue;
				}
				/* nothing posted: the bounce buffer is full until writes complete
				 */
			}
		}
		r = wait_event(c, rc, ROLE_SEND, deadline);
		if (r)
			break;
		progress(rc);
	}
	if (rc->sq_done == rc->sq_posted)
		rc->bounce_used = 0;
	atomic_fetch_add_explicit(&c->sent, rc->tx_head - start, memory_order_relaxed);
	pthread_mutex_unlock(&rc->lock);
	return r;
}

/* Copy up to len bytes out of the ring into dst; returns how many (0 = none arrived yet). */
static size_t ring_take(struct gw_rdma_conn *rc, uint8_t *dst, size_t len)
{
	size_t avail = rc->rx_end - rc->rx_tail;
	if (len > avail)
		len = avail;
	if (!len)
		return 0;
	size_t at = rc->rx_tail % GW_RDMA_RING_BYTES, first = GW_RDMA_RING_BYTES - at;
	if (first > len)
		first = len;
	pthread_mutex_unlock(&rc->lock); /* only this thread moves rx_tail */
	memcpy(dst, rc->ring + at, first);
	memcpy(dst + first, rc->ring, len - first);
	pthread_mutex_lock(&rc->lock);
	rc->rx_tail += len;
	send_credit(rc);
	return len;
}

int gw_rdma_recvv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	struct gw_rdma_conn *rc = c->priv;
	long long deadline = gw_transport_deadline(atomic_load(&c->timeout_ms));
	uint64_t got = 0;
	int r = 0;

	if (iovcnt < 0)
		return -EINVAL;
	pthread_mutex_lock(&rc->lock);
	for (int i = 0; i < iovcnt && !r; i++) {
		size_t off = 0;
		while (off < iov[i].iov_len) {
			if (atomic_load(&c->shut)) {
				r = -ECANCELED;
				break;
			}
			size_t n =
			    ring_take(rc, (uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off);
			if (n) {
				off += n;
				got += n;
				continue;
			}
			if (progress(rc))
				continue;
			r = stream_err(c, rc); /* bytes that arrived before an end are still read */
			if (!r)
				r = wait_event(c, rc, ROLE_RECV, deadline);
			if (r)
				break;
		}
	}
	pthread_mutex_unlock(&rc->lock);
	atomic_fetch_add_explicit(&c->received, got, memory_order_relaxed);
	return r;
}

int gw_rdma_recv(struct gw_conn *c, void *buf, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	return gw_rdma_recvv(c, &iov, 1);
}
