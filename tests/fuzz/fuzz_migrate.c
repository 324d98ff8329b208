/* fuzz_migrate.c -- libFuzzer: what a migration peer sends. The first byte picks the
 * decoder, the rest is its input:
 *   0  a page-batch header (gw_pagebatch_validate), against a RAM size and batch limit
 *   1  a page-run list (gw_pageruns_merge), as a ROUND_ACK's unverified_runs arrive
 *   2  a bitmap -> gw_pageruns_from_bitmap -> gw_pageruns_merge round trip
 *   3  a peer-protocol message (GwMigBegin ... GwMigPlacement) by type; a ROUND_ACK's runs
 *      then go through gw_pageruns_merge as the source takes them
 *   4  a vCPU state blob (gw_vmm_vcpu_restore, the container parser of vmm_state.c)
 *   5  a VM state blob (gw_vmm_vm_restore)
 * Checks: what validate accepts lies inside RAM and re-encodes to the same header; merge
 * either refuses with a reason and leaves the bitmap alone or sets exactly the named pages;
 * protobuf round trips are stable; a restored blob saves and restores again to the same
 * sections. */
#include <endian.h>
#include <errno.h>

#include "fuzz_common.h"
#include "gw_crc32c.h"
#include "gw_pagebatch.h"
#include "migrate.h"
#include "migration.pb-c.h"
#include "vmm_blob.h"
#include "vmm_internal.h"

#define MAX_FUZZ_PAGES 4096 /* bitmaps the harness builds: small, so that merges stay fast */

static void fuzz_batch_hdr(struct fuzz_in *in)
{
	struct gw_pagebatch_hdr hdr, again;
	struct gw_pagebatch_info info, info2;
	char err[128] = "";
	uint64_t ram_pages = fuzz_uint(in, 8);
	uint32_t max = (uint32_t)fuzz_uint(in, 4);
	bool fix_crc = fuzz_u8(in) & 1;

	memset(&hdr, 0, sizeof(hdr));
	memcpy(&hdr, in->p, in->n < sizeof(hdr) ? in->n : sizeof(hdr));
	/* half the time, fix the header CRC up so that the fuzzer reaches the field checks */
	if (fix_crc)
		hdr.hdr_crc32c =
		    htole32(gw_crc32c(0, &hdr, offsetof(struct gw_pagebatch_hdr, hdr_crc32c)));
	int r = gw_pagebatch_validate(&hdr, ram_pages, max, &info, err, sizeof(err));
	if (r) {
		FUZZ_CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT || r == -EPROTO ||
			   r == -EMSGSIZE || r == -ERANGE);
		FUZZ_CHECK(err[0] && memchr(err, 0, sizeof(err)));
		return;
	}
	/* what validate accepts must be safe to turn into a RAM range */
	FUZZ_CHECK(info.page_count >= 1 && info.page_count <= GW_PAGEBATCH_MAX_PAGES);
	FUZZ_CHECK(max == 0 || info.page_count <= max);
	FUZZ_CHECK(info.first_page < ram_pages && info.page_count <= ram_pages - info.first_page);
	FUZZ_CHECK(!(info.flags & ~GW_PAGEBATCH_F_KNOWN));
	size_t payload = gw_pagebatch_payload_len(&info);
	if (info.flags & (GW_PAGEBATCH_F_ZERO | GW_PAGEBATCH_F_PLACED))
		FUZZ_CHECK(payload == 0);
	else
		FUZZ_CHECK(payload == (size_t)info.page_count * GW_PAGE_SIZE);
	/* encode what was decoded: the same header, accepted again the same way */
	gw_pagebatch_encode(&again, info.first_page, info.page_count, info.flags, info.crc32c);
	FUZZ_CHECK(memcmp(&again, &hdr, sizeof(hdr)) == 0);
	FUZZ_CHECK(gw_pagebatch_validate(&again, ram_pages, max, &info2, NULL, 0) == 0);
	FUZZ_CHECK(info.first_page == info2.first_page && info.page_count == info2.page_count);
	FUZZ_CHECK(info.flags == info2.flags && info.crc32c == info2.crc32c);
}

static size_t popcount_bm(const uint64_t *bm, size_t words)
{
	size_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += (size_t)__builtin_popcountll(bm[i]);
	return n;
}

/* Merge runs (from the peer) into bm of npages bits and check the outcome. */
static void merge_checked(uint64_t *bm, uint64_t npages, const uint64_t *runs, size_t nvals)
{
	size_t words = (npages + 63) / 64;
	uint64_t *before = malloc((words ? words : 1) * 8);
	uint64_t added = 7;
	char err[160] = "";
	FUZZ_CHECK(before);
	memcpy(before, bm, words * 8);
	int r = gw_pageruns_merge(bm, npages, runs, nvals, &added, err, sizeof(err));
	if (r) {
		FUZZ_CHECK(r == -EPROTO || r == -ERANGE);
		FUZZ_CHECK(err[0] && added == 7);
		FUZZ_CHECK(!memcmp(before, bm, words * 8)); /* refused: untouched */
	} else {
		FUZZ_CHECK(nvals % 2 == 0);
		FUZZ_CHECK(added - 7 == popcount_bm(bm, words) - popcount_bm(before, words));
		for (size_t i = 0; i < nvals; i += 2) {
			FUZZ_CHECK(runs[i + 1] >= 1 && runs[i] < npages &&
				   runs[i + 1] <= npages - runs[i]);
			for (uint64_t p = runs[i]; p < runs[i] + runs[i + 1]; p++)
				FUZZ_CHECK(bm[p / 64] >> (p % 64) & 1);
		}
		/* nothing beyond the last page, nothing cleared */
		if (npages % 64)
			FUZZ_CHECK(!(bm[words - 1] >> (npages % 64)));
		for (size_t w = 0; w < words; w++)
			FUZZ_CHECK((bm[w] & before[w]) == before[w]);
	}
	free(before);
}

static void fuzz_runs(struct fuzz_in *in)
{
	uint64_t npages = fuzz_uint(in, 2) % (MAX_FUZZ_PAGES + 1);
	size_t words = (npages + 63) / 64;
	uint64_t *bm = calloc(words ? words : 1, 8);
	size_t nvals = in->n / 8;
	uint64_t *runs = malloc((nvals ? nvals : 1) * 8);
	FUZZ_CHECK(bm && runs);
	for (size_t i = 0; i < nvals; i++)
		runs[i] = fuzz_uint(in, 8);
	merge_checked(bm, npages, runs, nvals);
	free(bm);
	free(runs);
}

static void fuzz_bitmap_runs(struct fuzz_in *in)
{
	uint64_t npages = fuzz_uint(in, 2) % (MAX_FUZZ_PAGES + 1);
	size_t max_runs = fuzz_u8(in);
	size_t words = (npages + 63) / 64;
	uint64_t *bm = calloc(words ? words : 1, 8), *back = calloc(words ? words : 1, 8);
	uint64_t *runs = malloc(2 * (max_runs ? max_runs : 1) * 8), total = 0, added = 0;
	FUZZ_CHECK(bm && back && runs);
	for (size_t w = 0; w < words; w++)
		bm[w] = fuzz_uint(in, 8); /* bits past npages are garbage: ignored */
	size_t n = gw_pageruns_from_bitmap(bm, npages, runs, max_runs, &total);
	FUZZ_CHECK(n <= max_runs);
	uint64_t covered = 0;
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(runs[2 * i + 1] >= 1);
		FUZZ_CHECK(i == 0 || runs[2 * i] > runs[2 * i - 2] + runs[2 * i - 1]); /* apart */
		covered += runs[2 * i + 1];
	}
	FUZZ_CHECK(covered <= total);
	FUZZ_CHECK(gw_pageruns_merge(back, npages, runs, 2 * n, &added, NULL, 0) == 0);
	FUZZ_CHECK(added == covered);
	for (uint64_t p = 0; p < npages; p++) {
		bool set = bm[p / 64] >> (p % 64) & 1, got = back[p / 64] >> (p % 64) & 1;
		FUZZ_CHECK(!got || set);
		if (covered == total)
			FUZZ_CHECK(got == set); /* room for every run: the exact bitmap */
	}
	free(bm);
	free(back);
	free(runs);
}

static const ProtobufCMessageDescriptor *peer_desc(uint8_t t)
{
	static const ProtobufCMessageDescriptor *const d[] = {
	    &gw_mig_begin__descriptor,	       &gw_mig_begin_reply__descriptor,
	    &gw_mig_join__descriptor,	       &gw_mig_switchover__descriptor,
	    &gw_mig_ack__descriptor,	       &gw_mig_commit__descriptor,
	    &gw_mig_commit_done__descriptor,   &gw_mig_abort__descriptor,
	    &gw_mig_outcome_query__descriptor, &gw_mig_outcome__descriptor,
	    &gw_mig_round_end__descriptor,     &gw_mig_placement__descriptor,
	};
	return d[t % (sizeof(d) / sizeof(d[0]))];
}

static void fuzz_peer_msg(struct fuzz_in *in)
{
	const ProtobufCMessageDescriptor *d = peer_desc(fuzz_u8(in));
	uint64_t npages = fuzz_uint(in, 2) % (MAX_FUZZ_PAGES + 1);
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, in->n, in->p);
	if (!m)
		return;
	fuzz_pb_round_trip(m);
	if (d == &gw_mig_round_end__descriptor) {
		/* the source's take_unverified: the runs are merged into its dirty bitmap */
		const GwMigRoundEnd *re = (const GwMigRoundEnd *)m;
		uint64_t *bm = calloc((npages + 63) / 64 + 1, 8);
		FUZZ_CHECK(bm);
		if (re->n_unverified_runs <= 2 * GW_MIG_RESEND_MAX_RUNS)
			merge_checked(bm, npages, re->unverified_runs, re->n_unverified_runs);
		free(bm);
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- state blobs through vmm_state.c, on a VM whose backend only records sections ---- */

static struct gw_blob_sections last; /* what the fake backend was given, copied */
static uint8_t last_buf[1 << 16];

static int fake_restore(struct gw_vcpu *vcpu, const struct gw_blob_sections *s)
{
	size_t off = 0;
	memset(&last, 0, sizeof(last));
	for (int t = 1; t < GW_SEC_MAX_; t++) {
		if (!s->data[t] || t == GW_SEC_GODWIT)
			continue;
		if (s->len[t] > sizeof(last_buf) - off)
			return -EINVAL; /* larger than any real section */
		memcpy(last_buf + off, s->data[t], s->len[t]);
		last.data[t] = last_buf + off;
		last.len[t] = s->len[t];
		off += s->len[t];
	}
	return 0;
}

static int fake_save(struct gw_vcpu *vcpu, struct gw_blob_writer *w)
{
	for (int t = 1; t < GW_SEC_MAX_; t++)
		if (last.data[t])
			gw_blob_put_section(w, (enum gw_sec_type)t, last.data[t], last.len[t]);
	return 0;
}

static struct gw_vmm_backend fake_be = {.vcpu_restore = fake_restore, .vcpu_save = fake_save};

static void fuzz_blob(struct fuzz_in *in, bool vm_blob)
{
	static struct gw_vmm vmm;
	static struct gw_vcpu vcpus[4];
	static uint8_t again[sizeof(last_buf) + 4096];
	unsigned idx = fuzz_u8(in) % 4;
	uint8_t which = fuzz_u8(in);

	memset(&vmm, 0, sizeof(vmm));
	memset(vcpus, 0, sizeof(vcpus));
	pthread_mutex_init(&vmm.lock, NULL);
	snprintf(vmm.name, sizeof(vmm.name), "fuzz");
	fake_be.name = which & 1 ? "process" : "kvm";
	vmm.be = &fake_be;
	vmm.nr_vcpus = 1 + (which >> 1) % 4;
	vmm.vcpus = vcpus;
	vmm.ram_size = 1ull << 28;
	vmm.tsc_khz = which & 0x40 ? 2000000 : 0;
	for (unsigned i = 0; i < 4; i++) {
		vcpus[i].vmm = &vmm;
		vcpus[i].index = i;
	}
	vmm.state = GW_VMM_CREATED;
	if (vm_blob) {
		int r = gw_vmm_vm_restore(&vmm, in->p, in->n);
		FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOTSUP);
		return;
	}
	int r = gw_vmm_vcpu_restore(&vmm, idx, in->p, in->n);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT);
	if (r)
		return;
	FUZZ_CHECK(idx < vmm.nr_vcpus && vcpus[idx].restored);
	FUZZ_CHECK(vmm.nr_stopped <= vmm.nr_vcpus);
	/* save what was restored, restore that: same sections, same stopped flag */
	struct gw_blob_sections first = last;
	static uint8_t first_buf[sizeof(last_buf)];
	memcpy(first_buf, last_buf, sizeof(last_buf));
	bool stopped = vcpus[idx].stopped;
	size_t len = 0;
	vmm.state = GW_VMM_PAUSED;
	FUZZ_CHECK(gw_vmm_vcpu_save(&vmm, idx, again, sizeof(again), &len) == 0);
	vmm.state = GW_VMM_CREATED;
	FUZZ_CHECK(gw_vmm_vcpu_restore(&vmm, idx, again, len) == 0);
	FUZZ_CHECK(vcpus[idx].stopped == stopped);
	for (int t = 1; t < GW_SEC_MAX_; t++) {
		FUZZ_CHECK(!first.data[t] == !last.data[t] && first.len[t] == last.len[t]);
		if (first.data[t])
			FUZZ_CHECK(!memcmp(first_buf + (first.data[t] - last_buf), last.data[t],
					   last.len[t]));
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	switch (fuzz_u8(&in) % 6) {
	case 0:
		fuzz_batch_hdr(&in);
		break;
	case 1:
		fuzz_runs(&in);
		break;
	case 2:
		fuzz_bitmap_runs(&in);
		break;
	case 3:
		fuzz_peer_msg(&in);
		break;
	case 4:
		fuzz_blob(&in, false);
		break;
	case 5:
		fuzz_blob(&in, true);
		break;
	}
	return 0;
}
