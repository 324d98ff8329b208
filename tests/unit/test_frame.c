/* test_frame.c -- control framing: header encoding, incremental parsing, send/recv. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.pb-c.h"
#include "gw_frame.h"

/* An announced length over the limit is refused before any payload arrives. */
static void test_parse_oversized(void **state)
{
	uint8_t hdr[GW_FRAME_HDR_LEN];
	struct gw_frame f;
	gw_frame_hdr_encode(hdr, 10, GW_FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(gw_frame_parse(hdr, sizeof(hdr), GW_FRAME_MAX_PAYLOAD, &f), -EMSGSIZE);
	gw_frame_hdr_encode(hdr, 10, 0xffffffffu);
	assert_int_equal(gw_frame_parse(hdr, sizeof(hdr), GW_FRAME_MAX_PAYLOAD, &f), -EMSGSIZE);
}

/* Partial headers and partial payloads ask for more bytes. */
static void test_parse_incomplete(void **state)
{
	uint8_t buf[GW_FRAME_HDR_LEN + 4];
	struct gw_frame f;
	gw_frame_hdr_encode(buf, 7, 4);
	memcpy(buf + GW_FRAME_HDR_LEN, "abcd", 4);
	for (size_t n = 0; n < sizeof(buf); n++)
		assert_int_equal(gw_frame_parse(buf, n, 1024, &f), 0);
	assert_int_equal(gw_frame_parse(buf, sizeof(buf), 1024, &f), (long)sizeof(buf));
	assert_int_equal(f.type, 7);
	assert_int_equal(f.len, 4);
	assert_memory_equal(f.payload, "abcd", 4);
}

/* Header fields are big endian. */
static void test_hdr_encoding(void **state)
{
	uint8_t hdr[GW_FRAME_HDR_LEN];
	gw_frame_hdr_encode(hdr, 0x1234, 0x01020304);
	const uint8_t want[] = {1, 2, 3, 4, 0x12, 0x34};
	assert_memory_equal(hdr, want, sizeof(want));
}

/* A protobuf message survives send + recv over a socket pair. */
static void test_send_recv_roundtrip(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	GwVmNameReq req = GW_VM_NAME_REQ__INIT;
	req.name = "web1";
	assert_int_equal(gw_msg_send(sv[0], GW_MSG_TYPE__GW_MSG_VM_SHOW, &req.base), 0);
	uint16_t type;
	uint8_t *payload;
	uint32_t len;
	assert_int_equal(gw_frame_recv(sv[1], 1024, 1000, &type, &payload, &len), 0);
	assert_int_equal(type, GW_MSG_TYPE__GW_MSG_VM_SHOW);
	GwVmNameReq *got = gw_vm_name_req__unpack(NULL, len, payload);
	assert_non_null(got);
	assert_string_equal(got->name, "web1");
	gw_vm_name_req__free_unpacked(got, NULL);
	free(payload);
	close(sv[0]);
	close(sv[1]);
}

/* recv reports EOF mid-frame, oversized frames and timeouts as errors. */
static void test_recv_errors(void **state)
{
	int sv[2];
	uint8_t hdr[GW_FRAME_HDR_LEN];
	uint16_t type;
	uint8_t *payload;
	uint32_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(gw_frame_recv(sv[1], 1024, 50, &type, &payload, &len), -ETIMEDOUT);
	gw_frame_hdr_encode(hdr, 1, 5000);
	assert_int_equal(write(sv[0], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(gw_frame_recv(sv[1], 1024, 1000, &type, &payload, &len), -EMSGSIZE);
	gw_frame_hdr_encode(hdr, 1, 10);
	assert_int_equal(write(sv[0], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(write(sv[0], "abc", 3), 3);
	close(sv[0]);
	assert_int_equal(gw_frame_recv(sv[1], 1024, 1000, &type, &payload, &len), -ECONNRESET);
	close(sv[1]);
}

/* The error helper sends a GwError with code and text. */
static void test_send_error(void **state)
{
	int sv[2];
	uint16_t type;
	uint8_t *payload;
	uint32_t len;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(gw_msg_send_error(sv[0], -ENOENT, "vm '%s': no such VM", "x"), 0);
	assert_int_equal(gw_frame_recv(sv[1], 1024, 1000, &type, &payload, &len), 0);
	assert_int_equal(type, GW_MSG_TYPE__GW_MSG_ERROR);
	GwError *e = gw_error__unpack(NULL, len, payload);
	assert_non_null(e);
	assert_int_equal(e->code, -ENOENT);
	assert_string_equal(e->message, "vm 'x': no such VM");
	gw_error__free_unpacked(e, NULL);
	free(payload);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_oversized),  cmocka_unit_test(test_parse_incomplete),
		cmocka_unit_test(test_hdr_encoding),     cmocka_unit_test(test_send_recv_roundtrip),
		cmocka_unit_test(test_recv_errors),      cmocka_unit_test(test_send_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
