/* gw_migcost.h -- predicted cost of one pre-copy live migration (the model of Liu et al., HPDC
 * 2011). */
#ifndef GW_MIGCOST_H
#define GW_MIGCOST_H

#include <stdbool.h>
#include <stdint.h>

#define GW_MIGCOST_DEFAULT_ROUNDS 30
#define GW_MIGCOST_MAX_ROUNDS	  1000

struct gw_migcost_in {
	double mem_bytes; /* M: guest memory to copy */
	double dirty_bps; /* D: bytes the guest dirties per second */
	double bw_bps;	  /* B: bytes per second this migration gets (its share of the link) */
	double downtime_limit_s;  /* largest acceptable stop-and-copy time */
	uint32_t max_rounds;	  /* pre-copy rounds before giving up (0: the default, 30) */
	double switch_overhead_s; /* fixed cost of the switchover (device state, resume), >= 0 */
};

struct gw_migcost {
	bool converges;	   /* the stop-and-copy fits the downtime limit within max_rounds */
	uint32_t rounds;   /* pre-copy rounds, the first full copy included (when converging) */
	double data_bytes; /* everything sent: the pre-copy rounds and the stop-and-copy */
	double time_s;	   /* from start to resume on the destination (data / B + overhead) */
	double downtime_s; /* the stop-and-copy of what is still dirty, plus the overhead */
	double ratio;	   /* D / B: each round sends this fraction of the one before */
};

/*
 * Predict a pre-copy migration. Round 0 sends all of M while the guest runs; round i
 * sends what the guest dirtied during round i-1, V_i = min(M, D * V_{i-1} / B), so
 * V_i = M * (D/B)^i while D < B. After k rounds the guest stops and the last V_k is sent:
 * downtime = V_k / B (+ overhead). k is the first round count (1..max_rounds) with
 * V_k / B + overhead <= the downtime limit; none: converges = false, and the figures
 * describe stopping after max_rounds (what forcing the switchover would cost). Pure
 * arithmetic (no libm), so every member computes the same bits.
 */
void gw_migcost_predict(const struct gw_migcost_in *in, struct gw_migcost *out);

#endif
