/* ctl_balance.c -- `godwitctl cluster balance`: a dry run prints the coordinator's plan; a real
 * run is one cluster-wide balancing run (BALANCE_START through CPG), followed to its end. */
#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "gw_client.h"
#include "ctl_cluster.h"
#include "ctl_output.h"
#include "gw_json.h"

enum { EXIT_OK = 0, EXIT_ERR = 1 };

/* What became of one planned move. */
struct outcome {
	const char *result; /* planned, completed, failed, cancelled, interrupted, not run */
	char err[512];
	unsigned long long total_ms;
};

static void json_kv_double(struct gw_json *j, const char *key, double v)
{
	gw_json_key(j, key);
	gw_json_double(j, v);
}

static void print_json(const struct gw_ctl_args *a, const GwClBalancePlan *p,
		       const struct outcome *o, size_t n_done, const char *result, const char *err)
{
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_PRETTY);
	gw_json_obj_begin(&j);
	gw_json_kv_str(&j, "result", result);
	gw_json_kv_str(&j, "error", err);
	gw_json_kv_bool(&j, "dry_run", a->dry_run);
	json_kv_double(&j, "threshold_pct", p->threshold_pct);
	gw_json_kv_uint(&j, "max_moves", p->max_moves);
	json_kv_double(&j, "spread_before", p->spread_before);
	json_kv_double(&j, "spread_after", p->spread_after);
	gw_json_kv_uint(&j, "planned", p->n_moves);
	gw_json_kv_uint(&j, "done", n_done);
	gw_json_kv_uint(&j, "id", p->id);
	gw_json_kv_str(&j, "state", p->state);
	gw_json_kv_str(&j, "planner", p->planner);
	gw_json_kv_uint(&j, "aggressiveness", p->aggressiveness);
	json_kv_double(&j, "imbalance_before", p->imbalance_before);
	json_kv_double(&j, "imbalance_after", p->imbalance_after);
	if (p->has_busy_id) {
		gw_json_kv_uint(&j, "busy_id", p->busy_id);
		gw_json_kv_str(&j, "busy_requester", p->busy_requester);
	}
	gw_json_key(&j, "notes");
	gw_json_arr_begin(&j);
	for (size_t i = 0; i < p->n_notes; i++)
		gw_json_str(&j, p->notes[i]);
	gw_json_arr_end(&j);
	gw_json_key(&j, "moves");
	gw_json_arr_begin(&j);
	for (size_t i = 0; i < p->n_moves; i++) {
		const GwClBalanceMove *m = p->moves[i];
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "vm", m->vm);
		gw_json_kv_str(&j, "from", m->from);
		gw_json_kv_str(&j, "to", m->to);
		gw_json_kv_uint(&j, "memory_mib", m->memory_mib);
		json_kv_double(&j, "from_load_before", m->from_load_before);
		json_kv_double(&j, "from_load_after", m->from_load_after);
		json_kv_double(&j, "to_load_before", m->to_load_before);
		json_kv_double(&j, "to_load_after", m->to_load_after);
		json_kv_double(&j, "benefit_pct", m->benefit_pct);
		if (m->drs) {
			gw_json_kv_str(&j, "kind", m->drs->kind);
			json_kv_double(&j, "predicted_time_s", m->drs->time_s);
			json_kv_double(&j, "predicted_downtime_s", m->drs->downtime_s);
			json_kv_double(&j, "predicted_data_mib", m->drs->data_mib);
			json_kv_double(&j, "score", m->drs->score);
			json_kv_double(&j, "cost", m->drs->cost);
			json_kv_double(&j, "imbalance_after", m->drs->imbalance_after);
		}
		gw_json_kv_str(&j, "result", o[i].result);
		gw_json_kv_str(&j, "error", o[i].err[0] ? o[i].err : NULL);
		if (strcmp(o[i].result, "planned") != 0 && strcmp(o[i].result, "not run") != 0)
			gw_json_kv_uint(&j, "total_ms", o[i].total_ms);
		else
			gw_json_kv_null(&j, "total_ms");
		gw_json_obj_end(&j);
	}
	gw_json_arr_end(&j);
	gw_json_key(&j, "hosts");
	gw_json_arr_begin(&j);
	for (size_t i = 0; i < p->n_hosts; i++) {
		const GwClBalanceHost *h = p->hosts[i];
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "name", h->name);
		gw_json_kv_uint(&j, "mem_total_mib", h->mem_total_mib);
		gw_json_kv_uint(&j, "used_before_mib", h->used_before_mib);
		gw_json_kv_uint(&j, "used_after_mib", h->used_after_mib);
		json_kv_double(&j, "load_before", h->load_before);
		json_kv_double(&j, "load_after", h->load_after);
		gw_json_obj_end(&j);
	}
	gw_json_arr_end(&j);
	gw_json_obj_end(&j);
	if (!gw_json_finish(&j))
		printf("%s\n", gw_json_text(&j, NULL));
	gw_json_free(&j);
}

static void print_plan(const GwClBalancePlan *p)
{
	bool drs = p->planner && strcmp(p->planner, "drs") == 0;
	if (!p->n_moves && drs) {
		printf("cluster balanced: imbalance %.3f (aggressiveness %u), no moves\n",
		       p->imbalance_before, p->aggressiveness);
		for (size_t i = 0; i < p->n_notes; i++)
			printf("  note: %s\n", p->notes[i]);
		return;
	}
	if (!p->n_moves) {
		printf("cluster balanced: memory load spread %.1f points (threshold %.1f), "
		       "no moves\n",
		       p->spread_before, p->threshold_pct);
		return;
	}
	if (drs) {
		printf("plan: %zu move%s, imbalance %.3f -> %.3f (aggressiveness %u)\n", p->n_moves,
		       p->n_moves == 1 ? "" : "s", p->imbalance_before, p->imbalance_after,
		       p->aggressiveness);
		printf("%-16s %-10s %-10s %-9s %9s %10s %9s %9s\n", "VM", "FROM", "TO", "REASON",
		       "TIME(s)", "DOWN(ms)", "DATA(MiB)", "IMB.AFTER");
		for (size_t i = 0; i < p->n_moves; i++) {
			const GwClBalanceMove *m = p->moves[i];
			const GwClBalanceRunMove *d = m->drs;
			printf("%-16s %-10s %-10s %-9s %9.2f %10.1f %9.0f %9.3f\n", m->vm, m->from,
			       m->to, d ? d->kind : "", d ? d->time_s : 0,
			       d ? d->downtime_s * 1000 : 0, d ? d->data_mib : 0,
			       d ? d->imbalance_after : 0);
		}
		for (size_t i = 0; i < p->n_notes; i++)
			printf("  note: %s\n", p->notes[i]);
		return;
	}
	printf("plan: %zu move%s, memory load spread %.1f -> %.1f points (threshold %.1f, "
	       "max %u moves)\n",
	       p->n_moves, p->n_moves == 1 ? "" : "s", p->spread_before, p->spread_after,
	       p->threshold_pct, p->max_moves);
	printf("%-20s %-12s %-12s %11s %15s %15s\n", "VM", "FROM", "TO", "MEMORY(MiB)",
	       "FROM LOAD(%)", "TO LOAD(%)");
	for (size_t i = 0; i < p->n_moves; i++) {
		const GwClBalanceMove *m = p->moves[i];
		char fl[32], tl[32];
		snprintf(fl, sizeof(fl), "%.1f -> %.1f", m->from_load_before, m->from_load_after);
		snprintf(tl, sizeof(tl), "%.1f -> %.1f", m->to_load_before, m->to_load_after);
		printf("%-20s %-12s %-12s %11u %15s %15s\n", m->vm, m->from, m->to, m->memory_mib,
		       fl, tl);
	}
	printf("%-12s %12s %12s %12s %12s\n", "HOST", "MEM(MiB)", "USED(MiB)", "LOAD(%)",
	       "AFTER(%)");
	for (size_t i = 0; i < p->n_hosts; i++) {
		const GwClBalanceHost *h = p->hosts[i];
		printf("%-12s %12llu %12llu %12.1f %12.1f\n", h->name,
		       (unsigned long long)h->mem_total_mib, (unsigned long long)h->used_before_mib,
		       h->load_before, h->load_after);
	}
}

static int call(const struct gw_ctl_args *a, GwClBalanceReq *req, GwClBalancePlan **out)
{
	struct gw_client cl;
	ProtobufCMessage *rep = NULL;
	int r = gw_client_connect(&cl, a->coord_socket, a->timeout_ms);
	if (!r)
		r = gw_client_call(&cl, GW_CL_MSG_TYPE__GW_CL_API_BALANCE, &req->base,
				   GW_CL_MSG_TYPE__GW_CL_API_BALANCE_REPLY,
				   &gw_cl_balance_plan__descriptor, &rep);
	gw_client_close(&cl);
	if (r)
		gw_ctl_print_error(stdout, stderr, cl.err, -r, a->json);
	*out = (GwClBalancePlan *)rep;
	return r;
}

static bool run_over(const char *st)
{
	return st && strcmp(st, "pending") != 0 && strcmp(st, "running") != 0;
}

/* Start a run and follow it until it ends; *out is its last state. */
static int follow_run(const struct gw_ctl_args *a, GwClBalanceReq *req, GwClBalancePlan **out)
{
	GwClBalancePlan *p = NULL;
	req->has_run = 1;
	req->run = true;
	if (call(a, req, &p))
		return -1;
	uint64_t id = p->id;
	size_t printed = 0;
	bool shown = false;
	GwClBalanceReq q = GW_CL_BALANCE_REQ__INIT;
	q.has_run_id = 1;
	q.run_id = id;
	for (;;) {
		protobuf_c_message_free_unpacked(&p->base, NULL);
		p = NULL;
		if (call(a, &q, &p))
			return -1;
		if (!shown && p->state && strcmp(p->state, "pending") != 0 &&
		    strcmp(p->state, "busy") != 0) {
			if (!a->json)
				print_plan(p);
			shown = true;
		}
		for (; !a->json && printed < p->n_moves; printed++) {
			const GwClBalanceRunMove *d = p->moves[printed]->drs;
			if (!d || !strcmp(d->result, "planned") || !strcmp(d->result, "running"))
				break;
			if (strcmp(d->result, "completed") == 0)
				printf("vm %s: migrated %s -> %s in %llu ms\n", d->vm, d->from,
				       d->to, (unsigned long long)d->total_ms);
			else
				printf("vm %s: %s -> %s %s%s%s\n", d->vm, d->from, d->to, d->result,
				       d->error ? ": " : "", d->error ? d->error : "");
		}
		fflush(stdout);
		if (run_over(p->state))
			break;
		nanosleep(&(struct timespec){0, 250000000}, NULL);
	}
	*out = p;
	return 0;
}

/*
 * `cluster balance`: --dry-run prints the plan a run would make now; otherwise one run,
 * replicated: every coordinator plans it from the same state, the acting member migrates the
 * VMs through the cluster's migration path, and godwitctl follows it. A run asked for while
 * another one is under way is refused ("busy", exit 0: nothing is done twice). Exit 0 when
 * balanced, busy or every move is done; 1 otherwise.
 */
int gw_ctl_run_cluster_balance(const struct gw_ctl_args *a)
{
	GwClBalanceReq req = GW_CL_BALANCE_REQ__INIT;
	GwClBalancePlan *p = NULL;
	req.has_max_moves = (a->given & GW_CTL_OPT(MAX_MOVES)) != 0;
	req.max_moves = a->max_moves;
	req.has_threshold_pct = (a->given & GW_CTL_OPT(THRESHOLD)) != 0;
	req.threshold_pct = a->threshold_pct;
	req.has_aggressiveness = a->aggressiveness != 0;
	req.aggressiveness = a->aggressiveness;
	if (a->dry_run ? call(a, &req, &p) : follow_run(a, &req, &p))
		return EXIT_ERR;
	struct outcome *o = calloc(p->n_moves + 1, sizeof(*o));
	if (!o) {
		protobuf_c_message_free_unpacked(&p->base, NULL);
		gw_ctl_print_error(stdout, stderr, "out of memory", ENOMEM, a->json);
		return EXIT_ERR;
	}
	size_t n_done = 0;
	char err[700] = "";
	for (size_t i = 0; i < p->n_moves; i++) {
		const GwClBalanceRunMove *d = p->moves[i]->drs;
		o[i].result = a->dry_run ? "planned" : d ? d->result : "not run";
		o[i].total_ms = d ? d->total_ms : 0;
		if (d && d->error)
			snprintf(o[i].err, sizeof(o[i].err), "%s", d->error);
		n_done += strcmp(o[i].result, "completed") == 0;
		if (!a->dry_run && !err[0] && strcmp(o[i].result, "completed") != 0)
			snprintf(err, sizeof(err), "move %zu of %zu (vm %s %s -> %s) %s: %s", i + 1,
				 p->n_moves, p->moves[i]->vm, p->moves[i]->from, p->moves[i]->to,
				 o[i].result, o[i].err[0] ? o[i].err : "no reason");
	}
	bool busy = p->state && strcmp(p->state, "busy") == 0;
	if (a->dry_run && !a->json)
		print_plan(p);
	const char *result = busy	   ? "busy"
			     : err[0]	   ? "failed"
			     : !p->n_moves ? "balanced"
			     : a->dry_run  ? "planned"
					   : "done";
	if (a->json)
		print_json(a, p, o, n_done, result, err[0] ? err : NULL);
	else if (busy)
		printf("another balance run (%016llx, from %s) is under way: nothing done\n",
		       (unsigned long long)p->busy_id, p->busy_requester ? p->busy_requester : "?");
	else if (err[0])
		fprintf(stderr, "godwitctl: balance stopped after %zu of %zu moves: %s\n", n_done,
			p->n_moves, err);
	else if (p->n_moves && a->dry_run)
		printf("dry run: nothing moved\n");
	else if (p->n_moves)
		printf("balanced: %zu of %zu moves done\n", n_done, p->n_moves);
	free(o);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	return err[0] ? EXIT_ERR : EXIT_OK;
}
