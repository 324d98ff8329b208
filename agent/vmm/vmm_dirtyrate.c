/* vmm_dirtyrate.c -- the guest's dirty rate outside migrations, for the balancer's load model:
 * short samples of the VMM's own dirty log, started and read as the agent polls the status
 * (one poll starts a sample, the next one reads and ends it), never while a migration runs. */
#include <stdlib.h>
#include <string.h>

#include "gw_fsutil.h"
#include "vmm.h"
#include "vmm_internal.h"

#define SAMPLE_MIN_NS 200000000ull  /* a sample shorter than this is read at the next poll */
#define SAMPLE_GAP_NS 2000000000ull /* no dirty logging for this long after a sample */

void gw_vmm_dirtyrate_stop(struct gw_vmm *vmm, struct gw_vmm_dirtyrate *d)
{
	if (!d->on)
		return;
	gw_vmm_dirty_stop(vmm);
	vmm->dirty_quiet = false;
	d->on = false;
	d->next_ns = gw_now_mono_ns() + SAMPLE_GAP_NS;
}

static void sample_end(struct gw_vmm *vmm, struct gw_vmm_dirtyrate *d, uint64_t now)
{
	size_t words = gw_vmm_dirty_words(vmm);
	if (!d->bm || d->words != words) {
		free(d->bm);
		d->bm = calloc(words ? words : 1, sizeof(uint64_t));
		d->words = d->bm ? words : 0;
	}
	if (d->bm) {
		memset(d->bm, 0, d->words * sizeof(uint64_t));
		if (gw_vmm_dirty_sync(vmm, d->bm) >= 0) {
			uint64_t pages = 0;
			for (size_t i = 0; i < d->words; i++)
				pages += (uint64_t)__builtin_popcountll(d->bm[i]);
			d->rate_pps = pages * 1000000000ull / (now - d->since_ns);
			d->has = true;
		}
	}
	gw_vmm_dirtyrate_stop(vmm, d);
}

void gw_vmm_dirtyrate_poll(struct gw_vmm *vmm, struct gw_vmm_dirtyrate *d, bool allowed)
{
	uint64_t now = gw_now_mono_ns();
	if (!allowed) {
		gw_vmm_dirtyrate_stop(vmm, d);
		return;
	}
	if (d->on) {
		if (now - d->since_ns >= SAMPLE_MIN_NS)
			sample_end(vmm, d, now);
		return;
	}
	if (now < d->next_ns)
		return;
	vmm->dirty_quiet = true;
	if (gw_vmm_dirty_start(vmm) != 0) {
		vmm->dirty_quiet = false;
		return;
	}
	d->on = true;
	d->since_ns = now;
}
