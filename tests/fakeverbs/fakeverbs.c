/* fakeverbs: a software RDMA provider in user space, verbs part.
 * The one fake device/context per process ("gwfake0") whose ops table carries the inline verbs
 * (post_send/post_recv/poll_cq/req_notify_cq), protection domains, the process-wide memory
 * region table (lkey == rkey), completion queues and completion channels (a pipe carrying the
 * armed CQ's pointer). Replaces libibverbs' functions by name: link the static library into a
 * test or LD_PRELOAD the shared one. */
#include "fakeverbs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fv_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
static int fv_req_notify_cq(struct ibv_cq *cq, int solicited_only);

static struct ibv_device fv_dev = {
    .node_type = IBV_NODE_CA,
    .transport_type = IBV_TRANSPORT_IB,
    .name = "gwfake0",
    .dev_name = "uverbs0",
    .dev_path = "/sys/class/infiniband_verbs/uverbs0",
    .ibdev_path = "/sys/class/infiniband/gwfake0",
};

static struct ibv_context fv_ctx = {
    .device = &fv_dev,
    .ops =
	{
	    .poll_cq = fv_poll_cq,
	    .req_notify_cq = fv_req_notify_cq,
	    .post_send = fv_qp_post_send,
	    .post_recv = fv_qp_post_recv,
	},
    .cmd_fd = -1,
    .async_fd = -1,
    .num_comp_vectors = 1,
    .mutex = PTHREAD_MUTEX_INITIALIZER,
};

struct ibv_context *fv_context(void)
{
	return &fv_ctx;
}

const char *ibv_get_device_name(struct ibv_device *device)
{
	return device ? device->name : NULL;
}

int ibv_query_device(struct ibv_context *context, struct ibv_device_attr *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->fw_ver, sizeof(a->fw_ver), "gwfake-1.0");
	a->node_guid = htobe64(0x00000000fa4e0001ULL);
	a->sys_image_guid = a->node_guid;
	a->max_mr_size = UINT64_MAX;
	a->page_size_cap = 0xfffff000;
	a->vendor_id = 0x1234;
	a->vendor_part_id = 1;
	a->hw_ver = 1;
	a->max_qp = 65536;
	a->max_qp_wr = FV_MAX_WR;
	a->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN;
	a->max_sge = FV_MAX_SGE;
	a->max_sge_rd = FV_MAX_SGE;
	a->max_cq = 65536;
	a->max_cqe = 65536;
	a->max_mr = 1 << 20;
	a->max_pd = 65536;
	a->max_qp_rd_atom = 16;
	a->max_ee_rd_atom = 0;
	a->max_res_rd_atom = 16 * 65536;
	a->max_qp_init_rd_atom = 16;
	a->atomic_cap = IBV_ATOMIC_NONE;
	a->max_srq = 0;
	a->max_pkeys = 1;
	a->local_ca_ack_delay = 16;
	a->phys_port_cnt = 1;
	return 0;
}

/* ---- protection domains ---- */

struct ibv_pd *ibv_alloc_pd(struct ibv_context *context)
{
	struct fv_pd *p = calloc(1, sizeof(*p));
	static int handle;
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->pd.context = context ? context : &fv_ctx;
	p->pd.handle = (uint32_t)__atomic_add_fetch(&handle, 1, __ATOMIC_SEQ_CST);
	return &p->pd;
}

int ibv_dealloc_pd(struct ibv_pd *pd)
{
	struct fv_pd *p = fv_container_of(pd, struct fv_pd, pd);
	if (__atomic_load_n(&p->users, __ATOMIC_SEQ_CST) > 0)
		return EBUSY;
	free(p);
	return 0;
}

/* ---- memory regions: one process-wide table, keys unique ---- */

struct fv_mr {
	struct ibv_mr mr;
	uint64_t iova;
	int access;
	struct fv_mr *next;
};

static pthread_mutex_t fv_mr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fv_mr *fv_mrs;
static uint32_t fv_next_key = 0x1000;

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
				unsigned int access)
{
	struct fv_mr *m;
	if (!pd || (!addr && length)) {
		errno = EINVAL;
		return NULL;
	}
	/* remote write needs local write, as on real devices */
	if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IBV_ACCESS_LOCAL_WRITE)) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		errno = ENOMEM;
		return NULL;
	}
	m->mr.context = pd->context;
	m->mr.pd = pd;
	m->mr.addr = addr;
	m->mr.length = length;
	m->iova = iova;
	m->access = (int)access;
	pthread_mutex_lock(&fv_mr_lock);
	fv_next_key += 0x101;
	m->mr.handle = fv_next_key;
	m->mr.lkey = fv_next_key;
	m->mr.rkey = fv_next_key;
	m->next = fv_mrs;
	fv_mrs = m;
	pthread_mutex_unlock(&fv_mr_lock);
	__atomic_add_fetch(&fv_container_of(pd, struct fv_pd, pd)->users, 1, __ATOMIC_SEQ_CST);
	return &m->mr;
}

/* the header's ibv_reg_mr is a macro: parenthesize the name to define the real symbol */
struct ibv_mr *(ibv_reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	return ibv_reg_mr_iova2(pd, addr, length, (uintptr_t)addr, (unsigned)access);
}

struct ibv_mr *(ibv_reg_mr_iova)(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
				 int access)
{
	return ibv_reg_mr_iova2(pd, addr, length, iova, (unsigned)access);
}

int ibv_dereg_mr(struct ibv_mr *mr)
{
	struct fv_mr **pp, *m = fv_container_of(mr, struct fv_mr, mr);
	pthread_mutex_lock(&fv_mr_lock);
	for (pp = &fv_mrs; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&fv_mr_lock);
	__atomic_sub_fetch(&fv_container_of(mr->pd, struct fv_pd, pd)->users, 1, __ATOMIC_SEQ_CST);
	free(m);
	return 0;
}

int fv_mr_lookup(uint32_t key, struct fv_mr_info *out)
{
	struct fv_mr *m;
	int found = 0;
	pthread_mutex_lock(&fv_mr_lock);
	for (m = fv_mrs; m; m = m->next) {
		if (m->mr.lkey == key) {
			out->pd = m->mr.pd;
			out->addr = m->mr.addr;
			out->iova = m->iova;
			out->length = m->mr.length;
			out->access = m->access;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&fv_mr_lock);
	return found ? 0 : -1;
}

/* A channel's pipe: the read end is the fd users poll, the write end never blocks. */
int fv_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	return 0;
}

/* ---- completion channels and queues ---- */

struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *context)
{
	struct fv_cc *c = calloc(1, sizeof(*c));
	int p[2];
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	if (fv_pipe(p) < 0) {
		free(c);
		return NULL;
	}
	c->ch.context = context ? context : &fv_ctx;
	c->ch.fd = p[0];
	c->wfd = p[1];
	return &c->ch;
}

int ibv_destroy_comp_channel(struct ibv_comp_channel *channel)
{
	struct fv_cc *c = fv_container_of(channel, struct fv_cc, ch);
	close(c->ch.fd);
	close(c->wfd);
	free(c);
	return 0;
}

struct ibv_cq *ibv_create_cq(struct ibv_context *context, int cqe, void *cq_context,
			     struct ibv_comp_channel *channel, int comp_vector)
{
	struct fv_cq *q;
	if (cqe < 1 || cqe > 65536) {
		errno = EINVAL;
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q || !(q->ring = calloc((size_t)cqe, sizeof(*q->ring)))) {
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	q->cap = (unsigned)cqe;
	pthread_mutex_init(&q->lock, NULL);
	q->cq.context = context ? context : &fv_ctx;
	q->cq.channel = channel;
	q->cq.cq_context = cq_context;
	q->cq.cqe = cqe;
	return &q->cq;
}

int ibv_destroy_cq(struct ibv_cq *cq)
{
	struct fv_cq *q = fv_container_of(cq, struct fv_cq, cq);
	if (__atomic_load_n(&q->users, __ATOMIC_SEQ_CST) > 0)
		return EBUSY;
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q);
	return 0;
}

void fv_cq_push(struct ibv_cq *cq, const struct ibv_wc *wc)
{
	struct fv_cq *q = fv_container_of(cq, struct fv_cq, cq);
	pthread_mutex_lock(&q->lock);
	if (q->count == q->cap) {
		/* a real CQ would overrun (async error); keep the completion and say so once */
		unsigned ncap = q->cap * 2, i;
		struct ibv_wc *n = calloc(ncap, sizeof(*n));
		if (!q->warned)
			fprintf(stderr,
				"fakeverbs: CQ %p overrun (%u entries): caller's CQ too small\n",
				(void *)cq, q->cap);
		q->warned = 1;
		if (!n) {
			pthread_mutex_unlock(&q->lock);
			return;
		}
		for (i = 0; i < q->count; i++)
			n[i] = q->ring[(q->head + i) % q->cap];
		free(q->ring);
		q->ring = n;
		q->head = 0;
		q->cap = ncap;
	}
	q->ring[(q->head + q->count) % q->cap] = *wc;
	q->count++;
	if (q->armed && cq->channel) {
		struct fv_cc *c = fv_container_of(cq->channel, struct fv_cc, ch);
		struct ibv_cq *p = cq;
		q->armed = 0;
		if (write(c->wfd, &p, sizeof(p)) != sizeof(p))
			fprintf(stderr, "fakeverbs: completion channel full\n");
	}
	pthread_mutex_unlock(&q->lock);
}

static int fv_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	struct fv_cq *q = fv_container_of(cq, struct fv_cq, cq);
	int i = 0;
	pthread_mutex_lock(&q->lock);
	while (i < n && q->count) {
		wc[i++] = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
	pthread_mutex_unlock(&q->lock);
	return i;
}

static int fv_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
	struct fv_cq *q = fv_container_of(cq, struct fv_cq, cq);
	pthread_mutex_lock(&q->lock);
	q->armed = 1;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

int ibv_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq, void **cq_context)
{
	struct ibv_cq *p;
	ssize_t r = read(channel->fd, &p, sizeof(p));
	if (r != sizeof(p)) {
		if (r >= 0)
			errno = EIO;
		return -1;
	}
	*cq = p;
	*cq_context = p->cq_context;
	return 0;
}

void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
	struct fv_cq *q = fv_container_of(cq, struct fv_cq, cq);
	pthread_mutex_lock(&q->lock);
	cq->comp_events_completed += nevents;
	pthread_mutex_unlock(&q->lock);
}

const char *ibv_wc_status_str(enum ibv_wc_status status)
{
	static const char *const s[] = {
	    [IBV_WC_SUCCESS] = "success",
	    [IBV_WC_LOC_LEN_ERR] = "local length error",
	    [IBV_WC_LOC_QP_OP_ERR] = "local QP operation error",
	    [IBV_WC_LOC_EEC_OP_ERR] = "local EE context operation error",
	    [IBV_WC_LOC_PROT_ERR] = "local protection error",
	    [IBV_WC_WR_FLUSH_ERR] = "Work Request Flushed Error",
	    [IBV_WC_MW_BIND_ERR] = "memory management operation error",
	    [IBV_WC_BAD_RESP_ERR] = "bad response error",
	    [IBV_WC_LOC_ACCESS_ERR] = "local access error",
	    [IBV_WC_REM_INV_REQ_ERR] = "remote invalid request error",
	    [IBV_WC_REM_ACCESS_ERR] = "remote access error",
	    [IBV_WC_REM_OP_ERR] = "remote operation error",
	    [IBV_WC_RETRY_EXC_ERR] = "transport retry counter exceeded",
	    [IBV_WC_RNR_RETRY_EXC_ERR] = "RNR retry counter exceeded",
	    [IBV_WC_LOC_RDD_VIOL_ERR] = "local RDD violation error",
	    [IBV_WC_REM_INV_RD_REQ_ERR] = "remote invalid RD request",
	    [IBV_WC_REM_ABORT_ERR] = "aborted error",
	    [IBV_WC_INV_EECN_ERR] = "invalid EE context number",
	    [IBV_WC_INV_EEC_STATE_ERR] = "invalid EE context state",
	    [IBV_WC_FATAL_ERR] = "fatal error",
	    [IBV_WC_RESP_TIMEOUT_ERR] = "response timeout error",
	    [IBV_WC_GENERAL_ERR] = "general error",
	    [IBV_WC_TM_ERR] = "TM error",
	    [IBV_WC_TM_RNDV_INCOMPLETE] = "TM software rendezvous",
	};
	if ((unsigned)status < sizeof(s) / sizeof(s[0]) && s[status])
		return s[status];
	return "unknown";
}
