/* test_sock.c -- root-only control sockets: mode, refusing a live socket, replacing a stale one. */
#include <errno.h>
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

#include "gw_fsutil.h"
#include "gw_sock.h"

/* Paths too long for sun_path are refused before anything is created. */
static void test_path_too_long(void **state)
{
	char path[200];
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = 0;
	assert_int_equal(gw_unix_listen_private(path), -ENAMETOOLONG);
}

/* Mode 0600 in a created directory; a live socket is not stolen; a stale one is replaced. */
static void test_listen(void **state)
{
	char dir[64], path[128];
	struct stat st;
	snprintf(dir, sizeof(dir), "/tmp/gw-test-sock-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/run/x.sock", dir);
	int fd = gw_unix_listen_private(path);
	assert_true(fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(gw_unix_listen_private(path), -EADDRINUSE);
	close(fd); /* the file stays behind, nobody answers: stale */
	fd = gw_unix_listen_private(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(gw_rm_rf(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
