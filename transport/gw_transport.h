/* gw_transport.h -- the migration stream transport: one ops table, TCP and RDMA. */
#ifndef GW_TRANSPORT_H
#define GW_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * The migration engine talks to a peer only through this interface and never sees a
 * socket. A struct gw_conn is either a listener (from listen) or a connected stream
 * (from accept or connect); its fields are private to transport/.
 *
 * Conventions, for every op and helper below:
 *   - return 0 (or a count where stated) on success and -errno on failure; nothing
 *     here logs: the caller logs, naming the peer with gw_conn_peer_name();
 *   - every op that may block waits at most the connection's timeout for the whole
 *     call (gw_conn_set_timeout; < 0 = forever) and then fails with -ETIMEDOUT;
 *   - a peer that closes or vanishes gives -ECONNRESET (receive) or -EPIPE /
 *     -ECONNRESET (send), never SIGPIPE;
 *   - after gw_conn_shutdown(), a blocked op in any thread returns -ECANCELED, and so
 *     does every later op;
 *   - threading: a connection may have at most one sending thread and one receiving
 *     thread at a time (full duplex); gw_conn_shutdown may be called from any thread
 *     at any time; close only once no other thread is inside an op on it.
 */

struct gw_conn;

/* Default timeout of a new connection, and the default socket buffer size. */
#define GW_TRANSPORT_TIMEOUT_MS 30000
#define GW_TRANSPORT_SOCKBUF	(4 * 1024 * 1024)
/* Longest "[v6]:port" a peer name can be, with its NUL. */
#define GW_TRANSPORT_NAME_MAX 64

/* Options for listen/connect (and inherited by accepted connections); zero = defaults. */
struct gw_transport_opts {
	/* 0 = GW_TRANSPORT_TIMEOUT_MS, < 0 = forever */
	int timeout_ms;
	/* SO_SNDBUF/SO_RCVBUF bytes: 0 = GW_TRANSPORT_SOCKBUF, < 0 = leave kernel autotuning on */
	int sockbuf;
};

/* Memory of the peer this connection may write into directly (see expose_mem). */
struct gw_remote_mem {
	uint64_t addr;
	uint64_t len;
	uint32_t rkey;
};

struct gw_transport_ops {
	/* "tcp" or "rdma". */
	const char *name;

	/*
	 * Bind and listen on addr ("A.B.C.D:PORT" or "[v6]:PORT"; port 0 picks an
	 * ephemeral port, see gw_conn_local_port). Does not block. -EINVAL on a bad
	 * address, -EADDRINUSE, or -errno. Any thread.
	 */
	int (*listen)(const char *addr, const struct gw_transport_opts *opts, struct gw_conn **out);

	/*
	 * Wait for one incoming connection on a listener (blocks, honours the listener's
	 * timeout and gw_conn_shutdown). The new connection inherits the listener's
	 * options. One thread per listener at a time.
	 */
	int (*accept)(struct gw_conn *lst, struct gw_conn **out);

	/*
	 * Connect to addr (blocks up to opts->timeout_ms). -ECONNREFUSED when nothing
	 * listens, -ETIMEDOUT, -EINVAL on a bad address. Any thread.
	 */
	int (*connect)(const char *addr, const struct gw_transport_opts *opts,
		       struct gw_conn **out);

	/*
	 * Send every byte of iov[0..iovcnt) (any iovcnt >= 0, any lengths, including
	 * more than IOV_MAX entries) straight from the caller's buffers: no staging
	 * copy, partial writes are resumed inside. Blocks. The sending thread only.
	 * On error an unknown prefix may have been sent: the stream is then unusable.
	 */
	int (*sendv)(struct gw_conn *c, const struct iovec *iov, int iovcnt);

	/* Receive exactly len bytes into buf. Blocks. The receiving thread only. */
	int (*recv)(struct gw_conn *c, void *buf, size_t len);

	/*
	 * Fill iov[0..iovcnt) exactly, scattering straight into the destination buffers
	 * (e.g. guest RAM). Blocks. The receiving thread only.
	 */
	int (*recvv)(struct gw_conn *c, const struct iovec *iov, int iovcnt);

	/*
	 * Make [addr, addr + len) usable as a source or destination of this connection
	 * (RDMA registers it once; TCP: no-op, returns 0). Before the transfer starts,
	 * from the thread that owns the connection.
	 */
	int (*register_mem)(struct gw_conn *c, void *addr, size_t len);

	/*
	 * Direct placement (RDMA; NULL for transports without it). expose_mem: let the peer
	 * write into [addr, addr + len) of this process (registered for remote write once,
	 * shared by the process's connections, pinned while one holds it); *out describes it,
	 * for the caller to hand to the peer. Setup time, the thread that owns the connection.
	 */
	int (*expose_mem)(struct gw_conn *c, void *addr, size_t len, struct gw_remote_mem *out);

	/*
	 * write_placed: write iov straight into the peer's exposed memory at offset. Ordered
	 * before everything a later sendv on this connection sends: once the peer has received
	 * that, these bytes are in place. Waits only for send queue room; the buffers must stay
	 * untouched until the next sendv on this connection has returned. -ERANGE past the end
	 * of dst. The sending thread only.
	 */
	int (*write_placed)(struct gw_conn *c, const struct iovec *iov, int iovcnt,
			    const struct gw_remote_mem *dst, uint64_t offset);

	/*
	 * Make a blocked op in another thread return -ECANCELED, and every later op
	 * too; the peer sees the stream end. Never blocks; any thread; idempotent.
	 */
	void (*shutdown)(struct gw_conn *c);

	/*
	 * Release everything (NULL is fine). No other thread may be inside an op. Does
	 * not shut the stream down: a copy of the socket handed to another process
	 * stays usable.
	 */
	void (*close)(struct gw_conn *c);
};

/* The TCP transport (transport/tcp.c). */
extern const struct gw_transport_ops gw_transport_tcp;

/*
 * Adopt a connected TCP socket, e.g. one the agent accepted and handed to a VMM
 * process over SCM_RIGHTS: made non-blocking with TCP_NODELAY, opts as for connect.
 * On success the connection owns fd; on failure the caller still does. -ENOTSOCK,
 * -EINVAL (not a stream socket), -ENOTCONN, or -errno.
 */
int gw_tcp_conn_from_fd(int fd, const struct gw_transport_opts *opts, struct gw_conn **out);

/*
 * The RDMA transport (transport/rdma.c: librdmacm + libibverbs, RC queue pairs), built in
 * when those libraries are found at configure time (then gw_transport_get("rdma") returns
 * it). Listen/connect take the IP address of an RDMA-capable interface (RoCE, iWARP or
 * IPoIB). register_mem marks memory that sends may use without a copy (registered lazily,
 * 2 MiB at a time); gw_conn_fd() is -1.
 */
extern const struct gw_transport_ops gw_transport_rdma;

/* Look a transport up by name ("tcp", "rdma"); NULL when unknown or not built in. */
const struct gw_transport_ops *gw_transport_get(const char *name);

/*
 * Generic helpers: they dispatch through the connection's own ops, so the engine
 * can hold a struct gw_conn * and nothing else. Same contracts as the ops above.
 */
int gw_conn_accept(struct gw_conn *lst, struct gw_conn **out);
int gw_conn_sendv(struct gw_conn *c, const struct iovec *iov, int iovcnt);
int gw_conn_send(struct gw_conn *c, const void *buf, size_t len);
int gw_conn_recv(struct gw_conn *c, void *buf, size_t len);
int gw_conn_recvv(struct gw_conn *c, const struct iovec *iov, int iovcnt);
int gw_conn_register_mem(struct gw_conn *c, void *addr, size_t len);
void gw_conn_shutdown(struct gw_conn *c);
void gw_conn_close(struct gw_conn *c);
/* Direct placement; -EOPNOTSUPP on a transport without it (TCP). */
int gw_conn_expose_mem(struct gw_conn *c, void *addr, size_t len, struct gw_remote_mem *out);
int gw_conn_write_placed(struct gw_conn *c, const struct iovec *iov, int iovcnt,
			 const struct gw_remote_mem *dst, uint64_t offset);
bool gw_conn_can_place(const struct gw_conn *c);

/* The transport a connection belongs to. */
const struct gw_transport_ops *gw_conn_ops(const struct gw_conn *c);
/* Set / read the timeout of every later blocking op (ms; < 0 = forever). Any thread. */
void gw_conn_set_timeout(struct gw_conn *c, int timeout_ms);
int gw_conn_timeout(const struct gw_conn *c);
/* "A.B.C.D:PORT" / "[v6]:PORT" of the peer (a listener: its own address), for messages. */
const char *gw_conn_peer_name(const struct gw_conn *c);
/* "A.B.C.D:PORT" / "[v6]:PORT" of this end (a listener: the address it is bound to). */
const char *gw_conn_local_name(const struct gw_conn *c);
/* The local port (after listen on port 0, the ephemeral port chosen). */
int gw_conn_local_port(const struct gw_conn *c);
/*
 * The socket under a TCP connection or listener (-1 for transports without one), to
 * poll a listener from an event loop or to hand a connection to another process.
 * Do not read or write it directly while the gw_conn is in use.
 */
int gw_conn_fd(const struct gw_conn *c);
/* Bytes moved so far (for bandwidth figures); either pointer may be NULL. */
void gw_conn_stats(const struct gw_conn *c, uint64_t *sent, uint64_t *received);

#endif
