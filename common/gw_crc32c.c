/* gw_crc32c.c -- CRC32C: SSE4.2 crc32 on three streams, slicing-by-8 tables as the fallback. */
#include "gw_crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

/*
 * The crc32 instruction has a latency of 3 cycles but issues one per cycle, so the
 * hardware path runs three independent streams over three consecutive blocks and
 * then merges them: with raw (uninverted) CRC state, crc(A|B) = shift(crc(A), |B|) ^
 * crc0(B), where shift appends |B| zero bytes. shift is linear, kept as four 256-entry
 * tables per block size. Two block sizes: LONG for big runs, SHORT so that one 4 KiB
 * page (3 x 1360 = 4080 bytes) still gets the three-stream speed.
 */
#define CRC_LONG  8192u
#define CRC_SHORT 1360u

static uint32_t table[8][256];
static uint32_t shift_long[4][256], shift_short[4][256];
static bool have_hw;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* GF(2) 32x32 matrices as 32 columns: mat[i] is the image of bit i. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	for (int i = 0; vec; i++, vec >>= 1) {
		if (vec & 1)
			sum ^= mat[i];
	}
	return sum;
}

/* out = a after b (out may not alias a or b). */
static void gf2_mul(uint32_t *out, const uint32_t *a, const uint32_t *b)
{
	for (int i = 0; i < 32; i++)
		out[i] = gf2_times(a, b[i]);
}

/* Tables applying the operator "append len zero bytes" to a raw CRC state. */
static void crc32c_shift_tables(uint32_t tab[4][256], size_t len)
{
	uint32_t op[32], sq[32], acc[32], tmp[32];

	op[0] = CRC32C_POLY_REFLECTED; /* one zero bit */
	for (int i = 1; i < 32; i++)
		op[i] = 1u << (i - 1);
	for (int k = 0; k < 3; k++) { /* 2, 4, 8 bits: one byte */
		gf2_mul(sq, op, op);
		memcpy(op, sq, sizeof(op));
	}
	for (int i = 0; i < 32; i++) /* acc = identity */
		acc[i] = 1u << i;
	while (len) { /* acc = op^len by squaring */
		if (len & 1) {
			gf2_mul(tmp, op, acc);
			memcpy(acc, tmp, sizeof(acc));
		}
		len >>= 1;
		if (len) {
			gf2_mul(sq, op, op);
			memcpy(op, sq, sizeof(op));
		}
	}
	for (uint32_t n = 0; n < 256; n++) {
		for (int k = 0; k < 4; k++)
			tab[k][n] = gf2_times(acc, n << (8 * k));
	}
}

static inline uint32_t crc32c_shift(uint32_t tab[4][256], uint32_t crc)
{
	return tab[0][crc & 0xff] ^ tab[1][(crc >> 8) & 0xff] ^ tab[2][(crc >> 16) & 0xff] ^
	       tab[3][crc >> 24];
}

/* Build the slicing-by-8 tables and probe the CPU, once per process. */
static void crc32c_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		for (int t = 1; t < 8; t++)
			table[t][n] = (table[t - 1][n] >> 8) ^ table[0][table[t - 1][n] & 0xff];
	}
	crc32c_shift_tables(shift_long, CRC_LONG);
	crc32c_shift_tables(shift_short, CRC_SHORT);
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* The raw (no inversion) table-driven update, 8 bytes per step. */
static uint32_t crc32c_sw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		v ^= crc; /* little-endian: the CRC folds into the low 4 bytes */
		crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
		      table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^
		      table[2][(v >> 40) & 0xff] ^ table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
/* Consume as many 3 x block chunks as *len holds, three streams at a time (block % 8 == 0). */
__attribute__((target("sse4.2"))) static inline uint64_t crc32c_hw_3way(uint64_t c0,
									const unsigned char **pp,
									size_t *lenp, size_t block,
									uint32_t tab[4][256])
{
	const unsigned char *p = *pp;
	size_t len = *lenp;
	while (len >= 3 * block) {
		uint64_t c1 = 0, c2 = 0, v0, v1, v2;
		for (size_t i = 0; i < block; i += 8) {
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + block + i, 8);
			memcpy(&v2, p + 2 * block + i, 8);
			c0 = __builtin_ia32_crc32di(c0, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c0 = crc32c_shift(tab, (uint32_t)c0) ^ (uint32_t)c1;
		c0 = crc32c_shift(tab, (uint32_t)c0) ^ (uint32_t)c2;
		p += 3 * block;
		len -= 3 * block;
	}
	*pp = p;
	*lenp = len;
	return c0;
}

/* crc32c_hw_3way that also stores what it reads to dst: one pass for copy + checksum. */
__attribute__((target("sse4.2"))) static inline uint64_t crc32c_hw_3way_copy(
	uint64_t c0, const unsigned char **pp, unsigned char **dp, size_t *lenp, size_t block,
	uint32_t tab[4][256])
{
	const unsigned char *p = *pp;
	unsigned char *d = *dp;
	size_t len = *lenp;
	while (len >= 3 * block) {
		uint64_t c1 = 0, c2 = 0, v0, v1, v2;
		for (size_t i = 0; i < block; i += 8) {
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + block + i, 8);
			memcpy(&v2, p + 2 * block + i, 8);
			memcpy(d + i, &v0, 8);
			memcpy(d + block + i, &v1, 8);
			memcpy(d + 2 * block + i, &v2, 8);
			c0 = __builtin_ia32_crc32di(c0, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c0 = crc32c_shift(tab, (uint32_t)c0) ^ (uint32_t)c1;
		c0 = crc32c_shift(tab, (uint32_t)c0) ^ (uint32_t)c2;
		p += 3 * block;
		d += 3 * block;
		len -= 3 * block;
	}
	*pp = p;
	*dp = d;
	*lenp = len;
	return c0;
}

/* The raw SSE4.2 update: byte steps up to 8-byte alignment, then one crc32q per 8 bytes. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_raw(uint32_t crc,
								const unsigned char *p, size_t len)
{
	uint64_t c = crc;
	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	c = crc32c_hw_3way(c, &p, &len, CRC_LONG, shift_long);
	c = crc32c_hw_3way(c, &p, &len, CRC_SHORT, shift_short);
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

/* Copy and checksum: the long and short 3-way blocks in one pass, the rest (under three
 * short blocks) copied and then checksummed by crc32c_hw_raw. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_copy_raw(uint32_t crc, unsigned char *d,
								    const unsigned char *p, size_t len)
{
	uint64_t c = crc;
	c = crc32c_hw_3way_copy(c, &p, &d, &len, CRC_LONG, shift_long);
	c = crc32c_hw_3way_copy(c, &p, &d, &len, CRC_SHORT, shift_short);
	memcpy(d, p, len);
	return crc32c_hw_raw((uint32_t)c, p, len);
}
#endif

uint32_t gw_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
	pthread_once(&init_once, crc32c_init);
#if defined(__x86_64__)
	if (have_hw)
		return ~crc32c_hw_copy_raw(~crc, dst, src, len);
#endif
	memcpy(dst, src, len);
	return ~crc32c_sw_raw(~crc, dst, len);
}

uint32_t gw_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&init_once, crc32c_init);
	return ~crc32c_sw_raw(~crc, buf, len);
}

uint32_t gw_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&init_once, crc32c_init);
#if defined(__x86_64__)
	if (have_hw)
		return ~crc32c_hw_raw(~crc, buf, len);
#endif
	return ~crc32c_sw_raw(~crc, buf, len);
}

bool gw_crc32c_hw_available(void)
{
	pthread_once(&init_once, crc32c_init);
	return have_hw;
}

uint32_t gw_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return gw_crc32c_hw(crc, buf, len);
}

uint32_t gw_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt)
{
	pthread_once(&init_once, crc32c_init);
	crc = ~crc;
	for (int i = 0; i < iovcnt; i++) {
#if defined(__x86_64__)
		if (have_hw) {
			crc = crc32c_hw_raw(crc, iov[i].iov_base, iov[i].iov_len);
			continue;
		}
#endif
		crc = crc32c_sw_raw(crc, iov[i].iov_base, iov[i].iov_len);
	}
	return ~crc;
}
