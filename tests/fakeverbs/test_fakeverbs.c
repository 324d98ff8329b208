/* Self-test of fakeverbs (the software RDMA provider): both ends in this process over
 * 127.0.0.1, through the same rdma_cm/verbs calls the RDMA transport makes. Linked with the
 * real libibverbs/librdmacm too: passing proves the static library's definitions win. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define BUFSZ 65536
#define NRECV 8

struct side {
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	char *buf;
	struct ibv_mr *mr;
};

struct pair {
	struct rdma_event_channel *lch;
	struct rdma_cm_id *listen;
	uint16_t port;
	struct side c, s;
};

static struct rdma_cm_event *wait_ev(struct rdma_event_channel *ch, int timeout_ms)
{
	struct pollfd p = {.fd = ch->fd, .events = POLLIN};
	struct rdma_cm_event *e;
	if (poll(&p, 1, timeout_ms) <= 0)
		return NULL;
	if (rdma_get_cm_event(ch, &e) < 0)
		return NULL;
	return e;
}

static void expect_ev(struct rdma_event_channel *ch, enum rdma_cm_event_type type)
{
	struct rdma_cm_event *e = wait_ev(ch, 5000);
	assert_non_null(e);
	if (e->event != type)
		fail_msg("expected %s, got %s", rdma_event_str(type), rdma_event_str(e->event));
	rdma_ack_cm_event(e);
}

static int wait_cqe(struct ibv_cq *cq, struct ibv_wc *wc, int timeout_ms)
{
	for (int i = 0; i < timeout_ms; i++) {
		int n = ibv_poll_cq(cq, 1, wc);
		if (n)
			return n;
		usleep(1000);
	}
	return 0;
}

/* no completion shows up within ms */
static void expect_no_cqe(struct ibv_cq *cq, int ms)
{
	struct ibv_wc wc;
	assert_int_equal(wait_cqe(cq, &wc, ms), 0);
}

static void setup_side(struct side *s, int max_send_wr)
{
	struct ibv_qp_init_attr qa = {0};
	s->pd = ibv_alloc_pd(s->id->verbs);
	assert_non_null(s->pd);
	s->cc = ibv_create_comp_channel(s->id->verbs);
	assert_non_null(s->cc);
	s->cq = ibv_create_cq(s->id->verbs, 512, s, s->cc, 0);
	assert_non_null(s->cq);
	qa.send_cq = qa.recv_cq = s->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = (uint32_t)max_send_wr;
	qa.cap.max_recv_wr = 64;
	qa.cap.max_send_sge = 4;
	qa.cap.max_recv_sge = 4;
	qa.cap.max_inline_data = 64;
	assert_int_equal(rdma_create_qp(s->id, s->pd, &qa), 0);
	s->buf = calloc(1, BUFSZ);
	s->mr = ibv_reg_mr(s->pd, s->buf, BUFSZ, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	assert_non_null(s->mr);
}

static void post_recv(struct side *s, uint64_t wr_id, size_t off, uint32_t len)
{
	struct ibv_sge sg = {(uintptr_t)(s->buf + off), len, s->mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = wr_id, .sg_list = &sg, .num_sge = 1}, *bad;
	assert_int_equal(ibv_post_recv(s->id->qp, &wr, &bad), 0);
}

static int post_write(struct side *s, uint64_t wr_id, size_t off, uint32_t len, uint64_t raddr,
		      uint32_t rkey, int imm, uint32_t immv, int signaled)
{
	struct ibv_sge sg = {(uintptr_t)(s->buf + off), len, s->mr->lkey};
	struct ibv_send_wr wr = {0}, *bad = NULL;
	wr.wr_id = wr_id;
	wr.sg_list = &sg;
	wr.num_sge = 1;
	wr.opcode = imm ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE;
	wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
	wr.imm_data = immv;
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	int rc = ibv_post_send(s->id->qp, &wr, &bad);
	if (rc)
		assert_ptr_equal(bad, &wr);
	return rc;
}

static void do_listen(struct pair *p)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lch = rdma_create_event_channel();
	assert_non_null(p->lch);
	assert_int_equal(rdma_create_id(p->lch, &p->listen, p, RDMA_PS_TCP), 0);
	assert_int_equal(rdma_bind_addr(p->listen, (struct sockaddr *)&a), 0);
	assert_int_equal(rdma_listen(p->listen, 16), 0);
	p->port = ntohs(rdma_get_src_port(p->listen));
	assert_int_not_equal(p->port, 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)rdma_get_local_addr(p->listen))->sin_port),
			 p->port);
}

static void client_start(struct pair *p, uint16_t port, int nrecv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct rdma_conn_param cp = {0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->c.ch = rdma_create_event_channel();
	assert_int_equal(rdma_create_id(p->c.ch, &p->c.id, &p->c, RDMA_PS_TCP), 0);
	assert_int_equal(rdma_resolve_addr(p->c.id, NULL, (struct sockaddr *)&a, 2000), 0);
	expect_ev(p->c.ch, RDMA_CM_EVENT_ADDR_RESOLVED);
	assert_non_null(p->c.id->verbs);
	assert_string_equal(ibv_get_device_name(p->c.id->verbs->device), "gwfake0");
	assert_int_equal(rdma_resolve_route(p->c.id, 2000), 0);
	expect_ev(p->c.ch, RDMA_CM_EVENT_ROUTE_RESOLVED);
	setup_side(&p->c, 64);
	for (int i = 0; i < nrecv; i++)
		post_recv(&p->c, 100 + (uint64_t)i, 0, 256);
	cp.private_data = "hello-from-client";
	cp.private_data_len = 18;
	assert_int_equal(rdma_connect(p->c.id, &cp), 0);
}

/* the server side of one connection request: accept (or reject when reject != NULL) */
static void server_take(struct pair *p, int nrecv, int max_send_wr, const char *reject)
{
	struct rdma_cm_event *e = wait_ev(p->lch, 5000);
	struct rdma_conn_param cp = {0};
	assert_non_null(e);
	assert_int_equal(e->event, RDMA_CM_EVENT_CONNECT_REQUEST);
	assert_ptr_equal(e->listen_id, p->listen);
	assert_ptr_equal(e->id->context, p);
	assert_non_null(e->id->verbs);
	assert_int_equal(e->param.conn.private_data_len, 18);
	assert_string_equal(e->param.conn.private_data, "hello-from-client");
	p->s.id = e->id;
	rdma_ack_cm_event(e);
	if (reject) {
		assert_int_equal(rdma_reject(p->s.id, reject, (uint8_t)(strlen(reject) + 1)), 0);
		return;
	}
	p->s.ch = rdma_create_event_channel();
	assert_int_equal(rdma_migrate_id(p->s.id, p->s.ch), 0);
	p->s.id->context = &p->s;
	setup_side(&p->s, max_send_wr);
	for (int i = 0; i < nrecv; i++)
		post_recv(&p->s, 200 + (uint64_t)i, 0, 256);
	cp.private_data = "hello-from-server";
	cp.private_data_len = 18;
	assert_int_equal(rdma_accept(p->s.id, &cp), 0);
}

static void connect_pair(struct pair *p, int cnrecv, int snrecv, int smax_send_wr)
{
	struct rdma_cm_event *e;
	do_listen(p);
	client_start(p, p->port, cnrecv);
	server_take(p, snrecv, smax_send_wr, NULL);
	e = wait_ev(p->c.ch, 5000);
	assert_non_null(e);
	assert_int_equal(e->event, RDMA_CM_EVENT_ESTABLISHED);
	assert_int_equal(e->param.conn.private_data_len, 18);
	assert_string_equal(e->param.conn.private_data, "hello-from-server");
	rdma_ack_cm_event(e);
	expect_ev(p->s.ch, RDMA_CM_EVENT_ESTABLISHED);
}

static void destroy_side(struct side *s)
{
	if (!s->id)
		return;
	if (s->id->qp)
		rdma_destroy_qp(s->id);
	if (s->cq)
		assert_int_equal(ibv_destroy_cq(s->cq), 0);
	if (s->cc)
		assert_int_equal(ibv_destroy_comp_channel(s->cc), 0);
	if (s->mr) {
		assert_int_equal(ibv_dealloc_pd(s->pd), EBUSY);
		assert_int_equal(ibv_dereg_mr(s->mr), 0);
	}
	if (s->pd)
		assert_int_equal(ibv_dealloc_pd(s->pd), 0);
	rdma_destroy_id(s->id);
	if (s->ch)
		rdma_destroy_event_channel(s->ch);
	free(s->buf);
}

static void teardown_pair(struct pair *p)
{
	destroy_side(&p->c);
	destroy_side(&p->s);
	if (p->listen)
		rdma_destroy_id(p->listen);
	if (p->lch)
		rdma_destroy_event_channel(p->lch);
}

static void test_connect_pdata(void **state)
{
	struct pair p = {0};
	struct sockaddr_in *la, *pa;
	connect_pair(&p, 0, 0, 64);
	la = (struct sockaddr_in *)rdma_get_local_addr(p.c.id);
	pa = (struct sockaddr_in *)rdma_get_peer_addr(p.c.id);
	assert_int_equal(ntohs(pa->sin_port), p.port);
	assert_int_equal(rdma_get_src_port(p.c.id), la->sin_port);
	assert_int_equal(ntohs(((struct sockaddr_in *)rdma_get_local_addr(p.s.id))->sin_port),
			 p.port);
	assert_int_equal(((struct sockaddr_in *)rdma_get_peer_addr(p.s.id))->sin_port,
			 la->sin_port);
	assert_int_equal(rdma_disconnect(p.c.id), 0);
	expect_ev(p.c.ch, RDMA_CM_EVENT_DISCONNECTED);
	expect_ev(p.s.ch, RDMA_CM_EVENT_DISCONNECTED);
	assert_int_equal(rdma_disconnect(p.c.id), 0); /* again: harmless */
	assert_int_equal(rdma_disconnect(p.s.id), 0);
	teardown_pair(&p);
}

static void test_write_imm(void **state)
{
	struct pair p = {0};
	struct ibv_wc wc;
	connect_pair(&p, 0, 1, 64);
	for (int i = 0; i < 4096; i++)
		p.c.buf[8192 + i] = (char)(i * 7 + 1);
	memset(p.s.buf, 0x55, 256); /* the recv buffer: must stay untouched */
	assert_int_equal(post_write(&p.c, 1, 8192, 4096, (uintptr_t)p.s.buf + 1000, p.s.mr->rkey, 1,
				    htonl(0xdeadbeef), 1),
			 0);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_RDMA_WRITE);
	assert_int_equal(wc.wr_id, 1);
	assert_int_equal(wc.qp_num, p.c.id->qp->qp_num);
	assert_int_equal(wait_cqe(p.s.cq, &wc, 5000), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_RECV_RDMA_WITH_IMM);
	assert_true(wc.wc_flags & IBV_WC_WITH_IMM);
	assert_int_equal(wc.imm_data, htonl(0xdeadbeef));
	assert_int_equal(wc.byte_len, 4096);
	assert_int_equal(wc.wr_id, 200);
	assert_memory_equal(p.s.buf + 1000, p.c.buf + 8192, 4096);
	for (int i = 0; i < 256; i++)
		assert_int_equal((unsigned char)p.s.buf[i], 0x55);
	teardown_pair(&p);
}

static void test_send(void **state)
{
	struct pair p = {0};
	struct ibv_wc wc;
	struct ibv_sge sg[2];
	struct ibv_send_wr wr = {0}, *bad;
	connect_pair(&p, 0, 2, 64);
	memcpy(p.c.buf + 100, "abcd", 4);
	memcpy(p.c.buf + 300, "efghij", 6);
	sg[0] = (struct ibv_sge){(uintptr_t)(p.c.buf + 100), 4, p.c.mr->lkey};
	sg[1] = (struct ibv_sge){(uintptr_t)(p.c.buf + 300), 6, p.c.mr->lkey};
	wr.wr_id = 7;
	wr.sg_list = sg;
	wr.num_sge = 2;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	assert_int_equal(ibv_post_send(p.c.id->qp, &wr, &bad), 0);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_SEND);
	assert_int_equal(wc.wr_id, 7);
	assert_int_equal(wait_cqe(p.s.cq, &wc, 5000), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wc.opcode, IBV_WC_RECV);
	assert_int_equal(wc.byte_len, 10);
	assert_false(wc.wc_flags & IBV_WC_WITH_IMM);
	assert_memory_equal(p.s.buf, "abcdefghij", 10);
	/* inline: copied at post time, the buffer may change right after */
	wr.wr_id = 8;
	wr.num_sge = 1;
	wr.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
	sg[0].lkey = 0xbad; /* not checked for inline */
	assert_int_equal(ibv_post_send(p.c.id->qp, &wr, &bad), 0);
	memcpy(p.c.buf + 100, "XXXX", 4);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	assert_int_equal(wait_cqe(p.s.cq, &wc, 5000), 1);
	assert_int_equal(wc.byte_len, 4);
	assert_memory_equal(p.s.buf, "abcd", 4);
	/* too many SGEs, inline too long: EINVAL with bad_wr */
	wr.num_sge = 5;
	assert_int_equal(ibv_post_send(p.c.id->qp, &wr, &bad), EINVAL);
	assert_ptr_equal(bad, &wr);
	sg[0].length = 65;
	wr.num_sge = 1;
	assert_int_equal(ibv_post_send(p.c.id->qp, &wr, &bad), EINVAL);
	teardown_pair(&p);
}

static void test_unsignaled(void **state)
{
	struct pair p = {0};
	struct ibv_wc wc;
	connect_pair(&p, 0, 0, 16);
	for (int i = 0; i < 10; i++)
		assert_int_equal(post_write(&p.s, (uint64_t)i, 0, 64, (uintptr_t)p.c.buf + 64 * i,
					    p.c.mr->rkey, 0, 0, i == 9),
				 0);
	assert_int_equal(wait_cqe(p.s.cq, &wc, 5000), 1);
	assert_int_equal(wc.wr_id, 9);
	assert_int_equal(wc.status, IBV_WC_SUCCESS);
	expect_no_cqe(p.s.cq, 100);
	expect_no_cqe(p.c.cq, 10);
	/* unsignaled WRs hold their send queue slots until a later CQE: the 17th is refused */
	for (int i = 0; i < 16; i++)
		assert_int_equal(
		    post_write(&p.s, 50, 0, 8, (uintptr_t)p.c.buf, p.c.mr->rkey, 0, 0, 0), 0);
	usleep(50000);
	assert_int_equal(post_write(&p.s, 51, 0, 8, (uintptr_t)p.c.buf, p.c.mr->rkey, 0, 0, 1),
			 ENOMEM);
	expect_no_cqe(p.s.cq, 50);
	teardown_pair(&p);
}

static void test_bad_rkey(void **state)
{
	struct pair p = {0};
	struct ibv_wc wc;
	connect_pair(&p, 0, 2, 64);
	assert_int_equal(post_write(&p.c, 1, 0, 64, (uintptr_t)p.s.buf, p.s.mr->rkey + 1, 0, 0, 0),
			 0);
	assert_int_equal(post_write(&p.c, 2, 0, 64, (uintptr_t)p.s.buf, p.s.mr->rkey, 0, 0, 0), 0);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.wr_id, 1);
	assert_int_equal(wc.status, IBV_WC_REM_ACCESS_ERR);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.wr_id, 2);
	assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
	expect_ev(p.c.ch, RDMA_CM_EVENT_DISCONNECTED);
	expect_ev(p.s.ch, RDMA_CM_EVENT_DISCONNECTED);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(wait_cqe(p.s.cq, &wc, 5000), 1);
		assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
	}
	/* out of range on a valid rkey fails the same way (on a new connection) */
	teardown_pair(&p);
	memset(&p, 0, sizeof(p));
	connect_pair(&p, 0, 0, 64);
	assert_int_equal(
	    post_write(&p.c, 3, 0, 64, (uintptr_t)p.s.buf + BUFSZ - 32, p.s.mr->rkey, 0, 0, 1), 0);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.status, IBV_WC_REM_ACCESS_ERR);
	/* a bad lkey fails locally */
	teardown_pair(&p);
	memset(&p, 0, sizeof(p));
	connect_pair(&p, 0, 0, 64);
	struct ibv_sge sg = {(uintptr_t)p.c.buf, 64, p.c.mr->lkey + 7};
	struct ibv_send_wr wr = {.wr_id = 4, .sg_list = &sg, .num_sge = 1}, *bad;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.wr.rdma.remote_addr = (uintptr_t)p.s.buf;
	wr.wr.rdma.rkey = p.s.mr->rkey;
	assert_int_equal(ibv_post_send(p.c.id->qp, &wr, &bad), 0);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.wr_id, 4);
	assert_int_equal(wc.status, IBV_WC_LOC_PROT_ERR);
	expect_ev(p.c.ch, RDMA_CM_EVENT_DISCONNECTED);
	teardown_pair(&p);
}

static void test_rnr(void **state)
{
	struct pair p = {0};
	struct ibv_wc wc;
	connect_pair(&p, 0, 0, 64);
	assert_int_equal(post_write(&p.c, 9, 0, 64, (uintptr_t)p.s.buf, p.s.mr->rkey, 1, 5, 0), 0);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.wr_id, 9);
	assert_int_equal(wc.status, IBV_WC_RNR_RETRY_EXC_ERR);
	expect_ev(p.c.ch, RDMA_CM_EVENT_DISCONNECTED);
	expect_ev(p.s.ch, RDMA_CM_EVENT_DISCONNECTED);
	teardown_pair(&p);
}

static void test_disconnect_flush(void **state)
{
	struct pair p = {0};
	struct ibv_wc wc;
	connect_pair(&p, 2, 4, 64);
	assert_int_equal(rdma_disconnect(p.c.id), 0);
	expect_ev(p.c.ch, RDMA_CM_EVENT_DISCONNECTED);
	expect_ev(p.s.ch, RDMA_CM_EVENT_DISCONNECTED);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(wait_cqe(p.s.cq, &wc, 5000), 1);
		assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
		assert_int_equal(wc.wr_id, 200 + (uint64_t)i);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
		assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
	}
	/* posts after the error are accepted and flushed, signaled or not */
	assert_int_equal(post_write(&p.c, 77, 0, 64, (uintptr_t)p.s.buf, p.s.mr->rkey, 0, 0, 0), 0);
	assert_int_equal(wait_cqe(p.c.cq, &wc, 5000), 1);
	assert_int_equal(wc.wr_id, 77);
	assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
	post_recv(&p.s, 78, 0, 16);
	assert_int_equal(wait_cqe(p.s.cq, &wc, 5000), 1);
	assert_int_equal(wc.wr_id, 78);
	assert_int_equal(wc.status, IBV_WC_WR_FLUSH_ERR);
	assert_null(wait_ev(p.c.ch, 100)); /* DISCONNECTED only once */
	teardown_pair(&p);
}

static void test_no_listener(void **state)
{
	struct pair p = {0}, q = {0};
	struct rdma_cm_event *e;
	do_listen(&q);
	uint16_t port = q.port;
	teardown_pair(&q);
	client_start(&p, port, 0);
	e = wait_ev(p.c.ch, 5000);
	assert_non_null(e);
	assert_int_equal(e->event, RDMA_CM_EVENT_REJECTED);
	assert_int_equal(e->status, 28);
	rdma_ack_cm_event(e);
	teardown_pair(&p);
}

static void test_reject(void **state)
{
	struct pair p = {0};
	struct rdma_cm_event *e;
	do_listen(&p);
	client_start(&p, p.port, 1);
	server_take(&p, 0, 64, "go-away");
	e = wait_ev(p.c.ch, 5000);
	assert_non_null(e);
	assert_int_equal(e->event, RDMA_CM_EVENT_REJECTED);
	assert_int_equal(e->status, 28);
	assert_int_equal(e->param.conn.private_data_len, 8);
	assert_string_equal(e->param.conn.private_data, "go-away");
	rdma_ack_cm_event(e);
	rdma_destroy_id(p.s.id);
	p.s.id = NULL;
	teardown_pair(&p);
}

static void test_comp_channel(void **state)
{
	struct pair p = {0};
	struct ibv_wc wc;
	struct ibv_cq *cq;
	struct rdma_cm_event *e;
	void *ctx;
	struct pollfd pf;
	connect_pair(&p, 0, 1, 64);
	fcntl(p.s.cc->fd, F_SETFL, fcntl(p.s.cc->fd, F_GETFL) | O_NONBLOCK);
	fcntl(p.s.ch->fd, F_SETFL, fcntl(p.s.ch->fd, F_GETFL) | O_NONBLOCK);
	errno = 0;
	assert_int_equal(ibv_get_cq_event(p.s.cc, &cq, &ctx), -1);
	assert_int_equal(errno, EAGAIN);
	errno = 0;
	assert_int_equal(rdma_get_cm_event(p.s.ch, &e), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(ibv_req_notify_cq(p.s.cq, 0), 0);
	assert_int_equal(
	    post_write(&p.c, 1, 0, 16, (uintptr_t)p.s.buf + 512, p.s.mr->rkey, 1, 3, 0), 0);
	pf = (struct pollfd){.fd = p.s.cc->fd, .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 5000), 1);
	assert_int_equal(ibv_get_cq_event(p.s.cc, &cq, &ctx), 0);
	assert_ptr_equal(cq, p.s.cq);
	assert_ptr_equal(ctx, &p.s);
	ibv_ack_cq_events(cq, 1);
	assert_int_equal(ibv_poll_cq(p.s.cq, 1, &wc), 1);
	assert_int_equal(wc.opcode, IBV_WC_RECV_RDMA_WITH_IMM);
	/* disarmed now: no second event without re-arming */
	errno = 0;
	assert_int_equal(ibv_get_cq_event(p.s.cc, &cq, &ctx), -1);
	assert_int_equal(errno, EAGAIN);
	teardown_pair(&p);
}

static void test_many_streams(void **state)
{
	enum { N = 4 };
	struct pair p[N];
	struct ibv_wc wc;
	memset(p, 0, sizeof(p));
	for (int i = 0; i < N; i++)
		connect_pair(&p[i], 0, 1, 64);
	for (int i = 0; i < N; i++) {
		memset(p[i].c.buf, 'a' + i, BUFSZ);
		assert_int_equal(post_write(&p[i].c, 1, 0, BUFSZ - 1024,
					    (uintptr_t)p[i].s.buf + 1024, p[i].s.mr->rkey, 1,
					    (uint32_t)i, 1),
				 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(wait_cqe(p[i].s.cq, &wc, 5000), 1);
		assert_int_equal(wc.status, IBV_WC_SUCCESS);
		assert_int_equal(wc.imm_data, (uint32_t)i);
		assert_int_equal(p[i].s.buf[BUFSZ - 1], 'a' + i);
		assert_int_equal(wait_cqe(p[i].c.cq, &wc, 5000), 1);
	}
	for (int i = 0; i < N; i++)
		teardown_pair(&p[i]);
}

/* the real libraries are loaded, yet the calls land in fakeverbs */
static void test_interposed(void **state)
{
	void *v = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_NOLOAD);
	void *r = dlopen("librdmacm.so.1", RTLD_NOW | RTLD_NOLOAD);
	struct ibv_device_attr a;
	assert_non_null(v);
	assert_non_null(r);
	assert_ptr_not_equal(dlsym(v, "ibv_alloc_pd"), (void *)ibv_alloc_pd);
	assert_ptr_not_equal(dlsym(r, "rdma_create_id"), (void *)rdma_create_id);
	assert_ptr_equal(dlsym(RTLD_DEFAULT, "rdma_create_id"), (void *)rdma_create_id);
	dlclose(v);
	dlclose(r);
	assert_int_equal(ibv_query_device(NULL, &a), 0);
	assert_int_equal(a.max_sge, 16);
	assert_int_equal(a.max_qp_wr, 4096);
	assert_int_equal(a.max_cqe, 65536);
}

static void test_addr_error(void **state)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_id *id;
	struct sockaddr sa = {.sa_family = AF_UNIX};
	struct rdma_cm_event *e;
	assert_int_equal(rdma_create_id(ch, &id, NULL, RDMA_PS_TCP), 0);
	assert_int_equal(rdma_resolve_addr(id, NULL, &sa, 1000), 0);
	e = wait_ev(ch, 5000);
	assert_non_null(e);
	assert_int_equal(e->event, RDMA_CM_EVENT_ADDR_ERROR);
	assert_int_equal(e->status, -EADDRNOTAVAIL);
	rdma_ack_cm_event(e);
	rdma_destroy_id(id);
	rdma_destroy_event_channel(ch);
}

/* the child of test_cut_after: 20 signaled 8 KiB writes, the link is cut after 100000 bytes */
static int cut_child(void)
{
	struct pair p = {0};
	struct ibv_wc wc;
	int ok = 0, flushed = 0;
	connect_pair(&p, 0, 0, 64);
	for (int i = 0; i < 20; i++)
		if (post_write(&p.c, (uint64_t)i, 0, 8192, (uintptr_t)p.s.buf + (i % 7) * 8192,
			       p.s.mr->rkey, 0, 0, 1))
			return 2;
	for (int i = 0; i < 20; i++) {
		if (wait_cqe(p.c.cq, &wc, 5000) != 1 || wc.wr_id != (uint64_t)i)
			return 3;
		if (wc.status == IBV_WC_SUCCESS)
			ok++;
		else if (wc.status == IBV_WC_WR_FLUSH_ERR)
			flushed++;
	}
	if (ok > 12 || flushed < 8)
		return 4;
	expect_ev(p.c.ch, RDMA_CM_EVENT_DISCONNECTED);
	expect_ev(p.s.ch, RDMA_CM_EVENT_DISCONNECTED);
	teardown_pair(&p);
	return 0;
}

static const char *self_path = "/proc/self/exe";

/* GW_FAKEVERBS_CUT_AFTER is read once per process: run the scenario in a fresh one */
static void test_cut_after(void **state)
{
	int pfd[2], st = 0;
	char out[4096] = "";
	size_t n = 0;
	pid_t pid;
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		setenv("GW_FAKEVERBS_CUT_AFTER", "100000", 1);
		execl(self_path, self_path, "--cut", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
		ssize_t r;
		if (poll(&pf, 1, 15000) <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		r = read(pfd[0], out + n, sizeof(out) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("cut child: status 0x%x, stderr: %s", st, out);
	assert_non_null(strstr(out, "fakeverbs: cutting the link after 106496 bytes"));
}

int main(int argc, char **argv)
{
	if (strchr(argv[0], '/'))
		self_path = argv[0];
	if (argc > 1 && !strcmp(argv[1], "--cut"))
		return cut_child();
	{
		const struct CMUnitTest tests[] = {
		    cmocka_unit_test(test_connect_pdata),
		    cmocka_unit_test(test_write_imm),
		    cmocka_unit_test(test_send),
		    cmocka_unit_test(test_unsignaled),
		    cmocka_unit_test(test_bad_rkey),
		    cmocka_unit_test(test_rnr),
		    cmocka_unit_test(test_disconnect_flush),
		    cmocka_unit_test(test_no_listener),
		    cmocka_unit_test(test_reject),
		    cmocka_unit_test(test_comp_channel),
		    cmocka_unit_test(test_many_streams),
		    cmocka_unit_test(test_addr_error),
		    cmocka_unit_test(test_interposed),
		    cmocka_unit_test(test_cut_after),
		};
		return cmocka_run_group_tests(tests, NULL, NULL);
	}
}
