/* coord_test_msgs.h -- for the coordinator's unit tests: CPG messages as delivered (type + packed
 * payload + sender), fixtures (three hosts, running VMs) and assertions on the cluster state. */
#ifndef COORD_TEST_MSGS_H
#define COORD_TEST_MSGS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.pb-c.h"
#include "coord_state.h"
#include "gw_log.h"

/* ---- messages as CPG delivers them: type + packed payload + sender ---- */

struct msg {
	uint16_t type;
	uint8_t buf[4096];
	size_t len;
	uint32_t from;
};

static inline struct msg pack(uint16_t type, const void *m, uint32_t from)
{
	struct msg x = {.type = type, .from = from};
	x.len = protobuf_c_message_get_packed_size(m);
	assert_true(x.len <= sizeof(x.buf));
	protobuf_c_message_pack(m, x.buf);
	return x;
}

/* HELLO of a host whose agent runs VMs on backend (NULL: says nothing, an older agent). */
static inline struct msg hello_backend(uint32_t nodeid, const char *name, uint64_t mem,
				       const char *backend)
{
	GwClHello h = GW_CL_HELLO__INIT;
	h.nodeid = nodeid;
	h.name = (char *)name;
	h.has_mem_total_mib = 1;
	h.mem_total_mib = mem;
	h.agent_listen = "198.18.0.1:7420";
	h.time_ms = 1000 + nodeid;
	h.vm_backend = (char *)backend;
	return pack(GW_CL_MSG_TYPE__GW_CL_HELLO, &h, nodeid);
}

static inline struct msg hello(uint32_t nodeid, const char *name, uint64_t mem)
{
	GwClHello h = GW_CL_HELLO__INIT;
	h.nodeid = nodeid;
	h.name = (char *)name;
	h.has_mem_total_mib = 1;
	h.mem_total_mib = mem;
	h.agent_listen = "198.18.0.1:7420";
	h.time_ms = 1000 + nodeid;
	return pack(GW_CL_MSG_TYPE__GW_CL_HELLO, &h, nodeid);
}

static inline struct msg define(const char *name, const char *host, const char *group, uint32_t mem)
{
	GwClVm v = GW_CL_VM__INIT;
	GwClVmDefine d = GW_CL_VM_DEFINE__INIT;
	v.name = (char *)name;
	v.host = (char *)host;
	v.state = "starting";
	v.ha = true;
	v.has_priority = 1;
	v.priority = 1;
	v.anti_affinity = (char *)group;
	v.image = "/img/hello.elf";
	v.memory_mib = mem;
	d.vm = &v;
	d.time_ms = 2000;
	return pack(GW_CL_MSG_TYPE__GW_CL_VM_DEFINE, &d, 1);
}

static inline struct msg vmstate(const char *name, const char *host, const char *state,
				 uint32_t from)
{
	GwClVmStateMsg s = GW_CL_VM_STATE_MSG__INIT;
	s.name = (char *)name;
	s.host = (char *)host;
	s.state = (char *)state;
	s.reason = "guest exited";
	s.time_ms = 3000;
	return pack(GW_CL_MSG_TYPE__GW_CL_VM_STATE, &s, from);
}

/* MIGRATE_START (result NULL) or MIGRATE_DONE (result set), sent by node `sender`. */
static inline struct msg mig(uint16_t type, const char *vm, const char *from, const char *to,
			     uint64_t id, const char *result, const char *error, bool evac,
			     uint32_t sender)
{
	GwClMigrate g = GW_CL_MIGRATE__INIT;
	g.vm = (char *)vm;
	g.from = (char *)from;
	g.to = (char *)to;
	g.id = id;
	g.result = (char *)result;
	g.error = (char *)error;
	g.has_evacuation = evac;
	g.evacuation = evac;
	g.time_ms = 7000 + id;
	return pack(type, &g, sender);
}

static inline struct msg mstart(const char *vm, const char *from, const char *to, uint64_t id)
{
	return mig(GW_CL_MSG_TYPE__GW_CL_MIGRATE_START, vm, from, to, id, NULL, NULL, false, 3);
}

static inline struct msg mstart_evac(const char *vm, const char *from, const char *to, uint64_t id)
{
	return mig(GW_CL_MSG_TYPE__GW_CL_MIGRATE_START, vm, from, to, id, NULL, NULL, true, 1);
}

static inline struct msg mdone(const char *vm, const char *from, const char *to, uint64_t id,
			       const char *result, const char *error, uint32_t sender)
{
	return mig(GW_CL_MSG_TYPE__GW_CL_MIGRATE_DONE, vm, from, to, id, result, error, false,
		   sender);
}

/* MIGRATE_CANCEL of migration id, asked at node `sender` (any member). */
static inline struct msg mcancel(const char *vm, const char *from, const char *to, uint64_t id,
				 uint32_t sender)
{
	return mig(GW_CL_MSG_TYPE__GW_CL_MIGRATE_CANCEL, vm, from, to, id, NULL, NULL, false,
		   sender);
}

static inline struct msg maint(uint16_t type, const char *host, uint64_t id, const char *error)
{
	GwClMaint q = GW_CL_MAINT__INIT;
	q.host = (char *)host;
	q.has_id = 1;
	q.id = id;
	q.error = (char *)error;
	q.time_ms = 9000 + id;
	return pack(type, &q, 1);
}

/* VM_ADMIN: action stop | start | delete, from an operator's member (node 2). */
static inline struct msg admin(const char *name, const char *action)
{
	GwClVmAdmin a = GW_CL_VM_ADMIN__INIT;
	a.name = (char *)name;
	a.action = (char *)action;
	a.time_ms = 11000;
	return pack(GW_CL_MSG_TYPE__GW_CL_VM_ADMIN, &a, 2);
}

static inline struct msg fence_msg(uint16_t type, const char *host)
{
	GwClFence f = GW_CL_FENCE__INIT;
	f.host = (char *)host;
	f.has_attempt = 1;
	f.attempt = 1;
	f.time_ms = 4000;
	return pack(type, &f, 1);
}

#define T_ENTER GW_CL_MSG_TYPE__GW_CL_MAINT_ENTER
#define T_EXIT	GW_CL_MSG_TYPE__GW_CL_MAINT_EXIT
#define T_EVEND GW_CL_MSG_TYPE__GW_CL_EVAC_END

static inline void apply(struct gw_coord_state *st, const struct msg *m)
{
	assert_int_equal(gw_coord_state_apply(st, m->type, m->buf, m->len, m->from), 0);
}

/* ---- fixtures and views of the state ---- */

/* n1..n3 (node ids 1..3) up with mem MiB each. */
static inline void three_hosts(struct gw_coord_state *st, uint64_t mem)
{
	gw_coord_state_init(st, NULL);
	for (uint32_t i = 1; i <= 3; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%u", i);
		struct msg m = hello(i, name, mem);
		apply(st, &m);
	}
}

/* A VM defined on host (node id nodeid) and reported running by that host. */
static inline void running_vm(struct gw_coord_state *st, const char *name, const char *host,
			      uint32_t nodeid, const char *group, uint32_t mem)
{
	struct msg d = define(name, host, group, mem), r = vmstate(name, host, "running", nodeid);
	apply(st, &d);
	apply(st, &r);
	assert_int_equal(gw_coord_vm_find(st, name)->state, GW_CVM_RUNNING);
}

static inline struct gw_coord_vm *vm_of(struct gw_coord_state *st, const char *name)
{
	struct gw_coord_vm *vm = gw_coord_vm_find(st, name);
	assert_non_null(vm);
	return vm;
}

static inline struct gw_coord_host *host_of(struct gw_coord_state *st, const char *name)
{
	struct gw_coord_host *h = gw_coord_host_by_name(st, name);
	assert_non_null(h);
	return h;
}

/* Hosts and VMs, byte for byte (events left out): "nothing changed" is a memcmp. */
struct frozen {
	struct gw_coord_host hosts[GW_COORD_MAX_HOSTS];
	size_t n_hosts;
	struct gw_coord_vm *vms;
	size_t n_vms;
	size_t n_events;
	uint64_t next_event_seq;
};

static inline void freeze(const struct gw_coord_state *st, struct frozen *f)
{
	memcpy(f->hosts, st->hosts, sizeof(f->hosts));
	f->n_hosts = st->n_hosts;
	f->n_vms = st->n_vms;
	f->vms = malloc((st->n_vms + 1) * sizeof(*f->vms));
	assert_non_null(f->vms);
	memcpy(f->vms, st->vms, st->n_vms * sizeof(*f->vms));
	f->n_events = st->n_events;
	f->next_event_seq = st->next_event_seq;
}

/* Hosts and VMs are as frozen; exactly `new_events` events were added since. */
static inline void assert_unchanged(const struct gw_coord_state *st, struct frozen *f,
				    size_t new_events)
{
	assert_int_equal(st->n_hosts, f->n_hosts);
	assert_memory_equal(st->hosts, f->hosts, sizeof(f->hosts));
	assert_int_equal(st->n_vms, f->n_vms);
	if (st->n_vms)
		assert_memory_equal(st->vms, f->vms, st->n_vms * sizeof(*f->vms));
	assert_int_equal(st->next_event_seq, f->next_event_seq + new_events);
	free(f->vms);
	f->vms = NULL;
}

static inline const struct gw_coord_event *last_event(const struct gw_coord_state *st)
{
	assert_true(st->n_events > 0);
	return &st->events[(st->ev_first + st->n_events - 1) % GW_COORD_MAX_EVENTS];
}

/* The newest event is of kind, about host and vm ("" = none), and its text holds `has`. */
static inline void assert_last_event(const struct gw_coord_state *st, const char *kind,
				     const char *host, const char *vm, const char *has)
{
	const struct gw_coord_event *e = last_event(st);
	assert_string_equal(e->kind, kind);
	assert_string_equal(e->host, host);
	assert_string_equal(e->vm, vm);
	if (has && !strstr(e->text, has))
		fail_msg("event %s: '%s' does not mention '%s'", e->kind, e->text, has);
}

/* Apply m and check it was refused: hosts and VMs untouched, one event of that kind. */
static inline void assert_refused(struct gw_coord_state *st, const struct msg *m, const char *kind,
				  const char *host, const char *vm, const char *has)
{
	struct frozen f;
	freeze(st, &f);
	apply(st, m);
	assert_unchanged(st, &f, 1);
	assert_last_event(st, kind, host, vm, has);
}

static inline bool str_has(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

#endif
