/* ctl_cluster.c -- godwitctl's cluster commands: status, hosts, cluster VMs, events (coordinator
 * socket). */
#include "ctl_cluster.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "gw_client.h"
#include "gw_fsutil.h"
#include "ctl_output.h"
#include "gw_json.h"

enum { EXIT_OK = 0, EXIT_ERR = 1 };

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* One request to the coordinator; prints the failure itself unless err is given. */
static int call_err(const struct gw_ctl_args *a, uint16_t type, const ProtobufCMessage *req,
		    uint16_t reply_type, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **rep, char *err, size_t errlen)
{
	struct gw_client cl;
	int r = gw_client_connect(&cl, a->coord_socket, a->timeout_ms);
	if (!r)
		r = gw_client_call(&cl, type, req, reply_type, desc, rep);
	gw_client_close(&cl);
	if (r && err)
		snprintf(err, errlen, "%s", cl.err);
	else if (r)
		gw_ctl_print_error(stdout, stderr, cl.err, -r, a->json);
	return r;
}

static int call(const struct gw_ctl_args *a, uint16_t type, const ProtobufCMessage *req,
		uint16_t reply_type, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **rep)
{
	return call_err(a, type, req, reply_type, desc, rep, NULL, 0);
}

/* Print a finished JSON document and a newline. */
static int json_out(struct gw_json *j)
{
	int r = gw_json_finish(j);
	if (!r)
		printf("%s\n", gw_json_text(j, NULL));
	gw_json_free(j);
	return r ? EXIT_ERR : EXIT_OK;
}

int gw_ctl_run_cluster_status(const struct gw_ctl_args *a)
{
	GwClStatusReq req = GW_CL_STATUS_REQ__INIT;
	ProtobufCMessage *rep;
	if (call(a, GW_CL_MSG_TYPE__GW_CL_API_STATUS, &req.base,
		 GW_CL_MSG_TYPE__GW_CL_API_STATUS_REPLY, &gw_cl_status__descriptor, &rep))
		return EXIT_ERR;
	GwClStatus *s = (GwClStatus *)rep;
	int rc = EXIT_OK;
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_bool(&j, "quorate", s->quorate);
		gw_json_key(&j, "members");
		gw_json_arr_begin(&j);
		for (size_t i = 0; i < s->n_members; i++) {
			gw_json_obj_begin(&j);
			gw_json_kv_uint(&j, "nodeid", s->members[i]->nodeid);
			gw_json_kv_str(&j, "name", s->members[i]->name);
			gw_json_obj_end(&j);
		}
		gw_json_arr_end(&j);
		if (s->acting_nodeid)
			gw_json_kv_uint(&j, "acting_nodeid", s->acting_nodeid);
		else
			gw_json_kv_null(&j, "acting_nodeid");
		gw_json_kv_uint(&j, "local_nodeid", s->local_nodeid);
		gw_json_kv_str(&j, "local_name", s->local_name);
		gw_json_kv_bool(&j, "synced", s->synced);
		gw_json_obj_end(&j);
		rc = json_out(&j);
	} else {
		printf("quorate: %s\nthis node: %s (node id %u)%s\nacting member: ",
		       s->quorate ? "yes" : "no", s->local_name, s->local_nodeid,
		       s->synced ? "" : " (waiting for the cluster state)");
		if (s->acting_nodeid)
			printf("node id %u\n", s->acting_nodeid);
		else
			printf("none (no quorum)\n");
		printf("members (%zu):", s->n_members);
		for (size_t i = 0; i < s->n_members; i++)
			printf(" %s(%u)", s->members[i]->name ? s->members[i]->name : "?",
			       s->members[i]->nodeid);
		printf("\n");
	}
	protobuf_c_message_free_unpacked(rep, NULL);
	return rc;
}

int gw_ctl_run_host_list(const struct gw_ctl_args *a)
{
	GwClStatusReq req = GW_CL_STATUS_REQ__INIT;
	ProtobufCMessage *rep;
	if (call(a, GW_CL_MSG_TYPE__GW_CL_API_HOST_LIST, &req.base,
		 GW_CL_MSG_TYPE__GW_CL_API_HOST_LIST_REPLY, &gw_cl_host_list__descriptor, &rep))
		return EXIT_ERR;
	GwClHostList *l = (GwClHostList *)rep;
	int rc = EXIT_OK;
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_arr_begin(&j);
		for (size_t i = 0; i < l->n_hosts; i++) {
			GwClHost *h = l->hosts[i];
			gw_json_obj_begin(&j);
			gw_json_kv_str(&j, "name", h->name);
			gw_json_kv_uint(&j, "nodeid", h->nodeid);
			gw_json_kv_str(&j, "state", h->state);
			gw_json_kv_uint(&j, "mem_total_mib", h->mem_total_mib);
			gw_json_kv_uint(&j, "mem_avail_mib", h->mem_avail_mib);
			gw_json_kv_str(&j, "agent_listen", h->agent_listen);
			gw_json_kv_uint(&j, "fence_attempts", h->fence_attempts);
			gw_json_kv_bool(&j, "evacuating", h->evacuating);
			gw_json_kv_uint(&j, "watchdog_s", h->watchdog_s);
			gw_json_kv_str(&j, "vm_backend",
				       h->vm_backend && *h->vm_backend ? h->vm_backend : NULL);
			gw_json_kv_str(&j, "maint_error",
				       h->maint_error && *h->maint_error ? h->maint_error : NULL);
			gw_json_key(&j, "drivers");
			gw_json_arr_begin(&j);
			for (size_t k = 0; k < h->n_drivers; k++) {
				gw_json_obj_begin(&j);
				gw_json_kv_str(&j, "name", h->drivers[k]->name);
				gw_json_kv_bool(&j, "available", h->drivers[k]->available);
				gw_json_kv_str(&j, "status",
					       h->drivers[k]->status && *h->drivers[k]->status
						   ? h->drivers[k]->status
						   : NULL);
				gw_json_obj_end(&j);
			}
			gw_json_arr_end(&j);
			gw_json_obj_end(&j);
		}
		gw_json_arr_end(&j);
		rc = json_out(&j);
	} else {
		printf("%-16s %-6s %-12s %12s %12s %-9s %-8s %-22s %s\n", "HOST", "NODEID", "STATE",
		       "MEM(MiB)", "AVAIL(MiB)", "WATCHDOG", "BACKEND", "AGENT", "DRIVERS");
		for (size_t i = 0; i < l->n_hosts; i++) {
			GwClHost *h = l->hosts[i];
			char wd[16] = "-", drv[160] = "";
			size_t off = 0;
			if (h->watchdog_s)
				snprintf(wd, sizeof(wd), "%us", h->watchdog_s);
			for (size_t k = 0; k < h->n_drivers && off < sizeof(drv); k++)
				off += (size_t)snprintf(drv + off, sizeof(drv) - off, "%s%s%s",
							k ? "," : "", h->drivers[k]->name,
							h->drivers[k]->available ? "" : "(down)");
			printf("%-16s %-6u %-12s %12llu %12llu %-9s %-8s %-22s %s\n", h->name,
			       h->nodeid, h->state, (unsigned long long)h->mem_total_mib,
			       (unsigned long long)h->mem_avail_mib, wd,
			       h->vm_backend && *h->vm_backend ? h->vm_backend : "-",
			       h->agent_listen && *h->agent_listen ? h->agent_listen : "-",
			       drv[0] ? drv : "microvm");
		}
	}
	protobuf_c_message_free_unpacked(rep, NULL);
	return rc;
}

void gw_ctl_json_cluster_vm(struct gw_json *j, const GwClVm *v)
{
	gw_json_obj_begin(j);
	gw_json_kv_str(j, "name", v->name);
	gw_json_kv_str(j, "host", v->host);
	gw_json_kv_str(j, "state", v->state);
	gw_json_kv_bool(j, "ha", v->ha);
	gw_json_kv_uint(j, "priority", v->priority);
	gw_json_kv_str(j, "anti_affinity",
		       v->anti_affinity && *v->anti_affinity ? v->anti_affinity : NULL);
	gw_json_kv_uint(j, "memory_mib", v->memory_mib);
	gw_json_kv_uint(j, "vcpus", v->vcpus);
	gw_json_kv_str(j, "image", v->image);
	gw_json_kv_str(j, "cmdline", v->cmdline && *v->cmdline ? v->cmdline : NULL);
	gw_json_kv_uint(j, "restarts", v->restarts);
	gw_json_kv_str(j, "reason", v->reason && *v->reason ? v->reason : NULL);
	gw_json_kv_str(j, "migrate_to", v->migrate_to && *v->migrate_to ? v->migrate_to : NULL);
	gw_json_kv_str(j, "migrate_error",
		       v->migrate_error && *v->migrate_error ? v->migrate_error : NULL);
	gw_json_kv_str(j, "driver", v->driver && *v->driver ? v->driver : "microvm");
	gw_json_kv_bool(j, "importing", v->has_importing && v->importing);
	gw_json_kv_bool(j, "failback", v->has_failback && v->failback);
	gw_json_kv_str(j, "preferred_host", v->pref_host && *v->pref_host ? v->pref_host : NULL);
	/* the load model's last figures (LOAD from its host): CPUs in use x 1000, pages
	 * written per second (0: not measured yet) */
	gw_json_kv_uint(j, "cpu_milli", v->cpu_milli);
	gw_json_kv_uint(j, "dirty_pps", v->dirty_pps);
	gw_json_obj_end(j);
}

int gw_ctl_run_cluster_vm_list(const struct gw_ctl_args *a)
{
	GwClStatusReq req = GW_CL_STATUS_REQ__INIT;
	ProtobufCMessage *rep;
	if (call(a, GW_CL_MSG_TYPE__GW_CL_API_VM_LIST, &req.base,
		 GW_CL_MSG_TYPE__GW_CL_API_VM_LIST_REPLY, &gw_cl_vm_list__descriptor, &rep))
		return EXIT_ERR;
	GwClVmList *l = (GwClVmList *)rep;
	int rc = EXIT_OK;
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_arr_begin(&j);
		for (size_t i = 0; i < l->n_vms; i++)
			gw_ctl_json_cluster_vm(&j, l->vms[i]);
		gw_json_arr_end(&j);
		rc = json_out(&j);
	} else {
		printf("%-20s %-12s %-10s %-3s %8s %11s %-8s %s\n", "NAME", "HOST", "STATE", "HA",
		       "PRIORITY", "MEMORY(MiB)", "DRIVER", "REASON");
		for (size_t i = 0; i < l->n_vms; i++) {
			GwClVm *v = l->vms[i];
			printf("%-20s %-12s %-10s %-3s %8u %11u %-8s %s\n", v->name, v->host,
			       v->state, v->ha ? "yes" : "no", v->priority, v->memory_mib,
			       v->driver && *v->driver ? v->driver : "microvm",
			       v->reason ? v->reason : "");
		}
	}
	protobuf_c_message_free_unpacked(rep, NULL);
	return rc;
}

static void print_event(const GwClEvent *e, bool json)
{
	if (json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_COMPACT);
		gw_json_obj_begin(&j);
		gw_json_kv_uint(&j, "seq", e->seq);
		gw_json_kv_uint(&j, "time_ms", e->time_ms);
		gw_json_kv_str(&j, "kind", e->kind);
		gw_json_kv_str(&j, "host", e->host && *e->host ? e->host : NULL);
		gw_json_kv_str(&j, "vm", e->vm && *e->vm ? e->vm : NULL);
		gw_json_kv_str(&j, "text", e->text);
		gw_json_obj_end(&j);
		json_out(&j);
		return;
	}
	time_t t = (time_t)(e->time_ms / 1000);
	struct tm tm;
	char ts[32];
	localtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%F %T", &tm);
	printf("%s.%03u #%llu %-20s %s%s%s%s%s\n", ts, (unsigned)(e->time_ms % 1000),
	       (unsigned long long)e->seq, e->kind, e->host && *e->host ? e->host : "",
	       e->vm && *e->vm ? " vm " : "", e->vm && *e->vm ? e->vm : "",
	       (e->host && *e->host) || (e->vm && *e->vm) ? ": " : "", e->text);
}

/*
 * The event log, one event per line (--json: one JSON object per line). With --follow,
 * ask again every 200 ms for events after the last one printed, until SIGINT.
 */
int gw_ctl_run_events(const struct gw_ctl_args *a)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	uint64_t since = 0;
	if (a->follow)
		sigaction(SIGINT, &sa, NULL);
	while (!interrupted) {
		GwClEventsReq req = GW_CL_EVENTS_REQ__INIT;
		ProtobufCMessage *rep;
		req.has_since_seq = 1;
		req.since_seq = since;
		if (call(a, GW_CL_MSG_TYPE__GW_CL_API_EVENTS, &req.base,
			 GW_CL_MSG_TYPE__GW_CL_API_EVENTS_REPLY, &gw_cl_event_list__descriptor,
			 &rep))
			return EXIT_ERR;
		GwClEventList *l = (GwClEventList *)rep;
		for (size_t i = 0; i < l->n_events; i++) {
			print_event(l->events[i], a->json);
			since = l->events[i]->seq;
		}
		protobuf_c_message_free_unpacked(rep, NULL);
		fflush(stdout);
		if (!a->follow)
			break;
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return EXIT_OK;
}

/* ---- live migration and maintenance: request, then follow the cluster state ---- */

static void nap(void)
{
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

/* The cluster's VMs; a failure is printed, or with err given, left there with *code. */
static GwClVmList *vm_list_err(const struct gw_ctl_args *a, char *err, size_t errlen, int *code)
{
	GwClStatusReq req = GW_CL_STATUS_REQ__INIT;
	ProtobufCMessage *rep;
	int r = call_err(a, GW_CL_MSG_TYPE__GW_CL_API_VM_LIST, &req.base,
			 GW_CL_MSG_TYPE__GW_CL_API_VM_LIST_REPLY, &gw_cl_vm_list__descriptor, &rep,
			 err, errlen);
	if (code)
		*code = r;
	return r ? NULL : (GwClVmList *)rep;
}

static GwClVmList *vm_list(const struct gw_ctl_args *a)
{
	return vm_list_err(a, NULL, 0, NULL);
}

static GwClHostList *host_list(const struct gw_ctl_args *a)
{
	GwClStatusReq req = GW_CL_STATUS_REQ__INIT;
	ProtobufCMessage *rep;
	if (call(a, GW_CL_MSG_TYPE__GW_CL_API_HOST_LIST, &req.base,
		 GW_CL_MSG_TYPE__GW_CL_API_HOST_LIST_REPLY, &gw_cl_host_list__descriptor, &rep))
		return NULL;
	return (GwClHostList *)rep;
}

static const GwClVm *vm_in(const GwClVmList *l, const char *name)
{
	for (size_t i = 0; l && i < l->n_vms; i++)
		if (strcmp(l->vms[i]->name, name) == 0)
			return l->vms[i];
	return NULL;
}

static const GwClHost *host_in(const GwClHostList *l, const char *name)
{
	for (size_t i = 0; l && i < l->n_hosts; i++)
		if (strcmp(l->hosts[i]->name, name) == 0)
			return l->hosts[i];
	return NULL;
}

/*
 * Request the live migration of cluster VM name to to_host, then wait until the VM's
 * migration with the id of the reply has ended (announce: print a line once requested).
 */
int gw_ctl_cluster_migrate(const struct gw_ctl_args *a, const char *name, const char *to_host,
			   bool announce, struct gw_ctl_cl_mig *res)
{
	GwClVmMigrateReq req = GW_CL_VM_MIGRATE_REQ__INIT;
	struct sigaction sa = {.sa_handler = on_sigint};
	ProtobufCMessage *rep;
	memset(res, 0, sizeof(*res));
	req.name = (char *)name;
	req.to_host = (char *)to_host;
	unsigned long long t0 = gw_now_mono_ms();
	res->code = call_err(a, GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE, &req.base,
			     GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &gw_cl_vm__descriptor, &rep,
			     res->err, sizeof(res->err));
	if (res->code)
		return res->code;
	GwClVm *v = (GwClVm *)rep;
	uint64_t id = v->mig_id;
	snprintf(res->from, sizeof(res->from), "%s", v->host);
	snprintf(res->to, sizeof(res->to), "%s", v->migrate_to ? v->migrate_to : to_host);
	protobuf_c_message_free_unpacked(rep, NULL);
	if (announce)
		printf("vm %s: migrating %s -> %s\n", name, res->from, res->to);
	fflush(stdout);
	sigaction(SIGINT, &sa, NULL);
	bool done = false, ok = false, cancelled = false;
	while (!done && !interrupted) {
		GwClVmList *l = vm_list_err(a, res->err, sizeof(res->err), &res->code);
		if (!l)
			return res->code;
		const GwClVm *cur = vm_in(l, name);
		if (!cur) {
			snprintf(res->err, sizeof(res->err), "vm '%s' disappeared from the cluster",
				 name);
			done = true;
		} else if (cur->refused_id == id && cur->mig_id != id) {
			done = true;
			snprintf(res->err, sizeof(res->err),
				 "vm '%s': migration refused: already migrating to %s", name,
				 cur->migrate_to && *cur->migrate_to ? cur->migrate_to
								     : "another host");
		} else if (cur->mig_id == id && !(cur->migrate_to && *cur->migrate_to)) {
			done = true;
			ok = strcmp(cur->host, res->to) == 0;
			cancelled = !ok && cur->migrate_error &&
				    strncmp(cur->migrate_error, "cancelled:", 10) == 0;
			if (!ok)
				snprintf(
				    res->err, sizeof(res->err), "vm '%s': migration %s -> %s: %s",
				    name, res->from, res->to,
				    cur->migrate_error && *cur->migrate_error ? cur->migrate_error
									      : "did not complete");
		}
		gw_cl_vm_list__free_unpacked(l, NULL);
		if (!done)
			nap();
	}
	if (!done)
		snprintf(res->err, sizeof(res->err),
			 "interrupted: the migration of vm '%s' goes on", name);
	res->result = ok ? "completed" : !done ? "interrupted" : cancelled ? "cancelled" : "failed";
	res->total_ms = gw_now_mono_ms() - t0;
	return 0;
}

/* `cluster vm migrate NAME --to-host HOST`: gw_ctl_cluster_migrate, then its result. */
int gw_ctl_run_cluster_vm_migrate(const struct gw_ctl_args *a)
{
	struct gw_ctl_cl_mig m;
	if (gw_ctl_cluster_migrate(a, a->name, a->to_host, !a->json, &m)) {
		gw_ctl_print_error(stdout, stderr, m.err, -m.code, a->json);
		return EXIT_ERR;
	}
	bool ok = strcmp(m.result, "completed") == 0;
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "name", a->name);
		gw_json_kv_str(&j, "from", m.from);
		gw_json_kv_str(&j, "to", m.to);
		gw_json_kv_str(&j, "result", m.result);
		gw_json_kv_str(&j, "error", ok ? NULL : m.err);
		gw_json_kv_uint(&j, "total_ms", m.total_ms);
		gw_json_obj_end(&j);
		json_out(&j);
	} else if (ok) {
		printf("vm %s: migrated %s -> %s in %llu ms\n", a->name, m.from, m.to, m.total_ms);
	} else {
		fprintf(stderr, "godwitctl: %s\n", m.err);
	}
	return ok ? EXIT_OK : EXIT_ERR;
}

struct moved {
	char vm[64], from[64], to[64];
	bool printed;
};

/*
 * `host maintenance enter HOST`: the coordinator multicasts MAINT_ENTER; unless --no-wait,
 * follow the evacuation with the reply's id: one line per VM moved, until it ended.
 */
int gw_ctl_run_host_maint_enter(const struct gw_ctl_args *a)
{
	GwClHostMaintReq req = GW_CL_HOST_MAINT_REQ__INIT;
	struct sigaction sa = {.sa_handler = on_sigint};
	ProtobufCMessage *rep;
	const char *host = a->pos[0];
	struct moved *mv = NULL;
	size_t n_mv = 0;
	char err[600] = "";
	GwClVmList *before = vm_list(a);
	if (!before)
		return EXIT_ERR;
	mv = calloc(before->n_vms + 1, sizeof(*mv));
	for (size_t i = 0; mv && i < before->n_vms; i++) {
		const GwClVm *v = before->vms[i];
		if (strcmp(v->host, host) != 0)
			continue;
		snprintf(mv[n_mv].vm, sizeof(mv[n_mv].vm), "%s", v->name);
		snprintf(mv[n_mv].from, sizeof(mv[n_mv].from), "%s", host);
		n_mv++;
	}
	gw_cl_vm_list__free_unpacked(before, NULL);
	if (!mv) {
		gw_ctl_print_error(stdout, stderr, "out of memory", ENOMEM, a->json);
		return EXIT_ERR;
	}
	req.host = (char *)host;
	req.enter = true;
	if (call(a, GW_CL_MSG_TYPE__GW_CL_API_HOST_MAINT, &req.base,
		 GW_CL_MSG_TYPE__GW_CL_API_HOST_REPLY, &gw_cl_host__descriptor, &rep)) {
		free(mv);
		return EXIT_ERR;
	}
	uint64_t id = ((GwClHost *)rep)->evac_id;
	protobuf_c_message_free_unpacked(rep, NULL);
	sigaction(SIGINT, &sa, NULL);
	bool applied = false, done = false, stopped = false;
	size_t n_moved = 0;
	while (!done && !interrupted) {
		GwClHostList *hl = host_list(a);
		GwClVmList *vl = hl ? vm_list(a) : NULL;
		if (!vl) {
			if (hl)
				gw_cl_host_list__free_unpacked(hl, NULL);
			free(mv);
			return EXIT_ERR;
		}
		const GwClHost *h = host_in(hl, host);
		if (h && h->evac_id == id)
			applied = true;
		for (size_t i = 0; i < n_mv; i++) {
			const GwClVm *v = vm_in(vl, mv[i].vm);
			if (mv[i].printed || !v || strcmp(v->host, host) == 0)
				continue;
			snprintf(mv[i].to, sizeof(mv[i].to), "%s", v->host);
			mv[i].printed = true;
			n_moved++;
			if (!a->json)
				printf("vm %s: moved %s -> %s\n", mv[i].vm, host, mv[i].to);
		}
		fflush(stdout);
		if (!h || (applied && (h->evac_id != id || strcmp(h->state, "maintenance") != 0))) {
			snprintf(err, sizeof(err),
				 "host %s: left maintenance or was lost (%s) "
				 "during the evacuation",
				 host, h ? h->state : "gone");
			done = stopped = true;
		} else if (applied && (a->no_wait || !h->evacuating)) {
			done = true;
			if (h->maint_error && *h->maint_error) {
				snprintf(err, sizeof(err), "host %s: %s", host, h->maint_error);
				stopped = true;
			}
		}
		gw_cl_host_list__free_unpacked(hl, NULL);
		gw_cl_vm_list__free_unpacked(vl, NULL);
		if (!done)
			nap();
	}
	if (!done) {
		snprintf(err, sizeof(err), "interrupted: the evacuation of %s goes on", host);
		stopped = true;
	}
	const char *result = stopped ? "stopped" : a->no_wait ? "evacuating" : "evacuated";
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "host", host);
		gw_json_kv_str(&j, "state", "maintenance");
		gw_json_kv_str(&j, "result", result);
		gw_json_kv_str(&j, "error", stopped ? err : NULL);
		gw_json_key(&j, "moved");
		gw_json_arr_begin(&j);
		for (size_t i = 0; i < n_mv; i++) {
			if (!mv[i].printed)
				continue;
			gw_json_obj_begin(&j);
			gw_json_kv_str(&j, "vm", mv[i].vm);
			gw_json_kv_str(&j, "from", mv[i].from);
			gw_json_kv_str(&j, "to", mv[i].to);
			gw_json_obj_end(&j);
		}
		gw_json_arr_end(&j);
		gw_json_obj_end(&j);
		json_out(&j);
	} else if (stopped) {
		fprintf(stderr, "godwitctl: %s\n", err);
	} else {
		printf("host %s: in maintenance, %s (%zu VM%s moved)\n", host,
		       a->no_wait ? "evacuating (not waiting)" : "evacuated", n_moved,
		       n_moved == 1 ? "" : "s");
	}
	free(mv);
	return stopped ? EXIT_ERR : EXIT_OK;
}

/* `host maintenance exit HOST`: wait until the cluster state has it up again. */
int gw_ctl_run_host_maint_exit(const struct gw_ctl_args *a)
{
	GwClHostMaintReq req = GW_CL_HOST_MAINT_REQ__INIT;
	ProtobufCMessage *rep;
	const char *host = a->pos[0];
	char state[32] = "?";
	req.host = (char *)host;
	req.enter = false;
	if (call(a, GW_CL_MSG_TYPE__GW_CL_API_HOST_MAINT, &req.base,
		 GW_CL_MSG_TYPE__GW_CL_API_HOST_REPLY, &gw_cl_host__descriptor, &rep))
		return EXIT_ERR;
	protobuf_c_message_free_unpacked(rep, NULL);
	for (int tries = 0; tries < 50; tries++) { /* applied within a few ms normally */
		GwClHostList *hl = host_list(a);
		if (!hl)
			return EXIT_ERR;
		const GwClHost *h = host_in(hl, host);
		snprintf(state, sizeof(state), "%s", h ? h->state : "gone");
		gw_cl_host_list__free_unpacked(hl, NULL);
		if (strcmp(state, "maintenance") != 0)
			break;
		nap();
	}
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "host", host);
		gw_json_kv_str(&j, "state", state);
		gw_json_obj_end(&j);
		json_out(&j);
	} else {
		printf("host %s: out of maintenance (%s)\n", host, state);
	}
	return strcmp(state, "maintenance") != 0 ? EXIT_OK : EXIT_ERR;
}
