/* ctl_cluster_admin.c -- godwitctl cluster vm stop | start | delete: request the change
 * (GW_CL_API_VM_ADMIN), then follow the cluster state and its events until it is applied;
 * cluster vm migrate-cancel (GW_CL_API_VM_MIGRATE_CANCEL), followed until the migration ended. */
#include "ctl_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.pb-c.h"
#include "gw_client.h"
#include "gw_fsutil.h"
#include "ctl_output.h"
#include "gw_json.h"

enum { EXIT_OK = 0, EXIT_ERR = 1 };

/* One request to the coordinator; the failure is left in err. */
static int call(const struct gw_ctl_args *a, uint16_t type, const ProtobufCMessage *req,
		uint16_t reply_type, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **rep,
		char *err, size_t errlen)
{
	return gw_client_request(a->coord_socket, a->timeout_ms, type, req, reply_type, desc, rep,
				 err, errlen);
}

static GwClEventList *events_since(const struct gw_ctl_args *a, uint64_t since, char *err,
				   size_t errlen, int *code)
{
	GwClEventsReq req = GW_CL_EVENTS_REQ__INIT;
	ProtobufCMessage *rep;
	req.has_since_seq = 1;
	req.since_seq = since;
	*code = call(a, GW_CL_MSG_TYPE__GW_CL_API_EVENTS, &req.base,
		     GW_CL_MSG_TYPE__GW_CL_API_EVENTS_REPLY, &gw_cl_event_list__descriptor, &rep,
		     err, errlen);
	return *code ? NULL : (GwClEventList *)rep;
}

static GwClVmList *vms(const struct gw_ctl_args *a, char *err, size_t errlen, int *code)
{
	GwClStatusReq req = GW_CL_STATUS_REQ__INIT;
	ProtobufCMessage *rep;
	*code = call(a, GW_CL_MSG_TYPE__GW_CL_API_VM_LIST, &req.base,
		     GW_CL_MSG_TYPE__GW_CL_API_VM_LIST_REPLY, &gw_cl_vm_list__descriptor, &rep, err,
		     errlen);
	return *code ? NULL : (GwClVmList *)rep;
}

/* The outcome of one stop / start / delete. */
struct outcome {
	bool applied; /* the cluster applied our change (its event was seen) */
	bool done;
	bool ok;
	char host[128], state[32];
	char err[600];
	int code;
};

/*
 * One look at the cluster: events after *seq (ours: applied, or refused), then the VM.
 * stop: done once applied (the state says stopped). start: once applied, until the VM
 * is running (ok) or failed. delete: once applied (the VM is gone).
 */
static void look(const struct gw_ctl_args *a, const char *action, uint64_t *seq, struct outcome *o)
{
	const char *name = a->name;
	char ok_kind[32], refused_kind[40];
	snprintf(ok_kind, sizeof(ok_kind), "vm-%s",
		 strcmp(action, "stop") == 0	? "stopped"
		 : strcmp(action, "start") == 0 ? "start"
						: "deleted");
	snprintf(refused_kind, sizeof(refused_kind), "vm-%s-refused", action);
	GwClEventList *el = events_since(a, *seq, o->err, sizeof(o->err), &o->code);
	if (!el) {
		o->done = true;
		return;
	}
	for (size_t i = 0; i < el->n_events && !o->done; i++) {
		const GwClEvent *e = el->events[i];
		*seq = e->seq;
		if (!e->vm || strcmp(e->vm, name) != 0 || o->applied)
			continue;
		if (strcmp(e->kind, ok_kind) == 0) {
			o->applied = true;
		} else if (strcmp(e->kind, refused_kind) == 0 ||
			   strcmp(e->kind, "vm-admin-refused") == 0) {
			snprintf(o->err, sizeof(o->err), "vm '%s': %s refused: %s", name, action,
				 e->text);
			o->code = -EINVAL;
			o->done = true;
		}
	}
	gw_cl_event_list__free_unpacked(el, NULL);
	if (o->done || !o->applied)
		return;
	GwClVmList *l = vms(a, o->err, sizeof(o->err), &o->code);
	if (!l) {
		o->done = true;
		return;
	}
	const GwClVm *v = NULL;
	for (size_t i = 0; i < l->n_vms; i++)
		if (strcmp(l->vms[i]->name, name) == 0)
			v = l->vms[i];
	if (v) {
		snprintf(o->host, sizeof(o->host), "%s", v->host);
		snprintf(o->state, sizeof(o->state), "%s", v->state);
	}
	if (strcmp(action, "delete") == 0) {
		o->done = o->ok = !v;
		snprintf(o->state, sizeof(o->state), "deleted");
	} else if (!v) {
		snprintf(o->err, sizeof(o->err), "vm '%s' disappeared from the cluster", name);
		o->code = -ENOENT;
		o->done = true;
	} else if (strcmp(action, "stop") == 0) {
		o->done = o->ok = strcmp(v->state, "stopped") == 0;
	} else if (strcmp(v->state, "running") == 0) {
		o->done = o->ok = true;
	} else if (strcmp(v->state, "starting") != 0) {
		snprintf(o->err, sizeof(o->err), "vm '%s': start on %s: %s%s%s", name, v->host,
			 v->state, v->reason && *v->reason ? ": " : "", v->reason ? v->reason : "");
		o->code = -EIO;
		o->done = true;
	}
	gw_cl_vm_list__free_unpacked(l, NULL);
}

/*
 * `cluster vm stop|start|delete NAME`. Waits for the cluster state only (not for the
 * host's agent, which follows within about a second): stop until the state says stopped,
 * start until the VM runs (or failed), delete until it is gone. --timeout bounds the wait.
 */
int gw_ctl_run_cluster_vm_admin(const struct gw_ctl_args *a)
{
	const char *action = a->cmd == GW_CTL_CMD_CLUSTER_VM_STOP    ? "stop"
			     : a->cmd == GW_CTL_CMD_CLUSTER_VM_START ? "start"
								     : "delete";
	struct outcome o;
	uint64_t seq = 0;
	memset(&o, 0, sizeof(o));
	GwClEventList *el = events_since(a, 0, o.err, sizeof(o.err), &o.code);
	if (!el) {
		gw_ctl_print_error(stdout, stderr, o.err, -o.code, a->json);
		return EXIT_ERR;
	}
	if (el->n_events)
		seq = el->events[el->n_events - 1]->seq;
	gw_cl_event_list__free_unpacked(el, NULL);
	GwClVmAdminReq req = GW_CL_VM_ADMIN_REQ__INIT;
	ProtobufCMessage *rep;
	req.name = (char *)a->name;
	req.action = (char *)action;
	o.code = call(a, GW_CL_MSG_TYPE__GW_CL_API_VM_ADMIN, &req.base,
		      GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &gw_cl_vm__descriptor, &rep, o.err,
		      sizeof(o.err));
	if (o.code) {
		gw_ctl_print_error(stdout, stderr, o.err, -o.code, a->json);
		return EXIT_ERR;
	}
	char was_host[128];
	snprintf(was_host, sizeof(was_host), "%s", ((GwClVm *)rep)->host);
	protobuf_c_message_free_unpacked(rep, NULL);
	unsigned long long deadline =
	    a->timeout_ms ? gw_now_mono_ms() + (unsigned)a->timeout_ms : 0;
	while (!o.done) {
		look(a, action, &seq, &o);
		if (o.done)
			break;
		if (deadline && gw_now_mono_ms() >= deadline) {
			snprintf(o.err, sizeof(o.err), "vm '%s': %s not %s within the timeout",
				 a->name, action, o.applied ? "finished" : "applied");
			o.code = -ETIMEDOUT;
			break;
		}
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (!o.ok) {
		gw_ctl_print_error(stdout, stderr, o.err, -o.code, a->json);
		return EXIT_ERR;
	}
	if (!o.host[0])
		snprintf(o.host, sizeof(o.host), "%s", was_host);
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "name", a->name);
		gw_json_kv_str(&j, "action", action);
		gw_json_kv_str(&j, "host", o.host);
		gw_json_kv_str(&j, "state", o.state);
		gw_json_obj_end(&j);
		int r = gw_json_finish(&j);
		if (!r)
			printf("%s\n", gw_json_text(&j, NULL));
		gw_json_free(&j);
		return r ? EXIT_ERR : EXIT_OK;
	}
	if (strcmp(action, "delete") == 0)
		printf("vm %s: deleted (was on %s)\n", a->name, o.host);
	else
		printf("vm %s: %s on %s\n", a->name, o.state, o.host);
	return EXIT_OK;
}

/*
 * `cluster vm migrate-cancel NAME`: GW_CL_API_VM_MIGRATE_CANCEL (any member), then follow
 * the cluster state until that migration ended. Exit 0 when it ended cancelled (the VM
 * stays on its source), 1 when it completed or failed anyway, or on a refusal.
 */
int gw_ctl_run_cluster_vm_migrate_cancel(const struct gw_ctl_args *a)
{
	GwClVmMigrateCancelReq req = GW_CL_VM_MIGRATE_CANCEL_REQ__INIT;
	ProtobufCMessage *rep;
	char err[600] = "", from[128], to[128], host[128] = "", result[32] = "";
	req.name = (char *)a->name;
	int code =
	    call(a, GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE_CANCEL, &req.base,
		 GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &gw_cl_vm__descriptor, &rep, err, sizeof(err));
	if (code) {
		gw_ctl_print_error(stdout, stderr, err, -code, a->json);
		return EXIT_ERR;
	}
	const GwClVm *r = (const GwClVm *)rep;
	uint64_t id = r->mig_id;
	snprintf(from, sizeof(from), "%s", r->host);
	snprintf(to, sizeof(to), "%s", r->migrate_to ? r->migrate_to : "");
	protobuf_c_message_free_unpacked(rep, NULL);
	unsigned long long deadline =
	    a->timeout_ms ? gw_now_mono_ms() + (unsigned)a->timeout_ms : 0;
	while (!result[0]) {
		GwClVmList *l = vms(a, err, sizeof(err), &code);
		if (!l) {
			gw_ctl_print_error(stdout, stderr, err, -code, a->json);
			return EXIT_ERR;
		}
		const GwClVm *v = NULL;
		for (size_t i = 0; i < l->n_vms; i++)
			if (strcmp(l->vms[i]->name, a->name) == 0)
				v = l->vms[i];
		if (!v) {
			snprintf(result, sizeof(result), "failed");
			snprintf(err, sizeof(err), "vm '%s' disappeared from the cluster", a->name);
		} else if (v->mig_id != id || !(v->migrate_to && *v->migrate_to)) {
			const char *me = v->migrate_error ? v->migrate_error : "";
			snprintf(host, sizeof(host), "%s", v->host);
			if (strcmp(v->host, to) == 0) {
				snprintf(result, sizeof(result), "completed");
				snprintf(
				    err, sizeof(err),
				    "vm '%s': the migration %s -> %s completed before the cancel",
				    a->name, from, to);
			} else if (strncmp(me, "cancelled:", 10) == 0) {
				snprintf(result, sizeof(result), "cancelled");
			} else {
				snprintf(result, sizeof(result), "failed");
				snprintf(err, sizeof(err), "vm '%s': migration %s -> %s: %s",
					 a->name, from, to, *me ? me : "did not complete");
			}
		}
		gw_cl_vm_list__free_unpacked(l, NULL);
		if (result[0])
			break;
		if (deadline && gw_now_mono_ms() >= deadline) {
			snprintf(err, sizeof(err),
				 "vm '%s': cancel asked, the migration %s -> %s has not ended "
				 "within the timeout",
				 a->name, from, to);
			gw_ctl_print_error(stdout, stderr, err, ETIMEDOUT, a->json);
			return EXIT_ERR;
		}
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	bool ok = strcmp(result, "cancelled") == 0;
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "name", a->name);
		gw_json_kv_str(&j, "from", from);
		gw_json_kv_str(&j, "to", to);
		gw_json_kv_str(&j, "result", result);
		gw_json_kv_str(&j, "host", host[0] ? host : NULL);
		gw_json_kv_str(&j, "error", ok ? NULL : err);
		gw_json_obj_end(&j);
		int jr = gw_json_finish(&j);
		if (!jr)
			printf("%s\n", gw_json_text(&j, NULL));
		gw_json_free(&j);
		return jr || !ok ? EXIT_ERR : EXIT_OK;
	}
	if (!ok) {
		fprintf(stderr, "godwitctl: %s\n", err);
		return EXIT_ERR;
	}
	printf("vm %s: migration %s -> %s cancelled; it runs on %s\n", a->name, from, to, host);
	return EXIT_OK;
}
