/* gw_pagebatch.h -- the bulk page batch: a 32-byte header, then a run of contiguous pages. */
#ifndef GW_PAGEBATCH_H
#define GW_PAGEBATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * One batch on the migration stream describes pages [first_page, first_page + page_count)
 * of guest RAM, contiguous, so that the sender points one iovec straight at guest RAM and
 * the receiver scatters straight into it. On the wire (all fields little endian):
 *
 *   off size field
 *     0   4  magic        GW_PAGEBATCH_MAGIC ("GWPB" as bytes 'G' 'W' 'P' 'B')
 *     4   2  version      GW_PAGEBATCH_VERSION
 *     6   2  flags        GW_PAGEBATCH_F_*
 *     8   8  first_page   index of the first page (page = GW_PAGE_SIZE bytes of guest RAM)
 *    16   4  page_count   1..max_batch_pages
 *    20   4  crc32c       CRC32C of the page bytes that follow (0 for a ZERO run)
 *    24   4  reserved     0
 *    28   4  hdr_crc32c   CRC32C of bytes 0..27, so a damaged index is caught too
 *   32      page_count * GW_PAGE_SIZE bytes, unless the ZERO or PLACED flag is set
 */
#define GW_PAGE_SIZE	     4096u
#define GW_PAGEBATCH_MAGIC   0x42505747u /* "GWPB" read as a little-endian u32 */
#define GW_PAGEBATCH_VERSION 1u
#define GW_PAGEBATCH_HDR_LEN 32u

#define GW_PAGEBATCH_F_LAST 0x0001u /* last batch of this round (or of the stream) */
#define GW_PAGEBATCH_F_ZERO 0x0002u /* these pages are all zero: no page bytes follow */
/* the page bytes were written into the receiver's guest RAM by the transport before this
 * header (RDMA direct placement): none follow; the CRC is checked in place */
#define GW_PAGEBATCH_F_PLACED 0x0004u
#define GW_PAGEBATCH_F_KNOWN  (GW_PAGEBATCH_F_LAST | GW_PAGEBATCH_F_ZERO | GW_PAGEBATCH_F_PLACED)

/* Largest batch any peer may announce (64 MiB); a connection's own limit can be lower. */
#define GW_PAGEBATCH_MAX_PAGES 16384u

/* The header as it is on the wire; receive straight into it, then validate. */
struct gw_pagebatch_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint64_t first_page;
	uint32_t page_count;
	uint32_t crc32c;
	uint32_t reserved;
	uint32_t hdr_crc32c;
} __attribute__((packed));

_Static_assert(sizeof(struct gw_pagebatch_hdr) == GW_PAGEBATCH_HDR_LEN, "page batch header size");

/* A validated header, in host byte order. */
struct gw_pagebatch_info {
	uint64_t first_page;
	uint32_t page_count;
	uint16_t flags;
	uint32_t crc32c;
};

/*
 * Fill hdr for pages [first_page, first_page + page_count) with the given flags and
 * the CRC32C of their bytes (from gw_pagebatch_crc; 0 with GW_PAGEBATCH_F_ZERO).
 */
void gw_pagebatch_encode(struct gw_pagebatch_hdr *hdr, uint64_t first_page, uint32_t page_count,
			 uint16_t flags, uint32_t crc32c);

/*
 * Check a header received from a peer before anything is written to guest RAM. On
 * success fills *out (may be NULL) and returns 0; else writes a one-line reason into
 * err (errlen bytes, err may be NULL) and returns:
 *   -EBADMSG          wrong magic, header CRC mismatch, reserved not zero
 *   -EPROTONOSUPPORT  unknown version
 *   -EPROTO           unknown flag bits
 *   -EMSGSIZE         page_count 0 or above max_batch_pages (or GW_PAGEBATCH_MAX_PAGES)
 *   -ERANGE           first_page + page_count beyond ram_pages (overflow included)
 */
int gw_pagebatch_validate(const struct gw_pagebatch_hdr *hdr, uint64_t ram_pages,
			  uint32_t max_batch_pages, struct gw_pagebatch_info *out, char *err,
			  size_t errlen);

/* CRC32C of a batch's page bytes, pages contiguous in guest RAM from base. */
uint32_t gw_pagebatch_crc(const void *ram, uint64_t first_page, uint32_t page_count);

/*
 * Point iov[0] at hdr and iov[1] at the batch's pages in guest RAM (ram = page 0).
 * Returns the number of iovecs to send or to receive into (1 for a ZERO or PLACED run,
 * else 2).
 * The receiver first receives the header alone, validates it, then calls
 * gw_pagebatch_iov(..) and receives into iov + 1.
 */
int gw_pagebatch_iov(struct gw_pagebatch_hdr *hdr, void *ram, const struct gw_pagebatch_info *b,
		     struct iovec iov[2]);

/* Bytes of page data that follow a header on the stream (0 for a ZERO or PLACED run). */
size_t gw_pagebatch_payload_len(const struct gw_pagebatch_info *b);

/*
 * Page runs: a list of (first_page, page_count) pairs, flattened into runs[2 * i] and
 * runs[2 * i + 1], that names pages of guest RAM (the destination's "send these again").
 *
 * gw_pageruns_from_bitmap: the runs of set bits of bm (npages bits), in order, at most
 * max_runs of them; returns the number of runs written and sets *total_pages to the number
 * of set bits in all of bm (more than the runs cover when max_runs was too small).
 */
size_t gw_pageruns_from_bitmap(const uint64_t *bm, uint64_t npages, uint64_t *runs, size_t max_runs,
			       uint64_t *total_pages);

/*
 * gw_pageruns_merge: set the pages of nvals flattened values (pairs) in bm, a bitmap of
 * npages bits, after checking all of them (a peer sent them): nvals even, every count >= 1,
 * every run inside npages. Returns 0 and adds the number of bits newly set to *added; else
 * -EPROTO (odd count, empty run) or -ERANGE (beyond RAM), a reason in err, bm untouched.
 */
int gw_pageruns_merge(uint64_t *bm, uint64_t npages, const uint64_t *runs, size_t nvals,
		      uint64_t *added, char *err, size_t errlen);

#endif
