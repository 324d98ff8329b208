/* gw_metrics.h -- Prometheus metrics: a text builder (exposition format 0.0.4) and a tiny
 * non-blocking HTTP responder for GET /metrics (and a few more read-only routes a daemon adds,
 * e.g. the coordinator's status page), driven by the daemon's own poll loop. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#define GW_METRICS_MAX_CONNS	8	    /* scrapers served at once; more wait in backlog */
#define GW_METRICS_REQ_MAX	4096	    /* request line + headers */
#define GW_METRICS_TIMEOUT_MS	3000	    /* a connection's whole life */
#define GW_METRICS_TEXT_MAX	(16u << 20) /* one response body, at most */
#define GW_METRICS_POLLFDS	(1 + GW_METRICS_MAX_CONNS)
#define GW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define GW_METRICS_MAX_ROUTES	8 /* GET paths one server answers, /metrics included */
#define GW_METRICS_PATH_MAX	64

/* ---- text builder ---- */

/* A growing buffer, capped at max bytes: past that, overflow is set and text is dropped. */
struct gw_mtext {
	char *buf; /* NUL-terminated when len > 0 */
	size_t len, cap, max;
	bool overflow;
};

void gw_mtext_init(struct gw_mtext *t, size_t max);
void gw_mtext_reset(struct gw_mtext *t);
void gw_mtext_free(struct gw_mtext *t);
void gw_mtext_printf(struct gw_mtext *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "# HELP name help" (help escaped: backslash, newline) and "# TYPE name type". */
void gw_mtext_family(struct gw_mtext *t, const char *name, const char *type, const char *help);
/*
 * One sample: name{k1="v1",k2="v2"} value. The variadic part is label name / value pairs
 * (const char *), ended by NULL; values are escaped (backslash, double quote, newline).
 * Integral values print as integers, NaN and infinities as NaN, +Inf, -Inf.
 */
void gw_mtext_sample(struct gw_mtext *t, const char *name, double value, ...)
    __attribute__((sentinel));
/* Append s as a label value, escaped. */
void gw_mtext_label_value(struct gw_mtext *t, const char *s);

/* ---- request parser (pure) ---- */

/*
 * Look at the bytes a client sent so far. 0 = not complete yet (need more), else the HTTP
 * status to answer: 200 (GET /metrics, query string ignored), 404 (other path), 405 (other
 * method), 400 (malformed, not HTTP/1.x, or no end of headers within max bytes).
 */
int gw_metrics_parse_request(const char *buf, size_t len, size_t max);
/*
 * The same for any path: 0 (need more), 400, or 200 with the path (query string cut off,
 * truncated to pathlen - 1 bytes) copied to path and *is_get set when the method is GET.
 */
int gw_http_parse_request(const char *buf, size_t len, size_t max, char *path, size_t pathlen,
			  bool *is_get);

/* ---- server ---- */

/* Write the metrics (or a route's body) into t (reset before the call). */
typedef void (*gw_metrics_render_fn)(void *ctx, struct gw_mtext *t);

/* One GET path: its body comes from render(ctx), sent with content_type. */
struct gw_metrics_route {
	char path[GW_METRICS_PATH_MAX];
	const char *content_type; /* a string constant */
	gw_metrics_render_fn render;
	void *ctx;
};

struct gw_metrics_conn {
	int fd; /* -1 = free slot */
	enum { GW_MCONN_READ, GW_MCONN_WRITE, GW_MCONN_LINGER } phase;
	unsigned long long deadline_ms;
	char peer[64];
	char req[GW_METRICS_REQ_MAX];
	size_t req_len;
	const struct gw_metrics_route *route; /* of the request, NULL = none */
	char head[320];			      /* response status line and headers */
	size_t head_len;
	struct gw_mtext out; /* response body; kept between requests (bounded) */
	size_t out_off;	     /* bytes sent, of head then body */
};

struct gw_metrics_srv {
	int listen_fd; /* -1 = disabled */
	char addr[128];
	struct gw_metrics_route routes[GW_METRICS_MAX_ROUTES]; /* [0] = /metrics */
	size_t n_routes;
	struct gw_metrics_conn conns[GW_METRICS_MAX_CONNS];
	unsigned long long served, rejected;
};

/* A disabled server (listen_fd -1): safe to pass to every function below. */
void gw_metrics_init(struct gw_metrics_srv *s);
/* Is addr a valid "ADDR:PORT" (IPv4 dotted quad or [IPv6], port 0-65535)? 0 or -EINVAL. */
int gw_metrics_addr_check(const char *addr);
/* Listen on "ADDR:PORT" (IPv4 or [IPv6]; port 0 = any); render answers GET /metrics.
 * 0 or -errno. */
int gw_metrics_listen(struct gw_metrics_srv *s, const char *addr, gw_metrics_render_fn render,
		      void *ctx);
/* Answer GET path (exact, query string ignored) with render's body as content_type, after
 * gw_metrics_listen. 0, -EEXIST, -ENOSPC (GW_METRICS_MAX_ROUTES) or -EINVAL (not "/..."). */
int gw_metrics_route(struct gw_metrics_srv *s, const char *path, const char *content_type,
		     gw_metrics_render_fn render, void *ctx);
/* The port it listens on (after port 0), or -1. */
int gw_metrics_port(const struct gw_metrics_srv *s);
/* Add its fds to pfd (room for GW_METRICS_POLLFDS); returns how many were added. */
size_t gw_metrics_pollfds(struct gw_metrics_srv *s, struct pollfd *pfd);
/* After poll: handle the n entries gw_metrics_pollfds added (matched by fd), and end
 * connections past their deadline. Never blocks. */
void gw_metrics_dispatch(struct gw_metrics_srv *s, const struct pollfd *pfd, size_t n);
void gw_metrics_close(struct gw_metrics_srv *s);

#endif
