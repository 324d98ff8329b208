/* fuzz_common.h -- shared by the libFuzzer harnesses: invariant checks that abort with a
 * message (libFuzzer then saves the input as crash-*), quiet logging, tiny readers. */
#ifndef GW_FUZZ_COMMON_H
#define GW_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "gw_log.h"

/* An invariant of the decoder under test: report and abort (a finding, like a crash). */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The daemons log every refusal; a fuzzer refuses millions of inputs. */
static inline void fuzz_quiet(void)
{
	gw_log_set_level(GW_LOG_ERROR + 1);
}

/* A cursor over the fuzzer's bytes: reads past the end give zeroes. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint64_t fuzz_uint(struct fuzz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)fuzz_u8(in) << (8 * i);
	return v;
}

/* True when a fixed-size char array holds a NUL-terminated string. */
#define FUZZ_TERMINATED(arr) (memchr((arr), 0, sizeof(arr)) != NULL)

/*
 * A decoded protobuf message: required fields present, and unpack -> pack -> unpack -> pack
 * gives the same bytes twice. One exception, in protobuf-c itself: an unknown field whose
 * key is written over-long (0x81 0x00 = field 0) is kept, then packed as the one-byte key 0x01,
 * which unpack refuses (field 0 is invalid). Godwit ignores unknown fields; the only message
 * it sends back as received (the destination's ROUND_ACK) then fails to decode at the
 * source that sent the odd field, which ends that migration with a clear error.
 */
static inline void fuzz_pb_round_trip(const ProtobufCMessage *m)
{
	FUZZ_CHECK(protobuf_c_message_check(m));
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *a = malloc(n ? n : 1);
	FUZZ_CHECK(a);
	FUZZ_CHECK(protobuf_c_message_pack(m, a) == n);
	ProtobufCMessage *m2 = protobuf_c_message_unpack(m->descriptor, NULL, n, a);
	if (!m2) {
		bool field0 = false;
		for (unsigned i = 0; i < m->n_unknown_fields; i++)
			field0 |= m->unknown_fields[i].tag == 0;
		FUZZ_CHECK(field0);
		free(a);
		return;
	}
	size_t n2 = protobuf_c_message_get_packed_size(m2);
	FUZZ_CHECK(n2 == n);
	uint8_t *b = malloc(n2 ? n2 : 1);
	FUZZ_CHECK(b);
	FUZZ_CHECK(protobuf_c_message_pack(m2, b) == n2);
	FUZZ_CHECK(memcmp(a, b, n) == 0);
	protobuf_c_message_free_unpacked(m2, NULL);
	free(a);
	free(b);
}

#endif
