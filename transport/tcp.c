/* tcp.c -- the TCP transport: non-blocking sockets, poll with deadline and cancel, no copies. */
#include "transport_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_fsutil.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static struct gw_conn *tcp_conn_new(int fd, bool listener, const struct gw_transport_opts *opts)
{
	struct gw_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->cancel_fd < 0) {
		free(c);
		return NULL;
	}
	c->ops = &gw_transport_tcp;
	c->fd = fd;
	c->listener = listener;
	c->opts = *opts;
	atomic_init(&c->timeout_ms, opts->timeout_ms);
	atomic_init(&c->shut, false);
	atomic_init(&c->sent, 0);
	atomic_init(&c->received, 0);
	return c;
}

/*
 * Socket buffers: set before connect/listen so the window scale covers them. Best
 * effort: try the FORCE variant (root) so net.core.[rw]mem_max does not cap it.
 */
static void tcp_set_bufs(int fd, int bytes)
{
	if (bytes <= 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

static int tcp_set_nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

/* See transport_int.h. */
int gw_tcp_wait(struct gw_conn *c, short events, long long deadline)
{
	struct pollfd pfd[2] = {
	    {.fd = c->fd, .events = events},
	    {.fd = c->cancel_fd, .events = POLLIN},
	};
	for (;;) {
		int tmo = -1;
		if (atomic_load(&c->shut))
			return -ECANCELED;
		if (deadline >= 0) {
			long long now = (long long)gw_now_mono_ms();
			if (now >= deadline)
				return -ETIMEDOUT;
			tmo = (int)(deadline - now);
		}
		int r = poll(pfd, 2, tmo);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[1].revents)
			return -ECANCELED;
		if (pfd[0].revents)
			return 0; /* ready, or an error/hangup the next syscall reports */
	}
}

/* After a failed syscall: our own shutdown explains it better than EPIPE/EOF does. */
static int tcp_err(struct gw_conn *c, int err)
{
	return atomic_load(&c->shut) ? -ECANCELED : err;
}

/* Advance (i, off) over n bytes of iov; skips entries that end up fully consumed. */
static void iov_advance(const struct iovec *iov, int iovcnt, int *i, size_t *off, size_t n)
{
	while (*i < iovcnt) {
		size_t room = iov[*i].iov_len - *off;
		if (n < room) {
			*off += n;
			return;
		}
		n -= room;
		(*i)++;
		*off = 0;
	}
}

/*
 * The send and receive loops share one shape: hand the kernel the caller's iovec
 * array as it is (up to IOV_MAX entries) and, only when a call stopped inside an
 * entry, finish that entry on its own before going back to the caller's array.
 */
static int tcp_xfer(struct gw_conn *c, const struct iovec *iov, int iovcnt, bool send)
{
	long long deadline = gw_transport_deadline(atomic_load(&c->timeout_ms));
	_Atomic uint64_t *counter = send ? &c->sent : &c->received;
	uint64_t moved = 0;
	int i = 0, r = 0;
	size_t off = 0;

	if (iovcnt < 0 || (iovcnt > 0 && !iov) || c->listener)
		return -EINVAL;
	if (atomic_load(&c->shut))
		return -ECANCELED;
	iov_advance(iov, iovcnt, &i, &off, 0);
	while (i < iovcnt) {
		struct iovec part;
		struct iovec *v;
		int vcnt;
		ssize_t n;

		if (off) {
			part.iov_base = (char *)iov[i].iov_base + off;
			part.iov_len = iov[i].iov_len - off;
			v = &part;
			vcnt = 1;
		} else {
			v = (struct iovec *)&iov[i]; /* the kernel does not write to it */
			vcnt = iovcnt - i < IOV_MAX ? iovcnt - i : IOV_MAX;
		}
		if (send) {
			struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)vcnt};
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		} else {
			n = readv(c->fd, v, vcnt);
			if (n == 0) {
				r = tcp_err(c, -ECONNRESET);
				break;
			}
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				r = gw_tcp_wait(c, send ? POLLOUT : POLLIN, deadline);
				if (r < 0)
					break;
				continue;
			}
			r = tcp_err(c, -errno);
			break;
		}
		moved += (uint64_t)n;
		iov_advance(iov, iovcnt, &i, &off, (size_t)n);
	}
	/* One writer per counter: a plain load + store is enough. */
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + moved,
			      memory_order_relaxed);
	return r;
}

static int tcp_sendv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	return tcp_xfer(c, iov, iovcnt, true);
}

static int tcp_recvv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	return tcp_xfer(c, iov, iovcnt, false);
}

static int tcp_recv(struct gw_conn *c, void *buf, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	return tcp_xfer(c, &iov, 1, false);
}

static int tcp_listen(const char *addr, const struct gw_transport_opts *opts, struct gw_conn **out)
{
	struct gw_transport_opts o;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct gw_conn *c;
	int fd, one = 1, r;

	*out = NULL;
	gw_transport_opts_resolve(opts, &o);
	r = gw_transport_parse_addr(addr, true, &ss, &sslen);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail_errno;
	tcp_set_bufs(fd, o.sockbuf); /* inherited by accepted sockets */
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0)
		goto fail_errno;
	if (listen(fd, 64) < 0)
		goto fail_errno;
	sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
		goto fail_errno;
	c = tcp_conn_new(fd, true, &o);
	if (!c) {
		r = -ENOMEM;
		goto fail;
	}
	c->local_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	gw_transport_format_addr((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
	snprintf(c->local, sizeof(c->local), "%s", c->peer);
	*out = c;
	return 0;

fail_errno:
	r = -errno;
fail:
	close(fd);
	return r;
}

/* Finish a connected socket: options, names, the gw_conn around it. fd is the caller's on failure.
 */
static int tcp_conn_setup(int fd, const struct gw_transport_opts *o, struct gw_conn **out)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct gw_conn *c;
	int r;

	r = tcp_set_nodelay(fd);
	if (r < 0)
		return r;
	c = tcp_conn_new(fd, false, o);
	if (!c)
		return -ENOMEM;
	if (getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0)
		gw_transport_format_addr((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
	sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
		c->local_port =
		    ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
		gw_transport_format_addr((struct sockaddr *)&ss, c->local, sizeof(c->local));
	}
	*out = c;
	return 0;
}

static int tcp_accept(struct gw_conn *lst, struct gw_conn **out)
{
	long long deadline = gw_transport_deadline(atomic_load(&lst->timeout_ms));
	int fd, r;

	*out = NULL;
	if (!lst->listener)
		return -EINVAL;
	for (;;) {
		if (atomic_load(&lst->shut))
			return -ECANCELED;
		fd = accept4(lst->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0)
			break;
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EAGAIN:
#if EAGAIN != EWOULDBLOCK
		case EWOULDBLOCK:
#endif
			r = gw_tcp_wait(lst, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		default:
			return tcp_err(lst, -errno);
		}
	}
	r = tcp_conn_setup(fd, &lst->opts, out);
	if (r < 0)
		close(fd);
	return r;
}

static int tcp_connect(const char *addr, const struct gw_transport_opts *opts, struct gw_conn **out)
{
	struct gw_transport_opts o;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct gw_conn tmp;
	int fd, r, err = 0;
	socklen_t errlen = sizeof(err);

	*out = NULL;
	gw_transport_opts_resolve(opts, &o);
	r = gw_transport_parse_addr(addr, false, &ss, &sslen);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	tcp_set_bufs(fd, o.sockbuf);
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			goto fail;
		}
		/* Nobody else can cancel a connection that does not exist yet: no cancel fd. */
		memset(&tmp, 0, sizeof(tmp));
		tmp.fd = fd;
		tmp.cancel_fd = -1;
		atomic_init(&tmp.shut, false);
		r = gw_tcp_wait(&tmp, POLLOUT, gw_transport_deadline(o.timeout_ms));
		if (r < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0) {
			r = -errno;
			goto fail;
		}
		if (err) {
			r = -err;
			goto fail;
		}
	}
	r = tcp_conn_setup(fd, &o, out);
	if (r == 0)
		return 0;
fail:
	close(fd);
	return r;
}

int gw_tcp_conn_from_fd(int fd, const struct gw_transport_opts *opts, struct gw_conn **out)
{
	struct gw_transport_opts o;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(int);
	int type = 0, fl;

	*out = NULL;
	gw_transport_opts_resolve(opts, &o);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (type != SOCK_STREAM)
		return -EINVAL;
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	tcp_set_bufs(fd, o.sockbuf);
	return tcp_conn_setup(fd, &o, out);
}

static int tcp_register_mem(struct gw_conn *c, void *addr, size_t len)
{
	return 0; /* TCP sends from and receives into any memory */
}

static void tcp_shutdown(struct gw_conn *c)
{
	uint64_t one = 1;
	atomic_store(&c->shut, true);
	(void)shutdown(c->fd, SHUT_RDWR); /* the peer sees the end of the stream */
	(void)!write(c->cancel_fd, &one, sizeof(one));
}

static void tcp_close(struct gw_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	if (c->cancel_fd >= 0)
		close(c->cancel_fd);
	free(c);
}

/*
 * Lock context of every op: none is taken inside; see gw_transport.h for which thread
 * may call what (one sender, one receiver, shutdown from anywhere).
 */
const struct gw_transport_ops gw_transport_tcp = {
    .name = "tcp",
    .listen = tcp_listen,
    .accept = tcp_accept,
    .connect = tcp_connect,
    .sendv = tcp_sendv,
    .recv = tcp_recv,
    .recvv = tcp_recvv,
    .register_mem = tcp_register_mem,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
};
