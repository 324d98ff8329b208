/* test_pagebatch.c -- page batch headers: every invalid header refused first, then layout. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_crc32c.h"
#include "gw_pagebatch.h"

#define RAM_PAGES 1000u
#define MAX_BATCH 64u

/* Recompute the header CRC after a test has tampered with a field (as a buggy peer would). */
static void reseal(struct gw_pagebatch_hdr *h)
{
	h->hdr_crc32c = htole32(gw_crc32c(0, h, offsetof(struct gw_pagebatch_hdr, hdr_crc32c)));
}

static int check(const struct gw_pagebatch_hdr *h)
{
	char err[128] = "";
	int r = gw_pagebatch_validate(h, RAM_PAGES, MAX_BATCH, NULL, err, sizeof(err));
	if (r < 0)
		assert_true(strlen(err) > 0);
	return r;
}

static void test_bad_magic(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, 0, 1, 0, 0);
	h.magic = htole32(0x12345678);
	reseal(&h);
	assert_int_equal(check(&h), -EBADMSG);
}

static void test_bad_header_crc(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, 10, 1, 0, 0);
	h.first_page = htole64(11); /* a flipped index, not resealed */
	assert_int_equal(check(&h), -EBADMSG);
}

static void test_bad_version(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, 0, 1, 0, 0);
	h.version = htole16(GW_PAGEBATCH_VERSION + 1);
	reseal(&h);
	assert_int_equal(check(&h), -EPROTONOSUPPORT);
	h.version = 0;
	reseal(&h);
	assert_int_equal(check(&h), -EPROTONOSUPPORT);
}

static void test_bad_flags(void **state)
{
	struct gw_pagebatch_hdr h;
	for (unsigned bit = 0; bit < 16; bit++) {
		if ((1u << bit) & GW_PAGEBATCH_F_KNOWN)
			continue;
		gw_pagebatch_encode(&h, 0, 1, (uint16_t)(1u << bit), 0);
		assert_int_equal(check(&h), -EPROTO);
	}
	/* zero and placed together make no sense */
	gw_pagebatch_encode(&h, 0, 1, GW_PAGEBATCH_F_ZERO | GW_PAGEBATCH_F_PLACED, 0);
	assert_int_equal(check(&h), -EPROTO);
	/* placed: valid, and no page bytes follow on the stream */
	struct gw_pagebatch_info b;
	gw_pagebatch_encode(&h, 3, 5, GW_PAGEBATCH_F_PLACED, 0x1234);
	assert_int_equal(gw_pagebatch_validate(&h, 100, 0, &b, NULL, 0), 0);
	assert_int_equal(gw_pagebatch_payload_len(&b), 0);
}

static void test_reserved_nonzero(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, 0, 1, 0, 0);
	h.reserved = htole32(1);
	reseal(&h);
	assert_int_equal(check(&h), -EBADMSG);
}

static void test_count_zero(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, 0, 0, 0, 0);
	assert_int_equal(check(&h), -EMSGSIZE);
}

static void test_count_too_big(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, 0, MAX_BATCH + 1, 0, 0);
	assert_int_equal(check(&h), -EMSGSIZE);
	gw_pagebatch_encode(&h, 0, 0xffffffffu, 0, 0);
	assert_int_equal(check(&h), -EMSGSIZE);
	/* max_batch_pages 0 or too large is capped by the protocol limit */
	gw_pagebatch_encode(&h, 0, GW_PAGEBATCH_MAX_PAGES + 1, 0, 0);
	assert_int_equal(gw_pagebatch_validate(&h, 1ull << 40, 0, NULL, NULL, 0), -EMSGSIZE);
	assert_int_equal(gw_pagebatch_validate(&h, 1ull << 40, 0xffffffffu, NULL, NULL, 0),
			 -EMSGSIZE);
}

static void test_first_page_out_of_range(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, RAM_PAGES, 1, 0, 0);
	assert_int_equal(check(&h), -ERANGE);
	gw_pagebatch_encode(&h, RAM_PAGES - 1, 2, 0, 0);
	assert_int_equal(check(&h), -ERANGE);
	gw_pagebatch_encode(&h, 0, 1, 0, 0);
	assert_int_equal(gw_pagebatch_validate(&h, 0, MAX_BATCH, NULL, NULL, 0), -ERANGE);
}

static void test_first_plus_count_overflows(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, UINT64_MAX, 2, 0, 0);
	assert_int_equal(check(&h), -ERANGE);
	gw_pagebatch_encode(&h, UINT64_MAX - 1, MAX_BATCH, 0, 0);
	assert_int_equal(gw_pagebatch_validate(&h, UINT64_MAX, MAX_BATCH, NULL, NULL, 0), -ERANGE);
}

static void test_zero_run_with_crc(void **state)
{
	struct gw_pagebatch_hdr h;
	gw_pagebatch_encode(&h, 0, 4, GW_PAGEBATCH_F_ZERO, 0x1234);
	assert_int_equal(check(&h), -EBADMSG);
}

/* Edges that are valid: the last pages of RAM, a full-size batch, every known flag. */
static void test_valid_edges(void **state)
{
	struct gw_pagebatch_hdr h;
	struct gw_pagebatch_info b;
	gw_pagebatch_encode(&h, RAM_PAGES - MAX_BATCH, MAX_BATCH, GW_PAGEBATCH_F_LAST, 0xdeadbeef);
	assert_int_equal(gw_pagebatch_validate(&h, RAM_PAGES, MAX_BATCH, &b, NULL, 0), 0);
	assert_int_equal(b.first_page, RAM_PAGES - MAX_BATCH);
	assert_int_equal(b.page_count, MAX_BATCH);
	assert_int_equal(b.flags, GW_PAGEBATCH_F_LAST);
	assert_int_equal(b.crc32c, 0xdeadbeef);
	gw_pagebatch_encode(&h, RAM_PAGES - 1, 1, GW_PAGEBATCH_F_ZERO | GW_PAGEBATCH_F_LAST, 0);
	assert_int_equal(check(&h), 0);
	gw_pagebatch_encode(&h, UINT64_MAX - 1, 1, 0, 0);
	assert_int_equal(gw_pagebatch_validate(&h, UINT64_MAX, MAX_BATCH, NULL, NULL, 0), 0);
}

/* The wire layout is fixed: little endian, fields at their documented offsets. */
static void test_wire_layout(void **state)
{
	struct gw_pagebatch_hdr h;
	const uint8_t *p = (const uint8_t *)&h;
	gw_pagebatch_encode(&h, 0x0102030405060708ull, 0x11223344, 0x0003, 0xa1b2c3d4);
	assert_memory_equal(p, "GWPB", 4);
	assert_int_equal(p[4], 1);
	assert_int_equal(p[5], 0);
	assert_int_equal(p[6], 3);
	assert_int_equal(p[8], 0x08);
	assert_int_equal(p[15], 0x01);
	assert_int_equal(p[16], 0x44);
	assert_int_equal(p[20], 0xd4);
	assert_int_equal(p[24] | p[25] | p[26] | p[27], 0);
	uint32_t want = gw_crc32c(0, p, 28);
	assert_int_equal(p[28] | p[29] << 8 | p[30] << 16 | (uint32_t)p[31] << 24, want);
}

/* A batch points one iovec straight into guest RAM; a zero run has no payload iovec. */
static void test_iov_into_ram(void **state)
{
	uint8_t *ram = calloc(16, GW_PAGE_SIZE);
	struct gw_pagebatch_hdr h;
	struct gw_pagebatch_info b;
	struct iovec iov[2];
	assert_non_null(ram);
	for (size_t i = 0; i < 16 * GW_PAGE_SIZE; i++)
		ram[i] = (uint8_t)(i * 7);
	uint32_t crc = gw_pagebatch_crc(ram, 3, 5);
	assert_int_equal(crc, gw_crc32c(0, ram + 3 * GW_PAGE_SIZE, 5 * GW_PAGE_SIZE));
	gw_pagebatch_encode(&h, 3, 5, 0, crc);
	assert_int_equal(gw_pagebatch_validate(&h, 16, 8, &b, NULL, 0), 0);
	assert_int_equal(gw_pagebatch_iov(&h, ram, &b, iov), 2);
	assert_ptr_equal(iov[0].iov_base, &h);
	assert_int_equal(iov[0].iov_len, GW_PAGEBATCH_HDR_LEN);
	assert_ptr_equal(iov[1].iov_base, ram + 3 * GW_PAGE_SIZE);
	assert_int_equal(iov[1].iov_len, 5 * GW_PAGE_SIZE);
	assert_int_equal(gw_pagebatch_payload_len(&b), 5 * GW_PAGE_SIZE);
	gw_pagebatch_encode(&h, 0, 16, GW_PAGEBATCH_F_ZERO, 0);
	assert_int_equal(gw_pagebatch_validate(&h, 16, 16, &b, NULL, 0), 0);
	assert_int_equal(gw_pagebatch_iov(&h, ram, &b, iov), 1);
	assert_int_equal(gw_pagebatch_payload_len(&b), 0);
	free(ram);
}

/* Page runs: bitmap -> runs -> bitmap gives the same bits, for random bitmaps of odd sizes
 * (runs across word edges, at both ends of RAM). */
static void test_pageruns_round_trip(void **state)
{
	(void)state;
	srand(7);
	for (int iter = 0; iter < 300; iter++) {
		uint64_t npages = 1 + (uint64_t)(rand() % 700);
		uint64_t words = (npages + 63) / 64;
		uint64_t bm[11] = {0}, back[11] = {0}, runs[2 * 700], total = 0, added = 0,
			 want = 0;
		for (uint64_t p = 0; p < npages; p++) {
			int dense = iter % 3 == 0 ? rand() % 10 != 0 : rand() % 4 == 0;
			if (dense) {
				bm[p / 64] |= 1ull << (p % 64);
				want++;
			}
		}
		if (iter % 5 == 0) /* bits past npages in the last word are not pages */
			bm[words - 1] |= npages % 64 ? ~((1ull << (npages % 64)) - 1) : 0;
		size_t n = gw_pageruns_from_bitmap(bm, npages, runs, 700, &total);
		assert_int_equal(total, want);
		for (size_t i = 0; i + 1 < n; i++) /* in order, separated by a gap */
			assert_true(runs[2 * i] + runs[2 * i + 1] < runs[2 * i + 2]);
		assert_int_equal(gw_pageruns_merge(back, npages, runs, 2 * n, &added, NULL, 0), 0);
		assert_int_equal(added, want);
		for (uint64_t w = 0; w < words; w++) {
			uint64_t mask =
			    w == words - 1 && npages % 64 ? (1ull << (npages % 64)) - 1 : ~0ull;
			assert_int_equal(back[w], bm[w] & mask);
		}
		added = 0; /* merging again sets nothing new */
		assert_int_equal(gw_pageruns_merge(back, npages, runs, 2 * n, &added, NULL, 0), 0);
		assert_int_equal(added, 0);
	}
}

/* Too little room: the first max_runs runs, and the total of all set pages. */
static void test_pageruns_limit(void **state)
{
	(void)state;
	uint64_t bm[2] = {0x5555555555555555ull, 0x1ull}, runs[2 * 3] = {0}, total = 0;
	assert_int_equal(gw_pageruns_from_bitmap(bm, 65, runs, 3, &total), 3);
	assert_int_equal(total, 33);
	uint64_t want[6] = {0, 1, 2, 1, 4, 1};
	assert_memory_equal(runs, want, sizeof(want));
	uint64_t full[1] = {~0ull};
	assert_int_equal(gw_pageruns_from_bitmap(full, 64, runs, 3, &total), 1);
	assert_int_equal(runs[0], 0);
	assert_int_equal(runs[1], 64);
	assert_int_equal(gw_pageruns_from_bitmap(bm, 65, runs, 0, &total), 0);
	assert_int_equal(total, 33);
}

/* What a lying peer can send: nothing is set unless every run is valid. */
static void test_pageruns_bad_input(void **state)
{
	(void)state;
	uint64_t bm[2] = {0}, added = 0;
	char err[128] = "";
	const uint64_t odd[3] = {1, 2, 3};
	assert_int_equal(gw_pageruns_merge(bm, 100, odd, 3, &added, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "odd"));
	const uint64_t empty[4] = {1, 2, 5, 0};
	assert_int_equal(gw_pageruns_merge(bm, 100, empty, 4, &added, err, sizeof(err)), -EPROTO);
	const uint64_t beyond[4] = {1, 2, 99, 2};
	assert_int_equal(gw_pageruns_merge(bm, 100, beyond, 4, &added, err, sizeof(err)), -ERANGE);
	assert_non_null(strstr(err, "beyond guest RAM"));
	const uint64_t start_out[2] = {100, 1};
	assert_int_equal(gw_pageruns_merge(bm, 100, start_out, 2, &added, err, sizeof(err)),
			 -ERANGE);
	const uint64_t wrap[2] = {5, UINT64_MAX - 2};
	assert_int_equal(gw_pageruns_merge(bm, 100, wrap, 2, &added, err, sizeof(err)), -ERANGE);
	assert_int_equal(bm[0] | bm[1], 0);
	assert_int_equal(added, 0);
	assert_int_equal(gw_pageruns_merge(bm, 100, NULL, 0, &added, err, sizeof(err)), 0);
}

/* Random lists from a lying peer: either refused with the bitmap untouched, or every page
 * set is one the list names, inside RAM; the words around the bitmap are never touched. */
static void test_pageruns_fuzz(void **state)
{
	(void)state;
	srand(11);
	for (int iter = 0; iter < 20000; iter++) {
		uint64_t words[6] = {0}, *bm = words + 1; /* words[0], words[5]: guards */
		uint64_t npages = 1 + (uint64_t)(rand() % 256), runs[9], added = 0;
		size_t nvals = (size_t)(rand() % 10);
		for (size_t i = 0; i < nvals; i++) {
			switch (rand() % 4) {
			case 0:
				runs[i] = (uint64_t)(rand() % 300);
				break;
			case 1:
				runs[i] = (uint64_t)(rand() % 8);
				break;
			case 2:
				runs[i] = UINT64_MAX - (uint64_t)(rand() % 4);
				break;
			default:
				runs[i] = ((uint64_t)rand() << 32) | (uint64_t)rand();
				break;
			}
		}
		int r = gw_pageruns_merge(bm, npages, runs, nvals, &added, NULL, 0);
		assert_int_equal(words[0] | words[5], 0);
		uint64_t set = 0;
		for (uint64_t p = 0; p < 256; p++)
			if (bm[p / 64] >> (p % 64) & 1) {
				set++;
				assert_true(p < npages);
				bool named = false;
				for (size_t i = 0; i + 1 < nvals && !named; i += 2)
					named = p >= runs[i] && p - runs[i] < runs[i + 1];
				assert_true(named);
			}
		if (r) {
			assert_true(r == -EPROTO || r == -ERANGE);
			assert_int_equal(set, 0);
			assert_int_equal(added, 0);
		} else {
			assert_int_equal(set, added);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_bad_header_crc),
	    cmocka_unit_test(test_bad_version),
	    cmocka_unit_test(test_bad_flags),
	    cmocka_unit_test(test_reserved_nonzero),
	    cmocka_unit_test(test_count_zero),
	    cmocka_unit_test(test_count_too_big),
	    cmocka_unit_test(test_first_page_out_of_range),
	    cmocka_unit_test(test_first_plus_count_overflows),
	    cmocka_unit_test(test_zero_run_with_crc),
	    cmocka_unit_test(test_valid_edges),
	    cmocka_unit_test(test_wire_layout),
	    cmocka_unit_test(test_iov_into_ram),
	    cmocka_unit_test(test_pageruns_round_trip),
	    cmocka_unit_test(test_pageruns_limit),
	    cmocka_unit_test(test_pageruns_bad_input),
	    cmocka_unit_test(test_pageruns_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
