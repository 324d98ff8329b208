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
#include "gw_crc32c.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_pagebatch.h"
#include "migrate.h"

#define SUBSYS "migrate"
#define ACK_TIMEOUT_MS 15000
#define HEARTBEAT_MS 1000

/*
 * Staging: while the VM runs, the pages of a batch are copied into a per-stream buffer
 * first, and the CRC32C and the bytes sent both come from that copy. Sending straight from
 * guest RAM computed the CRC at one moment and let the socket read the pages again later:
 * a guest write to any one page in between made the whole batch (up to 256 pages) fail CRC
 * on the destination, while dirty logging (correctly) re-sent only the page that was
 * written, so the batch's other pages stayed "unverified" for ever and the switchover
 * failed (hash-chain guests with 2+ vCPUs, most runs). A copy is self-consistent; a write
 * during or after the copy is caught by dirty logging (the chunk was re-protected first)
 * and the page goes again. While the VM is paused (the last round) nothing writes guest
 * RAM, so those pages go straight from RAM without a copy: no added downtime.
 */
#define STAGE_PAGES 1024u /* 4 MiB per stream */

/* Fault injection for tests (GODWIT_MIGRATE_FAULT): corrupt-batch=N, bad-page-index=N,
 * delay-commit=MS (sleep between the durable commit record and telling the destination).
 * Off in normal operation. */
static long fault_corrupt_batch = -1, fault_bad_index = -1, fault_delay_commit_ms;

static void faults_load(void)
{
	const char *f = getenv("GODWIT_MIGRATE_FAULT");
	if (!f)
		return;
	if (!strncmp(f, "corrupt-batch=", 14))
		fault_corrupt_batch = atol(f + 14);
	else if (!strncmp(f, "bad-page-index=", 15))
		fault_bad_index = atol(f + 15);
	else if (!strncmp(f, "delay-commit=", 13))
		fault_delay_commit_ms = atol(f + 13);
	gw_warn(SUBSYS, "fault injection active: %s", f);
}

struct src_stream {
	struct gw_migration *m;
	unsigned idx;
	struct gw_conn *c;
	pthread_t th;
	uint64_t *bitmap;
	int round;
	/* results of this stream (all rounds) */
	uint64_t batches, pages, zero_pages, bytes;
	int err;
	/* per-round scratch */
	double rate_bps; /* this stream's share of the bandwidth cap, 0 = none */
	uint64_t round_start_ns, round_bytes;
	bool staged;	    /* this round copies pages into stage (the VM runs) */
	uint8_t *stage;	    /* STAGE_PAGES pages, allocated on first use */
	uint32_t stage_used; /* pages of stage referenced by unsent iovecs */
	unsigned nb;
	struct gw_pagebatch_hdr hdrs[GW_MIG_IOV_BATCHES];
	struct iovec iov[2 * GW_MIG_IOV_BATCHES];
	int niov;
};

static struct src_stream streams[GW_MIG_MAX_STREAMS];
static atomic_long batch_seq;
static bool vm_paused; /* the VM is paused (switchover): send straight from guest RAM */

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t acc = 0;
	for (unsigned i = 0; i < GW_PAGE_SIZE / 8; i += 8)
		acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		       w[i + 7];
	return acc == 0;
}

static int flush(struct src_stream *s)
{
	if (!s->niov)
		return 0;
	int r = gw_conn_sendv(s->c, s->iov, s->niov);
	if (r)
		return r;
	for (int i = 0; i < s->niov; i++)
		s->round_bytes += s->iov[i].iov_len;
	s->niov = 0;
	s->nb = 0;
	s->stage_used = 0; /* the kernel has copied it (TCP); reusable */
	/* bandwidth cap: sleep until this stream is back under its share, in short naps so
	 * that a cancel is seen at once */
	while (s->rate_bps > 0 && !atomic_load(&s->m->cancel)) {
		double elapsed = (double)(gw_now_mono_ns() - s->round_start_ns) / 1e9;
		double want = (double)s->round_bytes / s->rate_bps;
		if (want <= elapsed)
			break;
		double d = want - elapsed < 0.05 ? want - elapsed : 0.05;
		struct timespec ts = {0, (long)(d * 1e9)};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int add_batch(struct src_stream *s, uint64_t first, uint32_t count)
{
	struct gw_migration *m = s->m;
	const uint8_t *src = m->ram + first * GW_PAGE_SIZE;
	size_t len = (size_t)count * GW_PAGE_SIZE;
	if (s->staged) {
		if (!s->stage) {
			s->stage = malloc((size_t)STAGE_PAGES * GW_PAGE_SIZE);
			if (!s->stage)
				return -ENOMEM;
			gw_conn_register_mem(s->c, s->stage, (size_t)STAGE_PAGES * GW_PAGE_SIZE);
		}
		if (s->stage_used + count > STAGE_PAGES) {
			int r = flush(s);
			if (r)
				return r;
		}
		uint8_t *dst = s->stage + (size_t)s->stage_used * GW_PAGE_SIZE;
		memcpy(dst, src, len);
		s->stage_used += count;
		src = dst;
	}
	long seq = atomic_fetch_add(&batch_seq, 1);
	uint32_t crc = gw_crc32c(0, src, len);
	if (seq == fault_corrupt_batch)
		crc ^= 0x1;
	uint64_t wire_first = seq == fault_bad_index ? m->ram_pages + 7 : first;
	struct gw_pagebatch_hdr *h = &s->hdrs[s->nb++];
	gw_pagebatch_encode(h, wire_first, count, 0, crc);
	s->iov[s->niov++] = (struct iovec){h, GW_PAGEBATCH_HDR_LEN};
	s->iov[s->niov++] = (struct iovec){(void *)src, len};
	s->batches++;
	s->pages += count;
	s->bytes += GW_PAGEBATCH_HDR_LEN + (uint64_t)count * GW_PAGE_SIZE;
	pthread_mutex_lock(&m->lock);
	m->st.pages_sent += count;
	m->st.bytes += GW_PAGEBATCH_HDR_LEN + (uint64_t)count * GW_PAGE_SIZE;
	if (m->st.pages_remaining >= count)
		m->st.pages_remaining -= count;
	pthread_mutex_unlock(&m->lock);
	/* under a bandwidth cap, flush often so that the pacing stays smooth */
	if (s->nb == GW_MIG_IOV_BATCHES || (s->rate_bps > 0 && s->nb * GW_MIG_BATCH_MAX_PAGES >= 1024))
		return flush(s);
	return 0;
}

/* Round 1: pages of never-written RAM are zero; take them out of the bitmap unread. */
static uint64_t drop_holes(struct src_stream *s, uint64_t first, uint64_t n)
{
	struct gw_migration *m = s->m;
	uint64_t *bm = s->bitmap, p = first, end = first + n, dropped = 0;
	while (p < end) {
		uint64_t ds, de;
		int r = m->vmops->ram_extent(m->vm, p * GW_PAGE_SIZE, &ds, &de);
		uint64_t hole_end = r == -ENXIO ? end : r ? p : ds / GW_PAGE_SIZE;
		if (hole_end > end)
			hole_end = end;
		for (; p < hole_end; p++) {
			if (bm[p / 64] >> (p % 64) & 1) {
				bm[p / 64] &= ~(1ull << (p % 64));
				dropped++;
			}
		}
		if (r)
			break;
		p = (de + GW_PAGE_SIZE - 1) / GW_PAGE_SIZE; /* past this populated range */
	}
	return dropped;
}

/* Send the dirty pages of one chunk: re-protect them, then runs of contiguous pages. */
static int send_chunk(struct src_stream *s, uint64_t first, uint64_t n)
{
	struct gw_migration *m = s->m;
	uint64_t *bm = s->bitmap;
	uint64_t w0 = first / 64, w1 = (first + n + 63) / 64, any = 0;
	for (uint64_t w = w0; w < w1; w++)
		any |= bm[w];
	if (!any)
		return 0;
	uint64_t p = first, end = first + n, zeros = 0;
	if (s->round == 1)
		zeros = drop_holes(s, first, n);
	int r = m->vmops->dirty_clear(m->vm, first, n, &bm[w0]);
	if (r)
		return r;
	while (p < end) {
		if (!(bm[p / 64] >> (p % 64) & 1)) {
			if (bm[p / 64] == 0) {
				p = (p / 64 + 1) * 64;
				continue;
			}
			p++;
			continue;
		}
		/* a run of dirty pages; in round 1, zero pages split runs and are skipped */
		uint64_t q = p;
		while (q < end && q - p < GW_MIG_BATCH_MAX_PAGES && (bm[q / 64] >> (q % 64) & 1)) {
			if (s->round == 1 && page_is_zero(m->ram + q * GW_PAGE_SIZE))
				break;
			q++;
		}
		if (q > p) {
			r = add_batch(s, p, (uint32_t)(q - p));
			if (r)
				return r;
			p = q;
		} else {
			zeros++;
			p++;
		}
		if (atomic_load(&m->cancel))
			return -ECANCELED;
		if (!vm_paused && m->deadline_ms && gw_now_mono_ms() > m->deadline_ms)
			return -ETIME;
	}
	for (uint64_t w = w0; w < w1; w++)
		bm[w] = 0;
	if (zeros) {
		s->zero_pages += zeros;
		pthread_mutex_lock(&m->lock);
		m->st.pages_zero += zeros;
		m->st.pages_remaining =
			m->st.pages_remaining >= zeros ? m->st.pages_remaining - zeros : 0;
		pthread_mutex_unlock(&m->lock);
	}
	return 0;
}

static void *stream_round(void *arg)
{
	struct src_stream *s = arg;
	struct gw_migration *m = s->m;
	uint64_t nchunks = (m->ram_pages + GW_MIG_CHUNK_PAGES - 1) / GW_MIG_CHUNK_PAGES;
	s->round_start_ns = gw_now_mono_ns();
	s->round_bytes = 0;
	for (uint64_t c = s->idx; c < nchunks && !s->err; c += m->nstreams) {
		uint64_t first = c * GW_MIG_CHUNK_PAGES;
		uint64_t n = first + GW_MIG_CHUNK_PAGES <= m->ram_pages ? GW_MIG_CHUNK_PAGES
									 : m->ram_pages - first;
		s->err = send_chunk(s, first, n);
	}
	if (!s->err)
		s->err = flush(s);
	return NULL;
}

/* One round over every stream in parallel; returns bytes sent or -errno. */
static long long send_round(struct gw_migration *m, uint64_t *bitmap, unsigned round)
{
	uint64_t before = 0, after = 0;
	double share = m->params.bandwidth_mibps
			       ? (double)m->params.bandwidth_mibps * 1048576.0 / m->nstreams
			       : 0;
	for (unsigned i = 0; i < m->nstreams; i++) {
		struct src_stream *s = &streams[i];
		before += s->bytes;
		s->bitmap = bitmap;
		s->round = (int)round;
		s->staged = !vm_paused;
		s->rate_bps = share;
		if (pthread_create(&s->th, NULL, stream_round, s)) {
			for (unsigned j = 0; j < i; j++)
				pthread_join(streams[j].th, NULL);
			return -EAGAIN;
		}
	}
	int err = 0;
	for (unsigned i = 0; i < m->nstreams; i++) {
		/* while waiting, tell the destination we are alive (it times out otherwise) */
		for (;;) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += HEARTBEAT_MS / 1000;
			if (pthread_timedjoin_np(streams[i].th, NULL, &dl) == 0)
				break;
			GwMigRoundEnd hb = GW_MIG_ROUND_END__INIT;
			hb.round = round;
			if (gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ROUND_END, &hb.base))
				gw_conn_shutdown(streams[i].c); /* link gone: end the round now */
		}
		if (streams[i].err && !err)
			err = streams[i].err;
		after += streams[i].bytes;
	}
	return err ? err : (long long)(after - before);
}

static int connect_peer(struct gw_migration *m, struct gw_conn **out)
{
	struct gw_transport_opts o = {.timeout_ms = 10000};
	int r = gw_transport_tcp.connect(m->params.to, &o, out);
	if (r)
		return r;
	r = gw_auth_client(*out, m->key, m->keylen);
	if (r) {
		gw_conn_close(*out);
		*out = NULL;
	}
	return r;
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

static int setup(struct gw_migration *m)
{
	uint8_t *p;
	uint32_t len;
	int r = connect_peer(m, &m->ctl);
	if (r) {
		gw_mig_fail(m, -1, "cannot reach destination %s: %s", m->params.to,
			    r == -EACCES ? "authentication failed (cluster key differs?)"
					 : strerror(-r));
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
	gw_mig_begin_reply__free_unpacked(rep, NULL);
	for (unsigned i = 0; i < m->nstreams; i++) {
		struct src_stream *s = &streams[i];
		memset(s, 0, sizeof(*s));
		s->m = m;
		s->idx = i;
		r = connect_peer(m, &s->c);
		if (r) {
			gw_mig_fail(m, -1, "data stream %u to %s: %s", i, m->params.to,
				    strerror(-r));
			return r;
		}
		GwMigJoin j = GW_MIG_JOIN__INIT;
		j.migration_id = m->id;
		j.stream = i;
		r = gw_mig_send(s->c, GW_MIG_MSG_TYPE__GW_MIG_JOIN, &j.base);
		if (r) {
			gw_mig_fail(m, -1, "data stream %u join: %s", i, strerror(-r));
			return r;
		}
		gw_conn_register_mem(s->c, m->ram, m->ram_pages * GW_PAGE_SIZE);
		pthread_mutex_lock(&m->conn_lock);
		m->data[i] = s->c;
		pthread_mutex_unlock(&m->conn_lock);
	}
	return 0;
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
		long long sent = send_round(m, bitmap, round);
		uint64_t t1 = gw_now_mono_ns();
		if (sent < 0) {
			struct gw_mig_stats st;
			gw_mig_get_stats(m, &st);
			if (sent == -ECANCELED || atomic_load(&m->cancel))
				gw_mig_fail(m, -2, "cancelled");
			else if (sent == -ETIME)
				gw_mig_fail(m, -1,
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
			sb[i] = streams[i].batches;
		GwMigRoundEnd re = GW_MIG_ROUND_END__INIT;
		re.round = round;
		re.pages = (uint64_t)sent / GW_PAGE_SIZE;
		re.n_stream_batches = m->nstreams;
		re.stream_batches = sb;
		r = gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ROUND_END, &re.base);
		if (!r) {
			uint8_t *p;
			uint32_t len;
			gw_conn_set_timeout(m->ctl, ACK_TIMEOUT_MS);
			r = expect(m, GW_MIG_MSG_TYPE__GW_MIG_ROUND_ACK, &p, &len);
			free(p);
		}
		if (r) {
			gw_mig_fail(m, -1, "round %u: destination %s did not confirm the round: %s",
				    round, m->params.to, strerror(-r));
			return r;
		}
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
		unsigned next = round >= 2 ? gw_mig_next_throttle(throttle, prev_remaining,
								  (uint64_t)dirty, pred,
								  m->params.downtime_ms)
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
	vm_paused = true;
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
	long long sent = send_round(m, bitmap, round);
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
		sb[i] = streams[i].batches;
		sp[i] = streams[i].pages;
		so.pages_total += streams[i].pages;
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
	if (fault_delay_commit_ms)
		usleep((useconds_t)fault_delay_commit_ms * 1000);
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

	faults_load();
	atomic_store(&batch_seq, 0);
	vm_paused = false;
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
		if (streams[i].c)
			gw_conn_shutdown(streams[i].c);
	for (unsigned i = 0; i < m->nstreams; i++) {
		free(streams[i].stage);
		streams[i].stage = NULL;
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
