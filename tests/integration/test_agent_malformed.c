/* test_agent_malformed.c -- a real godwit-agent fed malformed, oversized, truncated and random
 * frames on its control socket stays up and answers the next valid request. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.pb-c.h"
#include "gw_frame.h"
#include "gw_fsutil.h"

struct fixture {
	char dir[64];
	char sock[128];
	pid_t agent;
};

static int connect_agent(struct fixture *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/gw-it-malformed-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sock, sizeof(f->sock), "%s/agent.sock", f->dir);
	char statedir[128], logpath[128];
	snprintf(statedir, sizeof(statedir), "%s/state", f->dir);
	snprintf(logpath, sizeof(logpath), "%s/agent.log", f->dir);
	f->agent = fork();
	if (f->agent == 0) {
		FILE *lf = freopen(logpath, "a", stderr);
		(void)lf;
		execl(GW_AGENT_BIN, GW_AGENT_BIN, "--state-dir", statedir, "--socket", f->sock,
		      "--node", "fuzz", "--listen", "127.0.0.1:1", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		int fd = connect_agent(f);
		if (fd >= 0) {
			close(fd);
			*state = f;
			return 0;
		}
		usleep(20000);
	}
	return -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kill(f->agent, SIGKILL);
	waitpid(f->agent, NULL, 0);
	gw_rm_rf(f->dir);
	free(f);
	return 0;
}

static void assert_agent_alive(struct fixture *f)
{
	assert_int_equal(waitpid(f->agent, NULL, WNOHANG), 0);
}

/* A valid AGENT_INFO round trip on a fresh connection. */
static void assert_agent_answers(struct fixture *f)
{
	int fd = connect_agent(f);
	assert_true(fd >= 0);
	GwAgentInfoReq req = GW_AGENT_INFO_REQ__INIT;
	assert_int_equal(gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_AGENT_INFO, &req.base), 0);
	uint16_t type;
	uint8_t *p;
	uint32_t len;
	assert_int_equal(gw_frame_recv(fd, GW_FRAME_MAX_PAYLOAD, 5000, &type, &p, &len), 0);
	assert_int_equal(type, GW_MSG_TYPE__GW_MSG_AGENT_INFO_REPLY);
	GwAgentInfo *info = gw_agent_info__unpack(NULL, len, p);
	assert_non_null(info);
	assert_string_equal(info->node, "fuzz");
	gw_agent_info__free_unpacked(info, NULL);
	free(p);
	close(fd);
}

static uint16_t send_raw_get_reply(struct fixture *f, const void *buf, size_t len)
{
	int fd = connect_agent(f);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	uint16_t type = 0;
	uint8_t *p = NULL;
	uint32_t plen;
	int r = gw_frame_recv(fd, GW_FRAME_MAX_PAYLOAD, 5000, &type, &p, &plen);
	free(p);
	close(fd);
	return r == 0 ? type : 0;
}

/* Oversized length: error reply, connection closed, agent fine. */
static void test_oversized(void **state)
{
	struct fixture *f = *state;
	uint8_t hdr[GW_FRAME_HDR_LEN];
	gw_frame_hdr_encode(hdr, GW_MSG_TYPE__GW_MSG_VM_LIST, 0xfffffff0u);
	assert_int_equal(send_raw_get_reply(f, hdr, sizeof(hdr)), GW_MSG_TYPE__GW_MSG_ERROR);
	assert_agent_alive(f);
	assert_agent_answers(f);
}

/* Unknown type and undecodable payload: error replies on the same connection. */
static void test_bad_type_and_payload(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[64];
	gw_frame_hdr_encode(buf, 4242, 3);
	memcpy(buf + GW_FRAME_HDR_LEN, "abc", 3);
	assert_int_equal(send_raw_get_reply(f, buf, GW_FRAME_HDR_LEN + 3),
			 GW_MSG_TYPE__GW_MSG_ERROR);
	gw_frame_hdr_encode(buf, GW_MSG_TYPE__GW_MSG_VM_CREATE, 5);
	memcpy(buf + GW_FRAME_HDR_LEN, "\x0a\xff\xff\xff\x0f", 5);
	assert_int_equal(send_raw_get_reply(f, buf, GW_FRAME_HDR_LEN + 5),
			 GW_MSG_TYPE__GW_MSG_ERROR);
	assert_agent_answers(f);
}

/* A truncated frame then a vanished client: nothing breaks. */
static void test_truncated_then_close(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 20; i++) {
		int fd = connect_agent(f);
		assert_true(fd >= 0);
		uint8_t hdr[GW_FRAME_HDR_LEN];
		gw_frame_hdr_encode(hdr, GW_MSG_TYPE__GW_MSG_VM_SHOW, 100);
		assert_int_equal(write(fd, hdr, (size_t)(i % 7)), i % 7);
		close(fd);
	}
	assert_agent_alive(f);
	assert_agent_answers(f);
}

/* Random frames of every request type (fixed seed, bounded count). */
static void test_random_frames(void **state)
{
	struct fixture *f = *state;
	srand(1234);
	uint8_t buf[512];
	for (int i = 0; i < 1500; i++) {
		uint16_t type = (uint16_t)(rand() % 3 == 0 ? rand() % 70 : 10 + rand() % 10);
		uint32_t len = (uint32_t)(rand() % 200);
		gw_frame_hdr_encode(buf, type, len);
		for (uint32_t j = 0; j < len; j++)
			buf[GW_FRAME_HDR_LEN + j] = (uint8_t)rand();
		/* every reply must be a well-formed frame: an error or a real answer */
		uint16_t rt = send_raw_get_reply(f, buf, GW_FRAME_HDR_LEN + len);
		assert_true(rt != 0);
	}
	assert_agent_alive(f);
	assert_agent_answers(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_type_and_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_then_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_frames, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
