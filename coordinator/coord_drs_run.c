/* coord_drs_run.c -- the balancer's side of the daemon: [balance] settings; every member
 * samples its VMs' load through its agent and reports what changed (LOAD); the acting member
 * asks for automatic runs and drives the moves of the run under way through the cluster's
 * live-migration path (MIGRATE_START; each source's member migrates, coord_migrate.c). */
#include "coord.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "gw_config.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	     "balance"
#define SENT_WAIT_MS 5000  /* resend if our message was not applied by then */
#define LOAD_FULL_MS 60000 /* every VM's figures at least this often */
#define MAX_SAMPLES  256

struct sample {
	char name[GW_COORD_NAME_MAX];
	uint64_t cpu_ns, at_ns;
	bool seen, live; /* live: the last report found it on this host */
};

struct gw_coord_drs_run {
	struct sample s[MAX_SAMPLES];
	unsigned long long next_load_ms, last_full_ms, next_auto_ms, wait_until_ms;
	uint64_t sent_mig_id;
};

void gw_coord_bal_defaults(struct gw_coord_bal_cfg *b)
{
	memset(b, 0, sizeof(*b));
	b->mode = GW_BAL_MANUAL;
	b->interval_s = 60;
	b->aggressiveness = 3;
	b->max_in = b->max_out = 2;
	b->load_period_ms = 3000;
}

int gw_coord_bal_config(struct gw_coord_bal_cfg *b, const char *key, const char *value)
{
	unsigned long long v = 0;
	if (strcmp(key, "mode") == 0) {
		if (strcmp(value, "off") == 0)
			b->mode = GW_BAL_OFF;
		else if (strcmp(value, "manual") == 0)
			b->mode = GW_BAL_MANUAL;
		else if (strcmp(value, "automatic") == 0)
			b->mode = GW_BAL_AUTOMATIC;
		else
			return -EINVAL;
		return 0;
	}
	static const struct {
		const char *key;
		unsigned long long lo, hi;
		size_t off;
	} keys[] = {
	    {"interval", 1, 86400, offsetof(struct gw_coord_bal_cfg, interval_s)},
	    {"aggressiveness", 1, 5, offsetof(struct gw_coord_bal_cfg, aggressiveness)},
	    {"max_in", 1, 64, offsetof(struct gw_coord_bal_cfg, max_in)},
	    {"max_out", 1, 64, offsetof(struct gw_coord_bal_cfg, max_out)},
	    {"cpus_milli", 1, 10000000, offsetof(struct gw_coord_bal_cfg, cpus_milli)},
	    {"link_mbps", 1, 1000000, offsetof(struct gw_coord_bal_cfg, link_mbps)},
	    {"load_period_ms", 200, 600000, offsetof(struct gw_coord_bal_cfg, load_period_ms)},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].key) != 0)
			continue;
		if (gw_parse_u64(value, keys[i].lo, keys[i].hi, &v))
			return -EINVAL;
		*(unsigned *)((char *)b + keys[i].off) = (unsigned)v;
		return 0;
	}
	return -ENOENT;
}

static struct sample *sample_of(struct gw_coord_drs_run *d, const char *name)
{
	struct sample *free_slot = NULL;
	for (size_t i = 0; i < MAX_SAMPLES; i++) {
		if (d->s[i].name[0] && strcmp(d->s[i].name, name) == 0)
			return &d->s[i];
		if (!d->s[i].name[0] && !free_slot)
			free_slot = &d->s[i];
	}
	if (free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
	}
	return free_slot;
}

/* Worth reporting: CPU moved by 50 milli-CPUs and 10 %, or the dirty rate by 10 %. */
static bool changed(uint32_t a, uint32_t b, uint64_t da, uint64_t db)
{
	uint32_t dc = a > b ? a - b : b - a;
	uint64_t dd = da > db ? da - db : db - da;
	return (dc >= 50 && dc * 10 >= (a > b ? a : b)) || (dd * 10 > (da > db ? da : db));
}

/* Sample this host's running cluster VMs; multicast the figures that changed. */
static void report_load(struct gw_coord *c, struct gw_coord_drs_run *d, unsigned long long now)
{
	GwVmList *list = NULL;
	if (gw_coord_agent_list_stats(c, &list))
		return;
	bool full = now >= d->last_full_ms + LOAD_FULL_MS;
	GwClVmLoad *vl = calloc(list->n_vms + 1, sizeof(*vl));
	GwClVmLoad **vp = calloc(list->n_vms + 1, sizeof(*vp));
	GwClLoad l = GW_CL_LOAD__INIT;
	for (size_t i = 0; i < MAX_SAMPLES; i++)
		d->s[i].live = false;
	for (size_t i = 0; vl && vp && i < list->n_vms; i++) {
		const GwVmInfo *v = list->vms[i];
		struct gw_coord_vm *cv = gw_coord_vm_find(&c->st, v->name);
		struct sample *s = v->has_cpu_time_ns ? sample_of(d, v->name) : NULL;
		if (!cv || !s || strcmp(cv->host, c->cfg.node) != 0)
			continue;
		s->live = true;
		uint64_t t = gw_now_mono_ns();
		bool prev = s->seen && t > s->at_ns && v->cpu_time_ns >= s->cpu_ns;
		uint32_t milli =
		    prev ? (uint32_t)((v->cpu_time_ns - s->cpu_ns) * 1000 / (t - s->at_ns))
			 : cv->cpu_milli;
		s->cpu_ns = v->cpu_time_ns;
		s->at_ns = t;
		s->seen = true;
		uint64_t dirty = v->has_dirty_rate_pps ? v->dirty_rate_pps : cv->dirty_pps;
		if (!prev || (!full && !changed(milli, cv->cpu_milli, dirty, cv->dirty_pps)))
			continue;
		gw_cl_vm_load__init(&vl[l.n_vms]);
		vl[l.n_vms].name = v->name;
		vl[l.n_vms].cpu_milli = milli;
		vl[l.n_vms].has_dirty_pps = 1;
		vl[l.n_vms].dirty_pps = dirty;
		vp[l.n_vms] = &vl[l.n_vms];
		l.n_vms++;
	}
	if (l.n_vms) {
		l.host = c->cfg.node;
		l.vms = vp;
		l.time_ms = gw_now_wall_ms();
		if (gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_LOAD, &l) == 0 && full)
			d->last_full_ms = now;
	}
	bool swept = vl && vp; /* every VM was looked at */
	free(vl);
	free(vp);
	protobuf_c_message_free_unpacked(&list->base, NULL);
	for (size_t i = 0; i < MAX_SAMPLES && swept; i++) /* VMs gone from here: slot freed */
		if (!d->s[i].live)
			d->s[i].name[0] = '\0';
}

static unsigned host_slots(const struct gw_coord_host *h, bool in)
{
	unsigned v = h ? (in ? h->max_in : h->max_out) : 0;
	return v ? v : 2;
}

/* Migrations under way out of (or into) host. */
static unsigned migrating(const struct gw_coord_state *st, const char *host, bool in)
{
	unsigned n = 0;
	for (size_t i = 0; i < st->n_vms; i++)
		if (st->vms[i].migrate_to[0] &&
		    strcmp(in ? st->vms[i].migrate_to : st->vms[i].host, host) == 0)
			n++;
	return n;
}

static bool sent_applied(struct gw_coord *c, struct gw_coord_drs_run *d)
{
	if (!d->wait_until_ms || gw_now_mono_ms() >= d->wait_until_ms)
		return true;
	for (size_t i = 0; i < c->st.n_vms; i++)
		if (c->st.vms[i].mig_id == d->sent_mig_id ||
		    c->st.vms[i].refused_id == d->sent_mig_id)
			return true;
	return false;
}

/* Acting member: start the next planned move of the run whose hosts have a free slot. */
static void drive_run(struct gw_coord *c, struct gw_coord_drs_run *d)
{
	struct gw_coord_balance *b = &c->st.bal;
	if (strcmp(b->state, "running") != 0 || !sent_applied(c, d))
		return;
	d->wait_until_ms = 0;
	for (size_t i = 0; i < c->st.n_hosts; i++)
		if (c->st.hosts[i].evacuating)
			return; /* maintenance first */
	for (size_t i = 0; i < b->n_moves; i++) {
		const struct gw_coord_bal_move *mv = &b->moves[i];
		if (strcmp(mv->result, "planned") != 0)
			continue;
		struct gw_coord_vm *vm = gw_coord_vm_find(&c->st, mv->vm);
		if (vm && vm->migrate_to[0])
			continue; /* another migration of it: wait */
		if (migrating(&c->st, mv->from, false) >=
			host_slots(gw_coord_host_by_name(&c->st, mv->from), false) ||
		    migrating(&c->st, mv->to, true) >=
			host_slots(gw_coord_host_by_name(&c->st, mv->to), true))
			continue;
		GwClMigrate m = GW_CL_MIGRATE__INIT;
		m.vm = (char *)mv->vm;
		m.from = (char *)mv->from;
		m.to = (char *)mv->to;
		m.id = gw_coord_new_id();
		m.has_balance_id = 1;
		m.balance_id = b->id;
		m.time_ms = gw_now_wall_ms();
		gw_info(SUBSYS, "run %016llx: moving vm '%s' %s -> %s (%s)",
			(unsigned long long)b->id, mv->vm, mv->from, mv->to, mv->kind);
		if (gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_MIGRATE_START, &m) == 0) {
			d->sent_mig_id = m.id;
			d->wait_until_ms = gw_now_mono_ms() + SENT_WAIT_MS;
		}
		return; /* one message per turn */
	}
}

static void auto_run(struct gw_coord *c, struct gw_coord_drs_run *d, unsigned long long now)
{
	if (c->cfg.bal.mode != GW_BAL_AUTOMATIC || now < d->next_auto_ms ||
	    strcmp(c->st.bal.state, "running") == 0)
		return;
	d->next_auto_ms = now + c->cfg.bal.interval_s * 1000ull;
	GwClBalanceStart s = GW_CL_BALANCE_START__INIT;
	s.id = gw_coord_new_id();
	s.requester = c->cfg.node;
	s.has_automatic = s.has_aggressiveness = 1;
	s.automatic = true;
	s.aggressiveness = c->cfg.bal.aggressiveness;
	s.time_ms = gw_now_wall_ms();
	gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_BALANCE_START, &s);
}

void gw_coord_drs_step(struct gw_coord *c)
{
	if (!c->drs && !(c->drs = calloc(1, sizeof(*c->drs))))
		return;
	struct gw_coord_drs_run *d = c->drs;
	unsigned long long now = gw_now_mono_ms();
	if (now >= d->next_load_ms) {
		d->next_load_ms = now + c->cfg.bal.load_period_ms;
		report_load(c, d, now);
	}
	if (!gw_coord_is_acting(c)) {
		d->wait_until_ms = 0;
		d->next_auto_ms = now + c->cfg.bal.interval_s * 1000ull;
		return;
	}
	auto_run(c, d, now);
	drive_run(c, d);
}
