/* drivers.c -- the agent's driver registry: every driver built in is registered at start (the
 * microvm driver first, always), and each VM is dispatched to the driver its record names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "gw_log.h"

#ifdef GW_HAVE_LIBVIRT
extern const struct gw_driver_ops gw_driver_libvirt;
#endif

static const struct gw_driver_ops *const builtin[] = {
    &gw_driver_microvm,
#ifdef GW_HAVE_LIBVIRT
    &gw_driver_libvirt,
#endif
};

/* ---- stand-in for a record whose driver this agent does not have (not built in) ---- */

static int absent_err(struct gw_vm *vm, char *err, size_t errlen)
{
	snprintf(err, errlen, "vm '%s': its driver '%s' is not built into this agent", vm->name,
		 vm->driver);
	return -ENOTSUP;
}

static int absent_op(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	(void)ag;
	return absent_err(vm, err, errlen);
}

static int absent_attach(struct gw_agent *ag, struct gw_vm *vm)
{
	(void)ag;
	gw_warn("driver", "vm '%s': its driver '%s' is not built into this agent: left as is",
		vm->name, vm->driver);
	return 0;
}

static int absent_watch_fd(struct gw_vm *vm)
{
	(void)vm;
	return -1;
}

static void absent_vm_noop(struct gw_agent *ag, struct gw_vm *vm)
{
	(void)ag;
	(void)vm;
}

static void absent_console_path(const struct gw_vm *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s/console.log", vm->dir);
}

static int absent_migrate_out(struct gw_agent *ag, struct gw_vm *vm, const GwVmMigrateReq *req,
			      uint64_t id, GwMigProgress **out, char *err, size_t errlen)
{
	(void)ag, (void)req, (void)id, (void)out;
	return absent_err(vm, err, errlen);
}

static int absent_progress(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
			   size_t errlen)
{
	(void)ag, (void)out;
	return absent_err(vm, err, errlen);
}

static const struct gw_driver_ops absent_ops = {
    .name = "absent",
    .validate = absent_op,
    .start = absent_op,
    .stop = absent_op,
    .pause = absent_op,
    .resume = absent_op,
    .attach = absent_attach,
    .watch_fd = absent_watch_fd,
    .reap = absent_vm_noop,
    .poll = absent_vm_noop,
    .console_path = absent_console_path,
    .migrate_out = absent_migrate_out,
    .progress = absent_progress,
    .cancel = absent_progress,
};
static struct gw_driver absent = {.ops = &absent_ops};

/* ---- the registry ---- */

void gw_drivers_init(struct gw_agent *ag)
{
	size_t n = sizeof(builtin) / sizeof(builtin[0]);
	ag->drivers = calloc(n, sizeof(*ag->drivers));
	if (!ag->drivers) {
		gw_err("driver", "out of memory registering drivers");
		abort();
	}
	for (size_t i = 0; i < n; i++) {
		struct gw_driver *d = &ag->drivers[ag->n_drivers++];
		char err[512] = "";
		d->ops = builtin[i];
		int r = d->ops->init ? d->ops->init(ag, d, err, sizeof(err)) : 0;
		d->ready = r == 0;
		if (r < 0 && err[0])
			gw_warn("driver", "%s: %s", d->ops->name, err);
	}
}

void gw_drivers_fini(struct gw_agent *ag)
{
	for (size_t i = 0; i < ag->n_drivers; i++) {
		struct gw_driver *d = &ag->drivers[i];
		if (d->ready && d->ops->fini)
			d->ops->fini(ag, d);
	}
	free(ag->drivers);
	ag->drivers = NULL;
	ag->n_drivers = 0;
}

struct gw_driver *gw_driver_by_name(struct gw_agent *ag, const char *name)
{
	if (!name || !*name)
		name = "microvm";
	for (size_t i = 0; i < ag->n_drivers; i++)
		if (!strcmp(ag->drivers[i].ops->name, name))
			return &ag->drivers[i];
	return NULL;
}

struct gw_driver *gw_vm_driver(struct gw_agent *ag, const struct gw_vm *vm)
{
	struct gw_driver *d = gw_driver_by_name(ag, vm->driver);
	return d ? d : &absent;
}

const struct gw_driver_ops *gw_vm_ops(struct gw_agent *ag, const struct gw_vm *vm)
{
	return gw_vm_driver(ag, vm)->ops;
}
