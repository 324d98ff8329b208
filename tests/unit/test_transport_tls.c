/* test_transport_tls.c -- the TLS layer (transport/tls.c): negotiation in every mode pair,
 * mTLS refusals (wrong CA, wrong IP, expired, no certificate name), hand-over to a new owner of
 * the socket, timeouts (stalled handshake, silent peer), shutdown from another thread, peer
 * loss without SIGPIPE, and large scattered transfers. Certificates are made here in memory. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gw_auth.h"
#include "gw_tls.h"
#include "gw_transport.h"

static char dir[] = "/tmp/gw-tls-unit-XXXXXX";
static const uint8_t test_key[32] = {7, 7, 7};
static EVP_PKEY *ca_key, *ca2_key;
static X509 *ca_crt, *ca2_crt;

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
	X509V3_CTX v;
	X509V3_set_ctx(&v, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nid, val);
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* A certificate for cn (ip in its SAN) valid from days_from to days_to (relative to now). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *ip, X509 *issuer,
		       EVP_PKEY *issuer_key, long days_from, long days_to)
{
	static long serial = 1;
	X509 *x = X509_new();
	char san[128];
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), days_from * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), days_to * 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	if (!issuer) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign");
	} else {
		snprintf(san, sizeof(san), "DNS:%s,IP:%s", cn, ip);
		add_ext(x, issuer, NID_subject_alt_name, san);
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static void write_pem(const char *name, X509 *x, EVP_PKEY *k)
{
	char path[256];
	FILE *f;
	if (x) {
		snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
		f = fopen(path, "w");
		PEM_write_X509(f, x);
		fclose(f);
	}
	if (k) {
		snprintf(path, sizeof(path), "%s/%s.key", dir, name);
		f = fopen(path, "w");
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
		fclose(f);
	}
}

/* host NAME: key + cert by ca (or ca2), for ip, valid [from, to] days. */
static void make_host(const char *name, const char *cn, const char *ip, bool other_ca, long from,
		      long to)
{
	EVP_PKEY *k = new_key();
	X509 *x = make_cert(k, cn, ip, other_ca ? ca2_crt : ca_crt, other_ca ? ca2_key : ca_key,
			    from, to);
	write_pem(name, x, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int setup_pki(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	ca_key = new_key();
	ca_crt = make_cert(ca_key, "test CA", NULL, NULL, NULL, -1, 365);
	ca2_key = new_key();
	ca2_crt = make_cert(ca2_key, "other CA", NULL, NULL, NULL, -1, 365);
	write_pem("ca", ca_crt, NULL);
	make_host("a", "a", "127.0.0.1", false, -1, 365);
	make_host("b", "b", "127.0.0.1", false, -1, 365);
	make_host("far", "far", "127.0.0.2", false, -1, 365);
	make_host("alien", "a", "127.0.0.1", true, -1, 365);
	make_host("expired", "b", "127.0.0.1", false, -30, -1);
	return 0;
}

static int teardown_pki(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct gw_tls_ctx *ctx_for(const char *host, enum gw_tls_mode mode)
{
	char ca[256], crt[256], key[256], err[512];
	struct gw_tls_ctx *t = NULL;
	if (mode == GW_TLS_OFF)
		return NULL;
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(crt, sizeof(crt), "%s/%s.pem", dir, host);
	snprintf(key, sizeof(key), "%s/%s.key", dir, host);
	assert_int_equal(gw_tls_ctx_new(mode, ca, crt, key, &t, err, sizeof(err)), 0);
	return t;
}

/* ---- a client and a server shaking hands (the server in a thread) ---- */

struct srv {
	struct gw_conn *lst, *c;
	struct gw_tls_ctx *ctx;
	int r;
	bool stall; /* accept, then say nothing */
	int timeout_ms;
	char err[320];
};

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	s->r = gw_conn_accept(s->lst, &s->c);
	if (s->r)
		return NULL;
	if (s->timeout_ms)
		gw_conn_set_timeout(s->c, s->timeout_ms);
	if (s->stall)
		return NULL;
	s->r = gw_auth_accept(s->ctx, test_key, sizeof(test_key), &s->c);
	snprintf(s->err, sizeof(s->err), "%s", gw_tls_last_error());
	return NULL;
}

/* Connect a client (ctx cctx) to a server (s->ctx) on 127.0.0.1, TLS negotiation then the
 * HMAC handshake, as peer links do: returns the client's result; *cli and s->c hold the
 * connections (NULL on failure). */
static int pair(struct gw_tls_ctx *cctx, struct srv *s, struct gw_conn **cli, int timeout_ms)
{
	pthread_t th;
	char addr[64];
	struct gw_transport_opts o = {.timeout_ms = timeout_ms ? timeout_ms : 5000};
	assert_int_equal(gw_transport_tcp.listen("127.0.0.1:0", &o, &s->lst), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(s->lst));
	pthread_create(&th, NULL, srv_main, s);
	int r = gw_transport_tcp.connect(addr, &o, cli);
	assert_int_equal(r, 0);
	r = gw_tls_client(cctx, cli);
	if (!r && !s->stall)
		r = gw_auth_client(*cli, test_key, sizeof(test_key));
	pthread_join(th, NULL);
	gw_conn_close(s->lst);
	s->lst = NULL;
	return r;
}

static void echo_check(struct gw_conn *a, struct gw_conn *b)
{
	char buf[16] = "";
	assert_int_equal(gw_conn_send(a, "hello", 6), 0);
	assert_int_equal(gw_conn_recv(b, buf, 6), 0);
	assert_string_equal(buf, "hello");
	assert_int_equal(gw_conn_send(b, "back", 5), 0);
	assert_int_equal(gw_conn_recv(a, buf, 5), 0);
	assert_string_equal(buf, "back");
}

static void test_modes(void **state)
{
	(void)state;
	/* client mode, server mode, expected client result, TLS on success? */
	static const struct {
		enum gw_tls_mode c, s;
		int r;
		bool tls;
	} cases[] = {
	    {GW_TLS_ON, GW_TLS_ON, 0, true},
	    {GW_TLS_REQUIRED, GW_TLS_ON, 0, true},
	    {GW_TLS_ON, GW_TLS_REQUIRED, 0, true},
	    {GW_TLS_ON, GW_TLS_OFF, 0, false},
	    {GW_TLS_OFF, GW_TLS_ON, 0, false},
	    {GW_TLS_OFF, GW_TLS_OFF, 0, false},
	    {GW_TLS_REQUIRED, GW_TLS_OFF, -EPROTONOSUPPORT, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv s = {.ctx = ctx_for("b", cases[i].s)};
		struct gw_tls_ctx *cc = ctx_for("a", cases[i].c);
		struct gw_conn *cli = NULL;
		int r = pair(cc, &s, &cli, 0);
		assert_int_equal(r, cases[i].r);
		if (!r) {
			assert_int_equal(s.r, 0);
			assert_int_equal(gw_conn_is_tls(cli), cases[i].tls);
			assert_int_equal(gw_conn_is_tls(s.c), cases[i].tls);
			if (cases[i].tls) {
				assert_string_equal(gw_tls_peer_name(cli), "b");
				assert_string_equal(gw_tls_peer_name(s.c), "a");
				assert_false(gw_tls_ktls(cli, true)); /* no CONFIG_TLS here */
			}
			echo_check(cli, s.c);
		} else {
			assert_non_null(strstr(gw_tls_last_error(), "plaintext peer refused"));
		}
		gw_conn_close(cli);
		gw_conn_close(s.c);
		gw_tls_ctx_free(cc);
		gw_tls_ctx_free(s.ctx);
	}
}

/* A plaintext client against `required`: the HMAC handshake says the peer requires TLS. */
static void test_required_refuses_plaintext(void **state)
{
	(void)state;
	struct srv s = {.ctx = ctx_for("b", GW_TLS_REQUIRED)};
	struct gw_conn *cli = NULL;
	assert_int_equal(pair(NULL, &s, &cli, 0), -EPROTONOSUPPORT);
	assert_int_equal(s.r, -EPROTONOSUPPORT);
	assert_non_null(strstr(s.err, "plaintext peer 127.0.0.1:"));
	assert_non_null(strstr(gw_auth_strerror(-EPROTONOSUPPORT), "requires TLS"));
	gw_conn_close(cli);
	gw_tls_ctx_free(s.ctx);
}

/* Refusals: the server shows a certificate the client must not accept, or the other way. */
static void test_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *cli, *srv, *why;
		bool srv_refuses;
	} cases[] = {
	    {"a", "far", "IP address mismatch", false},		/* another host's certificate */
	    {"a", "expired", "certificate has expired", false}, /* expired */
	    {"alien", "b", "", true},				/* client from another CA */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv s = {.ctx = ctx_for(cases[i].srv, GW_TLS_REQUIRED)};
		struct gw_tls_ctx *cc = ctx_for(cases[i].cli, GW_TLS_REQUIRED);
		struct gw_conn *cli = NULL;
		int r = pair(cc, &s, &cli, 0);
		if (!cases[i].srv_refuses) {
			assert_int_equal(r, -EKEYREJECTED);
			assert_null(cli);
			assert_non_null(strstr(gw_tls_last_error(), cases[i].why));
			assert_int_not_equal(s.r, 0);
		} else {
			/* TLS 1.3: the client finishes first; the refusal arrives on its first
			 * read, inside the HMAC handshake */
			assert_int_equal(s.r, -EKEYREJECTED);
			assert_non_null(strstr(s.err, "certificate of 127.0.0.1:"));
			assert_true(r == -EKEYREJECTED || r == -ECONNRESET);
		}
		gw_conn_close(cli);
		gw_conn_close(s.c);
		gw_tls_ctx_free(cc);
		gw_tls_ctx_free(s.ctx);
	}
}

/* A server that stalls mid-handshake: the client gives up at its timeout, cleanly. */
static void test_stalled_handshake(void **state)
{
	(void)state;
	struct srv s = {.stall = true};
	struct gw_tls_ctx *cc = ctx_for("a", GW_TLS_REQUIRED);
	struct gw_conn *cli = NULL;
	assert_int_equal(pair(cc, &s, &cli, 300), -ETIMEDOUT);
	assert_non_null(strstr(gw_tls_last_error(), "127.0.0.1"));
	/* the server side: a client that sends its TLS hello then nothing */
	struct srv s2 = {.ctx = ctx_for("b", GW_TLS_REQUIRED), .timeout_ms = 300};
	pthread_t th;
	char addr[64];
	struct gw_transport_opts o = {.timeout_ms = 300};
	assert_int_equal(gw_transport_tcp.listen("127.0.0.1:0", &o, &s2.lst), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(s2.lst));
	pthread_create(&th, NULL, srv_main, &s2);
	assert_int_equal(gw_transport_tcp.connect(addr, &o, &cli), 0);
	assert_int_equal(gw_conn_send(cli, "GWTL\1\2\0\0", 8), 0);
	pthread_join(th, NULL);
	assert_int_equal(s2.r, -ETIMEDOUT);
	assert_non_null(strstr(s2.err, "timed out"));
	gw_conn_close(cli);
	gw_conn_close(s2.lst);
	gw_tls_ctx_free(s2.ctx);
	gw_tls_ctx_free(cc);
	gw_conn_close(s.c);
}

struct waiter {
	struct gw_conn *c;
	int r;
};

static void *recv_main(void *arg)
{
	struct waiter *w = arg;
	char b[64];
	w->r = gw_conn_recv(w->c, b, sizeof(b));
	return NULL;
}

static void test_timeout_shutdown_and_peer_loss(void **state)
{
	(void)state;
	struct srv s = {.ctx = ctx_for("b", GW_TLS_ON)};
	struct gw_tls_ctx *cc = ctx_for("a", GW_TLS_ON);
	struct gw_conn *cli = NULL;
	char b;
	assert_int_equal(pair(cc, &s, &cli, 0), 0);
	gw_conn_set_timeout(cli, 100);
	assert_int_equal(gw_conn_recv(cli, &b, 1), -ETIMEDOUT);
	/* shutdown from another thread wakes a blocked receive */
	gw_conn_set_timeout(cli, -1);
	struct waiter w = {.c = cli};
	pthread_t th;
	pthread_create(&th, NULL, recv_main, &w);
	usleep(50000);
	gw_conn_shutdown(cli);
	pthread_join(th, NULL);
	assert_int_equal(w.r, -ECANCELED);
	assert_int_equal(gw_conn_send(cli, "x", 1), -ECANCELED);
	/* the server sees the stream end */
	assert_int_equal(gw_conn_recv(s.c, &b, 1), -ECONNRESET);
	gw_conn_close(cli);
	/* the peer vanishes while we send: -EPIPE/-ECONNRESET, never SIGPIPE */
	struct srv s2 = {.ctx = ctx_for("b", GW_TLS_ON)};
	assert_int_equal(pair(cc, &s2, &cli, 0), 0);
	gw_conn_close(s2.c);
	signal(SIGPIPE, SIG_DFL);
	size_t len = 8 << 20;
	char *big = calloc(1, len);
	int r = 0;
	for (int i = 0; i < 20 && !r; i++)
		r = gw_conn_send(cli, big, len);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	assert_int_equal(gw_conn_recv(cli, &b, 1), -ECONNRESET);
	free(big);
	gw_conn_close(cli);
	gw_conn_close(s.c);
	gw_tls_ctx_free(s.ctx);
	gw_tls_ctx_free(s2.ctx);
	gw_tls_ctx_free(cc);
}

struct sender {
	struct gw_conn *c;
	struct iovec *iov;
	int n;
	int r;
};

static void *send_main(void *arg)
{
	struct sender *s = arg;
	s->r = gw_conn_sendv(s->c, s->iov, s->n);
	return NULL;
}

/* Scattered pages plus headers, several MiB, both directions at once (full duplex). */
static void test_large_scattered(void **state)
{
	(void)state;
	struct srv s = {.ctx = ctx_for("b", GW_TLS_REQUIRED)};
	struct gw_tls_ctx *cc = ctx_for("a", GW_TLS_REQUIRED);
	struct gw_conn *cli = NULL;
	enum { PAGES = 2048 };
	assert_int_equal(pair(cc, &s, &cli, 0), 0);
	uint8_t *src = malloc(PAGES * 4096), *dst = calloc(1, PAGES * 4096);
	uint8_t hdr[PAGES][24];
	struct iovec *iov = calloc(2 * PAGES + 1, sizeof(*iov)), *riov = calloc(2, sizeof(*riov));
	for (size_t i = 0; i < PAGES * 4096; i++)
		src[i] = (uint8_t)(i * 7 + i / 4096);
	for (int i = 0; i < PAGES; i++) {
		memset(hdr[i], i & 0xff, sizeof(hdr[i]));
		iov[2 * i] = (struct iovec){hdr[i], sizeof(hdr[i])};
		/* pages in a shuffled order, and one big run at the end */
		int pg = (i * 37) % (PAGES - 512);
		iov[2 * i + 1] = (struct iovec){src + (size_t)pg * 4096, i < PAGES - 1 ? 4096 : 0};
	}
	iov[2 * PAGES] = (struct iovec){src, 512 * 4096};
	uint64_t sent0 = 0, rcvd0 = 0;
	gw_conn_stats(cli, &sent0, &rcvd0);
	struct sender sd = {.c = cli, .iov = iov, .n = 2 * PAGES + 1};
	struct sender back = {.c = s.c, .iov = &(struct iovec){src, 3 << 20}, .n = 1};
	pthread_t t1, t2;
	pthread_create(&t1, NULL, send_main, &sd);
	pthread_create(&t2, NULL, send_main, &back);
	uint8_t *rx = malloc(3 << 20);
	assert_int_equal(gw_conn_recv(cli, rx, 3 << 20), 0);
	assert_memory_equal(rx, src, 3 << 20);
	for (int i = 0; i < PAGES; i++) {
		uint8_t h[24];
		assert_int_equal(gw_conn_recv(s.c, h, sizeof(h)), 0);
		assert_memory_equal(h, hdr[i], sizeof(h));
		if (iov[2 * i + 1].iov_len) {
			assert_int_equal(gw_conn_recv(s.c, dst, 4096), 0);
			assert_memory_equal(dst, iov[2 * i + 1].iov_base, 4096);
		}
	}
	riov[0] = (struct iovec){dst, 100};
	riov[1] = (struct iovec){dst + 100, 512 * 4096 - 100};
	assert_int_equal(gw_conn_recvv(s.c, riov, 2), 0);
	assert_memory_equal(dst, src, 512 * 4096);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(sd.r, 0);
	assert_int_equal(back.r, 0);
	uint64_t sent = 0, rcvd = 0;
	gw_conn_stats(cli, &sent, &rcvd);
	assert_int_equal(rcvd - rcvd0, 3 << 20);
	assert_int_equal(sent - sent0, (uint64_t)PAGES * 24 + (PAGES - 1) * 4096ull + 512 * 4096);
	free(src);
	free(dst);
	free(rx);
	free(iov);
	free(riov);
	gw_conn_close(cli);
	gw_conn_close(s.c);
	gw_tls_ctx_free(s.ctx);
	gw_tls_ctx_free(cc);
}

/* The agent's hand-over: close_notify, the socket adopted elsewhere, a second handshake that
 * must show the same client; the client notices nothing but a slower receive. */
static void test_handoff(void **state)
{
	(void)state;
	for (int wrong = 0; wrong < 2; wrong++) {
		struct srv s = {.ctx = ctx_for("b", GW_TLS_REQUIRED)};
		struct gw_tls_ctx *cc = ctx_for("a", GW_TLS_REQUIRED);
		struct gw_conn *cli = NULL, *adopted = NULL;
		char buf[8] = "";
		assert_int_equal(pair(cc, &s, &cli, 0), 0);
		assert_int_equal(gw_conn_send(cli, "BEGIN", 6), 0);
		assert_int_equal(gw_conn_recv(s.c, buf, 6), 0);
		assert_int_equal(gw_tls_handoff(s.c), 0);
		int fd = dup(gw_conn_fd(s.c));
		gw_conn_close(s.c); /* the agent lets go; the VMM has its copy */
		assert_int_equal(gw_tcp_conn_from_fd(fd, NULL, &adopted), 0);
		struct waiter w = {.c = cli};
		pthread_t th;
		pthread_create(&th, NULL, recv_main, &w);
		gw_conn_set_timeout(adopted, 2000);
		int r = gw_tls_server_resume(s.ctx, wrong ? "someone-else" : "a", &adopted);
		if (!wrong) {
			assert_int_equal(r, 0);
			char reply[64] = "REPLY";
			assert_int_equal(gw_conn_send(adopted, reply, sizeof(reply)), 0);
			pthread_join(th, NULL);
			assert_int_equal(w.r, 0);
		} else {
			assert_int_equal(r, -EKEYREJECTED);
			assert_non_null(strstr(gw_tls_last_error(), "expected 'someone-else'"));
			gw_conn_close(adopted);
			adopted = NULL;
			pthread_join(th, NULL);
			assert_true(w.r < 0);
		}
		gw_conn_close(adopted);
		gw_conn_close(cli);
		gw_tls_ctx_free(cc);
		gw_tls_ctx_free(s.ctx);
	}
}

static void test_config_errors(void **state)
{
	(void)state;
	char err[512], ca[256], key[256];
	struct gw_tls_ctx *t = NULL;
	enum gw_tls_mode m;
	assert_int_equal(gw_tls_parse_mode("required", &m), 0);
	assert_int_equal(m, GW_TLS_REQUIRED);
	assert_int_equal(gw_tls_parse_mode("yes", &m), -EINVAL);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(key, sizeof(key), "%s/b.key", dir);
	assert_int_equal(gw_tls_ctx_new(GW_TLS_ON, "/nonexistent", ca, key, &t, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "cluster CA"));
	char crt[256];
	snprintf(crt, sizeof(crt), "%s/a.pem", dir);
	assert_int_equal(gw_tls_ctx_new(GW_TLS_ON, ca, crt, key, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "does not match"));
	assert_null(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_modes),
	    cmocka_unit_test(test_required_refuses_plaintext),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_stalled_handshake),
	    cmocka_unit_test(test_timeout_shutdown_and_peer_loss),
	    cmocka_unit_test(test_large_scattered),
	    cmocka_unit_test(test_handoff),
	    cmocka_unit_test(test_config_errors),
	};
	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
