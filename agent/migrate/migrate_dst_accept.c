/* migrate_dst_accept.c -- the destination's own listener for data streams over a transport
 * whose connections cannot be handed from the agent to this process (RDMA): listen on the
 * address the control connection came in on, authenticate each connection, read its JOIN,
 * offer direct placement into guest RAM, hand it to the engine (migrate_dst.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_auth.h"
#include "gw_log.h"
#include "gw_pagebatch.h"
#include "migrate.h"
#include "migrate_dst.h"

#define SUBSYS	     "migrate"
#define DATA_AUTH_MS 10000 /* a data connection to our own listener: auth + JOIN */

/* Over a transport with direct placement: expose guest RAM on this connection and tell the
 * source where it is (len 0 when that fails: the pages then come on the stream). 0 or the
 * send's error; *placement says whether the source may place. */
static int offer_placement(struct gw_migration *m, struct gw_conn *c, bool *placement)
{
	struct gw_remote_mem rm = {0};
	GwMigPlacement pl = GW_MIG_PLACEMENT__INIT;
	int r = gw_conn_expose_mem(c, m->ram, m->ram_pages * GW_PAGE_SIZE, &rm);
	if (r) {
		gw_warn(SUBSYS,
			"%s: guest RAM not exposed to %s for direct placement (%s): pages "
			"come on the stream",
			m->name, gw_conn_peer_name(c), strerror(-r));
		memset(&rm, 0, sizeof(rm));
	}
	pl.addr = rm.addr;
	pl.len = rm.len;
	pl.rkey = rm.rkey;
	*placement = rm.len != 0;
	return gw_mig_send(c, GW_MIG_MSG_TYPE__GW_MIG_PLACEMENT, &pl.base);
}

/* ---- data streams over a transport that cannot be handed over (RDMA): this process
 * listens on the control connection's local address and accepts them itself ---- */

/* A data connection that failed a check: one line naming the peer and why. */
static void data_drop(struct gw_migration *m, struct gw_conn *c, const char *why)
{
	gw_warn(SUBSYS, "%s: %s data connection from %s dropped: %s", m->name, gw_mig_transport(m),
		gw_conn_peer_name(c), why);
	pthread_mutex_lock(&m->conn_lock);
	m->data_pending = NULL;
	pthread_mutex_unlock(&m->conn_lock);
	gw_conn_close(c);
}

/* Authenticate one accepted connection, read its JOIN, hand it to its stream. */
static void data_join(struct gw_migration *m, struct gw_conn *c)
{
	char why[160];
	uint16_t type = 0;
	uint8_t *p = NULL;
	uint32_t len = 0;
	gw_conn_set_timeout(c, DATA_AUTH_MS);
	int r = gw_auth_server(c, m->key, m->keylen);
	if (r) {
		data_drop(m, c,
			  r == -EACCES ? "authentication failed (wrong cluster key)"
				       : strerror(-r));
		return;
	}
	r = gw_mig_recv(c, &type, &p, &len);
	GwMigJoin *j =
	    !r && type == GW_MIG_MSG_TYPE__GW_MIG_JOIN ? gw_mig_join__unpack(NULL, len, p) : NULL;
	free(p);
	if (r)
		snprintf(why, sizeof(why), "no JOIN: %s", strerror(-r));
	else if (!j)
		snprintf(why, sizeof(why), "expected a JOIN, got %s message type %u",
			 type == GW_MIG_MSG_TYPE__GW_MIG_JOIN ? "a malformed" : "", type);
	else if (j->migration_id != m->id)
		snprintf(why, sizeof(why), "JOIN for migration %llu, not %llu",
			 (unsigned long long)j->migration_id, (unsigned long long)m->id);
	else if (j->stream >= m->nstreams)
		snprintf(why, sizeof(why), "stream %u out of range (%u streams)", j->stream,
			 m->nstreams);
	else
		why[0] = 0;
	if (why[0]) {
		if (j)
			gw_mig_join__free_unpacked(j, NULL);
		data_drop(m, c, why);
		return;
	}
	unsigned stream = j->stream;
	gw_mig_join__free_unpacked(j, NULL);
	pthread_mutex_lock(&m->conn_lock);
	bool stop = m->data_stop, dup = m->data_sink->taken_locked(stream);
	m->data_pending = NULL; /* from here on m->data[stream] (gw_mig_join shuts it down) */
	pthread_mutex_unlock(&m->conn_lock);
	if (stop) {
		gw_conn_close(c);
		return;
	}
	bool placement = false;
	if (!dup && gw_conn_can_place(c)) {
		r = offer_placement(m, c, &placement);
		if (r) {
			snprintf(why, sizeof(why), "stream %u: placement: %s", stream,
				 strerror(-r));
			data_drop(m, c, why);
			return;
		}
	}
	r = dup ? -EEXIST : m->data_sink->attach(m, stream, c, placement);
	if (r) {
		snprintf(why, sizeof(why), "stream %u: %s", stream,
			 r == -EEXIST ? "already joined" : strerror(-r));
		data_drop(m, c, why);
		return;
	}
	gw_debug(SUBSYS, "%s: data stream %u joined from %s (%s)", m->name, stream,
		 gw_conn_peer_name(c), gw_mig_transport(m));
}

static void *data_accept_thread(void *arg)
{
	struct gw_migration *m = arg;
	for (;;) {
		pthread_mutex_lock(&m->conn_lock);
		bool done = m->data_stop || m->data_joined >= m->nstreams;
		pthread_mutex_unlock(&m->conn_lock);
		if (done)
			break;
		struct gw_conn *c = NULL;
		int r = gw_conn_accept(m->data_lst, &c);
		if (r == -ECANCELED)
			break;
		if (r) {
			if (r != -ETIMEDOUT && r != -EAGAIN && r != -EINTR) {
				gw_warn(SUBSYS, "%s: accept on %s (%s): %s", m->name,
					gw_conn_local_name(m->data_lst), gw_mig_transport(m),
					strerror(-r));
				usleep(100 * 1000); /* not a busy loop on a persistent error */
			}
			continue;
		}
		pthread_mutex_lock(&m->conn_lock);
		bool stop = m->data_stop;
		if (!stop)
			m->data_pending = c; /* stop_data_accept may shut it down */
		pthread_mutex_unlock(&m->conn_lock);
		if (stop) {
			gw_conn_close(c);
			break;
		}
		data_join(m, c);
	}
	return NULL;
}

/* "HOST:0" on the host part of a local name ("A.B.C.D:PORT" / "[v6]:PORT"). */
static void any_port_on(const char *local, char *buf, size_t len)
{
	const char *end = local[0] == '[' ? strchr(local, ']') : strrchr(local, ':');
	int n = !end		  ? (int)strlen(local)
		: local[0] == '[' ? (int)(end - local) + 1
				  : (int)(end - local);
	snprintf(buf, len, "%.*s:0", n, local);
}

/* For a transport other than TCP: listen for the data streams and accept them in a thread
 * of our own; the port goes into the BEGIN reply. 0, or -errno with the reason in err. */
int gw_mig_data_listen(struct gw_migration *m, const struct gw_mig_data_sink *sink,
		       GwMigBeginReply *rep, char *err, size_t errlen)
{
	m->data_sink = sink;
	const char *tname = gw_mig_transport(m);
	char addr[GW_TRANSPORT_NAME_MAX + 8];
	struct gw_conn *lst;
	if (!strcmp(tname, "tcp"))
		return 0;
	const struct gw_transport_ops *ops = gw_transport_get(tname);
	if (!ops) {
		snprintf(err, errlen, "%s transport not built into this agent",
			 !strcmp(tname, "rdma") ? "RDMA" : tname);
		return -EPROTONOSUPPORT;
	}
	any_port_on(gw_conn_local_name(m->ctl), addr, sizeof(addr));
	struct gw_transport_opts o = {.timeout_ms = -1}; /* accept until shut down */
	int r = ops->listen(addr, &o, &lst);
	if (r) {
		snprintf(err, errlen, "%s listen on %s: %s", tname, addr, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&m->conn_lock);
	m->data_lst = lst; /* closed by gw_mig_join */
	pthread_mutex_unlock(&m->conn_lock);
	rep->has_data_port = 1;
	rep->data_port = (uint32_t)gw_conn_local_port(lst);
	gw_info(SUBSYS, "%s: migration %llu: %s data streams to %s", m->name,
		(unsigned long long)m->id, tname, gw_conn_local_name(lst));
	if (pthread_create(&m->accept_thread, NULL, data_accept_thread, m)) {
		snprintf(err, errlen, "cannot start the %s accept thread", tname);
		return -EAGAIN;
	}
	m->accept_started = true;
	return 0;
}

void gw_mig_data_stop_locked(struct gw_migration *m)
{
	m->data_stop = true;
	if (m->data_lst)
		gw_conn_shutdown(m->data_lst);
	if (m->data_pending)
		gw_conn_shutdown(m->data_pending);
}

void gw_mig_data_accept_join(struct gw_migration *m)
{
	if (m->accept_started) {
		pthread_join(m->accept_thread, NULL);
		m->accept_started = false;
	}
	gw_conn_close(m->data_lst);
	m->data_lst = NULL;
}
