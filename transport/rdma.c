/* rdma.c -- the RDMA transport (librdmacm + libibverbs, RC queue pairs): listen, accept,
 * connect, register_mem, shutdown and close. The byte stream itself is rdma_stream.c, the
 * memory registration rdma_mem.c; the protocol is described in rdma_int.h. */
#include "rdma_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gw_fsutil.h"

#define CM_STEP_MS 2000 /* address and route resolution, each */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static struct gw_conn *conn_alloc(const struct gw_transport_opts *o, bool listener)
{
	struct gw_conn *c = calloc(1, sizeof(*c));
	struct gw_rdma_conn *rc = calloc(1, sizeof(*rc));
	if (!c || !rc)
		goto fail;
	c->ops = &gw_transport_rdma;
	c->fd = -1;
	c->listener = listener;
	c->opts = *o;
	atomic_init(&c->timeout_ms, o->timeout_ms);
	atomic_init(&c->shut, false);
	c->priv = rc;
	rc->wake_fd[0] = rc->wake_fd[1] = -1;
	c->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->cancel_fd < 0)
		goto fail;
	for (int i = 0; i < 2; i++) {
		rc->wake_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (rc->wake_fd[i] < 0)
			goto fail;
	}
	pthread_mutex_init(&rc->lock, NULL);
	snprintf(c->peer, sizeof(c->peer), "?");
	snprintf(c->local, sizeof(c->local), "?");
	return c;
fail:
	if (c && c->cancel_fd > 0)
		close(c->cancel_fd);
	if (rc) {
		for (int i = 0; i < 2; i++)
			if (rc->wake_fd[i] > 0)
				close(rc->wake_fd[i]);
	}
	free(rc);
	free(c);
	return NULL;
}

static void conn_free(struct gw_conn *c)
{
	struct gw_rdma_conn *rc = c->priv;
	if (rc->id && rc->id->qp)
		rdma_destroy_qp(rc->id);
	if (rc->cq)
		ibv_destroy_cq(rc->cq);
	if (rc->cch)
		ibv_destroy_comp_channel(rc->cch);
	if (rc->ring_mr)
		ibv_dereg_mr(rc->ring_mr);
	if (rc->slots_mr)
		ibv_dereg_mr(rc->slots_mr);
	if (rc->bounce_mr)
		ibv_dereg_mr(rc->bounce_mr);
	for (unsigned i = 0; i < rc->nregions; i++)
		gw_rdma_region_put(rc->regions[i]);
	for (unsigned i = 0; i < rc->nexposed; i++)
		gw_rdma_exposed_put(rc->exposed[i]);
	gw_rdma_pd_put(rc->pd);
	if (rc->id)
		rdma_destroy_id(rc->id);
	if (rc->ech)
		rdma_destroy_event_channel(rc->ech);
	free(rc->ring);
	free(rc->slots);
	free(rc->bounce);
	for (int i = 0; i < 2; i++)
		if (rc->wake_fd[i] >= 0)
			close(rc->wake_fd[i]);
	pthread_mutex_destroy(&rc->lock);
	if (c->cancel_fd >= 0)
		close(c->cancel_fd);
	free(rc);
	free(c);
}

/* A fresh event channel whose fd can be polled. */
static int new_channel(struct rdma_event_channel **out)
{
	*out = rdma_create_event_channel();
	if (!*out)
		return errno ? -errno : -ENODEV;
	int r = set_nonblock((*out)->fd);
	if (r) {
		rdma_destroy_event_channel(*out);
		*out = NULL;
	}
	return r;
}

/* The next connection event on ech (the caller acks it), honouring cancel_fd and the
 * deadline (ms, -1 = none). 0, -ETIMEDOUT, -ECANCELED or -errno. */
static int cm_next(struct rdma_event_channel *ech, struct gw_conn *c, long long deadline,
		   struct rdma_cm_event **ev)
{
	for (;;) {
		if (c && atomic_load(&c->shut))
			return -ECANCELED;
		if (rdma_get_cm_event(ech, ev) == 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		int timeout = -1;
		if (deadline >= 0) {
			long long left = deadline - (long long)gw_now_mono_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			timeout = (int)left;
		}
		struct pollfd p[2] = {{.fd = ech->fd, .events = POLLIN},
				      {.fd = c ? c->cancel_fd : -1, .events = POLLIN}};
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			return -errno;
	}
}

/* Wait for the event `want` on ech: 0, or the error the event (or the wait) stands for. When
 * pdata is given, the event's private data is copied there (*plen = its length). */
static int cm_expect(struct rdma_event_channel *ech, struct gw_conn *c, long long deadline,
		     enum rdma_cm_event_type want, void *pdata, size_t *plen)
{
	struct rdma_cm_event *ev;
	int r = cm_next(ech, c, deadline, &ev);
	if (r)
		return r;
	enum rdma_cm_event_type got = ev->event;
	if (got == want && pdata) {
		size_t n = ev->param.conn.private_data_len;
		if (n > *plen)
			n = *plen;
		if (ev->param.conn.private_data)
			memcpy(pdata, ev->param.conn.private_data, n);
		else
			n = 0;
		*plen = n;
	}
	rdma_ack_cm_event(ev);
	if (got == want)
		return 0;
	switch (got) {
	case RDMA_CM_EVENT_REJECTED:
		return -ECONNREFUSED; /* no listener there, or it refused us */
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		return -EHOSTUNREACH;
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_DISCONNECTED:
		return -ECONNRESET;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		return -ENODEV;
	default:
		return -EPROTO;
	}
}

static void fill_hello(const struct gw_rdma_conn *rc, struct gw_rdma_hello *h)
{
	h->magic = htonl(GW_RDMA_MAGIC);
	h->version = htons(GW_RDMA_VERSION);
	h->rq_depth = htons(GW_RDMA_RQ_DEPTH);
	h->ring_addr = htobe64((uintptr_t)rc->ring);
	h->ring_rkey = htonl(rc->ring_mr->rkey);
	h->ring_size = htonl(GW_RDMA_RING_BYTES);
}

/* Take the peer's hello (its private data). -EPROTO when it is not one of ours. */
static int take_hello(struct gw_rdma_conn *rc, const void *p, size_t len)
{
	struct gw_rdma_hello h;
	if (len < sizeof(h))
		return -EPROTO;
	memcpy(&h, p, sizeof(h));
	uint32_t size = ntohl(h.ring_size);
	unsigned rq = ntohs(h.rq_depth);
	if (ntohl(h.magic) != GW_RDMA_MAGIC || ntohs(h.version) != GW_RDMA_VERSION ||
	    size < (64u << 10) || size > (1u << 30) || rq < 8)
		return -EPROTO;
	rc->peer_ring_addr = be64toh(h.ring_addr);
	rc->peer_rkey = ntohl(h.ring_rkey);
	rc->peer_ring_size = size;
	rc->peer_rq = rq;
	return 0;
}

/* Queue pair, completion queue, receive ring and buffers for a resolved or requested id. */
static int qp_setup(struct gw_rdma_conn *rc, struct rdma_cm_id *id)
{
	struct ibv_device_attr da;
	int r;

	rc->id = id;
	rc->pd = gw_rdma_pd_get(id->verbs);
	if (!rc->pd)
		return errno ? -errno : -ENOMEM;
	rc->cch = ibv_create_comp_channel(id->verbs);
	if (!rc->cch)
		return errno ? -errno : -ENOMEM;
	r = set_nonblock(rc->cch->fd);
	if (r)
		return r;
	rc->cq = ibv_create_cq(id->verbs, GW_RDMA_SQ_DEPTH + GW_RDMA_RQ_DEPTH + 16, rc, rc->cch, 0);
	if (!rc->cq)
		return errno ? -errno : -ENOMEM;
	rc->max_sge = GW_RDMA_MAX_SGE;
	if (ibv_query_device(id->verbs, &da) == 0 && da.max_sge > 0 &&
	    (unsigned)da.max_sge < rc->max_sge)
		rc->max_sge = (unsigned)da.max_sge;
	struct ibv_qp_init_attr qa = {
	    .send_cq = rc->cq,
	    .recv_cq = rc->cq,
	    .cap = {.max_send_wr = GW_RDMA_SQ_DEPTH,
		    .max_recv_wr = GW_RDMA_RQ_DEPTH,
		    .max_send_sge = rc->max_sge,
		    .max_recv_sge = 1},
	    .qp_type = IBV_QPT_RC,
	};
	if (rdma_create_qp(id, rc->pd, &qa))
		return errno ? -errno : -ENOMEM;
	if (posix_memalign((void **)&rc->ring, 4096, GW_RDMA_RING_BYTES))
		return -ENOMEM;
	rc->slots = calloc(GW_RDMA_RQ_DEPTH + GW_RDMA_SQ_DEPTH, sizeof(*rc->slots));
	rc->bounce = malloc(GW_RDMA_BOUNCE);
	if (!rc->slots || !rc->bounce)
		return -ENOMEM;
	rc->ring_mr = ibv_reg_mr(rc->pd, rc->ring, GW_RDMA_RING_BYTES,
				 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	rc->slots_mr = ibv_reg_mr(rc->pd, rc->slots,
				  (GW_RDMA_RQ_DEPTH + GW_RDMA_SQ_DEPTH) * sizeof(*rc->slots),
				  IBV_ACCESS_LOCAL_WRITE);
	rc->bounce_mr = ibv_reg_mr(rc->pd, rc->bounce, GW_RDMA_BOUNCE, 0);
	if (!rc->ring_mr || !rc->slots_mr || !rc->bounce_mr)
		return errno ? -errno : -ENOMEM;
	return gw_rdma_post_recvs(rc, 0, GW_RDMA_RQ_DEPTH);
}

static void set_names(struct gw_conn *c, struct rdma_cm_id *id, bool listener)
{
	gw_transport_format_addr(rdma_get_local_addr(id), c->local, sizeof(c->local));
	if (listener)
		snprintf(c->peer, sizeof(c->peer), "%s", c->local);
	else
		gw_transport_format_addr(rdma_get_peer_addr(id), c->peer, sizeof(c->peer));
}

static int rdma_listen_op(const char *addr, const struct gw_transport_opts *opts,
			  struct gw_conn **out)
{
	struct gw_transport_opts o;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int r;

	*out = NULL;
	gw_transport_opts_resolve(opts, &o);
	r = gw_transport_parse_addr(addr, true, &ss, &sslen);
	if (r)
		return r;
	struct gw_conn *c = conn_alloc(&o, true);
	if (!c)
		return -ENOMEM;
	struct gw_rdma_conn *rc = c->priv;
	r = new_channel(&rc->ech);
	if (!r && rdma_create_id(rc->ech, &rc->id, c, RDMA_PS_TCP))
		r = -errno;
	if (!r && rdma_bind_addr(rc->id, (struct sockaddr *)&ss))
		r = -errno;
	if (!r && rdma_listen(rc->id, 64))
		r = -errno;
	if (r) {
		conn_free(c);
		return r;
	}
	c->local_port = ntohs(rdma_get_src_port(rc->id));
	set_names(c, rc->id, true);
	*out = c;
	return 0;
}

/* Finish a connection request: its own channel, resources, accept, wait until established. */
static int accept_one(struct gw_conn *lst, struct rdma_cm_id *nid, const void *pdata, size_t plen,
		      long long deadline, struct gw_conn **out)
{
	struct gw_conn *c = conn_alloc(&lst->opts, false);
	if (!c) {
		rdma_reject(nid, NULL, 0);
		rdma_destroy_id(nid);
		return -ENOMEM;
	}
	struct gw_rdma_conn *rc = c->priv;
	struct gw_rdma_hello h;
	int r = take_hello(rc, pdata, plen);
	if (r) {
		rdma_reject(nid, NULL, 0); /* not one of ours */
		rc->id = nid;
		conn_free(c);
		return r;
	}
	r = new_channel(&rc->ech);
	if (!r && rdma_migrate_id(nid, rc->ech))
		r = -errno;
	if (!r)
		r = qp_setup(rc, nid);
	else
		rc->id = nid;
	if (!r) {
		fill_hello(rc, &h);
		struct rdma_conn_param cp = {
		    .private_data = &h, .private_data_len = sizeof(h), .rnr_retry_count = 7};
		if (rdma_accept(nid, &cp))
			r = -errno;
	}
	if (!r)
		r = cm_expect(rc->ech, lst, deadline, RDMA_CM_EVENT_ESTABLISHED, NULL, NULL);
	if (r) {
		if (r != -ECANCELED)
			rdma_reject(nid, NULL, 0);
		conn_free(c);
		return r;
	}
	set_names(c, nid, false);
	*out = c;
	return 0;
}

static int rdma_accept_op(struct gw_conn *lst, struct gw_conn **out)
{
	struct gw_rdma_conn *lrc = lst->priv;
	long long deadline = gw_transport_deadline(atomic_load(&lst->timeout_ms));
	*out = NULL;
	if (!lst->listener)
		return -EINVAL;
	for (;;) {
		struct rdma_cm_event *ev;
		struct gw_rdma_hello h;
		int r = cm_next(lrc->ech, lst, deadline, &ev);
		if (r)
			return r;
		if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
			rdma_ack_cm_event(ev);
			continue;
		}
		struct rdma_cm_id *nid = ev->id;
		size_t plen = ev->param.conn.private_data ? ev->param.conn.private_data_len : 0;
		if (plen > sizeof(h))
			plen = sizeof(h);
		if (plen)
			memcpy(&h, ev->param.conn.private_data, plen);
		rdma_ack_cm_event(ev); /* before migrate_id, which waits for it */
		r = accept_one(lst, nid, &h, plen, deadline, out);
		/* a peer that was not one of ours, or went away meanwhile, is not our failure */
		if (r == -EPROTO || r == -ECONNRESET || r == -ECONNREFUSED)
			continue;
		return r;
	}
}

static int rdma_connect_op(const char *addr, const struct gw_transport_opts *opts,
			   struct gw_conn **out)
{
	struct gw_transport_opts o;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct gw_rdma_hello h;
	size_t plen = sizeof(h);
	int r;

	*out = NULL;
	gw_transport_opts_resolve(opts, &o);
	r = gw_transport_parse_addr(addr, false, &ss, &sslen);
	if (r)
		return r;
	long long deadline = gw_transport_deadline(o.timeout_ms);
	int step = o.timeout_ms > 0 && o.timeout_ms < CM_STEP_MS ? o.timeout_ms : CM_STEP_MS;
	struct gw_conn *c = conn_alloc(&o, false);
	if (!c)
		return -ENOMEM;
	struct gw_rdma_conn *rc = c->priv;
	r = new_channel(&rc->ech);
	if (!r && rdma_create_id(rc->ech, &rc->id, c, RDMA_PS_TCP))
		r = -errno;
	if (!r && rdma_resolve_addr(rc->id, NULL, (struct sockaddr *)&ss, step))
		r = -errno;
	if (!r)
		r = cm_expect(rc->ech, NULL, deadline, RDMA_CM_EVENT_ADDR_RESOLVED, NULL, NULL);
	if (!r && rdma_resolve_route(rc->id, step))
		r = -errno;
	if (!r)
		r = cm_expect(rc->ech, NULL, deadline, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL, NULL);
	if (!r)
		r = qp_setup(rc, rc->id);
	if (!r) {
		fill_hello(rc, &h);
		struct rdma_conn_param cp = {.private_data = &h,
					     .private_data_len = sizeof(h),
					     .retry_count = 7,
					     .rnr_retry_count = 7};
		if (rdma_connect(rc->id, &cp))
			r = -errno;
	}
	if (!r)
		r = cm_expect(rc->ech, NULL, deadline, RDMA_CM_EVENT_ESTABLISHED, &h, &plen);
	if (!r)
		r = take_hello(rc, &h, plen);
	if (r) {
		conn_free(c);
		return r;
	}
	set_names(c, rc->id, false);
	*out = c;
	return 0;
}

static int rdma_register_mem(struct gw_conn *c, void *addr, size_t len)
{
	struct gw_rdma_conn *rc = c->priv;
	if (c->listener || !len)
		return 0;
	struct gw_rdma_region *reg = gw_rdma_region_get(rc->pd, addr, len);
	if (!reg)
		return errno ? -errno : -ENOMEM;
	int r = 0;
	pthread_mutex_lock(&rc->lock);
	for (unsigned i = 0; i < rc->nregions; i++)
		if (rc->regions[i] == reg) {
			gw_rdma_region_put(reg); /* already given to this connection */
			goto out;
		}
	if (rc->nregions == sizeof(rc->regions) / sizeof(rc->regions[0])) {
		gw_rdma_region_put(reg);
		r = -ENOSPC;
		goto out;
	}
	rc->regions[rc->nregions++] = reg;
out:
	pthread_mutex_unlock(&rc->lock);
	return r;
}

static int rdma_expose_mem(struct gw_conn *c, void *addr, size_t len, struct gw_remote_mem *out)
{
	struct gw_rdma_conn *rc = c->priv;
	if (c->listener || !len)
		return -EINVAL;
	struct ibv_mr *mr = gw_rdma_exposed_get(rc->pd, addr, len);
	if (!mr)
		return errno ? -errno : -ENOMEM;
	pthread_mutex_lock(&rc->lock);
	bool held = false;
	for (unsigned i = 0; i < rc->nexposed; i++)
		held |= rc->exposed[i] == mr;
	if (held || rc->nexposed == sizeof(rc->exposed) / sizeof(rc->exposed[0])) {
		pthread_mutex_unlock(&rc->lock);
		gw_rdma_exposed_put(mr); /* already held by this connection, or no room */
		if (!held)
			return -ENOSPC;
	} else {
		rc->exposed[rc->nexposed++] = mr;
		pthread_mutex_unlock(&rc->lock);
	}
	*out = (struct gw_remote_mem){.addr = (uintptr_t)addr, .len = len, .rkey = mr->rkey};
	return 0;
}

static void rdma_shutdown_op(struct gw_conn *c)
{
	struct gw_rdma_conn *rc = c->priv;
	uint64_t one = 1;
	if (atomic_exchange(&c->shut, true))
		return;
	(void)!write(c->cancel_fd, &one, sizeof(one));
	if (!c->listener && rc->id && rc->id->qp)
		rdma_disconnect(rc->id); /* the peer sees the end of the stream */
}

static void rdma_close_op(struct gw_conn *c)
{
	if (c)
		conn_free(c);
}

/* Lock context: see gw_transport.h (one sender, one receiver, shutdown from anywhere);
 * the per-connection lock is taken inside the stream ops. */
const struct gw_transport_ops gw_transport_rdma = {
    .name = "rdma",
    .listen = rdma_listen_op,
    .accept = rdma_accept_op,
    .connect = rdma_connect_op,
    .sendv = gw_rdma_sendv,
    .recv = gw_rdma_recv,
    .recvv = gw_rdma_recvv,
    .register_mem = rdma_register_mem,
    .expose_mem = rdma_expose_mem,
    .write_placed = gw_rdma_write_placed,
    .shutdown = rdma_shutdown_op,
    .close = rdma_close_op,
};
