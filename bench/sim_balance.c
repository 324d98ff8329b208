/* sim_balance.c -- the balancing planner (coordinator/planner) on simulated clusters, no
 * daemons: generate hosts, VMs and rules from a seed, plan, apply the moves, drift the load,
 * repeat; beside it, on the same seed and the same drift, a plain greedy balancer that ignores
 * migration cost. With --optimal (small instances) the first plan is compared with the
 * brute-force optimum of the same objective, both with at most --optimal-depth moves (4).
 * Prints a table, or JSON (--json). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gw_migcost.h"
#include "gw_planner.h"

#define MIB 1048576.0
#define GIB 1073741824.0

static uint64_t rng_state;

static uint64_t rnd(void) /* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static double unif(double lo, double hi)
{
	return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}

struct sim {
	size_t nh, nv, nr;
	struct gw_plan_host *h;
	struct gw_plan_vm *v;
	struct gw_plan_rule *r;
	char (*hname)[16], (*vname)[16], (*rname)[16];
	const char **rvms, **rhosts;
	double *base_cpu, *factor; /* a VM's CPU = base x factor (drifting, shared by tracks) */
	uint32_t *at[2];	   /* host of each VM: [0] planner track, [1] greedy track */
};

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p) {
		fprintf(stderr, "sim_balance: out of memory\n");
		exit(1);
	}
	return p;
}

/* Hosts of three shapes on a 10 or 25 Gbit/s link; VMs mostly small, a few busy writers,
 * placed with a skew (hot hosts); anti-affinity pairs (must) and VM-host rules (should). */
static void generate(struct sim *s, size_t nh, size_t nv, bool rules)
{
	s->nh = nh;
	s->nv = nv;
	s->h = xcalloc(nh, sizeof(*s->h));
	s->hname = xcalloc(nh, sizeof(*s->hname));
	s->v = xcalloc(nv, sizeof(*s->v));
	s->vname = xcalloc(nv, sizeof(*s->vname));
	s->base_cpu = xcalloc(nv, sizeof(double));
	s->factor = xcalloc(nv, sizeof(double));
	s->at[0] = xcalloc(nv, sizeof(uint32_t));
	s->at[1] = xcalloc(nv, sizeof(uint32_t));
	double *cpu = xcalloc(nh, sizeof(double)), *mem = xcalloc(nh, sizeof(double));
	static const double cpus[] = {32, 48, 64};
	static const uint64_t mems[] = {262144, 393216, 524288};
	for (size_t i = 0; i < nh; i++) {
		snprintf(s->hname[i], sizeof(s->hname[i]), "host%04zu", i);
		int shape = (int)(rnd() % 3);
		s->h[i] = (struct gw_plan_host){.name = s->hname[i],
						.cpus = cpus[shape],
						.mem_mib = mems[shape],
						.bw_bps = (rnd() % 4 ? 1250 : 3125) * 1e6,
						.backend = "kvm"};
	}
	static const uint32_t vmem[] = {1024, 2048, 2048, 4096, 4096, 8192, 16384, 32768};
	for (size_t i = 0; i < nv; i++) {
		snprintf(s->vname[i], sizeof(s->vname[i]), "vm%06zu", i);
		double c = unif(0.1, 1.0) * unif(0.2, 4.0);
		uint32_t m = vmem[rnd() % 8];
		uint64_t kind = rnd() % 100;
		double dirty = kind < 70   ? unif(0.5, 20)
			       : kind < 95 ? unif(20, 200)
					   : unif(200, 1500);
		/* skew: half the VMs go to the lower-numbered of two random hosts */
		size_t a = rnd() % nh, b = rnd() % nh, h = a < b ? a : b;
		if (rnd() % 2 == 0)
			h = a;
		for (size_t t = 0; t < nh; t++, h = (h + 1) % nh)
			if (cpu[h] + c <= s->h[h].cpus && mem[h] + m <= s->h[h].mem_mib)
				break;
		cpu[h] += c;
		mem[h] += m;
		s->base_cpu[i] = c;
		s->factor[i] = 1;
		s->at[0][i] = s->at[1][i] = (uint32_t)h;
		s->v[i] = (struct gw_plan_vm){
		    .name = s->vname[i], .cpu = c, .mem_mib = m, .dirty_bps = dirty * MIB};
	}
	free(cpu);
	free(mem);
	if (!rules)
		return;
	s->nr = nv / 100 + 1;
	s->r = xcalloc(s->nr, sizeof(*s->r));
	s->rname = xcalloc(s->nr, sizeof(*s->rname));
	s->rvms = xcalloc(s->nr * 2, sizeof(char *));
	s->rhosts = xcalloc(s->nr, sizeof(char *));
	for (size_t i = 0; i < s->nr; i++) {
		snprintf(s->rname[i], sizeof(s->rname[i]), "rule%05zu", i);
		s->rvms[2 * i] = s->vname[rnd() % nv];
		s->rvms[2 * i + 1] = s->vname[rnd() % nv];
		bool anti = i % 2 == 0;
		s->rhosts[i] = s->hname[rnd() % nh];
		s->r[i] = (struct gw_plan_rule){.name = s->rname[i],
						.kind = anti ? GW_PLAN_ANTI_AFFINITY
							     : GW_PLAN_VM_NOT_HOST,
						.must = anti,
						.vms = &s->rvms[2 * i],
						.n_vms = anti ? 2 : 1,
						.hosts = &s->rhosts[i],
						.n_hosts = anti ? 0 : 1};
	}
}

/* The VMs' CPU use wanders (a bounded random walk of a factor 0.5 .. 2), dirty rates too. */
static void drift(struct sim *s)
{
	for (size_t i = 0; i < s->nv; i++) {
		double f = s->factor[i] * unif(0.85, 1.18);
		s->factor[i] = f < 0.5 ? 0.5 : f > 2 ? 2 : f;
		s->v[i].cpu = s->base_cpu[i] * s->factor[i];
		double d = s->v[i].dirty_bps * unif(0.8, 1.25);
		s->v[i].dirty_bps = d < 0.1 * MIB ? 0.1 * MIB : d > 2000 * MIB ? 2000 * MIB : d;
	}
}

static struct gw_plan_input track(struct sim *s, int t)
{
	for (size_t i = 0; i < s->nv; i++)
		s->v[i].host = s->hname[s->at[t][i]];
	return (struct gw_plan_input){.hosts = s->h,
				      .n_hosts = s->nh,
				      .vms = s->v,
				      .n_vms = s->nv,
				      .rules = s->r,
				      .n_rules = s->nr};
}

/* ---- the imbalance, computed here on index arrays (the planner's formula) ---- */
struct loads {
	double *c, *m; /* per host, normalised */
};

static void host_loads(const struct sim *s, const uint32_t *at, struct loads *l)
{
	memset(l->c, 0, s->nh * sizeof(double));
	memset(l->m, 0, s->nh * sizeof(double));
	for (size_t i = 0; i < s->nv; i++) {
		l->c[at[i]] += s->v[i].cpu / s->h[at[i]].cpus;
		l->m[at[i]] += s->v[i].mem_mib / (double)s->h[at[i]].mem_mib;
	}
}

static double cv_of(const double *x, size_t n)
{
	double s1 = 0, s2 = 0;
	for (size_t i = 0; i < n; i++) {
		s1 += x[i];
		s2 += x[i] * x[i];
	}
	double mean = s1 / n, var = s2 / n - mean * mean;
	double floor = GW_PLAN_DEF_CV_FLOOR; /* as the planner's knobs */
	return var > 0 && mean > 0 ? sqrt(var) / (mean > floor ? mean : floor) : 0;
}

static double imbalance(const struct sim *s, const struct loads *l)
{
	return 0.5 * cv_of(l->c, s->nh) + 0.5 * cv_of(l->m, s->nh);
}

static struct gw_migcost predict(const struct sim *s, size_t v, uint32_t from, uint32_t to)
{
	double bs = s->h[from].bw_bps / GW_PLAN_DEF_SLOTS, bt = s->h[to].bw_bps / GW_PLAN_DEF_SLOTS;
	struct gw_migcost_in in = {.mem_bytes = s->v[v].mem_mib * MIB,
				   .dirty_bps = s->v[v].dirty_bps,
				   .bw_bps = bs < bt ? bs : bt,
				   .downtime_limit_s = GW_PLAN_DEF_DOWNTIME_S};
	struct gw_migcost c;
	gw_migcost_predict(&in, &c);
	return c;
}

/* ---- the baseline: greedy, cost-blind ---- */
struct round_stats {
	double ms, cpu_ms, before, after, data_gib, time_s, down_s;
	unsigned moves, nonconv;
};

/*
 * Up to max_moves times: from the most loaded host (weighted CPU + memory) with a free out-slot,
 * the move of one of its VMs to one of the 16 least loaded hosts with a free in-slot that
 * lowers the imbalance most; capacity honoured, migration cost and convergence ignored.
 */
static void greedy_round(struct sim *s, unsigned max_moves, struct loads *l, struct round_stats *st)
{
	uint32_t *at = s->at[1];
	uint8_t *out = xcalloc(s->nh, 1), *in = xcalloc(s->nh, 1), *moved = xcalloc(s->nv, 1);
	size_t *ord = xcalloc(s->nh, sizeof(size_t));
	host_loads(s, at, l);
	st->before = imbalance(s, l);
	double cur = st->before;
	for (unsigned k = 0; k < max_moves; k++) {
		for (size_t i = 0; i < s->nh; i++) { /* selection by pressure, descending */
			size_t j = i;
			ord[i] = i;
			while (j > 0 && l->c[ord[j - 1]] + l->m[ord[j - 1]] < l->c[i] + l->m[i]) {
				ord[j] = ord[j - 1];
				j--;
			}
			ord[j] = i;
		}
		size_t src = s->nh;
		for (size_t i = 0; i < s->nh && src == s->nh; i++)
			if (out[ord[i]] < GW_PLAN_DEF_SLOTS)
				src = ord[i];
		double best = cur;
		size_t bv = 0, bt = 0;
		for (size_t v = 0; src < s->nh && v < s->nv; v++) {
			if (at[v] != src || moved[v])
				continue;
			for (size_t j = s->nh, n = 0; j-- > 0 && n < 16;) {
				size_t t = ord[j];
				if (t == src || in[t] >= GW_PLAN_DEF_SLOTS)
					continue;
				n++;
				double dc = s->v[v].cpu, dm = s->v[v].mem_mib;
				if ((l->c[t] * s->h[t].cpus + dc) > s->h[t].cpus ||
				    (l->m[t] * s->h[t].mem_mib + dm) > s->h[t].mem_mib)
					continue;
				double sc = l->c[src], sm = l->m[src], tc = l->c[t], tm = l->m[t];
				l->c[src] -= dc / s->h[src].cpus;
				l->m[src] -= dm / s->h[src].mem_mib;
				l->c[t] += dc / s->h[t].cpus;
				l->m[t] += dm / s->h[t].mem_mib;
				double im = imbalance(s, l);
				l->c[src] = sc, l->m[src] = sm, l->c[t] = tc, l->m[t] = tm;
				if (im < best - 1e-12) {
					best = im;
					bv = v;
					bt = t;
				}
			}
		}
		if (!(best < cur))
			break;
		struct gw_migcost c = predict(s, bv, (uint32_t)src, (uint32_t)bt);
		st->nonconv += !c.converges;
		st->data_gib += c.data_bytes / GIB;
		st->time_s += c.time_s;
		st->down_s += c.downtime_s;
		st->moves++;
		out[src]++;
		in[bt]++;
		moved[bv] = 1;
		at[bv] = (uint32_t)bt;
		host_loads(s, at, l);
		cur = imbalance(s, l);
	}
	st->after = cur;
	free(out);
	free(in);
	free(moved);
	free(ord);
}

/* ---- the planner's track ---- */
static double now_ms(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t idx_of(const char *name, const char *prefix)
{
	return (size_t)strtoul(name + strlen(prefix), NULL, 10);
}

static int planner_round(struct sim *s, const struct gw_plan_knobs *k, struct gw_plan_history *h,
			 struct gw_plan_result *res, struct round_stats *st)
{
	struct gw_plan_input in = track(s, 0);
	double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
	int r = gw_plan(&in, k, h, res);
	st->ms = now_ms(CLOCK_MONOTONIC) - t0; /* wall: what the target is about */
	st->cpu_ms = now_ms(CLOCK_THREAD_CPUTIME_ID) - c0; /* CPU: steadier on a busy machine */
	if (r)
		return r;
	*h = res->history;
	if (getenv("SIM_NOTES")) /* debugging aid: why the planner stopped */
		for (uint32_t i = 0; i < res->n_notes; i++)
			fprintf(stderr, "  note %s: %s\n", gw_plan_note_name(res->notes[i].code),
				res->notes[i].text);
	st->before = res->imbalance_before;
	st->after = res->imbalance_after;
	st->moves = res->n_moves;
	for (uint32_t i = 0; i < res->n_moves; i++) {
		const struct gw_plan_move *m = &res->moves[i];
		s->at[0][idx_of(m->vm, "vm")] = (uint32_t)idx_of(m->to, "host");
		st->data_gib += m->data_mib / 1024;
		st->time_s += m->time_s;
		st->down_s += m->downtime_s;
	}
	return 0;
}

/* ---- brute force (small instances): the best set of at most depth moves ---- */
struct bf {
	struct sim *s;
	const struct gw_plan_knobs *k;
	uint32_t *at;
	double *res_c, *res_m;
	uint8_t *out, *in, *moved;
	struct loads l;
	double i0, best;
	unsigned depth;
};

static double objective(struct bf *b, double cost)
{
	host_loads(b->s, b->at, &b->l);
	return (double)b->s->nh * (b->i0 - imbalance(b->s, &b->l)) - cost;
}

static void bf_search(struct bf *b, unsigned d, size_t from_v, double cost)
{
	double o = objective(b, cost);
	if (o > b->best) {
		b->best = o;
		if (getenv("SIM_DEBUG")) { /* debugging aid: the optimum's moves */
			fprintf(stderr, "bf best %.5f:", o);
			for (size_t v = 0; v < b->s->nv; v++)
				if (b->moved[v])
					fprintf(stderr, " vm%zu->%u", v, b->at[v]);
			fprintf(stderr, "\n");
		}
	}
	if (d == b->depth)
		return;
	struct sim *s = b->s;
	for (size_t v = from_v; v < s->nv; v++) {
		uint32_t src = b->at[v];
		if (b->moved[v] || b->out[src] >= GW_PLAN_DEF_SLOTS)
			continue;
		for (uint32_t t = 0; t < s->nh; t++) {
			if (t == src || b->in[t] >= GW_PLAN_DEF_SLOTS ||
			    b->res_c[t] + s->v[v].cpu > s->h[t].cpus * (1 + 1e-12) ||
			    b->res_m[t] + s->v[v].mem_mib > s->h[t].mem_mib)
				continue;
			struct gw_migcost c = predict(s, v, src, t);
			if (!c.converges)
				continue;
			double mc = b->k->cost_per_gib * c.data_bytes / GIB +
				    b->k->cost_per_down_s * c.downtime_s;
			b->moved[v] = 1;
			b->out[src]++;
			b->in[t]++;
			b->res_c[t] += s->v[v].cpu;
			b->res_m[t] += s->v[v].mem_mib;
			b->at[v] = t;
			bf_search(b, d + 1, v + 1, cost + mc);
			b->at[v] = src;
			b->res_c[t] -= s->v[v].cpu;
			b->res_m[t] -= s->v[v].mem_mib;
			b->in[t]--;
			b->out[src]--;
			b->moved[v] = 0;
		}
	}
}

/* The planner's objective on the first round (acting at once, at most depth moves) over the
 * optimum's (the best set of at most depth moves); *plan_moves: the plan's moves. */
static double optimum_ratio(struct sim *s, const struct gw_plan_knobs *k0, unsigned depth,
			    double *plan_obj, double *opt_obj, unsigned *plan_moves)
{
	struct gw_plan_knobs k = *k0;
	k.threshold = 0;
	k.hold = 1;
	k.margin = 0;
	k.max_moves = depth;
	struct gw_plan_result *res = xcalloc(1, sizeof(*res));
	struct gw_plan_input in = track(s, 0);
	struct bf b = {.s = s, .k = &k, .depth = depth};
	b.at = xcalloc(s->nv, sizeof(uint32_t));
	b.res_c = xcalloc(s->nh, sizeof(double));
	b.res_m = xcalloc(s->nh, sizeof(double));
	b.out = xcalloc(s->nh, 1);
	b.in = xcalloc(s->nh, 1);
	b.moved = xcalloc(s->nv, 1);
	b.l.c = xcalloc(s->nh, sizeof(double));
	b.l.m = xcalloc(s->nh, sizeof(double));
	memcpy(b.at, s->at[0], s->nv * sizeof(uint32_t));
	for (size_t v = 0; v < s->nv; v++) {
		b.res_c[b.at[v]] += s->v[v].cpu;
		b.res_m[b.at[v]] += s->v[v].mem_mib;
	}
	host_loads(s, b.at, &b.l);
	b.i0 = imbalance(s, &b.l);
	b.best = 0;
	bf_search(&b, 0, 0, 0);
	*opt_obj = b.best;
	double cost = 0;
	*plan_moves = 0;
	if (gw_plan(&in, &k, NULL, res) == 0) {
		*plan_moves = res->n_moves;
		for (uint32_t i = 0; i < res->n_moves; i++) {
			if (getenv("SIM_DEBUG"))
				fprintf(stderr, "plan %s %s->%s score %.5f cost %.5f\n",
					res->moves[i].vm, res->moves[i].from, res->moves[i].to,
					res->moves[i].score, res->moves[i].cost);
			b.at[idx_of(res->moves[i].vm, "vm")] =
			    (uint32_t)idx_of(res->moves[i].to, "host");
			cost += res->moves[i].cost;
		}
	}
	*plan_obj = objective(&b, cost);
	free(b.at), free(b.res_c), free(b.res_m), free(b.out), free(b.in), free(b.moved);
	free(b.l.c), free(b.l.m), free(res);
	return *opt_obj > 0 ? *plan_obj / *opt_obj : 1;
}

/* ---- main ---- */
static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pctl(double *x, size_t n, double p)
{
	qsort(x, n, sizeof(*x), cmp_d);
	size_t i = (size_t)ceil(p * n) - 1;
	return n ? x[i < n ? i : n - 1] : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: sim_balance [--hosts N] [--vms M] [--seed S] [--rounds R]\n"
			"                   [--aggressiveness 1-5] [--max-moves K] [--no-rules]\n"
			"                   [--optimal [--optimal-depth D]] [--json]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	size_t nh = 1000, nv = 30000;
	unsigned rounds = 20, seed = 1, level = 3, max_moves = 0, opt_depth = 4, plan_moves = 0;
	bool json = false, optimal = false, rules = true;
	static const struct option opts[] = {
	    {"hosts", 1, 0, 'H'},	   {"vms", 1, 0, 'V'},
	    {"seed", 1, 0, 's'},	   {"rounds", 1, 0, 'r'},
	    {"aggressiveness", 1, 0, 'a'}, {"max-moves", 1, 0, 'k'},
	    {"optimal", 0, 0, 'o'},	   {"optimal-depth", 1, 0, 'd'},
	    {"json", 0, 0, 'j'},	   {"no-rules", 0, 0, 'n'},
	    {"help", 0, 0, 'h'},	   {0, 0, 0, 0}};
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (c) {
		case 'H':
			nh = strtoul(optarg, NULL, 10);
			break;
		case 'V':
			nv = strtoul(optarg, NULL, 10);
			break;
		case 's':
			seed = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rounds = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'a':
			level = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			max_moves = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			optimal = true;
			break;
		case 'd':
			opt_depth = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'j':
			json = true;
			break;
		case 'n':
			rules = false;
			break;
		default:
			usage();
		}
	}
	if (nh < 2 || nv < 1 || rounds < 1)
		usage();
	rng_state = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seed * 0xbf58476d1ce4e5b9ULL);
	struct sim s = {0};
	generate(&s, nh, nv, rules && !optimal);
	struct gw_plan_knobs k;
	gw_planner_knobs_for_aggressiveness((int)level, &k);
	if (max_moves)
		k.max_moves = max_moves;
	if (getenv("SIM_SCAN")) /* experiments: "sources,targets,cost_per_gib" */
		sscanf(getenv("SIM_SCAN"), "%u,%u,%lf", &k.scan_sources, &k.scan_targets,
		       &k.cost_per_gib);

	double ratio = -1, plan_obj = 0, opt_obj = 0;
	if (optimal) {
		if (nh > 6 || nv > 12) {
			fprintf(stderr, "sim_balance: --optimal wants at most 6 hosts x 12 VMs\n");
			return 2;
		}
		/* plan and brute force alike: at most opt_depth moves (default 4, at most
		 * max_moves: deeper than the planner's own lookahead on these instances, 3 or 4) */
		if (opt_depth < 1 || opt_depth > 6) {
			fprintf(stderr, "sim_balance: --optimal-depth wants 1 to 6\n");
			return 2;
		}
		if (opt_depth > k.max_moves)
			opt_depth = k.max_moves;
		ratio = optimum_ratio(&s, &k, opt_depth, &plan_obj, &opt_obj, &plan_moves);
	}
	struct gw_plan_result *res = xcalloc(1, sizeof(*res));
	struct gw_plan_history hist = {0};
	struct loads l = {xcalloc(nh, sizeof(double)), xcalloc(nh, sizeof(double))};
	struct round_stats *a = xcalloc(rounds, sizeof(*a)), *g = xcalloc(rounds, sizeof(*g));
	double *ms = xcalloc(rounds, sizeof(double)), *cpu_ms = xcalloc(rounds, sizeof(double));
	struct round_stats ta = {0}, tg = {0};
	if (json)
		printf("{\"hosts\": %zu, \"vms\": %zu, \"seed\": %u, \"aggressiveness\": %u, "
		       "\"max_moves\": %u, \"rounds\": [",
		       nh, nv, seed, level, k.max_moves);
	else
		printf("sim_balance: %zu hosts, %zu VMs, %zu rules, seed %u, aggressiveness %u "
		       "(threshold %.2f, hold %u, margin %.3f, max moves %u)\n"
		       "round  plan_ms moves  imbalance        GiB sent | greedy: moves imbalance"
		       "        GiB sent nonconv\n",
		       nh, nv, s.nr, seed, level, k.threshold, k.hold, k.margin, k.max_moves);
	for (unsigned r = 0; r < rounds; r++) {
		if (planner_round(&s, &k, &hist, res, &a[r])) {
			fprintf(stderr, "sim_balance: gw_plan failed\n");
			return 1;
		}
		greedy_round(&s, k.max_moves ? k.max_moves : 8, &l, &g[r]);
		ms[r] = a[r].ms;
		cpu_ms[r] = a[r].cpu_ms;
		ta.moves += a[r].moves, ta.data_gib += a[r].data_gib, ta.down_s += a[r].down_s;
		ta.time_s += a[r].time_s;
		tg.moves += g[r].moves, tg.data_gib += g[r].data_gib, tg.down_s += g[r].down_s;
		tg.time_s += g[r].time_s, tg.nonconv += g[r].nonconv;
		if (json)
			printf(
			    "%s\n  {\"round\": %u, \"plan_ms\": %.3f, \"plan_cpu_ms\": %.3f, "
			    "\"moves\": %u, "
			    "\"imbalance_before\": %.5f, \"imbalance_after\": %.5f, \"data_gib\": "
			    "%.2f, \"downtime_s\": %.3f, \"greedy\": {\"moves\": %u, "
			    "\"imbalance_before\": %.5f, \"imbalance_after\": %.5f, \"data_gib\": "
			    "%.2f, \"nonconvergent\": %u}}",
			    r ? "," : "", r + 1, a[r].ms, a[r].cpu_ms, a[r].moves, a[r].before,
			    a[r].after, a[r].data_gib, a[r].down_s, g[r].moves, g[r].before,
			    g[r].after, g[r].data_gib, g[r].nonconv);
		else
			printf("%5u %8.2f %5u  %.4f -> %.4f %8.1f | %13u %.4f -> %.4f %8.1f %7u\n",
			       r + 1, a[r].ms, a[r].moves, a[r].before, a[r].after, a[r].data_gib,
			       g[r].moves, g[r].before, g[r].after, g[r].data_gib, g[r].nonconv);
		drift(&s);
	}
	double med = pctl(ms, rounds, 0.5), p99 = pctl(ms, rounds, 0.99);
	double cmed = pctl(cpu_ms, rounds, 0.5), cp99 = pctl(cpu_ms, rounds, 0.99);
	double i0 = a[0].before, ia = a[rounds - 1].after, ig = g[rounds - 1].after;
	double impr = ig < i0 ? (i0 - ia) / (i0 - ig) : 0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	if (json) {
		printf("\n], \"plan_ms\": %.3f, \"plan_ms_p99\": %.3f, \"plan_cpu_ms\": %.3f, "
		       "\"plan_cpu_ms_p99\": %.3f, \"imbalance_before\": %.5f, "
		       "\"imbalance_after\": %.5f, \"moves\": %u, \"data_gib\": %.1f, "
		       "\"migration_s\": %.1f, \"downtime_s\": %.2f, \"greedy\": "
		       "{\"imbalance_after\": "
		       "%.5f, \"moves\": %u, \"data_gib\": %.1f, \"migration_s\": %.1f, "
		       "\"nonconvergent\": %u}, \"improvement_vs_greedy\": %.4f, \"peak_rss_kib\": "
		       "%ld",
		       med, p99, cmed, cp99, i0, ia, ta.moves, ta.data_gib, ta.time_s, ta.down_s,
		       ig, tg.moves, tg.data_gib, tg.time_s, tg.nonconv, impr, ru.ru_maxrss);
		if (optimal)
			printf(", \"optimum_depth\": %u, \"optimum_plan_moves\": %u, "
			       "\"optimum_ratio\": %.4f, \"plan_objective\": %.5f, "
			       "\"optimum_objective\": %.5f",
			       opt_depth, plan_moves, ratio, plan_obj, opt_obj);
		printf("}\n");
	} else {
		printf(
		    "plan time per round: median %.2f ms, p99 %.2f ms (CPU: %.2f, %.2f); peak RSS "
		    "%ld KiB\n",
		    med, p99, cmed, cp99, ru.ru_maxrss);
		printf("planner: %u moves, imbalance %.4f -> %.4f, %.1f GiB sent, %.0f s of "
		       "migration, %.2f s downtime (predicted)\n",
		       ta.moves, i0, ia, ta.data_gib, ta.time_s, ta.down_s);
		printf("greedy:  %u moves, imbalance %.4f -> %.4f, %.1f GiB sent, %.0f s of "
		       "migration, %.2f s downtime, %u moves that would not converge\n",
		       tg.moves, i0, ig, tg.data_gib, tg.time_s, tg.down_s, tg.nonconv);
		printf("improvement vs greedy: %.1f %% of its imbalance reduction for %.1f %% of "
		       "its data\n",
		       100 * impr, tg.data_gib > 0 ? 100 * ta.data_gib / tg.data_gib : 0);
		if (optimal)
			printf(
			    "optimum (at most %u moves): planner objective %.5f (%u moves), brute "
			    "force %.5f: ratio %.3f\n",
			    opt_depth, plan_obj, plan_moves, opt_obj, ratio);
	}
	return 0;
}
