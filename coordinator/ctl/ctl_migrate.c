/* ctl_migrate.c -- godwitctl live-migration commands: start, poll with progress, cancel, status. */
#include "ctl_migrate.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "gw_client.h"
#include "ctl_output.h"
#include "ctl_progress.h"

enum { EXIT_OK = 0, EXIT_ERR = 1 };

#define POLL_INTERVAL_MS 25
/* Consecutive local failures (agent unreachable, no reply) tolerated while polling. */
#define POLL_MAX_FAILURES 40
/* How long past its own --timeout godwitctl waits before it stops polling. */
#define POLL_GRACE_S 60

static volatile sig_atomic_t sigints;

static void on_sigint(int sig)
{
	static const char msg[] = "\ngodwitctl: interrupted again: not waiting for the result; "
				  "see 'godwitctl vm migrate-status'\n";
	(void)sig;
	if (++sigints >= 2) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to do */
		}
		_exit(GW_CTL_EXIT_INTERRUPTED);
	}
}

/* One request of type on its own connection, answered by GW_MIG_PROGRESS. */
static int mig_call(const char *socket, int timeout_ms, uint16_t type, const ProtobufCMessage *req,
		    struct gw_client *cl, GwMigProgress **out)
{
	ProtobufCMessage *rep = NULL;
	int r = gw_client_connect(cl, socket, timeout_ms);
	*out = NULL;
	if (r)
		return r;
	r = gw_client_call(cl, type, req, GW_MIG_MSG_TYPE__GW_MIG_PROGRESS,
			   &gw_mig_progress__descriptor, &rep);
	gw_client_close(cl);
	if (!r)
		*out = (GwMigProgress *)rep;
	return r;
}

static int name_call(const struct gw_ctl_args *a, uint16_t type, struct gw_client *cl,
		     GwMigProgress **out)
{
	GwVmNameReq req = GW_VM_NAME_REQ__INIT;
	req.name = (char *)a->name;
	return mig_call(a->socket, a->timeout_ms, type, &req.base, cl, out);
}

/*
 * The message of a failed call: "vm 'NAME': WHAT<error>". Without what, local errors
 * (no agent, no reply) are left as they are and the agent's only get the VM's name
 * when they do not start with it already.
 */
static void call_msg(const struct gw_ctl_args *a, const struct gw_client *cl, const char *what,
		     char *buf, size_t len)
{
	if (*what || (cl->agent_error && strncmp(cl->err, "vm '", 4) != 0))
		snprintf(buf, len, "vm '%s': %s%s", a->name, what, cl->err);
	else
		snprintf(buf, len, "%s%s", what, cl->err);
}

static int call_failed(const struct gw_ctl_args *a, const struct gw_client *cl, int r)
{
	char msg[768];
	call_msg(a, cl, "", msg, sizeof(msg));
	gw_ctl_print_error(stdout, stderr, msg, r, a->json);
	return EXIT_ERR;
}

static void free_progress(GwMigProgress *p)
{
	if (p)
		protobuf_c_message_free_unpacked(&p->base, NULL);
}

/* The JSON object of a progress, pretty, on its own line. 0 or -EIO. */
static int print_json(FILE *out, const GwMigProgress *p, bool status)
{
	struct gw_json j;
	gw_json_init_file(&j, out, GW_JSON_PRETTY);
	gw_ctl_json_migration(&j, p, status);
	int r = gw_json_finish(&j);
	fputc('\n', out);
	if (fflush(out) != 0 || ferror(out))
		r = r ? r : -EIO;
	return r;
}

/* What `vm migrate` shows while it waits. */
struct view {
	bool json;
	bool tty;
	bool bar;	/* a progress bar is on screen, without newline */
	bool printed;	/* a round line was printed (plain output) */
	uint32_t round; /* of the last round line */
};

static void view_clear(struct view *v)
{
	if (v->bar) {
		fputs("\r\033[K", stdout);
		fflush(stdout);
		v->bar = false;
	}
}

static void view_update(struct view *v, const GwMigProgress *p)
{
	char line[256];

	if (v->json)
		return;
	if (v->tty) {
		gw_ctl_progress_format(p, line, sizeof(line));
		printf("\r%s\033[K", line);
		fflush(stdout);
		v->bar = true;
		return;
	}
	/* plain: a line when a new round (1, 2, ...) shows up */
	if (!p->has_round || p->round == 0 || (v->printed && p->round == v->round))
		return;
	v->printed = true;
	v->round = p->round;
	gw_ctl_progress_round_line(p, line, sizeof(line));
	printf("%s\n", line);
	fflush(stdout);
}

/* A note on stderr while the view may hold a progress bar. */
static void view_note(struct view *v, const char *msg)
{
	view_clear(v);
	gw_ctl_print_error(stdout, stderr, msg, 0, false);
}

/* The end of `vm migrate`: one result line or one JSON object; the exit status. */
static int migrate_done(const struct gw_ctl_args *a, struct view *v, const GwMigProgress *p)
{
	char line[768];
	bool ok = gw_ctl_mig_result(p) == GW_CTL_MIG_COMPLETED;
	int r = 0;

	view_clear(v);
	gw_ctl_progress_result_line(p, line, sizeof(line));
	if (a->json)
		r = print_json(stdout, p, false);
	else if (ok)
		r = printf("%s\n", line) < 0 || fflush(stdout) != 0 ? -EIO : 0;
	if (!ok)
		gw_ctl_print_error(stdout, stderr, line, 0, false); /* stderr only */
	if (r && r != -EPIPE)
		fprintf(stderr, "godwitctl: writing output: %s\n", strerror(-r));
	return ok && !r ? EXIT_OK : EXIT_ERR;
}

/* First SIGINT: ask the agent to cancel; its reply is the newest progress. */
static void migrate_cancel(const struct gw_ctl_args *a, struct view *v, GwMigProgress **p)
{
	struct gw_client cl;
	GwMigProgress *np;
	char msg[768];

	snprintf(msg, sizeof(msg),
		 "cancelling the migration of vm '%s' (interrupt again to stop waiting)", a->name);
	view_note(v, msg);
	if (name_call(a, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_CANCEL, &cl, &np)) {
		call_msg(a, &cl, "cancel failed: ", msg, sizeof(msg));
		view_note(v, msg);
		return;
	}
	free_progress(*p);
	*p = np;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL); /* a signal ends it early: the caller checks */
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int gw_ctl_run_vm_migrate(const struct gw_ctl_args *a)
{
	GwVmMigrateReq req = GW_VM_MIGRATE_REQ__INIT;
	struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: wake the sleep */
	struct view v = {.json = a->json, .tty = !a->json && isatty(STDOUT_FILENO)};
	struct gw_client cl;
	GwMigProgress *p, *np;
	bool cancel_sent = false;
	int fails = 0, r, rc;
	char msg[768];

	req.name = (char *)a->name;
	req.to = (char *)a->to;
	req.has_streams = req.has_downtime_ms = req.has_bandwidth_mibps = req.has_timeout_s = 1;
	req.streams = a->streams;
	req.downtime_ms = a->downtime_ms;
	req.bandwidth_mibps = a->bandwidth_mibps;
	req.timeout_s = a->mig_timeout_s;
	req.transport = (char *)a->transport; /* NULL: the agent's default */
	req.has_postcopy = a->postcopy;
	req.postcopy = a->postcopy;
	req.has_copy_storage = a->copy_storage;
	req.copy_storage = a->copy_storage;
	sigints = 0;
	sigaction(SIGINT, &sa, NULL);
	r = mig_call(a->socket, a->timeout_ms, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE, &req.base, &cl,
		     &p);
	if (r)
		return call_failed(a, &cl, r);

	double deadline = now_s() + a->mig_timeout_s + POLL_GRACE_S;
	while (gw_ctl_mig_result(p) == GW_CTL_MIG_RUNNING) {
		view_update(&v, p);
		if (sigints && !cancel_sent) {
			cancel_sent = true;
			migrate_cancel(a, &v, &p);
			continue;
		}
		if (now_s() > deadline) {
			snprintf(msg, sizeof(msg),
				 "vm '%s': migration still running %d s after its timeout; stopped "
				 "waiting (see 'godwitctl vm migrate-status %s')",
				 a->name, POLL_GRACE_S, a->name);
			view_clear(&v);
			gw_ctl_print_error(stdout, stderr, msg, ETIMEDOUT, a->json);
			free_progress(p);
			return EXIT_ERR;
		}
		sleep_ms(POLL_INTERVAL_MS);
		if (sigints && !cancel_sent)
			continue;
		r = name_call(a, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &cl, &np);
		if (r) {
			if (!cl.agent_error && ++fails <= POLL_MAX_FAILURES)
				continue; /* agent busy or restarting: try again */
			call_msg(a, &cl, "lost track of the migration: ", msg, sizeof(msg));
			view_clear(&v);
			gw_ctl_print_error(stdout, stderr, msg, r, a->json);
			free_progress(p);
			return EXIT_ERR;
		}
		fails = 0;
		free_progress(p);
		p = np;
	}
	rc = migrate_done(a, &v, p);
	free_progress(p);
	return rc;
}

int gw_ctl_run_vm_migrate_cancel(const struct gw_ctl_args *a)
{
	struct gw_client cl;
	GwMigProgress *p;
	char line[768];
	int r, rc;

	r = name_call(a, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_CANCEL, &cl, &p);
	if (r)
		return call_failed(a, &cl, r);
	enum gw_ctl_mig_result res = gw_ctl_mig_result(p);
	rc = res == GW_CTL_MIG_RUNNING || res == GW_CTL_MIG_CANCELLED ? EXIT_OK : EXIT_ERR;
	if (res == GW_CTL_MIG_RUNNING)
		snprintf(line, sizeof(line), "vm %s: migration cancel requested", a->name);
	else if (res == GW_CTL_MIG_CANCELLED)
		snprintf(line, sizeof(line), "vm %s: migration cancelled", a->name);
	else
		gw_ctl_progress_result_line(p, line, sizeof(line));
	if (a->json) {
		r = print_json(stdout, p, false);
	} else {
		r = printf("%s\n", line) < 0 || fflush(stdout) != 0 ? -EIO : 0;
	}
	if (rc != EXIT_OK) {
		snprintf(line, sizeof(line), "vm '%s': nothing to cancel: the migration %s",
			 a->name,
			 res == GW_CTL_MIG_COMPLETED ? "already completed" : "already ended");
		gw_ctl_print_error(stdout, stderr, line, 0, false);
	}
	free_progress(p);
	if (r && r != -EPIPE)
		fprintf(stderr, "godwitctl: writing output: %s\n", strerror(-r));
	return r ? EXIT_ERR : rc;
}

int gw_ctl_run_vm_migrate_status(const struct gw_ctl_args *a)
{
	struct gw_client cl;
	GwMigProgress *p;
	int r = name_call(a, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &cl, &p);
	if (r)
		return call_failed(a, &cl, r);
	r = a->json ? print_json(stdout, p, true) : gw_ctl_print_migration_status(stdout, p);
	free_progress(p);
	if (r && r != -EPIPE)
		fprintf(stderr, "godwitctl: writing output: %s\n", strerror(-r));
	return r ? EXIT_ERR : EXIT_OK;
}

GwMigProgress *gw_ctl_migration_fetch(const char *socket, int timeout_ms, const char *name)
{
	GwVmNameReq req = GW_VM_NAME_REQ__INIT;
	struct gw_client cl;
	GwMigProgress *p;
	req.name = (char *)name;
	if (mig_call(socket, timeout_ms, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, &req.base, &cl,
		     &p))
		return NULL;
	return p;
}
