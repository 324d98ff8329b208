/* gw_frame.h -- control-message framing: u32 length | u16 type | payload (big endian). */
#ifndef GW_FRAME_H
#define GW_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define GW_FRAME_HDR_LEN 6u
/* Hard maximum payload of a control frame; anything larger ends the connection. */
#define GW_FRAME_MAX_PAYLOAD (4u * 1024 * 1024)

struct gw_frame {
	uint16_t type;
	uint32_t len;          /* payload bytes */
	const uint8_t *payload;
};

/* Write a frame header for (type, len) into hdr. */
void gw_frame_hdr_encode(uint8_t hdr[GW_FRAME_HDR_LEN], uint16_t type, uint32_t len);

/*
 * Look for one complete frame at the start of buf. Returns the number of bytes the
 * frame occupies (header + payload) and fills *f when complete, 0 when more bytes are
 * needed, -EMSGSIZE when the announced length exceeds max_payload.
 */
long gw_frame_parse(const uint8_t *buf, size_t avail, uint32_t max_payload, struct gw_frame *f);

/* Send one frame (blocking, handles short writes and EINTR). 0 or -errno. */
int gw_frame_send(int fd, uint16_t type, const void *payload, uint32_t len);
/* Pack a protobuf message and send it as one frame of the given type. */
int gw_msg_send(int fd, uint16_t type, const ProtobufCMessage *msg);
/* Send a GwError frame with code (negative errno) and a printf message. */
int gw_msg_send_error(int fd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Receive one frame (blocking, timeout_ms < 0 = forever). On success *payload is a
 * malloc'd buffer the caller frees (NULL when len is 0). Returns 0, -ETIMEDOUT,
 * -ECONNRESET on EOF, -EMSGSIZE when the frame is larger than max_payload, or -errno.
 */
int gw_frame_recv(int fd, uint32_t max_payload, int timeout_ms, uint16_t *type,
		  uint8_t **payload, uint32_t *len);

#endif
