/* ctl_cluster_vm.c -- godwitctl's new cluster VMs: `cluster vm create` (a micro-VM from an image,
 * or a libvirt VM from its domain XML file) and `cluster vm import` (an existing libvirt domain
 * on a host becomes a cluster VM; waits until it runs there). */
#include "ctl_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.pb-c.h"
#include "ctl_output.h"
#include "gw_client.h"
#include "gw_fsutil.h"
#include "gw_json.h"

enum { EXIT_OK = 0, EXIT_ERR = 1 };

/* One request to the coordinator; the failure is left in err. */
static int call(const struct gw_ctl_args *a, uint16_t type, const ProtobufCMessage *req,
		uint16_t reply_type, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **rep,
		char *err, size_t errlen)
{
	return gw_client_request(a->coord_socket, a->timeout_ms, type, req, reply_type, desc, rep,
				 err, errlen);
}

static int fail(const struct gw_ctl_args *a, const char *err, int r)
{
	gw_ctl_print_error(stdout, stderr, err, r < 0 ? -r : r, a->json);
	return EXIT_ERR;
}

static void print_vm(const struct gw_ctl_args *a, const GwClVm *v, const char *what)
{
	if (a->json) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_PRETTY);
		gw_ctl_json_cluster_vm(&j, v);
		if (!gw_json_finish(&j))
			printf("%s\n", gw_json_text(&j, NULL));
		gw_json_free(&j);
		return;
	}
	printf("vm %s: %s on %s (%s%s, %u MiB, %u vCPU%s)\n", v->name, what, v->host,
	       v->driver && *v->driver ? "libvirt, " : "", v->ha ? "HA" : "not HA", v->memory_mib,
	       v->vcpus, v->vcpus == 1 ? "" : "s");
}

/* The domain XML file, at most GW_CTL_XML_MAX bytes, NUL-free. */
static int read_xml(const char *path, char **xml, char *err, size_t errlen)
{
	size_t len;
	int r = gw_file_read(path, GW_CTL_XML_MAX + 1, xml, &len);
	if (r == -EFBIG || (!r && len > GW_CTL_XML_MAX)) {
		if (!r)
			free(*xml);
		snprintf(err, errlen,
			 "domain XML %s is larger than %u bytes (64 KiB), the most the cluster "
			 "state keeps per VM",
			 path, GW_CTL_XML_MAX);
		return -EMSGSIZE;
	}
	if (r) {
		snprintf(err, errlen, "cannot read the domain XML %s: %s", path, strerror(-r));
		return r;
	}
	if (strlen(*xml) != len) {
		free(*xml);
		snprintf(err, errlen, "domain XML %s holds a NUL byte", path);
		return -EINVAL;
	}
	return 0;
}

/* --rule R1,R2 (the VM joins them) and --failback, shared by create and import */
static int join_rules(const struct gw_ctl_args *a, GwClVmCreateReq *req,
		      char (*buf)[GW_CTL_NAME_MAX + 1], char **rules, char *err, size_t errlen)
{
	req->has_failback = 1;
	req->failback = a->failback;
	if (!a->rules)
		return 0;
	int n = gw_ctl_split_names(a->rules, "--rule", GW_CTL_MAX_RULES, buf, rules, err, errlen);
	if (n < 0)
		return n;
	req->n_rules = (size_t)n;
	req->rules = rules;
	return 0;
}

int gw_ctl_run_cluster_vm_create(const struct gw_ctl_args *a)
{
	GwClVmCreateReq req = GW_CL_VM_CREATE_REQ__INIT;
	ProtobufCMessage *rep;
	char err[512], *image = NULL, *xml = NULL;
	bool libvirt = a->driver && strcmp(a->driver, "libvirt") == 0;
	int r = libvirt ? read_xml(a->xml, &xml, err, sizeof(err))
			: gw_ctl_image_resolve(a->image, &image, err, sizeof(err));
	if (r)
		return fail(a, err, r);
	req.name = (char *)a->name;
	req.image = libvirt ? "" : image;
	req.memory_mib = libvirt ? 0 : a->memory_mib; /* libvirt: the coordinator reads the XML */
	req.has_vcpus = 1;
	req.vcpus = a->vcpus;
	req.cmdline = (char *)a->cmdline;
	req.ha = a->ha;
	req.has_priority = 1;
	req.priority = a->priority;
	req.anti_affinity = (char *)a->anti_affinity;
	req.host = (char *)a->host;
	req.driver = libvirt ? "libvirt" : NULL;
	req.xml = xml;
	char rbuf[GW_CTL_MAX_RULES][GW_CTL_NAME_MAX + 1], *rules[GW_CTL_MAX_RULES];
	r = join_rules(a, &req, rbuf, rules, err, sizeof(err));
	if (!r)
		r = call(a, GW_CL_MSG_TYPE__GW_CL_API_VM_CREATE, &req.base,
			 GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &gw_cl_vm__descriptor, &rep, err,
			 sizeof(err));
	free(image);
	free(xml);
	if (r)
		return fail(a, err, r);
	const GwClVm *v = (const GwClVm *)rep;
	if (!libvirt && !a->json) /* the micro-VM line as it always was */
		printf("vm %s: defined on %s (%s), starting\n", v->name, v->host,
		       v->ha ? "HA" : "not HA");
	else
		print_vm(a, v, "defined, starting");
	protobuf_c_message_free_unpacked(rep, NULL);
	return EXIT_OK;
}

static const GwClVm *vm_in(const GwClVmList *l, const char *name)
{
	for (size_t i = 0; l && i < l->n_vms; i++)
		if (strcmp(l->vms[i]->name, name) == 0)
			return l->vms[i];
	return NULL;
}

/*
 * `cluster vm import NAME --host HOST`: the coordinator defines NAME as a libvirt cluster VM
 * placed on HOST with "importing" set; HOST's member has its agent adopt the existing domain
 * (and start it if it is shut off) and reports it running with the domain XML, which the
 * cluster keeps. Follow the cluster state until then (or until it failed, or --timeout).
 */
int gw_ctl_run_cluster_vm_import(const struct gw_ctl_args *a)
{
	GwClVmCreateReq req = GW_CL_VM_CREATE_REQ__INIT;
	ProtobufCMessage *rep;
	char err[512];
	req.name = (char *)a->name;
	req.image = "";
	req.memory_mib = 0;
	req.ha = a->ha;
	req.has_priority = 1;
	req.priority = a->priority;
	req.anti_affinity = (char *)a->anti_affinity;
	req.host = (char *)a->host;
	req.driver = "libvirt";
	req.has_adopt = 1;
	req.adopt = true;
	char rbuf[GW_CTL_MAX_RULES][GW_CTL_NAME_MAX + 1], *rules[GW_CTL_MAX_RULES];
	int r = join_rules(a, &req, rbuf, rules, err, sizeof(err));
	if (!r)
		r = call(a, GW_CL_MSG_TYPE__GW_CL_API_VM_CREATE, &req.base,
			 GW_CL_MSG_TYPE__GW_CL_API_VM_REPLY, &gw_cl_vm__descriptor, &rep, err,
			 sizeof(err));
	if (r)
		return fail(a, err, r);
	protobuf_c_message_free_unpacked(rep, NULL);
	unsigned long long t0 = gw_now_mono_ms();
	for (;;) {
		GwClStatusReq lr = GW_CL_STATUS_REQ__INIT;
		r = call(a, GW_CL_MSG_TYPE__GW_CL_API_VM_LIST, &lr.base,
			 GW_CL_MSG_TYPE__GW_CL_API_VM_LIST_REPLY, &gw_cl_vm_list__descriptor, &rep,
			 err, sizeof(err));
		if (r)
			return fail(a, err, r);
		GwClVmList *l = (GwClVmList *)rep;
		const GwClVm *v = vm_in(l, a->name);
		bool importing = v && v->has_importing && v->importing;
		if (v && !importing && strcmp(v->state, "running") == 0) {
			print_vm(a, v, "imported, running");
			gw_cl_vm_list__free_unpacked(l, NULL);
			return EXIT_OK;
		}
		if (!v || (strcmp(v->state, "starting") != 0 && strcmp(v->state, "running") != 0)) {
			snprintf(err, sizeof(err), "vm '%s': import on %s failed: %s", a->name,
				 a->host,
				 !v			   ? "the VM left the cluster"
				 : v->reason && *v->reason ? v->reason
							   : v->state);
			gw_cl_vm_list__free_unpacked(l, NULL);
			return fail(a, err, EIO);
		}
		gw_cl_vm_list__free_unpacked(l, NULL);
		if (a->timeout_ms && gw_now_mono_ms() - t0 >= (unsigned long long)a->timeout_ms) {
			snprintf(err, sizeof(err),
				 "vm '%s': not running on %s after %d s; the import goes on "
				 "(see godwitctl events)",
				 a->name, a->host, a->timeout_ms / 1000);
			return fail(a, err, ETIMEDOUT);
		}
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}
