/* ctl_main.c -- godwitctl: parse the command line, run one command against the agent. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "ctl_args.h"
#include "gw_client.h"
#include "ctl_cluster.h"
#include "ctl_migrate.h"
#include "ctl_output.h"
#include "gw_fsutil.h"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Report a failure (stderr, and stdout as JSON with --json); returns the exit status. */
static int fail(const struct gw_ctl_args *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(const struct gw_ctl_args *a, int code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gw_ctl_print_error(stdout, stderr, msg, code, a->json);
	return EXIT_ERR;
}

/* A failed call: agent errors about a VM name it unless the agent already did. */
static int call_failed(const struct gw_ctl_args *a, const struct gw_client *cl, int r)
{
	if (cl->agent_error && a->name && strncmp(cl->err, "vm '", 4) != 0)
		return fail(a, r, "vm '%s': %s", a->name, cl->err);
	return fail(a, r, "%s", cl->err);
}

/* Connect, send one request, take one reply of the expected type, disconnect. */
static int request(const struct gw_ctl_args *a, const ProtobufCMessage *req, uint16_t reply_type,
		   const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply)
{
	struct gw_client cl;
	int r = gw_client_connect(&cl, a->socket, a->timeout_ms);
	if (r) {
		fail(a, r, "%s", cl.err);
		return r;
	}
	r = gw_client_call(&cl, a->def->msg_type, req, reply_type, desc, reply);
	gw_client_close(&cl);
	if (r)
		call_failed(a, &cl, r);
	return r;
}

static int output_done(const struct gw_ctl_args *a, int r)
{
	if (r == 0)
		return EXIT_OK;
	if (r != -EPIPE)
		fprintf(stderr, "godwitctl: writing output: %s\n", strerror(-r));
	return EXIT_ERR;
}

static int create_request(const struct gw_ctl_args *a, GwVmCreateReq *req)
{
	ProtobufCMessage *rep;
	int r = request(a, &req->base, GW_MSG_TYPE__GW_MSG_VM_INFO, &gw_vm_info__descriptor, &rep);
	if (r)
		return EXIT_ERR;
	r = gw_ctl_print_vm_state(stdout, (GwVmInfo *)rep, a->json);
	protobuf_c_message_free_unpacked(rep, NULL);
	return output_done(a, r);
}

static int run_vm_create(const struct gw_ctl_args *a)
{
	GwVmCreateReq req = GW_VM_CREATE_REQ__INIT;
	char err[512], *image = NULL, *xml = NULL;
	bool libvirt = a->driver && !strcmp(a->driver, "libvirt");
	int r;
	req.name = (char *)a->name;
	if (libvirt) {
		size_t len;
		if ((r = gw_file_read(a->xml, 1 << 20, &xml, &len)) != 0)
			return fail(a, r, "domain XML %s: %s", a->xml, strerror(-r));
		req.driver = "libvirt";
		req.xml = xml;
		req.image = "";
	} else {
		if ((r = gw_ctl_image_resolve(a->image, &image, err, sizeof(err))) != 0)
			return fail(a, r, "%s", err);
		req.image = image;
		req.memory_mib = a->memory_mib;
		req.has_vcpus = true;
		req.vcpus = a->vcpus;
		req.cmdline = (char *)a->cmdline;
	}
	r = create_request(a, &req);
	free(image);
	free(xml);
	return r;
}

static int run_vm_import(const struct gw_ctl_args *a)
{
	GwVmCreateReq req = GW_VM_CREATE_REQ__INIT;
	req.name = (char *)a->name;
	req.image = "";
	req.driver = "libvirt";
	req.has_adopt = true;
	req.adopt = true;
	return create_request(a, &req);
}

/* start, stop, pause, resume, show: GwVmNameReq answered by GwVmInfo. */
static int run_vm_name(const struct gw_ctl_args *a)
{
	GwVmNameReq req = GW_VM_NAME_REQ__INIT;
	ProtobufCMessage *rep;
	req.name = (char *)a->name;
	if (request(a, &req.base, GW_MSG_TYPE__GW_MSG_VM_INFO, &gw_vm_info__descriptor, &rep))
		return EXIT_ERR;
	GwVmInfo *vm = (GwVmInfo *)rep;
	GwMigProgress *mig = NULL;
	int r;
	if (a->cmd == GW_CTL_CMD_VM_SHOW) {
		if (vm->state && strcmp(vm->state, "migrating") == 0) /* best effort */
			mig = gw_ctl_migration_fetch(a->socket, a->timeout_ms, a->name);
		r = gw_ctl_print_vm(stdout, vm, mig, a->json);
	} else {
		r = gw_ctl_print_vm_state(stdout, vm, a->json);
	}
	if (mig)
		protobuf_c_message_free_unpacked(&mig->base, NULL);
	protobuf_c_message_free_unpacked(rep, NULL);
	return output_done(a, r);
}

static int run_vm_delete(const struct gw_ctl_args *a)
{
	GwVmNameReq req = GW_VM_NAME_REQ__INIT;
	ProtobufCMessage *rep;
	req.name = (char *)a->name;
	if (request(a, &req.base, GW_MSG_TYPE__GW_MSG_OK, &gw_ok__descriptor, &rep))
		return EXIT_ERR;
	protobuf_c_message_free_unpacked(rep, NULL);
	return output_done(a, gw_ctl_print_deleted(stdout, a->name, a->json));
}

static int run_vm_list(const struct gw_ctl_args *a)
{
	GwVmListReq req = GW_VM_LIST_REQ__INIT;
	ProtobufCMessage *rep;
	if (request(a, &req.base, GW_MSG_TYPE__GW_MSG_VM_LIST_REPLY, &gw_vm_list__descriptor, &rep))
		return EXIT_ERR;
	int r = gw_ctl_print_vm_list(stdout, (GwVmList *)rep, a->json);
	protobuf_c_message_free_unpacked(rep, NULL);
	return output_done(a, r);
}

static int run_agent_info(const struct gw_ctl_args *a)
{
	GwAgentInfoReq req = GW_AGENT_INFO_REQ__INIT;
	ProtobufCMessage *rep;
	if (request(a, &req.base, GW_MSG_TYPE__GW_MSG_AGENT_INFO_REPLY, &gw_agent_info__descriptor,
		    &rep))
		return EXIT_ERR;
	int r = gw_ctl_print_agent_info(stdout, (GwAgentInfo *)rep, a->json);
	protobuf_c_message_free_unpacked(rep, NULL);
	return output_done(a, r);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Read the console log from offset 0 with one request per chunk (a new connection
 * each, so it works whether or not the agent keeps connections open) and copy it raw
 * to stdout. Without --follow, stop at the first empty reply; with it, poll every
 * 100 ms until the VM can write no more and everything was read, or SIGINT.
 */
static int run_vm_console(const struct gw_ctl_args *a)
{
	struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: wake the sleep */
	uint64_t offset = 0;
	int rc = EXIT_OK;

	if (a->follow)
		sigaction(SIGINT, &sa, NULL);
	while (!interrupted) {
		GwConsoleReq req = GW_CONSOLE_REQ__INIT;
		ProtobufCMessage *rep;
		req.name = (char *)a->name;
		req.has_offset = true;
		req.offset = offset;
		if (request(a, &req.base, GW_MSG_TYPE__GW_MSG_CONSOLE_REPLY,
			    &gw_console_reply__descriptor, &rep)) {
			rc = EXIT_ERR;
			break;
		}
		GwConsoleReply *cr = (GwConsoleReply *)rep;
		size_t n = cr->data.len;
		bool active = cr->vm_active;
		uint64_t next = cr->next_offset;
		int r = n ? write_all(STDOUT_FILENO, cr->data.data, n) : 0;
		protobuf_c_message_free_unpacked(rep, NULL);
		if (r) {
			rc = output_done(a, r);
			break;
		}
		if (n > 0 && next <= offset) {
			rc = fail(a, -EPROTO, "vm '%s': console offset did not advance", a->name);
			break;
		}
		offset = n > 0 ? next : offset;
		if (n == 0) {
			if (!a->follow || !active)
				break;
			struct timespec ts = {0, 100 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	return rc;
}

typedef int (*cmd_handler)(const struct gw_ctl_args *a);

/* Handlers by command id; a new command in ctl_args.c gets its entry here. */
static const cmd_handler handlers[GW_CTL_CMD_COUNT] = {
    [GW_CTL_CMD_VM_CREATE] = run_vm_create,
    [GW_CTL_CMD_VM_IMPORT] = run_vm_import,
    [GW_CTL_CMD_VM_START] = run_vm_name,
    [GW_CTL_CMD_VM_STOP] = run_vm_name,
    [GW_CTL_CMD_VM_PAUSE] = run_vm_name,
    [GW_CTL_CMD_VM_RESUME] = run_vm_name,
    [GW_CTL_CMD_VM_DELETE] = run_vm_delete,
    [GW_CTL_CMD_VM_SHOW] = run_vm_name,
    [GW_CTL_CMD_VM_LIST] = run_vm_list,
    [GW_CTL_CMD_VM_CONSOLE] = run_vm_console,
    [GW_CTL_CMD_AGENT_INFO] = run_agent_info,
    [GW_CTL_CMD_VM_MIGRATE] = gw_ctl_run_vm_migrate,
    [GW_CTL_CMD_VM_MIGRATE_CANCEL] = gw_ctl_run_vm_migrate_cancel,
    [GW_CTL_CMD_VM_MIGRATE_STATUS] = gw_ctl_run_vm_migrate_status,
    [GW_CTL_CMD_CLUSTER_STATUS] = gw_ctl_run_cluster_status,
    [GW_CTL_CMD_HOST_LIST] = gw_ctl_run_host_list,
    [GW_CTL_CMD_CLUSTER_VM_CREATE] = gw_ctl_run_cluster_vm_create,
    [GW_CTL_CMD_CLUSTER_VM_LIST] = gw_ctl_run_cluster_vm_list,
    [GW_CTL_CMD_EVENTS] = gw_ctl_run_events,
    [GW_CTL_CMD_CLUSTER_VM_MIGRATE] = gw_ctl_run_cluster_vm_migrate,
    [GW_CTL_CMD_HOST_MAINT_ENTER] = gw_ctl_run_host_maint_enter,
    [GW_CTL_CMD_HOST_MAINT_EXIT] = gw_ctl_run_host_maint_exit,
    [GW_CTL_CMD_CLUSTER_BALANCE] = gw_ctl_run_cluster_balance,
    [GW_CTL_CMD_CLUSTER_VM_STOP] = gw_ctl_run_cluster_vm_admin,
    [GW_CTL_CMD_CLUSTER_VM_START] = gw_ctl_run_cluster_vm_admin,
    [GW_CTL_CMD_CLUSTER_VM_DELETE] = gw_ctl_run_cluster_vm_admin,
    [GW_CTL_CMD_CLUSTER_VM_MIGRATE_CANCEL] = gw_ctl_run_cluster_vm_migrate_cancel,
    [GW_CTL_CMD_CLUSTER_VM_IMPORT] = gw_ctl_run_cluster_vm_import,
    [GW_CTL_CMD_CLUSTER_RULES_ADD] = gw_ctl_run_cluster_rules,
    [GW_CTL_CMD_CLUSTER_RULES_LIST] = gw_ctl_run_cluster_rules,
    [GW_CTL_CMD_CLUSTER_RULES_REMOVE] = gw_ctl_run_cluster_rules,
};

static void print_help(const struct gw_ctl_cmd *cmd)
{
	char buf[8192];
	if (cmd) {
		gw_ctl_usage_line(cmd, buf, sizeof(buf));
		printf("usage: godwitctl [--socket PATH] [--json] [--timeout S] %s\n  %s\n", buf,
		       cmd->summary);
		return;
	}
	gw_ctl_help_text(buf, sizeof(buf));
	fputs(buf, stdout);
}

int main(int argc, char **argv)
{
	struct gw_ctl_args a;
	char line[256];

	signal(SIGPIPE, SIG_IGN);
	if (gw_ctl_args_parse(argc, argv, getenv("GODWIT_AGENT_SOCKET"), &a)) {
		gw_ctl_print_error(stdout, stderr, a.err, EINVAL, a.json);
		if (a.def) {
			gw_ctl_usage_line(a.def, line, sizeof(line));
			fprintf(stderr, "usage: godwitctl %s\n", line);
		} else {
			fprintf(stderr, "Try 'godwitctl --help' for more information.\n");
		}
		return EXIT_USAGE;
	}
	if (!(a.given & GW_CTL_OPT(COORD_SOCKET)) && getenv("GODWIT_COORDINATOR_SOCKET") &&
	    *getenv("GODWIT_COORDINATOR_SOCKET"))
		a.coord_socket = getenv("GODWIT_COORDINATOR_SOCKET");
	if (a.cmd == GW_CTL_CMD_HELP) {
		print_help(a.help_for);
		return EXIT_OK;
	}
	if (a.cmd == GW_CTL_CMD_VERSION) {
		printf("godwitctl %s\n", GW_VERSION);
		return EXIT_OK;
	}
	if (a.cmd <= GW_CTL_CMD_NONE || a.cmd >= GW_CTL_CMD_COUNT || !handlers[a.cmd])
		return fail(&a, EINVAL, "internal error: no handler for this command");
	return handlers[a.cmd](&a);
}
