/* agent_metrics.c -- the agent's Prometheus metrics: VMs by state, each VM's shape, and the
 * migrations that ended since the agent started, with the last result of each VM. */
#include "agent_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_migrate.h"
#include "driver.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "migration.pb-c.h"
#include "vmtable.h"

#define SUBSYS	  "metrics"
#define TRACK_MAX 256 /* migrations in flight watched at once */
#define LAST_MAX  64  /* VMs whose last migration is kept (oldest forgotten first) */

/* Migrations in flight: a VM in state migrating with this id. */
static struct {
	char name[GW_NAME_MAX];
	uint64_t id;
} track[TRACK_MAX];
static size_t n_track;
static bool track_full_warned;

/* The last ended migration of a VM, as its process recorded it (migration.pb). */
struct mig_last {
	char name[GW_NAME_MAX]; /* "" = free */
	char role[16];		/* source | destination */
	char result[16];	/* completed | failed | cancelled */
	uint64_t total_ms, bytes;
	bool has_resent; /* a source's record: pages_resent */
	uint64_t pages_resent;
	double downtime_ms;
	unsigned long long seq; /* newer = larger */
};
static struct mig_last last[LAST_MAX];
static unsigned long long last_seq;

/* Migrations that ended since the agent started, by result; "unknown" = the VM's process
 * ended without writing its result. */
static const char *const results[] = {"completed", "failed", "cancelled", "unknown"};
#define N_RESULTS (sizeof(results) / sizeof(results[0]))
static unsigned long long ended[N_RESULTS];

/* A migration's record as the VM's driver keeps it (the one record the CLI and the
 * coordinator read too): the VM's own while it is here, else the one the agent kept when it
 * left. NULL when there is none. */
static GwMigProgress *record_of(struct gw_agent *ag, const char *name)
{
	char err[256];
	GwMigProgress *p = NULL;
	struct gw_vm *vm = gw_vmtable_find(&ag->vms, name);
	const struct gw_driver_ops *ops = vm ? gw_vm_ops(ag, vm) : NULL;
	if (ops && ops->progress && ops->progress(ag, vm, &p, err, sizeof(err)) == 0)
		return p;
	return gw_agent_mig_recent(name);
}

/* The ended migration id of name into out; -ENOENT (no record), -ESTALE (another
 * migration's) or -EAGAIN (still running). */
static int read_result(struct gw_agent *ag, const char *name, uint64_t id, struct mig_last *out)
{
	GwMigProgress *p = record_of(ag, name);
	if (!p)
		return -ENOENT;
	int r = 0;
	if (id && p->has_migration_id && p->migration_id != id)
		r = -ESTALE;
	else if (!strcmp(p->result, "running"))
		r = -EAGAIN;
	if (!r) {
		memset(out, 0, sizeof(*out));
		snprintf(out->name, sizeof(out->name), "%s", p->name);
		snprintf(out->role, sizeof(out->role), "%s", p->role ? p->role : "");
		snprintf(out->result, sizeof(out->result), "%s", p->result);
		out->total_ms = p->has_total_ms ? p->total_ms : 0;
		out->downtime_ms = p->has_downtime_ms ? p->downtime_ms : 0;
		out->bytes = p->has_bytes_transferred ? p->bytes_transferred : 0;
		out->has_resent = p->has_pages_resent;
		out->pages_resent = p->has_pages_resent ? p->pages_resent : 0;
	}
	gw_mig_progress__free_unpacked(p, NULL);
	return r;
}

/* Keep m as name's last migration (one slot per VM; the oldest slot goes when full). */
static void remember(const char *name, const struct mig_last *m)
{
	struct mig_last *slot = NULL, *oldest = &last[0];
	for (size_t i = 0; i < LAST_MAX && !slot; i++)
		if (!strcmp(last[i].name, name))
			slot = &last[i];
	for (size_t i = 0; i < LAST_MAX && !slot; i++)
		if (!last[i].name[0])
			slot = &last[i];
	for (size_t i = 0; i < LAST_MAX && !slot; i++)
		if (last[i].seq < oldest->seq)
			oldest = &last[i];
	if (!slot)
		slot = oldest;
	*slot = *m;
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->seq = ++last_seq;
}

void gw_agent_metrics_init(struct gw_agent *ag)
{
	struct mig_last m;
	for (size_t i = 0; i < ag->vms.count; i++)
		if (read_result(ag, ag->vms.vms[i]->name, 0, &m) == 0)
			remember(ag->vms.vms[i]->name, &m);
}

/* The migration of name with this id ended: count it by its result. */
static void migration_ended(struct gw_agent *ag, const char *name, uint64_t id)
{
	struct mig_last m;
	int r = read_result(ag, name, id, &m);
	size_t k = N_RESULTS - 1;
	if (r == 0) {
		for (size_t i = 0; i < N_RESULTS - 1; i++)
			if (!strcmp(m.result, results[i]))
				k = i;
		remember(name, &m);
	} else {
		gw_info(SUBSYS, "vm '%s': migration %llu ended without a result record (%s)", name,
			(unsigned long long)id, strerror(-r));
	}
	ended[k]++;
}

void gw_agent_metrics_tick(struct gw_agent *ag)
{
	for (size_t i = 0; i < ag->vms.count; i++) {
		const struct gw_vm *vm = ag->vms.vms[i];
		if (vm->state != GW_VM_MIGRATING || !vm->mig_id)
			continue;
		bool known = false;
		for (size_t k = 0; k < n_track && !known; k++)
			known = track[k].id == vm->mig_id && !strcmp(track[k].name, vm->name);
		if (known)
			continue;
		if (n_track == TRACK_MAX) {
			if (!track_full_warned)
				gw_warn(SUBSYS,
					"more than %d migrations at once: vm '%s' not counted",
					TRACK_MAX, vm->name);
			track_full_warned = true;
			continue;
		}
		snprintf(track[n_track].name, sizeof(track[n_track].name), "%s", vm->name);
		track[n_track++].id = vm->mig_id;
	}
	for (size_t k = n_track; k-- > 0;) {
		const struct gw_vm *vm = gw_vmtable_find(&ag->vms, track[k].name);
		if (vm && vm->state == GW_VM_MIGRATING && vm->mig_id == track[k].id)
			continue;
		migration_ended(ag, track[k].name, track[k].id);
		track[k] = track[--n_track];
	}
}

void gw_agent_metrics_render(void *ctx, struct gw_mtext *t)
{
	struct gw_agent *ag = ctx;
	const struct gw_vmtable *vt = &ag->vms;

	gw_mtext_family(t, "godwit_agent_vms", "gauge", "VMs on this agent, by state.");
	for (int s = GW_VM_DEFINED; s <= GW_VM_MIGRATING; s++) {
		unsigned n = 0;
		for (size_t i = 0; i < vt->count; i++)
			n += vt->vms[i]->state == (enum gw_vm_state)s;
		gw_mtext_sample(t, "godwit_agent_vms", n, "state",
				gw_vm_state_name((enum gw_vm_state)s), NULL);
	}
	gw_mtext_family(t, "godwit_vm_running", "gauge",
			"1 when the agent reports the VM running, else 0.");
	for (size_t i = 0; i < vt->count; i++)
		gw_mtext_sample(t, "godwit_vm_running", vt->vms[i]->state == GW_VM_RUNNING, "vm",
				vt->vms[i]->name, NULL);
	gw_mtext_family(t, "godwit_vm_backend", "gauge",
			"1 for the VM backend that runs (ran) the VM: kvm or process.");
	for (size_t i = 0; i < vt->count; i++)
		if (vt->vms[i]->backend[0])
			gw_mtext_sample(t, "godwit_vm_backend", 1, "vm", vt->vms[i]->name,
					"backend", vt->vms[i]->backend, NULL);
	gw_mtext_family(t, "godwit_vm_memory_bytes", "gauge", "Guest memory of the VM.");
	for (size_t i = 0; i < vt->count; i++)
		gw_mtext_sample(t, "godwit_vm_memory_bytes",
				(double)vt->vms[i]->memory_mib * 1048576.0, "vm", vt->vms[i]->name,
				NULL);
	gw_mtext_family(t, "godwit_vm_vcpus", "gauge", "vCPUs of the VM.");
	for (size_t i = 0; i < vt->count; i++)
		gw_mtext_sample(t, "godwit_vm_vcpus", vt->vms[i]->vcpus, "vm", vt->vms[i]->name,
				NULL);

	gw_mtext_family(t, "godwit_migration_last_total_seconds", "gauge",
			"Duration of the VM's last ended migration on this host.");
	for (size_t i = 0; i < LAST_MAX; i++)
		if (last[i].name[0])
			gw_mtext_sample(t, "godwit_migration_last_total_seconds",
					(double)last[i].total_ms / 1000.0, "vm", last[i].name,
					"role", last[i].role, NULL);
	gw_mtext_family(t, "godwit_migration_last_downtime_seconds", "gauge",
			"Guest downtime of the VM's last ended migration on this host.");
	for (size_t i = 0; i < LAST_MAX; i++)
		if (last[i].name[0])
			gw_mtext_sample(t, "godwit_migration_last_downtime_seconds",
					last[i].downtime_ms / 1000.0, "vm", last[i].name, "role",
					last[i].role, NULL);
	gw_mtext_family(t, "godwit_migration_last_bytes", "gauge",
			"Bytes transferred by the VM's last ended migration on this host.");
	for (size_t i = 0; i < LAST_MAX; i++)
		if (last[i].name[0])
			gw_mtext_sample(t, "godwit_migration_last_bytes", (double)last[i].bytes,
					"vm", last[i].name, "role", last[i].role, NULL);
	gw_mtext_family(t, "godwit_migration_last_pages_resent", "gauge",
			"Pages the source sent again in the VM's last ended migration from this "
			"host because their copy failed the destination's CRC32C.");
	for (size_t i = 0; i < LAST_MAX; i++)
		if (last[i].name[0] && last[i].has_resent)
			gw_mtext_sample(t, "godwit_migration_last_pages_resent",
					(double)last[i].pages_resent, "vm", last[i].name, "role",
					last[i].role, NULL);
	gw_mtext_family(t, "godwit_migration_last_result", "gauge",
			"1 for the result of the VM's last ended migration on this host.");
	for (size_t i = 0; i < LAST_MAX; i++)
		if (last[i].name[0])
			gw_mtext_sample(t, "godwit_migration_last_result", 1, "vm", last[i].name,
					"role", last[i].role, "result", last[i].result, NULL);
	gw_mtext_family(t, "godwit_migrations_total", "counter",
			"Migrations (either direction) that ended since the agent started, by "
			"result.");
	for (size_t k = 0; k < N_RESULTS; k++)
		gw_mtext_sample(t, "godwit_migrations_total", (double)ended[k], "result",
				results[k], NULL);
}
