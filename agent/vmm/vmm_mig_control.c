/* vmm_mig_control.c -- godwit-vmm's migration requests: start a source or destination engine,
 * report progress, cancel, and settle how the migration ended. */
#include "vmm_mig_control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_tls.h"
#include "gw_transport.h"
#include "migrate.h"
#include "migration.pb-c.h"

#define SUBSYS "migrate"

extern const struct gw_mig_vm_ops gw_mig_vmm_ops;

static struct gw_migration mig;
static bool mig_running; /* engine thread exists (until finish) */
static uint8_t *mig_key;
static size_t mig_keylen;
static struct gw_tls_ctx *mig_tls; /* the agent's [tls] for this migration's links */

bool gw_vmm_mig_is_request(uint16_t t)
{
	return t == GW_MIG_MSG_TYPE__GW_MIG_VMM_OUT || t == GW_MIG_MSG_TYPE__GW_MIG_VMM_IN ||
	       t == GW_MIG_MSG_TYPE__GW_MIG_VMM_CANCEL || t == GW_MIG_MSG_TYPE__GW_MIG_VMM_PROGRESS;
}

bool gw_vmm_mig_active(void)
{
	return mig_running;
}

int gw_vmm_mig_event_fd(void)
{
	return mig_running ? mig.done_efd : -1;
}

static int reply_progress(int fd)
{
	struct gw_mig_stats st;
	GwMigProgress p;
	gw_mig_get_stats(&mig, &st);
	gw_mig_to_progress(&mig, &st, &p);
	return gw_msg_send(fd, GW_MIG_MSG_TYPE__GW_MIG_PROGRESS, &p.base);
}

static void set_key(const uint8_t *k, size_t len)
{
	free(mig_key);
	mig_key = malloc(len ? len : 1);
	if (mig_key)
		memcpy(mig_key, k, len);
	mig_keylen = mig_key ? len : 0;
}

/* Load the agent's [tls] settings (absent: off). 0, or -errno with the reason in err. */
static int set_tls(const GwTlsConf *t, char *err, size_t errlen)
{
	enum gw_tls_mode mode = GW_TLS_OFF;
	gw_tls_ctx_free(mig_tls);
	mig_tls = NULL;
	if (!t || gw_tls_parse_mode(t->mode, &mode) || mode == GW_TLS_OFF)
		return 0;
	return gw_tls_ctx_new(mode, t->ca, t->cert, t->key, &mig_tls, err, errlen);
}

static int start_out(struct gw_vmm_mig_ctx *ctx, int fd, const uint8_t *payload, uint32_t len)
{
	GwVmmMigrateOut *o = gw_vmm_migrate_out__unpack(NULL, len, payload);
	if (!o)
		return gw_msg_send_error(fd, -EBADMSG, "malformed migrate request");
	const char *why = NULL;
	int r, code = -EINVAL;
	if (mig_running) {
		why = "a migration is already running";
		code = -EBUSY;
	} else if (gw_vmm_get_state(ctx->vmm, NULL, NULL, 0) != GW_VMM_RUNNING) {
		why = "only a running VM can be migrated";
	} else if (o->streams < 1 || o->streams > GW_MIG_MAX_STREAMS) {
		why = "streams must be in 1..16";
	} else if (o->key.len < 16) {
		why = "cluster key too short";
	} else if (o->transport && *o->transport && strcmp(o->transport, "tcp") &&
		   strcmp(o->transport, "rdma")) {
		why = "unknown transport (tcp or rdma)";
	} else if (o->transport && !strcmp(o->transport, "rdma") && !gw_transport_get("rdma")) {
		why = "RDMA transport not built into this agent";
		code = -EPROTONOSUPPORT;
	}
	char terr[512];
	if (!why && (r = set_tls(o->tls, terr, sizeof(terr)))) {
		why = terr;
		code = r;
	}
	if (why) {
		gw_vmm_migrate_out__free_unpacked(o, NULL);
		return gw_msg_send_error(fd, code, "%s", why);
	}
	gw_mig_init(&mig, GW_MIG_SOURCE);
	mig.id = o->migration_id;
	snprintf(mig.name, sizeof(mig.name), "%s", ctx->name);
	snprintf(mig.params.to, sizeof(mig.params.to), "%s", o->to);
	mig.params.streams = o->streams;
	mig.params.downtime_ms = o->downtime_ms;
	mig.params.bandwidth_mibps = o->bandwidth_mibps;
	mig.params.timeout_s = o->timeout_s;
	snprintf(mig.params.transport, sizeof(mig.params.transport), "%s",
		 o->transport && *o->transport ? o->transport : "tcp");
	snprintf(mig.outcome_dir, sizeof(mig.outcome_dir), "%s", o->outcome_dir);
	snprintf(mig.source_listen, sizeof(mig.source_listen), "%s",
		 o->source_listen ? o->source_listen : "");
	snprintf(mig.node, sizeof(mig.node), "%s", o->node ? o->node : "");
	set_key(o->key.data, o->key.len);
	mig.key = mig_key;
	mig.keylen = mig_keylen;
	mig.tls = mig_tls;
	mig.vmops = &gw_mig_vmm_ops;
	mig.vm = ctx->vmm;
	/* what the destination needs to define the VM: image and command line */
	mig.begin = calloc(1, sizeof(*mig.begin));
	if (mig.begin) {
		gw_mig_begin__init(mig.begin);
		mig.begin->vm_backend = strdup(gw_vmm_backend_name(ctx->vmm));
		char path[4200], *data;
		size_t dlen;
		snprintf(path, sizeof(path), "%s/vm.pb", ctx->dir);
		if (gw_file_read(path, 65536, &data, &dlen) == 0) {
			GwVmInfo *vi = gw_vm_info__unpack(NULL, dlen, (uint8_t *)data);
			if (vi) {
				mig.begin->image = strdup(vi->image);
				mig.begin->cmdline = vi->cmdline ? strdup(vi->cmdline) : NULL;
				gw_vm_info__free_unpacked(vi, NULL);
			}
			free(data);
		}
	}
	gw_vmm_migrate_out__free_unpacked(o, NULL);
	char stale[4200];
	snprintf(stale, sizeof(stale), "%s/migration.pb", ctx->dir);
	unlink(stale); /* the result of an earlier attempt must not pass for this one's */
	r = gw_mig_source_start(&mig);
	if (r)
		return gw_msg_send_error(fd, r, "cannot start migration: %s", strerror(-r));
	mig_running = true;
	gw_info(SUBSYS,
		"%s: migration %llu to %s started (%u %s streams, downtime %u ms, "
		"bandwidth %u MiB/s, timeout %u s, dirty log %s)",
		ctx->name, (unsigned long long)mig.id, mig.params.to, mig.params.streams,
		gw_mig_transport(&mig), mig.params.downtime_ms, mig.params.bandwidth_mibps,
		mig.params.timeout_s, gw_mig_vmm_ops.dirty_mode(ctx->vmm));
	return reply_progress(fd);
}

static int start_in(struct gw_vmm_mig_ctx *ctx, int fd, const uint8_t *payload, uint32_t len,
		    int passed_fd)
{
	GwVmmMigrateIn *in = gw_vmm_migrate_in__unpack(NULL, len, payload);
	struct gw_conn *c = NULL;
	int r;
	if (!in || passed_fd < 0) {
		if (in)
			gw_vmm_migrate_in__free_unpacked(in, NULL);
		if (passed_fd >= 0)
			close(passed_fd);
		return gw_msg_send_error(fd, -EBADMSG, "malformed migrate-in request");
	}
	r = gw_tcp_conn_from_fd(passed_fd, NULL, &c);
	if (r) {
		close(passed_fd);
		gw_vmm_migrate_in__free_unpacked(in, NULL);
		return gw_msg_send_error(fd, r, "cannot adopt connection: %s", strerror(-r));
	}
	char terr[512] = "";
	if (in->stream < 0 && !mig_running)
		r = set_tls(in->tls, terr, sizeof(terr));
	if (!r) {
		gw_conn_set_timeout(c, 5000); /* the agent waits for this answer */
		r = gw_tls_server_resume(mig_tls, in->tls_peer, &c);
	}
	if (r) {
		gw_warn(SUBSYS, "%s: handed-over link: %s", ctx->name,
			terr[0] ? terr : gw_tls_last_error());
		gw_conn_close(c);
		gw_vmm_migrate_in__free_unpacked(in, NULL);
		return gw_msg_send_error(fd, r, "TLS on the handed-over link: %s",
					 terr[0] ? terr : gw_tls_last_error());
	}
	gw_conn_set_timeout(c, GW_TRANSPORT_TIMEOUT_MS);
	if (in->stream < 0) {
		/* the control connection: this creates the destination engine */
		GwMigBegin *b = in->has_begin
				    ? gw_mig_begin__unpack(NULL, in->begin.len, in->begin.data)
				    : NULL;
		if (mig_running || !b ||
		    gw_vmm_get_state(ctx->vmm, NULL, NULL, 0) != GW_VMM_CREATED) {
			if (b)
				gw_mig_begin__free_unpacked(b, NULL);
			gw_conn_close(c);
			gw_vmm_migrate_in__free_unpacked(in, NULL);
			return gw_msg_send_error(fd, -EINVAL,
						 "VM cannot take an incoming migration");
		}
		gw_mig_init(&mig, GW_MIG_DEST);
		snprintf(mig.name, sizeof(mig.name), "%s", ctx->name);
		if (in->has_key)
			set_key(in->key.data, in->key.len);
		mig.key = mig_key;
		mig.keylen = mig_keylen;
		mig.tls = mig_tls;
		mig.vmops = &gw_mig_vmm_ops;
		mig.vm = ctx->vmm;
		mig.begin = b;
		r = gw_mig_dest_start(&mig, c);
		gw_vmm_migrate_in__free_unpacked(in, NULL);
		if (r) {
			gw_conn_close(c);
			return gw_msg_send_error(fd, r, "cannot start incoming migration: %s",
						 strerror(-r));
		}
		mig_running = true;
		gw_info(SUBSYS, "%s: incoming migration %llu from %s (%u %s streams%s%s)",
			ctx->name, (unsigned long long)mig.id, mig.peer, mig.nstreams,
			gw_mig_transport(&mig), gw_conn_is_tls(c) ? ", TLS 1.3 from " : "",
			gw_tls_peer_name(c));
		return reply_progress(fd);
	}
	if (!mig_running || mig.role != GW_MIG_DEST || in->migration_id != mig.id) {
		gw_conn_close(c);
		gw_vmm_migrate_in__free_unpacked(in, NULL);
		return gw_msg_send_error(fd, -ENOENT, "no such incoming migration");
	}
	r = gw_mig_dest_add_stream(&mig, (unsigned)in->stream, c);
	gw_vmm_migrate_in__free_unpacked(in, NULL);
	if (r) {
		gw_conn_close(c);
		return gw_msg_send_error(fd, r, "data stream refused");
	}
	return reply_progress(fd);
}

int gw_vmm_mig_handle(struct gw_vmm_mig_ctx *ctx, int fd, uint16_t type, const uint8_t *payload,
		      uint32_t len, int passed_fd)
{
	switch (type) {
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_OUT:
		if (passed_fd >= 0)
			close(passed_fd);
		return start_out(ctx, fd, payload, len);
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_IN:
		return start_in(ctx, fd, payload, len, passed_fd);
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_CANCEL:
	case GW_MIG_MSG_TYPE__GW_MIG_VMM_PROGRESS:
		if (passed_fd >= 0)
			close(passed_fd);
		if (!mig.name[0])
			return gw_msg_send_error(fd, -ENOENT, "no migration");
		if (type == GW_MIG_MSG_TYPE__GW_MIG_VMM_CANCEL && mig_running) {
			gw_info(SUBSYS, "%s: migration %llu: cancel requested", ctx->name,
				(unsigned long long)mig.id);
			gw_mig_cancel(&mig);
		}
		return reply_progress(fd);
	}
	if (passed_fd >= 0)
		close(passed_fd);
	return gw_msg_send_error(fd, -EOPNOTSUPP, "unknown request type %u", type);
}

enum gw_vmm_mig_end gw_vmm_mig_finish(struct gw_vmm_mig_ctx *ctx, char *reason, size_t rlen,
				      char *migrated_to, size_t mlen, uint64_t *migration_id)
{
	struct gw_mig_stats st;
	GwMigProgress p;
	uint8_t buf[2048];
	char path[4200];
	uint64_t v;

	if (read(mig.done_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		gw_warn(SUBSYS, "%s: eventfd read: %s", ctx->name, strerror(errno));
	if (!atomic_load(&mig.finished))
		return GW_VMM_MIG_KEEP_RUNNING;
	gw_mig_join(&mig);
	mig_running = false;
	gw_mig_get_stats(&mig, &st);
	gw_mig_to_progress(&mig, &st, &p);
	size_t len = gw_mig_progress__get_packed_size(&p);
	if (len <= sizeof(buf)) {
		gw_mig_progress__pack(&p, buf);
		snprintf(path, sizeof(path), "%s/migration.pb", ctx->dir);
		gw_file_write_atomic(path, buf, len, 0600);
	}
	*migration_id = mig.id;
	migrated_to[0] = 0;
	gw_info(SUBSYS,
		"%s: migration %llu %s (%s) after %llu ms (CPU %llu ms), downtime %.2f ms, "
		"%u rounds, %llu pages sent, %llu zero%s%s",
		ctx->name, (unsigned long long)mig.id, gw_mig_result_name(st.result),
		mig.role == GW_MIG_SOURCE ? "source" : "destination",
		(unsigned long long)p.total_ms, (unsigned long long)st.cpu_ms, st.downtime_ms,
		st.round, (unsigned long long)st.pages_sent, (unsigned long long)st.pages_zero,
		st.error[0] ? ": " : "", st.error);
	if (mig.role == GW_MIG_SOURCE) {
		if (st.phase == GW_MIG_DONE) {
			snprintf(migrated_to, mlen, "%s", mig.peer);
			snprintf(reason, rlen, "migrated to %s (migration %llu)", mig.peer,
				 (unsigned long long)mig.id);
			return GW_VMM_MIG_EXIT;
		}
		return GW_VMM_MIG_KEEP_RUNNING;
	}
	if (st.phase == GW_MIG_DONE)
		return GW_VMM_MIG_KEEP_RUNNING;
	snprintf(reason, rlen, "incoming migration discarded: %s", st.error);
	return GW_VMM_MIG_EXIT;
}

void gw_vmm_mig_cancel_and_wait(void)
{
	if (!mig_running)
		return;
	gw_mig_cancel(&mig);
	gw_mig_join(&mig);
	mig_running = false;
}
