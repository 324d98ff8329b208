/* gw_test_skip.h -- tests that cannot run on this machine say why and exit 77 (ctest's
 * SKIP_RETURN_CODE), recording "<test>: <reason>" in GW_SKIP_FILE for deploy/test.sh's summary.
 * Header-only, for the unit test drivers that can skip. */
#ifndef GW_TEST_SKIP_H
#define GW_TEST_SKIP_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GW_TEST_SKIP 77

#ifndef GW_SKIP_FILE
#error "GW_SKIP_FILE must be defined (tests/CMakeLists.txt)"
#endif

/* Print "SKIPPED: <reason>", append "<test>: <reason>" to GW_SKIP_FILE; returns 77 for main. */
__attribute__((format(printf, 2, 3))) static inline int gw_test_skip(const char *test,
								     const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	printf("SKIPPED: %s\n", reason);
	fflush(stdout);
	f = fopen(GW_SKIP_FILE, "a");
	if (f) {
		fprintf(f, "%s: %s\n", test, reason);
		fclose(f);
	}
	return GW_TEST_SKIP;
}

/* Called first in main() by tests that need the real /dev/kvm (the kvm backend's own tests):
 * 0 when /dev/kvm opens read-write and GODWIT_NO_KVM is unset, else gw_test_skip()'s 77. */
static inline int gw_test_require_kvm(const char *test)
{
	const char *no_kvm = getenv("GODWIT_NO_KVM");
	int fd;

	if (no_kvm && no_kvm[0])
		return gw_test_skip(test,
				    "KVM disabled by GODWIT_NO_KVM (this test needs /dev/kvm)");
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return gw_test_skip(test,
				    "cannot open /dev/kvm read-write: %s (this test needs KVM)",
				    strerror(errno));
	close(fd);
	return 0;
}

#endif /* GW_TEST_SKIP_H */
