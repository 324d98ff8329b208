/* fakeverbs: a software RDMA provider in user space, connection manager part.
 * rdma_cm over TCP: event channels (a pipe, one byte per queued event, so O_NONBLOCK and
 * poll() behave), ids, address/route resolution (immediate), a listener = a TCP listener on
 * the bound IP:port with an accept thread that turns each connection into a CONNECT_REQUEST
 * on a new id, rdma_connect's thread (non-blocking TCP connect, CONNREQ, ACCEPT/REJECT, RTU;
 * it then becomes the QP's RX thread), accept/reject/disconnect, rdma_create_qp (the QP is
 * embedded in the id) and the teardown that joins the threads. */
#include "fakeverbs_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FV_CONNECT_TIMEOUT_MS 10000
#define FV_REPLY_TIMEOUT_MS   30000

/* ---- event channels ---- */

struct rdma_event_channel *rdma_create_event_channel(void)
{
	struct fv_chan *c = calloc(1, sizeof(*c));
	int p[2];
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	if (fv_pipe(p) < 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->ch.fd = p[0];
	c->wfd = p[1];
	return &c->ch;
}

void rdma_destroy_event_channel(struct rdma_event_channel *channel)
{
	struct fv_chan *c = fv_container_of(channel, struct fv_chan, ch);
	struct fv_event *e;
	if (!channel)
		return;
	while ((e = c->head)) {
		c->head = e->next;
		free(e);
	}
	close(c->ch.fd);
	close(c->wfd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void fv_chan_put(struct rdma_event_channel *ch, struct fv_event *e)
{
	struct fv_chan *c = fv_container_of(ch, struct fv_chan, ch);
	char b = 1;
	pthread_mutex_lock(&c->lock);
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	if (write(c->wfd, &b, 1) != 1)
		fprintf(stderr, "fakeverbs: event channel full\n");
	pthread_mutex_unlock(&c->lock);
}

static struct fv_event *fv_event_new(struct rdma_cm_id *id, enum rdma_cm_event_type type,
				     int status, const void *pdata, int pdlen)
{
	struct fv_event *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ev.id = id;
	e->ev.event = type;
	e->ev.status = status;
	if (pdlen > 0) {
		memcpy(e->pdata, pdata, (size_t)pdlen);
		e->ev.param.conn.private_data = e->pdata;
		e->ev.param.conn.private_data_len = (uint8_t)pdlen;
	}
	return e;
}

void fv_queue_event_locked(struct fv_id *f, enum rdma_cm_event_type type, int status,
			   const void *pdata, int pdlen)
{
	struct fv_event *e = fv_event_new(&f->id, type, status, pdata, pdlen);
	if (e && f->id.channel)
		fv_chan_put(f->id.channel, e);
	else
		free(e);
}

static void fv_queue_event(struct fv_id *f, enum rdma_cm_event_type type, int status,
			   const void *pdata, int pdlen)
{
	pthread_mutex_lock(&f->lock);
	if (!f->stop)
		fv_queue_event_locked(f, type, status, pdata, pdlen);
	pthread_mutex_unlock(&f->lock);
}

int rdma_get_cm_event(struct rdma_event_channel *channel, struct rdma_cm_event **event)
{
	struct fv_chan *c = fv_container_of(channel, struct fv_chan, ch);
	struct fv_event *e;
	char b;
	ssize_t r = read(channel->fd, &b, 1);
	if (r != 1) {
		if (r == 0)
			errno = ENODATA;
		return -1;
	}
	pthread_mutex_lock(&c->lock);
	e = c->head;
	if (e) {
		c->head = e->next;
		if (!c->head)
			c->tail = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (!e) {
		errno = ENODATA;
		return -1;
	}
	*event = &e->ev;
	return 0;
}

int rdma_ack_cm_event(struct rdma_cm_event *event)
{
	free(fv_container_of(event, struct fv_event, ev));
	return 0;
}

const char *rdma_event_str(enum rdma_cm_event_type event)
{
	static const char *const s[] = {
	    "RDMA_CM_EVENT_ADDR_RESOLVED",   "RDMA_CM_EVENT_ADDR_ERROR",
	    "RDMA_CM_EVENT_ROUTE_RESOLVED",  "RDMA_CM_EVENT_ROUTE_ERROR",
	    "RDMA_CM_EVENT_CONNECT_REQUEST", "RDMA_CM_EVENT_CONNECT_RESPONSE",
	    "RDMA_CM_EVENT_CONNECT_ERROR",   "RDMA_CM_EVENT_UNREACHABLE",
	    "RDMA_CM_EVENT_REJECTED",	     "RDMA_CM_EVENT_ESTABLISHED",
	    "RDMA_CM_EVENT_DISCONNECTED",    "RDMA_CM_EVENT_DEVICE_REMOVAL",
	    "RDMA_CM_EVENT_MULTICAST_JOIN",  "RDMA_CM_EVENT_MULTICAST_ERROR",
	    "RDMA_CM_EVENT_ADDR_CHANGE",     "RDMA_CM_EVENT_TIMEWAIT_EXIT",
	};
	if ((unsigned)event < sizeof(s) / sizeof(s[0]))
		return s[event];
	return "UNKNOWN EVENT";
}

/* ---- ids ---- */

static struct fv_id *fv_id_new(struct rdma_event_channel *channel, void *context,
			       enum rdma_port_space ps)
{
	struct fv_id *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->wlock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->fd = -1;
	f->id.channel = channel;
	f->id.context = context;
	f->id.ps = ps;
	f->id.qp_type = IBV_QPT_RC;
	f->id.port_num = 1;
	return f;
}

int rdma_create_id(struct rdma_event_channel *channel, struct rdma_cm_id **id, void *context,
		   enum rdma_port_space ps)
{
	struct fv_id *f = fv_id_new(channel, context, ps);
	if (!f) {
		errno = ENOMEM;
		return -1;
	}
	*id = &f->id;
	return 0;
}

static socklen_t fv_salen(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void fv_fill_addrs(struct fv_id *f)
{
	socklen_t l = sizeof(f->id.route.addr.src_storage);
	getsockname(f->fd, &f->id.route.addr.src_addr, &l);
	l = sizeof(f->id.route.addr.dst_storage);
	getpeername(f->fd, &f->id.route.addr.dst_addr, &l);
}

int rdma_bind_addr(struct rdma_cm_id *id, struct sockaddr *addr)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	int one = 1, fd;
	socklen_t l;
	if (!addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) || f->fd >= 0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, addr, fv_salen(addr)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	f->fd = fd;
	l = sizeof(id->route.addr.src_storage);
	getsockname(fd, &id->route.addr.src_addr, &l);
	id->verbs = fv_context();
	f->resolved = 1;
	return 0;
}

static void *fv_listen_main(void *arg)
{
	struct fv_id *l = arg;
	for (;;) {
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		struct fv_hdr h;
		uint8_t pd[FV_PDATA_MAX];
		struct fv_id *n;
		struct fv_event *e;
		int fd, one = 1;
		pthread_mutex_lock(&l->lock);
		int stop = l->stop;
		pthread_mutex_unlock(&l->lock);
		if (stop)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* the CONNREQ comes right after the connect: give it 2 s */
		p.fd = fd;
		if (poll(&p, 1, 2000) <= 0 || fv_read_full(fd, &h, sizeof(h)) < 0 ||
		    h.type != FV_F_CONNREQ || h.len > FV_PDATA_MAX ||
		    fv_read_full(fd, pd, h.len) < 0) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		n = fv_id_new(l->id.channel, l->id.context, l->id.ps);
		if (!n) {
			close(fd);
			continue;
		}
		n->fd = fd;
		n->id.verbs = fv_context();
		n->resolved = 1;
		n->conn_attempted = 1;
		n->peer_qpn = (uint32_t)h.seq;
		fv_fill_addrs(n);
		e = fv_event_new(&n->id, RDMA_CM_EVENT_CONNECT_REQUEST, 0, pd, (int)h.len);
		if (!e) {
			close(fd);
			free(n);
			continue;
		}
		e->ev.listen_id = &l->id;
		pthread_mutex_lock(&l->lock);
		e->ev.id->channel = l->id.channel; /* after a migrate of the listener */
		fv_chan_put(l->id.channel, e);
		pthread_mutex_unlock(&l->lock);
	}
	return NULL;
}

int rdma_listen(struct rdma_cm_id *id, int backlog)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	if (f->fd < 0 || f->listening) {
		errno = EINVAL;
		return -1;
	}
	if (listen(f->fd, backlog > 0 ? backlog : 128) < 0)
		return -1;
	f->listening = 1;
	if (pthread_create(&f->lst_thr, NULL, fv_listen_main, f) != 0) {
		errno = ENOMEM;
		return -1;
	}
	f->has_lst = 1;
	return 0;
}

int rdma_resolve_addr(struct rdma_cm_id *id, struct sockaddr *src_addr, struct sockaddr *dst_addr,
		      int timeout_ms)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	int fd;
	if (!dst_addr) {
		errno = EINVAL;
		return -1;
	}
	if (dst_addr->sa_family != AF_INET && dst_addr->sa_family != AF_INET6) {
		fv_queue_event(f, RDMA_CM_EVENT_ADDR_ERROR, -EADDRNOTAVAIL, NULL, 0);
		return 0;
	}
	memset(&id->route.addr.dst_storage, 0, sizeof(id->route.addr.dst_storage));
	memcpy(&id->route.addr.dst_storage, dst_addr, fv_salen(dst_addr));
	/* the source address the kernel would pick: a connected UDP socket tells */
	fd = socket(dst_addr->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		socklen_t l = sizeof(id->route.addr.src_storage);
		if (src_addr)
			bind(fd, src_addr, fv_salen(src_addr));
		if (connect(fd, dst_addr, fv_salen(dst_addr)) == 0)
			getsockname(fd, &id->route.addr.src_addr, &l);
		close(fd);
	}
	id->verbs = fv_context();
	f->resolved = 1;
	fv_queue_event(f, RDMA_CM_EVENT_ADDR_RESOLVED, 0, NULL, 0);
	return 0;
}

int rdma_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	if (!f->resolved) {
		errno = EINVAL;
		return -1;
	}
	fv_queue_event(f, RDMA_CM_EVENT_ROUTE_RESOLVED, 0, NULL, 0);
	return 0;
}

int rdma_migrate_id(struct rdma_cm_id *id, struct rdma_event_channel *channel)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	pthread_mutex_lock(&f->lock);
	id->channel = channel;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

__be16 rdma_get_src_port(struct rdma_cm_id *id)
{
	return id->route.addr.src_addr.sa_family == AF_INET6 ? id->route.addr.src_sin6.sin6_port
							     : id->route.addr.src_sin.sin_port;
}

__be16 rdma_get_dst_port(struct rdma_cm_id *id)
{
	return id->route.addr.dst_addr.sa_family == AF_INET6 ? id->route.addr.dst_sin6.sin6_port
							     : id->route.addr.dst_sin.sin_port;
}

/* ---- QP ---- */

int rdma_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	static uint32_t qpn = 0x100;
	struct ibv_qp_cap c = attr->cap;
	if (f->has_qp || !pd || !attr->send_cq || !attr->recv_cq || attr->srq ||
	    attr->qp_type != IBV_QPT_RC || c.max_send_wr > FV_MAX_WR || c.max_recv_wr > FV_MAX_WR ||
	    c.max_send_sge > FV_MAX_SGE || c.max_recv_sge > FV_MAX_SGE ||
	    c.max_inline_data > FV_MAX_INLINE) {
		errno = EINVAL;
		return -1;
	}
	if (!c.max_send_wr)
		c.max_send_wr = 1;
	if (!c.max_recv_wr)
		c.max_recv_wr = 1;
	f->sq = calloc(c.max_send_wr, sizeof(*f->sq));
	f->rq = calloc(c.max_recv_wr, sizeof(*f->rq));
	if (!f->sq || !f->rq) {
		free(f->sq);
		free(f->rq);
		f->sq = NULL;
		f->rq = NULL;
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_lock(&f->lock);
	f->cap = c;
	f->sq_sig_all = attr->sq_sig_all;
	f->sq_free = f->sq_done = f->sq_tx = f->sq_tail = 0;
	f->rq_head = f->rq_tail = 0;
	f->ack_pending = f->nak_pending = f->nak_sent = 0;
	f->err = 0;
	memset(&f->qp, 0, sizeof(f->qp));
	f->qp.context = fv_context();
	f->qp.qp_context = attr->qp_context;
	f->qp.pd = pd;
	f->qp.send_cq = attr->send_cq;
	f->qp.recv_cq = attr->recv_cq;
	f->qp.qp_num = __atomic_add_fetch(&qpn, 1, __ATOMIC_SEQ_CST);
	f->qp.handle = f->qp.qp_num;
	f->qp.state = IBV_QPS_INIT;
	f->qp.qp_type = IBV_QPT_RC;
	pthread_mutex_init(&f->qp.mutex, NULL);
	pthread_cond_init(&f->qp.cond, NULL);
	f->has_qp = 1;
	pthread_mutex_unlock(&f->lock);
	__atomic_add_fetch(&fv_container_of(pd, struct fv_pd, pd)->users, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&fv_container_of(attr->send_cq, struct fv_cq, cq)->users, 1,
			   __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&fv_container_of(attr->recv_cq, struct fv_cq, cq)->users, 1,
			   __ATOMIC_SEQ_CST);
	attr->cap = c;
	id->qp = &f->qp;
	id->pd = pd;
	id->send_cq = attr->send_cq;
	id->recv_cq = attr->recv_cq;
	id->send_cq_channel = attr->send_cq->channel;
	id->recv_cq_channel = attr->recv_cq->channel;
	id->qp_type = IBV_QPT_RC;
	return 0;
}

/* stop the connection (threads joined, socket closed) */
static void fv_close_conn(struct fv_id *f)
{
	fv_stop_threads(f);
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
}

void rdma_destroy_qp(struct rdma_cm_id *id)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	uint64_t i;
	if (!f->has_qp)
		return;
	fv_close_conn(f);
	for (i = f->sq_free; i < f->sq_tail; i++)
		free(f->sq[i % f->cap.max_send_wr].inl);
	free(f->sq);
	free(f->rq);
	f->sq = NULL;
	f->rq = NULL;
	f->has_qp = 0;
	f->qp.state = IBV_QPS_RESET;
	__atomic_sub_fetch(&fv_container_of(f->qp.pd, struct fv_pd, pd)->users, 1,
			   __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&fv_container_of(f->qp.send_cq, struct fv_cq, cq)->users, 1,
			   __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&fv_container_of(f->qp.recv_cq, struct fv_cq, cq)->users, 1,
			   __ATOMIC_SEQ_CST);
	id->qp = NULL;
}

int rdma_destroy_id(struct rdma_cm_id *id)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	rdma_destroy_qp(id);
	fv_close_conn(f);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->wlock);
	pthread_cond_destroy(&f->cond);
	free(f);
	return 0;
}

/* ---- connecting ---- */

static long fv_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* wait for fd readiness in slices, watching the stop flag: 1 ready, 0 timeout, -1 stop/err */
static int fv_wait_fd(struct fv_id *f, short events, long timeout_ms)
{
	long end = fv_now_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = {.fd = f->fd, .events = events};
		int r, stop;
		pthread_mutex_lock(&f->lock);
		stop = f->stop || f->err;
		pthread_mutex_unlock(&f->lock);
		if (stop)
			return -1;
		r = poll(&p, 1, 100);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (fv_now_ms() >= end)
			return 0;
	}
}

static void *fv_connect_main(void *arg)
{
	struct fv_id *f = arg;
	struct sockaddr *dst = &f->id.route.addr.dst_addr;
	struct fv_hdr h = {0};
	uint8_t pd[FV_PDATA_MAX];
	int r, err = 0, one = 1;
	socklen_t l = sizeof(err);
	if (connect(f->fd, dst, fv_salen(dst)) < 0 && errno != EINPROGRESS) {
		err = errno;
	} else {
		r = fv_wait_fd(f, POLLOUT, FV_CONNECT_TIMEOUT_MS);
		if (r < 0)
			return NULL;
		if (r == 0)
			err = ETIMEDOUT;
		else if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
	}
	if (err) {
		/* what rdma_cm reports on IB/RoCE: REJECTED (28) for no listener */
		if (err == ECONNREFUSED || err == ECONNRESET)
			fv_queue_event(f, RDMA_CM_EVENT_REJECTED, 28, NULL, 0);
		else
			fv_queue_event(f, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL, 0);
		return NULL;
	}
	fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	h.type = FV_F_CONNREQ;
	h.seq = f->qp.qp_num;
	h.len = (uint32_t)f->pdlen;
	if (fv_write_full(f, &h, sizeof(h)) < 0 || fv_write_full(f, f->pdata, h.len) < 0) {
		fv_queue_event(f, RDMA_CM_EVENT_REJECTED, 28, NULL, 0);
		return NULL;
	}
	r = fv_wait_fd(f, POLLIN, FV_REPLY_TIMEOUT_MS);
	if (r < 0)
		return NULL;
	if (r == 0) {
		fv_queue_event(f, RDMA_CM_EVENT_UNREACHABLE, -ETIMEDOUT, NULL, 0);
		return NULL;
	}
	if (fv_read_full(f->fd, &h, sizeof(h)) < 0 ||
	    (h.type != FV_F_ACCEPT && h.type != FV_F_REJECT) || h.len > FV_PDATA_MAX ||
	    fv_read_full(f->fd, pd, h.len) < 0) {
		/* the server destroyed the request without answering */
		fv_queue_event(f, RDMA_CM_EVENT_REJECTED, 28, NULL, 0);
		return NULL;
	}
	if (h.type == FV_F_REJECT) {
		fv_queue_event(f, RDMA_CM_EVENT_REJECTED, 28, pd, (int)h.len);
		shutdown(f->fd, SHUT_RDWR);
		return NULL;
	}
	struct fv_hdr rtu = {.type = FV_F_RTU};
	if (fv_write_full(f, &rtu, sizeof(rtu)) < 0) {
		fv_queue_event(f, RDMA_CM_EVENT_CONNECT_ERROR, -ECONNRESET, NULL, 0);
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	if (f->stop || f->err) {
		pthread_mutex_unlock(&f->lock);
		return NULL;
	}
	f->peer_qpn = (uint32_t)h.seq;
	fv_fill_addrs(f);
	f->connected = 1;
	f->qp.state = IBV_QPS_RTS;
	if (fv_start_tx(f) < 0) {
		fv_fail_locked(f, SHUT_RDWR);
		pthread_mutex_unlock(&f->lock);
		return NULL;
	}
	fv_queue_event_locked(f, RDMA_CM_EVENT_ESTABLISHED, 0, pd, (int)h.len);
	pthread_mutex_unlock(&f->lock);
	fv_rx_loop(f);
	return NULL;
}

int rdma_connect(struct rdma_cm_id *id, struct rdma_conn_param *param)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	struct sockaddr *dst = &id->route.addr.dst_addr;
	if (!f->resolved || !f->has_qp || f->conn_attempted || f->fd >= 0 ||
	    (dst->sa_family != AF_INET && dst->sa_family != AF_INET6)) {
		errno = EINVAL;
		return -1;
	}
	f->pdlen = 0;
	if (param && param->private_data && param->private_data_len) {
		f->pdlen = param->private_data_len;
		memcpy(f->pdata, param->private_data, (size_t)f->pdlen);
	}
	f->fd = socket(dst->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (f->fd < 0)
		return -1;
	f->conn_attempted = 1;
	if (pthread_create(&f->rx_thr, NULL, fv_connect_main, f) != 0) {
		close(f->fd);
		f->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	f->has_rx = 1;
	return 0;
}

static void *fv_server_rx_main(void *arg)
{
	fv_rx_loop(arg);
	return NULL;
}

static int fv_reply(struct fv_id *f, int type, const void *pdata, uint8_t len)
{
	struct fv_hdr h = {0};
	h.type = (uint8_t)type;
	h.seq = f->has_qp ? f->qp.qp_num : 0;
	h.len = pdata ? len : 0;
	if (fv_write_full(f, &h, sizeof(h)) < 0 || fv_write_full(f, pdata, h.len) < 0)
		return -1;
	return 0;
}

int rdma_accept(struct rdma_cm_id *id, struct rdma_conn_param *param)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	if (f->fd < 0 || f->listening || !f->has_qp || f->connected || f->has_rx) {
		errno = EINVAL;
		return -1;
	}
	if (fv_reply(f, FV_F_ACCEPT, param ? param->private_data : NULL,
		     param ? param->private_data_len : 0) < 0) {
		errno = ECONNRESET;
		return -1;
	}
	pthread_mutex_lock(&f->lock);
	f->connected = 1;
	f->qp.state = IBV_QPS_RTS;
	if (fv_start_tx(f) < 0 || pthread_create(&f->rx_thr, NULL, fv_server_rx_main, f) != 0) {
		fv_fail_locked(f, SHUT_RDWR);
		pthread_mutex_unlock(&f->lock);
		errno = ENOMEM;
		return -1;
	}
	f->has_rx = 1;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int rdma_reject(struct rdma_cm_id *id, const void *private_data, uint8_t private_data_len)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	if (f->fd < 0 || f->listening || f->connected) {
		errno = EINVAL;
		return -1;
	}
	fv_reply(f, FV_F_REJECT, private_data, private_data_len);
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	f->fd = -1;
	return 0;
}

int rdma_disconnect(struct rdma_cm_id *id)
{
	struct fv_id *f = fv_container_of(id, struct fv_id, id);
	int rc = 0;
	pthread_mutex_lock(&f->lock);
	if (!f->conn_attempted || f->listening) {
		errno = EINVAL;
		rc = -1;
	} else {
		fv_fail_locked(f, SHUT_RDWR);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}
