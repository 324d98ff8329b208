/* coord_progress.c -- migration progress for the status page: the member driving a migration
 * (its source host's) multicasts its agent's progress figures about once a second
 * (coord_migrate.c); every member keeps the newest per VM here, so the page on any member shows
 * every migration. This is not cluster state (never applied, never in snapshots): a member
 * that joins late sees progress from the next message on. */
#include "coord.h"

#include <stdio.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "progress"

static void keep(struct gw_coord *c, const GwClMigProgress *m)
{
	unsigned long long now = gw_now_mono_ms();
	struct gw_coord_mig_fig *slot = NULL, *oldest = NULL;
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS && !slot; i++) {
		struct gw_coord_mig_fig *f = &c->progress[i];
		if (f->vm[0] && strcmp(f->vm, m->vm) == 0)
			slot = f;
	}
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS && !slot; i++) {
		struct gw_coord_mig_fig *f = &c->progress[i];
		if (!f->vm[0] || now - f->seen_ms > GW_COORD_PROGRESS_KEEP_MS)
			slot = f;
		else if (!oldest || f->seen_ms < oldest->seen_ms)
			oldest = f;
	}
	if (!slot)
		slot = oldest;
	memset(slot, 0, sizeof(*slot));
	snprintf(slot->vm, sizeof(slot->vm), "%s", m->vm);
	snprintf(slot->from, sizeof(slot->from), "%s", m->from);
	snprintf(slot->to, sizeof(slot->to), "%s", m->to);
	slot->id = m->id;
	snprintf(slot->result, sizeof(slot->result), "%s", m->result);
	snprintf(slot->phase, sizeof(slot->phase), "%s", m->phase ? m->phase : "");
	slot->round = m->round;
	slot->throttle_pct = m->throttle_pct;
	slot->total_ms = m->total_ms;
	slot->bytes = m->bytes_transferred;
	slot->pages_sent = m->pages_sent;
	slot->pages_remaining = m->pages_remaining;
	slot->pages_total = m->pages_total;
	slot->dirty_pps = m->dirty_rate_pps;
	slot->mbps = m->throughput_mbps;
	slot->expected_downtime_ms = m->expected_downtime_ms;
	slot->downtime_ms = m->downtime_ms;
	slot->seen_ms = now;
}

void gw_coord_progress_deliver(struct gw_coord *c, const uint8_t *payload, size_t len)
{
	GwClMigProgress *m = gw_cl_mig_progress__unpack(NULL, len, payload);
	if (!m) {
		gw_warn(SUBSYS, "undecodable progress message (%zu bytes) ignored", len);
		return;
	}
	if (m->vm[0] && strlen(m->vm) < GW_COORD_NAME_MAX)
		keep(c, m);
	gw_cl_mig_progress__free_unpacked(m, NULL);
}

const struct gw_coord_mig_fig *gw_coord_progress_find(const struct gw_coord *c, const char *vm,
						      uint64_t id)
{
	unsigned long long now = gw_now_mono_ms();
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++) {
		const struct gw_coord_mig_fig *f = &c->progress[i];
		if (f->vm[0] && f->id == id && strcmp(f->vm, vm) == 0 &&
		    now - f->seen_ms <= GW_COORD_PROGRESS_KEEP_MS)
			return f;
	}
	return NULL;
}
