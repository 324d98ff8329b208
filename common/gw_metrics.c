/* gw_metrics.c -- Prometheus metrics over HTTP: the exposition-format text builder and a
 * non-blocking GET responder (/metrics and a small table of other routes) that lives inside a
 * daemon's single poll loop. */
#include "gw_metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	     "metrics"
#define LINGER_MS    500	/* after the response: drain what the client still sends */
#define KEEP_OUT_MAX (1u << 20) /* a bigger response buffer is freed after use */

/* ---- text builder ---- */

void gw_mtext_init(struct gw_mtext *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
}

void gw_mtext_reset(struct gw_mtext *t)
{
	t->len = 0;
	t->overflow = false;
	if (t->buf)
		t->buf[0] = 0;
}

void gw_mtext_free(struct gw_mtext *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
	t->overflow = false;
}

/* Room for n more bytes plus the NUL; false (and overflow set) past max or out of memory. */
static bool reserve(struct gw_mtext *t, size_t n)
{
	if (t->overflow)
		return false;
	if (t->len + n + 1 > t->max) {
		t->overflow = true;
		return false;
	}
	if (t->len + n + 1 <= t->cap)
		return true;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap < t->len + n + 1)
		cap *= 2;
	if (cap > t->max)
		cap = t->max;
	char *b = realloc(t->buf, cap);
	if (!b) {
		t->overflow = true;
		return false;
	}
	t->buf = b;
	t->cap = cap;
	return true;
}

static void put(struct gw_mtext *t, const char *s, size_t n)
{
	if (!reserve(t, n))
		return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = 0;
}

static void puts_(struct gw_mtext *t, const char *s)
{
	put(t, s, strlen(s));
}

void gw_mtext_printf(struct gw_mtext *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* Backslash and newline always; double quote too inside label values. */
static void escaped(struct gw_mtext *t, const char *s, bool quote)
{
	const char *run = s;
	for (; *s; s++) {
		const char *rep = NULL;
		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (*s == '"' && quote)
			rep = "\\\"";
		if (!rep)
			continue;
		put(t, run, (size_t)(s - run));
		puts_(t, rep);
		run = s + 1;
	}
	put(t, run, (size_t)(s - run));
}

void gw_mtext_label_value(struct gw_mtext *t, const char *s)
{
	escaped(t, s ? s : "", true);
}

void gw_mtext_family(struct gw_mtext *t, const char *name, const char *type, const char *help)
{
	gw_mtext_printf(t, "# HELP %s ", name);
	escaped(t, help, false);
	gw_mtext_printf(t, "\n# TYPE %s %s\n", name, type);
}

/* The shortest %g that reads back as v (0.033, not 0.033000000000000002). */
static void shortest(struct gw_mtext *t, double v)
{
	char buf[32];
	for (int prec = 15; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
		snprintf(buf, sizeof(buf), "%.17g", v);
	}
	puts_(t, buf);
}

static void value(struct gw_mtext *t, double v)
{
	if (isnan(v))
		puts_(t, "NaN");
	else if (isinf(v))
		puts_(t, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v)
		gw_mtext_printf(t, "%lld", (long long)v); /* |v| < 2^53: an exact integer */
	else
		shortest(t, v);
}

void gw_mtext_sample(struct gw_mtext *t, const char *name, double v, ...)
{
	va_list ap;
	const char *k;
	bool first = true;

	puts_(t, name);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *))) {
		const char *val = va_arg(ap, const char *);
		puts_(t, first ? "{" : ",");
		puts_(t, k);
		puts_(t, "=\"");
		gw_mtext_label_value(t, val);
		puts_(t, "\"");
		first = false;
	}
	va_end(ap);
	if (!first)
		puts_(t, "}");
	puts_(t, " ");
	value(t, v);
	puts_(t, "\n");
}

/* ---- request parser ---- */

static bool tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* End of the header block ("\r\n\r\n" or "\n\n"), or NULL. */
static const char *headers_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return buf + i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return buf + i + 3;
	}
	return NULL;
}

int gw_http_parse_request(const char *buf, size_t len, size_t max, char *path, size_t pathlen,
			  bool *is_get)
{
	/* the request line so far: METHOD SP TARGET SP HTTP/1.x CRLF, printable ASCII */
	const char *nl = memchr(buf, '\n', len);
	size_t line_len = nl ? (size_t)(nl - buf) : len;
	size_t m = 0;
	while (m < line_len && tchar((unsigned char)buf[m]))
		m++;
	if (m < line_len && (buf[m] != ' ' || m == 0))
		return 400; /* not a method: binary or text garbage */
	for (size_t i = 0; i < line_len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if ((c < 0x20 && !(c == '\r' && i + 1 == line_len)) || c >= 0x7f)
			return 400;
	}
	if (!nl)
		return len >= max ? 400 : 0;
	size_t l = line_len;
	if (l && buf[l - 1] == '\r')
		l--;
	if (m >= l)
		return 400; /* a method alone ("GET\n"), or an empty line */
	const char *tgt = buf + m + 1;
	const char *sp2 = memchr(tgt, ' ', (size_t)(buf + l - tgt));
	if (!sp2 || sp2 == tgt || *tgt != '/')
		return 400;
	const char *ver = sp2 + 1;
	size_t vlen = (size_t)(buf + l - ver);
	if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9')
		return 400;
	size_t plen = (size_t)(sp2 - tgt);
	const char *q = memchr(tgt, '?', plen);
	if (q)
		plen = (size_t)(q - tgt);
	if (!headers_end(buf, len))
		return len >= max ? 400 : 0;
	if (pathlen) /* too long for path: "" (matches no route) */
		snprintf(path, pathlen, "%.*s", plen < pathlen ? (int)plen : 0, tgt);
	*is_get = m == 3 && memcmp(buf, "GET", 3) == 0;
	return 200;
}

int gw_metrics_parse_request(const char *buf, size_t len, size_t max)
{
	char path[16];
	bool get = false;
	int r = gw_http_parse_request(buf, len, max, path, sizeof(path), &get);
	if (r != 200)
		return r;
	if (strcmp(path, "/metrics") != 0)
		return 404;
	return get ? 200 : 405;
}

/* ---- server ---- */

void gw_metrics_init(struct gw_metrics_srv *s)
{
	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	for (size_t i = 0; i < GW_METRICS_MAX_CONNS; i++) {
		s->conns[i].fd = -1;
		gw_mtext_init(&s->conns[i].out, GW_METRICS_TEXT_MAX);
	}
}

static int parse_addr(const char *a, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[128];
	const char *colon;
	char *end;

	if (!a || strlen(a) >= sizeof(host))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (a[0] == '[') {
		const char *rb = strchr(a, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - a - 1), a + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(a, ':');
		if (!colon)
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
	}
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port > 65535)
		return -EINVAL;
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (a[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*v4);
		return 0;
	}
	if (a[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*v6);
		return 0;
	}
	return -EINVAL;
}

int gw_metrics_addr_check(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	return parse_addr(addr, &ss, &sl);
}

int gw_metrics_listen(struct gw_metrics_srv *s, const char *addr, gw_metrics_render_fn render,
		      void *ctx)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, r;

	r = parse_addr(addr, &ss, &sl);
	if (r)
		return r;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	s->listen_fd = fd;
	s->n_routes = 0;
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	return gw_metrics_route(s, "/metrics", GW_METRICS_CONTENT_TYPE, render, ctx);
}

int gw_metrics_route(struct gw_metrics_srv *s, const char *path, const char *content_type,
		     gw_metrics_render_fn render, void *ctx)
{
	if (!path || path[0] != '/' || strlen(path) >= GW_METRICS_PATH_MAX || !render)
		return -EINVAL;
	for (size_t i = 0; i < s->n_routes; i++)
		if (strcmp(s->routes[i].path, path) == 0)
			return -EEXIST;
	if (s->n_routes == GW_METRICS_MAX_ROUTES)
		return -ENOSPC;
	struct gw_metrics_route *rt = &s->routes[s->n_routes++];
	snprintf(rt->path, sizeof(rt->path), "%s", path);
	rt->content_type = content_type;
	rt->render = render;
	rt->ctx = ctx;
	return 0;
}

int gw_metrics_port(const struct gw_metrics_srv *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (s->listen_fd < 0 || getsockname(s->listen_fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void conn_end(struct gw_metrics_conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->req_len = 0;
	c->out_off = 0;
	if (c->out.cap > KEEP_OUT_MAX)
		gw_mtext_free(&c->out);
	else
		gw_mtext_reset(&c->out);
}

static void peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &v6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(v6->sin6_port));
	} else {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &v4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(v4->sin_port));
	}
}

static void accept_all(struct gw_metrics_srv *s)
{
	for (;;) {
		struct gw_metrics_conn *c = NULL;
		for (size_t i = 0; i < GW_METRICS_MAX_CONNS && !c; i++)
			if (s->conns[i].fd < 0)
				c = &s->conns[i];
		if (!c)
			return; /* the rest wait in the backlog; the listener is not polled */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				gw_warn(SUBSYS, "accept on %s: %s", s->addr, strerror(errno));
			return;
		}
		c->fd = fd;
		c->phase = GW_MCONN_READ;
		c->deadline_ms = gw_now_mono_ms() + GW_METRICS_TIMEOUT_MS;
		c->req_len = 0;
		c->out_off = 0;
		gw_mtext_reset(&c->out);
		peer_name(&ss, c->peer, sizeof(c->peer));
	}
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 500:
		return "Internal Server Error";
	default:
		return "Bad Request";
	}
}

/* The first line of the request, printable, for logs. */
static void req_line(const struct gw_metrics_conn *c, char *buf, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < c->req_len && c->req[i] != '\r' && c->req[i] != '\n'; i++) {
		if (n + 1 >= len || n >= 80)
			break;
		unsigned char ch = (unsigned char)c->req[i];
		buf[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	buf[n] = 0;
}

/* Build the response: head in c->head, body in c->out (c->route answers a 200). */
static void respond(struct gw_metrics_srv *s, struct gw_metrics_conn *c, int status)
{
	char line[96];
	struct gw_mtext *o = &c->out;
	const struct gw_metrics_route *rt = c->route;

	gw_mtext_reset(o);
	if (status == 200) {
		rt->render(rt->ctx, o);
		if (o->overflow) {
			gw_err(SUBSYS,
			       "%s: %s body over %u bytes (or out of memory): "
			       "answering 500",
			       c->peer, rt->path, GW_METRICS_TEXT_MAX);
			status = 500;
		}
	}
	if (status != 200) {
		req_line(c, line, sizeof(line));
		gw_info(SUBSYS, "%s: request '%s' answered %d", c->peer, line, status);
		s->rejected++;
		gw_mtext_reset(o);
		gw_mtext_printf(o, "%d %s\n", status, reason(status));
	} else {
		s->served++;
	}
	int hl = snprintf(c->head, sizeof(c->head),
			  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "%s%sConnection: close\r\n\r\n",
			  status, reason(status),
			  status == 200 ? rt->content_type : "text/plain; charset=utf-8", o->len,
			  status == 405 ? "Allow: GET\r\n" : "",
			  status == 200 && rt != s->routes ? "Cache-Control: no-store\r\n" : "");
	c->head_len = (size_t)hl;
	c->out_off = 0;
	c->phase = GW_MCONN_WRITE;
}

static void on_read(struct gw_metrics_srv *s, struct gw_metrics_conn *c)
{
	bool eof = false;
	while (c->req_len < sizeof(c->req)) {
		ssize_t n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			gw_debug(SUBSYS, "%s: recv: %s", c->peer, strerror(errno));
			conn_end(c);
			return;
		}
		if (n == 0) {
			eof = true; /* half-closed: it may still read an answer */
			break;
		}
		c->req_len += (size_t)n;
	}
	char path[GW_METRICS_PATH_MAX];
	bool get = false;
	int status =
	    gw_http_parse_request(c->req, c->req_len, sizeof(c->req), path, sizeof(path), &get);
	c->route = NULL;
	if (status == 200) {
		for (size_t i = 0; i < s->n_routes && !c->route; i++)
			if (strcmp(s->routes[i].path, path) == 0)
				c->route = &s->routes[i];
		status = !c->route ? 404 : get ? 200 : 405;
	}
	if (!status && eof)
		status = c->req_len ? 400 : 0;
	if (status) {
		respond(s, c, status);
	} else if (eof) {
		gw_debug(SUBSYS, "%s: closed without a request", c->peer);
		conn_end(c);
	}
}

static void on_write(struct gw_metrics_conn *c)
{
	size_t total = c->head_len + c->out.len;
	while (c->out_off < total) {
		struct iovec iov[2];
		int n_iov = 0;
		if (c->out_off < c->head_len)
			iov[n_iov++] =
			    (struct iovec){c->head + c->out_off, c->head_len - c->out_off};
		size_t boff = c->out_off > c->head_len ? c->out_off - c->head_len : 0;
		if (c->out.len > boff)
			iov[n_iov++] = (struct iovec){c->out.buf + boff, c->out.len - boff};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			gw_warn(SUBSYS, "%s: send: %s", c->peer, strerror(errno));
			conn_end(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	/* all sent: half-close, then drain the client's leftovers so that close sends no RST
	 * that could destroy the response before the client read it */
	shutdown(c->fd, SHUT_WR);
	c->phase = GW_MCONN_LINGER;
	unsigned long long until = gw_now_mono_ms() + LINGER_MS;
	if (until < c->deadline_ms)
		c->deadline_ms = until;
}

static void on_linger(struct gw_metrics_conn *c)
{
	char junk[1024];
	for (;;) {
		ssize_t n = recv(c->fd, junk, sizeof(junk), 0);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_end(c); /* EOF or error: done */
		return;
	}
}

size_t gw_metrics_pollfds(struct gw_metrics_srv *s, struct pollfd *pfd)
{
	size_t n = 0, busy = 0;
	if (s->listen_fd < 0)
		return 0;
	for (size_t i = 0; i < GW_METRICS_MAX_CONNS; i++) {
		struct gw_metrics_conn *c = &s->conns[i];
		if (c->fd < 0)
			continue;
		busy++;
		pfd[n++] = (struct pollfd){.fd = c->fd,
					   .events = c->phase == GW_MCONN_WRITE ? POLLOUT : POLLIN};
	}
	if (busy < GW_METRICS_MAX_CONNS)
		pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
	return n;
}

void gw_metrics_dispatch(struct gw_metrics_srv *s, const struct pollfd *pfd, size_t n)
{
	if (s->listen_fd < 0)
		return;
	for (size_t k = 0; k < n; k++) {
		if (!pfd[k].revents)
			continue;
		if (pfd[k].fd == s->listen_fd) {
			accept_all(s);
			continue;
		}
		for (size_t i = 0; i < GW_METRICS_MAX_CONNS; i++) {
			struct gw_metrics_conn *c = &s->conns[i];
			if (c->fd != pfd[k].fd)
				continue;
			if (c->phase == GW_MCONN_READ)
				on_read(s, c);
			if (c->fd >= 0 && c->phase == GW_MCONN_WRITE)
				on_write(c);
			else if (c->fd >= 0 && c->phase == GW_MCONN_LINGER)
				on_linger(c);
			break;
		}
	}
	unsigned long long now = gw_now_mono_ms();
	for (size_t i = 0; i < GW_METRICS_MAX_CONNS; i++) {
		struct gw_metrics_conn *c = &s->conns[i];
		if (c->fd < 0 || now < c->deadline_ms)
			continue;
		if (c->phase == GW_MCONN_READ)
			gw_info(SUBSYS, "%s: no complete request within %d ms (%zu bytes): closed",
				c->peer, GW_METRICS_TIMEOUT_MS, c->req_len);
		else if (c->phase == GW_MCONN_WRITE)
			gw_warn(SUBSYS,
				"%s: response not taken within %d ms (%zu of %zu bytes sent): "
				"closed",
				c->peer, GW_METRICS_TIMEOUT_MS, c->out_off,
				c->head_len + c->out.len);
		conn_end(c);
	}
}

void gw_metrics_close(struct gw_metrics_srv *s)
{
	for (size_t i = 0; i < GW_METRICS_MAX_CONNS; i++) {
		if (s->conns[i].fd >= 0)
			conn_end(&s->conns[i]);
		gw_mtext_free(&s->conns[i].out);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
}
