/* rdma_mem.c -- the RDMA transport's memory: one protection domain per device, shared by
 * every connection of the process, and register_mem regions registered lazily in 2 MiB
 * chunks (so guest RAM that is never sent is never pinned), shared by all data streams. */
#include "rdma_int.h"

#include <errno.h>
#include <stdlib.h>

struct pd_ent {
	struct ibv_context *verbs;
	struct ibv_pd *pd;
	unsigned refs;
};

struct gw_rdma_region {
	struct ibv_pd *pd;
	uint8_t *addr;
	size_t len;
	unsigned refs; /* under mem_lock */
	size_t nchunks;
	struct ibv_mr **chunk; /* [nchunks], NULL until first used; under mem_lock */
};

#define MAX_PDS	    8
#define MAX_REGIONS 64

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pd_ent pds[MAX_PDS];
static struct gw_rdma_region *regions[MAX_REGIONS];

struct ibv_pd *gw_rdma_pd_get(struct ibv_context *verbs)
{
	struct ibv_pd *pd = NULL;
	pthread_mutex_lock(&mem_lock);
	for (unsigned i = 0; i < MAX_PDS; i++) {
		if (pds[i].refs && pds[i].verbs == verbs) {
			pds[i].refs++;
			pd = pds[i].pd;
			goto out;
		}
	}
	for (unsigned i = 0; i < MAX_PDS; i++) {
		if (!pds[i].refs) {
			pd = ibv_alloc_pd(verbs);
			if (pd)
				pds[i] = (struct pd_ent){.verbs = verbs, .pd = pd, .refs = 1};
			goto out;
		}
	}
	errno = ENOSPC;
out:
	pthread_mutex_unlock(&mem_lock);
	return pd;
}

void gw_rdma_pd_put(struct ibv_pd *pd)
{
	if (!pd)
		return;
	pthread_mutex_lock(&mem_lock);
	for (unsigned i = 0; i < MAX_PDS; i++) {
		if (pds[i].refs && pds[i].pd == pd) {
			if (--pds[i].refs == 0)
				ibv_dealloc_pd(pd);
			break;
		}
	}
	pthread_mutex_unlock(&mem_lock);
}

struct gw_rdma_region *gw_rdma_region_get(struct ibv_pd *pd, void *addr, size_t len)
{
	struct gw_rdma_region *r = NULL;
	int slot = -1;
	pthread_mutex_lock(&mem_lock);
	for (int i = 0; i < MAX_REGIONS; i++) {
		struct gw_rdma_region *x = regions[i];
		if (!x) {
			if (slot < 0)
				slot = i;
			continue;
		}
		if (x->pd == pd && x->addr == addr && x->len == len) {
			x->refs++;
			r = x;
			goto out;
		}
	}
	if (slot < 0) {
		errno = ENOSPC;
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out;
	r->pd = pd;
	r->addr = addr;
	r->len = len;
	r->refs = 1;
	r->nchunks = (len + (1ul << GW_RDMA_CHUNK_SHIFT) - 1) >> GW_RDMA_CHUNK_SHIFT;
	r->chunk = calloc(r->nchunks ? r->nchunks : 1, sizeof(*r->chunk));
	if (!r->chunk) {
		free(r);
		r = NULL;
		goto out;
	}
	regions[slot] = r;
out:
	pthread_mutex_unlock(&mem_lock);
	return r;
}

void gw_rdma_region_put(struct gw_rdma_region *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&mem_lock);
	if (--r->refs == 0) {
		for (int i = 0; i < MAX_REGIONS; i++)
			if (regions[i] == r)
				regions[i] = NULL;
		for (size_t i = 0; i < r->nchunks; i++)
			if (r->chunk[i])
				ibv_dereg_mr(r->chunk[i]);
		free(r->chunk);
		free(r);
	}
	pthread_mutex_unlock(&mem_lock);
}

int gw_rdma_region_lkey(struct gw_rdma_region *const *rs, unsigned n, const uint8_t *p, size_t *len,
			uint32_t *lkey)
{
	for (unsigned i = 0; i < n; i++) {
		struct gw_rdma_region *r = rs[i];
		if (p < r->addr || p >= r->addr + r->len)
			continue;
		size_t off = (size_t)(p - r->addr), ci = off >> GW_RDMA_CHUNK_SHIFT;
		size_t cstart = ci << GW_RDMA_CHUNK_SHIFT;
		size_t cend = cstart + (1ul << GW_RDMA_CHUNK_SHIFT);
		if (cend > r->len)
			cend = r->len;
		if (*len > cend - off)
			*len = cend - off;
		pthread_mutex_lock(&mem_lock);
		struct ibv_mr *mr = r->chunk[ci];
		if (!mr) {
			/* local read access only: the source of sends, never written remotely */
			mr = ibv_reg_mr(r->pd, r->addr + cstart, cend - cstart, 0);
			r->chunk[ci] = mr;
		}
		pthread_mutex_unlock(&mem_lock);
		if (!mr)
			return errno ? -errno : -ENOMEM;
		*lkey = mr->lkey;
		return 0;
	}
	return -ENOENT;
}

/* expose_mem registrations: one MR per (pd, addr, len), remote-writable, reference counted */
struct exposed_ent {
	struct ibv_mr *mr;
	unsigned refs;
};
static struct exposed_ent exposed[MAX_REGIONS];

struct ibv_mr *gw_rdma_exposed_get(struct ibv_pd *pd, void *addr, size_t len)
{
	struct ibv_mr *mr = NULL;
	int slot = -1;
	pthread_mutex_lock(&mem_lock);
	for (int i = 0; i < MAX_REGIONS; i++) {
		struct ibv_mr *x = exposed[i].mr;
		if (!x) {
			if (slot < 0)
				slot = i;
		} else if (x->pd == pd && x->addr == addr && x->length == len) {
			exposed[i].refs++;
			mr = x;
			goto out;
		}
	}
	if (slot < 0) {
		errno = ENOSPC;
		goto out;
	}
	mr = ibv_reg_mr(pd, addr, len, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (mr)
		exposed[slot] = (struct exposed_ent){.mr = mr, .refs = 1};
out:
	pthread_mutex_unlock(&mem_lock);
	return mr;
}

void gw_rdma_exposed_put(struct ibv_mr *mr)
{
	if (!mr)
		return;
	pthread_mutex_lock(&mem_lock);
	for (int i = 0; i < MAX_REGIONS; i++) {
		if (exposed[i].mr == mr && --exposed[i].refs == 0) {
			ibv_dereg_mr(mr);
			exposed[i].mr = NULL;
		}
	}
	pthread_mutex_unlock(&mem_lock);
}
