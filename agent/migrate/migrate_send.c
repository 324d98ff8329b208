/* migrate_send.c -- the source engine's sending half: dirty pages of a round, chunk by chunk,
 * as CRC32C-checked page batches over N parallel streams. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_crc32c.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_pagebatch.h"
#include "migrate_src.h"

#define SUBSYS	     "migrate"
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
 *
 * Round 1 (all of RAM, most of the bytes) skips the copy too when the destination lists
 * the pages that failed their CRC in its ROUND_ACK (BEGIN_REPLY.resends_unverified): the
 * engine puts them back into the bitmap and round 2 sends them again, copied
 * (take_unverified in migrate_src.c). A guest racing one page of a batch costs that
 * batch once; the copy costs a memory write of all of RAM (~8 % of an idle 1 GiB
 * migration's time here, see docs/design.md). A CRC failure in a later round is damage in transit.
 */
#define STAGE_PAGES 1024u /* 4 MiB per stream */
/* Pages sent straight from guest RAM go out every 2 MiB: the socket then copies them while
 * the CRC pass has left them in this core's L2 (32 MiB sendvs: source CPU 237-269 ms per
 * idle GiB, 2 MiB: 223-226 ms, bench_migrate.sh -Q -s 1024 -r 0 -P, 3 runs each). */
#define DIRECT_FLUSH_PAGES 512u

/* Fault injection for tests (GODWIT_MIGRATE_FAULT): corrupt-batch=N (the CRC of batch N
 * only), corrupt-from=N (of batch N and every later one: a link that damages data),
 * bad-page-index=N, delay-commit=MS (sleep between the durable commit record and telling
 * the destination). Off in normal operation. */
static long fault_corrupt_batch = -1, fault_corrupt_from = -1, fault_bad_index = -1;
long gw_mig_fault_delay_commit_ms;

static void faults_load(void)
{
	fault_corrupt_batch = fault_corrupt_from = fault_bad_index = -1;
	gw_mig_fault_delay_commit_ms = 0;
	const char *f = getenv("GODWIT_MIGRATE_FAULT");
	if (!f)
		return;
	if (!strncmp(f, "corrupt-batch=", 14))
		fault_corrupt_batch = atol(f + 14);
	else if (!strncmp(f, "corrupt-from=", 13))
		fault_corrupt_from = atol(f + 13);
	else if (!strncmp(f, "bad-page-index=", 15))
		fault_bad_index = atol(f + 15);
	else if (!strncmp(f, "delay-commit=", 13))
		gw_mig_fault_delay_commit_ms = atol(f + 13);
	gw_warn(SUBSYS, "fault injection active: %s", f);
}

struct src_stream gw_mig_src_streams[GW_MIG_MAX_STREAMS];
static atomic_long batch_seq;
bool gw_mig_src_paused;

/* A page of data almost always differs from zero in its first bytes: look there first, and
 * read the whole page only when those are zero. */
static int page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
		return 0;
	uint64_t acc = 0;
	for (unsigned i = 8; i < GW_PAGE_SIZE / 8; i += 8)
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
	s->stage_used = 0; /* sendv returned: the transport is done with it; reusable */
	s->direct_unsent = 0;
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
	uint32_t crc;
	if (s->staged) {
		if (!s->stage)
			return -ENOMEM; /* stage_alloc failed, or was not called */
		if (s->stage_used + count > STAGE_PAGES) {
			int r = flush(s);
			if (r)
				return r;
		}
		uint8_t *dst = s->stage + (size_t)s->stage_used * GW_PAGE_SIZE;
		crc = gw_crc32c_copy(0, dst, src, len); /* copy and checksum in one pass */
		s->stage_used += count;
		src = dst;
	} else {
		crc = gw_crc32c(0, src, len);
		s->direct_unsent += count;
	}
	long seq = atomic_fetch_add(&batch_seq, 1);
	if (seq == fault_corrupt_batch || (fault_corrupt_from >= 0 && seq >= fault_corrupt_from))
		crc ^= 0x1;
	uint64_t wire_first = seq == fault_bad_index ? m->ram_pages + 7 : first;
	struct gw_pagebatch_hdr *h = &s->hdrs[s->nb++];
	if (s->placed) {
		/* the pages go straight into the destination's RAM now, the header in the next
		 * flush: the transport orders them before it (the source buffer, staged or RAM,
		 * stays untouched until that flush has returned) */
		struct iovec piov = {(void *)src, len};
		int r = gw_conn_write_placed(s->c, &piov, 1, &s->place, first * GW_PAGE_SIZE);
		if (r)
			return r;
		s->round_bytes += len; /* flush counts only what goes through sendv */
		gw_pagebatch_encode(h, wire_first, count, GW_PAGEBATCH_F_PLACED, crc);
		s->iov[s->niov++] = (struct iovec){h, GW_PAGEBATCH_HDR_LEN};
	} else {
		gw_pagebatch_encode(h, wire_first, count, 0, crc);
		s->iov[s->niov++] = (struct iovec){h, GW_PAGEBATCH_HDR_LEN};
		s->iov[s->niov++] = (struct iovec){(void *)src, len};
	}
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
	if (s->nb == GW_MIG_IOV_BATCHES || s->direct_unsent >= DIRECT_FLUSH_PAGES ||
	    (s->rate_bps > 0 && s->nb * GW_MIG_BATCH_MAX_PAGES >= 1024))
		return flush(s);
	return 0;
}

/*
 * The populated extent of RAM at or after byte offset from (-ENXIO: none). SEEK_HOLE walks
 * the whole populated run, which can be all of RAM: the stream keeps the last extent and
 * asks again only past its end. A page the guest populates after the lookup is still sent:
 * its dirty bit stays set in KVM (dropping it here keeps it out of the re-protect mask).
 */
static int extent(struct src_stream *s, uint64_t from, uint64_t *ds, uint64_t *de)
{
	if (!s->ext_valid || from < s->ext_start || from >= s->ext_end) {
		struct gw_migration *m = s->m;
		int r = m->vmops->ram_extent(m->vm, from, &s->ext_start, &s->ext_end);
		s->ext_valid = r == 0;
		if (r)
			return r;
	}
	*ds = from > s->ext_start ? from : s->ext_start;
	*de = s->ext_end;
	return 0;
}

/* Round 1: pages of never-written RAM are zero; take them out of the bitmap unread. */
static uint64_t drop_holes(struct src_stream *s, uint64_t first, uint64_t n)
{
	uint64_t *bm = s->bitmap, p = first, end = first + n, dropped = 0;
	while (p < end) {
		uint64_t ds = 0, de = 0;
		int r = extent(s, p * GW_PAGE_SIZE, &ds, &de);
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
		if (!gw_mig_src_paused && m->deadline_ms && gw_now_mono_ms() > m->deadline_ms)
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

/*
 * The stream's staging buffer, allocated and registered with its connection once, before
 * its first staged round, from the engine thread (which owns the connections between
 * rounds): TCP ignores the registration, RDMA pins the buffer so that sends from it are
 * zero-copy. Freed by the engine after the connection is closed.
 */
static int stage_alloc(struct src_stream *s)
{
	const size_t len = (size_t)STAGE_PAGES * GW_PAGE_SIZE;
	if (s->stage)
		return 0;
	s->stage = malloc(len);
	if (!s->stage)
		return -ENOMEM;
	int r = gw_conn_register_mem(s->c, s->stage, len);
	if (r) {
		gw_mig_fail(s->m, -1,
			    "data stream %u to %s (%s): cannot register its %zu MiB "
			    "staging buffer: %s",
			    s->idx, gw_conn_peer_name(s->c), gw_conn_ops(s->c)->name, len >> 20,
			    strerror(-r));
		free(s->stage);
		s->stage = NULL;
	}
	return r;
}

/* One round over every stream in parallel; returns bytes sent or -errno. */
long long gw_mig_send_round(struct gw_migration *m, uint64_t *bitmap, unsigned round)
{
	uint64_t before = 0, after = 0;
	double share = m->params.bandwidth_mibps
			   ? (double)m->params.bandwidth_mibps * 1048576.0 / m->nstreams
			   : 0;
	for (unsigned i = 0; i < m->nstreams; i++) {
		struct src_stream *s = &gw_mig_src_streams[i];
		before += s->bytes;
		s->bitmap = bitmap;
		s->round = (int)round;
		/* round 1 goes straight from guest RAM when the destination asks for what
		 * fails its CRC again (see Staging above) */
		s->staged = !gw_mig_src_paused && (round > 1 || !m->peer_resends);
		s->ext_valid = false;
		s->rate_bps = share;
		int r = s->staged ? stage_alloc(s) : 0;
		if (r || pthread_create(&s->th, NULL, stream_round, s)) {
			for (unsigned j = 0; j < i; j++)
				pthread_join(gw_mig_src_streams[j].th, NULL);
			return r ? r : -EAGAIN;
		}
	}
	int err = 0;
	for (unsigned i = 0; i < m->nstreams; i++) {
		/* while waiting, tell the destination we are alive (it times out otherwise) */
		for (;;) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += HEARTBEAT_MS / 1000;
			if (pthread_timedjoin_np(gw_mig_src_streams[i].th, NULL, &dl) == 0)
				break;
			GwMigRoundEnd hb = GW_MIG_ROUND_END__INIT;
			hb.round = round;
			if (gw_mig_send(m->ctl, GW_MIG_MSG_TYPE__GW_MIG_ROUND_END, &hb.base))
				gw_conn_shutdown(
				    gw_mig_src_streams[i].c); /* link gone: end the round now */
		}
		if (gw_mig_src_streams[i].err && !err)
			err = gw_mig_src_streams[i].err;
		after += gw_mig_src_streams[i].bytes;
	}
	return err ? err : (long long)(after - before);
}

void gw_mig_send_reset(void)
{
	faults_load();
	atomic_store(&batch_seq, 0);
	gw_mig_src_paused = false;
}
