/* gw_frame.c -- framing of control messages over stream sockets. */
#include "gw_frame.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "control.pb-c.h"

void gw_frame_hdr_encode(uint8_t hdr[GW_FRAME_HDR_LEN], uint16_t type, uint32_t len)
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	hdr[4] = (uint8_t)(type >> 8);
	hdr[5] = (uint8_t)type;
}

long gw_frame_parse(const uint8_t *buf, size_t avail, uint32_t max_payload, struct gw_frame *f)
{
	if (avail < GW_FRAME_HDR_LEN)
		return 0;
	uint32_t len = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
		       ((uint32_t)buf[2] << 8) | buf[3];
	uint16_t type = (uint16_t)(((uint16_t)buf[4] << 8) | buf[5]);
	if (len > max_payload)
		return -EMSGSIZE;
	if (avail < GW_FRAME_HDR_LEN + (size_t)len)
		return 0;
	f->type = type;
	f->len = len;
	f->payload = buf + GW_FRAME_HDR_LEN;
	return (long)(GW_FRAME_HDR_LEN + len);
}

static int writev_all(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				if (poll(&p, 1, 5000) <= 0)
					return -ETIMEDOUT;
				continue;
			}
			return -errno;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int gw_frame_send(int fd, uint16_t type, const void *payload, uint32_t len)
{
	uint8_t hdr[GW_FRAME_HDR_LEN];
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, len}};
	gw_frame_hdr_encode(hdr, type, len);
	return writev_all(fd, iov, len ? 2 : 1);
}

int gw_msg_send(int fd, uint16_t type, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t stackbuf[4096];
	uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
	if (!buf)
		return -ENOMEM;
	if (len > GW_FRAME_MAX_PAYLOAD) {
		if (buf != stackbuf)
			free(buf);
		return -EMSGSIZE;
	}
	protobuf_c_message_pack(msg, buf);
	int r = gw_frame_send(fd, type, buf, (uint32_t)len);
	if (buf != stackbuf)
		free(buf);
	return r;
}

int gw_msg_send_error(int fd, int code, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	GwError e = GW_ERROR__INIT;
	e.code = code;
	e.message = text;
	return gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_ERROR, &e.base);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int read_full(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	size_t got = 0;
	while (got < len) {
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (left <= 0)
				return -ETIMEDOUT;
			int pr = poll(&p, 1, (int)left);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0)
				return -errno;
			if (pr == 0)
				return -ETIMEDOUT;
		}
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

int gw_frame_recv(int fd, uint32_t max_payload, int timeout_ms, uint16_t *type,
		  uint8_t **payload, uint32_t *len)
{
	uint8_t hdr[GW_FRAME_HDR_LEN];
	struct gw_frame f;
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int r = read_full(fd, hdr, sizeof(hdr), deadline);
	if (r)
		return r;
	uint32_t plen = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) |
			((uint32_t)hdr[2] << 8) | hdr[3];
	if (plen > max_payload)
		return -EMSGSIZE;
	*type = (uint16_t)(((uint16_t)hdr[4] << 8) | hdr[5]);
	*len = plen;
	*payload = NULL;
	(void)f;
	if (plen == 0)
		return 0;
	uint8_t *buf = malloc(plen);
	if (!buf)
		return -ENOMEM;
	r = read_full(fd, buf, plen, deadline);
	if (r) {
		free(buf);
		return r;
	}
	*payload = buf;
	return 0;
}
