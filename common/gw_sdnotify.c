/* gw_sdnotify.c -- sd_notify(3) by hand: one datagram to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name starting with '@'). */
#include "gw_sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gw_fsutil.h"

int gw_sd_notify(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char msg[512];
	va_list ap;

	if (!path || !path[0])
		return -ENOENT;
	size_t plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = 0; /* abstract namespace */
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -EMSGSIZE;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t w = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen));
	int r = w == n ? 0 : -errno;
	close(fd);
	return r;
}

unsigned long long gw_sd_watchdog_ms(void)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	if (!us || (pid && strtol(pid, NULL, 10) != (long)getpid()))
		return 0;
	return strtoull(us, NULL, 10) / 1000;
}

void gw_sd_watchdog_tick(void)
{
	static unsigned long long period = ~0ull, next;
	if (period == ~0ull)
		period = gw_sd_watchdog_ms() / 2;
	if (!period)
		return;
	unsigned long long now = gw_now_mono_ms();
	if (now < next)
		return;
	next = now + period;
	gw_sd_notify("WATCHDOG=1");
}
