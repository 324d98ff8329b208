/* libvirt_vm.c -- the libvirt driver's lifecycle: a Godwit VM is the libvirt domain of the
 * same name. create defines it from its XML (or adopts the existing one), start defines it
 * again first where it is missing (a failover to a host that never had it), stop destroys
 * it (stop must always stop), delete undefines it. The record's state follows libvirt's
 * (events, libvirt_events.c; and a look at attach). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_domxml.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "libvirt_int.h"
#include "vmm.h"
#include "vmtable.h"

#define SUBSYS "libvirt"

/* ---- the domain XML: only what Godwit needs of it (libvirt validates the rest) ---- */

/* The text of the first <tag ...>TEXT</tag> at or after p, into buf; attrs (may be NULL)
 * gets what is between the tag name and '>'. Returns the end of the element or NULL. */
static const char *xml_elem(const char *p, const char *tag, char *buf, size_t len, char *attrs,
			    size_t alen)
{
	char open[48];
	snprintf(open, sizeof(open), "<%s", tag);
	size_t ol = strlen(open);
	for (p = strstr(p, open); p; p = strstr(p + 1, open)) {
		if (p[ol] == '>' || p[ol] == ' ' || p[ol] == '\t' || p[ol] == '\n')
			break;
	}
	if (!p)
		return NULL;
	const char *gt = strchr(p, '>');
	if (!gt)
		return NULL;
	if (attrs)
		snprintf(attrs, alen, "%.*s", (int)(gt - p - ol), p + ol);
	if (gt[-1] == '/') { /* <tag .../> */
		if (buf && len)
			buf[0] = 0;
		return gt + 1;
	}
	const char *end = strstr(gt + 1, "</");
	if (!end)
		return NULL;
	if (buf)
		snprintf(buf, len, "%.*s", (int)(end - gt - 1), gt + 1);
	return end;
}

/* value of attribute name in attrs ("unit='MiB'" or unit="MiB") */
static bool xml_attr(const char *attrs, const char *name, char *buf, size_t len)
{
	char key[40];
	snprintf(key, sizeof(key), "%s=", name);
	const char *p = strstr(attrs, key);
	if (!p || (p > attrs && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n'))
		return false;
	p += strlen(key);
	char q = *p;
	if (q != '\'' && q != '"')
		return false;
	const char *e = strchr(p + 1, q);
	if (!e)
		return false;
	snprintf(buf, len, "%.*s", (int)(e - p - 1), p + 1);
	return true;
}

int gw_lv_xml_shape(const char *xml, const char *name, unsigned *mem_mib, unsigned *vcpus,
		    char *err, size_t errlen)
{
	struct gw_domxml_info d;
	char why[256];
	if (!xml || gw_domxml_parse(xml, strlen(xml), &d, why, sizeof(why))) {
		snprintf(err, errlen, "vm '%s': not a usable libvirt domain XML: %s", name,
			 xml ? why : "none");
		return -EINVAL;
	}
	if (strcmp(d.name, name)) {
		snprintf(err, errlen, "vm '%s': the domain XML names it '%.63s': they must match",
			 name, d.name);
		return -EINVAL;
	}
	uint64_t mib = gw_domxml_memory_mib(&d);
	if (mib == 0 || mib > UINT32_MAX) {
		snprintf(err, errlen, "vm '%s': the domain XML has no usable <memory>", name);
		return -EINVAL;
	}
	*mem_mib = (unsigned)mib;
	*vcpus = d.vcpus ? d.vcpus : 1;
	return 0;
}

/* ---- state ---- */

void gw_lv_apply_state(struct gw_agent *ag, struct gw_vm *vm, int state, int reason)
{
	enum gw_vm_state before = vm->state;
	if (vm->state == GW_VM_MIGRATING)
		return; /* the migration settles it (libvirt_migrate.c) */
	switch (state) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
	case VIR_DOMAIN_SHUTDOWN:
		vm->state = GW_VM_RUNNING;
		break;
	case VIR_DOMAIN_PAUSED:
	case VIR_DOMAIN_PMSUSPENDED:
		vm->state = GW_VM_PAUSED;
		break;
	case VIR_DOMAIN_CRASHED:
		vm->state = GW_VM_CRASHED;
		snprintf(vm->reason, sizeof(vm->reason), "QEMU reported a guest crash");
		break;
	case VIR_DOMAIN_SHUTOFF:
		if (reason == VIR_DOMAIN_SHUTOFF_CRASHED || reason == VIR_DOMAIN_SHUTOFF_FAILED) {
			vm->state = GW_VM_CRASHED;
			snprintf(vm->reason, sizeof(vm->reason), "QEMU ended unexpectedly (%s)",
				 reason == VIR_DOMAIN_SHUTOFF_CRASHED
				     ? "killed, or the guest crashed"
				     : "the QEMU process failed");
		} else if (gw_vm_state_active(vm->state) || vm->state == GW_VM_DEFINED) {
			vm->state = vm->state == GW_VM_DEFINED ? GW_VM_DEFINED : GW_VM_STOPPED;
			if (reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN)
				snprintf(vm->reason, sizeof(vm->reason), "guest shut down");
			else if (reason == VIR_DOMAIN_SHUTOFF_DESTROYED && before != GW_VM_STOPPED)
				snprintf(vm->reason, sizeof(vm->reason), "destroyed");
		}
		break;
	default:
		return;
	}
	if (vm->state != before) {
		gw_info(SUBSYS, "vm '%s' is %s%s%s", vm->name, gw_vm_state_name(vm->state),
			vm->reason[0] && !gw_vm_state_active(vm->state) ? ": " : "",
			!gw_vm_state_active(vm->state) ? vm->reason : "");
		if (vm->state == GW_VM_RUNNING && !vm->started_at_ms)
			vm->started_at_ms = gw_now_wall_ms();
		gw_vmtable_save_state(&ag->vms, vm);
	}
}

static int refresh(struct gw_agent *ag, struct gw_vm *vm, virDomainPtr d)
{
	int state, reason;
	if (virDomainGetState(d, &state, &reason, 0) < 0)
		return -EIO;
	gw_lv_apply_state(ag, vm, state, reason);
	return 0;
}

/* ---- ops ---- */

int gw_lv_validate(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	struct gw_lv *lv = gw_lv_of(ag);
	if (!vm->xml) { /* adopt: the existing domain, as libvirt has it */
		virDomainPtr d = gw_lv_domain(lv, vm, NULL, err, errlen);
		if (!d)
			return -ENOENT;
		char *x = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
		if (!x || !virDomainIsPersistent(d)) {
			snprintf(err, errlen, "vm '%s': %s", vm->name,
				 x ? "a transient domain cannot be adopted (define it first)"
				   : gw_lv_errmsg());
			free(x);
			virDomainFree(d);
			return -EINVAL;
		}
		vm->xml = x; /* malloc'd by libvirt: free() is right */
		virDomainFree(d);
	}
	if (strlen(vm->xml) > GW_LV_XML_MAX) {
		snprintf(err, errlen, "vm '%s': domain XML larger than %d bytes", vm->name,
			 GW_LV_XML_MAX);
		return -E2BIG;
	}
	return gw_lv_xml_shape(vm->xml, vm->name, &vm->memory_mib, &vm->vcpus, err, errlen);
}

int gw_lv_define(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	struct gw_lv *lv = gw_lv_of(ag);
	if (!lv || !lv->conn) {
		gw_lv_domain(lv, vm, NULL, err, errlen);
		return -ENOTCONN;
	}
	virDomainPtr d = virDomainDefineXML(lv->conn, vm->xml);
	if (!d) {
		snprintf(err, errlen, "vm '%s': libvirt refused the domain XML: %s", vm->name,
			 gw_lv_errmsg());
		return -EINVAL;
	}
	refresh(ag, vm, d);
	virDomainFree(d);
	return 0;
}

int gw_lv_start(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	struct gw_lv *lv = gw_lv_of(ag);
	int rc = 0;
	virDomainPtr d = gw_lv_domain(lv, vm, &rc, err, errlen);
	if (!d && rc == -ENOENT && vm->xml) { /* e.g. restarted here after a failover */
		if ((rc = gw_lv_define(ag, vm, err, errlen)) != 0)
			return rc;
		d = gw_lv_domain(lv, vm, &rc, err, errlen);
	}
	if (!d)
		return rc ? rc : -EIO;
	unsigned long long t0 = gw_now_mono_ms();
	if (virDomainCreate(d) < 0) {
		snprintf(err, errlen, "vm '%s': libvirt cannot start it: %s", vm->name,
			 gw_lv_errmsg());
		virDomainFree(d);
		return -EIO;
	}
	vm->reason[0] = 0;
	vm->has_exit_status = 0;
	vm->started_at_ms = gw_now_wall_ms();
	vm->state = GW_VM_RUNNING;
	snprintf(vm->backend, sizeof(vm->backend), "qemu");
	gw_vmtable_save_state(&ag->vms, vm);
	gw_info(SUBSYS,
		"vm '%s' started (libvirt domain, %u MiB, %u vCPUs): virDomainCreate took %llu ms",
		vm->name, vm->memory_mib, vm->vcpus, gw_now_mono_ms() - t0);
	virDomainFree(d);
	return 0;
}

int gw_lv_stop(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	int rc = 0;
	virDomainPtr d = gw_lv_domain(gw_lv_of(ag), vm, &rc, err, errlen);
	if (!d && rc != -ENOENT)
		return rc;
	if (d && virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0) {
		snprintf(err, errlen, "vm '%s': libvirt cannot stop it: %s", vm->name,
			 gw_lv_errmsg());
		virDomainFree(d);
		return -EIO;
	}
	if (d)
		virDomainFree(d);
	vm->state = GW_VM_STOPPED;
	snprintf(vm->reason, sizeof(vm->reason), "stopped by request");
	gw_vmtable_save_state(&ag->vms, vm);
	gw_info(SUBSYS, "vm '%s' stopped by request", vm->name);
	return 0;
}

static int suspend_resume(struct gw_agent *ag, struct gw_vm *vm, bool suspend, char *err,
			  size_t errlen)
{
	int rc = 0;
	virDomainPtr d = gw_lv_domain(gw_lv_of(ag), vm, &rc, err, errlen);
	if (!d)
		return rc;
	if ((suspend ? virDomainSuspend(d) : virDomainResume(d)) < 0) {
		snprintf(err, errlen, "vm '%s': libvirt cannot %s it: %s", vm->name,
			 suspend ? "pause" : "resume", gw_lv_errmsg());
		virDomainFree(d);
		return -EIO;
	}
	vm->state = suspend ? GW_VM_PAUSED : GW_VM_RUNNING;
	gw_vmtable_save_state(&ag->vms, vm);
	virDomainFree(d);
	return 0;
}

int gw_lv_pause(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	return suspend_resume(ag, vm, true, err, errlen);
}

int gw_lv_resume(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	return suspend_resume(ag, vm, false, err, errlen);
}

int gw_lv_undefine(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen)
{
	int rc = 0;
	virDomainPtr d = gw_lv_domain(gw_lv_of(ag), vm, &rc, err, errlen);
	if (!d)
		return rc == -ENOENT ? 0 : rc; /* already gone: nothing to undo */
	int r = virDomainIsActive(d) == 1 ? -EBUSY : 0;
	if (r)
		snprintf(err, errlen, "vm '%s': its domain is running: stop it first", vm->name);
	else if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM |
					       VIR_DOMAIN_UNDEFINE_MANAGED_SAVE) < 0) {
		snprintf(err, errlen, "vm '%s': libvirt cannot undefine it: %s", vm->name,
			 gw_lv_errmsg());
		r = -EIO;
	}
	virDomainFree(d);
	return r;
}

int gw_lv_attach(struct gw_agent *ag, struct gw_vm *vm)
{
	char err[512];
	int rc = 0;
	virDomainPtr d = gw_lv_domain(gw_lv_of(ag), vm, &rc, err, sizeof(err));
	if (!d) {
		if (rc == -ENOENT && gw_vm_state_active(vm->state)) {
			/* defined nowhere any more: it ended while we were away */
			vm->state = GW_VM_STOPPED;
			snprintf(vm->reason, sizeof(vm->reason),
				 "its libvirt domain disappeared while the agent was away");
			gw_vmtable_save_state(&ag->vms, vm);
		}
		if (rc != -ENOTCONN)
			gw_warn(SUBSYS, "%s", err);
		return rc;
	}
	int r = refresh(ag, vm, d);
	virDomainFree(d);
	return r;
}

int gw_lv_watch_fd(struct gw_vm *vm)
{
	(void)vm;
	return -1; /* the driver's event stream covers every domain */
}

void gw_lv_reap(struct gw_agent *ag, struct gw_vm *vm)
{
	(void)ag;
	(void)vm;
}

/* The first <serial type='file'> output of the domain, else an empty log in the VM's dir. */
void gw_lv_console_path(const struct gw_vm *vm, char *buf, size_t len)
{
	char attrs[512], path[PATH_MAX];
	const char *p = vm->xml ? strstr(vm->xml, "<serial type='file'>") : NULL;
	if (!p && vm->xml)
		p = strstr(vm->xml, "<serial type=\"file\">");
	if (p && xml_elem(p, "source", NULL, 0, attrs, sizeof(attrs)) &&
	    xml_attr(attrs, "path", path, sizeof(path))) {
		snprintf(buf, len, "%s", path);
		return;
	}
	snprintf(buf, len, "%s/console.log", vm->dir);
}

/* The dirtyrate stats group: the last measurement (if any), and a new 1 s measurement started
 * whenever none is under way (virDomainStartDirtyRateCalc), so that each poll reads a recent
 * one. Failures leave the rate unknown (an older QEMU or libvirt). */
static void lv_dirty_rate(virDomainPtr d, struct gw_vm_stats *out)
{
	virDomainPtr doms[2] = {d, NULL};
	virDomainStatsRecordPtr *recs = NULL;
	int calc_status = -1;
	if (virDomainListGetStats(doms, VIR_DOMAIN_STATS_DIRTYRATE, &recs, 0) > 0 && recs[0]) {
		unsigned long long mbps = 0;
		int st = 0;
		if (virTypedParamsGetInt(recs[0]->params, recs[0]->nparams, "dirtyrate.calc_status",
					 &st) == 1)
			calc_status = st;
		if (virTypedParamsGetULLong(recs[0]->params, recs[0]->nparams,
					    "dirtyrate.megabytes_per_second", &mbps) == 1) {
			out->has_dirty_rate = true;
			out->dirty_rate_pps = mbps * 256; /* 4 KiB pages */
		}
	}
	if (recs)
		virDomainStatsRecordListFree(recs);
	if (calc_status != 1) /* 1 = measuring */
		virDomainStartDirtyRateCalc(d, 1, 0);
	virResetLastError();
}

int gw_lv_stats(struct gw_agent *ag, struct gw_vm *vm, struct gw_vm_stats *out, char *err,
		size_t errlen)
{
	int rc = 0;
	virDomainPtr d = gw_lv_domain(gw_lv_of(ag), vm, &rc, err, errlen);
	virDomainInfo info;
	if (!d)
		return rc;
	memset(out, 0, sizeof(*out));
	if (virDomainGetInfo(d, &info) < 0) {
		snprintf(err, errlen, "vm '%s': %s", vm->name, gw_lv_errmsg());
		virDomainFree(d);
		return -EIO;
	}
	out->cpu_time_ns = info.cpuTime;
	out->mem_used_mib = info.memory / 1024;
	lv_dirty_rate(d, out);
	virDomainFree(d);
	return 0;
}
