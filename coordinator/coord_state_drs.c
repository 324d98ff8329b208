/* coord_state_drs.c -- the balancing part of the replicated state: hosts' load figures (LOAD),
 * affinity rules (RULE), and balancing runs (BALANCE_START: every member plans the run from
 * the same state, so all hold the same moves; one run at a time cluster-wide, the first
 * request delivered wins), followed move by move as their migrations start and end. */
#include "coord_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "coord_drs.h"

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

/* ---- LOAD ---- */

void gw_coord_apply_load(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClLoad *l = (const GwClLoad *)m;
	struct gw_coord_host *h = gw_coord_host_by_nodeid(st, from);
	if (!h || strcmp(h->name, l->host) != 0)
		return; /* only a host's own member reports its load */
	if (l->cpus_milli)
		h->cpus_milli = l->cpus_milli;
	for (size_t i = 0; i < l->n_vms; i++) {
		struct gw_coord_vm *vm = gw_coord_vm_find(st, l->vms[i]->name);
		if (!vm || strcmp(vm->host, h->name) != 0)
			continue;
		vm->cpu_milli = l->vms[i]->cpu_milli;
		vm->dirty_pps = l->vms[i]->dirty_pps;
	}
}

/* ---- RULE ---- */

static int rule_from_msg(const GwClRule *in, struct gw_coord_rule *r, char *why, size_t len)
{
	int kind = gw_coord_rule_kind_parse(in->kind);
	memset(r, 0, sizeof(*r));
	if (!in->name[0] || strlen(in->name) >= GW_COORD_NAME_MAX || strchr(in->name, ':'))
		return snprintf(why, len, "bad rule name '%s'", in->name), -1;
	if (kind < 0)
		return snprintf(why, len, "unknown rule kind '%s'", in->kind), -1;
	if (in->n_vms > GW_COORD_RULE_VMS || in->n_hosts > GW_COORD_RULE_HOSTS)
		return snprintf(why, len, "at most %d VMs and %d hosts per rule", GW_COORD_RULE_VMS,
				GW_COORD_RULE_HOSTS),
		       -1;
	bool host_kind = kind == GW_COORD_RULE_VM_HOST || kind == GW_COORD_RULE_VM_NOT_HOST;
	if (in->n_vms < (host_kind ? 1u : 2u) || (host_kind != (in->n_hosts > 0)))
		return snprintf(why, len, "%s needs %s", in->kind,
				host_kind ? "VMs and hosts" : "two VMs or more and no hosts"),
		       -1;
	COPY(r->name, in->name);
	r->kind = (enum gw_coord_rule_kind)kind;
	r->must = in->must;
	for (size_t i = 0; i < in->n_vms; i++)
		COPY(r->vms[r->n_vms++], in->vms[i]);
	for (size_t i = 0; i < in->n_hosts; i++)
		COPY(r->hosts[r->n_hosts++], in->hosts[i]);
	return 0;
}

void gw_coord_apply_rule(struct gw_coord_state *st, const ProtobufCMessage *m, uint32_t from)
{
	const GwClRuleMsg *g = (const GwClRuleMsg *)m;
	size_t i = 0;
	(void)from;
	while (i < st->n_rules && strcmp(st->rules[i].name, g->rule->name) < 0)
		i++;
	bool exists = i < st->n_rules && strcmp(st->rules[i].name, g->rule->name) == 0;
	if (strcmp(g->action, "del") == 0) {
		if (!exists)
			return;
		memmove(&st->rules[i], &st->rules[i + 1],
			(st->n_rules - i - 1) * sizeof(st->rules[0]));
		st->n_rules--;
		gw_coord_event(st, g->time_ms, "rule-deleted", NULL, NULL, "rule %s deleted",
			       g->rule->name);
		return;
	}
	struct gw_coord_rule r;
	char why[200] = "";
	if (rule_from_msg(g->rule, &r, why, sizeof(why)) ||
	    (!exists && st->n_rules >= GW_COORD_MAX_RULES)) {
		gw_coord_event(st, g->time_ms, "rule-refused", NULL, NULL, "rule %s: %s",
			       g->rule->name, why[0] ? why : "too many rules");
		return;
	}
	if (!exists) {
		memmove(&st->rules[i + 1], &st->rules[i], (st->n_rules - i) * sizeof(st->rules[0]));
		st->n_rules++;
	}
	st->rules[i] = r;
	gw_coord_event(st, g->time_ms, "rule-added", NULL, NULL, "rule %s: %s %s, %zu VMs", r.name,
		       r.must ? "must" : "should", gw_coord_rule_kind_name(r.kind), r.n_vms);
}

/* ---- balancing runs ---- */

static bool bal_running(const struct gw_coord_balance *b)
{
	return strcmp(b->state, "running") == 0;
}

void gw_coord_apply_balance_start(struct gw_coord_state *st, const ProtobufCMessage *m,
				  uint32_t from)
{
	const GwClBalanceStart *g = (const GwClBalanceStart *)m;
	struct gw_coord_balance *b = &st->bal;
	(void)from;
	if (bal_running(b)) { /* one at a time: the first one delivered runs */
		if (b->n_refused == GW_COORD_BAL_REFUSED) { /* oldest first */
			memmove(b->refused, b->refused + 1,
				sizeof(b->refused) - sizeof(b->refused[0]));
			b->n_refused--;
		}
		b->refused[b->n_refused++] = g->id;
		if (!g->automatic)
			gw_coord_event(st, g->time_ms, "balance-refused", g->requester, NULL,
				       "balance run %016llx from %s refused: run %016llx (from %s) "
				       "is under way",
				       (unsigned long long)g->id, g->requester,
				       (unsigned long long)b->id, b->requester);
		return;
	}
	struct gw_coord_drs_req rq = {.aggressiveness = (int)g->aggressiveness,
				      .max_moves = g->max_moves,
				      .manual = !g->automatic,
				      .memory = g->has_threshold_pct,
				      .threshold_pct = g->threshold_pct};
	struct gw_coord_balance *nb = malloc(sizeof(*nb));
	if (!nb)
		return; /* every member fails alike only on memory: the run is lost, not split */
	*nb = *b;
	if (b->id) { /* remember how the previous run ended, for whoever follows it */
		if (nb->n_past == GW_COORD_BAL_REFUSED) {
			memmove(nb->past, nb->past + 1, sizeof(nb->past) - sizeof(nb->past[0]));
			nb->n_past--;
		}
		struct gw_coord_bal_past *pp = &nb->past[nb->n_past++];
		pp->id = b->id;
		COPY(pp->state, b->state);
		pp->n_moves = (uint32_t)b->n_moves;
		pp->n_done = 0;
		for (size_t i = 0; i < b->n_moves; i++)
			pp->n_done += strcmp(b->moves[i].result, "completed") == 0;
	}
	if (gw_coord_drs_plan(st, &rq, nb, NULL)) {
		free(nb);
		return;
	}
	nb->id = g->id;
	COPY(nb->requester, g->requester);
	nb->automatic = g->automatic;
	nb->aggressiveness = g->aggressiveness;
	nb->max_moves = g->max_moves;
	nb->threshold_pct = g->threshold_pct;
	nb->started_ms = g->time_ms;
	nb->ended_ms = nb->n_moves ? 0 : g->time_ms;
	COPY(nb->state, nb->n_moves ? "running" : "balanced");
	*b = *nb;
	free(nb);
	if (b->n_moves || !g->automatic)
		gw_coord_event(st, g->time_ms, b->n_moves ? "balance-started" : "balance-balanced",
			       g->requester, NULL,
			       "balance run %016llx (%s, %s planner): %zu move%s, imbalance %.3f "
			       "-> %.3f",
			       (unsigned long long)g->id, g->automatic ? "automatic" : "manual",
			       b->planner, b->n_moves, b->n_moves == 1 ? "" : "s",
			       b->imbalance_before, b->imbalance_after);
}

/* No move planned or running: the run is over. */
static void bal_maybe_end(struct gw_coord_state *st, uint64_t time_ms)
{
	struct gw_coord_balance *b = &st->bal;
	size_t ok = 0, bad = 0;
	for (size_t i = 0; i < b->n_moves; i++) {
		const char *r = b->moves[i].result;
		if (!strcmp(r, "planned") || !strcmp(r, "running"))
			return;
		ok += strcmp(r, "completed") == 0;
		bad += strcmp(r, "completed") != 0;
	}
	COPY(b->state, bad ? "failed" : "done");
	b->ended_ms = time_ms;
	gw_coord_event(st, time_ms, "balance-ended", b->requester, NULL,
		       "balance run %016llx %s: %zu of %zu moves done", (unsigned long long)b->id,
		       b->state, ok, b->n_moves);
}

static void bal_drop_planned(struct gw_coord_balance *b)
{
	for (size_t i = 0; i < b->n_moves; i++)
		if (strcmp(b->moves[i].result, "planned") == 0)
			COPY(b->moves[i].result, "not run");
}

void gw_coord_apply_balance_abort(struct gw_coord_state *st, const ProtobufCMessage *m,
				  uint32_t from)
{
	const GwClBalanceStart *g = (const GwClBalanceStart *)m;
	(void)from;
	if (!bal_running(&st->bal) || st->bal.id != g->id)
		return;
	bal_drop_planned(&st->bal);
	bal_maybe_end(st, g->time_ms);
}

void gw_coord_drs_after_migrate(struct gw_coord_state *st, uint16_t type, const ProtobufCMessage *m)
{
	const GwClMigrate *g = (const GwClMigrate *)m;
	struct gw_coord_balance *b = &st->bal;
	if (!bal_running(b))
		return;
	struct gw_coord_vm *vm = gw_coord_vm_find(st, g->vm);
	for (size_t i = 0; i < b->n_moves; i++) {
		struct gw_coord_bal_move *mv = &b->moves[i];
		if (strcmp(mv->vm, g->vm) != 0)
			continue;
		if (type == GW_CL_MSG_TYPE__GW_CL_MIGRATE_START && g->balance_id == b->id &&
		    strcmp(mv->result, "planned") == 0) {
			bool started = vm && vm->mig_id == g->id && vm->migrate_to[0];
			COPY(mv->result, started ? "running" : "failed");
			mv->mig_id = g->id;
			if (!started)
				snprintf(mv->error, sizeof(mv->error), "refused: %s",
					 vm && vm->migrate_error[0] ? vm->migrate_error
								    : "already migrating");
		} else if (type == GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE && mv->mig_id == g->id &&
			   strcmp(mv->result, "running") == 0 && vm && !vm->migrate_to[0]) {
			COPY(mv->result, g->result ? g->result : "failed");
			COPY(mv->error, g->error);
			mv->total_ms = g->total_ms;
		} else {
			continue;
		}
		if (strcmp(mv->result, "running") != 0 && strcmp(mv->result, "completed") != 0)
			bal_drop_planned(b); /* the first failure ends the run */
		bal_maybe_end(st, g->time_ms);
		return;
	}
}
