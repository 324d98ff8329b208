/* gw_tls.h -- TLS 1.3 (OpenSSL, mutual certificates) over a connected TCP gw_conn: the
 * plaintext/TLS negotiation, the handshake, and the hand-over of a TLS link to another process. */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct gw_conn;
struct gw_tls_ctx;

/*
 * [tls] mode: off = never TLS (still answers a TLS peer's hello with "plaintext"); on = TLS
 * when the peer offers or accepts it, plaintext otherwise (rolling enablement); required =
 * TLS or nothing: a plaintext peer is refused with an error that names it.
 */
enum gw_tls_mode { GW_TLS_OFF = 0, GW_TLS_ON = 1, GW_TLS_REQUIRED = 2 };

/* "off"/"on"/"required" -> mode; 0 or -EINVAL. */
int gw_tls_parse_mode(const char *s, enum gw_tls_mode *out);
const char *gw_tls_mode_name(enum gw_tls_mode m);

/*
 * Load the cluster CA, this host's certificate and its private key (PEM) for mode (on or
 * required; off needs no context: pass NULL wherever a context is taken). TLS 1.3 only,
 * peers verified both ways against ca, AES-GCM preferred, kTLS asked for
 * (SSL_OP_ENABLE_KTLS) where the kernel has it. 0 or -errno with the reason in err; on
 * success err holds a warning or "" (an expired own certificate loads: its peers refuse it).
 */
int gw_tls_ctx_new(enum gw_tls_mode mode, const char *ca, const char *cert, const char *key,
		   struct gw_tls_ctx **out, char *err, size_t errlen);
void gw_tls_ctx_free(struct gw_tls_ctx *t);
enum gw_tls_mode gw_tls_ctx_mode(const struct gw_tls_ctx *t); /* NULL = off */
/* The common name of this host's own certificate ("" without one). */
const char *gw_tls_ctx_name(const struct gw_tls_ctx *t);

/*
 * Client side, on a freshly connected TCP connection: negotiate with the server (an 8-byte
 * hello; none at all when t is NULL), then the TLS handshake, which checks that the server's
 * certificate comes from the cluster CA and names the IP address dialled (subjectAltName).
 * On success *c is replaced by the TLS connection (same contract as gw_transport.h), or left
 * as it is when both ends agreed on plaintext. On failure *c is closed and NULL. Bounded by
 * the connection's timeout. -EPROTONOSUPPORT: one side requires TLS and the other has it off;
 * -EKEYREJECTED: the server's certificate was refused; -ECONNRESET, -ETIMEDOUT, -ECANCELED.
 * The reason, naming the peer, is in gw_tls_last_error().
 */
int gw_tls_client(struct gw_tls_ctx *t, struct gw_conn **c);

/*
 * Server side, on an accepted TCP connection: read the client's first bytes; a TLS hello is
 * answered (TLS or plaintext, by mode) and a TLS handshake follows, where the client must
 * show a certificate from the cluster CA (its name: gw_tls_peer_name). A plaintext client is
 * let through unless t's mode is required. The bytes read ahead are given back: the caller
 * reads the stream from its start either way. Errors and *c as for gw_tls_client.
 */
int gw_tls_server(struct gw_tls_ctx *t, struct gw_conn **c);

/*
 * Hand a TLS link over (server side, before its socket goes to another process over
 * SCM_RIGHTS): ends this TLS session with close_notify; the client then runs a new handshake on
 * the same socket (transparently inside its next receive, or in gw_tls_await_handoff) with
 * whoever holds the socket, which calls gw_tls_server_resume. No-op on a plaintext connection.
 */
int gw_tls_handoff(struct gw_conn *c);

/*
 * In the process that received a handed-over socket (adopted with gw_tcp_conn_from_fd): when
 * peer is non-empty the link was TLS: run the server handshake again and insist that the
 * client's certificate names peer (the name the handing process saw). "" or NULL: the link
 * is plaintext, *c is left alone.
 */
int gw_tls_server_resume(struct gw_tls_ctx *t, const char *peer, struct gw_conn **c);

/* Client side: wait for the server's hand-over and redo the handshake (no-op on plaintext). */
int gw_tls_await_handoff(struct gw_conn *c);

bool gw_conn_is_tls(const struct gw_conn *c);
/* The peer certificate's common name ("" on plaintext). */
const char *gw_tls_peer_name(const struct gw_conn *c);
/* Whether kTLS carries this connection's sends / receives (false where the kernel lacks it). */
bool gw_tls_ktls(const struct gw_conn *c, bool send);

/* Why the last gw_tls_* call of this thread failed ("" when it did not). */
const char *gw_tls_last_error(void);

#endif
