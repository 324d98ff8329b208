/* ctl_client.h -- godwitctl's side of the control socket: connect, one request, one reply. */
#ifndef CTL_CLIENT_H
#define CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* One connection to the agent (or, later, the coordinator). */
struct gw_ctl_client {
	int fd;
	int timeout_ms; /* per reply; 0 = forever */
	const char *path;
	bool agent_error; /* the last failure was a GwError reply, not a local one */
	char err[512];	  /* the last failure, one line, no program prefix */
};

/*
 * Connect to the unix socket at path. Returns 0 or -errno with c->err set to
 * "cannot connect to PATH: <strerror>". timeout_ms bounds every later reply.
 */
int gw_ctl_client_connect(struct gw_ctl_client *c, const char *path, int timeout_ms);
void gw_ctl_client_close(struct gw_ctl_client *c);

/*
 * Send req as a frame of req_type and wait for the reply. When it is of type
 * reply_type it is unpacked with reply_desc into *reply (free it with
 * protobuf_c_message_free_unpacked). A GW_MSG_ERROR reply returns its code (a
 * negative errno, -EIO if the agent sent none) with its message in c->err and
 * c->agent_error set; -ETIMEDOUT, -ECONNRESET, -EPROTO (bad or unexpected reply) and
 * other -errno come with a message in c->err too.
 */
int gw_ctl_client_call(struct gw_ctl_client *c, uint16_t req_type, const ProtobufCMessage *req,
		       uint16_t reply_type, const ProtobufCMessageDescriptor *reply_desc,
		       ProtobufCMessage **reply);

/*
 * Make an image path absolute for GwVmCreateReq: realpath(3), and it must be a
 * regular file. Returns 0 with a malloc'd *abs, or -errno with err set to
 * "image not found: FILE: <strerror>".
 */
int gw_ctl_image_resolve(const char *path, char **abs, char *err, size_t errlen);

#endif
