/* test_metrics.c -- gw_metrics: the exposition-format builder (escaping, values), the request
 * parser (good, 404, 405, garbage, oversized, partial), and the responder over loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_fsutil.h"
#include "gw_metrics.h"

#define REQ(s) gw_metrics_parse_request(s, strlen(s), GW_METRICS_REQ_MAX)

/* Label values escape backslash, double quote and newline; HELP escapes backslash, newline. */
static void test_builder_escaping(void **state)
{
	struct gw_mtext t;
	gw_mtext_init(&t, 1 << 20);
	gw_mtext_family(&t, "godwit_x", "gauge", "a \\ help\nline \"quoted\"");
	gw_mtext_sample(&t, "godwit_x", 1, "vm", "a\"b\\c\nd", "host", "", NULL);
	gw_mtext_sample(&t, "godwit_y", 42, NULL);
	assert_string_equal(t.buf, "# HELP godwit_x a \\\\ help\\nline \"quoted\"\n"
				   "# TYPE godwit_x gauge\n"
				   "godwit_x{vm=\"a\\\"b\\\\c\\nd\",host=\"\"} 1\n"
				   "godwit_y 42\n");
	assert_false(t.overflow);
	gw_mtext_free(&t);
}

/* Integers print exactly, fractions round-trip, NaN and infinities use Prometheus' words. */
static void test_builder_values(void **state)
{
	struct gw_mtext t;
	gw_mtext_init(&t, 4096);
	gw_mtext_sample(&t, "a", 0, NULL);
	gw_mtext_sample(&t, "a", -3, NULL);
	gw_mtext_sample(&t, "a", 1073741824.0 * 1024, NULL);
	gw_mtext_sample(&t, "a", 0.25, NULL);
	gw_mtext_sample(&t, "a", 33.0 / 1000.0, NULL);
	gw_mtext_sample(&t, "a", 0.1 + 0.2, NULL);
	gw_mtext_sample(&t, "a", NAN, NULL);
	gw_mtext_sample(&t, "a", INFINITY, NULL);
	gw_mtext_sample(&t, "a", -INFINITY, NULL);
	assert_string_equal(t.buf, "a 0\na -3\na 1099511627776\na 0.25\na 0.033\na "
				   "0.30000000000000004\na NaN\na +Inf\na -Inf\n");
	gw_mtext_reset(&t);
	assert_int_equal(t.len, 0);
	gw_mtext_free(&t);
}

/* Past its cap the builder drops text and says so; reset clears the flag. */
static void test_builder_cap(void **state)
{
	struct gw_mtext t;
	gw_mtext_init(&t, 32);
	gw_mtext_sample(&t, "short", 1, NULL);
	assert_false(t.overflow);
	size_t len = t.len;
	gw_mtext_sample(&t, "a_much_longer_metric_name_here", 1, "k", "v", NULL);
	assert_true(t.overflow);
	assert_true(t.len <= 31);
	assert_true(t.len >= len);
	gw_mtext_reset(&t);
	assert_false(t.overflow);
	gw_mtext_free(&t);
}

/* GET /metrics with HTTP/1.0 or 1.1, CRLF or LF, headers or not, a query string: 200. */
static void test_parse_good(void **state)
{
	assert_int_equal(REQ("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"), 200);
	assert_int_equal(REQ("GET /metrics HTTP/1.0\r\n\r\n"), 200);
	assert_int_equal(REQ("GET /metrics HTTP/1.1\n\n"), 200);
	assert_int_equal(REQ("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), 200);
}

/* Another path is 404, another method on /metrics is 405. */
static void test_parse_404_405(void **state)
{
	assert_int_equal(REQ("GET / HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(REQ("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(REQ("GET /metric HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(REQ("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 405);
	assert_int_equal(REQ("HEAD /metrics HTTP/1.1\r\n\r\n"), 405);
	assert_int_equal(REQ("get /metrics HTTP/1.1\r\n\r\n"), 405);
}

/* Garbage is refused as soon as it shows, before any end of line. */
static void test_parse_garbage(void **state)
{
	static const char bin[] = {0x16, 0x03, 0x01, 0x02, 0x00}; /* a TLS hello */
	assert_int_equal(gw_metrics_parse_request(bin, sizeof(bin), GW_METRICS_REQ_MAX), 400);
	assert_int_equal(REQ("GET\t/metrics"), 400);
	assert_int_equal(REQ(" GET /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(REQ("{\"json\": 1}\n"), 400);
	assert_int_equal(REQ("GET /metrics\r\n\r\n"), 400); /* HTTP/0.9 */
	assert_int_equal(REQ("GET /metrics HTTP/2.0\r\n\r\n"), 400);
	assert_int_equal(REQ("GET metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(REQ("GET  /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(REQ("GET /met\x01rics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(REQ("GET /metrics HTTP/1.1 extra\r\n\r\n"), 400);
	assert_int_equal(REQ("GET /m\xc3\xa9trics HTTP/1.1\r\n\r\n"), 400);
}

/* A request without its end of headers waits, until it fills the buffer: then 400. */
static void test_parse_partial_oversized(void **state)
{
	assert_int_equal(REQ(""), 0);
	assert_int_equal(REQ("G"), 0);
	assert_int_equal(REQ("GET /metr"), 0);
	assert_int_equal(REQ("GET /metrics HTTP/1.1\r\n"), 0);
	assert_int_equal(REQ("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0);
	assert_int_equal(REQ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"), 0);
	char big[GW_METRICS_REQ_MAX];
	memset(big, 'A', sizeof(big));
	assert_int_equal(gw_metrics_parse_request(big, sizeof(big), sizeof(big)), 400);
	size_t n = (size_t)snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\n");
	memset(big + n, 'h', sizeof(big) - n);
	assert_int_equal(gw_metrics_parse_request(big, sizeof(big), sizeof(big)), 400);
	assert_int_equal(gw_metrics_parse_request(big, sizeof(big) - 1, sizeof(big)), 0);
}

/*
 * Found by fuzz_metrics: a request line that is a method alone ("GET\n") or empty ("\n")
 * made the parser search for the target with a length of (size_t)-1, reading past the
 * request. The bytes sit at the very end of a page followed by an unmapped one, so that
 * any read past them faults.
 */
static void test_parse_method_alone(void **state)
{
	static const char *const reqs[] = {"GET\n", "\n", "GET\r\n", "GET\n\n", "A\n"};
	long pg = sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		size_t n = strlen(reqs[i]);
		char *at = map + pg - n;
		memcpy(at, reqs[i], n);
		assert_int_equal(gw_metrics_parse_request(at, n, GW_METRICS_REQ_MAX), 400);
	}
	munmap(map, 2 * (size_t)pg);
}

/* ---- the responder over loopback, driven like a daemon's poll loop ---- */

static int renders;

static void render(void *ctx, struct gw_mtext *t)
{
	renders++;
	gw_mtext_family(t, "godwit_test", "gauge", "A test.");
	gw_mtext_sample(t, "godwit_test", 7, "who", (const char *)ctx, NULL);
}

static void turn(struct gw_metrics_srv *s, int timeout_ms)
{
	struct pollfd pfd[GW_METRICS_POLLFDS];
	size_t n = gw_metrics_pollfds(s, pfd);
	poll(pfd, n, timeout_ms);
	gw_metrics_dispatch(s, pfd, n);
}

static int client(struct gw_metrics_srv *s)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(gw_metrics_port(s))};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	assert_true(r == 0 || errno == EINPROGRESS);
	return fd;
}

/* Send req (may be NULL), then run the server until the client sees EOF or timeout_ms
 * passes; returns what the client read (static buffer) and whether it saw EOF. */
static const char *exchange(struct gw_metrics_srv *s, int fd, const char *req, int timeout_ms,
			    int *eof)
{
	static char buf[8192];
	size_t len = 0;
	unsigned long long end = gw_now_mono_ms() + (unsigned)timeout_ms;
	*eof = 0;
	if (req) {
		turn(s, 10); /* accept */
		assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	}
	while (gw_now_mono_ms() < end && !*eof) {
		turn(s, 10);
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n > 0)
			len += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			*eof = 1;
	}
	buf[len] = 0;
	return buf;
}

static void test_server(void **state)
{
	struct gw_metrics_srv s;
	int eof;
	gw_metrics_init(&s);
	/* disabled: nothing to poll, dispatch and close are harmless */
	struct pollfd pfd[GW_METRICS_POLLFDS];
	assert_int_equal(gw_metrics_pollfds(&s, pfd), 0);
	gw_metrics_dispatch(&s, pfd, 0);
	assert_int_equal(gw_metrics_addr_check("0.0.0.0:9420"), 0);
	assert_int_equal(gw_metrics_addr_check("[::]:9421"), 0);
	assert_int_equal(gw_metrics_addr_check("localhost:9420"), -EINVAL);
	assert_int_equal(gw_metrics_addr_check("1.2.3.4:"), -EINVAL);
	assert_int_equal(gw_metrics_addr_check("1.2.3.4:x"), -EINVAL);
	assert_int_equal(gw_metrics_addr_check(":9420"), -EINVAL);
	assert_int_equal(gw_metrics_listen(&s, "nonsense", render, "x"), -EINVAL);
	assert_int_equal(gw_metrics_listen(&s, "127.0.0.1:99999", render, "x"), -EINVAL);
	assert_int_equal(gw_metrics_listen(&s, "[::1:80", render, "x"), -EINVAL);
	assert_int_equal(gw_metrics_listen(&s, "127.0.0.1:0", render, "a\"b"), 0);
	assert_true(gw_metrics_port(&s) > 0);

	int fd = client(&s);
	const char *r = exchange(&s, fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 2000, &eof);
	assert_true(eof);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "\r\n\r\n# HELP godwit_test A test.\n"));
	assert_non_null(strstr(r, "godwit_test{who=\"a\\\"b\"} 7\n"));
	assert_int_equal(renders, 1);
	close(fd);

	fd = client(&s);
	r = exchange(&s, fd, "GET /nope HTTP/1.1\r\n\r\n", 2000, &eof);
	assert_true(eof);
	assert_non_null(strstr(r, "HTTP/1.1 404 "));
	close(fd);
	fd = client(&s);
	r = exchange(&s, fd, "DELETE /metrics HTTP/1.1\r\n\r\n", 2000, &eof);
	assert_non_null(strstr(r, "HTTP/1.1 405 "));
	assert_non_null(strstr(r, "Allow: GET\r\n"));
	close(fd);
	fd = client(&s);
	r = exchange(&s, fd, "\x16\x03\x01garbage", 2000, &eof);
	assert_true(eof);
	assert_non_null(strstr(r, "HTTP/1.1 400 "));
	close(fd);
	assert_int_equal(renders, 1);

	/* a client that sends half a request, and one that sends nothing: both closed at
	 * the deadline, while a third is served meanwhile */
	int half = client(&s), mute = client(&s);
	turn(&s, 10);
	assert_int_equal(send(half, "GET /metr", 9, MSG_NOSIGNAL), 9);
	fd = client(&s);
	r = exchange(&s, fd, "GET /metrics HTTP/1.0\r\n\r\n", 2000, &eof);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	close(fd);
	r = exchange(&s, half, NULL, GW_METRICS_TIMEOUT_MS + 1000, &eof);
	assert_true(eof);
	assert_string_equal(r, "");
	r = exchange(&s, mute, NULL, 500, &eof);
	assert_true(eof);
	close(half);
	close(mute);
	for (size_t i = 0; i < GW_METRICS_MAX_CONNS; i++)
		assert_int_equal(s.conns[i].fd, -1);
	assert_int_equal(s.served, 2);
	assert_int_equal(s.rejected, 3);
	gw_metrics_close(&s);
	assert_int_equal(s.listen_fd, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_builder_escaping),
	    cmocka_unit_test(test_builder_values),
	    cmocka_unit_test(test_builder_cap),
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_404_405),
	    cmocka_unit_test(test_parse_garbage),
	    cmocka_unit_test(test_parse_partial_oversized),
	    cmocka_unit_test(test_parse_method_alone),
	    cmocka_unit_test(test_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
