/* planner_test_cl.h -- for the planner's unit tests (test_planner.c, test_planner_property.c):
 * a small cluster built by hand (hosts, VMs, rules), planned with gw_plan and applied back,
 * and the checks both files share (capacity, must-rule violations). */
#ifndef PLANNER_TEST_CL_H
#define PLANNER_TEST_CL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_planner.h"

#define MIB  1048576.0
#define MAXH 32
#define MAXV 512
#define MAXR 16

struct cl {
	struct gw_plan_host h[MAXH];
	size_t nh;
	struct gw_plan_vm v[MAXV];
	size_t nv;
	struct gw_plan_rule r[MAXR];
	size_t nr;
	char hn[MAXH][16], vn[MAXV][16], rn[MAXR][16], mig[MAXV][16];
	const char *rv[MAXR][MAXV], *rh[MAXR][MAXH];
};

static struct gw_plan_result *res; /* the last plan (plan()) */

static inline int setup(void **state)
{
	res = malloc(sizeof(*res));
	return res ? 0 : -1;
}

static inline int teardown(void **state)
{
	free(res);
	return 0;
}

static inline size_t host(struct cl *c, const char *name, double cpus, uint64_t mem)
{
	size_t i = c->nh++;
	snprintf(c->hn[i], sizeof(c->hn[i]), "%s", name);
	c->h[i] = (struct gw_plan_host){
	    .name = c->hn[i], .cpus = cpus, .mem_mib = mem, .bw_bps = 1000 * MIB};
	return i;
}

static inline size_t vm(struct cl *c, const char *name, size_t h, double cpu, uint32_t mem,
			double dirty)
{
	size_t i = c->nv++;
	snprintf(c->vn[i], sizeof(c->vn[i]), "%s", name);
	c->v[i] = (struct gw_plan_vm){.name = c->vn[i],
				      .host = c->hn[h],
				      .cpu = cpu,
				      .mem_mib = mem,
				      .dirty_bps = dirty * MIB};
	return i;
}

/* A rule over VMs (by index) and hosts (by index, -1 ends). */
static inline void rule(struct cl *c, const char *name, enum gw_plan_rule_kind kind, bool must,
			const int *vms, const int *hosts)
{
	size_t i = c->nr++, nv = 0, nh = 0;
	snprintf(c->rn[i], sizeof(c->rn[i]), "%s", name);
	for (; vms && vms[nv] >= 0; nv++)
		c->rv[i][nv] = c->vn[vms[nv]];
	for (; hosts && hosts[nh] >= 0; nh++)
		c->rh[i][nh] = c->hn[hosts[nh]];
	c->r[i] = (struct gw_plan_rule){.name = c->rn[i],
					.kind = kind,
					.must = must,
					.vms = c->rv[i],
					.n_vms = nv,
					.hosts = c->rh[i],
					.n_hosts = nh};
}

static inline struct gw_plan_input input(const struct cl *c)
{
	return (struct gw_plan_input){.hosts = c->h,
				      .n_hosts = c->nh,
				      .vms = c->v,
				      .n_vms = c->nv,
				      .rules = c->r,
				      .n_rules = c->nr};
}

static inline size_t vm_index(const struct cl *c, const char *name)
{
	for (size_t i = 0; i < c->nv; i++)
		if (strcmp(c->v[i].name, name) == 0)
			return i;
	fail_msg("no vm %s", name);
	return 0;
}

static inline size_t host_index(const struct cl *c, const char *name)
{
	for (size_t i = 0; i < c->nh; i++)
		if (strcmp(c->h[i].name, name) == 0)
			return i;
	fail_msg("no host %s", name);
	return 0;
}

/* The migrations finish: each moved VM now runs on its target. */
static inline void apply(struct cl *c, const struct gw_plan_result *p)
{
	for (uint32_t i = 0; i < p->n_moves; i++) {
		size_t v = vm_index(c, p->moves[i].vm);
		assert_string_equal(c->v[v].host, p->moves[i].from);
		c->v[v].host = c->hn[host_index(c, p->moves[i].to)];
	}
}

static inline void plan(const struct cl *c, const struct gw_plan_knobs *k,
			struct gw_plan_history *h)
{
	struct gw_plan_input in = input(c);
	assert_int_equal(gw_plan(&in, k, h, res), 0);
	if (h)
		*h = res->history;
}

static inline bool host_up(const struct cl *c, const char *name)
{
	return c->h[host_index(c, name)].state == GW_PLAN_HOST_UP;
}

/* Independent count of a rule's violations over up hosts (the planner's definition). */
static inline unsigned violations(const struct cl *c, const struct gw_plan_rule *r)
{
	unsigned n = 0, distinct = 0;
	for (size_t i = 0; i < r->n_vms; i++) {
		const char *h = c->v[vm_index(c, r->vms[i])].host;
		if (!host_up(c, h))
			continue;
		bool listed = false, seen = false;
		for (size_t j = 0; j < r->n_hosts; j++)
			listed |= strcmp(r->hosts[j], h) == 0;
		for (size_t j = 0; j < i; j++) {
			const char *o = c->v[vm_index(c, r->vms[j])].host;
			seen |= strcmp(o, h) == 0;
		}
		switch (r->kind) {
		case GW_PLAN_VM_HOST:
			n += !listed;
			break;
		case GW_PLAN_VM_NOT_HOST:
			n += listed;
			break;
		case GW_PLAN_ANTI_AFFINITY:
			n += seen;
			break;
		case GW_PLAN_AFFINITY:
			distinct += !seen;
			break;
		}
	}
	return r->kind == GW_PLAN_AFFINITY ? (distinct ? distinct - 1 : 0) : n;
}

static inline unsigned must_violations(const struct cl *c)
{
	unsigned n = 0;
	for (size_t i = 0; i < c->nr; i++)
		if (c->r[i].must)
			n += violations(c, &c->r[i]);
	return n;
}

/* Memory and CPU of every up host within its capacity. */
static inline void assert_capacity(const struct cl *c)
{
	for (size_t h = 0; h < c->nh; h++) {
		double cpu = 0, mem = 0;
		for (size_t v = 0; v < c->nv; v++)
			if (strcmp(c->v[v].host, c->h[h].name) == 0) {
				cpu += c->v[v].cpu;
				mem += c->v[v].mem_mib;
			}
		if (mem > (double)c->h[h].mem_mib || cpu > c->h[h].cpus * (1 + 1e-9))
			fail_msg("host %s over capacity: %.2f CPUs / %.0f MiB", c->h[h].name, cpu,
				 mem);
	}
}

static inline struct gw_plan_knobs knobs(int level)
{
	struct gw_plan_knobs k;
	gw_planner_knobs_for_aggressiveness(level, &k);
	return k;
}

static inline bool has_note(const struct gw_plan_result *p, enum gw_plan_note_code code,
			    const char *vm)
{
	for (uint32_t i = 0; i < p->n_notes; i++)
		if (p->notes[i].code == code && (!vm || strcmp(p->notes[i].vm, vm) == 0))
			return true;
	return false;
}

#endif
