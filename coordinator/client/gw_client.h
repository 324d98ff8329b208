/* gw_client.h -- the control-socket client library, shared by godwitctl and the coordinator
 * (which reaches its local agent through it): connect, one request, one reply. */
#ifndef GW_CLIENT_H
#define GW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* One connection to an agent or a coordinator. */
struct gw_client {
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
int gw_client_connect(struct gw_client *c, const char *path, int timeout_ms);
void gw_client_close(struct gw_client *c);

/*
 * Send req as a frame of req_type and wait for the reply. When it is of type
 * reply_type it is unpacked with reply_desc into *reply (free it with
 * protobuf_c_message_free_unpacked). A GW_MSG_ERROR reply returns its code (a
 * negative errno, -EIO if the agent sent none) with its message in c->err and
 * c->agent_error set; -ETIMEDOUT, -ECONNRESET, -EPROTO (bad or unexpected reply) and
 * other -errno come with a message in c->err too.
 */
int gw_client_call(struct gw_client *c, uint16_t req_type, const ProtobufCMessage *req,
		   uint16_t reply_type, const ProtobufCMessageDescriptor *reply_desc,
		   ProtobufCMessage **reply);

/*
 * connect + call + close in one: one request to the socket at path, its reply unpacked into
 * *reply as gw_client_call does. On failure the reason is copied into err.
 */
int gw_client_request(const char *path, int timeout_ms, uint16_t req_type,
		      const ProtobufCMessage *req, uint16_t reply_type,
		      const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply,
		      char *err, size_t errlen);

#endif
