/* migrate_dst.c -- the destination side of a migration: receive page batches straight into
 * guest RAM, verify them, take the vCPU state, acknowledge, and run only when committed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include "gw_auth.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_pagebatch.h"
#include "migrate.h"
#include "migrate_dst.h"

#define SUBSYS		  "migrate"
#define STREAMS_WAIT_MS	  15000
#define SOURCE_SILENCE_MS 15000 /* the source sends at least a heartbeat a second */
#define COMMIT_WAIT_MS	  30000
#define OUTCOME_RETRY_MS  2000

struct dst_stream {
	struct gw_migration *m;
	unsigned idx;
	struct gw_conn *c;
	pthread_t th;
	int started;
	bool placement; /* the source may write our RAM directly (PLACED batches) */
	atomic_uint_fast64_t batches, pages;
	int err;
	char errmsg[200];
};

static struct dst_stream dstreams[GW_MIG_MAX_STREAMS];
/* pages whose last copy failed CRC32C; must all be cleared by a verified copy */
static atomic_uint_fast64_t *unverified;
static atomic_uint_fast64_t crc_failures;
static bool lists_unverified; /* ROUND_ACKs name the pages that failed their CRC */

static void mark_range(uint64_t first, uint32_t count, int bad)
{
	uint64_t p = first, end = first + count;
	while (p < end) {
		uint64_t w = p / 64, off = p % 64;
		uint64_t n = 64 - off < end - p ? 64 - off : end - p;
		uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << off;
		if (bad)
			atomic_fetch_or(&unverified[w], mask);
		else
			atomic_fetch_and(&unverified[w], ~mask);
		p += n;
	}
}

/* Tell the control thread a stream failed: its wait ends, the migration aborts. */
static void stream_failed(struct dst_stream *s, int err, const char *fmt, const char *detail)
{
	struct gw_migration *m = s->m;
	pthread_mutex_lock(&m->conn_lock);
	s->err = err;
	snprintf(s->errmsg, sizeof(s->errmsg), fmt, s->idx, detail);
	pthread_mutex_lock(&m->lock);
	bool early = m->st.phase < GW_MIG_SWITCHOVER;
	pthread_mutex_unlock(&m->lock);
	/* from the switchover on, wait_streams decides: a stream that ends after its last
	 * batch (the source closing it) is no failure */
	if (early)
		gw_mig_fail(m, -1, "%s", s->errmsg);
	/* tell the source why, then stop every stream so that its sends fail at once; the
	 * control thread's wait ends too and the migration is discarded */
	if (!m->abort_sent && early) {
		GwMigAbort a = GW_MIG_ABORT__INIT;
		a.reason = s->errmsg;
		m->abort_sent = true;
		gw_conn_set_timeout(m->ctl, 2000);
		gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ABORT, &a.base);
		for (unsigned i = 0; i < m->nstreams; i++)
			if (m->data[i])
				gw_conn_shutdown(m->data[i]);
		/* the control connection stays open so that the ABORT is read, not reset away;
		 * the source answers with its own ABORT, which ends the control thread's wait */
	}
	pthread_cond_broadcast(&m->conn_cond);
	pthread_mutex_unlock(&m->conn_lock);
}

static void *recv_thread(void *arg)
{
	struct dst_stream *s = arg;
	struct gw_migration *m = s->m;
	struct gw_pagebatch_hdr hdr;
	struct gw_pagebatch_info b;
	char err[160];

	for (;;) {
		int r = gw_conn_recv(s->c, &hdr, sizeof(hdr));
		if (r) {
			if (!atomic_load(&m->finished) && !atomic_load(&m->data_done) &&
			    r != -ECANCELED)
				stream_failed(s, r, "data stream %u: %s", strerror(-r));
			return NULL;
		}
		r = gw_pagebatch_validate(&hdr, m->ram_pages, GW_PAGEBATCH_MAX_PAGES, &b, err,
					  sizeof(err));
		if (r) {
			gw_err(SUBSYS, "%s: data stream %u from %s: %s", m->name, s->idx, m->peer,
			       err);
			stream_failed(s, r, "data stream %u: invalid page batch: %s", err);
			return NULL;
		}
		if (b.flags & GW_PAGEBATCH_F_ZERO) {
			memset(m->ram + b.first_page * GW_PAGE_SIZE, 0,
			       (size_t)b.page_count * GW_PAGE_SIZE);
			mark_range(b.first_page, b.page_count, 0);
		} else {
			if (!(b.flags & GW_PAGEBATCH_F_PLACED)) {
				struct iovec iov = {m->ram + b.first_page * GW_PAGE_SIZE,
						    (size_t)b.page_count * GW_PAGE_SIZE};
				/* allocate the batch's pages in one call rather than one fault
				 * per page while the socket copies into them (best effort) */
				madvise(iov.iov_base, iov.iov_len, MADV_POPULATE_WRITE);
				r = gw_conn_recvv(s->c, &iov, 1);
				if (r) {
					stream_failed(s, r,
						      "data stream %u: truncated page batch: %s",
						      strerror(-r));
					return NULL;
				}
			} else if (!s->placement) {
				stream_failed(s, -EPROTO, "data stream %u: %s",
					      "placed page batch without placement");
				return NULL;
			} /* else the transport put the pages in place before this header */
			/* the source computes the CRC over the very bytes it sends (a staged
			 * copy while the VM runs), so a mismatch is damage in transit; the
			 * pages stay bad unless a later copy of them verifies */
			int bad = gw_pagebatch_crc(m->ram, b.first_page, b.page_count) != b.crc32c;
			if (bad)
				atomic_fetch_add(&crc_failures, 1);
			mark_range(b.first_page, b.page_count, bad);
		}
		pthread_mutex_lock(&m->conn_lock);
		atomic_fetch_add(&s->batches, 1);
		atomic_fetch_add(&s->pages, b.page_count);
		pthread_cond_broadcast(&m->conn_cond);
		pthread_mutex_unlock(&m->conn_lock);
		pthread_mutex_lock(&m->lock);
		m->st.pages_sent += b.page_count;
		/* page bytes moved, whether on the stream or placed directly */
		m->st.bytes +=
		    GW_PAGEBATCH_HDR_LEN +
		    (b.flags & GW_PAGEBATCH_F_ZERO ? 0 : (uint64_t)b.page_count * GW_PAGE_SIZE);
		pthread_mutex_unlock(&m->lock);
	}
}

static int dest_attach(struct gw_migration *m, unsigned stream, struct gw_conn *c, bool placement)
{
	/* before taking the lock: a transport may do real work to register memory */
	int r = gw_conn_register_mem(c, m->ram, m->ram_pages * GW_PAGE_SIZE);
	if (r)
		return r;
	pthread_mutex_lock(&m->conn_lock);
	if (stream >= m->nstreams || dstreams[stream].started || atomic_load(&m->finished)) {
		pthread_mutex_unlock(&m->conn_lock);
		return -EINVAL;
	}
	struct dst_stream *s = &dstreams[stream];
	s->m = m;
	s->idx = stream;
	s->c = c;
	s->placement = placement;
	gw_conn_set_timeout(c, -1); /* liveness is the control connection's job */
	if (pthread_create(&s->th, NULL, recv_thread, s)) {
		pthread_mutex_unlock(&m->conn_lock);
		return -EAGAIN;
	}
	s->started = 1;
	m->data[stream] = c;
	m->data_joined++;
	pthread_cond_broadcast(&m->conn_cond);
	pthread_mutex_unlock(&m->conn_lock);
	return 0;
}

int gw_mig_dest_add_stream(struct gw_migration *m, unsigned stream, struct gw_conn *c)
{
	return dest_attach(m, stream, c, false);
}

static bool dest_stream_taken(unsigned stream)
{
	return stream < GW_MIG_MAX_STREAMS && dstreams[stream].started;
}

static const struct gw_mig_data_sink data_sink = {
    .taken_locked = dest_stream_taken,
    .attach = dest_attach,
};

/* Wait until every stream delivered what the source says it sent, or one failed. */
static int wait_streams(struct gw_migration *m, const uint64_t *want, size_t nwant, char *err,
			size_t errlen)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += STREAMS_WAIT_MS / 1000;
	if (nwant != m->nstreams) {
		snprintf(err, errlen, "source names %zu streams, %u expected", nwant, m->nstreams);
		return -EPROTO;
	}
	pthread_mutex_lock(&m->conn_lock);
	for (;;) {
		int done = 1;
		for (unsigned i = 0; i < m->nstreams; i++) {
			struct dst_stream *s = &dstreams[i];
			if (s->err && atomic_load(&s->batches) < want[i]) {
				snprintf(err, errlen, "%s", s->errmsg);
				pthread_mutex_unlock(&m->conn_lock);
				return s->err;
			}
			if (!s->started || atomic_load(&s->batches) < want[i])
				done = 0;
			else if (atomic_load(&s->batches) > want[i]) {
				snprintf(err, errlen, "stream %u delivered more batches than sent",
					 i);
				pthread_mutex_unlock(&m->conn_lock);
				return -EPROTO;
			}
		}
		if (done)
			break;
		if (pthread_cond_timedwait(&m->conn_cond, &m->conn_lock, &dl) == ETIMEDOUT) {
			snprintf(err, errlen, "page data incomplete after %d s",
				 STREAMS_WAIT_MS / 1000);
			pthread_mutex_unlock(&m->conn_lock);
			return -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&m->conn_lock);
	return 0;
}

/* The runs of pages whose last copy failed its CRC (NULL, 0 runs while none ever failed);
 * *pages counts them all. Called with every batch of the round landed. */
static uint64_t *unverified_runs(struct gw_migration *m, size_t *nruns, uint64_t *pages)
{
	*nruns = 0;
	*pages = 0;
	if (!lists_unverified || !atomic_load(&crc_failures))
		return NULL;
	uint64_t words = (m->ram_pages + 63) / 64;
	uint64_t *snap = malloc(words * sizeof(*snap));
	uint64_t *runs = malloc(2 * GW_MIG_RESEND_MAX_RUNS * sizeof(*runs));
	if (!snap || !runs) {
		free(snap);
		free(runs);
		return NULL; /* the switchover's check still refuses unverified pages */
	}
	for (uint64_t w = 0; w < words; w++)
		snap[w] = atomic_load(&unverified[w]);
	*nruns = gw_pageruns_from_bitmap(snap, m->ram_pages, runs, GW_MIG_RESEND_MAX_RUNS, pages);
	free(snap);
	return runs;
}

/* Answer a ROUND_END once its batches have landed: the round's numbers back, and the pages
 * that failed their CRC so far (the source sends them again). */
static int round_ack(struct gw_migration *m, GwMigRoundEnd *re)
{
	size_t nruns;
	uint64_t pages;
	uint64_t *runs = unverified_runs(m, &nruns, &pages);
	if (pages)
		gw_warn(SUBSYS,
			"%s: after round %u, %llu page(s) in %zu run(s) failed their CRC32C: "
			"asking %s to send them again",
			m->name, re->round, (unsigned long long)pages, nruns, m->peer);
	size_t in_n = re->n_unverified_runs; /* whatever the source put there: not ours */
	uint64_t *in_runs = re->unverified_runs;
	re->n_unverified_runs = 2 * nruns;
	re->unverified_runs = runs;
	re->has_unverified_pages = pages > 0;
	re->unverified_pages = pages;
	int r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ROUND_ACK, &re->base);
	re->n_unverified_runs = in_n; /* the unpacker frees its own array */
	re->unverified_runs = in_runs;
	free(runs);
	return r;
}

static int check_verified(struct gw_migration *m, char *err, size_t errlen)
{
	uint64_t words = (m->ram_pages + 63) / 64, bad = 0, first = 0;
	for (uint64_t w = 0; w < words; w++) {
		uint64_t v = atomic_load(&unverified[w]);
		if (v && !bad)
			first = w * 64 + (uint64_t)__builtin_ctzll(v);
		bad += (uint64_t)__builtin_popcountll(v);
	}
	if (!bad)
		return 0;
	snprintf(err, errlen,
		 "CRC32C mismatch: %llu page(s) arrived corrupt and no intact copy followed "
		 "(first: page %llu)",
		 (unsigned long long)bad, (unsigned long long)first);
	return -EBADMSG;
}

static void send_abort(struct gw_migration *m, const char *reason)
{
	GwMigAbort a = GW_MIG_ABORT__INIT;
	a.reason = (char *)reason;
	gw_conn_set_timeout(m->ctl, 2000);
	gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ABORT, &a.base);
}

/* Ask the source's agent what became of this migration: 1 committed, 0 aborted, <0 unknown. */
static int ask_outcome(struct gw_migration *m)
{
	char host[128], addr[160];
	const char *colon = strrchr(m->source_listen, ':');
	const char *peer = m->peer;
	const char *pc = strrchr(peer, ':');
	if (!colon || !pc)
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(pc - peer), peer);
	snprintf(addr, sizeof(addr), "%s%s", host, colon);
	struct gw_transport_opts o = {.timeout_ms = 3000};
	struct gw_conn *c;
	int r = gw_auth_connect(&gw_transport_tcp, addr, &o, m->tls, m->key, m->keylen, &c);
	if (r)
		return r;
	GwMigOutcomeQuery q = GW_MIG_OUTCOME_QUERY__INIT;
	q.migration_id = m->id;
	if (!r)
		r = gw_mig_send(c, GW_MIG_MSG_TYPE__GW_MIG_OUTCOME_QUERY, &q.base);
	uint16_t type;
	uint8_t *p = NULL;
	uint32_t len;
	if (!r)
		r = gw_mig_recv(c, &type, &p, &len);
	gw_conn_close(c);
	if (r)
		return r;
	GwMigOutcome *o2 =
	    type == GW_MIG_MSG_TYPE__GW_MIG_OUTCOME ? gw_mig_outcome__unpack(NULL, len, p) : NULL;
	free(p);
	if (!o2)
		return -EPROTO;
	r = !strcmp(o2->outcome, "committed") ? 1 : !strcmp(o2->outcome, "aborted") ? 0 : -EAGAIN;
	gw_mig_outcome__free_unpacked(o2, NULL);
	return r;
}

static int run_committed(struct gw_migration *m)
{
	gw_mig_set_phase(m, GW_MIG_COMMIT);
	int r = m->vmops->start(m->vm);
	if (r) {
		gw_mig_fail(m, -1, "committed but cannot start vCPUs: %s", strerror(-r));
		return r;
	}
	gw_mig_set_phase(m, GW_MIG_DONE);
	return 0;
}

static void *dest_thread(void *arg)
{
	struct gw_migration *m = arg;
	char err[256] = "";
	uint8_t *p = NULL;
	uint32_t len;
	uint16_t type;
	int r;
	GwMigSwitchover *so = NULL;
	const char *f = NULL;

	GwMigBeginReply rep = GW_MIG_BEGIN_REPLY__INIT;
	rep.ok = 1;
	/* every ROUND_ACK lists what failed its CRC; tests: no-resends acts as an older peer */
	const char *nf = getenv("GODWIT_MIGRATE_FAULT");
	lists_unverified = !(nf && !strcmp(nf, "no-resends"));
	rep.has_resends_unverified = lists_unverified;
	rep.resends_unverified = lists_unverified;
	r = gw_mig_data_listen(m, &data_sink, &rep, err, sizeof(err));
	if (r) {
		gw_mig_fail(m, -1, "%s", err);
		rep.ok = 0;
		rep.error = err;
		rep.has_data_port = 0;
		gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_BEGIN_REPLY, &rep.base);
		goto discard;
	}
	r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_BEGIN_REPLY, &rep.base);
	if (r) {
		gw_mig_fail(m, -1, "cannot answer the source: %s", strerror(-r));
		goto discard;
	}
	gw_mig_set_phase(m, GW_MIG_ITERATE);
	gw_conn_set_timeout(m->ctl, SOURCE_SILENCE_MS);
	for (;;) {
		r = gw_mig_recv(m->ctl, &type, &p, &len);
		if (r) {
			gw_mig_fail(m, -1, "control connection from %s lost: %s", m->peer,
				    strerror(-r));
			goto discard;
		}
		if (type == GW_MIG_MSG_TYPE__GW_MIG_ROUND_END) {
			GwMigRoundEnd *re = gw_mig_round_end__unpack(NULL, len, p);
			if (re) {
				pthread_mutex_lock(&m->lock);
				m->st.round = re->round;
				pthread_mutex_unlock(&m->lock);
				/* the end of a round: answer once all of it has landed, so that the
				 * source pauses with nothing of earlier rounds still in flight */
				if (re->n_stream_batches) {
					r = wait_streams(m, re->stream_batches,
							 re->n_stream_batches, err, sizeof(err));
					if (!r)
						r = round_ack(m, re);
				}
				gw_mig_round_end__free_unpacked(re, NULL);
				if (r) {
					gw_mig_fail(m, -1, "round data: %s",
						    err[0] ? err : strerror(-r));
					free(p);
					goto discard_abort;
				}
			}
		} else if (type == GW_MIG_MSG_TYPE__GW_MIG_ABORT) {
			GwMigAbort *a = gw_mig_abort__unpack(NULL, len, p);
			gw_mig_fail(m, -1, "source aborted: %s", a ? a->reason : "?");
			if (a)
				gw_mig_abort__free_unpacked(a, NULL);
			free(p);
			goto discard;
		} else if (type == GW_MIG_MSG_TYPE__GW_MIG_SWITCHOVER) {
			so = gw_mig_switchover__unpack(NULL, len, p);
			free(p);
			p = NULL;
			break;
		} else {
			gw_mig_fail(m, -1, "unexpected message %u from the source", type);
			free(p);
			goto discard_abort;
		}
		free(p);
		p = NULL;
		if (atomic_load(&m->cancel)) {
			gw_mig_fail(m, -2, "cancelled on the destination");
			goto discard_abort;
		}
	}
	if (!so) {
		gw_mig_fail(m, -1, "malformed switchover message");
		goto discard_abort;
	}
	gw_mig_set_phase(m, GW_MIG_SWITCHOVER);
	r = wait_streams(m, so->stream_batches, so->n_stream_batches, err, sizeof(err));
	if (!r)
		r = check_verified(m, err, sizeof(err));
	if (!r)
		atomic_store(&m->data_done, true);
	if (!r && so->n_vcpu_state != m->vmops->vcpu_count(m->vm)) {
		snprintf(err, sizeof(err), "state for %zu vCPUs, VM has %u", so->n_vcpu_state,
			 m->vmops->vcpu_count(m->vm));
		r = -EPROTO;
	}
	for (unsigned i = 0; !r && i < so->n_vcpu_state; i++) {
		r = m->vmops->vcpu_restore(m->vm, i, so->vcpu_state[i].data, so->vcpu_state[i].len);
		if (r)
			snprintf(err, sizeof(err), "vCPU %u state refused: %s", i, strerror(-r));
	}
	GwMigAck ack = GW_MIG_ACK__INIT;
	ack.ok = r == 0;
	ack.error = r ? err : NULL;
	for (unsigned i = 0; i < m->nstreams; i++)
		ack.pages_received += atomic_load(&dstreams[i].pages);
	if (r) {
		gw_mig_fail(m, -1, "%s", err);
		gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ACK, &ack.base);
		goto discard;
	}
	f = getenv("GODWIT_MIGRATE_FAULT"); /* tests: delay-ack=MS, delay-finish=MS */
	if (f && !strncmp(f, "delay-ack=", 10)) {
		gw_warn(SUBSYS, "fault injection active: %s", f);
		usleep((useconds_t)atol(f + 10) * 1000);
	}
	r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ACK, &ack.base);
	/* PREPARED: from here on only the source's decision counts */
	gw_conn_set_timeout(m->ctl, COMMIT_WAIT_MS);
	if (!r)
		r = gw_mig_recv(m->ctl, &type, &p, &len);
	if (!r && type == GW_MIG_MSG_TYPE__GW_MIG_COMMIT) {
		free(p);
		if (run_committed(m))
			goto out;
		char boot[64];
		gw_mig_boot_id(boot, sizeof(boot));
		GwMigCommitDone d = GW_MIG_COMMIT_DONE__INIT;
		d.resumed_at_ns = gw_now_mono_ns();
		d.boot_id = boot;
		pthread_mutex_lock(&m->lock);
		m->st.downtime_ms = (double)(d.resumed_at_ns - so->paused_at_ns) / 1e6;
		pthread_mutex_unlock(&m->lock);
		gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_COMMIT_DONE, &d.base);
		goto out;
	}
	if (!r && type == GW_MIG_MSG_TYPE__GW_MIG_ABORT) {
		free(p);
		gw_mig_fail(m, -1, "source aborted after the acknowledgement");
		goto discard;
	}
	free(p);
	/* the link died while prepared: ask, never guess */
	gw_warn(SUBSYS,
		"%s: link to %s lost while prepared (%s); asking the source for the outcome",
		m->name, m->peer, r ? strerror(-r) : "unexpected message");
	for (;;) {
		int o = ask_outcome(m);
		if (o == 1) {
			gw_info(SUBSYS, "%s: source says committed: running here", m->name);
			run_committed(m);
			goto out;
		}
		if (o == 0) {
			gw_mig_fail(m, -1, "source says the migration was aborted");
			goto discard;
		}
		pthread_mutex_lock(&m->lock);
		snprintf(m->st.error, sizeof(m->st.error),
			 "outcome unknown (source unreachable: %s); VM held paused until the "
			 "source answers",
			 strerror(-o));
		pthread_mutex_unlock(&m->lock);
		if (atomic_load(&m->cancel))
			goto out; /* the VMM is being stopped by hand: operator's decision */
		usleep(OUTCOME_RETRY_MS * 1000);
	}
discard_abort:
	send_abort(m, m->st.error[0] ? m->st.error : "aborted by the destination");
discard:
	gw_mig_set_phase(m, GW_MIG_ABORTED);
	gw_warn(SUBSYS, "%s: incoming migration from %s discarded: %s", m->name, m->peer,
		m->st.error);
out:
	if (so)
		gw_mig_switchover__free_unpacked(so, NULL);
	if (f && !strncmp(f, "delay-finish=", 13)) /* tests: the source closes its streams first */
		usleep((useconds_t)atol(f + 13) * 1000);
	pthread_mutex_lock(&m->conn_lock);
	gw_mig_data_stop_locked(m);
	pthread_mutex_unlock(&m->conn_lock);
	for (unsigned i = 0; i < m->nstreams; i++)
		if (dstreams[i].started)
			gw_conn_shutdown(dstreams[i].c);
	atomic_store(&m->finished, true);
	uint64_t one = 1;
	if (write(m->done_efd, &one, sizeof(one)) < 0)
		gw_warn(SUBSYS, "%s: eventfd write: %s", m->name, strerror(errno));
	return NULL;
}

int gw_mig_dest_start(struct gw_migration *m, struct gw_conn *ctl)
{
	uint64_t size;
	GwMigBegin *b = m->begin;
	m->ram = m->vmops->ram(m->vm, &size);
	m->ram_pages = size / GW_PAGE_SIZE;
	if (!b || b->streams < 1 || b->streams > GW_MIG_MAX_STREAMS ||
	    b->page_size != GW_PAGE_SIZE || (uint64_t)b->memory_mib << 20 != size)
		return -EINVAL;
	m->id = b->migration_id;
	m->nstreams = b->streams;
	m->params.timeout_s = b->has_timeout_s ? b->timeout_s : 300;
	snprintf(m->params.transport, sizeof(m->params.transport), "%s",
		 b->transport && *b->transport ? b->transport : "tcp");
	snprintf(m->source_listen, sizeof(m->source_listen), "%s",
		 b->source_listen ? b->source_listen : "");
	snprintf(m->peer, sizeof(m->peer), "%s", gw_conn_peer_name(ctl));
	unverified = calloc((m->ram_pages + 63) / 64, sizeof(*unverified));
	if (!unverified)
		return -ENOMEM;
	memset(dstreams, 0, sizeof(dstreams));
	m->ctl = ctl;
	if (pthread_create(&m->thread, NULL, dest_thread, m))
		return -EAGAIN;
	return 0;
}

void gw_mig_cancel(struct gw_migration *m)
{
	atomic_store(&m->cancel, true);
	/* unblock whatever waits on the peer; the engine thread then aborts */
	pthread_mutex_lock(&m->conn_lock);
	if (m->role == GW_MIG_SOURCE) {
		for (unsigned i = 0; i < GW_MIG_MAX_STREAMS; i++)
			if (m->data[i])
				gw_conn_shutdown(m->data[i]);
	} else {
		gw_mig_data_stop_locked(m);
		if (m->ctl && m->st.phase < GW_MIG_SWITCHOVER)
			gw_conn_shutdown(m->ctl);
	}
	pthread_mutex_unlock(&m->conn_lock);
}

void gw_mig_join(struct gw_migration *m)
{
	pthread_join(m->thread, NULL);
	gw_mig_data_accept_join(m);
	for (unsigned i = 0; i < GW_MIG_MAX_STREAMS; i++) {
		if (m->role == GW_MIG_DEST && dstreams[i].started) {
			/* a stream may have joined while the engine ended (RDMA accept thread) */
			gw_conn_shutdown(dstreams[i].c);
			pthread_join(dstreams[i].th, NULL);
			dstreams[i].started = 0;
		}
		if (m->data[i])
			gw_conn_close(m->data[i]);
		m->data[i] = NULL;
	}
	gw_conn_close(m->ctl);
	m->ctl = NULL;
	if (m->role == GW_MIG_DEST) {
		free(unverified);
		unverified = NULL;
	}
	if (m->begin)
		gw_mig_begin__free_unpacked(m->begin, NULL);
	m->begin = NULL;
}
