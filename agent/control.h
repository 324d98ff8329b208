/* control.h -- the agent's local control API: unix socket, framing, dispatch by message type. */
#ifndef GW_CONTROL_H
#define GW_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

#define GW_CONTROL_MAX_CLIENTS 64

struct gw_ctl_conn {
	int fd;
	uint8_t *buf;
	size_t len, cap;
};

/* Bind the control socket (mode 0600, parent dir created 0755). Refuses to take over a
 * socket another live agent answers on (-EADDRINUSE). Returns the fd or -errno. */
int gw_control_listen(const char *path);
/* Read what is available on a client; handle every complete frame. Returns 0 to keep
 * the connection, or -errno to close it (EOF, oversized frame, I/O error). */
int gw_control_on_readable(struct gw_agent *ag, struct gw_ctl_conn *c);
/* Dispatch one frame and send the reply on fd. 0, or -errno if the reply could not be sent. */
int gw_control_dispatch(struct gw_agent *ag, int fd, uint16_t type, const uint8_t *payload,
			uint32_t len);

/*
 * Decode a request's payload (pure: no agent, no I/O): the unpacked message of the type's
 * request (free with protobuf_c_message_free_unpacked), or NULL, with *name (may be NULL)
 * the request's name for a malformed payload and NULL for an unknown type.
 */
struct ProtobufCMessage *gw_control_decode(uint16_t type, const uint8_t *payload, uint32_t len,
					   const char **name);

#endif
