/* libvirt_migrate.c -- live migration of libvirt domains. The source agent asks the
 * destination agent first (authenticated BEGIN, driver "libvirt": the destination checks
 * the VM fits, records it as arriving and answers with its libvirtd's URIs), then libvirt
 * moves the domain peer to peer: virDomainMigrateToURI3 with LIVE | PEER2PEER |
 * PERSIST_DEST | UNDEFINE_SOURCE | AUTO_CONVERGE (+ PARALLEL with N connections, POSTCOPY
 * when allowed, NON_SHARED_DISK for --copy-storage), in a thread of its own. The loop
 * samples virDomainGetJobStats into the same GwMigProgress record micro-VMs report, switches
 * to post-copy when allowed and pre-copy is not converging, and cancels with
 * virDomainAbortJob. Downtime is what the source observes: from libvirt pausing the domain
 * for the switchover (SUSPENDED_MIGRATED) to handing it over (STOPPED_MIGRATED), an upper
 * bound of the guest's pause. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_auth.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_transport.h"
#include "libvirt_int.h"
#include "migrate.h"
#include "vmtable.h"

#define SUBSYS		  "libvirt"
#define PEER_TIMEOUT_MS	  5000
#define INCOMING_GRACE_MS 30000
#define PAGE		  4096ull
#define OUTCOME_PERIOD_MS 1000
#define SAMPLE_MS	  200

/* ---- progress records ---- */

static GwMigProgress *pr_clone(const GwMigProgress *src)
{
	size_t len = gw_mig_progress__get_packed_size(src);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return NULL;
	gw_mig_progress__pack(src, buf);
	GwMigProgress *p = gw_mig_progress__unpack(NULL, len, buf);
	free(buf);
	return p;
}

static void typed_u64(virTypedParameterPtr p, int n, const char *name, protobuf_c_boolean *has,
		      uint64_t *v)
{
	unsigned long long x;
	if (virTypedParamsGetULLong(p, n, name, &x) == 1) {
		*has = true;
		*v = x;
	}
}

/* Sample the running job into m->last (the sampler thread: a job query can take seconds
 * while QEMU migrates, so the agent's loop never makes one). */
static void sample(struct gw_lv_mig *m)
{
	virTypedParameterPtr p = NULL;
	int n = 0, type = 0;
	if (virDomainGetJobStats(m->dom, &type, &p, &n, 0) < 0 || type == VIR_DOMAIN_JOB_NONE) {
		virTypedParamsFree(p, n);
		return;
	}
	GwMigProgress sample = GW_MIG_PROGRESS__INIT, *l = &sample;
	uint64_t iter = 0, rem = 0, tot = 0, bps = 0, dt = 0, thr = 0;
	protobuf_c_boolean h_iter = 0, h_rem = 0, h_tot = 0, h_bps = 0, h_dt = 0, h_thr = 0;
	typed_u64(p, n, VIR_DOMAIN_JOB_DATA_PROCESSED, &l->has_bytes_transferred,
		  &l->bytes_transferred);
	typed_u64(p, n, VIR_DOMAIN_JOB_MEMORY_NORMAL, &l->has_pages_sent, &l->pages_sent);
	typed_u64(p, n, VIR_DOMAIN_JOB_MEMORY_CONSTANT, &l->has_pages_zero, &l->pages_zero);
	typed_u64(p, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &l->has_dirty_rate_pps,
		  &l->dirty_rate_pps);
	typed_u64(p, n, VIR_DOMAIN_JOB_MEMORY_ITERATION, &h_iter, &iter);
	typed_u64(p, n, VIR_DOMAIN_JOB_MEMORY_REMAINING, &h_rem, &rem);
	typed_u64(p, n, VIR_DOMAIN_JOB_MEMORY_TOTAL, &h_tot, &tot);
	typed_u64(p, n, VIR_DOMAIN_JOB_MEMORY_BPS, &h_bps, &bps);
	typed_u64(p, n, VIR_DOMAIN_JOB_DOWNTIME, &h_dt, &dt);
	int t32 = 0;
	if (virTypedParamsGetInt(p, n, VIR_DOMAIN_JOB_AUTO_CONVERGE_THROTTLE, &t32) == 1) {
		h_thr = 1;
		thr = (uint64_t)t32;
	}
	virTypedParamsFree(p, n);
	l->has_round = h_iter;
	l->round = (uint32_t)iter + 1;
	l->has_pages_remaining = h_rem;
	l->pages_remaining = rem / PAGE;
	l->has_pages_total = h_tot;
	l->pages_total = tot / PAGE;
	l->has_throughput_mbps = h_bps;
	l->throughput_mbps = (double)bps * 8 / 1e6;
	l->has_expected_downtime_ms = h_dt;
	l->expected_downtime_ms = (double)dt;
	l->has_throttle_pct = h_thr;
	l->throttle_pct = (uint32_t)thr;
	pthread_mutex_lock(&m->lock);
	m->last = sample;
	m->have_last = true;
	pthread_mutex_unlock(&m->lock);
}

/* The record of m as it stands (the loop thread). */
static GwMigProgress *mig_record(struct gw_lv_mig *m)
{
	pthread_mutex_lock(&m->lock);
	GwMigProgress r = m->last;
	bool done = m->done, cancelled = m->cancelled, abort_req = m->abort_req;
	int rc = m->rc;
	unsigned long long ended = m->ended_ms;
	pthread_mutex_unlock(&m->lock);
	r.name = (char *)m->name;
	r.role = "source";
	r.peer = (char *)m->to;
	r.transport = "libvirt";
	r.has_migration_id = true;
	r.migration_id = m->id;
	r.has_started_at_ms = true;
	r.started_at_ms = m->started_wall_ms;
	r.has_total_ms = true;
	r.total_ms = (done ? ended : gw_now_mono_ms()) - m->started_ms;
	if (!done) {
		r.result = "running";
		r.phase = abort_req		? "cancelling"
			  : m->suspended_ms	? "switchover"
			  : m->postcopy_started ? "postcopy"
						: "iterate";
	} else if (rc == 0) {
		r.result = "completed";
		r.phase = "done";
		r.has_pages_remaining = true;
		r.pages_remaining = 0;
		if (m->suspended_ms) {
			unsigned long long end = m->stopped_ms ? m->stopped_ms : ended;
			r.has_downtime_ms = true;
			r.downtime_ms = (double)(end - m->suspended_ms);
		}
		if (r.total_ms && r.has_bytes_transferred) {
			r.has_throughput_mbps = true;
			r.throughput_mbps =
			    (double)r.bytes_transferred * 8 / 1e3 / (double)r.total_ms;
		}
	} else {
		r.result = cancelled ? "cancelled" : "failed";
		r.phase = "aborted";
		r.error = (char *)m->error;
	}
	return pr_clone(&r);
}

/* ---- source ---- */

struct gw_lv_mig *gw_lv_mig_find(struct gw_lv *lv, const char *name)
{
	for (struct gw_lv_mig *m = lv ? lv->migs : NULL; m; m = m->next)
		if (!strcmp(m->name, name))
			return m;
	return NULL;
}

struct mig_args {
	struct gw_lv_mig *m;
	char dconnuri[256];
	virTypedParameterPtr params;
	int nparams;
	unsigned flags;
};

static void *mig_thread(void *arg)
{
	struct mig_args *a = arg;
	struct gw_lv_mig *m = a->m;
	int rc = virDomainMigrateToURI3(m->dom, a->dconnuri, a->params, a->nparams, a->flags);
	pthread_mutex_lock(&m->lock);
	m->rc = rc < 0 ? -EIO : 0;
	if (rc < 0)
		snprintf(m->error, sizeof(m->error), "libvirt: %s", gw_lv_errmsg());
	m->ended_ms = gw_now_mono_ms();
	m->done = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	gw_lv_push(m->lv, m->name, GW_LV_EV_MIG_DONE, 0);
	virTypedParamsFree(a->params, a->nparams);
	free(a);
	return NULL;
}

static void maybe_postcopy(struct gw_lv_mig *m);

/* Every SAMPLE_MS while the migration runs: the job's statistics, the switch to post-copy
 * when due, and a cancel the loop asked for (virDomainAbortJob). */
static void *sampler_thread(void *arg)
{
	struct gw_lv_mig *m = arg;
	bool aborted = false;
	for (;;) {
		pthread_mutex_lock(&m->lock);
		bool done = m->done, abort_req = m->abort_req;
		pthread_mutex_unlock(&m->lock);
		if (done)
			break;
		if (abort_req && !aborted) {
			aborted = true;
			if (virDomainAbortJob(m->dom) < 0)
				gw_warn(SUBSYS, "vm '%s': libvirt cannot abort the migration: %s",
					m->name, gw_lv_errmsg());
		}
		sample(m);
		maybe_postcopy(m);
		/* until the next sample, or at once when the migration thread ends */
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += SAMPLE_MS * 1000000L;
		dl.tv_sec += dl.tv_nsec / 1000000000L;
		dl.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&m->lock);
		while (!m->done && !m->abort_req_new &&
		       pthread_cond_timedwait(&m->wake, &m->lock, &dl) == 0)
			;
		m->abort_req_new = false;
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

/* BEGIN to the destination agent; its libvirt URIs come back. */
static int ask_destination(struct gw_agent *ag, struct gw_vm *vm, const GwVmMigrateReq *req,
			   uint64_t id, char *uri, char *muri, size_t len, char *err, size_t errlen)
{
	struct gw_transport_opts o = {.timeout_ms = PEER_TIMEOUT_MS};
	struct gw_conn *c = NULL;
	uint16_t type = 0;
	uint8_t *p = NULL;
	uint32_t plen = 0;
	int r = gw_auth_connect(&gw_transport_tcp, req->to, &o, ag->tls, ag->key, ag->keylen, &c);
	if (r) {
		snprintf(err, errlen, "cannot reach the destination agent %s: %s", req->to,
			 gw_auth_strerror(r));
		return r;
	}
	GwMigBegin b = GW_MIG_BEGIN__INIT;
	b.version = GW_MIG_VERSION;
	b.migration_id = id;
	b.name = vm->name;
	b.memory_mib = vm->memory_mib;
	b.vcpus = vm->vcpus;
	b.image = "";
	b.streams = req->streams ? req->streams : 1;
	b.page_size = 4096;
	b.source_listen = ag->peer_addr;
	b.source_node = ag->cfg.node;
	b.has_timeout_s = true;
	b.timeout_s = req->timeout_s;
	b.driver = "libvirt";
	if (!r)
		r = gw_mig_send(c, GW_MIG_MSG_TYPE__GW_MIG_BEGIN, &b.base);
	if (!r)
		r = gw_mig_recv(c, &type, &p, &plen);
	gw_conn_close(c);
	GwMigBeginReply *rep = !r && type == GW_MIG_MSG_TYPE__GW_MIG_BEGIN_REPLY
				   ? gw_mig_begin_reply__unpack(NULL, plen, p)
				   : NULL;
	free(p);
	if (!rep) {
		snprintf(err, errlen, "destination %s: %s", req->to,
			 r == -EACCES ? "authentication failed (wrong cluster key)"
			 : r	      ? strerror(-r)
				      : "malformed reply to BEGIN");
		return r ? r : -EPROTO;
	}
	if (!rep->ok || !rep->libvirt_uri || !rep->libvirt_migrate_uri) {
		snprintf(err, errlen, "destination refused: %s",
			 rep->error ? rep->error : "no libvirt URIs in its reply");
		gw_mig_begin_reply__free_unpacked(rep, NULL);
		return -ECONNREFUSED;
	}
	snprintf(uri, len, "%s", rep->libvirt_uri);
	snprintf(muri, len, "%s", rep->libvirt_migrate_uri);
	gw_mig_begin_reply__free_unpacked(rep, NULL);
	return 0;
}

static struct mig_args *mig_args_new(struct gw_lv_mig *m, const GwVmMigrateReq *req,
				     const char *uri, const char *muri, bool unsafe)
{
	struct mig_args *a = calloc(1, sizeof(*a));
	int max = 0;
	if (!a)
		return NULL;
	a->m = m;
	snprintf(a->dconnuri, sizeof(a->dconnuri), "%s", uri);
	a->flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
		   VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_AUTO_CONVERGE;
	virTypedParamsAddString(&a->params, &a->nparams, &max, VIR_MIGRATE_PARAM_URI, muri);
	if (req->bandwidth_mibps)
		virTypedParamsAddULLong(&a->params, &a->nparams, &max, VIR_MIGRATE_PARAM_BANDWIDTH,
					req->bandwidth_mibps);
	if (req->streams > 1) {
		a->flags |= VIR_MIGRATE_PARALLEL;
		virTypedParamsAddInt(&a->params, &a->nparams, &max,
				     VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, (int)req->streams);
	}
	if (req->has_postcopy && req->postcopy)
		a->flags |= VIR_MIGRATE_POSTCOPY;
	if (req->has_copy_storage && req->copy_storage)
		a->flags |= VIR_MIGRATE_NON_SHARED_DISK;
	if (unsafe)
		a->flags |= VIR_MIGRATE_UNSAFE;
	return a;
}

int gw_lv_migrate_out(struct gw_agent *ag, struct gw_vm *vm, const GwVmMigrateReq *req, uint64_t id,
		      GwMigProgress **out, char *err, size_t errlen)
{
	struct gw_lv *lv = gw_lv_of(ag);
	char uri[256], muri[256];
	int rc = 0;
	if (gw_lv_mig_find(lv, vm->name)) {
		snprintf(err, errlen, "vm '%s' is migrating already", vm->name);
		return -EBUSY;
	}
	virDomainPtr d = gw_lv_domain(lv, vm, &rc, err, errlen);
	if (!d)
		return rc;
	if ((rc = ask_destination(ag, vm, req, id, uri, muri, sizeof(uri), err, errlen)) != 0) {
		virDomainFree(d);
		return rc;
	}
	struct gw_lv_mig *m = calloc(1, sizeof(*m));
	struct mig_args *a =
	    m ? mig_args_new(m, req, uri, muri, ag->cfg.libvirt_migrate_unsafe) : NULL;
	if (!a) {
		free(m);
		virDomainFree(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(m->name, sizeof(m->name), "%s", vm->name);
	snprintf(m->to, sizeof(m->to), "%s", req->to);
	m->lv = lv;
	m->id = id;
	m->dom = d;
	m->streams = req->streams;
	m->postcopy_allowed = a->flags & VIR_MIGRATE_POSTCOPY;
	m->started_ms = gw_now_mono_ms();
	m->started_wall_ms = gw_now_wall_ms();
	gw_mig_progress__init(&m->last);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	if (req->downtime_ms && virDomainMigrateSetMaxDowntime(d, req->downtime_ms, 0) < 0)
		gw_warn(SUBSYS, "vm '%s': downtime limit %u ms not set: %s", vm->name,
			req->downtime_ms, gw_lv_errmsg());
	if (pthread_create(&m->thread, NULL, mig_thread, a)) {
		virTypedParamsFree(a->params, a->nparams);
		free(a);
		virDomainFree(d);
		free(m);
		snprintf(err, errlen, "cannot start the migration thread");
		return -EAGAIN;
	}
	m->sampler_up = pthread_create(&m->sampler, NULL, sampler_thread, m) == 0;
	m->next = lv->migs;
	lv->migs = m;
	gw_info(SUBSYS, "vm '%s': libvirt migration to %s (%s, data %s, flags 0x%x)", vm->name,
		req->to, uri, muri, a->flags);
	*out = mig_record(m);
	return *out ? 0 : -ENOMEM;
}

/* Keep name's final record (replacing an older one). */
static void result_put(struct gw_lv *lv, const char *name, GwMigProgress *pr)
{
	struct gw_lv_result **pp = &lv->results;
	for (; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->name, name))
			break;
	struct gw_lv_result *r = *pp;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r) {
			gw_mig_progress__free_unpacked(pr, NULL);
			return;
		}
		snprintf(r->name, sizeof(r->name), "%s", name);
		*pp = r;
	} else if (r->pr) {
		gw_mig_progress__free_unpacked(r->pr, NULL);
	}
	r->pr = pr;
}

static void mig_free(struct gw_lv *lv, struct gw_lv_mig *m)
{
	for (struct gw_lv_mig **pp = &lv->migs; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	pthread_join(m->thread, NULL);
	if (m->sampler_up)
		pthread_join(m->sampler, NULL);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	virDomainFree(m->dom);
	free(m);
}

/* The thread has ended: the VM now lives on the destination, or still here. */
static void mig_settle(struct gw_agent *ag, struct gw_lv *lv, struct gw_vm *vm, struct gw_lv_mig *m)
{
	GwMigProgress *pr = mig_record(m);
	if (m->rc == 0) {
		/* what the destination is told if it asks (agent_migrate.c answers from here) */
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/migrations", ag->cfg.state_dir);
		gw_mkdir_p(path, 0700);
		snprintf(path, sizeof(path), "%s/migrations/%llu", ag->cfg.state_dir,
			 (unsigned long long)m->id);
		if (gw_file_write_atomic(path, "committed\n", 10, 0600))
			gw_warn(SUBSYS, "vm '%s': cannot record the commit in %s", vm->name, path);
		vm->state = GW_VM_STOPPED;
		vm->mig_handed_over = 1;
		snprintf(vm->reason, sizeof(vm->reason), "migrated to %s (migration %llu)", m->to,
			 (unsigned long long)m->id);
		gw_info(SUBSYS, "vm '%s': migration to %s completed in %llu ms", vm->name, m->to,
			m->ended_ms - m->started_ms);
	} else {
		char err[256];
		vm->state = GW_VM_RUNNING; /* libvirt keeps (or resumes) it on the source */
		vm->mig_id = 0;
		gw_warn(SUBSYS, "vm '%s': migration to %s %s: %s", vm->name, m->to,
			m->cancelled ? "cancelled" : "failed", m->error);
		gw_lv_attach(ag, vm);
		(void)err;
	}
	if (pr)
		result_put(lv, vm->name, pr);
	mig_free(lv, m);
	gw_vmtable_save_state(&ag->vms, vm);
}

/* Post-copy, when allowed: once a full pass is done and the guest dirties memory about as
 * fast as the link carries it (pre-copy would not converge), or after 4 passes. */
static void maybe_postcopy(struct gw_lv_mig *m)
{
	pthread_mutex_lock(&m->lock);
	GwMigProgress last = m->last;
	pthread_mutex_unlock(&m->lock);
	const GwMigProgress *l = &last;
	if (!m->postcopy_allowed || m->postcopy_started || !l->has_round || l->round < 2)
		return;
	double dirty_mbps = (double)l->dirty_rate_pps * PAGE * 8 / 1e6;
	if (l->round < 4 && !(l->has_throughput_mbps && dirty_mbps >= 0.8 * l->throughput_mbps))
		return;
	if (virDomainMigrateStartPostCopy(m->dom, 0) < 0) {
		gw_warn(SUBSYS, "vm '%s': cannot switch to post-copy: %s", m->name, gw_lv_errmsg());
		m->postcopy_allowed = false;
		return;
	}
	m->postcopy_started = true;
	gw_info(SUBSYS,
		"vm '%s': switched to post-copy in round %u (dirty %.0f Mb/s, link %.0f "
		"Mb/s)",
		m->name, l->round, dirty_mbps, l->throughput_mbps);
}

/* ---- destination ---- */

int gw_lv_migrate_in(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
		     const GwMigBegin *begin, const uint8_t *raw, uint32_t rawlen, char *err,
		     size_t errlen)
{
	(void)raw;
	(void)rawlen;
	struct gw_lv *lv = gw_lv_of(ag);
	char host[128] = "", uri[300], muri[300];
	if (!lv || !lv->conn) {
		gw_lv_domain(lv, vm, NULL, err, errlen);
		return -ENOTCONN;
	}
	const char *colon = strrchr(ag->cfg.listen, ':');
	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - ag->cfg.listen) : 0,
		 ag->cfg.listen);
	if (!ag->cfg.libvirt_migrate_uri[0] && (!host[0] || !strcmp(host, "0.0.0.0"))) {
		snprintf(err, errlen,
			 "this host's libvirtd address is unknown: set [libvirt] migrate_uri");
		return -EINVAL;
	}
	if (ag->cfg.libvirt_migrate_uri[0])
		snprintf(uri, sizeof(uri), "%s", ag->cfg.libvirt_migrate_uri);
	else
		snprintf(uri, sizeof(uri), "qemu+tcp://%s/system", host);
	snprintf(muri, sizeof(muri), "tcp://%s", host);
	vm->state = GW_VM_MIGRATING;
	vm->started_at_ms = gw_now_wall_ms();
	snprintf(vm->mig_peer, sizeof(vm->mig_peer), "%s",
		 begin->source_listen ? begin->source_listen : "");
	vm->mig_next_check_ms = gw_now_mono_ms() + OUTCOME_PERIOD_MS;
	/* the record waits for the domain until the source's timeout, and a grace, are over */
	vm->mig_deadline_ms =
	    gw_now_mono_ms() +
	    (unsigned long long)(begin->has_timeout_s ? begin->timeout_s : 300) * 1000 +
	    INCOMING_GRACE_MS;
	gw_vmtable_save_state(&ag->vms, vm);
	GwMigBeginReply rep = GW_MIG_BEGIN_REPLY__INIT;
	rep.ok = 1;
	rep.libvirt_uri = uri;
	rep.libvirt_migrate_uri = muri;
	int r = gw_mig_send(c, GW_MIG_MSG_TYPE__GW_MIG_BEGIN_REPLY, &rep.base);
	if (r)
		snprintf(err, errlen, "cannot answer the source: %s", strerror(-r));
	return r;
}

/* Ask the source how migration id ended: "committed", "aborted", "unknown" (running), or
 * NULL when it cannot be asked. */
static const char *ask_outcome(struct gw_agent *ag, const char *peer, uint64_t id)
{
	struct gw_transport_opts o = {.timeout_ms = 1000};
	struct gw_conn *c = NULL;
	static char out[16];
	uint16_t type = 0;
	uint8_t *p = NULL;
	uint32_t len = 0;
	if (!peer[0] ||
	    gw_auth_connect(&gw_transport_tcp, peer, &o, ag->tls, ag->key, ag->keylen, &c))
		return NULL;
	GwMigOutcomeQuery q = GW_MIG_OUTCOME_QUERY__INIT;
	q.migration_id = id;
	int r = gw_mig_send(c, GW_MIG_MSG_TYPE__GW_MIG_OUTCOME_QUERY, &q.base);
	if (!r)
		r = gw_mig_recv(c, &type, &p, &len);
	gw_conn_close(c);
	GwMigOutcome *oc = !r && type == GW_MIG_MSG_TYPE__GW_MIG_OUTCOME
			       ? gw_mig_outcome__unpack(NULL, len, p)
			       : NULL;
	free(p);
	if (!oc)
		return NULL;
	snprintf(out, sizeof(out), "%s", oc->outcome);
	gw_mig_outcome__free_unpacked(oc, NULL);
	return out;
}

static void incoming_ended(struct gw_agent *ag, struct gw_vm *vm, const char *why)
{
	vm->state = GW_VM_STOPPED;
	snprintf(vm->reason, sizeof(vm->reason), "incoming libvirt migration %s", why);
	gw_vmtable_save_state(&ag->vms, vm);
}

/* An arriving domain: running (and persistent) here means it has arrived. While it is not
 * here at all, the source is asked now and then whether the migration still runs. */
static void poll_incoming(struct gw_agent *ag, struct gw_lv *lv, struct gw_vm *vm)
{
	int state = 0, reason = 0;
	virDomainPtr d = lv && lv->conn ? virDomainLookupByName(lv->conn, vm->name) : NULL;
	if (d && virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING &&
	    virDomainIsPersistent(d) == 1) {
		char *x = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
		vm->state = GW_VM_RUNNING;
		vm->mig_incoming = 0;
		vm->mig_id = 0;
		vm->reason[0] = 0;
		snprintf(vm->backend, sizeof(vm->backend), "qemu");
		if (x && gw_vmtable_set_driver(&ag->vms, vm, "libvirt", x))
			gw_warn(SUBSYS, "vm '%s': cannot save its domain XML", vm->name);
		free(x);
		gw_vmtable_save_state(&ag->vms, vm);
		gw_info(SUBSYS, "vm '%s' arrived: running here (libvirt domain)", vm->name);
	} else if (!lv || !lv->conn) {
		incoming_ended(ag, vm, "lost: libvirtd disconnected");
	} else if (gw_now_mono_ms() > vm->mig_deadline_ms) {
		incoming_ended(ag, vm, "did not arrive in time");
	} else if (!d && gw_now_mono_ms() >= vm->mig_next_check_ms) {
		vm->mig_next_check_ms = gw_now_mono_ms() + OUTCOME_PERIOD_MS;
		const char *o = ask_outcome(ag, vm->mig_peer, vm->mig_id);
		if (o && !strcmp(o, "aborted"))
			incoming_ended(ag, vm, "aborted by the source");
	}
	if (d)
		virDomainFree(d);
}

void gw_lv_poll(struct gw_agent *ag, struct gw_vm *vm)
{
	struct gw_lv *lv = gw_lv_of(ag);
	if (vm->state != GW_VM_MIGRATING)
		return;
	if (vm->mig_incoming) {
		poll_incoming(ag, lv, vm);
		return;
	}
	struct gw_lv_mig *m = gw_lv_mig_find(lv, vm->name);
	if (!m) { /* an agent restart lost the thread: libvirt knows how it stands */
		vm->state = GW_VM_RUNNING;
		gw_lv_attach(ag, vm);
		return;
	}
	pthread_mutex_lock(&m->lock);
	bool done = m->done;
	pthread_mutex_unlock(&m->lock);
	if (done)
		mig_settle(ag, lv, vm, m); /* else the sampler thread follows it */
}

int gw_lv_progress(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
		   size_t errlen)
{
	struct gw_lv *lv = gw_lv_of(ag);
	struct gw_lv_mig *m = gw_lv_mig_find(lv, vm->name);
	if (m) {
		*out = mig_record(m);
		return *out ? 0 : -ENOMEM;
	}
	for (struct gw_lv_result *r = lv ? lv->results : NULL; r; r = r->next)
		if (!strcmp(r->name, vm->name) && r->pr) {
			*out = pr_clone(r->pr);
			return *out ? 0 : -ENOMEM;
		}
	snprintf(err, errlen, "vm '%s': no migration known", vm->name);
	return -ENOENT;
}

int gw_lv_cancel(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
		 size_t errlen)
{
	struct gw_lv_mig *m = gw_lv_mig_find(gw_lv_of(ag), vm->name);
	if (!m) {
		snprintf(err, errlen, "vm '%s': no outgoing migration to cancel here", vm->name);
		return -EINVAL;
	}
	pthread_mutex_lock(&m->lock);
	m->abort_req = true;
	m->abort_req_new = true;
	m->cancelled = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	gw_info(SUBSYS, "vm '%s': cancelling the migration to %s", vm->name, m->to);
	*out = mig_record(m);
	return *out ? 0 : -ENOMEM;
}
