/* vmm_blob.c -- the state-blob container's primitives (layout in vmm_state.c): little-endian
 * writers that count past the buffer's end, readers, and section checks; used by the shared
 * framing (vmm_state.c) and by each backend's own sections (kvm_state.c, process_state.c). */
#include "vmm_blob.h"

#include <string.h>

void gw_blob_put(struct gw_blob_writer *w, const void *src, size_t n)
{
	if (w->len + n <= w->cap)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

void gw_blob_put_le16(struct gw_blob_writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	gw_blob_put(w, b, 2);
}

void gw_blob_put_le32(struct gw_blob_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	gw_blob_put(w, b, 4);
}

void gw_blob_put_le64(struct gw_blob_writer *w, uint64_t v)
{
	gw_blob_put_le32(w, (uint32_t)v);
	gw_blob_put_le32(w, (uint32_t)(v >> 32));
}

void gw_blob_put_section(struct gw_blob_writer *w, enum gw_sec_type type, const void *data,
			 size_t n)
{
	static const uint8_t zero[8];

	gw_blob_put_le16(w, (uint16_t)type);
	gw_blob_put_le16(w, 0);
	gw_blob_put_le32(w, (uint32_t)n);
	gw_blob_put(w, data, n);
	gw_blob_put(w, zero, (8 - n % 8) % 8);
}

uint16_t gw_blob_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t gw_blob_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t gw_blob_le64(const uint8_t *p)
{
	return gw_blob_le32(p) | (uint64_t)gw_blob_le32(p + 4) << 32;
}

bool gw_blob_sec_ok(const struct gw_blob_sections *s, enum gw_sec_type t, size_t n, bool optional)
{
	if (!s->data[t])
		return optional;
	return s->len[t] == n;
}

bool gw_blob_has_any(const struct gw_blob_sections *s, enum gw_sec_type first,
		     enum gw_sec_type last)
{
	for (int t = first; t <= (int)last; t++)
		if (s->data[t])
			return true;
	return false;
}
