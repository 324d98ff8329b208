/* test_migcost.c -- the pre-copy cost model (coordinator/planner/gw_migcost.c) against cases
 * computed by hand: rounds, data, time, downtime, convergence, and the edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gw_migcost.h"

#define MIB 1048576.0

static void near(double got, double want)
{
	double d = got - want;
	if (d < 0)
		d = -d;
	if (d > 1e-9 * (want < 0 ? -want : want) + 1e-12)
		fail_msg("got %.12g, want %.12g", got, want);
}

/* 1 GiB, 128 MiB/s link, 32 MiB/s dirty (ratio 1/4), 0.3 s limit: rounds send 1024, 256,
 * 64 MiB; then 16 MiB remain, 0.125 s <= 0.3 s: stop. 1360 MiB in 10.625 s. */
static void test_quarter_ratio(void **state)
{
	struct gw_migcost_in in = {.mem_bytes = 1024 * MIB,
				   .dirty_bps = 32 * MIB,
				   .bw_bps = 128 * MIB,
				   .downtime_limit_s = 0.3};
	struct gw_migcost c;
	gw_migcost_predict(&in, &c);
	assert_true(c.converges);
	assert_int_equal(c.rounds, 3);
	near(c.ratio, 0.25);
	near(c.data_bytes, 1360 * MIB);
	near(c.time_s, 10.625);
	near(c.downtime_s, 0.125);
	/* a 0.1 s limit needs one more round: 4 MiB left, 1/32 s */
	in.downtime_limit_s = 0.1;
	gw_migcost_predict(&in, &c);
	assert_true(c.converges);
	assert_int_equal(c.rounds, 4);
	near(c.data_bytes, 1364 * MIB);
	near(c.downtime_s, 4.0 / 128);
	/* with a switchover overhead of 0.05 s: 16 MiB + 0.05 = 0.175 s > 0.1; 4 MiB: 0.08125 */
	in.switch_overhead_s = 0.05;
	gw_migcost_predict(&in, &c);
	assert_int_equal(c.rounds, 4);
	near(c.downtime_s, 4.0 / 128 + 0.05);
	near(c.time_s, 1364.0 / 128 + 0.05);
}

/* An idle guest: one round, nothing left, no downtime beyond the overhead. */
static void test_idle(void **state)
{
	struct gw_migcost_in in = {
	    .mem_bytes = 512 * MIB, .bw_bps = 256 * MIB, .downtime_limit_s = 0.01};
	struct gw_migcost c;
	gw_migcost_predict(&in, &c);
	assert_true(c.converges);
	assert_int_equal(c.rounds, 1);
	near(c.data_bytes, 512 * MIB);
	near(c.time_s, 2.0);
	near(c.downtime_s, 0);
}

/* Dirtying as fast as (or faster than) the link: never converges unless all of memory fits
 * the downtime; the figures are those of forcing the switchover after max_rounds. */
static void test_not_converging(void **state)
{
	struct gw_migcost_in in = {.mem_bytes = 1024 * MIB,
				   .dirty_bps = 256 * MIB,
				   .bw_bps = 128 * MIB,
				   .downtime_limit_s = 0.3,
				   .max_rounds = 5};
	struct gw_migcost c;
	gw_migcost_predict(&in, &c);
	assert_false(c.converges);
	assert_int_equal(c.rounds, 5);
	near(c.ratio, 2);
	near(c.data_bytes, 6 * 1024 * MIB); /* each round capped at all of memory */
	near(c.downtime_s, 8);
	/* ratio 120/128 with 30 rounds: 1024 * (15/16)^k <= 38.4 needs k = 51 > 30 */
	in.dirty_bps = 120 * MIB;
	in.max_rounds = 30;
	gw_migcost_predict(&in, &c);
	assert_false(c.converges);
	in.max_rounds = 51;
	gw_migcost_predict(&in, &c);
	assert_true(c.converges);
	assert_int_equal(c.rounds, 51);
	in.max_rounds = 50;
	gw_migcost_predict(&in, &c);
	assert_false(c.converges);
	/* tiny memory fits the limit even at ratio 2: one round then stop */
	in.mem_bytes = 16 * MIB;
	in.dirty_bps = 256 * MIB;
	gw_migcost_predict(&in, &c);
	assert_true(c.converges);
	assert_int_equal(c.rounds, 1);
	near(c.downtime_s, 0.125);
}

/* Ratio 1/2: data = M (1 + 1/2 + ... + 1/2^k); the geometric sum by hand for k = 6. */
static void test_half_ratio(void **state)
{
	struct gw_migcost_in in = {.mem_bytes = 2048 * MIB,
				   .dirty_bps = 50 * MIB,
				   .bw_bps = 100 * MIB,
				   .downtime_limit_s = 0.5};
	struct gw_migcost c;
	gw_migcost_predict(&in, &c);
	/* remaining 2048/2^k MiB at 100 MiB/s <= 0.5 s: 2048/2^k <= 50: k = 6 (32 MiB) */
	assert_true(c.converges);
	assert_int_equal(c.rounds, 6);
	near(c.data_bytes, (2048 + 1024 + 512 + 256 + 128 + 64 + 32) * MIB);
	near(c.time_s, 4064.0 / 100);
	near(c.downtime_s, 0.32);
}

/* No bandwidth: nothing converges (except nothing to send with no overhead limit issue). */
static void test_no_bandwidth(void **state)
{
	struct gw_migcost_in in = {.mem_bytes = 64 * MIB, .downtime_limit_s = 1};
	struct gw_migcost c;
	gw_migcost_predict(&in, &c);
	assert_false(c.converges);
	in.mem_bytes = 0;
	gw_migcost_predict(&in, &c);
	assert_true(c.converges);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quarter_ratio),  cmocka_unit_test(test_idle),
	    cmocka_unit_test(test_not_converging), cmocka_unit_test(test_half_ratio),
	    cmocka_unit_test(test_no_bandwidth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
