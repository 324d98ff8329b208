/* fuzz_pagebatch.c -- libFuzzer: any bytes as a page batch header must validate safely. */
/*
 * Not wired into CMake yet (clang only). By hand, from the repo root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon \
 *     tests/fuzz/fuzz_pagebatch.c common/gw_pagebatch.c common/gw_crc32c.c -lpthread \
 *     -o /tmp/fuzz_pagebatch && /tmp/fuzz_pagebatch -max_total_time=30
 */
#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_crc32c.h"
#include "gw_pagebatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_pagebatch_hdr hdr;
	struct gw_pagebatch_info info;
	char err[128];
	uint64_t ram_pages;
	uint32_t max;

	if (size < sizeof(hdr) + 12)
		return 0;
	memcpy(&hdr, data, sizeof(hdr));
	memcpy(&ram_pages, data + sizeof(hdr), 8);
	memcpy(&max, data + sizeof(hdr) + 8, 4);
	/* half the time, fix the header CRC up so the fuzzer reaches the field checks */
	if (data[size - 1] & 1)
		hdr.hdr_crc32c =
		    htole32(gw_crc32c(0, &hdr, offsetof(struct gw_pagebatch_hdr, hdr_crc32c)));
	if (gw_pagebatch_validate(&hdr, ram_pages, max, &info, err, sizeof(err)) == 0) {
		/* what validate accepts must be safe to turn into a RAM range */
		if (info.page_count == 0 || info.page_count > GW_PAGEBATCH_MAX_PAGES ||
		    info.first_page >= ram_pages || info.page_count > ram_pages - info.first_page)
			abort();
	} else if (err[0] == '\0') {
		abort();
	}
	return 0;
}
