/* transport.c -- transport registry, address parsing and the generic gw_conn_* helpers. */
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

void gw_transport_opts_resolve(const struct gw_transport_opts *opts, struct gw_transport_opts *out)
{
	memset(out, 0, sizeof(*out));
	if (opts)
		*out = *opts;
	if (out->timeout_ms == 0)
		out->timeout_ms = GW_TRANSPORT_TIMEOUT_MS;
	if (out->sockbuf == 0)
		out->sockbuf = GW_TRANSPORT_SOCKBUF;
}

static int parse_port(const char *s, bool allow_port0, in_port_t *port)
{
	unsigned long v = 0;
	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535 || (v == 0 && !allow_port0))
		return -EINVAL;
	*port = htons((uint16_t)v);
	return 0;
}

int gw_transport_parse_addr(const char *s, bool allow_port0, struct sockaddr_storage *ss,
			    socklen_t *sslen)
{
	char host[INET6_ADDRSTRLEN];
	const char *port;
	size_t hlen;

	if (!s)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hlen = (size_t)(end - s - 1);
		port = end + 2;
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*sslen = sizeof(*sin6);
		return parse_port(port, allow_port0, &sin6->sin6_port);
	}
	const char *colon = strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -EINVAL;
	*sslen = sizeof(*sin);
	return parse_port(colon + 1, allow_port0, &sin->sin_port);
}

void gw_transport_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
}

long long gw_transport_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return (long long)gw_now_mono_ms() + timeout_ms;
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
