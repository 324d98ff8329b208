/* host_info.c -- facts about this host that the agent and its drivers read from /proc:
 * memory figures and process start times (which guard against pid reuse). */
#include "host_info.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_fsutil.h"

int gw_host_meminfo(unsigned long long *total_mib, unsigned long long *avail_mib)
{
	char *text;
	size_t len;
	int r = gw_file_read("/proc/meminfo", 1 << 16, &text, &len);
	if (r)
		return r;
	unsigned long long total = 0, avail = 0;
	char *p = strstr(text, "MemTotal:");
	if (p)
		total = strtoull(p + 9, NULL, 10);
	p = strstr(text, "MemAvailable:");
	if (p)
		avail = strtoull(p + 13, NULL, 10);
	free(text);
	if (!total)
		return -EIO;
	*total_mib = total / 1024;
	*avail_mib = avail / 1024;
	return 0;
}

/* The fields of /proc/PID/stat after the command name (field 3 onwards; comm may hold
 * spaces and parentheses, so they start after the last ')'), in buf; NULL when gone. */
static char *proc_stat_fields(int pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p ? p + 1 : NULL;
}

unsigned long long gw_proc_start_ticks(int pid)
{
	char buf[1024], *save = NULL;
	char *p = pid > 0 ? proc_stat_fields(pid, buf, sizeof(buf)) : NULL;
	int field = 2;
	for (char *tok = p ? strtok_r(p, " ", &save) : NULL; tok;
	     tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 3 && tok[0] == 'Z')
			return 0; /* zombie: as good as gone */
		if (field == 22)
			return strtoull(tok, NULL, 10);
	}
	return 0;
}

/* utime + stime (fields 14, 15) of /proc/PID/stat, in clock ticks; 0 when gone. */
static unsigned long long proc_cpu_ticks(int pid)
{
	char buf[1024], *save = NULL;
	char *p = proc_stat_fields(pid, buf, sizeof(buf));
	int field = 2;
	unsigned long long sum = 0;
	for (char *tok = p ? strtok_r(p, " ", &save) : NULL; tok && field < 15;
	     tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 14 || field == 15)
			sum += strtoull(tok, NULL, 10);
	}
	return sum;
}

/* The direct children of one task of a process (/proc/PID/task/TID/children: the children
 * that thread forked or cloned), their CPU ticks added to *ticks. */
static void task_children_ticks(int pid, const char *tid, unsigned long long *ticks)
{
	char path[96], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task/%s/children", pid, tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		*ticks += proc_cpu_ticks(atoi(tok));
}

unsigned long long gw_proc_cpu_ns(int pid)
{
	if (pid <= 0)
		return 0;
	long hz = sysconf(_SC_CLK_TCK);
	unsigned long long ticks = proc_cpu_ticks(pid);
	/* Direct children (the process backend's sandbox runs the guest code), of every thread:
	 * /proc/PID/task/TID/children lists only the children TID itself created, and the
	 * VMM clones its sandbox from a thread of its own, not from the main thread. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
				task_children_ticks(pid, e->d_name, &ticks);
		closedir(d);
	}
	return hz > 0 ? ticks * (1000000000ull / (unsigned long long)hz) : 0;
}
