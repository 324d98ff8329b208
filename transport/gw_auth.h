/* gw_auth.h -- mutual HMAC-SHA256 challenge-response on a migration link, from the cluster key. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct gw_conn;
struct gw_tls_ctx;
struct gw_transport_ops;
struct gw_transport_opts;

#define GW_AUTH_KEY_MIN 16u   /* shortest key file accepted, in bytes */
#define GW_AUTH_KEY_MAX 4096u /* longest */

enum gw_auth_role { GW_AUTH_CLIENT = 1, GW_AUTH_SERVER = 2 };

/*
 * Read the cluster key file: its bytes, less trailing CR/LF, are the key (so both
 * `openssl rand -hex 32 > key` and `head -c 32 /dev/urandom > key` work). Fewer than
 * GW_AUTH_KEY_MIN bytes: -EINVAL; larger than GW_AUTH_KEY_MAX: -EFBIG; not a regular
 * file: -EINVAL. A file that group or others can read is accepted with a warning
 * (operators keep it 0600). Logs why it failed. Free the key with gw_auth_key_free.
 */
int gw_auth_load_key(const char *path, uint8_t **key, size_t *keylen);
/* Wipe and free a key from gw_auth_load_key (NULL is fine). */
void gw_auth_key_free(uint8_t *key, size_t keylen);

/*
 * Authenticate both ends of a freshly connected stream; the two peers must use
 * opposite roles. Each side sends a hello (magic, version, role, 32-byte random
 * nonce), then HMAC-SHA256(key, "godwit-auth-v1" | role | own nonce | peer nonce),
 * checks the peer's proof in constant time, and tells the peer its verdict, so a bad
 * key fails on both sides. Bounded by the connection's timeout (never hangs).
 * Returns 0, or: -EACCES wrong key (either side found it), -EPROTO garbage or wrong
 * role/version from the peer, -ETIMEDOUT, -ECONNRESET / -EPIPE peer gone, -ECANCELED,
 * -EINVAL key too short. Logs a warning naming the peer on failure.
 */
int gw_auth_handshake(struct gw_conn *c, enum gw_auth_role role, const uint8_t *key, size_t keylen);
int gw_auth_client(struct gw_conn *c, const uint8_t *key, size_t keylen);
int gw_auth_server(struct gw_conn *c, const uint8_t *key, size_t keylen);

/*
 * A peer link in one call, client side: connect over ops, then (TCP only) the TLS negotiation
 * and handshake of gw_tls_client (tls NULL = [tls] mode off), then the HMAC handshake inside
 * it (defence in depth: a stolen host certificate alone, or the cluster key alone, is not
 * enough). On failure *out is NULL; gw_auth_strerror(r) says why.
 */
int gw_auth_connect(const struct gw_transport_ops *ops, const char *addr,
		    const struct gw_transport_opts *opts, struct gw_tls_ctx *tls,
		    const uint8_t *key, size_t keylen, struct gw_conn **out);
/* Server side on an accepted TCP connection: gw_tls_server, then the HMAC handshake. On
 * failure *c is closed and NULL. */
int gw_auth_accept(struct gw_tls_ctx *tls, const uint8_t *key, size_t keylen, struct gw_conn **c);
/* A failed gw_auth_connect/accept/handshake's r as text (the TLS reason where there is one). */
const char *gw_auth_strerror(int r);

#endif
