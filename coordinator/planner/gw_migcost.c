/* gw_migcost.c -- pre-copy migration cost model: rounds, data, time and downtime of one move. */
#include "gw_migcost.h"

#include <string.h>

void gw_migcost_predict(const struct gw_migcost_in *in, struct gw_migcost *out)
{
	uint32_t max = in->max_rounds ? in->max_rounds : GW_MIGCOST_DEFAULT_ROUNDS;
	double m = in->mem_bytes > 0 ? in->mem_bytes : 0;
	double d = in->dirty_bps > 0 ? in->dirty_bps : 0;
	double b = in->bw_bps;
	double over = in->switch_overhead_s > 0 ? in->switch_overhead_s : 0;

	if (max > GW_MIGCOST_MAX_ROUNDS)
		max = GW_MIGCOST_MAX_ROUNDS;
	memset(out, 0, sizeof(*out));
	if (!(b > 0)) { /* no bandwidth (or NaN): nothing ever arrives */
		out->converges = m == 0 && over <= in->downtime_limit_s;
		out->downtime_s = over;
		out->time_s = over;
		out->rounds = out->converges ? 1 : max;
		return;
	}
	out->ratio = d / b;
	double sent = m; /* round 0: all of memory */
	double v = m;	 /* what round k would send */
	uint32_t k;
	for (k = 1; k <= max; k++) {
		v = v * out->ratio;
		if (v > m)
			v = m; /* a guest cannot dirty more than its memory */
		if (v / b + over <= in->downtime_limit_s)
			break;
		if (k == max)
			break;
		sent += v; /* not yet: another pre-copy round */
	}
	out->converges = k <= max && v / b + over <= in->downtime_limit_s;
	out->rounds = k > max ? max : k;
	out->data_bytes = sent + v;
	out->downtime_s = v / b + over;
	out->time_s = out->data_bytes / b + over;
}
