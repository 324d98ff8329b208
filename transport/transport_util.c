/* transport_util.c -- what the transport backends share and nothing calls back out of:
 * option defaults, address parsing and formatting, deadlines. */
#include "transport_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_fsutil.h"

void gw_transport_opts_resolve(const struct gw_transport_opts *opts, struct gw_transport_opts *out)
{
	memset(out, 0, sizeof(*out));
	if (opts)
		*out = *opts;
	if (out->timeout_ms == 0)
		out->timeout_ms = GW_TRANSPORT_TIMEOUT_MS;
	if (out->sockbuf == 0)
		out->sockbuf = GW_TRANSPORT_SOCKBUF;
}

static int parse_port(const char *s, bool allow_port0, in_port_t *port)
{
	unsigned long v = 0;
	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535 || (v == 0 && !allow_port0))
		return -EINVAL;
	*port = htons((uint16_t)v);
	return 0;
}

int gw_transport_parse_addr(const char *s, bool allow_port0, struct sockaddr_storage *ss,
			    socklen_t *sslen)
{
	char host[INET6_ADDRSTRLEN];
	const char *port;
	size_t hlen;

	if (!s)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hlen = (size_t)(end - s - 1);
		port = end + 2;
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*sslen = sizeof(*sin6);
		return parse_port(port, allow_port0, &sin6->sin6_port);
	}
	const char *colon = strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -EINVAL;
	*sslen = sizeof(*sin);
	return parse_port(colon + 1, allow_port0, &sin->sin_port);
}

void gw_transport_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
}

long long gw_transport_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return (long long)gw_now_mono_ms() + timeout_ms;
}
