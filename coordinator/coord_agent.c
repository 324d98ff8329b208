/* coord_agent.c -- the coordinator's calls to the agent of its own host, through the shared
 * control-socket client (coordinator/client/gw_client.h, the same library godwitctl uses):
 * host facts, VM lifecycle requests, the VM list, and migration requests. */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control.pb-c.h"
#include "gw_client.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "migration.pb-c.h"

#define SUBSYS		 "agent"
#define AGENT_TIMEOUT_MS 10000

int gw_coord_agent_info(struct gw_coord *c, uint64_t *total_mib, uint64_t *avail_mib, char *listen,
			size_t listen_len, char *backend, size_t backend_len,
			struct gw_coord_driver *drivers, size_t *n_drivers)
{
	char cerr[512];
	GwAgentInfoReq req = GW_AGENT_INFO_REQ__INIT;
	ProtobufCMessage *rep;
	int r = gw_client_request(c->cfg.agent_socket, 2000, GW_MSG_TYPE__GW_MSG_AGENT_INFO,
				  &req.base, GW_MSG_TYPE__GW_MSG_AGENT_INFO_REPLY,
				  &gw_agent_info__descriptor, &rep, cerr, sizeof(cerr));
	if (r) {
		gw_warn(SUBSYS, "agent info: %s", cerr);
		return r;
	}
	GwAgentInfo *ai = (GwAgentInfo *)rep;
	*total_mib = ai->mem_total_mib;
	*avail_mib = ai->mem_available_mib;
	snprintf(listen, listen_len, "%s", ai->listen ? ai->listen : "");
	if (backend)
		snprintf(backend, backend_len, "%s", ai->vm_backend ? ai->vm_backend : "");
	if (drivers && n_drivers) {
		*n_drivers = 0;
		for (size_t i = 0; i < ai->n_drivers && *n_drivers < GW_COORD_MAX_DRIVERS; i++) {
			struct gw_coord_driver *d = &drivers[(*n_drivers)++];
			snprintf(d->name, sizeof(d->name), "%s", ai->drivers[i]->name);
			d->available = ai->drivers[i]->available;
			snprintf(d->status, sizeof(d->status), "%s",
				 ai->drivers[i]->status ? ai->drivers[i]->status : "");
		}
	}
	protobuf_c_message_free_unpacked(rep, NULL);
	return 0;
}

/* -EEXIST / -EALREADY come back as such. */
int gw_coord_agent_vm_call(struct gw_coord *c, uint16_t type, const void *req, GwVmInfo **info,
			   char *err, size_t errlen)
{
	char cerr[512];
	ProtobufCMessage *rep = NULL;
	int r = gw_client_request(c->cfg.agent_socket, AGENT_TIMEOUT_MS, type, req,
				  GW_MSG_TYPE__GW_MSG_VM_INFO, &gw_vm_info__descriptor, &rep, cerr,
				  sizeof(cerr));
	if (rep && !r && info)
		*info = (GwVmInfo *)rep;
	else if (rep)
		protobuf_c_message_free_unpacked(rep, NULL);
	if (r)
		snprintf(err, errlen, "%s", cerr);
	return r;
}

int gw_coord_agent_call(struct gw_coord *c, uint16_t type, const void *req, char *err,
			size_t errlen)
{
	return gw_coord_agent_vm_call(c, type, req, NULL, err, errlen);
}

int gw_coord_agent_stop(struct gw_coord *c, const char *name, char *err, size_t errlen)
{
	GwVmNameReq nr = GW_VM_NAME_REQ__INIT;
	nr.name = (char *)name;
	int r = gw_coord_agent_call(c, GW_MSG_TYPE__GW_MSG_VM_STOP, &nr.base, err, errlen);
	return r == -EALREADY || r == -ENOENT ? 0 : r; /* not running here: nothing to stop */
}

/* Fresh boot of a cluster VM on this host from the definition the cluster state holds. */

static int agent_list(struct gw_coord *c, bool stats, GwVmList **out)
{
	char cerr[512];
	GwVmListReq req = GW_VM_LIST_REQ__INIT;
	req.has_stats = stats;
	req.stats = stats;
	ProtobufCMessage *rep = NULL;
	int r = gw_client_request(
	    c->cfg.agent_socket, AGENT_TIMEOUT_MS, GW_MSG_TYPE__GW_MSG_VM_LIST, &req.base,
	    GW_MSG_TYPE__GW_MSG_VM_LIST_REPLY, &gw_vm_list__descriptor, &rep, cerr, sizeof(cerr));
	if (r) {
		gw_debug(SUBSYS, "agent vm list: %s", cerr);
		return r;
	}
	*out = (GwVmList *)rep;
	return 0;
}

int gw_coord_agent_list(struct gw_coord *c, GwVmList **out)
{
	return agent_list(c, false, out);
}

int gw_coord_agent_list_stats(struct gw_coord *c, GwVmList **out)
{
	return agent_list(c, true, out);
}

int gw_coord_agent_delete(struct gw_coord *c, const char *name, char *err, size_t errlen)
{
	char cerr[512];
	GwVmNameReq req = GW_VM_NAME_REQ__INIT;
	ProtobufCMessage *rep = NULL;
	req.name = (char *)name;
	int r = gw_client_request(c->cfg.agent_socket, AGENT_TIMEOUT_MS,
				  GW_MSG_TYPE__GW_MSG_VM_DELETE, &req.base, GW_MSG_TYPE__GW_MSG_OK,
				  &gw_ok__descriptor, &rep, cerr, sizeof(cerr));
	if (rep)
		protobuf_c_message_free_unpacked(rep, NULL);
	if (r)
		snprintf(err, errlen, "%s", cerr);
	return r;
}

/* The status page's figures of a progress record (coord_progress.c shares them). */
static void fig_copy(struct gw_coord_mig_fig *f, const struct gw_coord_mig_run *mr,
		     const GwMigProgress *p)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->vm, sizeof(f->vm), "%s", mr->vm);
	snprintf(f->from, sizeof(f->from), "%s", mr->from);
	snprintf(f->to, sizeof(f->to), "%s", mr->to);
	f->id = mr->id;
	snprintf(f->result, sizeof(f->result), "%s", p->result);
	snprintf(f->phase, sizeof(f->phase), "%s", p->phase);
	f->round = p->has_round ? p->round : 0;
	f->throttle_pct = p->has_throttle_pct ? p->throttle_pct : 0;
	f->total_ms = p->has_total_ms ? p->total_ms : 0;
	f->bytes = p->has_bytes_transferred ? p->bytes_transferred : 0;
	f->pages_sent = p->has_pages_sent ? p->pages_sent : 0;
	f->pages_remaining = p->has_pages_remaining ? p->pages_remaining : 0;
	f->pages_total = p->has_pages_total ? p->pages_total : 0;
	f->dirty_pps = p->has_dirty_rate_pps ? p->dirty_rate_pps : 0;
	f->mbps = p->has_throughput_mbps ? p->throughput_mbps : 0;
	f->expected_downtime_ms = p->has_expected_downtime_ms ? p->expected_downtime_ms : 0;
	f->downtime_ms = p->has_downtime_ms ? p->downtime_ms : 0;
	f->seen_ms = gw_now_mono_ms();
}

/* One migration request to the local agent: the reply is a GwMigProgress. */
int gw_coord_agent_mig_call(struct gw_coord *c, uint16_t type, const ProtobufCMessage *req,
			    char *result, size_t rlen, char *err, size_t errlen,
			    struct gw_coord_mig_run *stats)
{
	char cerr[512];
	ProtobufCMessage *rep = NULL;
	int r = gw_client_request(c->cfg.agent_socket, AGENT_TIMEOUT_MS, type, req,
				  GW_MIG_MSG_TYPE__GW_MIG_PROGRESS, &gw_mig_progress__descriptor,
				  &rep, cerr, sizeof(cerr));
	if (r) {
		snprintf(err, errlen, "%s", cerr);
		return r;
	}
	const GwMigProgress *p = (const GwMigProgress *)rep;
	snprintf(result, rlen, "%s", p->result);
	snprintf(err, errlen, "%s", p->error ? p->error : "");
	if (stats && p->has_total_ms && p->has_downtime_ms && p->has_bytes_transferred) {
		stats->has_stats = true;
		stats->total_ms = p->total_ms;
		stats->downtime_ms = p->downtime_ms;
		stats->bytes = p->bytes_transferred;
	}
	if (stats)
		fig_copy(&stats->fig, stats, p);
	protobuf_c_message_free_unpacked(rep, NULL);
	return 0;
}
