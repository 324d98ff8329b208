/* coord_place.c -- placement over the cluster state: which host a VM fits on (memory, group,
 * VM driver, VM backend), and which pending VM to restart next. */
#include "coord_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_log.h"

#define SUBSYS "state"

static bool vm_active(const struct gw_coord_vm *vm)
{
	return vm->state == GW_CVM_STARTING || vm->state == GW_CVM_RUNNING;
}

/* Memory of the active VMs on h (or migrating to it) but vm_name; clash: one is in group. */
static uint64_t host_used(const struct gw_coord_state *st, const struct gw_coord_host *h,
			  const char *vm_name, const char *group, bool *clash)
{
	uint64_t used = 0;
	*clash = false;
	for (size_t j = 0; j < st->n_vms; j++) {
		const struct gw_coord_vm *vm = &st->vms[j];
		if (!vm_active(vm) || strcmp(vm->name, vm_name) == 0 ||
		    (strcmp(vm->host, h->name) != 0 && strcmp(vm->migrate_to, h->name) != 0))
			continue;
		used += vm->memory_mib;
		*clash |= group && group[0] && strcmp(vm->group, group) == 0;
		*clash |= gw_coord_rule_clash(st, vm_name, vm->name);
	}
	return used;
}

/* Do the VM backends of two hosts allow a live migration between them ("" = unknown: yes)? */
static bool same_backend(const char *a, const char *b)
{
	return !a || !b || !a[0] || !b[0] || strcmp(a, b) == 0;
}

static bool is_libvirt(const char *driver)
{
	return driver && strcmp(driver, "libvirt") == 0;
}

bool gw_coord_vm_is_libvirt(const struct gw_coord_vm *vm)
{
	return is_libvirt(vm->driver);
}

bool gw_coord_host_has_driver(const struct gw_coord_host *h, const char *driver)
{
	const char *want = driver && *driver ? driver : "microvm";
	if (h->n_drivers == 0) /* an agent from before the driver list: micro-VMs only */
		return strcmp(want, "microvm") == 0;
	for (size_t i = 0; i < h->n_drivers && i < GW_COORD_MAX_DRIVERS; i++)
		if (strcmp(h->drivers[i].name, want) == 0)
			return h->drivers[i].available;
	return false;
}

int gw_coord_place(const struct gw_coord_state *st, const char *vm_name, uint32_t memory_mib,
		   const char *group, const char *driver, const char *backend, char *out,
		   size_t outlen)
{
	const struct gw_coord_host *best = NULL;
	uint64_t best_free = 0;
	if (is_libvirt(driver))
		backend = NULL; /* libvirt migrates between any QEMU hosts: no VMM backend rule */
	for (size_t i = 0; i < st->n_hosts; i++) {
		const struct gw_coord_host *h = &st->hosts[i];
		bool clash;
		if (h->state != GW_HOST_UP || !same_backend(backend, h->vm_backend) ||
		    !gw_coord_host_has_driver(h, driver) ||
		    gw_coord_rule_forbids(st, vm_name, h->name))
			continue;
		uint64_t used = host_used(st, h, vm_name, group, &clash);
		uint64_t free_mib = h->mem_total_mib > used ? h->mem_total_mib - used : 0;
		if (clash || free_mib < memory_mib)
			continue;
		if (!best || free_mib > best_free) {
			best = h;
			best_free = free_mib;
		}
	}
	if (!best)
		return -ENOSPC;
	snprintf(out, outlen, "%s", best->name);
	return 0;
}

int gw_coord_fits(const struct gw_coord_state *st, const struct gw_coord_vm *vm, const char *host,
		  char *why, size_t whylen)
{
	const struct gw_coord_host *h = NULL;
	bool clash;
	for (size_t i = 0; i < st->n_hosts; i++)
		if (strcmp(st->hosts[i].name, host) == 0)
			h = &st->hosts[i];
	if (!h) {
		snprintf(why, whylen, "no host '%s'", host);
		return -ENOENT;
	}
	if (strcmp(vm->host, host) == 0) {
		snprintf(why, whylen, "vm %s already runs on %s", vm->name, host);
		return -EALREADY;
	}
	if (h->state != GW_HOST_UP) {
		snprintf(why, whylen, "host %s is %s", host, gw_coord_host_state_name(h->state));
		return -EHOSTDOWN;
	}
	if (!gw_coord_host_has_driver(h, vm->driver)) {
		snprintf(why, whylen, "host %s has no available %s driver (vm %s is a %s VM)", host,
			 vm->driver[0] ? vm->driver : "microvm", vm->name,
			 vm->driver[0] ? vm->driver : "microvm");
		return -EXDEV;
	}
	for (size_t i = 0; i < st->n_hosts && !gw_coord_vm_is_libvirt(vm); i++) {
		const struct gw_coord_host *src = &st->hosts[i];

		if (strcmp(src->name, vm->host) == 0 &&
		    !same_backend(src->vm_backend, h->vm_backend)) {
			snprintf(why, whylen,
				 "host %s runs VMs on the %s backend, vm %s runs on %s (%s): live "
				 "migration needs the same VM backend",
				 host, h->vm_backend, vm->name, src->vm_backend, src->name);
			return -EXDEV;
		}
	}
	uint64_t used = host_used(st, h, vm->name, vm->group, &clash);
	uint64_t free_mib = h->mem_total_mib > used ? h->mem_total_mib - used : 0;
	if (clash) {
		snprintf(why, whylen,
			 "anti-affinity: host %s already runs a VM of group %s or of a "
			 "must anti-affinity rule of vm %s",
			 host, vm->group[0] ? vm->group : "-", vm->name);
		return -EPERM;
	}
	if (gw_coord_rule_forbids(st, vm->name, host)) {
		snprintf(why, whylen, "a must VM-host rule keeps vm %s off host %s", vm->name,
			 host);
		return -EPERM;
	}
	if (free_mib < vm->memory_mib) {
		snprintf(why, whylen, "host %s has %llu MiB free, vm %s needs %u MiB", host,
			 (unsigned long long)free_mib, vm->name, vm->memory_mib);
		return -ENOSPC;
	}
	return 0;
}

/* ---- affinity rules (pure) ---- */

static const char *const rule_kinds[] = {"affinity", "anti-affinity", "vm-host", "vm-not-host"};

const char *gw_coord_rule_kind_name(enum gw_coord_rule_kind k)
{
	return k < GW_COORD_RULE_KINDS ? rule_kinds[k] : "?";
}

int gw_coord_rule_kind_parse(const char *s)
{
	for (int i = 0; s && i < GW_COORD_RULE_KINDS; i++)
		if (strcmp(s, rule_kinds[i]) == 0)
			return i;
	return -1;
}

static bool rule_has(const char (*names)[GW_COORD_NAME_MAX], size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

struct gw_coord_rule *gw_coord_rule_find(struct gw_coord_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_rules; i++)
		if (strcmp(st->rules[i].name, name) == 0)
			return &st->rules[i];
	return NULL;
}

bool gw_coord_rule_binds(const struct gw_coord_state *st, const char *vm)
{
	for (size_t i = 0; i < st->n_rules; i++)
		if (st->rules[i].must && st->rules[i].kind != GW_COORD_RULE_AFFINITY &&
		    rule_has(st->rules[i].vms, st->rules[i].n_vms, vm))
			return true;
	return false;
}

bool gw_coord_rule_clash(const struct gw_coord_state *st, const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return false;
	for (size_t i = 0; i < st->n_rules; i++) {
		const struct gw_coord_rule *r = &st->rules[i];
		if (r->must && r->kind == GW_COORD_RULE_ANTI_AFFINITY &&
		    rule_has(r->vms, r->n_vms, a) && rule_has(r->vms, r->n_vms, b))
			return true;
	}
	return false;
}

bool gw_coord_rule_forbids(const struct gw_coord_state *st, const char *vm, const char *host)
{
	for (size_t i = 0; i < st->n_rules; i++) {
		const struct gw_coord_rule *r = &st->rules[i];
		if (!r->must || !rule_has(r->vms, r->n_vms, vm))
			continue;
		if (r->kind == GW_COORD_RULE_VM_HOST && !rule_has(r->hosts, r->n_hosts, host))
			return true;
		if (r->kind == GW_COORD_RULE_VM_NOT_HOST && rule_has(r->hosts, r->n_hosts, host))
			return true;
	}
	return false;
}

struct gw_coord_vm *gw_coord_next_pending(struct gw_coord_state *st)
{
	struct gw_coord_vm *best = NULL;
	for (size_t i = 0; i < st->n_vms; i++) {
		struct gw_coord_vm *vm = &st->vms[i];
		if (vm->state == GW_CVM_PENDING && (!best || vm->priority > best->priority))
			best = vm; /* vms[] is sorted by name: ties keep the first name */
	}
	return best;
}
