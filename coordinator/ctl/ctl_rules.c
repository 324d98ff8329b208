/* ctl_rules.c -- `godwitctl cluster rules add|list|remove`: the cluster's affinity rules
 * (VM-VM affinity / anti-affinity, VM-host / VM-not-host; must or should), replicated by the
 * coordinators through CPG. add and remove wait until this member has applied the change. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.pb-c.h"
#include "ctl_cluster.h"
#include "ctl_output.h"
#include "gw_client.h"
#include "gw_fsutil.h"
#include "gw_json.h"

enum { EXIT_OK = 0, EXIT_ERR = 1 };

static int fail(const struct gw_ctl_args *a, const char *err, int r)
{
	gw_ctl_print_error(stdout, stderr, err, r < 0 ? -r : r, a->json);
	return EXIT_ERR;
}

/* One GW_CL_API_RULE request; the reply is the rule list as this member holds it. */
static int rule_call(const struct gw_ctl_args *a, const char *action, GwClRule *rule,
		     GwClRuleList **out, char *err, size_t errlen)
{
	GwClRuleReq req = GW_CL_RULE_REQ__INIT;
	ProtobufCMessage *rep;
	req.action = (char *)action;
	req.rule = rule;
	int r = gw_client_request(a->coord_socket, a->timeout_ms, GW_CL_MSG_TYPE__GW_CL_API_RULE,
				  &req.base, GW_CL_MSG_TYPE__GW_CL_API_RULE_REPLY,
				  &gw_cl_rule_list__descriptor, &rep, err, errlen);
	*out = r ? NULL : (GwClRuleList *)rep;
	return r;
}

static const GwClRule *find_rule(const GwClRuleList *l, const char *name)
{
	for (size_t i = 0; l && i < l->n_rules; i++)
		if (strcmp(l->rules[i]->name, name) == 0)
			return l->rules[i];
	return NULL;
}

static bool same_names(char **x, size_t nx, char **y, size_t ny)
{
	if (nx != ny)
		return false;
	for (size_t i = 0; i < nx; i++)
		if (strcmp(x[i], y[i]) != 0)
			return false;
	return true;
}

/* Does l hold rule want (add) / no rule of that name (remove)? */
static bool applied(const GwClRuleList *l, const GwClRule *want, bool add)
{
	const GwClRule *r = find_rule(l, want->name);
	if (!add)
		return !r;
	return r && strcmp(r->kind, want->kind) == 0 && r->must == want->must &&
	       same_names(r->vms, r->n_vms, want->vms, want->n_vms) &&
	       same_names(r->hosts, r->n_hosts, want->hosts, want->n_hosts);
}

static void json_names(struct gw_json *j, const char *key, char **names, size_t n)
{
	gw_json_key(j, key);
	gw_json_arr_begin(j);
	for (size_t i = 0; i < n; i++)
		gw_json_str(j, names[i]);
	gw_json_arr_end(j);
}

static void print_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", names[i]);
	if (!n)
		printf("-");
}

/* The rule list: a JSON array (stable keys), or a table. */
static int print_rules(const struct gw_ctl_args *a, const GwClRuleList *l)
{
	if (!a->json) {
		printf("%-20s %-14s %-6s %-40s %s\n", "NAME", "KIND", "POLICY", "VMS", "HOSTS");
		for (size_t i = 0; i < l->n_rules; i++) {
			const GwClRule *r = l->rules[i];
			printf("%-20s %-14s %-6s ", r->name, r->kind, r->must ? "must" : "should");
			print_names(r->vms, r->n_vms);
			printf(" ");
			print_names(r->hosts, r->n_hosts);
			printf("\n");
		}
		return EXIT_OK;
	}
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_PRETTY);
	gw_json_arr_begin(&j);
	for (size_t i = 0; i < l->n_rules; i++) {
		const GwClRule *r = l->rules[i];
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "name", r->name);
		gw_json_kv_str(&j, "kind", r->kind);
		gw_json_kv_str(&j, "policy", r->must ? "must" : "should");
		json_names(&j, "vms", r->vms, r->n_vms);
		json_names(&j, "hosts", r->hosts, r->n_hosts);
		gw_json_obj_end(&j);
	}
	gw_json_arr_end(&j);
	int rc = gw_json_finish(&j) ? EXIT_ERR : EXIT_OK;
	if (rc == EXIT_OK)
		printf("%s\n", gw_json_text(&j, NULL));
	gw_json_free(&j);
	return rc;
}

/* Send add / del, then poll the list until this member applied it (CPG delivery) or the
 * cluster refused it (a full table: the rule never shows up), at most --timeout. */
static int change(const struct gw_ctl_args *a, const char *action, GwClRule *rule)
{
	char err[512];
	GwClRuleList *l;
	bool add = strcmp(action, "add") == 0;
	int r = rule_call(a, action, rule, &l, err, sizeof(err));
	if (r)
		return fail(a, err, r);
	unsigned long long t0 = gw_now_mono_ms();
	while (!applied(l, rule, add)) {
		gw_cl_rule_list__free_unpacked(l, NULL);
		if (a->timeout_ms && gw_now_mono_ms() - t0 >= (unsigned long long)a->timeout_ms) {
			snprintf(err, sizeof(err),
				 "rule %s: not %s after %d s (see godwitctl events: rule-refused)",
				 rule->name, add ? "in the cluster's rules" : "removed",
				 a->timeout_ms / 1000);
			return fail(a, err, ETIMEDOUT);
		}
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
		r = rule_call(a, "list", NULL, &l, err, sizeof(err));
		if (r)
			return fail(a, err, r);
	}
	if (!a->json)
		printf("rule %s %s\n", rule->name, add ? "added" : "removed");
	int rc = a->json ? print_rules(a, l) : EXIT_OK;
	gw_cl_rule_list__free_unpacked(l, NULL);
	return rc;
}

static int rules_add(const struct gw_ctl_args *a)
{
	char vbuf[GW_CTL_RULE_VMS][GW_CTL_NAME_MAX + 1],
	    hbuf[GW_CTL_RULE_HOSTS][GW_CTL_NAME_MAX + 1];
	char *vms[GW_CTL_RULE_VMS], *hosts[GW_CTL_RULE_HOSTS], err[512];
	GwClRule rule = GW_CL_RULE__INIT;
	int nv = gw_ctl_split_names(a->vms, "--vms", GW_CTL_RULE_VMS, vbuf, vms, err, sizeof(err));
	if (nv < 0)
		return fail(a, err, nv);
	int nh = 0;
	if (a->hosts) {
		nh = gw_ctl_split_names(a->hosts, "--hosts", GW_CTL_RULE_HOSTS, hbuf, hosts, err,
					sizeof(err));
		if (nh < 0)
			return fail(a, err, nh);
	}
	rule.name = (char *)a->pos[0];
	rule.kind = (char *)a->kind;
	rule.must = a->must;
	rule.n_vms = (size_t)nv;
	rule.vms = vms;
	rule.n_hosts = (size_t)nh;
	rule.hosts = hosts;
	return change(a, "add", &rule);
}

int gw_ctl_run_cluster_rules(const struct gw_ctl_args *a)
{
	if (a->cmd == GW_CTL_CMD_CLUSTER_RULES_ADD)
		return rules_add(a);
	if (a->cmd == GW_CTL_CMD_CLUSTER_RULES_REMOVE) {
		GwClRule rule = GW_CL_RULE__INIT;
		rule.name = (char *)a->pos[0];
		rule.kind = "";
		return change(a, "del", &rule);
	}
	char err[512];
	GwClRuleList *l;
	int r = rule_call(a, "list", NULL, &l, err, sizeof(err));
	if (r)
		return fail(a, err, r);
	int rc = print_rules(a, l);
	gw_cl_rule_list__free_unpacked(l, NULL);
	return rc;
}
