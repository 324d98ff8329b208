/* coord_selffence.c -- self-fencing: a host without quorum stops its HA VMs and stops feeding its
 * watchdog, so the quorate side may count it as off once the watchdog deadline has passed. */
#include "coord.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "selffence"
/* A coordinator that never reached quorum since it started stops its HA VMs after this long
 * (a restart during a partition; shorter than any sane watchdog timeout). */
#define NOQUORUM_GRACE_MS 5000
#define FEED_MIN_MS	  200
#define DISARM_WAIT_MS	  2000
#define STOP_RETRY_MS	  1000 /* a failed stop is retried (and logged) once a second */

/*
 * The rules (docs/design.md, "Safety rules"):
 *  - the watchdog is armed (opened) when this member first holds quorum, and fed only
 *    while it does; the member's HELLO then tells the cluster its timeout;
 *  - on losing quorum (or never reaching it NOQUORUM_GRACE_MS after start) every HA VM the
 *    cluster state places here is stopped through the agent, and feeding stops: if the
 *    stop hangs or the coordinator dies, the watchdog resets the host by its deadline;
 *  - the quorate side counts a lost host with an armed watchdog as fenced 2 x timeout after
 *    it saw it lost (coord_fence.c), the margin covering the time the lost host needs to
 *    notice its own quorum loss;
 *  - back in a quorate partition, the HA VMs it stopped that the cluster still places here
 *    are reported failed, so the acting member restarts them (possibly here);
 *  - a clean shutdown announces "no watchdog" first and disarms (magic close) only once
 *    that announcement is applied; otherwise the watchdog stays armed.
 */

static bool in_quorum(const struct gw_coord *c)
{
	return c->cpg_ok && c->vq_ok && c->quorate;
}

static void wd_open(struct gw_coord *c)
{
	int fd = open(c->cfg.watchdog, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		unsigned long long now = gw_now_mono_ms();
		if (now - c->wd_warned_ms >= 10000) {
			gw_err(SUBSYS, "watchdog %s: %s (HA VMs here are not protected by it)",
			       c->cfg.watchdog, strerror(errno));
			c->wd_warned_ms = now;
		}
		return;
	}
	int t = (int)c->cfg.watchdog_timeout_s;
	if (ioctl(fd, WDIOC_SETTIMEOUT, &t) == 0) {
		c->wd_timeout_s = (unsigned)t; /* the device may round it */
	} else if (errno == ENOTTY || errno == EINVAL) {
		c->wd_timeout_s = c->cfg.watchdog_timeout_s;
		gw_warn(SUBSYS, "watchdog %s: cannot set its timeout (%s); assuming %u s",
			c->cfg.watchdog, strerror(errno), c->wd_timeout_s);
	} else {
		gw_err(SUBSYS, "watchdog %s: set timeout %d s: %s", c->cfg.watchdog, t,
		       strerror(errno));
		close(fd);
		return;
	}
	c->wd_fd = fd;
	c->wd_last_feed_ms = 0;
	gw_info(SUBSYS, "watchdog %s armed, timeout %u s, fed while this host holds quorum",
		c->cfg.watchdog, c->wd_timeout_s);
	gw_coord_hello(c); /* the cluster learns it may self-fence us */
}

static void wd_feed(struct gw_coord *c)
{
	unsigned long long now = gw_now_mono_ms(), period = c->wd_timeout_s * 1000ull / 4;
	if (period < FEED_MIN_MS)
		period = FEED_MIN_MS;
	if (now - c->wd_last_feed_ms < period)
		return;
	if (write(c->wd_fd, "k", 1) != 1) {
		gw_err(SUBSYS, "watchdog %s: feed: %s", c->cfg.watchdog, strerror(errno));
		return;
	}
	c->wd_last_feed_ms = now;
}

static bool stopped_has(const struct gw_coord *c, const char *name)
{
	for (size_t i = 0; i < c->n_selfstopped; i++)
		if (strcmp(c->selfstopped[i], name) == 0)
			return true;
	return false;
}

/* No quorum: stop every HA VM the cluster state places on this host. False if one failed. */
static bool stop_ha_vms(struct gw_coord *c)
{
	bool all = true;
	for (size_t i = 0; i < c->st.n_vms; i++) {
		const struct gw_coord_vm *vm = &c->st.vms[i];
		char err[512] = "";
		if (!vm->ha || strcmp(vm->host, c->cfg.node) != 0 ||
		    (vm->state != GW_CVM_RUNNING && vm->state != GW_CVM_STARTING) ||
		    stopped_has(c, vm->name))
			continue;
		unsigned long long t0 = gw_now_mono_ms();
		if (gw_coord_agent_stop(c, vm->name, err, sizeof(err))) {
			gw_err(SUBSYS, "no quorum: cannot stop HA VM '%s': %s (retrying%s)",
			       vm->name, err,
			       c->wd_fd >= 0 ? "; the watchdog will reset this host" : "");
			all = false;
			continue;
		}
		gw_warn(SUBSYS, "no quorum: HA VM '%s' stopped in %llu ms (self-fence)", vm->name,
			gw_now_mono_ms() - t0);
		if (c->n_selfstopped < GW_COORD_SELFSTOP_MAX)
			snprintf(c->selfstopped[c->n_selfstopped++], GW_COORD_NAME_MAX, "%s",
				 vm->name);
	}
	if (all && !c->selffenced) {
		c->selffenced = true;
		gw_warn(SUBSYS,
			"self-fenced: no HA VM runs here until quorum is back (%zu stopped)",
			c->n_selfstopped);
	}
	return all;
}

/* Quorum is back: HA VMs we stopped that the cluster still places here are reported failed. */
static void report_stopped(struct gw_coord *c)
{
	if (!c->synced || c->waiting)
		return;
	for (size_t i = 0; i < c->n_selfstopped; i++) {
		struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, c->selfstopped[i]);
		if (!vm || strcmp(vm->host, c->cfg.node) != 0 ||
		    (vm->state != GW_CVM_RUNNING && vm->state != GW_CVM_STARTING))
			continue; /* restarted elsewhere meanwhile, or already reported */
		GwClVmStateMsg m = GW_CL_VM_STATE_MSG__INIT;
		m.name = vm->name;
		m.host = c->cfg.node;
		m.state = "failed";
		m.reason = "stopped by self-fencing when its host lost quorum";
		m.time_ms = gw_now_wall_ms();
		gw_info(SUBSYS, "quorum back: reporting self-fenced VM '%s' as failed", vm->name);
		gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_STATE, &m);
	}
	c->n_selfstopped = 0;
}

void gw_coord_selffence_tick(struct gw_coord *c)
{
	unsigned long long now = gw_now_mono_ms();
	if (!c->started_ms)
		c->started_ms = now;
	if (in_quorum(c)) {
		if (!c->ever_quorate || c->selffenced || c->noquorum_since_ms)
			gw_info(SUBSYS, "quorum held%s", c->selffenced ? ": self-fence over" : "");
		c->ever_quorate = true;
		c->noquorum_since_ms = 0;
		c->selfstop_next_ms = 0;
		c->selffenced = false;
		if (c->n_selfstopped)
			report_stopped(c);
		if (c->cfg.watchdog[0] && c->wd_fd < 0)
			wd_open(c);
		if (c->wd_fd >= 0)
			wd_feed(c);
		return;
	}
	if (!c->noquorum_since_ms) {
		c->noquorum_since_ms = now;
		if (c->ever_quorate)
			gw_warn(SUBSYS, "quorum lost: stopping HA VMs%s",
				c->wd_fd >= 0 ? ", watchdog no longer fed" : "");
	}
	if (!c->ever_quorate && now - c->started_ms < NOQUORUM_GRACE_MS)
		return;
	if (now < c->selfstop_next_ms)
		return;
	c->selfstop_next_ms = stop_ha_vms(c) ? 0 : now + STOP_RETRY_MS;
}

void gw_coord_selffence_close(struct gw_coord *c)
{
	if (c->wd_fd < 0)
		return;
	/* disarm only once the cluster no longer counts on our watchdog */
	c->wd_disarming = true;
	bool announced = in_quorum(c) && c->synced && gw_coord_hello(c) == 0;
	unsigned long long end = gw_now_mono_ms() + DISARM_WAIT_MS;
	struct gw_coord_host *me = NULL;
	while (announced && gw_now_mono_ms() < end) {
		me = gw_coord_host_by_nodeid(&c->st, c->local_nodeid);
		if (!me || me->watchdog_s == 0)
			break;
		wd_feed(c);
		gw_coord_cluster_dispatch_cpg(c);
		usleep(20 * 1000);
	}
	me = gw_coord_host_by_nodeid(&c->st, c->local_nodeid);
	if (announced && (!me || me->watchdog_s == 0)) {
		if (write(c->wd_fd, "V", 1) != 1)
			gw_warn(SUBSYS, "watchdog %s: magic close: %s", c->cfg.watchdog,
				strerror(errno));
		gw_info(SUBSYS, "watchdog %s disarmed", c->cfg.watchdog);
	} else {
		gw_warn(SUBSYS,
			"watchdog %s left armed: the cluster was not told (no quorum); this host "
			"resets in %u s unless a coordinator feeds it",
			c->cfg.watchdog, c->wd_timeout_s);
	}
	close(c->wd_fd);
	c->wd_fd = -1;
}
