/* test_transport_rdma.c -- the RDMA transport over tests/fakeverbs (a user-space RC provider
 * linked in place of the hardware): bulk iovecs across ring wraps, zero-copy vs bounce,
 * full duplex, many tiny messages (credits: never RNR), EOF, timeouts, cancel, strangers. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <endian.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_fsutil.h"
#include "gw_test_skip.h"
#include "gw_transport.h"

#ifdef GW_HAVE_RDMA
#include "rdma_int.h"

struct pair {
	const struct gw_transport_ops *rdma;
	struct gw_conn *lst, *cli, *srv;
};

struct accepter {
	struct gw_conn *lst, *c;
	int ret;
};

static void *accept_main(void *arg)
{
	struct accepter *a = arg;
	a->ret = gw_conn_accept(a->lst, &a->c);
	return NULL;
}

/* connect blocks until the server accepts: accept in a thread */
static void connect_pair(struct pair *p)
{
	struct accepter a = {.lst = p->lst};
	pthread_t th;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(p->lst));
	assert_int_equal(pthread_create(&th, NULL, accept_main, &a), 0);
	assert_int_equal(p->rdma->connect(addr, NULL, &p->cli), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.ret, 0);
	p->srv = a.c;
}

static int pair_setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->rdma = gw_transport_get("rdma");
	assert_non_null(p->rdma);
	assert_int_equal(p->rdma->listen("127.0.0.1:0", NULL, &p->lst), 0);
	connect_pair(p);
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

static void test_registered(void **state)
{
	assert_non_null(gw_transport_get("rdma"));
	assert_string_equal(gw_transport_get("rdma")->name, "rdma");
}

static void test_connect_refused(void **state)
{
	const struct gw_transport_ops *rdma = gw_transport_get("rdma");
	struct gw_conn *lst, *c = NULL;
	char addr[64];
	/* a port that was just listened on and closed: nobody there */
	assert_int_equal(rdma->listen("127.0.0.1:0", NULL, &lst), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(lst));
	gw_conn_close(lst);
	assert_int_equal(rdma->connect(addr, NULL, &c), -ECONNREFUSED);
	assert_null(c);
	assert_int_equal(rdma->connect("nonsense", NULL, &c), -EINVAL);
	assert_int_equal(rdma->listen("127.0.0.1:99999", NULL, &c), -EINVAL);
	assert_int_equal(gw_conn_fd(NULL), -1);
}

static void test_names(void **state)
{
	struct pair *p = *state;
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%d", gw_conn_local_port(p->lst));
	assert_string_equal(gw_conn_peer_name(p->cli), want);
	assert_string_equal(gw_conn_local_name(p->srv), want);
	assert_string_equal(gw_conn_local_name(p->lst), want);
	assert_string_equal(gw_conn_peer_name(p->srv), gw_conn_local_name(p->cli));
	assert_int_equal(gw_conn_fd(p->cli), -1);
	assert_string_equal(gw_conn_ops(p->cli)->name, "rdma");
}

/*
 * 24 MiB (three times the receive ring) in 1000 sender pieces, received in 997 pieces with
 * other boundaries; once from unregistered memory (bounce buffer), once from memory given to
 * register_mem (zero copy: nothing goes through the bounce buffer).
 */
static void bulk(struct pair *p, bool registered)
{
	enum { TOTAL = 24 << 20, NSEND = 1000, NRECV = 997 };
	uint8_t *src = malloc(TOTAL), *dst = malloc(TOTAL);
	struct iovec *siov = calloc(NSEND, sizeof(*siov));
	struct iovec *riov = calloc(NRECV, sizeof(*riov));
	struct sender s;
	pthread_t th;
	uint64_t sent0, recvd0, sent, recvd;

	assert_non_null(src);
	assert_non_null(dst);
	fill_random(src, TOTAL, registered ? 42 : 43);
	if (registered)
		assert_int_equal(gw_conn_register_mem(p->cli, src, TOTAL), 0);
	size_t off = 0;
	uint32_t x = 7;
	for (int i = 0; i < NSEND; i++) {
		x = x * 1103515245u + 12345u;
		size_t len = (i % 10 == 3) ? 0 : (x >> 8) % (2 * TOTAL / NSEND);
		if (i == NSEND - 1 || off + len > TOTAL)
			len = i == NSEND - 1 ? TOTAL - off : 0;
		siov[i] = (struct iovec){.iov_base = src + off, .iov_len = len};
		off += len;
	}
	for (int i = 0; i < NRECV; i++) {
		size_t a = (size_t)((uint64_t)TOTAL * i / NRECV) + (i ? i % 3 : 0);
		size_t b = i == NRECV - 1
			       ? TOTAL
			       : (size_t)((uint64_t)TOTAL * (i + 1) / NRECV) + ((i + 1) % 3);
		riov[i] = (struct iovec){.iov_base = dst + a, .iov_len = b - a};
	}
	gw_conn_stats(p->cli, &sent0, NULL);
	gw_conn_stats(p->srv, NULL, &recvd0);
	uint64_t bounced0 = ((struct gw_rdma_conn *)gw_rdma_priv(p->cli))->bounced;
	s = (struct sender){.c = p->cli, .iov = siov, .iovcnt = NSEND};
	assert_int_equal(pthread_create(&th, NULL, sender_main, &s), 0);
	assert_int_equal(gw_conn_recvv(p->srv, riov, NRECV), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.ret, 0);
	assert_memory_equal(dst, src, TOTAL);
	gw_conn_stats(p->cli, &sent, NULL);
	gw_conn_stats(p->srv, NULL, &recvd);
	assert_int_equal(sent - sent0, TOTAL);
	assert_int_equal(recvd - recvd0, TOTAL);
	uint64_t bounced = ((struct gw_rdma_conn *)gw_rdma_priv(p->cli))->bounced - bounced0;
	if (registered)
		assert_int_equal(bounced, 0);
	else
		assert_int_equal(bounced, TOTAL);
	free(riov);
	free(siov);
	free(dst);
	free(src);
}

static void test_bulk_bounce(void **state)
{
	bulk(*state, false);
}

static void test_bulk_zero_copy(void **state)
{
	struct pair *p = *state;
	bulk(p, true);
	/* sendv returns once the bytes are out: the caller may reuse its buffer at once */
	uint8_t *buf = malloc(1 << 20), *copy = malloc(1 << 20), *got = malloc(1 << 20);
	assert_int_equal(gw_conn_register_mem(p->cli, buf, 1 << 20), 0);
	fill_random(buf, 1 << 20, 5);
	memcpy(copy, buf, 1 << 20);
	assert_int_equal(gw_conn_send(p->cli, buf, 1 << 20), 0);
	memset(buf, 0xee, 1 << 20);
	assert_int_equal(gw_conn_recv(p->srv, got, 1 << 20), 0);
	assert_memory_equal(got, copy, 1 << 20);
	assert_int_equal(gw_conn_sendv(p->cli, NULL, 0), 0);
	assert_int_equal(gw_conn_recv(p->srv, NULL, 0), 0);
	assert_int_equal(gw_conn_sendv(p->cli, NULL, -1), -EINVAL);
	free(buf);
	free(copy);
	free(got);
}

/* Both directions at once on one connection: credits travel against data. */
struct duplex {
	struct gw_conn *c;
	uint8_t *out, *in;
	size_t len;
	int sret, rret;
};

static void *duplex_send(void *arg)
{
	struct duplex *d = arg;
	for (size_t off = 0; off < d->len && !d->sret; off += 65536)
		d->sret = gw_conn_send(d->c, d->out + off, 65536);
	return NULL;
}

static void *duplex_recv(void *arg)
{
	struct duplex *d = arg;
	d->rret = gw_conn_recv(d->c, d->in, d->len);
	return NULL;
}

static void test_full_duplex(void **state)
{
	enum { LEN = 32 << 20 };
	struct pair *p = *state;
	struct duplex a = {.c = p->cli, .len = LEN}, b = {.c = p->srv, .len = LEN};
	pthread_t th[4];
	a.out = malloc(LEN), a.in = malloc(LEN), b.out = malloc(LEN), b.in = malloc(LEN);
	fill_random(a.out, LEN, 1);
	fill_random(b.out, LEN, 2);
	pthread_create(&th[0], NULL, duplex_send, &a);
	pthread_create(&th[1], NULL, duplex_recv, &a);
	pthread_create(&th[2], NULL, duplex_send, &b);
	pthread_create(&th[3], NULL, duplex_recv, &b);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(a.sret, 0);
	assert_int_equal(a.rret, 0);
	assert_int_equal(b.sret, 0);
	assert_int_equal(b.rret, 0);
	assert_memory_equal(b.in, a.out, LEN);
	assert_memory_equal(a.in, b.out, LEN);
	free(a.out), free(a.in), free(b.out), free(b.in);
}

/* Far more messages than the peer has receive WRs, read slowly: message credits keep the
 * sender from ever overrunning the receive queue (the provider would fail it with RNR). */
static void *tiny_send(void *arg)
{
	struct sender *s = arg;
	for (uint32_t i = 0; i < 20000 && !s->ret; i++)
		s->ret = gw_conn_send(s->c, &i, sizeof(i));
	return NULL;
}

static void test_many_tiny_messages(void **state)
{
	struct pair *p = *state;
	struct sender s = {.c = p->cli};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, tiny_send, &s), 0);
	usleep(200 * 1000); /* let the sender run into its window */
	for (uint32_t i = 0; i < 20000; i++) {
		uint32_t v = ~0u;
		assert_int_equal(gw_conn_recv(p->srv, &v, sizeof(v)), 0);
		assert_int_equal(v, i);
	}
	pthread_join(th, NULL);
	assert_int_equal(s.ret, 0);
}

/* More iovecs than IOV_MAX and than SGEs per write: walked through in writes of max_sge. */
static void test_many_iovecs(void **state)
{
	enum { N = 3000 };
	struct pair *p = *state;
	static uint8_t src[N * 17], dst[N * 17];
	static struct iovec siov[N], riov[N];
	struct sender s;
	pthread_t th;
	size_t off = 0;

	fill_random(src, sizeof(src), 9);
	assert_int_equal(gw_conn_register_mem(p->cli, src, sizeof(src)), 0);
	for (int i = 0; i < N; i++) {
		size_t len = 1 + (size_t)(i % 17);
		siov[i] = (struct iovec){.iov_base = src + off, .iov_len = len};
		riov[N - 1 - i].iov_len = len;
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

/* The peer closes after sending half: those bytes are still read, then -ECONNRESET. */
static void test_peer_closes_mid_recv(void **state)
{
	struct pair *p = *state;
	uint8_t buf[8192], got[8192];
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(gw_conn_send(p->cli, buf, sizeof(buf) / 2), 0);
	gw_conn_close(p->cli);
	p->cli = NULL;
	gw_conn_set_timeout(p->srv, 3000);
	assert_int_equal(gw_conn_recv(p->srv, got, sizeof(got) / 2), 0);
	assert_memory_equal(got, buf, sizeof(buf) / 2);
	assert_int_equal(gw_conn_recv(p->srv, got, 1), -ECONNRESET);
}

/* The receiver goes away mid-stream: the sender fails with -ECONNRESET, it does not hang. */
static void test_peer_closes_mid_send(void **state)
{
	enum { LEN = 64 << 20 };
	struct pair *p = *state;
	uint8_t *buf = calloc(1, LEN);
	assert_non_null(buf);
	gw_conn_close(p->srv);
	p->srv = NULL;
	gw_conn_set_timeout(p->cli, 3000);
	int r = gw_conn_send(p->cli, buf, LEN);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	free(buf);
}

/* Nothing arrives: recv and accept time out; a send to a peer that never reads fills its
 * ring and times out too. */
static void test_timeouts(void **state)
{
	enum { LEN = 64 << 20 };
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
	atomic_int ret;
};

static void *recv_blocked(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[16];
	b->ret = gw_conn_recv(b->c, buf, sizeof(buf));
	return NULL;
}

static void *accept_blocked(void *arg)
{
	struct blocked *b = arg;
	b->ret = gw_conn_accept(b->c, &b->accepted);
	return NULL;
}

/* shutdown from another thread: a blocked recv or accept returns -ECANCELED, so does every
 * later op, and the peer sees the end of the stream. */
static void test_shutdown_unblocks(void **state)
{
	struct pair *p = *state;
	struct blocked b = {.c = p->srv, .ret = 1}, a = {.c = p->lst, .ret = 1};
	pthread_t th, th2;
	uint8_t x;

	gw_conn_set_timeout(p->srv, -1);
	gw_conn_set_timeout(p->lst, -1);
	gw_conn_set_timeout(p->cli, 3000);
	assert_int_equal(pthread_create(&th, NULL, recv_blocked, &b), 0);
	assert_int_equal(pthread_create(&th2, NULL, accept_blocked, &a), 0);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&b.ret), 1);
	assert_int_equal(atomic_load(&a.ret), 1);
	gw_conn_shutdown(p->srv);
	gw_conn_shutdown(p->lst);
	pthread_join(th, NULL);
	pthread_join(th2, NULL);
	assert_int_equal(b.ret, -ECANCELED);
	assert_int_equal(a.ret, -ECANCELED);
	assert_int_equal(gw_conn_recv(p->srv, &x, 1), -ECANCELED);
	assert_int_equal(gw_conn_send(p->srv, &x, 1), -ECANCELED);
	gw_conn_shutdown(p->srv); /* idempotent */
	assert_int_equal(gw_conn_recv(p->cli, &x, 1), -ECONNRESET);
}

/* A connection request that is not ours (no or foreign private data) is rejected, and the
 * listener goes on to accept the next, real one. */
static void test_stranger_rejected(void **state)
{
	struct pair *p = *state;
	struct rdma_event_channel *ech = rdma_create_event_channel();
	struct rdma_cm_id *id;
	struct rdma_cm_event *ev;
	struct sockaddr_storage ss;
	socklen_t sl;
	char addr[64];
	assert_non_null(ech);
	assert_int_equal(rdma_create_id(ech, &id, NULL, RDMA_PS_TCP), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(p->lst));
	assert_int_equal(gw_transport_parse_addr(addr, false, &ss, &sl), 0);
	assert_int_equal(rdma_resolve_addr(id, NULL, (struct sockaddr *)&ss, 2000), 0);
	assert_int_equal(rdma_get_cm_event(ech, &ev), 0);
	assert_int_equal(ev->event, RDMA_CM_EVENT_ADDR_RESOLVED);
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_resolve_route(id, 2000), 0);
	assert_int_equal(rdma_get_cm_event(ech, &ev), 0);
	rdma_ack_cm_event(ev);
	struct ibv_pd *pd = ibv_alloc_pd(id->verbs);
	struct ibv_cq *cq = ibv_create_cq(id->verbs, 8, NULL, NULL, 0);
	struct ibv_qp_init_attr qa = {
	    .send_cq = cq,
	    .recv_cq = cq,
	    .qp_type = IBV_QPT_RC,
	    .cap = {.max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1}};
	assert_int_equal(rdma_create_qp(id, pd, &qa), 0);
	const char junk[24] = "definitely not godwit";
	struct rdma_conn_param cp = {.private_data = junk, .private_data_len = sizeof(junk)};
	assert_int_equal(rdma_connect(id, &cp), 0);

	/* the listener sees it, rejects it, and keeps waiting: a real client then gets in */
	struct gw_conn *cli2 = NULL;
	struct accepter a = {.lst = p->lst};
	pthread_t th;
	gw_conn_set_timeout(p->lst, 5000);
	assert_int_equal(pthread_create(&th, NULL, accept_main, &a), 0);
	assert_int_equal(rdma_get_cm_event(ech, &ev), 0); /* blocking channel: waits */
	assert_int_equal(ev->event, RDMA_CM_EVENT_REJECTED);
	rdma_ack_cm_event(ev);
	assert_int_equal(p->rdma->connect(addr, NULL, &cli2), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.ret, 0);
	uint32_t v = 0xfeedbeef, w = 0;
	assert_int_equal(gw_conn_send(cli2, &v, sizeof(v)), 0);
	assert_int_equal(gw_conn_recv(a.c, &w, sizeof(w)), 0);
	assert_int_equal(w, v);
	gw_conn_close(cli2);
	gw_conn_close(a.c);
	rdma_destroy_qp(id);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	rdma_destroy_id(id);
	rdma_destroy_event_channel(ech);
}

/* Direct placement: the receiver exposes a buffer, the sender writes straight into it at an
 * offset (registered and unregistered sources), and a later send proves the bytes landed. */
static void test_write_placed(void **state)
{
	enum { EXP = 4 << 20, LEN = 1 << 20, OFF = 123 * 4096 };
	struct pair *p = *state;
	uint8_t *exp = calloc(1, EXP), *src = malloc(LEN), small[3000];
	struct gw_remote_mem rm;
	uint32_t mark = 0x600d, got = 0;
	assert_true(gw_conn_can_place(p->cli));
	fill_random(src, LEN, 11);
	fill_random(small, sizeof(small), 12);
	assert_int_equal(gw_conn_expose_mem(p->srv, exp, EXP, &rm), 0);
	assert_int_equal(rm.len, EXP);
	assert_int_equal(gw_conn_expose_mem(p->srv, exp, EXP, &rm), 0); /* again: same MR */
	assert_int_equal(gw_conn_register_mem(p->cli, src, LEN), 0);
	struct iovec iov[2] = {{src, LEN}, {small, sizeof(small)}};
	uint64_t bounced0 = gw_rdma_priv(p->cli)->bounced;
	assert_int_equal(gw_conn_write_placed(p->cli, iov, 2, &rm, OFF), 0);
	assert_int_equal(gw_conn_send(p->cli, &mark, sizeof(mark)), 0);
	assert_int_equal(gw_conn_recv(p->srv, &got, sizeof(got)), 0);
	assert_int_equal(got, mark);
	assert_memory_equal(exp + OFF, src, LEN);
	assert_memory_equal(exp + OFF + LEN, small, sizeof(small));
	for (size_t k = 0; k < OFF; k++)
		assert_int_equal(exp[k], 0); /* nothing before the offset */
	/* only the unregistered piece and the mark went through the bounce buffer */
	assert_int_equal(gw_rdma_priv(p->cli)->bounced - bounced0, sizeof(small) + sizeof(mark));
	/* past the end of the exposed memory: refused before anything is posted */
	assert_int_equal(gw_conn_write_placed(p->cli, iov, 1, &rm, EXP - LEN + 4096), -ERANGE);
	assert_int_equal(gw_conn_write_placed(p->cli, iov, 1, &rm, ~0ull), -ERANGE);
	/* an rkey the peer never gave: the connection fails (remote access error) */
	struct gw_remote_mem bad = rm;
	bad.rkey ^= 0x5a5a;
	gw_conn_set_timeout(p->cli, 3000);
	int r = gw_conn_write_placed(p->cli, iov, 1, &bad, 0);
	if (r == 0)
		r = gw_conn_send(p->cli, &mark, sizeof(mark));
	assert_true(r == -EPROTO || r == -ECONNRESET);
	free(exp);
	free(src);
}

/* TCP has no direct placement: the engine falls back to the stream. */
static void test_tcp_cannot_place(void **state)
{
	const struct gw_transport_ops *tcp = gw_transport_get("tcp");
	struct gw_conn *lst, *cli, *srv;
	struct gw_remote_mem rm = {0};
	uint8_t b[8];
	struct iovec iov = {b, sizeof(b)};
	char addr[64];
	assert_int_equal(tcp->listen("127.0.0.1:0", NULL, &lst), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(lst));
	assert_int_equal(tcp->connect(addr, NULL, &cli), 0);
	assert_int_equal(gw_conn_accept(lst, &srv), 0);
	assert_false(gw_conn_can_place(cli));
	assert_int_equal(gw_conn_expose_mem(srv, b, sizeof(b), &rm), -EOPNOTSUPP);
	assert_int_equal(gw_conn_write_placed(cli, &iov, 1, &rm, 0), -EOPNOTSUPP);
	gw_conn_close(cli);
	gw_conn_close(srv);
	gw_conn_close(lst);
}

/* A raw verbs client that speaks our hello, for peers that lie after connecting. */
struct raw_peer {
	struct rdma_event_channel *ech;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	uint8_t buf[4096];
	struct gw_rdma_hello srv; /* the server's hello */
};

static void raw_connect(struct raw_peer *r, struct gw_conn *lst, struct gw_conn **accepted)
{
	struct rdma_cm_event *ev;
	struct sockaddr_storage ss;
	socklen_t sl;
	char addr[64];
	r->ech = rdma_create_event_channel();
	assert_non_null(r->ech);
	assert_int_equal(rdma_create_id(r->ech, &r->id, NULL, RDMA_PS_TCP), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(lst));
	assert_int_equal(gw_transport_parse_addr(addr, false, &ss, &sl), 0);
	assert_int_equal(rdma_resolve_addr(r->id, NULL, (struct sockaddr *)&ss, 2000), 0);
	assert_int_equal(rdma_get_cm_event(r->ech, &ev), 0);
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_resolve_route(r->id, 2000), 0);
	assert_int_equal(rdma_get_cm_event(r->ech, &ev), 0);
	rdma_ack_cm_event(ev);
	r->pd = ibv_alloc_pd(r->id->verbs);
	r->cq = ibv_create_cq(r->id->verbs, 64, NULL, NULL, 0);
	r->mr = ibv_reg_mr(r->pd, r->buf, sizeof(r->buf),
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	assert_non_null(r->mr);
	struct ibv_qp_init_attr qa = {
	    .send_cq = r->cq,
	    .recv_cq = r->cq,
	    .qp_type = IBV_QPT_RC,
	    .cap = {.max_send_wr = 16, .max_recv_wr = 16, .max_send_sge = 1, .max_recv_sge = 1}};
	assert_int_equal(rdma_create_qp(r->id, r->pd, &qa), 0);
	struct gw_rdma_hello h = {.magic = htonl(GW_RDMA_MAGIC),
				  .version = htons(GW_RDMA_VERSION),
				  .rq_depth = htons(16),
				  .ring_addr = htobe64((uintptr_t)r->buf),
				  .ring_rkey = htonl(r->mr->rkey),
				  .ring_size = htonl(64u << 10)};
	struct rdma_conn_param cp = {.private_data = &h, .private_data_len = sizeof(h)};
	struct accepter a = {.lst = lst};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, accept_main, &a), 0);
	assert_int_equal(rdma_connect(r->id, &cp), 0);
	assert_int_equal(rdma_get_cm_event(r->ech, &ev), 0);
	assert_int_equal(ev->event, RDMA_CM_EVENT_ESTABLISHED);
	assert_true(ev->param.conn.private_data_len >= sizeof(r->srv));
	memcpy(&r->srv, ev->param.conn.private_data, sizeof(r->srv));
	rdma_ack_cm_event(ev);
	pthread_join(th, NULL);
	assert_int_equal(a.ret, 0);
	*accepted = a.c;
}

static void raw_close(struct raw_peer *r)
{
	rdma_disconnect(r->id);
	rdma_destroy_qp(r->id);
	ibv_destroy_cq(r->cq);
	ibv_dereg_mr(r->mr);
	ibv_dealloc_pd(r->pd);
	rdma_destroy_id(r->id);
	rdma_destroy_event_channel(r->ech);
}

/* The peer claims (in a write's immediate) more bytes than our ring holds: the stream fails
 * with -EPROTO instead of reading past the ring. */
static void test_lying_peer_imm(void **state)
{
	struct pair *p = *state;
	struct raw_peer r;
	struct gw_conn *c;
	uint8_t x[16];
	memset(&r, 0, sizeof(r));
	raw_connect(&r, p->lst, &c);
	struct ibv_sge sge = {.addr = (uintptr_t)r.buf, .length = 4, .lkey = r.mr->lkey};
	struct ibv_send_wr wr = {.sg_list = &sge,
				 .num_sge = 1,
				 .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
				 .send_flags = IBV_SEND_SIGNALED,
				 .imm_data = htobe32(GW_RDMA_RING_BYTES + 1),
				 .wr.rdma = {.remote_addr = be64toh(r.srv.ring_addr),
					     .rkey = ntohl(r.srv.ring_rkey)}},
			   *bad;
	assert_int_equal(ibv_post_send(r.id->qp, &wr, &bad), 0);
	gw_conn_set_timeout(c, 3000);
	assert_int_equal(gw_conn_recv(c, x, sizeof(x)), -EPROTO);
	assert_int_equal(gw_conn_send(c, x, 1), -EPROTO); /* and the stream stays failed */
	gw_conn_close(c);
	raw_close(&r);
}

/* The peer returns credits for bytes we never sent: -EPROTO, never a wild ring position. */
static void test_lying_peer_credit(void **state)
{
	struct pair *p = *state;
	struct raw_peer r;
	struct gw_conn *c;
	uint8_t x = 0;
	memset(&r, 0, sizeof(r));
	raw_connect(&r, p->lst, &c);
	struct gw_rdma_credit cr = {.consumed = htobe64(1u << 20), .msgs = htobe64(1)};
	memcpy(r.buf, &cr, sizeof(cr));
	struct ibv_sge sge = {.addr = (uintptr_t)r.buf, .length = sizeof(cr), .lkey = r.mr->lkey};
	struct ibv_send_wr wr = {.sg_list = &sge,
				 .num_sge = 1,
				 .opcode = IBV_WR_SEND,
				 .send_flags = IBV_SEND_SIGNALED},
			   *bad;
	assert_int_equal(ibv_post_send(r.id->qp, &wr, &bad), 0);
	gw_conn_set_timeout(c, 3000);
	assert_int_equal(gw_conn_recv(c, &x, 1), -EPROTO);
	gw_conn_close(c);
	raw_close(&r);
}

/* Several connections at once share one protection domain and one registration of a
 * region (the migration's data streams all register the same guest RAM). */
static void test_streams_share_registration(void **state)
{
	struct pair *p = *state;
	struct pair q = {.rdma = p->rdma, .lst = p->lst};
	static uint8_t ram[4 << 20];
	uint8_t got[4096];
	connect_pair(&q);
	fill_random(ram, sizeof(ram), 77);
	assert_int_equal(gw_conn_register_mem(p->cli, ram, sizeof(ram)), 0);
	assert_int_equal(gw_conn_register_mem(q.cli, ram, sizeof(ram)), 0);
	assert_int_equal(gw_conn_register_mem(q.cli, ram, sizeof(ram)), 0); /* again: no-op */
	struct gw_rdma_conn *a = gw_rdma_priv(p->cli), *b = gw_rdma_priv(q.cli);
	assert_ptr_equal(a->pd, b->pd);
	assert_int_equal(b->nregions, 1);
	assert_ptr_equal(a->regions[0], b->regions[0]);
	assert_int_equal(gw_conn_send(p->cli, ram + 8192, sizeof(got)), 0);
	assert_int_equal(gw_conn_recv(p->srv, got, sizeof(got)), 0);
	assert_memory_equal(got, ram + 8192, sizeof(got));
	assert_int_equal(gw_conn_send(q.cli, ram + (3 << 20), sizeof(got)), 0);
	assert_int_equal(gw_conn_recv(q.srv, got, sizeof(got)), 0);
	assert_memory_equal(got, ram + (3 << 20), sizeof(got));
	gw_conn_close(q.cli);
	gw_conn_close(q.srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registered),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test_setup_teardown(test_names, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_bounce, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_zero_copy, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_full_duplex, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_many_tiny_messages, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_many_iovecs, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_closes_mid_recv, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_closes_mid_send, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_timeouts, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_unblocks, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_stranger_rejected, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_streams_share_registration, pair_setup,
					    pair_teardown),
	    cmocka_unit_test_setup_teardown(test_write_placed, pair_setup, pair_teardown),
	    cmocka_unit_test(test_tcp_cannot_place),
	    cmocka_unit_test_setup_teardown(test_lying_peer_imm, pair_setup, pair_teardown),
	    cmocka_unit_test_setup_teardown(test_lying_peer_credit, pair_setup, pair_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !GW_HAVE_RDMA */

int main(void)
{
	return gw_test_skip("test_transport_rdma", "RDMA transport not built in "
						   "(no librdmacm/libibverbs at configure time)");
}

#endif
