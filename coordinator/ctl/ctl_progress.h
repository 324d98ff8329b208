/* ctl_progress.h -- godwitctl migration progress: bar, round lines, result lines, JSON (pure). */
#ifndef CTL_PROGRESS_H
#define CTL_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gw_json.h"
#include "migration.pb-c.h"

/* Guest page size the agent counts pages in (GwMigBegin.page_size on x86-64). */
#define GW_CTL_PAGE_SIZE 4096u
/* Width of the [#####-----] bar. */
#define GW_CTL_BAR_WIDTH 10

/* GwMigProgress.result as an enum; anything unknown is GW_CTL_MIG_OTHER (ended, not ok). */
enum gw_ctl_mig_result {
	GW_CTL_MIG_RUNNING,
	GW_CTL_MIG_COMPLETED,
	GW_CTL_MIG_FAILED,
	GW_CTL_MIG_CANCELLED,
	GW_CTL_MIG_OTHER,
};
enum gw_ctl_mig_result gw_ctl_mig_result(const GwMigProgress *p);

/* pages_sent / (pages_sent + pages_remaining) in percent, 0..100; 100 once completed. */
unsigned gw_ctl_progress_percent(const GwMigProgress *p);

/*
 * The terminal progress line, without \r or newline:
 *   [#####-----] 45% round 3 sent 512.0/1024.0 MiB dirty 12.3k p/s 2345 Mb/s ETA 3s throttle 20%
 * Parts whose fields are absent (or meaningless, like an ETA at zero throughput) are left
 * out; a phase other than iterate is named after the percentage. Agent strings are made
 * printable. Always NUL-terminates (truncating) when len > 0.
 */
void gw_ctl_progress_format(const GwMigProgress *p, char *buf, size_t len);

/*
 * One plain line for a new round (output that is not a terminal), without newline:
 *   round 3: sent 512.0 MiB, remaining 1200 pages, dirty 12300 pages/s, 2345 Mb/s
 */
void gw_ctl_progress_round_line(const GwMigProgress *p, char *buf, size_t len);

/*
 * The outcome as one line, without newline and without the program prefix:
 *   completed: "vm NAME: migration completed in 1234 ms (downtime 4.2 ms, 3 rounds,
 *              1024.0 MiB, 2345 Mb/s)"
 *   failed:    "vm 'NAME': migration failed: ERROR"
 *   cancelled: "vm 'NAME': migration cancelled"
 *   running:   "vm NAME: migration running (phase P, round R)"
 *   other:     "vm 'NAME': migration ended: RESULT"
 */
void gw_ctl_progress_result_line(const GwMigProgress *p, char *buf, size_t len);

/* `vm show`'s summary: "round R, phase P, N pages remaining, dirty D p/s". */
void gw_ctl_progress_show_line(const GwMigProgress *p, char *buf, size_t len);

/*
 * The migration as a JSON object with the keys, in order: name, result, error, peer,
 * total_ms, downtime_ms, rounds, bytes_transferred, pages_sent, pages_zero,
 * throughput_mbps, throttle_pct, migration_id; with status also phase, round,
 * pages_remaining, dirty_rate_pps, expected_downtime_ms. Absent optional fields (and
 * an empty error) are null; downtime_ms, throughput_mbps and expected_downtime_ms may be
 * fractional (at most 3 decimals).
 */
void gw_ctl_json_migration(struct gw_json *j, const GwMigProgress *p, bool status);

/* A finite double as a JSON number, at most 3 decimals ("4.2", "2345"); else null. */
void gw_ctl_json_double(struct gw_json *j, double v);

/* `vm migrate-status`: key: value lines. 0 or -EIO. */
int gw_ctl_print_migration_status(FILE *out, const GwMigProgress *p);

#endif
