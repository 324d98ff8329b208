/* coord_fence.c -- fencing through fence-agents programs (stdin key=value, exit 0 = done), with
 * retries. */
#include "coord.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	       "fence"
#define BACKOFF_MIN_MS 1000ull
#define BACKOFF_MAX_MS 30000ull

const struct gw_coord_fence_dev *gw_coord_fence_dev(const struct gw_coord *c, const char *host)
{
	for (size_t i = 0; i < c->cfg.n_fence; i++)
		if (strcmp(c->cfg.fence[i].host, host) == 0)
			return &c->cfg.fence[i];
	return NULL;
}

static void send_fence(struct gw_coord *c, uint16_t type, const struct gw_coord_fence_run *f,
		       const char *detail)
{
	GwClFence m = GW_CL_FENCE__INIT;
	m.host = (char *)f->host;
	m.has_attempt = 1;
	m.attempt = f->attempt;
	m.detail = (char *)detail;
	m.time_ms = gw_now_wall_ms();
	gw_coord_mcast(c, type, &m);
}

/* A failed attempt: report it, wait (1 s doubling to 30 s), then try again. */
static void attempt_failed(struct gw_coord *c, struct gw_coord_fence_run *f, const char *why)
{
	unsigned long long backoff = BACKOFF_MIN_MS << (f->attempt > 5 ? 5 : f->attempt - 1);
	char detail[512];
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	snprintf(detail, sizeof(detail), "%s; next attempt in %llu ms", why, backoff);
	gw_warn(SUBSYS, "fencing %s: attempt %u failed: %s", f->host, f->attempt, detail);
	send_fence(c, GW_CL_MSG_TYPE__GW_CL_FENCE_FAILED, f, detail);
	f->phase = GW_FENCE_BACKOFF;
	f->deadline_ms = gw_now_mono_ms() + backoff;
}

/* Fork the device's program with action=off and its parameters on stdin. */
static void attempt_start(struct gw_coord *c, struct gw_coord_fence_run *f)
{
	const struct gw_coord_fence_dev *dev = gw_coord_fence_dev(c, f->host);
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	char detail[PATH_MAX + 64];

	f->attempt++;
	f->started_ms = gw_now_mono_ms();
	if (!f->first_ms)
		f->first_ms = f->started_ms;
	const struct gw_coord_host *h = gw_coord_host_by_name(&c->st, f->host);
	unsigned wd = h ? h->watchdog_s : 0;
	if (f->attempt == 1) {
		if (wd)
			snprintf(
			    detail, sizeof(detail),
			    "device %s; watchdog armed (%u s): counted off %u s after the loss",
			    dev ? dev->agent : "none", wd, 2 * wd);
		else
			snprintf(detail, sizeof(detail), "device %s",
				 dev ? dev->agent : "(none configured)");
		send_fence(c, GW_CL_MSG_TYPE__GW_CL_FENCE_START, f, detail);
	}
	if (!dev && wd) {
		gw_info(SUBSYS, "fencing %s: no fence device, waiting out its watchdog (%u s x 2)",
			f->host, wd);
		f->phase = GW_FENCE_WATCHDOG;
		return;
	}
	if (!dev) {
		attempt_failed(c, f, "no fence device configured ([fence.HOST] agent = ...)");
		return;
	}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(detail, sizeof(detail), "pipe: %s", strerror(errno));
		goto fail;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(detail, sizeof(detail), "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		setsid();
		execl(dev->agent, dev->agent, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	char params[GW_COORD_FENCE_PARAMS + 32];
	int n = snprintf(params, sizeof(params), "action=off\n%s", dev->params);
	if (write(in[1], params, (size_t)n) != n)
		gw_warn(SUBSYS, "fencing %s: short write of parameters to %s", f->host, dev->agent);
	close(in[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	f->pid = pid;
	f->out_fd = out[0];
	f->out_len = 0;
	f->out[0] = 0;
	f->phase = GW_FENCE_RUNNING;
	f->deadline_ms = f->started_ms + (unsigned long long)dev->timeout_s * 1000;
	gw_info(SUBSYS, "fencing %s: attempt %u, %s action=off (pid %d, timeout %u s)", f->host,
		f->attempt, dev->agent, pid, dev->timeout_s);
	return;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	attempt_failed(c, f, detail);
}

static void drain_output(struct gw_coord_fence_run *f)
{
	char tmp[256];
	ssize_t n;
	while ((n = read(f->out_fd, tmp, sizeof(tmp))) > 0) {
		for (ssize_t i = 0; i < n && f->out_len + 1 < sizeof(f->out); i++)
			f->out[f->out_len++] = tmp[i] == '\n' || tmp[i] == '\r' ? ' ' : tmp[i];
		f->out[f->out_len] = 0;
	}
}

static void child_done(struct gw_coord *c, struct gw_coord_fence_run *f, int status, bool timeout)
{
	const struct gw_coord_fence_dev *dev = gw_coord_fence_dev(c, f->host);
	unsigned long long now = gw_now_mono_ms();
	char detail[512];
	drain_output(f);
	close(f->out_fd);
	f->out_fd = -1;
	f->pid = 0;
	if (!timeout && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(detail, sizeof(detail),
			 "device %s, attempt %u, %llu ms (%llu ms since fencing began)%s%s",
			 dev ? dev->agent : "?", f->attempt, now - f->started_ms, now - f->first_ms,
			 f->out_len ? ": " : "", f->out);
		gw_info(SUBSYS, "fencing %s: confirmed off: %s", f->host, detail);
		send_fence(c, GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, f, detail);
		f->phase = GW_FENCE_DONE;
		return;
	}
	if (timeout)
		snprintf(detail, sizeof(detail), "timed out after %u s%s%s",
			 dev ? dev->timeout_s : 0, f->out_len ? ": " : "", f->out);
	else if (WIFEXITED(status))
		snprintf(detail, sizeof(detail), "exit status %d%s%s", WEXITSTATUS(status),
			 f->out_len ? ": " : "", f->out);
	else
		snprintf(detail, sizeof(detail), "killed by signal %d", WTERMSIG(status));
	attempt_failed(c, f, detail);
}

/* The host's watchdog has certainly reset it: 2 x its timeout since we saw it lost. */
static bool watchdog_expired(struct gw_coord *c, struct gw_coord_fence_run *f)
{
	const struct gw_coord_host *h = gw_coord_host_by_name(&c->st, f->host);
	unsigned long long now = gw_now_mono_ms(), wait;
	int status;
	if (!h || !h->watchdog_s || f->phase == GW_FENCE_DONE || f->phase == GW_FENCE_IDLE)
		return false;
	wait = 2000ull * h->watchdog_s;
	if (now < f->lost_seen_ms + wait)
		return false;
	if (f->phase == GW_FENCE_RUNNING && f->pid > 0) {
		kill(-f->pid, SIGKILL);
		kill(f->pid, SIGKILL);
		waitpid(f->pid, &status, 0);
		close(f->out_fd);
		f->out_fd = -1;
		f->pid = 0;
	}
	char detail[256];
	snprintf(detail, sizeof(detail),
		 "watchdog: %llu ms since the host was lost >= 2 x its %u s timeout (%u attempts "
		 "of a fence device)",
		 now - f->lost_seen_ms, h->watchdog_s,
		 gw_coord_fence_dev(c, f->host) ? f->attempt : 0);
	gw_info(SUBSYS, "fencing %s: confirmed off: %s", f->host, detail);
	send_fence(c, GW_CL_MSG_TYPE__GW_CL_FENCE_CONFIRMED, f, detail);
	f->phase = GW_FENCE_DONE;
	return true;
}

void gw_coord_fence_step(struct gw_coord *c, struct gw_coord_fence_run *f)
{
	unsigned long long now = gw_now_mono_ms();
	int status;
	if (!f->lost_seen_ms)
		f->lost_seen_ms = now;
	if (watchdog_expired(c, f))
		return;
	switch (f->phase) {
	case GW_FENCE_IDLE:
		f->attempt = 0;
		f->first_ms = 0;
		f->out_fd = -1;
		attempt_start(c, f);
		break;
	case GW_FENCE_RUNNING:
		drain_output(f);
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			child_done(c, f, status, false);
		} else if (now >= f->deadline_ms) {
			kill(-f->pid, SIGKILL);
			kill(f->pid, SIGKILL);
			waitpid(f->pid, &status, 0);
			child_done(c, f, status, true);
		}
		break;
	case GW_FENCE_BACKOFF:
		if (now >= f->deadline_ms)
			attempt_start(c, f);
		break;
	case GW_FENCE_WATCHDOG:
	case GW_FENCE_DONE:
		break;
	}
}

void gw_coord_fence_abort(struct gw_coord_fence_run *f)
{
	int status;
	if (f->phase == GW_FENCE_RUNNING && f->pid > 0) {
		gw_warn(SUBSYS, "fencing %s: no longer the acting member, stopping attempt %u",
			f->host, f->attempt);
		kill(-f->pid, SIGKILL);
		kill(f->pid, SIGKILL);
		waitpid(f->pid, &status, 0);
	}
	if (f->out_fd >= 0 && f->phase == GW_FENCE_RUNNING)
		close(f->out_fd);
	memset(f, 0, sizeof(*f));
	f->out_fd = -1;
}
