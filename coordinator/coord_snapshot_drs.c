/* coord_snapshot_drs.c -- the balancing part of a snapshot: affinity rules and the last
 * balancing run with the planner's history (GwClSnapshot fields 8 and 9). */
#include "coord_state.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

/* What encode hangs on the snapshot, freed in one go. */
struct enc {
	GwClRule rules[GW_COORD_MAX_RULES], *rp[GW_COORD_MAX_RULES];
	char *names[GW_COORD_MAX_RULES][GW_COORD_RULE_VMS + GW_COORD_RULE_HOSTS];
	GwClBalanceState bs;
	GwClBalanceRunMove mv[GW_COORD_BAL_MOVES], *mvp[GW_COORD_BAL_MOVES];
	GwClBalanceHistEntry he[GW_COORD_BAL_HIST], *hep[GW_COORD_BAL_HIST];
	char *notes[GW_COORD_BAL_NOTES];
	uint64_t refused[GW_COORD_BAL_REFUSED];
	GwClBalancePast past[GW_COORD_BAL_REFUSED], *pastp[GW_COORD_BAL_REFUSED];
};

void gw_coord_rule_encode(const struct gw_coord_rule *r, GwClRule *o, char **names)
{
	gw_cl_rule__init(o);
	o->name = (char *)r->name;
	o->kind = (char *)gw_coord_rule_kind_name(r->kind);
	o->must = r->must;
	for (size_t j = 0; j < r->n_vms; j++)
		names[j] = (char *)r->vms[j];
	for (size_t j = 0; j < r->n_hosts; j++)
		names[GW_COORD_RULE_VMS + j] = (char *)r->hosts[j];
	o->n_vms = r->n_vms;
	o->vms = names;
	o->n_hosts = r->n_hosts;
	o->hosts = &names[GW_COORD_RULE_VMS];
}

static void enc_rules(const struct gw_coord_state *st, struct enc *e, GwClSnapshot *s)
{
	for (size_t i = 0; i < st->n_rules; i++) {
		gw_coord_rule_encode(&st->rules[i], &e->rules[i], e->names[i]);
		e->rp[i] = &e->rules[i];
	}
	s->n_rules = st->n_rules;
	s->rules = e->rp;
}

static void enc_move(const struct gw_coord_bal_move *m, GwClBalanceRunMove *o)
{
	gw_cl_balance_run_move__init(o);
	o->vm = (char *)m->vm;
	o->from = (char *)m->from;
	o->to = (char *)m->to;
	o->kind = (char *)m->kind;
	o->result = (char *)m->result;
	o->error = (char *)m->error;
	o->has_time_s = o->has_downtime_s = o->has_data_mib = o->has_score = 1;
	o->time_s = m->time_s;
	o->downtime_s = m->downtime_s;
	o->data_mib = m->data_mib;
	o->score = m->score;
	o->has_gain = o->has_cost = o->has_imbalance_after = 1;
	o->gain = m->gain;
	o->cost = m->cost;
	o->imbalance_after = m->imbalance_after;
	o->has_mig_id = o->has_total_ms = 1;
	o->mig_id = m->mig_id;
	o->total_ms = m->total_ms;
}

int gw_coord_drs_encode(const struct gw_coord_state *st, GwClSnapshot *s)
{
	struct enc *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	enc_rules(st, e, s);
	const struct gw_coord_balance *b = &st->bal;
	GwClBalanceState *o = &e->bs;
	gw_cl_balance_state__init(o);
	o->has_id = o->has_automatic = o->has_imbalance_before = o->has_imbalance_after = 1;
	o->id = b->id;
	o->requester = (char *)b->requester;
	o->automatic = b->automatic;
	o->state = (char *)b->state;
	o->planner = (char *)b->planner;
	o->imbalance_before = b->imbalance_before;
	o->imbalance_after = b->imbalance_after;
	o->has_aggressiveness = o->has_max_moves = o->has_threshold_pct = 1;
	o->aggressiveness = b->aggressiveness;
	o->max_moves = b->max_moves;
	o->threshold_pct = b->threshold_pct;
	o->has_started_ms = o->has_ended_ms = o->has_hist_round = o->has_hist_over = 1;
	o->started_ms = b->started_ms;
	o->ended_ms = b->ended_ms;
	o->hist_round = b->hist_round;
	o->hist_over = b->hist_over;
	for (size_t i = 0; i < b->n_moves; i++) {
		enc_move(&b->moves[i], &e->mv[i]);
		e->mvp[i] = &e->mv[i];
	}
	o->n_moves = b->n_moves;
	o->moves = e->mvp;
	for (size_t i = 0; i < b->n_hist; i++) {
		gw_cl_balance_hist_entry__init(&e->he[i]);
		e->he[i].vm = (char *)b->hist[i].vm;
		e->he[i].round = b->hist[i].round;
		e->hep[i] = &e->he[i];
	}
	o->n_hist = b->n_hist;
	o->hist = e->hep;
	for (size_t i = 0; i < b->n_notes; i++)
		e->notes[i] = (char *)b->notes[i];
	o->n_notes = b->n_notes;
	o->notes = e->notes;
	memcpy(e->refused, b->refused, sizeof(e->refused));
	o->n_refused = b->n_refused;
	o->refused = e->refused;
	for (size_t i = 0; i < b->n_past; i++) {
		gw_cl_balance_past__init(&e->past[i]);
		e->past[i].id = b->past[i].id;
		e->past[i].state = (char *)b->past[i].state;
		e->past[i].moves = b->past[i].n_moves;
		e->past[i].done = b->past[i].n_done;
		e->pastp[i] = &e->past[i];
	}
	o->n_past = b->n_past;
	o->past = e->pastp;
	s->balance = o;
	return 0;
}

void gw_coord_drs_encode_free(GwClSnapshot *s)
{
	if (s->balance)
		free((char *)s->balance - offsetof(struct enc, bs));
}

static int dec_rule(const GwClRule *in, struct gw_coord_rule *r)
{
	int kind = gw_coord_rule_kind_parse(in->kind);
	if (kind < 0 || in->n_vms > GW_COORD_RULE_VMS || in->n_hosts > GW_COORD_RULE_HOSTS)
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	COPY(r->name, in->name);
	r->kind = (enum gw_coord_rule_kind)kind;
	r->must = in->must;
	for (size_t j = 0; j < in->n_vms; j++)
		COPY(r->vms[r->n_vms++], in->vms[j]);
	for (size_t j = 0; j < in->n_hosts; j++)
		COPY(r->hosts[r->n_hosts++], in->hosts[j]);
	return 0;
}

static void dec_move(const GwClBalanceRunMove *m, struct gw_coord_bal_move *o)
{
	memset(o, 0, sizeof(*o));
	COPY(o->vm, m->vm);
	COPY(o->from, m->from);
	COPY(o->to, m->to);
	COPY(o->kind, m->kind);
	COPY(o->result, m->result);
	COPY(o->error, m->error);
	o->time_s = m->time_s;
	o->downtime_s = m->downtime_s;
	o->data_mib = m->data_mib;
	o->score = m->score;
	o->gain = m->gain;
	o->cost = m->cost;
	o->imbalance_after = m->imbalance_after;
	o->mig_id = m->mig_id;
	o->total_ms = m->total_ms;
}

int gw_coord_drs_decode(struct gw_coord_state *st, const GwClSnapshot *s)
{
	if (s->n_rules > GW_COORD_MAX_RULES)
		return -EBADMSG;
	for (size_t i = 0; i < s->n_rules; i++)
		if (dec_rule(s->rules[i], &st->rules[st->n_rules++]))
			return -EBADMSG;
	const GwClBalanceState *b = s->balance;
	struct gw_coord_balance *o = &st->bal;
	if (!b)
		return 0;
	if (b->n_moves > GW_COORD_BAL_MOVES || b->n_hist > GW_COORD_BAL_HIST ||
	    b->n_refused > GW_COORD_BAL_REFUSED || b->n_past > GW_COORD_BAL_REFUSED)
		return -EBADMSG;
	o->id = b->id;
	COPY(o->requester, b->requester);
	o->automatic = b->automatic;
	COPY(o->state, b->state);
	COPY(o->planner, b->planner);
	o->imbalance_before = b->imbalance_before;
	o->imbalance_after = b->imbalance_after;
	o->aggressiveness = b->aggressiveness;
	o->max_moves = b->max_moves;
	o->threshold_pct = b->threshold_pct;
	o->started_ms = b->started_ms;
	o->ended_ms = b->ended_ms;
	o->hist_round = b->hist_round;
	o->hist_over = b->hist_over;
	for (size_t i = 0; i < b->n_moves; i++)
		dec_move(b->moves[i], &o->moves[o->n_moves++]);
	for (size_t i = 0; i < b->n_hist; i++) {
		COPY(o->hist[i].vm, b->hist[i]->vm);
		o->hist[i].round = b->hist[i]->round;
		o->n_hist++;
	}
	for (size_t i = 0; i < b->n_notes && i < GW_COORD_BAL_NOTES; i++)
		COPY(o->notes[o->n_notes++], b->notes[i]);
	for (size_t i = 0; i < b->n_refused; i++)
		o->refused[o->n_refused++] = b->refused[i];
	for (size_t i = 0; i < b->n_past; i++) {
		struct gw_coord_bal_past *p = &o->past[o->n_past++];
		p->id = b->past[i]->id;
		COPY(p->state, b->past[i]->state);
		p->n_moves = b->past[i]->moves;
		p->n_done = b->past[i]->done;
	}
	return 0;
}
