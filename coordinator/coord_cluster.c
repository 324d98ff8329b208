/* coord_cluster.c -- corosync glue: CPG group "godwit" (ordered messages, membership), votequorum.
 */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cluster.pb-c.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS	    "cluster"
#define GROUP	    "godwit"
#define MCAST_TRIES 200

static const char *cs_err(cs_error_t e)
{
	switch (e) {
	case CS_OK:
		return "ok";
	case CS_ERR_LIBRARY:
		return "cannot reach corosync";
	case CS_ERR_TRY_AGAIN:
		return "try again";
	case CS_ERR_BAD_HANDLE:
		return "bad handle";
	case CS_ERR_ACCESS:
		return "access denied";
	case CS_ERR_NOT_EXIST:
		return "does not exist";
	default:
		return "corosync error";
	}
}

uint32_t gw_coord_acting(const struct gw_coord *c)
{
	if (!c->quorate || !c->n_members)
		return 0;
	return c->members[0]; /* kept sorted */
}

bool gw_coord_vq_member(const struct gw_coord *c, uint32_t nodeid)
{
	for (size_t i = 0; i < c->n_vq; i++)
		if (c->vq_members[i] == nodeid)
			return true;
	return false;
}

static bool cpg_member(const struct gw_coord *c, uint32_t nodeid)
{
	for (size_t i = 0; i < c->n_members; i++)
		if (c->members[i] == nodeid)
			return true;
	return false;
}

/*
 * Do CPG and votequorum describe the same partition? Every CPG member must be a votequorum
 * member, and every votequorum member that runs a coordinator (a known host) a CPG
 * member. A votequorum member whose coordinator is down breaks the second rule for good:
 * after 5 s of disagreement only the first one counts (and such a host is never fenced,
 * as corosync still sees it).
 */
static void check_views(struct gw_coord *c)
{
	bool agree = c->n_vq > 0 && gw_coord_vq_member(c, c->local_nodeid);
	bool strict = true;
	for (size_t i = 0; agree && i < c->n_members; i++)
		agree = gw_coord_vq_member(c, c->members[i]);
	for (size_t i = 0; agree && i < c->n_vq; i++)
		if (!cpg_member(c, c->vq_members[i]) &&
		    gw_coord_host_by_nodeid(&c->st, c->vq_members[i]))
			strict = false;
	unsigned long long now = gw_now_mono_ms();
	if (agree && strict) {
		c->disagree_since_ms = 0;
	} else if (!c->disagree_since_ms) {
		c->disagree_since_ms = now;
	}
	bool was = c->views_agree;
	c->views_agree = agree && (strict || now - c->disagree_since_ms >= 5000);
	bool equal = agree && c->n_vq == c->n_members;
	if (!c->quorate)
		c->had_quorum = false;
	else if (equal && c->synced && !c->waiting)
		c->had_quorum = true;
	if (was != c->views_agree)
		gw_info(SUBSYS, "CPG (%zu members) and votequorum (%zu members) %s", c->n_members,
			c->n_vq,
			c->views_agree ? "agree" : "disagree: not acting until they agree");
}

bool gw_coord_is_acting(const struct gw_coord *c)
{
	return c->synced && !c->waiting && c->views_agree && c->local_nodeid &&
	       gw_coord_acting(c) == c->local_nodeid;
}

int gw_coord_mcast(struct gw_coord *c, uint16_t type, const void *msg)
{
	const ProtobufCMessage *m = msg;
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 2);
	cs_error_t e = CS_ERR_LIBRARY;
	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)(type >> 8);
	buf[1] = (uint8_t)type;
	protobuf_c_message_pack(m, buf + 2);
	struct iovec iov = {buf, len + 2};
	for (int i = 0; c->cpg_ok && i < MCAST_TRIES; i++) {
		e = cpg_mcast_joined(c->cpg, CPG_TYPE_AGREED, &iov, 1);
		if (e != CS_ERR_TRY_AGAIN)
			break;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	free(buf);
	if (e != CS_OK) {
		gw_err(SUBSYS, "multicast of message type %u failed: %s", type, cs_err(e));
		return -EIO;
	}
	return 0;
}

int gw_coord_hello(struct gw_coord *c)
{
	GwClHello h = GW_CL_HELLO__INIT;
	char listen[64] = "", backend[16] = "";
	uint64_t total = 0, avail = 0;
	struct gw_coord_driver drv[GW_COORD_MAX_DRIVERS];
	GwClDriver cd[GW_COORD_MAX_DRIVERS], *cdp[GW_COORD_MAX_DRIVERS];
	size_t n_drv = 0;
	int r = gw_coord_agent_info(c, &total, &avail, listen, sizeof(listen), backend,
				    sizeof(backend), drv, &n_drv);
	/* an agent not answering yet, or a driver not available yet (libvirtd starting):
	 * announce again soon rather than in GW_COORD_HELLO_PERIOD_MS */
	c->hello_incomplete = r != 0;
	for (size_t i = 0; i < n_drv; i++) {
		c->hello_incomplete |= !drv[i].available;
		gw_cl_driver__init(&cd[i]);
		cd[i].name = drv[i].name;
		cd[i].available = drv[i].available;
		cd[i].status = drv[i].status[0] ? drv[i].status : NULL;
		cdp[i] = &cd[i];
	}
	h.n_drivers = n_drv;
	h.drivers = cdp;
	h.nodeid = c->local_nodeid;
	h.name = c->cfg.node;
	h.has_mem_total_mib = h.has_mem_avail_mib = 1;
	h.mem_total_mib = total;
	h.mem_avail_mib = avail;
	h.agent_listen = listen;
	h.vm_backend = backend[0] ? backend : NULL;
	h.time_ms = gw_now_wall_ms();
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	h.has_cpus_milli = h.has_link_mbps = h.has_max_in = h.has_max_out = 1;
	h.cpus_milli = c->cfg.bal.cpus_milli ? c->cfg.bal.cpus_milli
					     : (uint32_t)(cpus > 0 ? cpus : 1) * 1000u;
	h.link_mbps = c->cfg.bal.link_mbps;
	h.max_in = c->cfg.bal.max_in;
	h.max_out = c->cfg.bal.max_out;
	h.has_watchdog_s = 1;
	h.watchdog_s = gw_coord_watchdog_announce(c);
	c->last_hello_ms = gw_now_mono_ms();
	return gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_HELLO, &h);
}

/* ---- state transfer ---- */

static void pending_clear(struct gw_coord *c)
{
	free(c->cand);
	c->cand = NULL;
	c->cand_len = 0;
	for (size_t i = 0; i < c->n_pending; i++)
		free(c->pending[i]);
	c->n_pending = 0;
}

static void pending_add(struct gw_coord *c, const uint8_t *msg, size_t len, uint32_t from)
{
	if (c->n_pending == c->cap_pending) {
		size_t cap = c->cap_pending ? c->cap_pending * 2 : 32;
		uint8_t **p = realloc(c->pending, cap * sizeof(*p));
		size_t *l = p ? realloc(c->pending_len, cap * sizeof(*l)) : NULL;
		uint32_t *f = l ? realloc(c->pending_from, cap * sizeof(*f)) : NULL;
		if (p)
			c->pending = p;
		if (l)
			c->pending_len = l;
		if (!f) {
			gw_err(SUBSYS, "out of memory buffering a message until the snapshot");
			return;
		}
		c->pending_from = f;
		c->cap_pending = cap;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return;
	memcpy(copy, msg, len);
	c->pending[c->n_pending] = copy;
	c->pending_len[c->n_pending] = len;
	c->pending_from[c->n_pending] = from;
	c->n_pending++;
}

static void apply_one(struct gw_coord *c, const uint8_t *msg, size_t len, uint32_t from)
{
	uint16_t type = (uint16_t)((msg[0] << 8) | msg[1]);
	gw_coord_state_apply(&c->st, type, msg + 2, len - 2, from);
}

/* The snapshot a joiner waits for: take it, then replay what came after it. */
static void take_snapshot(struct gw_coord *c, const uint8_t *payload, size_t len, uint32_t from)
{
	int r = gw_coord_state_decode(&c->st, payload, len);
	if (r) {
		gw_err(SUBSYS, "snapshot from node %u unusable: %s; waiting for another", from,
		       strerror(-r));
		return;
	}
	c->synced = true;
	c->waiting = false;
	gw_info(SUBSYS, "state received from node %u: %zu hosts, %zu VMs; replaying %zu messages",
		from, c->st.n_hosts, c->st.n_vms, c->n_pending);
	for (size_t i = 0; i < c->n_pending; i++)
		apply_one(c, c->pending[i], c->pending_len[i], c->pending_from[i]);
	pending_clear(c);
	gw_coord_state_members(&c->st, c->members, c->n_members, gw_now_wall_ms());
	gw_coord_state_save(&c->st);
	gw_coord_hello(c);
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
		       void *msg, size_t len)
{
	struct gw_coord *c;
	if (cpg_context_get(h, (void **)&c) != CS_OK || !c)
		return;
	if (len < 2) {
		gw_warn(SUBSYS, "runt message (%zu bytes) from node %u ignored", len, nodeid);
		return;
	}
	const uint8_t *m = msg;
	uint16_t type = (uint16_t)((m[0] << 8) | m[1]);
	if (type == GW_CL_MSG_TYPE__GW_CL_MIG_PROGRESS) { /* not state: for the status page */
		gw_coord_progress_deliver(c, m + 2, len - 2);
		return;
	}
	if (type == GW_CL_MSG_TYPE__GW_CL_SNAPSHOT) {
		if (!c->waiting)
			return;
		GwClSnapshot *s = gw_cl_snapshot__unpack(NULL, len - 2, m + 2);
		bool quorate = s && s->quorate;
		if (s)
			gw_cl_snapshot__free_unpacked(s, NULL);
		if (quorate) {
			take_snapshot(c, m + 2, len - 2, nodeid);
		} else if (!c->cand && (c->cand = malloc(len - 2 + 1))) {
			/* a partition without quorum may hold stale state (a restarted host's
			 * durable copy): prefer a quorate sender's snapshot if one comes */
			memcpy(c->cand, m + 2, len - 2);
			c->cand_len = len - 2;
			c->cand_from = nodeid;
		}
		return;
	}
	if (c->waiting || !c->synced) {
		pending_add(c, m, len, nodeid);
		return;
	}
	apply_one(c, m, len, nodeid);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * A membership change. The snapshot sender, as this member sees it, is the lowest node id
 * among the members that are not new to it (they hold the state); if all are new (the
 * group forms), the lowest node id, starting from its durable copy. After every change
 * every member waits, buffering messages, for the FIRST snapshot delivered, adopts it and
 * replays what it buffered. When partitions merge, each side's sender multicasts and the
 * total order picks one snapshot for everybody; otherwise there is one sender.
 */
static void on_confchg(cpg_handle_t h, const struct cpg_name *group,
		       const struct cpg_address *members, size_t n_members,
		       const struct cpg_address *left, size_t n_left,
		       const struct cpg_address *joined, size_t n_joined)
{
	struct gw_coord *c;
	uint32_t sender = 0;
	if (cpg_context_get(h, (void **)&c) != CS_OK || !c)
		return;
	bool was_quorate = c->had_quorum; /* of the partition before this change */
	c->n_members = 0;
	for (size_t i = 0; i < n_members && i < GW_COORD_MAX_HOSTS; i++)
		c->members[c->n_members++] = members[i].nodeid;
	qsort(c->members, c->n_members, sizeof(c->members[0]), cmp_u32);
	check_views(c);
	for (size_t i = 0; i < c->n_members; i++) {
		bool new = false;
		for (size_t j = 0; j < n_joined; j++)
			new |= joined[j].nodeid == c->members[i];
		if (!new) {
			sender = c->members[i];
			break;
		}
	}
	bool forming = !sender;
	if (forming)
		sender = c->n_members ? c->members[0] : 0;
	for (size_t i = 0; i < n_left; i++)
		gw_info(SUBSYS, "node %u left the group (reason %u)", left[i].nodeid,
			left[i].reason);
	for (size_t i = 0; i < n_joined; i++)
		gw_info(SUBSYS, "node %u joined the group", joined[i].nodeid);
	gw_info(SUBSYS, "membership: %zu members, snapshot from node %u%s, this node %u %s",
		c->n_members, sender, forming ? " (group forming)" : "", c->local_nodeid,
		c->synced ? "synced" : "waiting for state");
	pending_clear(c);
	c->waiting = true;
	c->wait_since_ms = gw_now_mono_ms();
	if (!c->synced && forming && sender == c->local_nodeid) {
		c->synced = true; /* first of the group: our durable copy is the state */
		gw_info(SUBSYS,
			"group forming: starting from the durable state (%zu hosts, %zu VMs)",
			c->st.n_hosts, c->st.n_vms);
	}
	if (c->synced)
		gw_coord_state_members(&c->st, c->members, c->n_members, gw_now_wall_ms());
	if (c->synced && sender == c->local_nodeid) {
		uint8_t *buf;
		size_t len;
		if (gw_coord_state_encode(&c->st, c->local_nodeid, was_quorate, &buf, &len) == 0) {
			uint8_t *msg = malloc(len + 2);
			if (msg) {
				msg[0] = (uint8_t)(GW_CL_MSG_TYPE__GW_CL_SNAPSHOT >> 8);
				msg[1] = (uint8_t)GW_CL_MSG_TYPE__GW_CL_SNAPSHOT;
				memcpy(msg + 2, buf, len);
				struct iovec iov = {msg, len + 2};
				cs_error_t e;
				int tries = 0;
				while ((e = cpg_mcast_joined(c->cpg, CPG_TYPE_AGREED, &iov, 1)) ==
					   CS_ERR_TRY_AGAIN &&
				       tries++ < MCAST_TRIES) {
					struct timespec ts = {0, 5 * 1000 * 1000};
					nanosleep(&ts, NULL);
				}
				if (e != CS_OK)
					gw_err(SUBSYS, "sending the snapshot failed: %s",
					       cs_err(e));
				free(msg);
			}
			free(buf);
		}
	}
}

void gw_coord_hello_step(struct gw_coord *c)
{
	unsigned long long since = gw_now_mono_ms() - c->last_hello_ms;
	if (since >= GW_COORD_HELLO_PERIOD_MS ||
	    (c->hello_incomplete && since >= GW_COORD_HELLO_RETRY_MS))
		gw_coord_hello(c);
}

void gw_coord_cluster_tick(struct gw_coord *c)
{
	check_views(c);
	unsigned long long waited = gw_now_mono_ms() - c->wait_since_ms;
	if (c->waiting && c->cand && waited >= 1000) {
		uint8_t *cand = c->cand;
		c->cand = NULL; /* take_snapshot clears the buffer */
		gw_info(SUBSYS, "no snapshot from a quorate partition: taking node %u's",
			c->cand_from);
		take_snapshot(c, cand, c->cand_len, c->cand_from);
		free(cand);
		return;
	}
	if (!c->waiting || !c->synced || waited < 3000)
		return;
	gw_warn(SUBSYS,
		"no snapshot 3 s after the membership change (sender left?): keeping "
		"this member's state, replaying %zu messages",
		c->n_pending);
	c->waiting = false;
	for (size_t i = 0; i < c->n_pending; i++)
		apply_one(c, c->pending[i], c->pending_len[i], c->pending_from[i]);
	pending_clear(c);
	gw_coord_state_save(&c->st);
}

static void on_quorum(votequorum_handle_t h, uint64_t ctx, uint32_t quorate, uint32_t n,
		      votequorum_node_t nodes[])
{
	struct gw_coord *c;
	if (votequorum_context_get(h, (void **)&c) != CS_OK || !c)
		return;
	c->n_vq = 0;
	for (uint32_t i = 0; i < n && c->n_vq < GW_COORD_MAX_HOSTS; i++)
		if (nodes[i].state == VOTEQUORUM_NODESTATE_MEMBER)
			c->vq_members[c->n_vq++] = nodes[i].nodeid;
	if (c->quorate != !!quorate)
		gw_info(SUBSYS, "quorum %s (%zu of %u nodes members)", quorate ? "gained" : "LOST",
			c->n_vq, n);
	c->quorate = !!quorate;
	check_views(c);
}

static cpg_callbacks_t cpg_cbs = {.cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg};
static votequorum_callbacks_t vq_cbs = {.votequorum_quorum_notify_fn = on_quorum};

/* Connect to corosync: join the group, track quorum. -EAGAIN while corosync is not up. */
int gw_coord_cluster_init(struct gw_coord *c)
{
	struct cpg_name name;
	cs_error_t e;
	unsigned int nodeid;

	snprintf(name.value, sizeof(name.value), "%s", GROUP);
	name.length = (uint32_t)strlen(GROUP);
	if (!c->cpg_ok) {
		e = cpg_initialize(&c->cpg, &cpg_cbs);
		if (e != CS_OK)
			return -EAGAIN;
		cpg_context_set(c->cpg, c);
		if (cpg_local_get(c->cpg, &nodeid) != CS_OK ||
		    cpg_fd_get(c->cpg, &c->cpg_fd) != CS_OK) {
			cpg_finalize(c->cpg);
			return -EAGAIN;
		}
		c->local_nodeid = nodeid;
		while ((e = cpg_join(c->cpg, &name)) == CS_ERR_TRY_AGAIN) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (e != CS_OK) {
			gw_err(SUBSYS, "cannot join CPG group %s: %s", GROUP, cs_err(e));
			cpg_finalize(c->cpg);
			return -EAGAIN;
		}
		c->cpg_ok = true;
		c->synced = false;
		c->waiting = false;
		c->had_quorum = false;
		gw_info(SUBSYS, "joined CPG group %s as node %u (%s)", GROUP, nodeid, c->cfg.node);
	}
	if (!c->vq_ok) {
		e = votequorum_initialize(&c->vq, &vq_cbs);
		if (e != CS_OK)
			return -EAGAIN;
		votequorum_context_set(c->vq, c);
		if (votequorum_fd_get(c->vq, &c->vq_fd) != CS_OK ||
		    votequorum_trackstart(c->vq, 0, CS_TRACK_CURRENT | CS_TRACK_CHANGES) != CS_OK) {
			votequorum_finalize(c->vq);
			return -EAGAIN;
		}
		c->vq_ok = true;
		gw_info(SUBSYS, "tracking votequorum");
	}
	return 0;
}

void gw_coord_cluster_close(struct gw_coord *c)
{
	if (c->cpg_ok) {
		cpg_finalize(c->cpg);
		c->cpg_ok = false;
	}
	if (c->vq_ok) {
		votequorum_finalize(c->vq);
		c->vq_ok = false;
	}
	c->quorate = false;
	c->n_members = 0;
	c->n_vq = 0;
	c->views_agree = false;
	c->had_quorum = false;
	pending_clear(c);
}

int gw_coord_cluster_dispatch_cpg(struct gw_coord *c)
{
	cs_error_t e = cpg_dispatch(c->cpg, CS_DISPATCH_ALL);
	if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
		gw_err(SUBSYS, "lost corosync (CPG: %s): no quorum until it is back", cs_err(e));
		gw_coord_cluster_close(c);
		return -EIO;
	}
	return 0;
}

int gw_coord_cluster_dispatch_vq(struct gw_coord *c)
{
	cs_error_t e = votequorum_dispatch(c->vq, CS_DISPATCH_ALL);
	if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
		gw_err(SUBSYS, "lost corosync (votequorum: %s)", cs_err(e));
		gw_coord_cluster_close(c);
		return -EIO;
	}
	return 0;
}
