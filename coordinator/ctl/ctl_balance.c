/* ctl_balance.c -- `godwitctl cluster balance`: the coordinator plans (memory load), godwitctl
 * prints the plan and, unless --dry-run, runs its moves one at a time as cluster migrations. */
#include <errno.h>
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
	if (!p->n_moves) {
		printf("cluster balanced: memory load spread %.1f points (threshold %.1f), "
		       "no moves\n",
		       p->spread_before, p->threshold_pct);
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

/*
 * `cluster balance`: ask the coordinator for a plan; print it; unless --dry-run, migrate
 * each VM with gw_ctl_cluster_migrate (the `cluster vm migrate` path), stopping at the
 * first move that fails. Exit 0 when balanced or every move is done, 1 otherwise.
 */
int gw_ctl_run_cluster_balance(const struct gw_ctl_args *a)
{
	GwClBalanceReq req = GW_CL_BALANCE_REQ__INIT;
	struct gw_client cl;
	ProtobufCMessage *rep = NULL;
	req.has_max_moves = req.has_threshold_pct = 1;
	req.max_moves = a->max_moves;
	req.threshold_pct = a->threshold_pct;
	int r = gw_client_connect(&cl, a->coord_socket, a->timeout_ms);
	if (!r)
		r = gw_client_call(&cl, GW_CL_MSG_TYPE__GW_CL_API_BALANCE, &req.base,
				   GW_CL_MSG_TYPE__GW_CL_API_BALANCE_REPLY,
				   &gw_cl_balance_plan__descriptor, &rep);
	gw_client_close(&cl);
	if (r) {
		gw_ctl_print_error(stdout, stderr, cl.err, -r, a->json);
		return EXIT_ERR;
	}
	const GwClBalancePlan *p = (const GwClBalancePlan *)rep;
	struct outcome *o = calloc(p->n_moves + 1, sizeof(*o));
	if (!o) {
		protobuf_c_message_free_unpacked(rep, NULL);
		gw_ctl_print_error(stdout, stderr, "out of memory", ENOMEM, a->json);
		return EXIT_ERR;
	}
	for (size_t i = 0; i < p->n_moves; i++)
		o[i].result = a->dry_run ? "planned" : "not run";
	if (!a->json)
		print_plan(p);
	fflush(stdout);

	size_t n_done = 0;
	char err[700] = "";
	for (size_t i = 0; !a->dry_run && i < p->n_moves; i++) {
		const GwClBalanceMove *m = p->moves[i];
		struct gw_ctl_cl_mig mig;
		if (gw_ctl_cluster_migrate(a, m->vm, m->to, !a->json, &mig)) {
			o[i].result = "failed";
			snprintf(o[i].err, sizeof(o[i].err), "%s", mig.err);
		} else {
			o[i].result = mig.result;
			o[i].total_ms = mig.total_ms;
			if (strcmp(mig.result, "completed") != 0)
				snprintf(o[i].err, sizeof(o[i].err), "%s", mig.err);
		}
		if (strcmp(o[i].result, "completed") != 0) {
			snprintf(err, sizeof(err), "move %zu of %zu (vm %s %s -> %s) %s: %s", i + 1,
				 p->n_moves, m->vm, m->from, m->to, o[i].result, o[i].err);
			break;
		}
		n_done++;
		if (!a->json)
			printf("vm %s: migrated %s -> %s in %llu ms\n", m->vm, mig.from, mig.to,
			       mig.total_ms);
		fflush(stdout);
	}
	const char *result = err[0]	   ? "failed"
			     : !p->n_moves ? "balanced"
			     : a->dry_run  ? "planned"
					   : "done";
	if (a->json)
		print_json(a, p, o, n_done, result, err[0] ? err : NULL);
	else if (err[0])
		fprintf(stderr, "godwitctl: balance stopped after %zu of %zu moves: %s\n", n_done,
			p->n_moves, err);
	else if (p->n_moves && a->dry_run)
		printf("dry run: nothing moved\n");
	else if (p->n_moves)
		printf("balanced: %zu of %zu moves done\n", n_done, p->n_moves);
	free(o);
	protobuf_c_message_free_unpacked(rep, NULL);
	return err[0] ? EXIT_ERR : EXIT_OK;
}
