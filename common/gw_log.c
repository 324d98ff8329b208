/* gw_log.c -- one line per event: time, level, ident, subsystem, message. */
#include "gw_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum gw_log_level min_level = GW_LOG_INFO;
static char ident[64] = "godwit";
static int env_checked;

void gw_log_set_level(enum gw_log_level level) { min_level = level; }

void gw_log_set_ident(const char *s)
{
	snprintf(ident, sizeof(ident), "%s", s);
}

int gw_log_level_parse(const char *s, enum gw_log_level *out)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum gw_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void gw_log_write(enum gw_log_level level, const char *subsys, const char *fmt, ...)
{
	static const char *tags[] = {"debug", "info", "warn", "error"};
	char msg[1024], line[1280];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int saved = errno;

	if (!env_checked) {
		const char *e = getenv("GODWIT_LOG_LEVEL");
		enum gw_log_level l;
		env_checked = 1;
		if (e && gw_log_level_parse(e, &l) == 0)
			min_level = l;
	}
	if (level < min_level) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one event, one line: newlines inside a message would split it */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%d] %s: %s\n",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, tags[level], ident, (int)getpid(),
			 subsys, msg);
	if (n > (int)sizeof(line))
		n = sizeof(line);
	/* a single write keeps lines from concurrent threads whole */
	ssize_t r = write(STDERR_FILENO, line, (size_t)n);
	(void)r;
	errno = saved;
}
