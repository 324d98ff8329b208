/* coord_table.c -- the cluster state's tables: hosts, VMs and the event ring; lookups,
 * inserts and names. The bottom layer of the coordinator's state (no I/O, no apply). */
#include "coord_state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "gw_log.h"

#define SUBSYS "state"

const char *const gw_coord_host_names[] = {"up", "lost", "fencing", "fenced", "maintenance"};
const char *const gw_coord_vm_names[] = {"starting", "running", "pending", "unplaced",
					 "failed",   "lost",	"stopped"};

const char *gw_coord_host_state_name(enum gw_coord_host_state s)
{
	return (unsigned)s < sizeof(gw_coord_host_names) / sizeof(gw_coord_host_names[0])
		   ? gw_coord_host_names[s]
		   : "?";
}

const char *gw_coord_vm_state_name(enum gw_coord_vm_state s)
{
	return (unsigned)s < sizeof(gw_coord_vm_names) / sizeof(gw_coord_vm_names[0])
		   ? gw_coord_vm_names[s]
		   : "?";
}

int gw_coord_parse_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

void gw_coord_state_init(struct gw_coord_state *st, const char *path)
{
	memset(st, 0, sizeof(*st));
	st->next_event_seq = 1;
	COPY(st->path, path);
}

void gw_coord_state_free(struct gw_coord_state *st)
{
	for (size_t i = 0; i < st->n_vms; i++)
		free(st->vms[i].xml);
	free(st->vms);
	st->vms = NULL;
	st->n_vms = st->cap_vms = 0;
}

/* ---- lookups ---- */

struct gw_coord_host *gw_coord_host_by_name(struct gw_coord_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_hosts; i++)
		if (strcmp(st->hosts[i].name, name) == 0)
			return &st->hosts[i];
	return NULL;
}

struct gw_coord_host *gw_coord_host_by_nodeid(struct gw_coord_state *st, uint32_t nodeid)
{
	for (size_t i = 0; i < st->n_hosts; i++)
		if (st->hosts[i].nodeid == nodeid)
			return &st->hosts[i];
	return NULL;
}

struct gw_coord_vm *gw_coord_vm_find(struct gw_coord_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_vms; i++)
		if (strcmp(st->vms[i].name, name) == 0)
			return &st->vms[i];
	return NULL;
}

/* Insert keeping the array sorted by name (so that encodings compare byte for byte). */
struct gw_coord_vm *gw_coord_vm_insert(struct gw_coord_state *st, const char *name)
{
	size_t i;
	if (st->n_vms == st->cap_vms) {
		size_t cap = st->cap_vms ? st->cap_vms * 2 : 16;
		struct gw_coord_vm *nv = realloc(st->vms, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		st->vms = nv;
		st->cap_vms = cap;
	}
	for (i = 0; i < st->n_vms && strcmp(st->vms[i].name, name) < 0; i++)
		;
	memmove(&st->vms[i + 1], &st->vms[i], (st->n_vms - i) * sizeof(*st->vms));
	st->n_vms++;
	memset(&st->vms[i], 0, sizeof(st->vms[i]));
	COPY(st->vms[i].name, name);
	return &st->vms[i];
}

void gw_coord_vm_remove(struct gw_coord_state *st, size_t i)
{
	if (i >= st->n_vms)
		return;
	free(st->vms[i].xml);
	memmove(&st->vms[i], &st->vms[i + 1], (st->n_vms - i - 1) * sizeof(*st->vms));
	st->n_vms--;
}

int gw_coord_vm_set_xml(struct gw_coord_vm *vm, const char *xml)
{
	char *copy = NULL;
	if (xml && *xml) {
		size_t n = strnlen(xml, GW_COORD_XML_MAX + 1);
		if (n > GW_COORD_XML_MAX)
			return -EMSGSIZE;
		if (!(copy = malloc(n + 1)))
			return -ENOMEM;
		memcpy(copy, xml, n + 1);
	}
	free(vm->xml);
	vm->xml = copy;
	return 0;
}

/* Hosts are kept sorted by node id. */
struct gw_coord_host *gw_coord_host_insert(struct gw_coord_state *st, uint32_t nodeid)
{
	size_t i;
	if (st->n_hosts == GW_COORD_MAX_HOSTS)
		return NULL;
	for (i = 0; i < st->n_hosts && st->hosts[i].nodeid < nodeid; i++)
		;
	memmove(&st->hosts[i + 1], &st->hosts[i], (st->n_hosts - i) * sizeof(st->hosts[0]));
	st->n_hosts++;
	memset(&st->hosts[i], 0, sizeof(st->hosts[i]));
	st->hosts[i].nodeid = nodeid;
	return &st->hosts[i];
}

/* ---- events ---- */

static void eventv(struct gw_coord_state *st, uint64_t time_ms, const char *kind, const char *host,
		   const char *vm, const char *fmt, va_list ap)
{
	struct gw_coord_event *e;
	if (st->n_events == GW_COORD_MAX_EVENTS) {
		st->ev_first = (st->ev_first + 1) % GW_COORD_MAX_EVENTS;
		st->n_events--;
	}
	e = &st->events[(st->ev_first + st->n_events) % GW_COORD_MAX_EVENTS];
	st->n_events++;
	memset(e, 0, sizeof(*e));
	e->seq = st->next_event_seq++;
	e->time_ms = time_ms;
	COPY(e->kind, kind);
	COPY(e->host, host);
	COPY(e->vm, vm);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	gw_info("event", "#%llu %s%s%s%s%s: %s", (unsigned long long)e->seq, e->kind,
		e->host[0] ? " host=" : "", e->host, e->vm[0] ? " vm=" : "", e->vm, e->text);
}

void gw_coord_event(struct gw_coord_state *st, uint64_t time_ms, const char *kind, const char *host,
		    const char *vm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	eventv(st, time_ms, kind, host, vm, fmt, ap);
	va_end(ap);
}
