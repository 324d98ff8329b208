/* gw_crc32c.h -- CRC32C (Castagnoli): the SSE4.2 crc32 instruction when present, else tables. */
#ifndef GW_CRC32C_H
#define GW_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * CRC32C of buf, continuing from crc (0 to start; pass the previous result to extend:
 * gw_crc32c(gw_crc32c(0, a, n), b, m) == CRC of a|b). Pre/post inversion is done
 * inside, so gw_crc32c(0, "123456789", 9) == 0xE3069283. Thread-safe.
 */
uint32_t gw_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same over the concatenation of iov[0..iovcnt). */
uint32_t gw_crc32c_iov(uint32_t crc, const struct iovec *iov, int iovcnt);

/* Copy len bytes from src to dst and return the CRC32C of them, in one pass (the copy is
 * what the checksum covers even if src changes meanwhile). */
uint32_t gw_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len);

/* The two implementations, for tests and benchmarks: the table-driven one always works; */
uint32_t gw_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* the SSE4.2 one only when gw_crc32c_hw_available() (else it falls back to tables). */
uint32_t gw_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool gw_crc32c_hw_available(void);

#endif
