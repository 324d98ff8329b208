/* tls.c -- TLS 1.3 over a TCP gw_conn (OpenSSL on the non-blocking socket, mutual certificates):
 * negotiation with plaintext peers, handshakes, hand-over to another process, the I/O ops. */
#include "gw_tls.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gw_fsutil.h"
#include "transport_int.h"

#define NEG_MAGIC  "GWTL"
#define NEG_LEN	   8
#define STAGE_SIZE 16384 /* one TLS record: small iov entries are gathered up to this */
#define READ_BUF   (256 * 1024)
#define WRITE_BUF  (256 * 1024)

/* Negotiation: the client's hello says what it wants, the server's reply what happens. */
enum { NEG_WANT_ON = 1, NEG_WANT_REQUIRED = 2 };
enum { NEG_TLS = 'T', NEG_PLAIN = 'P', NEG_REFUSED = 'R' };

struct gw_tls_ctx {
	enum gw_tls_mode mode;
	SSL_CTX *ssl;
	char name[GW_TRANSPORT_NAME_MAX];
};

/*
 * Per TLS connection. lock serialises SSL calls of the sending and the receiving thread (an SSL
 * object is not safe for concurrent use); nobody holds it while waiting on the socket.
 */
struct tls_priv {
	SSL *ssl;
	SSL_CTX *ctx; /* a reference, for the client's new handshake after a hand-over */
	pthread_mutex_t lock;
	bool client;
	bool restartable; /* client: the server may hand the link over once */
	bool ktls_send, ktls_recv;
	bool buffered; /* writes go through a BIO_f_buffer: tls_sendv flushes it */
	char expect_ip[GW_TRANSPORT_NAME_MAX];
	char peer_cn[GW_TRANSPORT_NAME_MAX];
	size_t staged;
	unsigned char stage[STAGE_SIZE];
};

static __thread char last_err[320];
extern const struct gw_transport_ops gw_transport_tls;

static int fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_err, sizeof(last_err), fmt, ap);
	va_end(ap);
	return r;
}

const char *gw_tls_last_error(void)
{
	return last_err;
}

int gw_tls_parse_mode(const char *s, enum gw_tls_mode *out)
{
	static const char *const names[] = {"off", "on", "required"};
	for (int i = 0; s && i < 3; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum gw_tls_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *gw_tls_mode_name(enum gw_tls_mode m)
{
	return m == GW_TLS_REQUIRED ? "required" : m == GW_TLS_ON ? "on" : "off";
}

/* The first OpenSSL error in the queue, as text (drains the queue). */
static const char *ossl_err(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	snprintf(buf, len, "no detail");
	if (e)
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static void cert_cn(X509 *x, char *buf, size_t len)
{
	buf[0] = '\0';
	if (x &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len) < 0)
		buf[0] = '\0';
}

int gw_tls_ctx_new(enum gw_tls_mode mode, const char *ca, const char *cert, const char *key,
		   struct gw_tls_ctx **out, char *err, size_t errlen)
{
	char e[256];
	struct gw_tls_ctx *t = calloc(1, sizeof(*t));
	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->mode = mode;
	t->ssl = SSL_CTX_new(TLS_method());
	if (!t->ssl)
		goto fail_nomem;
	SSL_CTX_set_min_proto_version(t->ssl, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(t->ssl, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
					 "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_options(t->ssl, SSL_OP_ENABLE_KTLS | SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(t->ssl, 0); /* no resumption: every link shows its certificate */
	SSL_CTX_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_AUTO_RETRY);
	/* Read ahead: records come in by the socket buffer's worth, not two reads each. Safe
	 * across a hand-over: the protocol takes turns there (the client sends nothing after
	 * BEGIN or JOIN until the new handshake), so no bytes of the next session are read in. */
	SSL_CTX_set_read_ahead(t->ssl, 1);
	SSL_CTX_set_default_read_buffer_len(t->ssl, READ_BUF);
	SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (!ca || !*ca || SSL_CTX_load_verify_locations(t->ssl, ca, NULL) != 1) {
		snprintf(err, errlen, "cannot load the cluster CA '%s': %s", ca ? ca : "",
			 ossl_err(e, sizeof(e)));
		goto fail;
	}
	if (!cert || !*cert || SSL_CTX_use_certificate_chain_file(t->ssl, cert) != 1) {
		snprintf(err, errlen, "cannot load the host certificate '%s': %s", cert ? cert : "",
			 ossl_err(e, sizeof(e)));
		goto fail;
	}
	if (!key || !*key || SSL_CTX_use_PrivateKey_file(t->ssl, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(t->ssl) != 1) {
		snprintf(err, errlen,
			 "cannot load the host key '%s' (or it does not match '%s'): %s",
			 key ? key : "", cert, ossl_err(e, sizeof(e)));
		goto fail;
	}
	X509 *own = SSL_CTX_get0_certificate(t->ssl);
	cert_cn(own, t->name, sizeof(t->name));
	err[0] = '\0';
	if (own && X509_cmp_current_time(X509_get0_notAfter(own)) <= 0)
		snprintf(err, errlen, "host certificate '%s' has expired: peers will refuse it",
			 cert);
	*out = t;
	return 0;
fail_nomem:
	snprintf(err, errlen, "out of memory");
	gw_tls_ctx_free(t);
	return -ENOMEM;
fail:
	gw_tls_ctx_free(t);
	return -EINVAL;
}

void gw_tls_ctx_free(struct gw_tls_ctx *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ssl);
	free(t);
}

enum gw_tls_mode gw_tls_ctx_mode(const struct gw_tls_ctx *t)
{
	return t ? t->mode : GW_TLS_OFF;
}

const char *gw_tls_ctx_name(const struct gw_tls_ctx *t)
{
	return t ? t->name : "";
}

bool gw_conn_is_tls(const struct gw_conn *c)
{
	return c && c->ops == &gw_transport_tls;
}

const char *gw_tls_peer_name(const struct gw_conn *c)
{
	return gw_conn_is_tls(c) ? ((struct tls_priv *)c->priv)->peer_cn : "";
}

bool gw_tls_ktls(const struct gw_conn *c, bool send)
{
	if (!gw_conn_is_tls(c))
		return false;
	struct tls_priv *t = c->priv;
	return send ? t->ktls_send : t->ktls_recv;
}

/* ---- mapping OpenSSL's verdicts onto the gw_conn contract ---- */

static bool cert_reason(int reason)
{
	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return true;
	}
	return false;
}

/* A fatal SSL_get_error() result e (errno saved as err) as -errno, with last_err set. */
static int tls_fatal(struct gw_conn *c, int e, int err, bool send, const char *what)
{
	struct tls_priv *t = c->priv;
	char buf[256];
	if (atomic_load(&c->shut)) {
		ERR_clear_error();
		return -ECANCELED;
	}
	if (e == SSL_ERROR_SSL) {
		unsigned long code = ERR_peek_error();
		long vr = t && t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
		ossl_err(buf, sizeof(buf));
		if (vr != X509_V_OK)
			return fail(-EKEYREJECTED, "%s: certificate of %s refused: %s", what,
				    c->peer, X509_verify_cert_error_string(vr));
		if (cert_reason(ERR_GET_REASON(code)))
			return fail(-EKEYREJECTED, "%s: %s refused our certificate: %s", what,
				    c->peer, buf);
		if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			return fail(-ECONNRESET, "%s: %s closed the connection", what, c->peer);
		return fail(send ? -EPIPE : -EPROTO, "%s with %s: %s", what, c->peer, buf);
	}
	ERR_clear_error();
	if (e == SSL_ERROR_SYSCALL && err && err != EAGAIN)
		return fail(err == EPIPE ? -EPIPE : -ECONNRESET, "%s with %s: %s", what, c->peer,
			    strerror(err));
	return fail(-ECONNRESET, "%s: %s closed the connection", what, c->peer);
}

/* ---- handshakes ---- */

/* OpenSSL writes with plain send(): keep a vanished peer's SIGPIPE away from the process. */
static void pipe_block(sigset_t *old)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &s, old);
}

static void pipe_restore(const sigset_t *old, bool failed)
{
	sigset_t s, pend;
	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	if (failed && !sigismember(old, SIGPIPE) && sigpending(&pend) == 0 &&
	    sigismember(&pend, SIGPIPE)) {
		struct timespec zero = {0, 0};
		(void)sigtimedwait(&s, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * Without kTLS, OpenSSL writes each 16 KiB record with its own send(): put a buffer in front
 * of the socket so that records leave by the socket buffer's worth (flushed by tls_sendv).
 */
static int tls_buffer_writes(struct gw_conn *c)
{
	struct tls_priv *t = c->priv;
	BIO *sock = SSL_get_wbio(t->ssl), *buf = BIO_new(BIO_f_buffer());
	if (!buf || BIO_set_write_buffer_size(buf, WRITE_BUF) != 1) {
		BIO_free(buf);
		return fail(-ENOMEM, "out of memory");
	}
	BIO_up_ref(sock); /* the chain holds its own reference; the SSL keeps it as rbio */
	BIO_push(buf, sock);
	SSL_set0_wbio(t->ssl, buf);
	t->buffered = true;
	return 0;
}

/* Run SSL_do_handshake to the end (deadline absolute), then check the peer's name. */
static int tls_handshake(struct gw_conn *c, long long deadline, const char *expect_cn)
{
	struct tls_priv *t = c->priv;
	for (;;) {
		ERR_clear_error();
		int ok = SSL_do_handshake(t->ssl);
		int err = errno;
		int e = ok == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, ok);
		if (e == SSL_ERROR_NONE)
			break;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return tls_fatal(c, e, err, false, "TLS handshake");
		int r = gw_tcp_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (r == -ETIMEDOUT)
			return fail(r, "TLS handshake with %s timed out (peer stalled)", c->peer);
		if (r)
			return fail(r, "TLS handshake with %s: %s", c->peer, strerror(-r));
	}
	X509 *pc = SSL_get0_peer_certificate(t->ssl);
	cert_cn(pc, t->peer_cn, sizeof(t->peer_cn));
	if (!pc || !t->peer_cn[0])
		return fail(-EKEYREJECTED, "certificate of %s names no host (no CN)", c->peer);
	if (expect_cn && strcmp(expect_cn, t->peer_cn))
		return fail(-EKEYREJECTED, "%s shows the certificate of '%s', expected '%s'",
			    c->peer, t->peer_cn, expect_cn);
	t->ktls_send = BIO_get_ktls_send(SSL_get_wbio(t->ssl));
	t->ktls_recv = BIO_get_ktls_recv(SSL_get_rbio(t->ssl));
	return t->ktls_send ? 0 : tls_buffer_writes(c);
}

/* A new SSL object on c's socket, for a client (checking the server's IP) or a server. */
static int tls_new_ssl(struct gw_conn *c)
{
	struct tls_priv *t = c->priv;
	SSL_free(t->ssl);
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, c->fd) != 1)
		return fail(-ENOMEM, "cannot set up TLS for %s", c->peer);
	if (t->client) {
		SSL_set_connect_state(t->ssl);
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), t->expect_ip) != 1)
			return fail(-EINVAL, "cannot check %s against its certificate", c->peer);
	} else {
		SSL_set_accept_state(t->ssl);
	}
	return 0;
}

/* The IP address part of "A.B.C.D:PORT" / "[v6]:PORT". */
static void host_of(const char *name, char *buf, size_t len)
{
	const char *end = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
	const char *start = name[0] == '[' ? name + 1 : name;
	int n = end ? (int)(end - start) : (int)strlen(start);
	snprintf(buf, len, "%.*s", n, start);
}

/* Turn the TCP connection c into a TLS one (in place) and shake hands. */
static int tls_upgrade(struct gw_tls_ctx *ctx, struct gw_conn *c, bool client, long long deadline,
		       const char *expect_cn)
{
	struct tls_priv *t = calloc(1, sizeof(*t));
	if (!t)
		return fail(-ENOMEM, "out of memory");
	pthread_mutex_init(&t->lock, NULL);
	SSL_CTX_up_ref(ctx->ssl);
	t->ctx = ctx->ssl;
	t->client = client;
	t->restartable = client;
	host_of(c->peer, t->expect_ip, sizeof(t->expect_ip));
	c->priv = t;
	c->ops = &gw_transport_tls; /* from here on, close frees t too */
	sigset_t old;
	pipe_block(&old);
	int r = tls_new_ssl(c);
	if (!r)
		r = tls_handshake(c, deadline, expect_cn);
	pipe_restore(&old, r != 0);
	return r;
}

/* Exactly len bytes of c's socket (read, or peeked when peek) before deadline. */
static int raw_read(struct gw_conn *c, void *buf, size_t len, bool peek, long long deadline)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(c->fd, (char *)buf + (peek ? 0 : got), peek ? len : len - got,
				 peek ? MSG_PEEK : 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (n > 0 && peek && (size_t)n < len) {
			/* part of the hello is here: the rest follows at once */
			struct timespec ts = {0, 2000000};
			if (deadline >= 0 && (long long)gw_now_mono_ms() >= deadline)
				return -ETIMEDOUT;
			nanosleep(&ts, NULL);
			continue;
		}
		if (n > 0) {
			got = peek ? len : got + (size_t)n;
			continue;
		}
		int r = gw_tcp_wait(c, POLLIN, deadline);
		if (r)
			return r;
	}
	return 0;
}

static int raw_write(struct gw_conn *c, const void *buf, size_t len)
{
	return gw_conn_send(c, buf, len);
}

int gw_tls_client(struct gw_tls_ctx *ctx, struct gw_conn **c)
{
	long long deadline = gw_transport_deadline(atomic_load(&(*c)->timeout_ms));
	unsigned char hello[NEG_LEN] = NEG_MAGIC, reply[NEG_LEN];
	int r;

	last_err[0] = '\0';
	if (!ctx || ctx->mode == GW_TLS_OFF)
		return 0; /* an `off` client speaks first in plaintext, as before TLS existed */
	hello[4] = 1;
	hello[5] = ctx->mode == GW_TLS_REQUIRED ? NEG_WANT_REQUIRED : NEG_WANT_ON;
	r = raw_write(*c, hello, sizeof(hello));
	if (!r)
		r = raw_read(*c, reply, sizeof(reply), false, deadline);
	if (r) {
		fail(r, "TLS negotiation with %s: %s", (*c)->peer, strerror(-r));
	} else if (memcmp(reply, NEG_MAGIC, 4)) {
		r = fail(-EPROTO, "%s did not answer the TLS hello (not a godwit agent?)",
			 (*c)->peer);
	} else if (reply[5] == NEG_PLAIN && ctx->mode == GW_TLS_REQUIRED) {
		r = fail(-EPROTONOSUPPORT,
			 "%s has TLS off: plaintext peer refused ([tls] mode = required here)",
			 (*c)->peer);
	} else if (reply[5] == NEG_PLAIN) {
		return 0;
	} else if (reply[5] != NEG_TLS) {
		r = fail(-EPROTO, "%s sent a garbled TLS answer", (*c)->peer);
	} else {
		r = tls_upgrade(ctx, *c, true, deadline, NULL);
	}
	if (r) {
		gw_conn_close(*c);
		*c = NULL;
	}
	return r;
}

int gw_tls_server(struct gw_tls_ctx *ctx, struct gw_conn **c)
{
	long long deadline = gw_transport_deadline(atomic_load(&(*c)->timeout_ms));
	unsigned char hello[NEG_LEN], reply[NEG_LEN] = NEG_MAGIC;
	enum gw_tls_mode mode = gw_tls_ctx_mode(ctx);
	int r;

	last_err[0] = '\0';
	r = raw_read(*c, hello, 4, true, deadline);
	if (r) {
		fail(r, "%s sent nothing: %s", (*c)->peer, strerror(-r));
	} else if (memcmp(hello, NEG_MAGIC, 4)) {
		if (mode != GW_TLS_REQUIRED)
			return 0; /* a plaintext client: its bytes are still unread */
		/* answer in the shape of an auth hello, so the client can say why */
		unsigned char no[40] = NEG_MAGIC;
		no[4] = 1;
		no[5] = NEG_REFUSED;
		(void)raw_write(*c, no, sizeof(no));
		r = fail(-EPROTONOSUPPORT,
			 "plaintext peer %s refused: [tls] mode = required on this host",
			 (*c)->peer);
	} else if (!(r = raw_read(*c, hello, sizeof(hello), false, deadline))) {
		reply[4] = 1;
		reply[5] = mode == GW_TLS_OFF ? NEG_PLAIN : NEG_TLS;
		r = raw_write(*c, reply, sizeof(reply));
		if (!r && mode == GW_TLS_OFF)
			return 0; /* the client goes on in plaintext or hangs up */
		if (!r)
			r = tls_upgrade(ctx, *c, false, deadline, NULL);
		else
			fail(r, "TLS negotiation with %s: %s", (*c)->peer, strerror(-r));
	} else {
		fail(r, "TLS negotiation with %s: %s", (*c)->peer, strerror(-r));
	}
	if (r) {
		gw_conn_close(*c);
		*c = NULL;
	}
	return r;
}

int gw_tls_handoff(struct gw_conn *c)
{
	if (!gw_conn_is_tls(c))
		return 0;
	struct tls_priv *t = c->priv;
	pthread_mutex_lock(&t->lock);
	int ok = SSL_shutdown(t->ssl); /* sends close_notify; the answer is for the next owner */
	pthread_mutex_unlock(&t->lock);
	ERR_clear_error();
	return ok < 0 ? fail(-EPIPE, "cannot hand the TLS link with %s over", c->peer) : 0;
}

int gw_tls_server_resume(struct gw_tls_ctx *ctx, const char *peer, struct gw_conn **c)
{
	last_err[0] = '\0';
	if (!peer || !*peer)
		return 0;
	if (!ctx)
		return fail(-EPROTONOSUPPORT,
			    "a TLS link from %s was handed over without TLS set up", (*c)->peer);
	long long deadline = gw_transport_deadline(atomic_load(&(*c)->timeout_ms));
	return tls_upgrade(ctx, *c, false, deadline, peer);
}

/* Client: the server ended its session (hand-over): shake hands with the socket's new owner,
 * who must show the same host's certificate. Once per connection. */
static int tls_restart(struct gw_conn *c, long long deadline)
{
	struct tls_priv *t = c->priv;
	char was[GW_TRANSPORT_NAME_MAX];
	if (!t->restartable)
		return fail(-ECONNRESET, "%s ended the TLS session", c->peer);
	t->restartable = false;
	snprintf(was, sizeof(was), "%s", t->peer_cn);
	pthread_mutex_lock(&t->lock);
	int r = tls_new_ssl(c);
	pthread_mutex_unlock(&t->lock);
	return r ? r : tls_handshake(c, deadline, was);
}

int gw_tls_await_handoff(struct gw_conn *c)
{
	if (!gw_conn_is_tls(c))
		return 0;
	struct tls_priv *t = c->priv;
	long long deadline = gw_transport_deadline(atomic_load(&c->timeout_ms));
	unsigned char b;
	size_t n = 0;
	for (;;) {
		ERR_clear_error();
		int ok = SSL_read_ex(t->ssl, &b, 1, &n);
		int err = errno;
		int e = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
		if (e == SSL_ERROR_ZERO_RETURN)
			return tls_restart(c, deadline);
		if (e == SSL_ERROR_NONE)
			return fail(-EPROTO, "%s sent data instead of handing the link over",
				    c->peer);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return tls_fatal(c, e, err, false, "waiting for the hand-over");
		int r = gw_tcp_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (r)
			return r;
	}
}

/* ---- the gw_conn ops ---- */

/* One SSL_write_ex / SSL_read_ex of up to len bytes, waiting for the socket as needed. */
static int tls_step(struct gw_conn *c, void *buf, size_t len, bool send, long long deadline,
		    size_t *n)
{
	struct tls_priv *t = c->priv;
	for (;;) {
		int r = 0;
		if (atomic_load(&c->shut))
			return -ECANCELED;
		pthread_mutex_lock(&t->lock);
		ERR_clear_error();
		int ok =
		    send ? SSL_write_ex(t->ssl, buf, len, n) : SSL_read_ex(t->ssl, buf, len, n);
		int err = errno;
		int e = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
		if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE &&
		    e != SSL_ERROR_ZERO_RETURN)
			r = tls_fatal(c, e, err, send, send ? "sending" : "receiving");
		pthread_mutex_unlock(&t->lock);
		if (e == SSL_ERROR_NONE || r)
			return r;
		if (e == SSL_ERROR_ZERO_RETURN) {
			if (atomic_load(&c->shut))
				return -ECANCELED;
			if (send || !t->client)
				return fail(-ECONNRESET, "%s ended the TLS session", c->peer);
			r = tls_restart(c, deadline); /* the server handed the link over */
		} else {
			r = gw_tcp_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		}
		if (r)
			return r;
	}
}

static int tls_send_buf(struct gw_conn *c, const void *buf, size_t len, long long deadline)
{
	while (len) {
		size_t n = 0;
		int r = tls_step(c, (void *)buf, len, true, deadline, &n);
		if (r)
			return r;
		buf = (const char *)buf + n;
		len -= n;
		atomic_fetch_add_explicit(&c->sent, n, memory_order_relaxed);
	}
	return 0;
}

static int tls_flush(struct gw_conn *c, long long deadline)
{
	struct tls_priv *t = c->priv;
	size_t n = t->staged;
	t->staged = 0;
	return n ? tls_send_buf(c, t->stage, n, deadline) : 0;
}

/* Push what the write buffer holds to the socket. */
static int tls_flush_bio(struct gw_conn *c, long long deadline)
{
	struct tls_priv *t = c->priv;
	for (;;) {
		if (atomic_load(&c->shut))
			return -ECANCELED;
		pthread_mutex_lock(&t->lock);
		BIO *w = SSL_get_wbio(t->ssl);
		int f = BIO_flush(w);
		int err = errno;
		bool retry = f <= 0 && BIO_should_retry(w);
		pthread_mutex_unlock(&t->lock);
		if (f > 0)
			return 0;
		if (!retry)
			return atomic_load(&c->shut)
				   ? -ECANCELED
				   : fail(err == EPIPE ? -EPIPE : -ECONNRESET, "sending to %s: %s",
					  c->peer, strerror(err ? err : ECONNRESET));
		int r = gw_tcp_wait(c, POLLOUT, deadline);
		if (r)
			return r;
	}
}

/*
 * Entries (or runs of entries adjacent in memory) of a record's size or more go to
 * SSL_write_ex straight from the caller's memory
 * (encrypted into OpenSSL's record buffer: that copy is the encryption itself); smaller ones
 * (frame headers, lone pages) are gathered into one record-sized buffer per connection first,
 * so that a record is never a few bytes.
 */
static int tls_sendv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	long long deadline = gw_transport_deadline(atomic_load(&c->timeout_ms));
	struct tls_priv *t = c->priv;
	sigset_t old;
	int r = 0;

	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	if (atomic_load(&c->shut))
		return -ECANCELED;
	pipe_block(&old);
	for (int i = 0; i < iovcnt && !r; i++) {
		const char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		/* entries that continue each other in memory (a run of pages) go as one */
		while (i + 1 < iovcnt && len >= STAGE_SIZE / 4 && iov[i + 1].iov_base == p + len) {
			len += iov[i + 1].iov_len;
			i++;
		}
		if (len >= STAGE_SIZE) {
			r = tls_flush(c, deadline);
			if (!r)
				r = tls_send_buf(c, p, len, deadline);
			continue;
		}
		while (len && !r) {
			size_t k = STAGE_SIZE - t->staged < len ? STAGE_SIZE - t->staged : len;
			memcpy(t->stage + t->staged, p, k);
			t->staged += k;
			p += k;
			len -= k;
			if (t->staged == STAGE_SIZE)
				r = tls_flush(c, deadline);
		}
	}
	if (!r)
		r = tls_flush(c, deadline);
	if (!r && t->buffered)
		r = tls_flush_bio(c, deadline);
	t->staged = 0;
	pipe_restore(&old, r != 0);
	return r;
}

static int tls_recvv(struct gw_conn *c, const struct iovec *iov, int iovcnt)
{
	long long deadline = gw_transport_deadline(atomic_load(&c->timeout_ms));
	sigset_t old;
	int r = 0;

	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	if (atomic_load(&c->shut))
		return -ECANCELED;
	pipe_block(&old); /* a hand-over's handshake writes */
	for (int i = 0; i < iovcnt && !r; i++) {
		char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		while (len && !r) {
			size_t n = 0;
			r = tls_step(c, p, len, false, deadline, &n);
			p += n;
			len -= n;
			atomic_fetch_add_explicit(&c->received, n, memory_order_relaxed);
		}
	}
	pipe_restore(&old, r != 0);
	return r;
}

static int tls_recv(struct gw_conn *c, void *buf, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	return tls_recvv(c, &iov, 1);
}

static int tls_no_listen(const char *addr, const struct gw_transport_opts *o, struct gw_conn **out)
{
	(void)addr;
	(void)o;
	*out = NULL;
	return -EOPNOTSUPP; /* TLS is a layer on a connected TCP stream: see gw_tls_client */
}

static int tls_no_accept(struct gw_conn *lst, struct gw_conn **out)
{
	(void)lst;
	*out = NULL;
	return -EOPNOTSUPP;
}

static int tls_register_mem(struct gw_conn *c, void *addr, size_t len)
{
	(void)c;
	(void)addr;
	(void)len;
	return 0;
}

static void tls_shutdown(struct gw_conn *c)
{
	gw_transport_tcp.shutdown(c); /* no SSL call: safe from any thread, never blocks */
}

/* Frees the session without close_notify (only a hand-over sends one), then the socket. */
static void tls_close(struct gw_conn *c)
{
	if (!c)
		return;
	struct tls_priv *t = c->priv;
	if (t) {
		SSL_free(t->ssl);
		SSL_CTX_free(t->ctx);
		pthread_mutex_destroy(&t->lock);
		free(t);
		c->priv = NULL;
	}
	gw_transport_tcp.close(c);
}

/* Lock context: SSL calls under the connection's lock, never held while waiting. */
const struct gw_transport_ops gw_transport_tls = {
    .name = "tls",
    .listen = tls_no_listen,
    .accept = tls_no_accept,
    .connect = tls_no_listen,
    .sendv = tls_sendv,
    .recv = tls_recv,
    .recvv = tls_recvv,
    .register_mem = tls_register_mem,
    .shutdown = tls_shutdown,
    .close = tls_close,
};
