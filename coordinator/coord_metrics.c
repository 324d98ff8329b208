/* coord_metrics.c -- the coordinator's Prometheus metrics: this member's view of corosync
 * membership and quorum, and the replicated cluster state (hosts, VMs, event count). */
#include "coord.h"
#include "gw_metrics.h"

/* A gw_metrics_render_fn; ctx is the struct gw_coord. Runs in the poll loop. */
void gw_coord_metrics_render(void *ctx, struct gw_mtext *t)
{
	const struct gw_coord *c = ctx;
	const struct gw_coord_state *st = &c->st;

	gw_mtext_family(t, "godwit_cluster_quorate", "gauge",
			"1 when this member's partition has quorum (votequorum).");
	gw_mtext_sample(t, "godwit_cluster_quorate", c->quorate, NULL);
	gw_mtext_family(t, "godwit_cluster_members", "gauge",
			"Members of this member's CPG group, itself included.");
	gw_mtext_sample(t, "godwit_cluster_members", (double)c->n_members, NULL);
	gw_mtext_family(t, "godwit_cluster_acting", "gauge",
			"1 when this member is the acting one (fences, plans restarts).");
	gw_mtext_sample(t, "godwit_cluster_acting", gw_coord_is_acting(c), NULL);
	gw_mtext_family(t, "godwit_cluster_synced", "gauge",
			"1 when this member holds the cluster state (not waiting for a snapshot).");
	gw_mtext_sample(t, "godwit_cluster_synced", c->synced && !c->waiting, NULL);
	gw_mtext_family(
	    t, "godwit_cluster_events_total", "counter",
	    "Events in the cluster event log since it began (the last sequence number).");
	gw_mtext_sample(t, "godwit_cluster_events_total",
			st->next_event_seq ? (double)(st->next_event_seq - 1) : 0, NULL);
	gw_mtext_family(t, "godwit_coordinator_watchdog_armed", "gauge",
			"1 when this coordinator holds its watchdog device open (armed, fed while "
			"quorate).");
	gw_mtext_sample(t, "godwit_coordinator_watchdog_armed", c->wd_fd >= 0, NULL);

	gw_mtext_family(t, "godwit_host_state", "gauge",
			"1 for each host's current state in the cluster state.");
	for (size_t i = 0; i < st->n_hosts; i++)
		gw_mtext_sample(t, "godwit_host_state", 1, "host", st->hosts[i].name, "state",
				gw_coord_host_state_name(st->hosts[i].state), NULL);
	gw_mtext_family(t, "godwit_host_watchdog_seconds", "gauge",
			"Watchdog timeout the host announced in its last HELLO, 0 = none armed.");
	for (size_t i = 0; i < st->n_hosts; i++)
		gw_mtext_sample(t, "godwit_host_watchdog_seconds", st->hosts[i].watchdog_s, "host",
				st->hosts[i].name, NULL);
	gw_mtext_family(t, "godwit_host_fence_attempts", "gauge",
			"Fencing attempts of the host in its current (or last) fencing.");
	for (size_t i = 0; i < st->n_hosts; i++)
		gw_mtext_sample(t, "godwit_host_fence_attempts", st->hosts[i].fence_attempts,
				"host", st->hosts[i].name, NULL);

	gw_mtext_family(t, "godwit_vm_state", "gauge",
			"1 for each cluster VM's current state and host in the cluster state.");
	for (size_t i = 0; i < st->n_vms; i++)
		gw_mtext_sample(t, "godwit_vm_state", 1, "vm", st->vms[i].name, "host",
				st->vms[i].host, "state", gw_coord_vm_state_name(st->vms[i].state),
				NULL);
	gw_mtext_family(t, "godwit_vm_restarts", "gauge",
			"Restarts of the VM after its host failed (HA).");
	for (size_t i = 0; i < st->n_vms; i++)
		gw_mtext_sample(t, "godwit_vm_restarts", st->vms[i].restarts, "vm", st->vms[i].name,
				NULL);
	gw_mtext_family(t, "godwit_vm_ha", "gauge", "1 when the VM is highly available.");
	for (size_t i = 0; i < st->n_vms; i++)
		gw_mtext_sample(t, "godwit_vm_ha", st->vms[i].ha, "vm", st->vms[i].name, NULL);
}
