/* coord_status.c -- the status page: GET / (the page, embedded from coordinator/status/ at build
 * time) and GET /api/state (JSON the page polls about once a second), routes of the coordinator's
 * metrics endpoint. Read-only, no login: what this member holds (cluster state, membership, the
 * migration progress every source member shares). The JSON keys are listed in docs/status.md
 * and kept stable: add keys, never rename or remove. */
#include "coord.h"

#include <stdio.h>
#include <string.h>

#include "gw_fsutil.h"
#include "gw_json.h"
#include "gw_metrics.h"

#define STATUS_VERSION 1
#define STATUS_EVENTS  60   /* newest events in /api/state */
#define PAGE_SIZE      4096 /* guest page size the agents count pages in */

extern const char gw_coord_status_html[]; /* generated from coordinator/status/index.html */
extern const unsigned long gw_coord_status_html_len;

static const char *const fence_phase_names[] = {"idle", "running", "backoff", "watchdog", "done"};

static void kv_dbl(struct gw_json *j, const char *k, double v)
{
	gw_json_key(j, k);
	gw_json_double(j, v);
}

static const char *host_name_of(const struct gw_coord *c, uint32_t nodeid)
{
	for (size_t i = 0; i < c->st.n_hosts; i++)
		if (c->st.hosts[i].nodeid == nodeid)
			return c->st.hosts[i].name;
	return NULL;
}

static void cluster_obj(struct gw_json *j, const struct gw_coord *c)
{
	uint32_t acting = gw_coord_acting(c);
	gw_json_key(j, "cluster");
	gw_json_obj_begin(j);
	gw_json_kv_bool(j, "quorate", c->quorate);
	gw_json_kv_bool(j, "synced", c->synced && !c->waiting);
	gw_json_kv_uint(j, "acting_nodeid", acting);
	gw_json_kv_str(j, "acting", acting ? host_name_of(c, acting) : NULL);
	gw_json_kv_bool(j, "local_acting", gw_coord_is_acting(c));
	gw_json_kv_bool(j, "watchdog_armed", c->wd_fd >= 0);
	gw_json_key(j, "members");
	gw_json_arr_begin(j);
	for (size_t i = 0; i < c->n_members; i++) {
		gw_json_obj_begin(j);
		gw_json_kv_uint(j, "nodeid", c->members[i]);
		gw_json_kv_str(j, "name", host_name_of(c, c->members[i]));
		gw_json_obj_end(j);
	}
	gw_json_arr_end(j);
	gw_json_obj_end(j);
}

static bool is_member(const struct gw_coord *c, uint32_t nodeid)
{
	for (size_t i = 0; i < c->n_members; i++)
		if (c->members[i] == nodeid)
			return true;
	return false;
}

static void host_obj(struct gw_json *j, const struct gw_coord *c, const struct gw_coord_host *h)
{
	uint64_t used = 0;
	unsigned n = 0;
	for (size_t i = 0; i < c->st.n_vms; i++) {
		const struct gw_coord_vm *v = &c->st.vms[i];
		bool here = strcmp(v->host, h->name) == 0 || strcmp(v->migrate_to, h->name) == 0;
		if (here && (v->state == GW_CVM_RUNNING || v->state == GW_CVM_STARTING)) {
			used += v->memory_mib;
			n += strcmp(v->host, h->name) == 0;
		}
	}
	const char *fencing = NULL;
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++)
		if (c->fence[i].host[0] && strcmp(c->fence[i].host, h->name) == 0)
			fencing = fence_phase_names[c->fence[i].phase];
	gw_json_obj_begin(j);
	gw_json_kv_str(j, "name", h->name);
	gw_json_kv_uint(j, "nodeid", h->nodeid);
	gw_json_kv_str(j, "state", gw_coord_host_state_name(h->state));
	gw_json_kv_bool(j, "member", is_member(c, h->nodeid));
	gw_json_kv_bool(j, "offline", h->offline);
	gw_json_kv_bool(j, "maintenance", h->maintenance);
	gw_json_kv_bool(j, "evacuating", h->evacuating);
	gw_json_kv_str(j, "maint_error", h->maint_error);
	gw_json_kv_uint(j, "fence_attempts", h->fence_attempts);
	gw_json_kv_bool(j, "fence_device", gw_coord_fence_dev(c, h->name) != NULL);
	gw_json_kv_str(j, "fencing", fencing);
	gw_json_kv_uint(j, "watchdog_s", h->watchdog_s);
	gw_json_kv_uint(j, "mem_total_mib", h->mem_total_mib);
	gw_json_kv_uint(j, "mem_avail_mib", h->mem_avail_mib);
	gw_json_kv_uint(j, "mem_vms_mib", used);
	kv_dbl(j, "load", h->mem_total_mib ? (double)used / (double)h->mem_total_mib : 0);
	gw_json_kv_uint(j, "vms", n);
	gw_json_kv_str(j, "vm_backend", h->vm_backend);
	gw_json_key(j, "drivers");
	gw_json_arr_begin(j);
	for (size_t i = 0; i < h->n_drivers; i++) {
		gw_json_obj_begin(j);
		gw_json_kv_str(j, "name", h->drivers[i].name);
		gw_json_kv_bool(j, "available", h->drivers[i].available);
		gw_json_kv_str(j, "status", h->drivers[i].status);
		gw_json_obj_end(j);
	}
	gw_json_arr_end(j);
	gw_json_obj_end(j);
}

static void vm_obj(struct gw_json *j, struct gw_coord *c, const struct gw_coord_vm *v)
{
	const struct gw_coord_host *h = gw_coord_host_by_name(&c->st, v->host);
	bool lv = gw_coord_vm_is_libvirt(v);
	gw_json_obj_begin(j);
	gw_json_kv_str(j, "name", v->name);
	gw_json_kv_str(j, "host", v->host);
	gw_json_kv_str(j, "state", gw_coord_vm_state_name(v->state));
	gw_json_kv_bool(j, "ha", v->ha);
	gw_json_kv_uint(j, "priority", v->priority);
	gw_json_kv_str(j, "group", v->group);
	gw_json_kv_str(j, "driver", lv ? "libvirt" : "microvm");
	gw_json_kv_str(j, "backend", lv ? "qemu" : h && h->vm_backend[0] ? h->vm_backend : NULL);
	gw_json_kv_uint(j, "memory_mib", v->memory_mib);
	gw_json_kv_uint(j, "vcpus", v->vcpus);
	gw_json_kv_uint(j, "restarts", v->restarts);
	gw_json_kv_str(j, "reason", v->reason);
	gw_json_kv_str(j, "migrate_to", v->migrate_to[0] ? v->migrate_to : NULL);
	gw_json_obj_end(j);
}

/* Same as godwitctl's: sent / (sent + remaining), 100 once completed. */
static unsigned percent(const struct gw_coord_mig_fig *f)
{
	double sent = (double)f->pages_sent, rem = (double)f->pages_remaining;
	if (strcmp(f->result, "completed") == 0)
		return 100;
	if (sent + rem <= 0)
		return 0;
	double p = 100.0 * sent / (sent + rem);
	return p >= 100 ? 100 : (unsigned)p;
}

/* Same as godwitctl's: remaining pages over what the link sends beyond the dirty rate; -1 =
 * cannot tell. */
static long eta_s(const struct gw_coord_mig_fig *f)
{
	if (strcmp(f->result, "running") != 0 || !(f->mbps > 0 && f->mbps < 1e12))
		return -1;
	double net = f->mbps * 1e6 / 8.0 / PAGE_SIZE - (double)f->dirty_pps;
	if (net <= 0)
		return -1;
	double s = (double)f->pages_remaining / net;
	if (s > 359999)
		return 359999;
	return (long)s + ((double)(long)s < s); /* rounded up, without libm */
}

/* One migration: in the cluster state (migrating, f NULL before its first progress message)
 * or ended a moment ago (f's result not running). */
static void mig_obj(struct gw_json *j, const char *vm, const char *from, const char *to,
		    uint64_t id, const struct gw_coord_mig_fig *f)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%016llx", (unsigned long long)id); /* > 2^53: a string */
	gw_json_obj_begin(j);
	gw_json_kv_str(j, "vm", vm);
	gw_json_kv_str(j, "from", from);
	gw_json_kv_str(j, "to", to);
	gw_json_kv_str(j, "id", ids);
	gw_json_kv_str(j, "result", f ? f->result : "starting");
	gw_json_kv_str(j, "phase", f ? f->phase : NULL);
	if (!f) {
		gw_json_obj_end(j);
		return;
	}
	long eta = eta_s(f);
	gw_json_kv_uint(j, "round", f->round);
	gw_json_kv_uint(j, "percent", percent(f));
	gw_json_kv_uint(j, "bytes_transferred", f->bytes);
	gw_json_kv_uint(j, "pages_sent", f->pages_sent);
	gw_json_kv_uint(j, "pages_remaining", f->pages_remaining);
	gw_json_kv_uint(j, "pages_total", f->pages_total);
	gw_json_kv_uint(j, "remaining_bytes", f->pages_remaining * PAGE_SIZE);
	gw_json_kv_uint(j, "dirty_rate_pps", f->dirty_pps);
	kv_dbl(j, "throughput_mbps", f->mbps);
	if (eta >= 0)
		gw_json_kv_int(j, "eta_s", eta);
	else
		gw_json_kv_null(j, "eta_s");
	kv_dbl(j, "expected_downtime_ms", f->expected_downtime_ms);
	kv_dbl(j, "downtime_ms", f->downtime_ms);
	gw_json_kv_uint(j, "total_ms", f->total_ms);
	gw_json_kv_uint(j, "throttle_pct", f->throttle_pct);
	gw_json_kv_uint(j, "age_ms", gw_now_mono_ms() - f->seen_ms);
	gw_json_obj_end(j);
}

static void migrations(struct gw_json *j, struct gw_coord *c)
{
	gw_json_key(j, "migrations");
	gw_json_arr_begin(j);
	for (size_t i = 0; i < c->st.n_vms; i++) {
		const struct gw_coord_vm *v = &c->st.vms[i];
		if (v->migrate_to[0])
			mig_obj(j, v->name, v->host, v->migrate_to, v->mig_id,
				gw_coord_progress_find(c, v->name, v->mig_id));
	}
	/* ended ones, still kept (GW_COORD_PROGRESS_KEEP_MS): the page shows how they ended */
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++) {
		const struct gw_coord_mig_fig *f = &c->progress[i];
		if (!f->vm[0] || strcmp(f->result, "running") == 0 ||
		    gw_coord_progress_find(c, f->vm, f->id) != f)
			continue;
		struct gw_coord_vm *v = gw_coord_vm_find(&c->st, f->vm);
		if (v && v->migrate_to[0] && v->mig_id == f->id)
			continue; /* listed above */
		mig_obj(j, f->vm, f->from, f->to, f->id, f);
	}
	gw_json_arr_end(j);
}

static void events(struct gw_json *j, const struct gw_coord_state *st)
{
	size_t skip = st->n_events > STATUS_EVENTS ? st->n_events - STATUS_EVENTS : 0;
	gw_json_key(j, "events");
	gw_json_arr_begin(j);
	for (size_t k = skip; k < st->n_events; k++) {
		const struct gw_coord_event *e =
		    &st->events[(st->ev_first + k) % GW_COORD_MAX_EVENTS];
		gw_json_obj_begin(j);
		gw_json_kv_uint(j, "seq", e->seq);
		gw_json_kv_uint(j, "time_ms", e->time_ms);
		gw_json_kv_str(j, "kind", e->kind);
		gw_json_kv_str(j, "host", e->host);
		gw_json_kv_str(j, "vm", e->vm);
		gw_json_kv_str(j, "text", e->text);
		gw_json_obj_end(j);
	}
	gw_json_arr_end(j);
}

/* GET /api/state (a gw_metrics_render_fn; ctx = struct gw_coord). */
static void render_state(void *ctx, struct gw_mtext *t)
{
	struct gw_coord *c = ctx;
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_COMPACT);
	gw_json_obj_begin(&j);
	gw_json_kv_uint(&j, "version", STATUS_VERSION);
	gw_json_kv_str(&j, "node", c->cfg.node);
	gw_json_kv_uint(&j, "time_ms", gw_now_wall_ms());
	gw_json_kv_bool(&j, "shutting_down", c->shutdown_phase != 0);
	cluster_obj(&j, c);
	gw_json_key(&j, "hosts");
	gw_json_arr_begin(&j);
	for (size_t i = 0; i < c->st.n_hosts; i++)
		host_obj(&j, c, &c->st.hosts[i]);
	gw_json_arr_end(&j);
	gw_json_key(&j, "vms");
	gw_json_arr_begin(&j);
	for (size_t i = 0; i < c->st.n_vms; i++)
		vm_obj(&j, c, &c->st.vms[i]);
	gw_json_arr_end(&j);
	migrations(&j, c);
	events(&j, &c->st);
	gw_json_obj_end(&j);
	if (gw_json_finish(&j) == 0) {
		size_t len;
		const char *txt = gw_json_text(&j, &len);
		gw_mtext_printf(t, "%s\n", txt);
	} else {
		t->overflow = true; /* answered 500 */
	}
	gw_json_free(&j);
}

/* GET / (a gw_metrics_render_fn): the page, as built into the binary. */
static void render_page(void *ctx, struct gw_mtext *t)
{
	(void)ctx;
	gw_mtext_printf(t, "%.*s", (int)gw_coord_status_html_len, gw_coord_status_html);
}

int gw_coord_status_routes(struct gw_coord *c, struct gw_metrics_srv *srv)
{
	int r = gw_metrics_route(srv, "/", "text/html; charset=utf-8", render_page, c);
	if (!r)
		r = gw_metrics_route(srv, "/api/state", "application/json", render_state, c);
	return r;
}
