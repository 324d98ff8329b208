/* coord_shutdown.c -- graceful host shutdown: with [coordinator] evacuate_on_shutdown = yes, the
 * coordinator's SIGTERM (systemd stopping it, e.g. for a reboot) puts this host into maintenance
 * and keeps the daemon running while the acting member live-migrates its VMs away. Bounded by
 * shutdown_timeout: VMs still here then (or when the evacuation stopped) are stopped cleanly
 * through an operator-style VM_ADMIN stop (state "stopped", never "lost", never restarted by
 * HA) and through the agent. A host in maintenance that runs no VM leaves the membership
 * without being fenced (coord_state.c); a marker file makes it leave maintenance when its
 * coordinator comes back (docs/operator.md, "Graceful shutdown"). */
#include "coord.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	   "shutdown"
#define RESEND_MS  3000	 /* a message not applied by then is sent again */
#define STOP_GRACE 30000 /* after the timeout: time to stop what is left, then give up */
#define MARKER	   "shutdown-maintenance"

enum { SD_RUNNING = 0, SD_EVACUATING, SD_STOPPING };

static void marker_path(const struct gw_coord *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" MARKER, c->cfg.state_dir);
}

/* VMs this host must not leave behind: placed here starting/running, or migrating to it. */
static size_t active_here(struct gw_coord *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->st.n_vms; i++) {
		const struct gw_coord_vm *v = &c->st.vms[i];
		bool live = v->state == GW_CVM_RUNNING || v->state == GW_CVM_STARTING;
		n += (live && strcmp(v->host, c->cfg.node) == 0) ||
		     strcmp(v->migrate_to, c->cfg.node) == 0;
	}
	return n;
}

static void send_maint(struct gw_coord *c, uint16_t type, uint64_t id)
{
	GwClMaint m = GW_CL_MAINT__INIT;
	m.host = c->cfg.node;
	m.has_id = id != 0;
	m.id = id;
	m.time_ms = gw_now_wall_ms();
	if (gw_coord_mcast(c, type, &m))
		gw_warn(SUBSYS, "maintenance message not sent (CPG): retrying");
}

/* Is the whole system going down (systemd as PID 1 says "stopping")? */
static bool system_stopping(void)
{
	char line[64] = "";
	if (access("/run/systemd/system", F_OK) != 0)
		return false;
	FILE *p = popen("systemctl is-system-running 2>/dev/null", "r");
	if (!p)
		return false;
	if (!fgets(line, sizeof(line), p))
		line[0] = 0;
	pclose(p);
	return strncmp(line, "stopping", 8) == 0;
}

bool gw_coord_shutdown_begin(struct gw_coord *c)
{
	char path[PATH_MAX + 32];
	if (c->cfg.evacuate_on_shutdown == GW_EVAC_NO)
		return false;
	if (c->cfg.evacuate_on_shutdown == GW_EVAC_YES && !system_stopping()) {
		gw_info(SUBSYS, "not a system shutdown: stopping without evacuating "
				"(evacuate_on_shutdown = always evacuates on every stop)");
		return false;
	}
	struct gw_coord_host *h = gw_coord_host_by_name(&c->st, c->cfg.node);
	if (!c->quorate || !c->synced || c->waiting || !h) {
		gw_warn(SUBSYS, "stopping without evacuating: %s",
			!h ? "this host is not in the "
			     "cluster state"
			   : "no quorate cluster state (nothing could move)");
		return false;
	}
	unsigned long long now = gw_now_mono_ms();
	c->shutdown_phase = SD_EVACUATING;
	c->shutdown_deadline_ms = now + (unsigned long long)c->cfg.shutdown_timeout_s * 1000;
	c->shutdown_next_ms = now + RESEND_MS;
	c->shutdown_evac_id = 0;
	if (h->state == GW_HOST_UP) {
		/* we put it there: it leaves maintenance when this coordinator comes back */
		marker_path(c, path, sizeof(path));
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		c->shutdown_evac_id = gw_coord_new_id();
		send_maint(c, GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER, c->shutdown_evac_id);
	}
	gw_info(SUBSYS,
		"evacuating this host before stopping (%zu VMs here, at most %u s; then the rest "
		"are stopped)",
		active_here(c), c->cfg.shutdown_timeout_s);
	return true;
}

/* Timeout, or the evacuation stopped: cancel migrations away, stop the VMs left here. */
static void stop_rest(struct gw_coord *c)
{
	for (size_t i = 0; i < c->st.n_vms; i++) {
		struct gw_coord_vm *v = &c->st.vms[i];
		if (strcmp(v->host, c->cfg.node) != 0)
			continue;
		if (v->migrate_to[0] && !v->migrate_cancel) {
			GwClMigrate g = GW_CL_MIGRATE__INIT;
			g.vm = v->name;
			g.from = v->host;
			g.to = v->migrate_to;
			g.id = v->mig_id;
			g.time_ms = gw_now_wall_ms();
			gw_info(SUBSYS, "vm '%s': cancelling its migration to %s", v->name,
				v->migrate_to);
			gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_MIGRATE_CANCEL, &g);
		} else if (!v->migrate_to[0] &&
			   (v->state == GW_CVM_RUNNING || v->state == GW_CVM_STARTING)) {
			GwClVmAdmin a = GW_CL_VM_ADMIN__INIT;
			a.name = v->name;
			a.action = "stop";
			a.time_ms = gw_now_wall_ms();
			gw_warn(SUBSYS, "vm '%s': not moved in time: stopping it", v->name);
			gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_ADMIN, &a);
		}
	}
}

/* The VMs the state has stopped here: stopped by the agent now (not left to coord_admin.c's
 * next look, the daemon is about to exit). */
static void agent_stops(struct gw_coord *c)
{
	char err[256];
	for (size_t i = 0; i < c->st.n_vms; i++) {
		const struct gw_coord_vm *v = &c->st.vms[i];
		if (v->state == GW_CVM_STOPPED && strcmp(v->host, c->cfg.node) == 0 &&
		    gw_coord_agent_stop(c, v->name, err, sizeof(err)))
			gw_warn(SUBSYS, "vm '%s': agent stop: %s", v->name, err);
	}
}

bool gw_coord_shutdown_step(struct gw_coord *c)
{
	unsigned long long now = gw_now_mono_ms();
	struct gw_coord_host *h = gw_coord_host_by_name(&c->st, c->cfg.node);
	size_t n = active_here(c);
	if (!c->quorate || !c->synced || c->waiting || !h) {
		gw_warn(SUBSYS,
			"quorum or cluster state lost during the evacuation: stopping now "
			"(%zu VMs still here)",
			n);
		return true;
	}
	bool in_maint = h->state == GW_HOST_MAINTENANCE;
	if (in_maint && !h->evacuating && n == 0) {
		agent_stops(c);
		gw_info(SUBSYS, "no VM left on this host: stopping");
		return true;
	}
	if (c->shutdown_phase == SD_EVACUATING &&
	    (now >= c->shutdown_deadline_ms || (in_maint && !h->evacuating))) {
		gw_warn(SUBSYS, "%s: %zu VMs still here: stopping them",
			now >= c->shutdown_deadline_ms ? "shutdown_timeout reached"
						       : "the evacuation stopped",
			n);
		c->shutdown_phase = SD_STOPPING;
		c->shutdown_next_ms = 0;
	}
	if (c->shutdown_phase == SD_STOPPING && now >= c->shutdown_deadline_ms + STOP_GRACE) {
		gw_err(SUBSYS, "%zu VMs could not be stopped in time: stopping anyway", n);
		return true;
	}
	if (now < c->shutdown_next_ms)
		return false;
	c->shutdown_next_ms = now + RESEND_MS;
	if (c->shutdown_phase == SD_EVACUATING && h->state == GW_HOST_UP)
		send_maint(c, GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER,
			   c->shutdown_evac_id ? c->shutdown_evac_id : gw_coord_new_id());
	if (c->shutdown_phase == SD_STOPPING) {
		if (!in_maint)
			send_maint(c, GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER, gw_coord_new_id());
		else if (h->evacuating) /* end it: nothing else may start moving */
			send_maint(c, GW_CL_MSG_TYPE__GW_CL_EVAC_END, h->evac_id);
		stop_rest(c);
		agent_stops(c);
	}
	return false;
}

/* Tick step (synced): back from a shutdown that put this host into maintenance, leave it. */
void gw_coord_shutdown_return_step(struct gw_coord *c)
{
	char path[PATH_MAX + 32];
	if (c->shutdown_phase || !c->quorate)
		return;
	marker_path(c, path, sizeof(path));
	if (access(path, F_OK) != 0)
		return;
	struct gw_coord_host *h = gw_coord_host_by_name(&c->st, c->cfg.node);
	if (!h || h->state == GW_HOST_UP) {
		if (h)
			unlink(path); /* out of maintenance (by us, or an operator) */
		return;
	}
	unsigned long long now = gw_now_mono_ms();
	if (h->state != GW_HOST_MAINTENANCE || h->evacuating || now < c->shutdown_next_ms)
		return;
	c->shutdown_next_ms = now + RESEND_MS;
	gw_info(SUBSYS, "back from a graceful shutdown: leaving maintenance");
	send_maint(c, GW_CL_MSG_TYPE__GW_CL_MAINT_EXIT, 0);
}
