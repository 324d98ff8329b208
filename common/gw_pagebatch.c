/* gw_pagebatch.c -- encode and check page batch headers; iovecs straight into guest RAM. */
#include "gw_pagebatch.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gw_crc32c.h"

/* CRC32C over the header bytes before the hdr_crc32c field. */
static uint32_t hdr_crc(const struct gw_pagebatch_hdr *hdr)
{
	return gw_crc32c(0, hdr, offsetof(struct gw_pagebatch_hdr, hdr_crc32c));
}

void gw_pagebatch_encode(struct gw_pagebatch_hdr *hdr, uint64_t first_page, uint32_t page_count,
			 uint16_t flags, uint32_t crc32c)
{
	hdr->magic = htole32(GW_PAGEBATCH_MAGIC);
	hdr->version = htole16(GW_PAGEBATCH_VERSION);
	hdr->flags = htole16(flags);
	hdr->first_page = htole64(first_page);
	hdr->page_count = htole32(page_count);
	hdr->crc32c = htole32(crc32c);
	hdr->reserved = 0;
	hdr->hdr_crc32c = htole32(hdr_crc(hdr));
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
						      const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int gw_pagebatch_validate(const struct gw_pagebatch_hdr *hdr, uint64_t ram_pages,
			  uint32_t max_batch_pages, struct gw_pagebatch_info *out, char *err,
			  size_t errlen)
{
	uint32_t magic = le32toh(hdr->magic);
	uint16_t version = le16toh(hdr->version);
	uint16_t flags = le16toh(hdr->flags);
	uint64_t first = le64toh(hdr->first_page);
	uint32_t count = le32toh(hdr->page_count);
	uint32_t crc = le32toh(hdr->crc32c);
	uint32_t max = max_batch_pages;

	if (max == 0 || max > GW_PAGEBATCH_MAX_PAGES)
		max = GW_PAGEBATCH_MAX_PAGES;
	if (magic != GW_PAGEBATCH_MAGIC)
		return fail(err, errlen, -EBADMSG, "page batch: bad magic 0x%08x", magic);
	if (le32toh(hdr->hdr_crc32c) != hdr_crc(hdr))
		return fail(err, errlen, -EBADMSG, "page batch: header CRC mismatch");
	if (version != GW_PAGEBATCH_VERSION)
		return fail(err, errlen, -EPROTONOSUPPORT, "page batch: version %u, expected %u",
			    version, GW_PAGEBATCH_VERSION);
	if (flags & ~GW_PAGEBATCH_F_KNOWN)
		return fail(err, errlen, -EPROTO, "page batch: unknown flags 0x%04x", flags);
	if (hdr->reserved != 0)
		return fail(err, errlen, -EBADMSG, "page batch: reserved field not zero");
	if (count == 0 || count > max)
		return fail(err, errlen, -EMSGSIZE, "page batch: page count %u not in 1..%u", count,
			    max);
	if (first >= ram_pages || count > ram_pages - first)
		return fail(err, errlen, -ERANGE,
			    "page batch: pages %llu+%u beyond guest RAM of %llu pages",
			    (unsigned long long)first, count, (unsigned long long)ram_pages);
	if ((flags & GW_PAGEBATCH_F_ZERO) && crc != 0)
		return fail(err, errlen, -EBADMSG, "page batch: zero run with a non-zero CRC");
	if ((flags & GW_PAGEBATCH_F_ZERO) && (flags & GW_PAGEBATCH_F_PLACED))
		return fail(err, errlen, -EPROTO, "page batch: both zero and placed");
	if (out) {
		out->first_page = first;
		out->page_count = count;
		out->flags = flags;
		out->crc32c = crc;
	}
	return 0;
}

uint32_t gw_pagebatch_crc(const void *ram, uint64_t first_page, uint32_t page_count)
{
	return gw_crc32c(0, (const char *)ram + first_page * GW_PAGE_SIZE,
			 (size_t)page_count * GW_PAGE_SIZE);
}

size_t gw_pagebatch_payload_len(const struct gw_pagebatch_info *b)
{
	if (b->flags & (GW_PAGEBATCH_F_ZERO | GW_PAGEBATCH_F_PLACED))
		return 0;
	return (size_t)b->page_count * GW_PAGE_SIZE;
}

int gw_pagebatch_iov(struct gw_pagebatch_hdr *hdr, void *ram, const struct gw_pagebatch_info *b,
		     struct iovec iov[2])
{
	iov[0].iov_base = hdr;
	iov[0].iov_len = GW_PAGEBATCH_HDR_LEN;
	if (b->flags & (GW_PAGEBATCH_F_ZERO | GW_PAGEBATCH_F_PLACED))
		return 1;
	iov[1].iov_base = (char *)ram + b->first_page * GW_PAGE_SIZE;
	iov[1].iov_len = gw_pagebatch_payload_len(b);
	return 2;
}

size_t gw_pageruns_from_bitmap(const uint64_t *bm, uint64_t npages, uint64_t *runs, size_t max_runs,
			       uint64_t *total_pages)
{
	uint64_t words = (npages + 63) / 64, total = 0;
	size_t n = 0;
	bool open = false; /* runs[2 * n] holds the first page of a run not yet closed */
	for (uint64_t w = 0; w < words; w++) {
		uint64_t v = bm[w];
		if (w == words - 1 && npages % 64)
			v &= (1ull << (npages % 64)) - 1;
		total += (uint64_t)__builtin_popcountll(v);
		if ((v == 0 && !open) || (v == ~0ull && open) || (!open && n == max_runs))
			continue; /* nothing starts or ends in this word, or no room left */
		for (unsigned b = 0; b < 64 && w * 64 + b < npages; b++) {
			bool set = v >> b & 1;
			uint64_t p = w * 64 + b;
			if (set && !open && n < max_runs) {
				runs[2 * n] = p;
				open = true;
			} else if (!set && open) {
				runs[2 * n + 1] = p - runs[2 * n];
				n++;
				open = false;
			}
		}
	}
	if (open) {
		runs[2 * n + 1] = npages - runs[2 * n];
		n++;
	}
	*total_pages = total;
	return n;
}

int gw_pageruns_merge(uint64_t *bm, uint64_t npages, const uint64_t *runs, size_t nvals,
		      uint64_t *added, char *err, size_t errlen)
{
	if (nvals % 2)
		return fail(err, errlen, -EPROTO, "page runs: odd number of values (%zu)", nvals);
	for (size_t i = 0; i < nvals; i += 2) {
		uint64_t first = runs[i], count = runs[i + 1];
		if (count == 0)
			return fail(err, errlen, -EPROTO, "page runs: run %zu is empty", i / 2);
		if (first >= npages || count > npages - first)
			return fail(err, errlen, -ERANGE,
				    "page runs: pages %llu+%llu beyond guest RAM of %llu pages",
				    (unsigned long long)first, (unsigned long long)count,
				    (unsigned long long)npages);
	}
	/* a word at a time: a run may span all of a large guest's RAM */
	uint64_t n = 0;
	for (size_t i = 0; i < nvals; i += 2)
		for (uint64_t p = runs[i], end = runs[i] + runs[i + 1]; p < end;) {
			uint64_t b = p % 64, span = end - p < 64 - b ? end - p : 64 - b;
			uint64_t mask = (span == 64 ? ~0ull : (1ull << span) - 1) << b;
			n += (uint64_t)__builtin_popcountll(mask & ~bm[p / 64]);
			bm[p / 64] |= mask;
			p += span;
		}
	*added += n;
	return 0;
}
