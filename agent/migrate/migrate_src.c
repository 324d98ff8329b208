/* migrate_src.c -- the source side of a pre-copy migration: rounds of dirty pages over N
 * streams, convergence with auto-converge, switchover, and the commit that hands the VM over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_auth.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_pagebatch.h"
#include "gw_tls.h"
#include "migrate_src.h"

#define SUBSYS	       "migrate"
#define ACK_TIMEOUT_MS 15000

/* Connect to addr over ops, TLS where configured (TCP only), and authenticate (the control
 * connection and every data stream). */
static int connect_peer(struct gw_migration *m, const struct gw_transport_ops *ops,
			const char *addr, struct gw_conn **out)
{
	struct gw_transport_opts o = {.timeout_ms = 10000};
	return gw_auth_connect(ops, addr, &o, m->tls, m->key, m->keylen, out);
}

/* "HOST:PORT" of the destination's host (as in params.to, "[v6]" kept) at another port. */
static void host_at_port(const char *to, unsigned port, char *buf, size_t len)
{
	const char *end = to[0] == '[' ? strchr(to, ']') : strrchr(to, ':');
	int n = !end ? (int)strlen(to) : to[0] == '[' ? (int)(end - to) + 1 : (int)(end - to);
	snprintf(buf, len, "%.*s:%u", n, to, port);
}

static int expect(struct gw_migration *m, uint16_t want, uint8_t **payload, uint32_t *len)
{
	uint16_t type;
	int r = gw_mig_recv(m->ctl, &type, payload, len);
	if (r)
		return r;
	if (type == GW_MIG_MSG_TYPE__GW_MIG_ABORT) {
		GwMigAbort *a = gw_mig_abort__unpack(NULL, *len, *payload);
		gw_mig_fail(m, -1, "destination aborted: %s", a ? a->reason : "(no reason)");
		if (a)
			gw_mig_abort__free_unpacked(a, NULL);
		free(*payload);
		*payload = NULL;
		return -ECONNABORTED;
	}
	if (type != want) {
		free(*payload);
		*payload = NULL;
		return -EPROTO;
	}
	return 0;
}

static int write_outcome(struct gw_migration *m, const char *outcome)
{
	char path[4200], text[64];
	if (gw_mkdir_p(m->outcome_dir, 0700))
		return -errno;
	snprintf(path, sizeof(path), "%s/%llu", m->outcome_dir, (unsigned long long)m->id);
	int n = snprintf(text, sizeof(text), "%s\n", outcome);
	return gw_file_write_atomic(path, text, (size_t)n, 0600);
}

/* Over a transport with direct placement the destination answers JOIN with where its guest
 * RAM may be written (len 0: not on this stream). Anything else ends the migration. */
static int recv_placement(struct gw_migration *m, struct src_stream *s)
{
	uint16_t type = 0;
	uint8_t *p = NULL;
	uint32_t len = 0;
	int r = gw_mig_recv(s->c, &type, &p, &len);
	if (r)
		return r;
	GwMigPlacement *pl = type == GW_MIG_MSG_TYPE__GW_MIG_PLACEMENT
				 ? gw_mig_placement__unpack(NULL, len, p)
				 : NULL;
	free(p);
	if (!pl)
		return -EPROTO;
	if (pl->len && pl->len != m->ram_pages * GW_PAGE_SIZE)
		r = -EPROTO; /* not the guest RAM we are about to send */
	else if (pl->len) {
		s->place =
		    (struct gw_remote_mem){.addr = pl->addr, .len = pl->len, .rkey = pl->rkey};
		s->placed = true;
	}
	gw_mig_placement__free_unpacked(pl, NULL);
	return r;
}

static int setup(struct gw_migration *m)
{
	uint8_t *p;
	uint32_t len;
	const char *tname = gw_mig_transport(m);
	const struct gw_transport_ops *dops = gw_transport_get(tname);
	char daddr[160];
	if (!dops) {
		gw_mig_fail(m, -1, "%s transport not built into this agent",
			    strcmp(tname, "rdma") ? tname : "RDMA");
		return -EPROTONOSUPPORT;
	}
	if (dops != &gw_transport_tcp && gw_tls_ctx_mode(m->tls) == GW_TLS_REQUIRED) {
		gw_mig_fail(m, -1,
			    "%s data streams are not encrypted: refused under [tls] mode = "
			    "required",
			    tname);
		return -EPROTONOSUPPORT;
	}
	int r = connect_peer(m, &gw_transport_tcp, m->params.to, &m->ctl);
	if (r) {
		gw_mig_fail(m, -1, "cannot reach destination %s: %s", m->params.to,
			    gw_auth_strerror(r));
		return r;
	}
	GwMigBegin b = GW_MIG_BEGIN__INIT;
	b.version = GW_MIG_VERSION;
	b.migration_id = m->id;
	b.name = m->name;
	b.memory_mib = (uint32_t)(m->ram_pages * GW_PAGE_SIZE >> 20);
	b.vcpus = m->vmops->vcpu_count(m->vm);
	b.image = m->begin && m->begin->image ? m->begin->image : "";
	b.cmdline = m->begin ? m->begin->cmdline : NULL;
	b.streams = m->nstreams;
	b.page_size = GW_PAGE_SIZE;
	b.source_listen = m->source_listen[0] ? m->source_listen : NULL;
	b.source_node = m->node[0] ? m->node : NULL;
	b.has_timeout_s = 1;
	b.timeout_s = m->params.timeout_s;
	b.transport = dops == &gw_transport_tcp ? NULL : (char *)tname; /* absent = tcp */
	b.vm_backend = m->begin ? m->begin->vm_backend : NULL;
	r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_BEGIN, &b.base);
	if (!r)
		r = expect(m, GW_MIG_MSG_TYPE__GW_MIG_BEGIN_REPLY, &p, &len);
	if (r) {
		gw_mig_fail(m, -1, "destination %s did not accept the migration: %s", m->params.to,
			    strerror(-r));
		return r;
	}
	GwMigBeginReply *rep = gw_mig_begin_reply__unpack(NULL, len, p);
	free(p);
	if (!rep || !rep->ok) {
		gw_mig_fail(m, -1, "destination refused: %s",
			    rep && rep->error ? rep->error : "malformed reply");
		if (rep)
			gw_mig_begin_reply__free_unpacked(rep, NULL);
		return -ECONNREFUSED;
	}
	m->peer_resends = rep->has_resends_unverified && rep->resends_unverified;
	/* TCP: the streams go where the control connection went (the destination agent hands
	 * them over); otherwise to the destination VMM's own listener on the same host */
	if (dops == &gw_transport_tcp) {
		snprintf(daddr, sizeof(daddr), "%s", m->params.to);
	} else if (!rep->has_data_port || !rep->data_port || rep->data_port > 65535) {
		gw_mig_fail(m, -1, "destination %s named no %s data port", m->params.to, tname);
		gw_mig_begin_reply__free_unpacked(rep, NULL);
		return -EPROTO;
	} else {
		host_at_port(m->params.to, rep->data_port, daddr, sizeof(daddr));
	}
	gw_mig_begin_reply__free_unpacked(rep, NULL);
	unsigned placed = 0;
	for (unsigned i = 0; i < m->nstreams; i++) {
		struct src_stream *s = &gw_mig_src_streams[i];
		memset(s, 0, sizeof(*s));
		s->m = m;
		s->idx = i;
		r = connect_peer(m, dops, daddr, &s->c);
		if (r) {
			gw_mig_fail(m, -1, "data stream %u to %s (%s): %s", i, daddr, tname,
				    gw_auth_strerror(r));
			return r;
		}
		GwMigJoin j = GW_MIG_JOIN__INIT;
		j.migration_id = m->id;
		j.stream = i;
		const char *what = "join";
		r = gw_mig_send(s->c, GW_MIG_MSG_TYPE__GW_MIG_JOIN, &j.base);
		if (!r && gw_conn_is_tls(s->c)) {
			/* the agent hands the stream to the VMM, which shakes hands anew */
			what = "TLS hand-over";
			r = gw_tls_await_handoff(s->c);
		}
		if (!r) {
			what = "registering guest RAM";
			r = gw_conn_register_mem(s->c, m->ram, m->ram_pages * GW_PAGE_SIZE);
		}
		if (!r && gw_conn_can_place(s->c)) {
			what = "placement";
			r = recv_placement(m, s);
		}
		pthread_mutex_lock(&m->conn_lock);
		m->data[i] = s->c;
		pthread_mutex_unlock(&m->conn_lock);
		if (r) {
			gw_mig_fail(m, -1, "data stream %u to %s (%s): %s: %s", i, daddr, tname,
				    what, strerror(-r));
			return r;
		}
		placed += gw_mig_src_streams[i].placed;
	}
	if (placed)
		gw_info(SUBSYS,
			"%s: %u of %u %s data streams write pages straight into the "
			"destination's guest RAM (direct placement)",
			m->name, placed, m->nstreams, tname);
	return 0;
}

/*
 * The destination's ROUND_ACK lists the pages whose last copy failed its CRC32C. Round 1
 * goes straight from guest RAM while the VM runs (migrate_send.c), so a guest write between
 * the checksum and the socket reading a page fails its batch: those pages go back into the
 * bitmap for the next round. Later rounds send copies that cannot change under the
 * checksum, so a failure there is damage in transit and ends the migration. Returns the
 * pages added to the bitmap, or -errno with the migration failed.
 */
static long take_unverified(struct gw_migration *m, unsigned round, const uint8_t *p, uint32_t len,
			    uint64_t *bitmap)
{
	GwMigRoundEnd *a = gw_mig_round_end__unpack(NULL, len, p);
	if (!a) {
		gw_mig_fail(m, -1, "round %u: malformed acknowledgement from %s", round,
			    m->params.to);
		return -EPROTO;
	}
	uint64_t total = a->has_unverified_pages ? a->unverified_pages : 0, added = 0, covered = 0;
	long r = 0;
	char err[160];
	for (size_t i = 1; i < a->n_unverified_runs; i += 2)
		covered += a->unverified_runs[i];
	if (!total && !a->n_unverified_runs)
		goto out;
	if (round > 1 || !m->peer_resends) {
		gw_mig_fail(
		    m, -1,
		    "CRC32C mismatch: %llu page(s) of round %u arrived corrupt at %s (first: "
		    "page %llu), sent from a copy that cannot change: damaged in transit",
		    (unsigned long long)total, round, m->params.to,
		    (unsigned long long)(a->n_unverified_runs ? a->unverified_runs[0] : 0));
		r = -EBADMSG;
		goto out;
	}
	if (covered != total || a->n_unverified_runs > 2 * GW_MIG_RESEND_MAX_RUNS) {
		gw_mig_fail(m, -1,
			    "CRC32C mismatch: %llu page(s) of round 1 arrived corrupt at %s, in "
			    "more than %u runs: the link is damaging data",
			    (unsigned long long)total, m->params.to, GW_MIG_RESEND_MAX_RUNS);
		r = -EBADMSG;
		goto out;
	}
	r = gw_pageruns_merge(bitmap, m->ram_pages, a->unverified_runs, a->n_unverified_runs,
			      &added, err, sizeof(err));
	if (r) {
		gw_mig_fail(m, -1, "round %u: %s sent a bad list of pages to resend: %s", round,
			    m->params.to, err);
		goto out;
	}
	gw_warn(SUBSYS,
		"%s: round 1: %llu page(s) in %zu run(s) failed their CRC32C at %s (written by "
		"the guest while being sent, or damaged in transit): sending them again",
		m->name, (unsigned long long)total, a->n_unverified_runs / 2, m->params.to);
	pthread_mutex_lock(&m->lock);
	m->st.pages_resent += added;
	pthread_mutex_unlock(&m->lock);
	r = (long)added;
out:
	gw_mig_round_end__free_unpacked(a, NULL);
	return r;
}

/* Pre-copy rounds until the predicted downtime fits, or failure. Returns 0 to switch over. */
static int iterate(struct gw_migration *m, uint64_t *bitmap, size_t words)
{
	uint64_t start_ms = gw_now_mono_ms(), last_sync_ns;
	double bw = 0;
	uint64_t prev_remaining = 0;
	unsigned throttle = 0, round = 1;

	m->deadline_ms = start_ms + (uint64_t)m->params.timeout_s * 1000;
	int r = m->vmops->dirty_start(m->vm);
	if (r) {
		gw_mig_fail(m, -1, "cannot start dirty logging: %s", strerror(-r));
		return r;
	}
	memset(bitmap, 0xff, words * 8);
	if (m->ram_pages % 64)
		bitmap[words - 1] = (1ull << (m->ram_pages % 64)) - 1;
	pthread_mutex_lock(&m->lock);
	m->st.round = 1;
	m->st.pages_total = m->ram_pages;
	m->st.pages_remaining = m->ram_pages;
	pthread_mutex_unlock(&m->lock);
	for (;;) {
		uint64_t t0 = gw_now_mono_ns();
		long long sent = gw_mig_send_round(m, bitmap, round);
		uint64_t t1 = gw_now_mono_ns();
		if (sent < 0) {
			struct gw_mig_stats st;
			gw_mig_get_stats(m, &st);
			if (sent == -ECANCELED || atomic_load(&m->cancel))
				gw_mig_fail(m, -2, "cancelled");
			else if (sent == -ETIME)
				gw_mig_fail(
				    m, -1,
				    "did not converge within %u s: round %u still had %llu "
				    "pages to send at %.0f MiB/s, guest dirtying %llu pages/s "
				    "at throttle %u%%",
				    m->params.timeout_s, round,
				    (unsigned long long)st.pages_remaining,
				    (bw ? bw : st.bandwidth_bps) / 1048576.0,
				    (unsigned long long)st.dirty_rate_pps, throttle);
			else
				gw_mig_fail(m, -1, "round %u: sending pages to %s failed: %s",
					    round, m->params.to, strerror((int)-sent));
			return (int)sent;
		}
		/* wait until the destination holds the whole round: nothing of it is in flight
		 * when we pause, and the bandwidth figure is end to end */
		uint64_t sb[GW_MIG_MAX_STREAMS];
		for (unsigned i = 0; i < m->nstreams; i++)
			sb[i] = gw_mig_src_streams[i].batches;
		GwMigRoundEnd re = GW_MIG_ROUND_END__INIT;
		re.round = round;
		re.pages = (uint64_t)sent / GW_PAGE_SIZE;
		re.n_stream_batches = m->nstreams;
		re.stream_batches = sb;
		uint8_t *p = NULL;
		uint32_t len = 0;
		r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ROUND_END, &re.base);
		if (!r) {
			gw_conn_set_timeout(m->ctl, ACK_TIMEOUT_MS);
			r = expect(m, GW_MIG_MSG_TYPE__GW_MIG_ROUND_ACK, &p, &len);
		}
		if (r) {
			free(p);
			gw_mig_fail(m, -1, "round %u: destination %s did not confirm the round: %s",
				    round, m->params.to, strerror(-r));
			return r;
		}
		long resend = take_unverified(m, round, p, len, bitmap);
		free(p);
		if (resend < 0)
			return (int)resend;
		t1 = gw_now_mono_ns();
		double secs = (double)(t1 - t0) / 1e9;
		if (sent > (8ll << 20) || bw == 0)
			bw = secs > 0 ? (double)sent / secs : bw;
		last_sync_ns = t1;
		long dirty = m->vmops->dirty_sync(m->vm, bitmap);
		uint64_t now = gw_now_mono_ns();
		if (dirty < 0) {
			gw_mig_fail(m, -1, "dirty log sync failed: %s", strerror((int)-dirty));
			return (int)dirty;
		}
		dirty += resend; /* pages to send next, for the prediction (disjoint: the sync
				  * counts only bits it set) */
		double since = (double)(now - t0) / 1e9;
		uint64_t rate = since > 0 ? (uint64_t)((double)dirty / since) : 0;
		double pred = gw_mig_predict_downtime_ms((uint64_t)dirty, bw);
		(void)last_sync_ns;
		pthread_mutex_lock(&m->lock);
		m->st.pages_remaining = (uint64_t)dirty;
		m->st.dirty_rate_pps = rate;
		m->st.bandwidth_bps = bw;
		m->st.expected_downtime_ms = pred;
		pthread_mutex_unlock(&m->lock);
		gw_info(SUBSYS,
			"%s: round %u sent %lld MiB in %.0f ms (%.0f MiB/s), %ld pages dirty "
			"(%llu pages/s), predicted downtime %.1f ms, throttle %u%%",
			m->name, round, sent >> 20, secs * 1000, bw / 1048576.0, dirty,
			(unsigned long long)rate, pred, throttle);
		if (pred <= m->params.downtime_ms)
			return 0;
		if (atomic_load(&m->cancel)) {
			gw_mig_fail(m, -2, "cancelled");
			return -ECANCELED;
		}
		if (gw_now_mono_ms() - start_ms > (uint64_t)m->params.timeout_s * 1000) {
			gw_mig_fail(m, -1,
				    "did not converge within %u s: guest dirties %llu pages/s "
				    "(%.0f MiB/s) while the link carries %.0f MiB/s, even at "
				    "throttle %u%%; predicted downtime %.0f ms > limit %u ms",
				    m->params.timeout_s, (unsigned long long)rate,
				    (double)rate * 4096 / 1048576.0, bw / 1048576.0, throttle, pred,
				    m->params.downtime_ms);
			return -ETIMEDOUT;
		}
		unsigned next =
		    round >= 2 ? gw_mig_next_throttle(throttle, prev_remaining, (uint64_t)dirty,
						      pred, m->params.downtime_ms)
			       : throttle;
		if (next != throttle) {
			throttle = next;
			m->vmops->set_throttle(m->vm, throttle);
			pthread_mutex_lock(&m->lock);
			m->st.throttle_pct = throttle;
			pthread_mutex_unlock(&m->lock);
			gw_info(SUBSYS, "%s: auto-converge: vCPUs throttled to %u%%", m->name,
				throttle);
		}
		prev_remaining = (uint64_t)dirty;
		round++;
		pthread_mutex_lock(&m->lock);
		m->st.round = round;
		pthread_mutex_unlock(&m->lock);
	}
}

/* Pause, send the rest and the vCPU state, wait for the acknowledgement. */
static int switchover(struct gw_migration *m, uint64_t *bitmap, int *paused)
{
	unsigned nv = m->vmops->vcpu_count(m->vm);
	uint8_t *blobs = NULL;
	ProtobufCBinaryData *states = NULL;
	uint64_t sb[GW_MIG_MAX_STREAMS], sp[GW_MIG_MAX_STREAMS];
	uint8_t *p;
	uint32_t len;
	int r;

	if ((r = gw_mig_set_phase(m, GW_MIG_SWITCHOVER)))
		return r;
	m->paused_at_ns = gw_now_mono_ns();
	r = m->vmops->pause(m->vm);
	if (r) {
		gw_mig_fail(m, -1, "cannot pause the VM: %s", strerror(-r));
		return r;
	}
	*paused = 1;
	gw_mig_src_paused = true;
	uint64_t t_paused = gw_now_mono_ns();
	long dirty = m->vmops->dirty_sync(m->vm, bitmap);
	if (dirty < 0) {
		gw_mig_fail(m, -1, "final dirty log sync failed: %s", strerror((int)-dirty));
		return (int)dirty;
	}
	unsigned round;
	pthread_mutex_lock(&m->lock);
	round = ++m->st.round;
	m->st.pages_remaining = (uint64_t)dirty;
	pthread_mutex_unlock(&m->lock);
	long long sent = gw_mig_send_round(m, bitmap, round);
	if (sent < 0) {
		if (atomic_load(&m->cancel))
			gw_mig_fail(m, -2, "cancelled");
		gw_mig_fail(m, -1, "sending the last %ld pages failed: %s", dirty,
			    strerror((int)-sent));
		return (int)sent;
	}
	/* paused means paused: nothing may have been written while the last pages went out */
	long late = m->vmops->dirty_sync(m->vm, bitmap);
	if (late != 0) {
		gw_mig_fail(m, -1, "%ld pages written while the VM was paused (internal error)",
			    late);
		r = -EIO;
		goto out;
	}
	/* dirty logging stays on: stopping it costs milliseconds of KVM work inside the
	 * downtime, and a committed VM is destroyed anyway (abort_source stops it) */
	uint64_t t_sent = gw_now_mono_ns();
	blobs = malloc((size_t)nv * GW_MIG_VCPU_STATE_MAX);
	states = calloc(nv, sizeof(*states));
	if (!blobs || !states) {
		r = -ENOMEM;
		gw_mig_fail(m, -1, "out of memory saving vCPU state");
		goto out;
	}
	for (unsigned i = 0; i < nv; i++) {
		size_t l = 0;
		uint8_t *b = blobs + (size_t)i * GW_MIG_VCPU_STATE_MAX;
		r = m->vmops->vcpu_save(m->vm, i, b, GW_MIG_VCPU_STATE_MAX, &l);
		if (r) {
			gw_mig_fail(m, -1, "cannot save vCPU %u state: %s", i, strerror(-r));
			goto out;
		}
		states[i].data = b;
		states[i].len = l;
	}
	GwMigSwitchover so = GW_MIG_SWITCHOVER__INIT;
	so.rounds = round;
	so.n_vcpu_state = nv;
	so.vcpu_state = states;
	so.paused_at_ns = m->paused_at_ns;
	so.n_stream_batches = so.n_stream_pages = m->nstreams;
	so.stream_batches = sb;
	so.stream_pages = sp;
	for (unsigned i = 0; i < m->nstreams; i++) {
		sb[i] = gw_mig_src_streams[i].batches;
		sp[i] = gw_mig_src_streams[i].pages;
		so.pages_total += gw_mig_src_streams[i].pages;
	}
	r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_SWITCHOVER, &so.base);
	if (r) {
		gw_mig_fail(m, -1, "sending switchover state to %s failed: %s", m->params.to,
			    strerror(-r));
		goto out;
	}
	gw_conn_set_timeout(m->ctl, ACK_TIMEOUT_MS);
	uint64_t t_state = gw_now_mono_ns();
	r = expect(m, GW_MIG_MSG_TYPE__GW_MIG_ACK, &p, &len);
	gw_info(SUBSYS,
		"%s: switchover: pause %.1f ms, last %ld pages %.1f ms, vCPU state %.1f ms, "
		"acknowledgement %.1f ms",
		m->name, (double)(t_paused - m->paused_at_ns) / 1e6, dirty,
		(double)(t_sent - t_paused) / 1e6, (double)(t_state - t_sent) / 1e6,
		(double)(gw_now_mono_ns() - t_state) / 1e6);
	if (r) {
		gw_mig_fail(m, -1, "no acknowledgement from %s: %s", m->params.to, strerror(-r));
		goto out;
	}
	GwMigAck *ack = gw_mig_ack__unpack(NULL, len, p);
	free(p);
	if (!ack || !ack->ok) {
		gw_mig_fail(m, -1, "destination rejected the state: %s",
			    ack && ack->error ? ack->error : "malformed acknowledgement");
		r = -EPROTO;
	}
	if (ack)
		gw_mig_ack__free_unpacked(ack, NULL);
out:
	free(blobs);
	free(states);
	return r;
}

/* The decision point: durable record first, then tell the destination to run. */
static void commit(struct gw_migration *m)
{
	uint8_t *p;
	uint32_t len;
	char mine[64];
	gw_mig_set_phase(m, GW_MIG_COMMIT);
	if (gw_mig_fault_delay_commit_ms)
		usleep((useconds_t)gw_mig_fault_delay_commit_ms * 1000);
	GwMigCommit c = GW_MIG_COMMIT__INIT;
	c.migration_id = m->id;
	int r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_COMMIT, &c.base);
	if (!r)
		r = expect(m, GW_MIG_MSG_TYPE__GW_MIG_COMMIT_DONE, &p, &len);
	uint64_t now = gw_now_mono_ns();
	double downtime = (double)(now - m->paused_at_ns) / 1e6;
	if (r) {
		gw_warn(SUBSYS,
			"%s: committed, but the destination did not confirm (%s); it resolves by "
			"asking this host",
			m->name, strerror(-r));
	} else {
		GwMigCommitDone *d = gw_mig_commit_done__unpack(NULL, len, p);
		free(p);
		gw_mig_boot_id(mine, sizeof(mine));
		/* same boot id: one CLOCK_MONOTONIC, the exact pause-to-resume gap */
		if (d && d->boot_id && mine[0] && !strcmp(d->boot_id, mine) &&
		    d->resumed_at_ns > m->paused_at_ns)
			downtime = (double)(d->resumed_at_ns - m->paused_at_ns) / 1e6;
		if (d)
			gw_mig_commit_done__free_unpacked(d, NULL);
	}
	pthread_mutex_lock(&m->lock);
	m->st.downtime_ms = downtime;
	m->st.pages_remaining = 0;
	pthread_mutex_unlock(&m->lock);
	gw_mig_set_phase(m, GW_MIG_DONE);
}

/* Did the migration fail on the link (rather than by decision or cancel)? */
static bool st_error_is_link(struct gw_migration *m)
{
	pthread_mutex_lock(&m->lock);
	bool link = m->st.result == -1 && strstr(m->st.error, "sending") != NULL;
	pthread_mutex_unlock(&m->lock);
	return link;
}

static void abort_source(struct gw_migration *m, int paused)
{
	struct gw_mig_stats st;
	m->vmops->set_throttle(m->vm, 0);
	m->vmops->dirty_stop(m->vm);
	if (paused)
		m->vmops->resume(m->vm);
	write_outcome(m, "aborted");
	if (m->ctl && st_error_is_link(m)) {
		/* the destination may have said why it dropped the streams */
		uint16_t type;
		uint8_t *p = NULL;
		uint32_t len;
		gw_conn_set_timeout(m->ctl, 500);
		while (gw_mig_recv(m->ctl, &type, &p, &len) == 0) {
			if (type == GW_MIG_MSG_TYPE__GW_MIG_ABORT) {
				GwMigAbort *a = gw_mig_abort__unpack(NULL, len, p);
				if (a) {
					pthread_mutex_lock(&m->lock);
					snprintf(m->st.error, sizeof(m->st.error),
						 "destination aborted: %s", a->reason);
					pthread_mutex_unlock(&m->lock);
					gw_mig_abort__free_unpacked(a, NULL);
				}
				free(p);
				break;
			}
			free(p);
			p = NULL;
		}
	}
	gw_mig_get_stats(m, &st);
	if (m->ctl) {
		GwMigAbort a = GW_MIG_ABORT__INIT;
		a.reason = st.error[0] ? st.error : "aborted by the source";
		gw_conn_set_timeout(m->ctl, 2000);
		gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ABORT, &a.base);
	}
	gw_mig_set_phase(m, GW_MIG_ABORTED);
	gw_warn(SUBSYS, "%s: migration to %s %s: %s; the VM %s here", m->name, m->params.to,
		gw_mig_result_name(st.result), st.error, paused ? "resumed" : "keeps running");
}

static void *source_thread(void *arg)
{
	struct gw_migration *m = arg;
	size_t words = (m->ram_pages + 63) / 64;
	uint64_t *bitmap = calloc(words, 8);
	int paused = 0, r;

	gw_mig_send_reset();
	if (!bitmap) {
		gw_mig_fail(m, -1, "out of memory for the dirty bitmap");
		r = -ENOMEM;
	} else {
		r = setup(m);
	}
	if (!r)
		r = gw_mig_set_phase(m, GW_MIG_ITERATE);
	if (!r)
		r = iterate(m, bitmap, words);
	if (!r)
		r = switchover(m, bitmap, &paused);
	if (!r && atomic_load(&m->cancel)) {
		gw_mig_fail(m, -2, "cancelled");
		r = -ECANCELED;
	}
	if (!r) {
		uint64_t t0 = gw_now_mono_ns();
		r = write_outcome(m, "committed");
		gw_info(SUBSYS, "%s: commit record written in %.1f ms", m->name,
			(double)(gw_now_mono_ns() - t0) / 1e6);
		if (r)
			gw_mig_fail(m, -1, "cannot record the commit durably: %s", strerror(-r));
	}
	if (!r)
		commit(m);
	else
		abort_source(m, paused);
	for (unsigned i = 0; i < m->nstreams; i++)
		if (gw_mig_src_streams[i].c)
			gw_conn_shutdown(gw_mig_src_streams[i].c);
	/* close the data streams before their staging buffers go: a transport that registered
	 * a buffer (RDMA) releases it on close */
	for (unsigned i = 0; i < m->nstreams; i++) {
		struct gw_conn *c = NULL;
		pthread_mutex_lock(&m->conn_lock);
		if (m->data[i] == gw_mig_src_streams[i].c) {
			c = m->data[i];
			m->data[i] = NULL;
		}
		pthread_mutex_unlock(&m->conn_lock);
		gw_conn_close(c);
		gw_mig_src_streams[i].c = NULL;
		free(gw_mig_src_streams[i].stage);
		gw_mig_src_streams[i].stage = NULL;
	}
	free(bitmap);
	atomic_store(&m->finished, true);
	uint64_t one = 1;
	if (write(m->done_efd, &one, sizeof(one)) < 0)
		gw_warn(SUBSYS, "%s: eventfd write: %s", m->name, strerror(errno));
	return NULL;
}

int gw_mig_source_start(struct gw_migration *m)
{
	if (m->params.streams < 1 || m->params.streams > GW_MIG_MAX_STREAMS)
		return -EINVAL;
	uint64_t size;
	m->ram = m->vmops->ram(m->vm, &size);
	m->ram_pages = size / GW_PAGE_SIZE;
	m->nstreams = m->params.streams;
	snprintf(m->peer, sizeof(m->peer), "%s", m->params.to);
	if (pthread_create(&m->thread, NULL, source_thread, m))
		return -EAGAIN;
	return 0;
}
