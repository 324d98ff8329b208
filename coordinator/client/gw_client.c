/* gw_client.c -- the control-socket client shared by godwitctl and the coordinator: connect to a
 * unix socket (an agent's or a coordinator's), send one request frame, wait for its reply. */
#include "gw_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "gw_frame.h"

/* Largest reply godwitctl accepts; a VM list or console chunk stays far below it. */
#define CTL_MAX_REPLY GW_FRAME_MAX_PAYLOAD

int gw_client_connect(struct gw_client *c, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, r;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->path = path;
	c->timeout_ms = timeout_ms;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(c->err, sizeof(c->err), "cannot connect to %s: %s", path,
			 strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (timeout_ms > 0) {
		/* a stuck agent must not hang a send (replies are bounded by poll) */
		struct timeval tv = {.tv_sec = timeout_ms / 1000,
				     .tv_usec = (timeout_ms % 1000) * 1000};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	do {
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(fd);
		goto fail;
	}
	c->fd = fd;
	return 0;
fail:
	snprintf(c->err, sizeof(c->err), "cannot connect to %s: %s", path, strerror(-r));
	return r;
}

void gw_client_close(struct gw_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Copy an agent's error text into c->err as one printable line. */
static void set_agent_error(struct gw_client *c, const char *msg)
{
	size_t i = 0;
	if (!msg || !*msg)
		msg = "agent reported an error without a message";
	for (; msg[i] && i < sizeof(c->err) - 1; i++) {
		unsigned char ch = (unsigned char)msg[i];
		c->err[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	c->err[i] = '\0';
	c->agent_error = true;
}

int gw_client_call(struct gw_client *c, uint16_t req_type, const ProtobufCMessage *req,
		   uint16_t reply_type, const ProtobufCMessageDescriptor *reply_desc,
		   ProtobufCMessage **reply)
{
	uint8_t *payload = NULL;
	uint32_t len = 0;
	uint16_t type = 0;
	int r;

	*reply = NULL;
	c->agent_error = false;
	c->err[0] = '\0';
	r = gw_msg_send(c->fd, req_type, req);
	if (r) {
		snprintf(c->err, sizeof(c->err), "sending to %s: %s", c->path,
			 r == -EAGAIN ? strerror(ETIMEDOUT) : strerror(-r));
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}
	r = gw_frame_recv(c->fd, CTL_MAX_REPLY, c->timeout_ms > 0 ? c->timeout_ms : -1, &type,
			  &payload, &len);
	if (r == -ETIMEDOUT) {
		snprintf(c->err, sizeof(c->err), "no reply from %s within %d s", c->path,
			 c->timeout_ms / 1000);
		return r;
	}
	if (r == -ECONNRESET) {
		snprintf(c->err, sizeof(c->err), "%s closed the connection without replying",
			 c->path);
		return r;
	}
	if (r) {
		snprintf(c->err, sizeof(c->err), "receiving from %s: %s", c->path, strerror(-r));
		return r;
	}
	if (type == GW_MSG_TYPE__GW_MSG_ERROR) {
		GwError *e = gw_error__unpack(NULL, len, payload);
		free(payload);
		if (!e) {
			snprintf(c->err, sizeof(c->err), "malformed error reply from %s", c->path);
			return -EPROTO;
		}
		set_agent_error(c, e->message);
		r = e->code < 0 ? e->code : -EIO;
		gw_error__free_unpacked(e, NULL);
		return r;
	}
	if (type != reply_type) {
		free(payload);
		snprintf(c->err, sizeof(c->err), "unexpected reply type %u from %s (expected %u)",
			 type, c->path, reply_type);
		return -EPROTO;
	}
	*reply = protobuf_c_message_unpack(reply_desc, NULL, len, payload);
	free(payload);
	if (!*reply) {
		snprintf(c->err, sizeof(c->err), "malformed reply (type %u) from %s", type,
			 c->path);
		return -EPROTO;
	}
	return 0;
}

int gw_client_request(const char *path, int timeout_ms, uint16_t req_type,
		      const ProtobufCMessage *req, uint16_t reply_type,
		      const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply,
		      char *err, size_t errlen)
{
	struct gw_client cl;
	int r = gw_client_connect(&cl, path, timeout_ms);
	if (!r)
		r = gw_client_call(&cl, req_type, req, reply_type, reply_desc, reply);
	gw_client_close(&cl);
	if (r)
		snprintf(err, errlen, "%s", cl.err);
	return r;
}
