/* microvm_migrate.c -- the microvm driver's migration ops. The migration engine runs inside
 * the VM's godwit-vmm (agent/migrate/): these ops ask it to start, hand it the peer's
 * connections, and read its progress record. Once the VMM has exited, its last record is
 * the file STATE/vms/NAME/migration.pb it wrote on the way out (its only channel left). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "gw_fsutil.h"
#include "gw_tls.h"
#include "gw_transport.h"
#include "microvm_int.h"
#include "migration.pb-c.h"
#include "vmtable.h"

/* A reply that should be a progress record: unpack it (consumes payload). */
static int unpack_progress(struct gw_vm *vm, uint16_t rt, uint8_t *p, uint32_t len,
			   GwMigProgress **out, char *err, size_t errlen)
{
	*out =
	    rt == GW_MIG_MSG_TYPE__GW_MIG_PROGRESS ? gw_mig_progress__unpack(NULL, len, p) : NULL;
	free(p);
	if (!*out) {
		snprintf(err, errlen, "vm '%s': malformed progress reply from its VMM", vm->name);
		return -EPROTO;
	}
	return 0;
}

/* The agent's [tls] settings for the VMM's own links (NULL when off). */
static GwTlsConf *tls_conf(struct gw_agent *ag, GwTlsConf *t)
{
	if (!ag->tls)
		return NULL;
	gw_tls_conf__init(t);
	t->mode = ag->cfg.tls_mode;
	t->ca = ag->cfg.tls_ca;
	t->cert = ag->cfg.tls_cert;
	t->key = ag->cfg.tls_key;
	return t;
}

/* Hand the peer's connection to the VMM: a TLS session ends here (close_notify) and the VMM
 * shakes hands again on the same socket, insisting on the certificate name seen here. */
static int call_with_conn(struct gw_agent *ag, struct gw_vm *vm, GwVmmMigrateIn *in,
			  struct gw_conn *c, char *err, size_t errlen)
{
	GwTlsConf t;
	uint16_t rt;
	uint8_t *rp = NULL;
	uint32_t rl;
	in->tls = tls_conf(ag, &t);
	in->tls_peer = gw_conn_is_tls(c) ? (char *)gw_tls_peer_name(c) : NULL;
	int r = gw_tls_handoff(c);
	if (r) {
		snprintf(err, errlen, "vm '%s': %s", vm->name, gw_tls_last_error());
		return r;
	}
	r = gw_microvm_call(vm, GW_MIG_MSG_TYPE__GW_MIG_VMM_IN, &in->base, gw_conn_fd(c), &rt, &rp,
			    &rl, err, errlen);
	free(rp);
	return r;
}

static int vmm_progress_call(struct gw_vm *vm, uint16_t type, const ProtobufCMessage *msg,
			     GwMigProgress **out, char *err, size_t errlen)
{
	uint16_t rt;
	uint8_t *p = NULL;
	uint32_t len;
	int r = gw_microvm_call(vm, type, msg, -1, &rt, &p, &len, err, errlen);
	if (r)
		return r;
	return unpack_progress(vm, rt, p, len, out, err, errlen);
}

int gw_microvm_migrate_out(struct gw_agent *ag, struct gw_vm *vm, const GwVmMigrateReq *req,
			   uint64_t id, GwMigProgress **out, char *err, size_t errlen)
{
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/migrations", ag->cfg.state_dir);
	GwVmmMigrateOut o = GW_VMM_MIGRATE_OUT__INIT;
	o.to = req->to;
	o.streams = req->streams;
	o.downtime_ms = req->downtime_ms;
	o.bandwidth_mibps = req->bandwidth_mibps;
	o.timeout_s = req->timeout_s;
	o.key.data = ag->key;
	o.key.len = ag->keylen;
	o.migration_id = id;
	o.source_listen = ag->peer_addr;
	o.node = ag->cfg.node;
	o.outcome_dir = dir;
	o.transport = req->transport;
	GwTlsConf t;
	o.tls = tls_conf(ag, &t);
	return vmm_progress_call(vm, GW_MIG_MSG_TYPE__GW_MIG_VMM_OUT, &o.base, out, err, errlen);
}

int gw_microvm_migrate_in(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
			  const GwMigBegin *begin, const uint8_t *raw, uint32_t rawlen, char *err,
			  size_t errlen)
{
	int r = gw_microvm_start_incoming(ag, vm, err, errlen);
	if (r)
		return r;
	GwVmmMigrateIn in = GW_VMM_MIGRATE_IN__INIT;
	in.migration_id = begin->migration_id;
	in.stream = -1;
	in.has_key = 1;
	in.key.data = ag->key;
	in.key.len = ag->keylen;
	in.has_begin = 1;
	in.begin.data = (uint8_t *)raw;
	in.begin.len = rawlen;
	/* the VMM gets its own copy of the connection and answers BEGIN itself */
	r = call_with_conn(ag, vm, &in, c, err, errlen);
	if (r) {
		char e2[256];
		gw_microvm_stop(ag, vm, e2, sizeof(e2));
	}
	return r;
}

int gw_microvm_migrate_join(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
			    unsigned stream, char *err, size_t errlen)
{
	GwVmmMigrateIn in = GW_VMM_MIGRATE_IN__INIT;
	in.migration_id = vm->mig_id;
	in.stream = (int32_t)stream;
	return call_with_conn(ag, vm, &in, c, err, errlen);
}

int gw_microvm_progress(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
			size_t errlen)
{
	(void)ag;
	if (gw_vm_state_active(vm->state)) {
		GwVmmReq q = GW_VMM_REQ__INIT;
		if (vmm_progress_call(vm, GW_MIG_MSG_TYPE__GW_MIG_VMM_PROGRESS, &q.base, out, err,
				      errlen) == 0)
			return 0;
	}
	/* the VMM has ended (maybe a moment ago, before the agent reaped it): its final
	 * record is on disk */
	char path[PATH_MAX + 32], *data;
	size_t len;
	snprintf(path, sizeof(path), "%s/migration.pb", vm->dir);
	if (gw_file_read(path, 65536, &data, &len))
		return -ENOENT;
	*out = gw_mig_progress__unpack(NULL, len, (uint8_t *)data);
	free(data);
	if (!*out) {
		snprintf(err, errlen, "vm '%s': corrupt %s", vm->name, path);
		return -EBADMSG;
	}
	return 0;
}

int gw_microvm_cancel(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
		      size_t errlen)
{
	(void)ag;
	GwVmmReq q = GW_VMM_REQ__INIT;
	return vmm_progress_call(vm, GW_MIG_MSG_TYPE__GW_MIG_VMM_CANCEL, &q.base, out, err, errlen);
}
