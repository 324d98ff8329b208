/* coord_vmdef.c -- a new cluster VM from godwitctl (GW_CL_API_VM_CREATE): a micro-VM from its
 * image, a libvirt VM from its domain XML, or the import of a libvirt domain that already
 * exists on a host. Checked, placed, multicast as VM_DEFINE; the host's member starts it. */
#include "coord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "gw_domxml.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "api"

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= GW_COORD_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* What a create request defines, once checked: driver, memory and vCPUs for placement. */
struct vmdef {
	bool libvirt, adopt;
	uint32_t memory_mib, vcpus;
};

/* A libvirt request: XML (checked, memory/vCPUs read from it) or adopt (on a given host). */
static int check_libvirt(const GwClVmCreateReq *req, struct vmdef *d, char *why, size_t wlen)
{
	d->adopt = req->has_adopt && req->adopt;
	bool has_xml = req->xml && *req->xml;
	if (req->image && *req->image) {
		snprintf(why, wlen, "a libvirt VM has no image: its disks are in its domain XML");
		return -EINVAL;
	}
	if (d->adopt) {
		if (has_xml || !req->host || !*req->host) {
			snprintf(why, wlen,
				 "an import names the host whose domain it adopts, and "
				 "gives no XML (it is read from that host)");
			return -EINVAL;
		}
		return 0;
	}
	if (!has_xml) {
		snprintf(why, wlen, "a libvirt VM needs its domain XML (--xml FILE) or an import");
		return -EINVAL;
	}
	size_t n = strlen(req->xml);
	if (n > GW_COORD_XML_MAX) {
		snprintf(why, wlen,
			 "domain XML is %zu bytes: the cluster keeps at most %u (64 KiB)", n,
			 GW_COORD_XML_MAX);
		return -EMSGSIZE;
	}
	struct gw_domxml_info x;
	char err[200];
	if (gw_domxml_parse(req->xml, n, &x, err, sizeof(err))) {
		snprintf(why, wlen, "domain XML: %s", err);
		return -EINVAL;
	}
	if (strcmp(x.name, req->name) != 0) {
		snprintf(why, wlen,
			 "domain XML names the domain '%.64s', not '%s': they must match", x.name,
			 req->name);
		return -EINVAL;
	}
	uint64_t mib = gw_domxml_memory_mib(&x);
	if (mib == 0 || mib > UINT32_MAX) {
		snprintf(why, wlen, "domain XML: %s", mib ? "memory too large" : "no <memory>");
		return -EINVAL;
	}
	d->memory_mib = (uint32_t)mib;
	d->vcpus = x.vcpus ? x.vcpus : 1;
	return 0;
}

static int check(struct gw_coord *c, const GwClVmCreateReq *req, struct vmdef *d, char *why,
		 size_t wlen)
{
	memset(d, 0, sizeof(*d));
	if (!name_ok(req->name)) {
		snprintf(why, wlen, "bad VM name '%.80s'", req->name);
		return -EINVAL;
	}
	if (req->anti_affinity && *req->anti_affinity && !name_ok(req->anti_affinity)) {
		snprintf(why, wlen, "bad anti-affinity group '%.80s'", req->anti_affinity);
		return -EINVAL;
	}
	if (req->cmdline && strlen(req->cmdline) >= sizeof(((struct gw_coord_vm *)0)->cmdline)) {
		snprintf(why, wlen, "command line too long");
		return -EINVAL;
	}
	const char *drv = req->driver && *req->driver ? req->driver : "microvm";
	d->libvirt = strcmp(drv, "libvirt") == 0;
	if (!d->libvirt && strcmp(drv, "microvm") != 0) {
		snprintf(why, wlen, "unknown driver '%.40s' (microvm or libvirt)", drv);
		return -EINVAL;
	}
	if (d->libvirt) {
		int r = check_libvirt(req, d, why, wlen);
		if (r)
			return r;
	} else if ((req->xml && *req->xml) || (req->has_adopt && req->adopt)) {
		snprintf(why, wlen, "domain XML and import are for --driver libvirt");
		return -EINVAL;
	} else if (req->image[0] != '/' ||
		   strlen(req->image) >= sizeof(((struct gw_coord_vm *)0)->image)) {
		snprintf(why, wlen, "image path must be absolute: '%.200s'", req->image);
		return -EINVAL;
	} else {
		d->memory_mib = req->memory_mib;
		d->vcpus = req->vcpus;
	}
	if (gw_coord_vm_find(&c->st, req->name)) {
		snprintf(why, wlen, "vm '%s' already exists in the cluster", req->name);
		return -EEXIST;
	}
	return 0;
}

/* The host: the one asked for (up, with the VM's driver), else placed. */
static int pick_host(struct gw_coord *c, const GwClVmCreateReq *req, const struct vmdef *d,
		     char *host, size_t hlen, char *why, size_t wlen)
{
	const char *drv = d->libvirt ? "libvirt" : "";
	if (req->host && *req->host) {
		struct gw_coord_host *h = gw_coord_host_by_name(&c->st, req->host);
		if (!h || h->state != GW_HOST_UP) {
			snprintf(why, wlen, "host '%s' is %s", req->host,
				 h ? gw_coord_host_state_name(h->state) : "unknown");
			return -EHOSTDOWN;
		}
		if (!gw_coord_host_has_driver(h, drv)) {
			snprintf(why, wlen, "host '%s' has no available %s driver", h->name,
				 d->libvirt ? "libvirt" : "microvm");
			return -EXDEV;
		}
		struct gw_coord_vm vm; /* --host: still no must anti-affinity / VM-host breach */
		memset(&vm, 0, sizeof(vm));
		snprintf(vm.name, sizeof(vm.name), "%s", req->name);
		snprintf(vm.group, sizeof(vm.group), "%s",
			 req->anti_affinity ? req->anti_affinity : "");
		snprintf(vm.driver, sizeof(vm.driver), "%s", drv);
		vm.memory_mib = d->memory_mib;
		if (gw_coord_fits(&c->st, &vm, req->host, why, wlen) == -EPERM)
			return -EPERM;
		snprintf(host, hlen, "%s", req->host);
		return 0;
	}
	if (gw_coord_place(&c->st, req->name, d->memory_mib, req->anti_affinity, drv, NULL, host,
			   hlen)) {
		snprintf(why, wlen, "no up host%s has %u MiB free%s%s%s",
			 d->libvirt ? " with an available libvirt driver" : "", d->memory_mib,
			 req->anti_affinity ? " outside anti-affinity group " : "",
			 req->anti_affinity ? req->anti_affinity : "",
			 req->n_rules ? " where its must rules allow it" : "");
		return -ENOSPC;
	}
	return 0;
}

/* The rules a new VM joins (--rule): joined into the state for placement only (left again
 * before anything is sent), and their joined copies, multicast as RULE add. */
struct joins {
	struct gw_coord_rule *in_state[GW_COORD_MAX_RULES];
	struct gw_coord_rule *copy; /* n copies, malloc'd */
	size_t n;
};

static void rules_leave(struct joins *j)
{
	for (size_t i = j->n; i-- > 0;)
		j->in_state[i]->n_vms--;
}

static int rules_join(struct gw_coord *c, const GwClVmCreateReq *req, struct joins *j, char *why,
		      size_t wlen)
{
	memset(j, 0, sizeof(*j));
	if (!req->n_rules)
		return 0;
	j->copy = calloc(req->n_rules, sizeof(*j->copy));
	if (!j->copy)
		return snprintf(why, wlen, "out of memory"), -ENOMEM;
	for (size_t i = 0; i < req->n_rules; i++) {
		struct gw_coord_rule *r = gw_coord_rule_find(&c->st, req->rules[i]);
		bool named = false; /* a rule written ahead of its VMs (or named twice): joined */
		for (size_t k = 0; r && k < r->n_vms; k++)
			named |= strcmp(r->vms[k], req->name) == 0;
		if (named)
			continue;
		int err = !r ? -ENOENT : r->n_vms >= GW_COORD_RULE_VMS ? -E2BIG : 0;
		if (err) {
			rules_leave(j);
			snprintf(why, wlen, "rule '%.64s': %s", req->rules[i],
				 err == -ENOENT ? "no such rule (godwitctl cluster rules add)"
						: "it already names 16 VMs");
			return err;
		}
		snprintf(r->vms[r->n_vms++], sizeof(r->vms[0]), "%s", req->name);
		j->in_state[j->n++] = r;
	}
	for (size_t i = 0; i < j->n; i++)
		j->copy[i] = *j->in_state[i];
	return 0;
}

/* Each joined rule as RULE add, before the VM's definition (CPG keeps the order). */
static int rules_send(struct gw_coord *c, const struct joins *j)
{
	for (size_t i = 0; i < j->n; i++) {
		GwClRule rule;
		char *names[GW_COORD_RULE_VMS + GW_COORD_RULE_HOSTS];
		GwClRuleMsg g = GW_CL_RULE_MSG__INIT;
		gw_coord_rule_encode(&j->copy[i], &rule, names);
		g.action = "add";
		g.rule = &rule;
		g.time_ms = gw_now_wall_ms();
		int r = gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_RULE, &g);
		if (r)
			return r;
	}
	return 0;
}

/*
 * A new cluster VM: check it, place it (or take --host), multicast VM_DEFINE. Every
 * member applies it; the chosen host's coordinator creates and starts it (coord_ha.c):
 * a libvirt VM is defined there from its XML; an import (adopt) has that host's agent take
 * over the existing domain, and its first "running" report brings the XML to the cluster.
 * Only a quorate, synced member accepts: a partition without quorum starts nothing.
 */
int gw_coord_api_vm_create(struct gw_coord *c, int fd, const ProtobufCMessage *m)
{
	const GwClVmCreateReq *req = (const GwClVmCreateReq *)m;
	char host[GW_COORD_NAME_MAX], why[320];
	struct vmdef d;
	if (!c->quorate || !c->synced || c->waiting)
		return gw_msg_send_error(fd, -EAGAIN, "this member is %s: no VM is started",
					 c->quorate ? "waiting for the cluster state"
						    : "not quorate");
	struct joins j = {0};
	int r = check(c, req, &d, why, sizeof(why));
	if (!r)
		r = rules_join(c, req, &j, why, sizeof(why));
	if (!r) {
		r = pick_host(c, req, &d, host, sizeof(host), why, sizeof(why));
		rules_leave(&j);
	}
	if (!r && rules_send(c, &j)) {
		r = -EIO;
		snprintf(why, sizeof(why), "vm '%s': cannot multicast its rules", req->name);
	}
	free(j.copy);
	if (r)
		return gw_msg_send_error(fd, r, "%s", why);
	GwClVm vm = GW_CL_VM__INIT;
	GwClVmDefine def = GW_CL_VM_DEFINE__INIT;
	vm.name = req->name;
	vm.host = host;
	vm.state = "starting";
	vm.ha = req->ha;
	vm.has_priority = vm.has_vcpus = 1;
	vm.priority = req->priority;
	vm.anti_affinity = req->anti_affinity;
	vm.has_failback = req->has_failback;
	vm.failback = req->failback;
	vm.image = d.libvirt ? "" : req->image;
	vm.memory_mib = d.memory_mib;
	vm.vcpus = d.vcpus;
	vm.cmdline = d.libvirt ? NULL : req->cmdline;
	if (d.libvirt) {
		vm.driver = "libvirt";
		vm.xml = d.adopt ? NULL : req->xml;
		vm.has_importing = d.adopt;
		vm.importing = d.adopt;
	}
	def.vm = &vm;
	def.time_ms = gw_now_wall_ms();
	r = gw_coord_mcast(c, GW_CL_MSG_TYPE__GW_CL_VM_DEFINE, &def);
	if (r)
		return gw_msg_send_error(fd, r, "vm '%s': cannot multicast its definition",
					 req->name);
	gw_info(SUBSYS, "vm '%s' %s on %s (%s%s, priority %u)", req->name,
		d.adopt ? "imported" : "defined", host, d.libvirt ? "libvirt, " : "",
		req->ha ? "HA" : "non-HA", req->priority);
	vm.xml = NULL; /* the reply stays small */
	return gw_msg_send(fd, GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &vm.base);
}
