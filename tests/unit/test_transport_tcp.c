/* test_transport_tcp.c -- TCP over 127.0.0.1: errors, bulk iovecs, EOF, timeouts, cancel. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_fsutil.h"
#include "gw_transport.h"

/* A connected pair over loopback plus the listener it came from. */
struct pair {
	const struct gw_transport_ops *tcp;
	struct gw_conn *lst, *cli, *srv;
};

static int pair_setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	char addr[64];
	assert_non_null(p);
	p->tcp = gw_transport_get("tcp");
	assert_non_null(p->tcp);
	assert_int_equal(p->tcp->listen("127.0.0.1:0", NULL, &p->lst), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(p->lst));
	assert_int_equal(p->tcp->connect(addr, NULL, &p->cli), 0);
	assert_int_equal(gw_conn_accept(p->lst, &p->srv), 0);
	*state = p;
	return 0;
}

static int pair_teardown(void **state)
{
	struct pair *p = *state;
	gw_conn_close(p->cli);
	gw_conn_close(p->srv);
	gw_conn_close(p->lst);
	free(p);
	return 0;
}

static void fill_random(uint8_t *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed | 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)(x >> 3);
	}
}

/* Unknown transports and malformed addresses are refused without touching the network. */
static void test_bad_args(void **state)
{
	const struct gw_transport_ops *tcp = gw_transport_get("tcp");
	struct gw_conn *c = (struct gw_conn *)0x1;
	static const char *bad[] = {
	    "",
	    "127.0.0.1",
	    "127.0.0.1:",
	    ":80",
	    "127.0.0.1:65536",
	    "127.0.0.1:-1",
	    "127.0.0.1:80x",
	    "localhost:80",
	    "256.0.0.1:80",
	    "[::1:80",
	    "[::1]80",
	    "[]:80",
	    "[127.0.0.1]:80",
	    "::1:80",
	};
	assert_null(gw_transport_get("nope"));
	assert_null(gw_transport_get(NULL));
	assert_non_null(tcp);
	assert_string_equal(tcp->name, "tcp");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tcp->listen(bad[i], NULL, &c), -EINVAL);
		assert_null(c);
		c = (struct gw_conn *)0x1;
		assert_int_equal(tcp->connect(bad[i], NULL, &c), -EINVAL);
		assert_null(c);
	}
	assert_int_equal(tcp->connect("127.0.0.1:0", NULL, &c), -EINVAL);
}

/* Nothing listening: connect fails at once with -ECONNREFUSED. */
static void test_connect_refused(void **state)
{
	const struct gw_transport_ops *tcp = gw_transport_get("tcp");
	struct gw_conn *lst, *c = NULL;
	char addr[64];
	assert_int_equal(tcp->listen("127.0.0.1:0", NULL, &lst), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(lst));
	gw_conn_close(lst);
	assert_int_equal(tcp->connect(addr, NULL, &c), -ECONNREFUSED);
	assert_null(c);
}

/* Names, the ephemeral port, and register_mem (a no-op on TCP). */
static void test_names_and_ports(void **state)
{
	struct pair *p = *state;
	char want[64];
	int port = gw_conn_local_port(p->lst);
	assert_true(port > 0 && port < 65536);
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	assert_string_equal(gw_conn_peer_name(p->cli), want);
	assert_string_equal(gw_conn_peer_name(p->lst), want);
	snprintf(want, sizeof(want), "127.0.0.1:%d", gw_conn_local_port(p->cli));
	assert_string_equal(gw_conn_peer_name(p->srv), want);
	assert_ptr_equal(gw_conn_ops(p->srv), p->tcp);
	assert_int_equal(gw_conn_timeout(p->srv), GW_TRANSPORT_TIMEOUT_MS);
	assert_int_equal(gw_conn_register_mem(p->srv, want, sizeof(want)), 0);
	/* a listener carries no data */
	assert_int_equal(gw_conn_send(p->lst, "x", 1), -EINVAL);
}

struct sender {
	struct gw_conn *c;
	const struct iovec *iov;
	int iovcnt;
	int ret;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	s->ret = gw_conn_sendv(s->c, s->iov, s->iovcnt);
	return NULL;
}

/*
 * 1000 iovecs of uneven sizes (some empty) cut from one 24 MiB buffer go out in one
 * sendv; the receiver scatters them with recvv into 997 separate buffers cut
 * differently. The bytes arrive exactly, and the counters agree.
 */
static void test_sendv_recvv_1000(void **state)
{
	enum { TOTAL = 24 << 20, NSEND = 1000, NRECV = 997 };
	struct pair *p = *state;
	uint8_t *src = malloc(TOTAL);
	struct iovec *siov = calloc(NSEND, sizeof(*siov));
	struct iovec *riov = calloc(NRECV, sizeof(*riov));
	size_t cut[NRECV + 1];
	struct sender s;
	pthread_t th;
	uint64_t sent, recvd;

	assert_non_null(src);
	fill_random(src, TOTAL, 42);
	/* sender pieces: pseudo-random lengths, every 10th empty, last one takes the rest */
	size_t off = 0;
	uint32_t x = 7;
	for (int i = 0; i < NSEND; i++) {
		x = x * 1103515245u + 12345u;
		size_t len = (i % 10 == 3) ? 0 : (x >> 8) % (2 * TOTAL / NSEND);
		if (i == NSEND - 1 || off + len > TOTAL)
			len = i == NSEND - 1 ? TOTAL - off : 0;
		siov[i].iov_base = src + off;
		siov[i].iov_len = len;
		off += len;
	}
	assert_int_equal(off, TOTAL);
	/* receiver pieces: separate allocations, boundaries that differ from the sender's */
	cut[0] = 0;
	for (int i = 1; i < NRECV; i++)
		cut[i] = (size_t)((uint64_t)TOTAL * i / NRECV) + (i % 3);
	cut[NRECV] = TOTAL;
	for (int i = 0; i < NRECV; i++) {
		riov[i].iov_len = cut[i + 1] - cut[i];
		riov[i].iov_base = malloc(riov[i].iov_len ? riov[i].iov_len : 1);
		assert_non_null(riov[i].iov_base);
	}

	s = (struct sender){.c = p->cli, .iov = siov, .iovcnt = NSEND};
	assert_int_equal(pthread_create(&th, NULL, sender_main, &s), 0);
	assert_int_equal(gw_conn_recvv(p->srv, riov, NRECV), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.ret, 0);
	for (int i = 0; i < NRECV; i++) {
		assert_memory_equal(riov[i].iov_base, src + cut[i], riov[i].iov_len);
		free(riov[i].iov_base);
	}
	gw_conn_stats(p->cli, &sent, NULL);
	gw_conn_stats(p->srv, NULL, &recvd);
	assert_int_equal(sent, TOTAL);
	assert_int_equal(recvd, TOTAL);
	/* empty transfers are fine and instant */
	assert_int_equal(gw_conn_sendv(p->cli, NULL, 0), 0);
	assert_int_equal(gw_conn_recv(p->srv, NULL, 0), 0);
	assert_int_equal(gw_conn_sendv(p->cli, siov, -1), -EINVAL);
	free(riov);
	free(siov);
	free(src);
}

/* More iovecs than IOV_MAX in one sendv/recvv: the windows are walked through. */
static void test_more_than_iov_max(void **state)
{
	enum { N = 3000 };
	struct pair *p = *state;
	static uint8_t src[N * 17], dst[N * 17];
	static struct iovec siov[N], riov[N];
	struct sender s;
	pthread_t th;
	size_t off = 0;

	fill_random(src, sizeof(src), 9);
	for (int i = 0; i < N; i++) {
		size_t len = 1 + (size_t)(i % 17);
		siov[i] = (struct iovec){.iov_base = src + off, .iov_len = len};
		riov[N - 1 - i].iov_len = len; /* the receiver cuts in the opposite order */
		off += len;
	}
	for (int i = 0, o = 0; i < N; o += (int)riov[i].iov_len, i++)
		riov[i].iov_base = dst + o;
	s = (struct sender){.c = p->cli, .iov = siov, .iovcnt = N};
	assert_int_equal(pthread_create(&th, NULL, sender_main, &s), 0);
	assert_int_equal(gw_conn_recvv(p->srv, riov, N), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.ret, 0);
	assert_memory_equal(dst, src, off);
}

/* The peer closes after half the bytes: the receiver gets -ECONNRESET, not a hang. */
static void test_peer_closes_mid_recv(void **state)
{
	struct pair *p = *state;
	uint8_t buf[8192];
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(gw_conn_send(p->cli, buf, sizeof(buf) / 2), 0);
	gw_conn_close(p->cli);
	p->cli = NULL;
	assert_int_equal(gw_conn_recv(p->srv, buf, sizeof(buf)), -ECONNRESET);
}

/* The receiver goes away mid-stream: the sender gets -EPIPE/-ECONNRESET and no SIGPIPE. */
static void test_peer_closes_mid_send(void **state)
{
	enum { LEN = 64 << 20 };
	struct pair *p = *state;
	uint8_t *buf = calloc(1, LEN);
	uint8_t small[1000];
	assert_non_null(buf);
	assert_int_equal(gw_conn_recv(p->srv, small, 0), 0);
	gw_conn_close(p->srv);
	p->srv = NULL;
	int r = gw_conn_send(p->cli, buf, LEN);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	free(buf);
}

/* Nothing arrives: recv, accept and a send into a full pipe give -ETIMEDOUT on time. */
static void test_timeouts(void **state)
{
	enum { LEN = 256 << 20 };
	struct pair *p = *state;
	struct gw_conn *none = NULL;
	uint8_t b;
	unsigned long long t0;

	gw_conn_set_timeout(p->srv, 200);
	t0 = gw_now_mono_ms();
	assert_int_equal(gw_conn_recv(p->srv, &b, 1), -ETIMEDOUT);
	assert_true(gw_now_mono_ms() - t0 >= 190 && gw_now_mono_ms() - t0 < 2000);

	gw_conn_set_timeout(p->lst, 100);
	t0 = gw_now_mono_ms();
	assert_int_equal(gw_conn_accept(p->lst, &none), -ETIMEDOUT);
	assert_null(none);
	assert_true(gw_now_mono_ms() - t0 >= 90 && gw_now_mono_ms() - t0 < 2000);

	/* the server never reads: the socket buffers fill and the send times out */
	uint8_t *big = calloc(1, LEN);
	assert_non_null(big);
	gw_conn_set_timeout(p->cli, 300);
	t0 = gw_now_mono_ms();
	assert_int_equal(gw_conn_send(p->cli, big, LEN), -ETIMEDOUT);
	assert_true(gw_now_mono_ms() - t0 < 3000);
	free(big);
}

struct blocked {
	struct gw_conn *c;
	struct gw_conn *accepted;
	atomic_int ret; /* polled by the main thread while the op is blocked */
};

static void *recv_main(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[16];
	b->ret = gw_conn_recv(b->c, buf, sizeof(buf));
	return NULL;
}

static void *accept_main(void *arg)
{
	struct blocked *b = arg;
	b->ret = gw_conn_accept(b->c, &b->accepted);
	return NULL;
}

/*
 * A recv blocked forever in one thread returns -ECANCELED when another thread shuts
 * the connection down; later ops fail the same way and the peer sees the end.
 */
static void test_shutdown_unblocks_recv(void **state)
{
	struct pair *p = *state;
	struct blocked b = {.c = p->srv, .ret = 1};
	pthread_t th;
	uint8_t x;

	gw_conn_set_timeout(p->srv, -1);
	gw_conn_set_timeout(p->cli, 2000);
	assert_int_equal(pthread_create(&th, NULL, recv_main, &b), 0);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&b.ret), 1); /* still blocked */
	gw_conn_shutdown(p->srv);
	pthread_join(th, NULL);
	assert_int_equal(b.ret, -ECANCELED);
	assert_int_equal(gw_conn_recv(p->srv, &x, 1), -ECANCELED);
	assert_int_equal(gw_conn_send(p->srv, &x, 1), -ECANCELED);
	gw_conn_shutdown(p->srv); /* idempotent */
	assert_int_equal(gw_conn_recv(p->cli, &x, 1), -ECONNRESET);
}

/* The same for a blocked accept. */
static void test_shutdown_unblocks_accept(void **state)
{
	struct pair *p = *state;
	struct blocked b = {.c = p->lst, .ret = 1};
	pthread_t th;

	gw_conn_set_timeout(p->lst, -1);
	assert_int_equal(pthread_create(&th, NULL, accept_main, &b), 0);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&b.ret), 1);
	gw_conn_shutdown(p->lst);
	pthread_join(th, NULL);
	assert_int_equal(b.ret, -ECANCELED);
	assert_null(b.accepted);
}

/*
 * A connected socket adopted from a plain fd (as a VMM does with one the agent passed
 * over SCM_RIGHTS) works like any connection; non-sockets and unconnected sockets are
 * refused and stay the caller's.
 */
static void test_conn_from_fd(void **state)
{
	struct pair *p = *state;
	struct gw_conn *c = NULL;
	uint8_t buf[4];
	int fds[2], fd;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(gw_tcp_conn_from_fd(fds[0], NULL, &c), -ENOTSOCK);
	assert_null(c);
	close(fds[0]);
	close(fds[1]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(gw_tcp_conn_from_fd(fd, NULL, &c), -ENOTCONN);
	assert_int_equal(close(fd), 0); /* still ours */

	assert_true(gw_conn_fd(p->lst) >= 0);
	fd = dup(gw_conn_fd(p->srv)); /* what the receiving process gets */
	assert_true(fd >= 0);
	gw_conn_close(p->srv); /* closing the original does not end the stream */
	p->srv = NULL;
	assert_int_equal(gw_tcp_conn_from_fd(fd, NULL, &c), 0);
	assert_int_equal(gw_conn_fd(c), fd);
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%d", gw_conn_local_port(p->cli));
	assert_string_equal(gw_conn_peer_name(c), want);
	assert_int_equal(gw_conn_send(p->cli, "ping", 4), 0);
	assert_int_equal(gw_conn_recv(c, buf, 4), 0);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(gw_conn_send(c, "pong", 4), 0);
	assert_int_equal(gw_conn_recv(p->cli, buf, 4), 0);
	assert_memory_equal(buf, "pong", 4);
	gw_conn_close(c);
}

/* IPv6 loopback, when the host has it. */
static void test_ipv6_loopback(void **state)
{
	const struct gw_transport_ops *tcp = gw_transport_get("tcp");
	struct gw_conn *lst, *cli, *srv;
	char addr[64];
	int r = tcp->listen("[::1]:0", NULL, &lst);
	if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
		print_message("no IPv6 loopback here: skipped\n");
		skip();
	}
	assert_int_equal(r, 0);
	snprintf(addr, sizeof(addr), "[::1]:%d", gw_conn_local_port(lst));
	assert_string_equal(gw_conn_peer_name(lst), addr);
	assert_int_equal(tcp->connect(addr, NULL, &cli), 0);
	assert_int_equal(gw_conn_accept(lst, &srv), 0);
	assert_int_equal(gw_conn_send(cli, "v6", 2), 0);
	assert_int_equal(gw_conn_recv(srv, addr, 2), 0);
	assert_memory_equal(addr, "v6", 2);
	gw_conn_close(cli);
	gw_conn_close(srv);
	gw_conn_close(lst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_args),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test_setup_teardown(test_names_and_ports, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_sendv_recvv_1000, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_more_than_iov_max, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_closes_mid_recv, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_closes_mid_send, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_timeouts, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_unblocks_recv, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_unblocks_accept, pair_setup,
					    pair_teardown),
	    cmocka_unit_test_setup_teardown(test_conn_from_fd, pair_setup, pair_teardown),
	    cmocka_unit_test(test_ipv6_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
