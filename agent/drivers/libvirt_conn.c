/* libvirt_conn.c -- the libvirt driver's connection: opened at start when [libvirt] is
 * enabled, watched by a close callback, and opened again with backoff (0.5 s doubling to
 * 10 s) when libvirtd goes away. libvirt's event loop runs in a thread of its own; the
 * lifecycle events it delivers are written to a pipe, which the agent's loop watches
 * (libvirt_events.c applies them). While disconnected the driver says so (available()),
 * VM records keep their last known state, and the agent info the coordinator reads
 * carries the reason. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"
#include "libvirt_int.h"

#define SUBSYS "libvirt"

const char *gw_lv_errmsg(void)
{
	const virError *e = virGetLastError();
	return e && e->message ? e->message : "unknown libvirt error";
}

/* libvirt prints its errors to stderr unless told otherwise: ours go through the log. */
static void quiet_errors(void *ud, virErrorPtr e)
{
	(void)ud;
	(void)e;
}

static void *event_thread(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			usleep(100 * 1000);
	return NULL;
}

void gw_lv_push(struct gw_lv *lv, const char *name, int event, int detail)
{
	struct gw_lv_event ev = {.event = event, .detail = detail, .mono_ms = gw_now_mono_ms()};
	snprintf(ev.name, sizeof(ev.name), "%s", name ? name : "");
	ssize_t n = write(lv->pipe_wr, &ev, sizeof(ev));
	if (n != (ssize_t)sizeof(ev))
		gw_warn(SUBSYS, "event for '%s' lost: %s", ev.name,
			n < 0 ? strerror(errno) : "short write");
}

static int on_lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
	(void)c;
	gw_lv_push(opaque, virDomainGetName(dom), event, detail);
	return 0;
}

static void on_close(virConnectPtr c, int reason, void *opaque)
{
	(void)c;
	struct gw_lv *lv = opaque;
	atomic_store(&lv->closed, true);
	gw_lv_push(lv, "", GW_LV_EV_CLOSED, reason);
}

static int connect_now(struct gw_lv *lv, char *err, size_t errlen)
{
	virConnectPtr c = virConnectOpen(lv->uri);
	if (!c) {
		snprintf(err, errlen, "cannot connect to %s: %s", lv->uri, gw_lv_errmsg());
		return -ENOTCONN;
	}
	atomic_store(&lv->closed, false);
	if (virConnectRegisterCloseCallback(c, on_close, lv, NULL) < 0)
		gw_warn(SUBSYS, "%s: no close callback: %s", lv->uri, gw_lv_errmsg());
	lv->cb_id =
	    virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
					     VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), lv, NULL);
	if (lv->cb_id < 0) {
		snprintf(err, errlen, "%s: cannot subscribe to domain events: %s", lv->uri,
			 gw_lv_errmsg());
		virConnectUnregisterCloseCallback(c, on_close);
		virConnectClose(c);
		return -EIO;
	}
	lv->conn = c;
	return 0;
}

void gw_lv_drop(struct gw_lv *lv, const char *why)
{
	if (!lv->conn)
		return;
	gw_warn(SUBSYS, "lost libvirtd at %s: %s; VMs keep their last known state, reconnecting",
		lv->uri, why);
	snprintf(lv->why_down, sizeof(lv->why_down), "disconnected from %s: %s", lv->uri, why);
	if (lv->cb_id >= 0)
		virConnectDomainEventDeregisterAny(lv->conn, lv->cb_id);
	lv->cb_id = -1;
	virConnectUnregisterCloseCallback(lv->conn, on_close);
	virConnectClose(lv->conn);
	lv->conn = NULL;
	lv->down_since_ms = gw_now_mono_ms();
	lv->backoff_ms = GW_LV_BACKOFF_MIN_MS;
	lv->next_try_ms = lv->down_since_ms + lv->backoff_ms;
}

bool gw_lv_reconnect(struct gw_lv *lv)
{
	if (lv->conn && (atomic_load(&lv->closed) || virConnectIsAlive(lv->conn) != 1))
		gw_lv_drop(lv, "connection closed");
	if (lv->conn || gw_now_mono_ms() < lv->next_try_ms)
		return false;
	char err[512];
	if (connect_now(lv, err, sizeof(err))) {
		snprintf(lv->why_down, sizeof(lv->why_down), "%s", err);
		lv->backoff_ms = lv->backoff_ms * 2 > GW_LV_BACKOFF_MAX_MS ? GW_LV_BACKOFF_MAX_MS
									   : lv->backoff_ms * 2;
		lv->next_try_ms = gw_now_mono_ms() + lv->backoff_ms;
		gw_debug(SUBSYS, "%s; next try in %llu ms", err, lv->backoff_ms);
		return false;
	}
	gw_info(SUBSYS, "connected to libvirtd at %s%s", lv->uri,
		lv->down_since_ms ? " again" : "");
	lv->why_down[0] = 0;
	lv->reattach = true;
	return true;
}

/* one libvirt driver per agent process: its state, set by gw_lv_init */
static struct gw_lv *the_lv;

struct gw_lv *gw_lv_of(struct gw_agent *ag)
{
	return the_lv && the_lv->ag == ag ? the_lv : NULL;
}

virDomainPtr gw_lv_domain(struct gw_lv *lv, const struct gw_vm *vm, int *rc, char *err,
			  size_t errlen)
{
	if (!lv || !lv->conn) {
		snprintf(err, errlen, "vm '%s': libvirtd is not connected (%s)", vm->name,
			 lv && lv->why_down[0] ? lv->why_down : "libvirt driver not enabled");
		if (rc)
			*rc = -ENOTCONN;
		return NULL;
	}
	virDomainPtr d = virDomainLookupByName(lv->conn, vm->name);
	if (!d) {
		const virError *e = virGetLastError();
		bool gone = e && e->code == VIR_ERR_NO_DOMAIN;
		snprintf(err, errlen, "vm '%s': %s", vm->name,
			 gone ? "no such libvirt domain" : gw_lv_errmsg());
		if (rc)
			*rc = gone ? -ENOENT : -EIO;
		if (!gone && virConnectIsAlive(lv->conn) != 1)
			gw_lv_drop(lv, gw_lv_errmsg());
	}
	return d;
}

int gw_lv_init(struct gw_agent *ag, struct gw_driver *d, char *err, size_t errlen)
{
	static bool event_impl;
	struct gw_lv *lv = calloc(1, sizeof(*lv));
	int p[2];
	if (!lv || pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(lv);
		snprintf(err, errlen, "cannot set up: %s", strerror(errno));
		return -ENOMEM;
	}
	lv->ag = ag;
	lv->pipe_rd = p[0];
	lv->pipe_wr = p[1];
	lv->cb_id = -1;
	snprintf(lv->uri, sizeof(lv->uri), "%s", ag->cfg.libvirt_uri);
	d->priv = lv;
	the_lv = lv;
	if (!ag->cfg.libvirt_enabled) {
		snprintf(lv->why_down, sizeof(lv->why_down),
			 "not enabled ([libvirt] enabled = yes or uri = ... in the config)");
		return 1; /* registered, off: says why when asked */
	}
	virSetErrorFunc(NULL, quiet_errors);
	if (!event_impl && virEventRegisterDefaultImpl() < 0) {
		snprintf(err, errlen, "libvirt event loop: %s", gw_lv_errmsg());
		return -EIO;
	}
	event_impl = true;
	if (pthread_create(&lv->ev_thread, NULL, event_thread, lv) == 0)
		lv->ev_thread_up = true;
	lv->backoff_ms = GW_LV_BACKOFF_MIN_MS;
	if (connect_now(lv, err, errlen)) {
		gw_warn(SUBSYS, "%s: retrying in the background", err);
		snprintf(lv->why_down, sizeof(lv->why_down), "%s", err);
		lv->down_since_ms = gw_now_mono_ms();
		lv->next_try_ms = lv->down_since_ms + lv->backoff_ms;
		err[0] = 0;
		return 0;
	}
	gw_info(SUBSYS, "connected to libvirtd at %s", lv->uri);
	return 0;
}

void gw_lv_fini(struct gw_agent *ag, struct gw_driver *d)
{
	(void)ag;
	struct gw_lv *lv = d->priv;
	if (!lv)
		return;
	if (lv->conn) {
		if (lv->cb_id >= 0)
			virConnectDomainEventDeregisterAny(lv->conn, lv->cb_id);
		virConnectUnregisterCloseCallback(lv->conn, on_close);
		virConnectClose(lv->conn);
		lv->conn = NULL;
	}
	/* the event thread and migration threads end with the process */
}

bool gw_lv_available(struct gw_driver *d, char *err, size_t errlen)
{
	struct gw_lv *lv = d->priv;
	if (lv && lv->conn) {
		snprintf(err, errlen, "connected to %s", lv->uri);
		return true;
	}
	snprintf(err, errlen, "%s", lv && lv->why_down[0] ? lv->why_down : "not connected");
	return false;
}

int gw_lv_event_fd(struct gw_driver *d)
{
	struct gw_lv *lv = d->priv;
	return lv ? lv->pipe_rd : -1;
}
