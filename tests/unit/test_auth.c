/* test_auth.c -- cluster key files and the mutual HMAC handshake over loopback, failures first. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_auth.h"
#include "gw_fsutil.h"
#include "gw_transport.h"

static const uint8_t KEY_A[] = "0123456789abcdef0123456789abcdef";
static const uint8_t KEY_B[] = "0123456789abcdef0123456789abcdeX";

/* A connected loopback pair (timeouts short so a bug fails fast) and a scratch dir. */
struct fx {
	struct gw_conn *lst, *cli, *srv;
	char dir[64];
};

static int fx_setup(void **state)
{
	const struct gw_transport_ops *tcp = gw_transport_get("tcp");
	struct gw_transport_opts o = {.timeout_ms = 2000};
	struct fx *f = calloc(1, sizeof(*f));
	char addr[64];
	assert_non_null(f);
	assert_int_equal(tcp->listen("127.0.0.1:0", &o, &f->lst), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", gw_conn_local_port(f->lst));
	assert_int_equal(tcp->connect(addr, &o, &f->cli), 0);
	assert_int_equal(gw_conn_accept(f->lst, &f->srv), 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/gw_auth_test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	gw_conn_close(f->cli);
	gw_conn_close(f->srv);
	gw_conn_close(f->lst);
	gw_rm_rf(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	assert_int_equal(gw_file_write_atomic(path, data, len, mode), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* The server side of a handshake, run in a thread. */
struct side {
	struct gw_conn *c;
	const uint8_t *key;
	size_t keylen;
	int ret;
};

static void *server_main(void *arg)
{
	struct side *s = arg;
	s->ret = gw_auth_server(s->c, s->key, s->keylen);
	return NULL;
}

static void run_both(struct fx *f, const uint8_t *ckey, const uint8_t *skey, int *cret, int *sret)
{
	struct side s = {.c = f->srv, .key = skey, .keylen = 32};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, server_main, &s), 0);
	*cret = gw_auth_client(f->cli, ckey, 32);
	pthread_join(th, NULL);
	*sret = s.ret;
}

/* Key files: missing, too short, empty, a directory, too long are refused with -errno. */
static void test_key_file_refused(void **state)
{
	struct fx *f = *state;
	char path[128];
	uint8_t *key = (uint8_t *)0x1;
	size_t len = 99;
	static uint8_t big[GW_AUTH_KEY_MAX + 10];

	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_equal(gw_auth_load_key(path, &key, &len), -ENOENT);
	assert_null(key);
	assert_int_equal(len, 0);
	snprintf(path, sizeof(path), "%s/short", f->dir);
	write_file(path, "only15bytes....", 15, 0600);
	assert_int_equal(gw_auth_load_key(path, &key, &len), -EINVAL);
	/* 15 bytes plus a newline is still 15 bytes of key */
	write_file(path, "only15bytes....\n", 16, 0600);
	assert_int_equal(gw_auth_load_key(path, &key, &len), -EINVAL);
	write_file(path, "", 0, 0600);
	assert_int_equal(gw_auth_load_key(path, &key, &len), -EINVAL);
	assert_int_equal(gw_auth_load_key(f->dir, &key, &len), -EINVAL);
	memset(big, 'k', sizeof(big));
	snprintf(path, sizeof(path), "%s/big", f->dir);
	write_file(path, big, sizeof(big), 0600);
	assert_int_equal(gw_auth_load_key(path, &key, &len), -EFBIG);
	assert_null(key);
	/* a short key handed straight to the handshake is refused too */
	assert_int_equal(gw_auth_client(f->cli, KEY_A, GW_AUTH_KEY_MIN - 1), -EINVAL);
	assert_int_equal(gw_auth_handshake(f->cli, 3, KEY_A, 32), -EINVAL);
}

/* A good key file loads without its trailing newline; group-readable only warns. */
static void test_key_file_loads(void **state)
{
	struct fx *f = *state;
	char path[128];
	uint8_t *key;
	size_t len;

	snprintf(path, sizeof(path), "%s/key", f->dir);
	write_file(path, "0123456789abcdef0123456789abcdef\r\n", 34, 0600);
	assert_int_equal(gw_auth_load_key(path, &key, &len), 0);
	assert_int_equal(len, 32);
	assert_memory_equal(key, KEY_A, 32);
	gw_auth_key_free(key, len);
	write_file(path, "exactly16bytes!!", 16, 0644);
	assert_int_equal(gw_auth_load_key(path, &key, &len), 0);
	assert_int_equal(len, 16);
	gw_auth_key_free(key, len);
	gw_auth_key_free(NULL, 0);
}

/* Different keys: both sides fail with -EACCES, promptly. */
static void test_wrong_key_fails_both(void **state)
{
	struct fx *f = *state;
	int c, s;
	unsigned long long t0 = gw_now_mono_ms();
	run_both(f, KEY_A, KEY_B, &c, &s);
	assert_int_equal(c, -EACCES);
	assert_int_equal(s, -EACCES);
	assert_true(gw_now_mono_ms() - t0 < 1000);
}

/* The same key on both sides authenticates both, and the stream stays usable. */
static void test_same_key_succeeds(void **state)
{
	struct fx *f = *state;
	uint8_t buf[5];
	int c, s;
	run_both(f, KEY_A, KEY_A, &c, &s);
	assert_int_equal(c, 0);
	assert_int_equal(s, 0);
	assert_int_equal(gw_conn_send(f->cli, "after", 5), 0);
	assert_int_equal(gw_conn_recv(f->srv, buf, 5), 0);
	assert_memory_equal(buf, "after", 5);
}

/* Two clients (same role) refuse each other. */
static void *client_main(void *arg)
{
	struct side *s = arg;
	s->ret = gw_auth_client(s->c, s->key, s->keylen);
	return NULL;
}

static void test_same_role_refused(void **state)
{
	struct fx *f = *state;
	struct side s = {.c = f->srv, .key = KEY_A, .keylen = 32};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, client_main, &s), 0);
	int c = gw_auth_client(f->cli, KEY_A, 32);
	pthread_join(th, NULL);
	assert_int_equal(c, -EPROTO);
	assert_int_equal(s.ret, -EPROTO);
}

/* A peer that sends garbage instead of a hello is refused with -EPROTO. */
static void test_garbage_peer(void **state)
{
	struct fx *f = *state;
	uint8_t junk[40];
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(gw_conn_send(f->cli, junk, sizeof(junk)), 0);
	assert_int_equal(gw_auth_server(f->srv, KEY_A, 32), -EPROTO);
}

/* A peer that sends a valid hello, then garbage as its proof, is refused with -EACCES. */
static void test_garbage_proof(void **state)
{
	struct fx *f = *state;
	uint8_t hello[40] = {'G', 'W', 'A', 'U', 1, GW_AUTH_CLIENT, 0, 0, 1, 2, 3};
	uint8_t junk[33];
	memset(junk, 0x4f, sizeof(junk)); /* even claims 'O'k as its verdict */
	assert_int_equal(gw_conn_send(f->cli, hello, sizeof(hello)), 0);
	assert_int_equal(gw_conn_send(f->cli, junk, sizeof(junk)), 0);
	assert_int_equal(gw_auth_server(f->srv, KEY_A, 32), -EACCES);
}

/* A peer that closes mid-handshake makes the other side fail, not hang. */
static void test_peer_closes_mid_handshake(void **state)
{
	struct fx *f = *state;
	uint8_t hello[40] = {'G', 'W', 'A', 'U', 1, GW_AUTH_CLIENT, 0, 0, 9, 9, 9};
	assert_int_equal(gw_conn_send(f->cli, hello, sizeof(hello)), 0);
	gw_conn_close(f->cli);
	f->cli = NULL;
	int r = gw_auth_server(f->srv, KEY_A, 32);
	assert_true(r == -ECONNRESET || r == -EPIPE);
}

/* A silent peer: the handshake gives up after the connection's timeout. */
static void test_silent_peer_times_out(void **state)
{
	struct fx *f = *state;
	unsigned long long t0 = gw_now_mono_ms();
	gw_conn_set_timeout(f->srv, 300);
	assert_int_equal(gw_auth_server(f->srv, KEY_A, 32), -ETIMEDOUT);
	assert_true(gw_now_mono_ms() - t0 < 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_key_file_refused, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_key_fails_both, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_same_role_refused, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_peer, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_proof, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_closes_mid_handshake, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_silent_peer_times_out, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_key_file_loads, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_same_key_succeeds, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
