/* coord_drs_api.c -- `cluster balance` and `cluster rule` on the coordinator's API: a dry run
 * is planned here from the replicated state; a real run is asked of the cluster with
 * BALANCE_START (every member plans it; the first request delivered while none runs wins) and
 * followed by its id; rules are changed with RULE. */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "coord_drs.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_frame.h"

#define SUBSYS "balance"

static bool counts(const struct gw_coord_host *h)
{
	return h->state == GW_HOST_UP && !h->maintenance && h->mem_total_mib > 0;
}

static uint64_t used_on(const struct gw_coord_state *st, const char *host)
{
	uint64_t used = 0;
	for (size_t i = 0; i < st->n_vms; i++) {
		const struct gw_coord_vm *v = &st->vms[i];
		if ((v->state == GW_CVM_STARTING || v->state == GW_CVM_RUNNING) &&
		    (strcmp(v->host, host) == 0 || strcmp(v->migrate_to, host) == 0))
			used += v->memory_mib;
	}
	return used;
}

static double spread(const double *l, size_t n)
{
	double mx = -1, mn = 1e300;
	for (size_t i = 0; i < n; i++) {
		mx = l[i] > mx ? l[i] : mx;
		mn = l[i] < mn ? l[i] : mn;
	}
	return n ? mx - mn : 0;
}

/* The reply: the run's moves with the memory figures of earlier versions (loads in percent,
 * moves not yet done applied in order), the hosts, and the planner's figures. */
struct reply {
	GwClBalancePlan r;
	GwClBalanceMove mv[GW_COORD_BAL_MOVES], *mvp[GW_COORD_BAL_MOVES];
	GwClBalanceRunMove dm[GW_COORD_BAL_MOVES];
	GwClBalanceHost hs[GW_COORD_MAX_HOSTS], *hsp[GW_COORD_MAX_HOSTS];
	char *notes[GW_COORD_BAL_NOTES];
	double before[GW_COORD_MAX_HOSTS], after[GW_COORD_MAX_HOSTS];
};

static int host_ix(const struct reply *p, const char *name)
{
	for (size_t i = 0; i < p->r.n_hosts; i++)
		if (strcmp(p->hs[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void fill_moves(const struct gw_coord_state *st, const struct gw_coord_balance *b,
		       struct reply *p)
{
	for (size_t i = 0; i < b->n_moves; i++) {
		const struct gw_coord_bal_move *m = &b->moves[i];
		GwClBalanceMove *o = &p->mv[i];
		gw_cl_balance_move__init(o);
		o->vm = (char *)m->vm;
		o->from = (char *)m->from;
		o->to = (char *)m->to;
		struct gw_coord_vm *vm = gw_coord_vm_find((struct gw_coord_state *)st, m->vm);
		o->memory_mib = vm ? vm->memory_mib : 0;
		o->benefit_pct = m->gain;
		int f = host_ix(p, m->from), t = host_ix(p, m->to);
		bool pending = !strcmp(m->result, "planned") || !strcmp(m->result, "running");
		if (f >= 0 && t >= 0) {
			GwClBalanceHost *hf = &p->hs[f], *ht = &p->hs[t];
			o->from_load_before = hf->used_after_mib * 100.0 / hf->mem_total_mib;
			o->to_load_before = ht->used_after_mib * 100.0 / ht->mem_total_mib;
			if (pending && strcmp(m->result, "running") != 0) {
				hf->used_after_mib -=
				    hf->used_after_mib >= o->memory_mib ? o->memory_mib : 0;
				ht->used_after_mib += o->memory_mib;
			}
			o->from_load_after = hf->used_after_mib * 100.0 / hf->mem_total_mib;
			o->to_load_after = ht->used_after_mib * 100.0 / ht->mem_total_mib;
		}
		GwClBalanceRunMove *d = &p->dm[i];
		gw_cl_balance_run_move__init(d);
		d->vm = o->vm;
		d->from = o->from;
		d->to = o->to;
		d->kind = (char *)m->kind;
		d->result = (char *)m->result;
		d->error = m->error[0] ? (char *)m->error : NULL;
		d->has_time_s = d->has_downtime_s = d->has_data_mib = d->has_score = 1;
		d->time_s = m->time_s;
		d->downtime_s = m->downtime_s;
		d->data_mib = m->data_mib;
		d->score = m->score;
		d->has_gain = d->has_cost = d->has_imbalance_after = d->has_total_ms = 1;
		d->gain = m->gain;
		d->cost = m->cost;
		d->imbalance_after = m->imbalance_after;
		d->total_ms = m->total_ms;
		o->drs = d;
		p->mvp[i] = o;
	}
	p->r.n_moves = b->n_moves;
	p->r.moves = p->mvp;
}

static void fill(const struct gw_coord_state *st, const struct gw_coord_balance *b, struct reply *p)
{
	gw_cl_balance_plan__init(&p->r);
	for (size_t i = 0; i < st->n_hosts; i++) { /* by name */
		const struct gw_coord_host *h = &st->hosts[i];
		if (!counts(h))
			continue;
		size_t k = p->r.n_hosts++;
		while (k > 0 && strcmp(p->hs[k - 1].name, h->name) > 0) {
			p->hs[k] = p->hs[k - 1];
			k--;
		}
		gw_cl_balance_host__init(&p->hs[k]);
		p->hs[k].name = (char *)h->name;
		p->hs[k].mem_total_mib = h->mem_total_mib;
		p->hs[k].used_before_mib = p->hs[k].used_after_mib = used_on(st, h->name);
	}
	fill_moves(st, b, p);
	for (size_t i = 0; i < p->r.n_hosts; i++) {
		GwClBalanceHost *h = &p->hs[i];
		h->load_before = p->before[i] = h->used_before_mib * 100.0 / h->mem_total_mib;
		h->load_after = p->after[i] = h->used_after_mib * 100.0 / h->mem_total_mib;
		p->hsp[i] = h;
	}
	p->r.hosts = p->hsp;
	p->r.spread_before = spread(p->before, p->r.n_hosts);
	p->r.spread_after = spread(p->after, p->r.n_hosts);
	p->r.threshold_pct = b->threshold_pct;
	p->r.max_moves = b->max_moves;
	p->r.planner = (char *)b->planner;
	p->r.has_aggressiveness = p->r.has_imbalance_before = p->r.has_imbalance_after = 1;
	p->r.aggressiveness = b->aggressiveness;
	p->r.imbalance_before = b->imbalance_before;
	p->r.imbalance_after = b->imbalance_after;
	for (size_t i = 0; i < b->n_notes; i++)
		p->notes[i] = (char *)b->notes[i];
	p->r.n_notes = b->n_notes;
	p->r.notes = p->notes;
}

static int reply_run(struct gw_coord *c, int fd, uint64_t id)
{
	const struct gw_coord_balance *b = &c->st.bal;
	struct reply *p = calloc(1, sizeof(*p));
	struct gw_coord_balance *empty = calloc(1, sizeof(*empty));
	if (!p || !empty) {
		free(p);
		free(empty);
		return gw_msg_send_error(fd, -ENOMEM, "out of memory");
	}
	bool refused = false;
	const char *past = NULL;
	for (size_t i = 0; i < b->n_refused; i++)
		refused |= b->refused[i] == id;
	for (size_t i = 0; i < b->n_past; i++)
		if (b->past[i].id == id)
			past = b->past[i].state; /* replaced by a later run: only its outcome */
	fill(&c->st, b->id == id ? b : empty, p);
	p->r.has_id = 1;
	p->r.id = id;
	p->r.state = b->id == id ? (char *)b->state
		     : past	 ? (char *)past
		     : refused	 ? "busy"
				 : "pending";
	if (refused) {
		p->r.has_busy_id = 1;
		p->r.busy_id = b->id;
		p->r.busy_requester = (char *)b->requester;
	}
	int r = gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_BALANCE_REPLY, &p->r.base);
	free(p);
	free(empty);
	return r;
}

static int start_run(struct gw_coord *c, int fd, const GwClBalanceReq *req)
{
	if (c->cfg.bal.mode == GW_BAL_OFF)
		return gw_msg_send_error(fd, -EPERM, "balancing is off ([balance] mode = off)");
	GwClBalanceStart s = GW_CL_BALANCE_START__INIT;
	s.id = gw_coord_new_id();
	s.requester = c->cfg.node;
	s.has_aggressiveness = s.has_max_moves = 1;
	s.aggressiveness = req->aggressiveness ? req->aggressiveness : c->cfg.bal.aggressiveness;
	s.max_moves = req->has_max_moves ? req->max_moves : 0;
	s.has_threshold_pct = req->has_threshold_pct;
	s.threshold_pct = req->threshold_pct;
	s.time_ms = gw_now_wall_ms();
	int r = gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_BALANCE_START, &s);
	if (r)
		return gw_msg_send_error(fd, r, "cannot multicast the balance run");
	gw_info(SUBSYS, "run %016llx asked for", (unsigned long long)s.id);
	GwClBalancePlan p = GW_CL_BALANCE_PLAN__INIT;
	p.has_id = 1;
	p.id = s.id;
	p.state = "pending";
	return gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_BALANCE_REPLY, &p.base);
}

int gw_coord_api_balance(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClBalanceReq *req = (const GwClBalanceReq *)m;
	if (!c->quorate || !c->synced || c->waiting)
		return gw_msg_send_error(fd, -EAGAIN,
					 "this member does not hold the state of a "
					 "quorate partition: no plan is made");
	if ((req->has_max_moves && (req->max_moves < 1 || req->max_moves > GW_COORD_BAL_MOVES)) ||
	    (req->has_threshold_pct && !(req->threshold_pct >= 0 && req->threshold_pct <= 100)) ||
	    req->aggressiveness > 5)
		return gw_msg_send_error(fd, -EINVAL,
					 "max moves must be 1..%d, the threshold 0..100 percent "
					 "and the aggressiveness 1..5",
					 GW_COORD_BAL_MOVES);
	if (req->has_run_id)
		return reply_run(c, fd, req->run_id);
	if (req->run)
		return start_run(c, fd, req);
	/* a dry run: the plan a run would make now (history unchanged) */
	struct gw_coord_drs_req rq = {
	    .aggressiveness =
		(int)(req->aggressiveness ? req->aggressiveness : c->cfg.bal.aggressiveness),
	    .max_moves = req->has_max_moves ? req->max_moves : 0,
	    .manual = true,
	    .memory = req->has_threshold_pct,
	    .threshold_pct = req->threshold_pct};
	struct gw_coord_balance *b = malloc(sizeof(*b));
	struct reply *p = calloc(1, sizeof(*p));
	struct gw_coord_drs_figs figs = {0};
	int r = -ENOMEM;
	if (b && p) {
		*b = c->st.bal;
		r = gw_coord_drs_plan(&c->st, &rq, b, &figs);
	}
	if (r) {
		free(b);
		free(p);
		return gw_msg_send_error(fd, r, "planning failed: %s", strerror(-r));
	}
	b->aggressiveness = (uint32_t)rq.aggressiveness;
	b->max_moves = rq.max_moves;
	b->threshold_pct = rq.threshold_pct;
	fill(&c->st, b, p);
	p->r.state = b->n_moves ? "planned" : "balanced";
	p->r.has_cpu_cv_before = p->r.has_cpu_cv_after = 1;
	p->r.has_mem_cv_before = p->r.has_mem_cv_after = 1;
	p->r.cpu_cv_before = figs.cpu_cv_before;
	p->r.cpu_cv_after = figs.cpu_cv_after;
	p->r.mem_cv_before = figs.mem_cv_before;
	p->r.mem_cv_after = figs.mem_cv_after;
	r = gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_BALANCE_REPLY, &p->r.base);
	free(b);
	free(p);
	return r;
}

static int reply_rules(struct gw_coord *c, int fd)
{
	GwClRuleList l = GW_CL_RULE_LIST__INIT;
	GwClRule *rs = calloc(c->st.n_rules + 1, sizeof(*rs));
	GwClRule **rp = calloc(c->st.n_rules + 1, sizeof(*rp));
	char **names =
	    calloc((c->st.n_rules + 1) * (GW_COORD_RULE_VMS + GW_COORD_RULE_HOSTS), sizeof(*names));
	if (!rs || !rp || !names) {
		free(rs);
		free(rp);
		free(names);
		return gw_msg_send_error(fd, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < c->st.n_rules; i++) {
		gw_coord_rule_encode(&c->st.rules[i], &rs[i],
				     &names[i * (GW_COORD_RULE_VMS + GW_COORD_RULE_HOSTS)]);
		rp[i] = &rs[i];
	}
	l.n_rules = c->st.n_rules;
	l.rules = rp;
	int r = gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_RULE_REPLY, &l.base);
	free(rs);
	free(rp);
	free(names);
	return r;
}

int gw_coord_api_rule(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClRuleReq *req = (const GwClRuleReq *)m;
	if (strcmp(req->action, "list") == 0)
		return reply_rules(c, fd);
	if (!c->quorate || !c->synced || c->waiting)
		return gw_msg_send_error(fd, -EAGAIN, "no quorum: rules are not changed");
	bool add = strcmp(req->action, "add") == 0;
	if ((!add && strcmp(req->action, "del") != 0) || !req->rule)
		return gw_msg_send_error(fd, -EINVAL, "rule action must be add, del or list");
	if (!add && !gw_coord_rule_find(&c->st, req->rule->name))
		return gw_msg_send_error(fd, -ENOENT, "no rule '%s'", req->rule->name);
	if (add) {
		const GwClRule *r = req->rule;
		bool hk = gw_coord_rule_kind_parse(r->kind) >= GW_COORD_RULE_VM_HOST;
		if (gw_coord_rule_kind_parse(r->kind) < 0 || !r->name[0] ||
		    strlen(r->name) >= GW_COORD_NAME_MAX || strchr(r->name, ':') ||
		    r->n_vms > GW_COORD_RULE_VMS || r->n_hosts > GW_COORD_RULE_HOSTS ||
		    r->n_vms < (hk ? 1u : 2u) || hk != (r->n_hosts > 0))
			return gw_msg_send_error(
			    fd, -EINVAL,
			    "rule %s: a name without ':', a kind (affinity, anti-affinity, "
			    "vm-host, "
			    "vm-not-host), 2..%d VMs (vm-host kinds: 1..%d VMs and 1..%d hosts)",
			    r->name, GW_COORD_RULE_VMS, GW_COORD_RULE_VMS, GW_COORD_RULE_HOSTS);
	}
	GwClRuleMsg g = GW_CL_RULE_MSG__INIT;
	g.action = req->action;
	g.rule = req->rule;
	g.time_ms = gw_now_wall_ms();
	int r = gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_RULE, &g);
	if (r)
		return gw_msg_send_error(fd, r, "cannot multicast the rule");
	return reply_rules(c, fd);
}
