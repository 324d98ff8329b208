/* test_sdnotify.c -- gw_sdnotify: datagrams to $NOTIFY_SOCKET (a path and an abstract name),
 * nothing without it, the watchdog period from $WATCHDOG_USEC / $WATCHDOG_PID. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "gw_sdnotify.h"

/* A datagram socket bound to name (a path, or "@abstract"); the fd. */
static int listener(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
			 0);
	return fd;
}

static void expect_msg(int fd, const char *want)
{
	char buf[600];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = 0;
	assert_string_equal(buf, want);
}

static void test_notify(void **state)
{
	char path[64], abs[64];
	snprintf(path, sizeof(path), "/tmp/gw-sdnotify-%d.sock", (int)getpid());
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(gw_sd_notify("READY=1"), -ENOENT);

	int fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(gw_sd_notify("READY=1\nSTATUS=%d VMs", 3), 0);
	expect_msg(fd, "READY=1\nSTATUS=3 VMs");
	close(fd);
	unlink(path);

	snprintf(abs, sizeof(abs), "@gw-sdnotify-%d", (int)getpid());
	fd = listener(abs);
	setenv("NOTIFY_SOCKET", abs, 1);
	assert_int_equal(gw_sd_notify("STOPPING=1"), 0);
	expect_msg(fd, "STOPPING=1");
	close(fd);

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(gw_sd_notify("READY=1"), -EINVAL);
	char big[700];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	setenv("NOTIFY_SOCKET", abs, 1);
	assert_int_equal(gw_sd_notify("STATUS=%s", big), -EMSGSIZE);
	unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog(void **state)
{
	char pid[32];
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(gw_sd_watchdog_ms(), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(gw_sd_watchdog_ms(), 30000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(gw_sd_watchdog_ms(), 30000);
	setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
	assert_int_equal(gw_sd_watchdog_ms(), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_notify),
	    cmocka_unit_test(test_watchdog),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
