/* test_crc32c.c -- CRC32C: known vectors, chaining, iovecs, and hardware == software everywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_crc32c.h"

/* The standard check value and the iSCSI (RFC 3720) zeros / ones vectors. */
static void test_vectors(void **state)
{
	uint8_t buf[32];
	assert_int_equal(gw_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(gw_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(gw_crc32c_hw(0, "123456789", 9), 0xE3069283u);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(gw_crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
	assert_int_equal(gw_crc32c_sw(0, buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(gw_crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
	assert_int_equal(gw_crc32c_sw(0, buf, sizeof(buf)), 0x62A8AB43u);
	assert_int_equal(gw_crc32c(0, NULL, 0), 0);
}

/* Extending a CRC piece by piece gives the CRC of the whole. */
static void test_chaining(void **state)
{
	const char *s = "123456789";
	for (size_t k = 0; k <= 9; k++) {
		assert_int_equal(gw_crc32c(gw_crc32c(0, s, k), s + k, 9 - k), 0xE3069283u);
		assert_int_equal(gw_crc32c_sw(gw_crc32c_sw(0, s, k), s + k, 9 - k), 0xE3069283u);
	}
}

/* The iovec variant equals the CRC of the concatenation, empty entries included. */
static void test_iov(void **state)
{
	const char *s = "123456789";
	struct iovec iov[4] = {
	    {.iov_base = (void *)s, .iov_len = 2},
	    {.iov_base = (void *)(s + 2), .iov_len = 0},
	    {.iov_base = (void *)(s + 2), .iov_len = 6},
	    {.iov_base = (void *)(s + 8), .iov_len = 1},
	};
	assert_int_equal(gw_crc32c_iov(0, iov, 4), 0xE3069283u);
	assert_int_equal(gw_crc32c_iov(0, iov, 0), 0);
}

/* Hardware and table paths agree on random buffers at random lengths and alignments. */
static void test_hw_matches_sw(void **state)
{
	enum { MAX = 70000 };
	uint8_t *buf = malloc(MAX + 64);
	uint32_t x = 0x12345678;
	assert_non_null(buf);
	for (size_t i = 0; i < MAX + 64; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
	if (!gw_crc32c_hw_available())
		print_message("no SSE4.2: hardware path falls back to tables\n");
	for (int round = 0; round < 2000; round++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		size_t align = x % 64;
		/* short ones, the block sizes of the three-stream path (4 KiB page, 3 x 8 KiB),
		 * random */
		static const size_t edges[] = {4080, 4095, 4096, 4097, 24575, 24576, 24577, 65536};
		size_t len = round < 200   ? (size_t)round
			     : round < 208 ? edges[round - 200]
					   : (x >> 8) % MAX;
		uint32_t seed = round & 1 ? x : 0;
		assert_int_equal(gw_crc32c_hw(seed, buf + align, len),
				 gw_crc32c_sw(seed, buf + align, len));
	}
	free(buf);
}

/* Copy + checksum in one pass: same bytes, same CRC as the two-pass way, any length and
 * alignment. */
static void test_copy(void **state)
{
	static unsigned char src[70000], dst[70008];
	srand(7);
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)rand();
	for (int k = 0; k < 200; k++) {
		size_t off = (size_t)(rand() % 8), len = (size_t)(rand() % (int)(sizeof(src) - 8));
		if (k == 0)
			len = 0;
		if (k == 1)
			len = 65536;
		memset(dst, 0, sizeof(dst));
		uint32_t want = gw_crc32c(0x1234, src + off, len);
		uint32_t got = gw_crc32c_copy(0x1234, dst + (k % 8), src + off, len);
		assert_int_equal(got, want);
		if (len)
			assert_memory_equal(dst + (k % 8), src + off, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy),
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_chaining),
	    cmocka_unit_test(test_iov),
	    cmocka_unit_test(test_hw_matches_sw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
