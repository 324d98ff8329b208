/* transport_int.h -- what the transport backends share: the connection struct, address parsing. */
#ifndef GW_TRANSPORT_INT_H
#define GW_TRANSPORT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "gw_transport.h"

/*
 * One connection or listener. Who touches what:
 *   ops, fd, cancel_fd, listener, local_port, opts, peer: set at creation, read-only after;
 *   timeout_ms, shut: any thread (atomics);
 *   sent: the sending thread writes, anyone reads; received: the same for the receiver.
 */
struct gw_conn {
	const struct gw_transport_ops *ops;
	int fd;	       /* the socket (TCP) */
	int cancel_fd; /* eventfd polled next to fd; written by shutdown to wake blocked ops */
	bool listener;
	int local_port;
	struct gw_transport_opts opts; /* as given, defaults resolved; handed down by accept */
	atomic_int timeout_ms;
	atomic_bool shut;
	_Atomic uint64_t sent;
	_Atomic uint64_t received;
	char peer[GW_TRANSPORT_NAME_MAX];
	char local[GW_TRANSPORT_NAME_MAX]; /* this end's address (a listener: the bound one) */
	void *priv;			   /* backend state (RDMA) */
};

/* Resolve zero fields of opts (NULL = all defaults) into out. */
void gw_transport_opts_resolve(const struct gw_transport_opts *opts, struct gw_transport_opts *out);

/*
 * Parse "A.B.C.D:PORT" or "[v6]:PORT" (numeric only: no name lookups, which could block).
 * allow_port0: listen may ask for an ephemeral port, connect may not. 0 or -EINVAL.
 */
int gw_transport_parse_addr(const char *s, bool allow_port0, struct sockaddr_storage *ss,
			    socklen_t *sslen);

/* Format a socket address as "A.B.C.D:PORT" / "[v6]:PORT" into buf. */
void gw_transport_format_addr(const struct sockaddr *sa, char *buf, size_t len);

/* Absolute monotonic deadline (ms) of an op starting now under timeout_ms; -1 = none. */
long long gw_transport_deadline(int timeout_ms);

/*
 * Wait until the socket of c is ready for events, the deadline (absolute, -1 = none) passes,
 * or c is shut down: 0, -ETIMEDOUT or -ECANCELED (tcp.c; the TLS layer waits the same way).
 */
int gw_tcp_wait(struct gw_conn *c, short events, long long deadline);

#endif
