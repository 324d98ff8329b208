/* gw_auth.c -- cluster-key loading and the mutual HMAC-SHA256 handshake on migration links. */
#include "gw_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "gw_log.h"
#include "gw_tls.h"
#include "gw_transport.h"

#define AUTH_MAGIC	"GWAU"
#define AUTH_VERSION	1u
#define AUTH_LABEL	"godwit-auth-v1"
#define AUTH_NONCE_LEN	32u
#define AUTH_MAC_LEN	32u
#define AUTH_VERDICT_OK 0x4f /* 'O' */
#define AUTH_VERDICT_NO 0x4e /* 'N' */

/* The hello each side sends first: 40 bytes. */
struct auth_hello {
	char magic[4];
	uint8_t version;
	uint8_t role;
	uint8_t reserved[2];
	uint8_t nonce[AUTH_NONCE_LEN];
} __attribute__((packed));

int gw_auth_load_key(const char *path, uint8_t **key, size_t *keylen)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd, r;

	*key = NULL;
	*keylen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		gw_err("auth", "cannot open cluster key file %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		gw_err("auth", "cluster key file %s is not a regular file", path);
		r = -EINVAL;
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		gw_warn("auth",
			"cluster key file %s is accessible by group/others (mode %04o); "
			"use chmod 0600",
			path, (unsigned)(st.st_mode & 07777));
	if (st.st_size > (off_t)GW_AUTH_KEY_MAX + 2) {
		gw_err("auth", "cluster key file %s is %lld bytes, at most %u allowed", path,
		       (long long)st.st_size, GW_AUTH_KEY_MAX);
		r = -EFBIG;
		goto out;
	}
	buf = malloc(GW_AUTH_KEY_MAX + 3);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (len < GW_AUTH_KEY_MAX + 3) {
		ssize_t n = read(fd, buf + len, GW_AUTH_KEY_MAX + 3 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			gw_err("auth", "reading cluster key file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len > GW_AUTH_KEY_MAX) {
		gw_err("auth", "cluster key file %s is too long (at most %u bytes)", path,
		       GW_AUTH_KEY_MAX);
		r = -EFBIG;
		goto out;
	}
	if (len < GW_AUTH_KEY_MIN) {
		gw_err("auth", "cluster key file %s holds %zu bytes, need at least %u", path, len,
		       GW_AUTH_KEY_MIN);
		r = -EINVAL;
		goto out;
	}
	*key = buf;
	*keylen = len;
	buf = NULL;
	r = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, GW_AUTH_KEY_MAX + 3);
		free(buf);
	}
	close(fd);
	return r;
}

void gw_auth_key_free(uint8_t *key, size_t keylen)
{
	if (!key)
		return;
	OPENSSL_cleanse(key, keylen);
	free(key);
}

/* HMAC-SHA256(key, label | role | nonce_a | nonce_b): what `role` proves with these nonces. */
static int auth_mac(const uint8_t *key, size_t keylen, uint8_t role, const uint8_t *nonce_a,
		    const uint8_t *nonce_b, uint8_t mac[AUTH_MAC_LEN])
{
	uint8_t msg[sizeof(AUTH_LABEL) - 1 + 1 + 2 * AUTH_NONCE_LEN];
	unsigned int maclen = 0;
	size_t off = 0;

	memcpy(msg, AUTH_LABEL, sizeof(AUTH_LABEL) - 1);
	off += sizeof(AUTH_LABEL) - 1;
	msg[off++] = role;
	memcpy(msg + off, nonce_a, AUTH_NONCE_LEN);
	off += AUTH_NONCE_LEN;
	memcpy(msg + off, nonce_b, AUTH_NONCE_LEN);
	off += AUTH_NONCE_LEN;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, off, mac, &maclen) || maclen != AUTH_MAC_LEN)
		return -EIO;
	return 0;
}

int gw_auth_handshake(struct gw_conn *c, enum gw_auth_role role, const uint8_t *key, size_t keylen)
{
	struct auth_hello mine, peer;
	uint8_t proof[AUTH_MAC_LEN], peer_proof[AUTH_MAC_LEN], want[AUTH_MAC_LEN];
	uint8_t verdict, peer_verdict;
	const char *why;
	int r;

	if (!key || keylen < GW_AUTH_KEY_MIN || keylen > GW_AUTH_KEY_MAX ||
	    (role != GW_AUTH_CLIENT && role != GW_AUTH_SERVER))
		return -EINVAL;
	memset(&mine, 0, sizeof(mine));
	memcpy(mine.magic, AUTH_MAGIC, 4);
	mine.version = AUTH_VERSION;
	mine.role = (uint8_t)role;
	if (RAND_bytes(mine.nonce, AUTH_NONCE_LEN) != 1) {
		why = "no random bytes";
		r = -EIO;
		goto fail;
	}

	/* Both sides send first, then read: every message is far smaller than a socket buffer. */
	why = "exchanging hellos";
	r = gw_conn_send(c, &mine, sizeof(mine));
	if (r < 0)
		goto fail;
	r = gw_conn_recv(c, &peer, sizeof(peer));
	if (r < 0)
		goto fail;
	if (memcmp(peer.magic, "GWTL", 4) == 0) {
		why = "peer requires TLS ([tls] mode = required there) and this side has TLS off";
		r = -EPROTONOSUPPORT;
		goto fail;
	}
	if (memcmp(peer.magic, AUTH_MAGIC, 4) != 0) {
		why = "peer did not speak the godwit auth protocol";
		r = -EPROTO;
		goto fail;
	}
	if (peer.version != AUTH_VERSION) {
		why = "peer speaks another auth version";
		r = -EPROTO;
		goto fail;
	}
	if (peer.role == mine.role ||
	    (peer.role != GW_AUTH_CLIENT && peer.role != GW_AUTH_SERVER)) {
		why = "peer claims a wrong role";
		r = -EPROTO;
		goto fail;
	}
	if (CRYPTO_memcmp(peer.nonce, mine.nonce, AUTH_NONCE_LEN) == 0) {
		why = "peer echoed our nonce";
		r = -EPROTO;
		goto fail;
	}

	why = "computing HMAC";
	r = auth_mac(key, keylen, mine.role, mine.nonce, peer.nonce, proof);
	if (r < 0)
		goto fail;
	r = auth_mac(key, keylen, peer.role, peer.nonce, mine.nonce, want);
	if (r < 0)
		goto fail;
	why = "exchanging proofs";
	r = gw_conn_send(c, proof, sizeof(proof));
	if (r < 0)
		goto fail;
	r = gw_conn_recv(c, peer_proof, sizeof(peer_proof));
	if (r < 0)
		goto fail;

	/* Tell the peer what we found before acting on it, so both ends fail together. */
	verdict =
	    CRYPTO_memcmp(peer_proof, want, AUTH_MAC_LEN) == 0 ? AUTH_VERDICT_OK : AUTH_VERDICT_NO;
	why = "exchanging verdicts";
	r = gw_conn_send(c, &verdict, 1);
	if (r < 0)
		goto fail;
	r = gw_conn_recv(c, &peer_verdict, 1);
	if (r < 0)
		goto fail;
	if (verdict != AUTH_VERDICT_OK) {
		why = "peer's proof is wrong (different cluster key?)";
		r = -EACCES;
		goto fail;
	}
	if (peer_verdict != AUTH_VERDICT_OK) {
		why = peer_verdict == AUTH_VERDICT_NO
			  ? "peer rejected our proof (different cluster key?)"
			  : "peer sent a garbled verdict";
		r = peer_verdict == AUTH_VERDICT_NO ? -EACCES : -EPROTO;
		goto fail;
	}
	r = 0;
	goto out;

fail:
	gw_warn("auth", "authentication with %s failed: %s: %s", gw_conn_peer_name(c), why,
		strerror(-r));
out:
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(want, sizeof(want));
	return r;
}

int gw_auth_client(struct gw_conn *c, const uint8_t *key, size_t keylen)
{
	return gw_auth_handshake(c, GW_AUTH_CLIENT, key, keylen);
}

int gw_auth_server(struct gw_conn *c, const uint8_t *key, size_t keylen)
{
	return gw_auth_handshake(c, GW_AUTH_SERVER, key, keylen);
}

int gw_auth_connect(const struct gw_transport_ops *ops, const char *addr,
		    const struct gw_transport_opts *opts, struct gw_tls_ctx *tls,
		    const uint8_t *key, size_t keylen, struct gw_conn **out)
{
	int r = ops->connect(addr, opts, out);
	if (r)
		return r;
	if (ops == &gw_transport_tcp)
		r = gw_tls_client(tls, out); /* closes *out on failure */
	if (!r)
		r = gw_auth_client(*out, key, keylen);
	if (r) {
		gw_conn_close(*out);
		*out = NULL;
	}
	return r;
}

int gw_auth_accept(struct gw_tls_ctx *tls, const uint8_t *key, size_t keylen, struct gw_conn **c)
{
	int r = gw_tls_server(tls, c); /* closes *c on failure */
	if (!r)
		r = gw_auth_server(*c, key, keylen);
	if (r) {
		gw_conn_close(*c);
		*c = NULL;
	}
	return r;
}

const char *gw_auth_strerror(int r)
{
	if (r == -EACCES)
		return "authentication failed (cluster key differs?)";
	if (*gw_tls_last_error() && (r == -EKEYREJECTED || r == -EPROTONOSUPPORT || r == -EPROTO ||
				     r == -ETIMEDOUT || r == -ECONNRESET || r == -EPIPE))
		return gw_tls_last_error();
	if (r == -EPROTONOSUPPORT)
		return "peer requires TLS ([tls] mode = required there) and this side has TLS off";
	return strerror(-r);
}
