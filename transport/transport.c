/* transport.c -- the transport registry (by name) and the generic gw_conn_* calls, which
 * dispatch to the connection's transport (tcp.c, rdma.c). */
#include "transport_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_fsutil.h"

/* Every transport built in, looked up by name. */
static const struct gw_transport_ops *const transports[] = {
    &gw_transport_tcp,
#ifdef GW_HAVE_RDMA
    &gw_transport_rdma,
#endif
};

const struct gw_transport_ops *gw_transport_get(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
		if (strcmp(transports[i]->name, name) == 0)
			return transports[i];
	}
	return NULL;
}

int gw_conn_accept(struct gw_conn *lst, struct gw_conn **out)
{
	return lst->ops->accept(lst, out);
}

int gw_conn_sendv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	return c->ops->sendv(c, iov, iovcnt);
}

int gw_conn_send(struct gw_conn *c, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return c->ops->sendv(c, &iov, 1);
}

int gw_conn_recv(struct gw_conn *c, void *buf, size_t len)
{
	return c->ops->recv(c, buf, len);
}

int gw_conn_recvv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	return c->ops->recvv(c, iov, iovcnt);
}

int gw_conn_register_mem(struct gw_conn *c, void *addr, size_t len)
{
	return c->ops->register_mem(c, addr, len);
}

void gw_conn_shutdown(struct gw_conn *c)
{
	if (c)
		c->ops->shutdown(c);
}

void gw_conn_close(struct gw_conn *c)
{
	if (c)
		c->ops->close(c);
}

int gw_conn_expose_mem(struct gw_conn *c, void *addr, size_t len, struct gw_remote_mem *out)
{
	return c->ops->expose_mem ? c->ops->expose_mem(c, addr, len, out) : -EOPNOTSUPP;
}

int gw_conn_write_placed(struct gw_conn *c, const struct iovec *iov, int iovcnt,
			 const struct gw_remote_mem *dst, uint64_t offset)
{
	return c->ops->write_placed ? c->ops->write_placed(c, iov, iovcnt, dst, offset)
				    : -EOPNOTSUPP;
}

bool gw_conn_can_place(const struct gw_conn *c)
{
	return c && c->ops->expose_mem && c->ops->write_placed;
}

const struct gw_transport_ops *gw_conn_ops(const struct gw_conn *c)
{
	return c->ops;
}

void gw_conn_set_timeout(struct gw_conn *c, int timeout_ms)
{
	atomic_store(&c->timeout_ms, timeout_ms);
}

int gw_conn_timeout(const struct gw_conn *c)
{
	return atomic_load(&((struct gw_conn *)c)->timeout_ms);
}

const char *gw_conn_peer_name(const struct gw_conn *c)
{
	return c ? c->peer : "(none)";
}

const char *gw_conn_local_name(const struct gw_conn *c)
{
	return c ? c->local : "(none)";
}

int gw_conn_local_port(const struct gw_conn *c)
{
	return c->local_port;
}

int gw_conn_fd(const struct gw_conn *c)
{
	return c ? c->fd : -1;
}

void gw_conn_stats(const struct gw_conn *c, uint64_t *sent, uint64_t *received)
{
	struct gw_conn *m = (struct gw_conn *)c;
	if (sent)
		*sent = atomic_load_explicit(&m->sent, memory_order_relaxed);
	if (received)
		*received = atomic_load_explicit(&m->received, memory_order_relaxed);
}
