/* agent_main.c -- godwit-agent: configuration, start-up, and the single-threaded event loop. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_config.h"
#include "agent_metrics.h"
#include "agent_migrate.h"
#include "control.h"
#include "driver.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_sdnotify.h"
#include "vmtable.h"

#define SUBSYS "agent"

static struct gw_ctl_conn conns[GW_CONTROL_MAX_CLIENTS];
static size_t nconns;
static struct gw_metrics_srv metrics; /* the Prometheus endpoint (disabled: listen_fd -1) */

static void conn_close(size_t i)
{
	close(conns[i].fd);
	free(conns[i].buf);
	conns[i] = conns[--nconns];
}

static void accept_clients(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				gw_warn(SUBSYS, "accept on control socket: %s", strerror(errno));
			return;
		}
		if (nconns == GW_CONTROL_MAX_CLIENTS) {
			gw_warn(SUBSYS, "too many control clients (%d), refusing one",
				GW_CONTROL_MAX_CLIENTS);
			close(fd);
			continue;
		}
		conns[nconns++] = (struct gw_ctl_conn){.fd = fd};
	}
}

static int run(struct gw_agent *ag, int sigfd)
{
	struct pollfd *pfds = NULL;
	size_t pcap = 0;
	int stop = 0;

	while (!stop) {
		gw_sd_watchdog_tick(); /* systemd's WatchdogSec (Type=notify units) */
		size_t want = 3 + nconns + ag->vms.count + ag->n_drivers + GW_METRICS_POLLFDS;
		if (want > pcap) {
			struct pollfd *n = realloc(pfds, want * 2 * sizeof(*n));
			if (!n)
				return -ENOMEM;
			pfds = n;
			pcap = want * 2;
		}
		size_t np = 0;
		pfds[np++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		pfds[np++] = (struct pollfd){.fd = ag->listen_fd, .events = POLLIN};
		pfds[np++] = (struct pollfd){.fd = gw_agent_mig_listen_fd(ag), .events = POLLIN};
		size_t conn_base = np;
		for (size_t i = 0; i < nconns; i++)
			pfds[np++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
		size_t metrics_base = np;
		size_t nmetrics = gw_metrics_pollfds(&metrics, pfds + np);
		np += nmetrics;
		size_t drv_base = np;
		for (size_t i = 0; i < ag->n_drivers; i++) {
			struct gw_driver *d = &ag->drivers[i];
			int fd = d->ready && d->ops->event_fd ? d->ops->event_fd(d) : -1;
			pfds[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
		}
		size_t vm_base = np;
		size_t nvm = ag->vms.count;
		struct gw_vm **vms = calloc(nvm ? nvm : 1, sizeof(*vms));
		if (!vms)
			return -ENOMEM;
		for (size_t i = 0; i < nvm; i++) {
			vms[i] = ag->vms.vms[i];
			int fd = gw_vm_ops(ag, vms[i])->watch_fd(vms[i]);
			pfds[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
		}
		int migrating = 0;
		for (size_t i = 0; i < nvm; i++)
			migrating |= vms[i]->state == GW_VM_MIGRATING;
		int pr = poll(pfds, np, migrating ? 100 : 1000);
		if (pr < 0 && errno != EINTR) {
			gw_err(SUBSYS, "poll: %s", strerror(errno));
			free(vms);
			break;
		}
		if (pr > 0) {
			if (pfds[0].revents & POLLIN) {
				struct signalfd_siginfo si;
				if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
					gw_info(SUBSYS,
						"signal %u: shutting down, VMs keep running",
						si.ssi_signo);
					stop = 1;
				}
			}
			/* VMs first: a handler below may add or delete VMs */
			for (size_t i = 0; i < nvm; i++) {
				struct pollfd *p = &pfds[vm_base + i];
				if (p->fd >= 0 && (p->revents & (POLLIN | POLLHUP | POLLERR)) &&
				    gw_vm_ops(ag, vms[i])->watch_fd(vms[i]) == p->fd) {
					gw_vm_ops(ag, vms[i])->reap(ag, vms[i]);
					if (gw_agent_mig_after_reap(ag, vms[i]))
						vms[i] = NULL;
				}
			}
			/* driver event streams (they may change or retire VMs: after the VMs) */
			for (size_t i = 0; i < ag->n_drivers; i++)
				if (pfds[drv_base + i].fd >= 0 && pfds[drv_base + i].revents)
					ag->drivers[i].ops->on_event(ag, &ag->drivers[i]);
			/* connections, from the last so that conn_close's swap is safe */
			size_t had = nconns;
			for (size_t i = had; i-- > 0;) {
				short re = pfds[conn_base + i].revents;
				if (!re)
					continue;
				int r = (re & POLLIN) ? gw_control_on_readable(ag, &conns[i])
						      : -ECONNRESET;
				if (r)
					conn_close(i);
			}
			if (pfds[1].revents & POLLIN)
				accept_clients(ag->listen_fd);
			if (pfds[2].fd >= 0 && (pfds[2].revents & POLLIN))
				gw_agent_mig_on_accept(ag);
		}
		/* every turn, also without events: it ends connections past their deadline */
		gw_metrics_dispatch(&metrics, pfds + metrics_base, pr > 0 ? nmetrics : 0);
		/* a migration ends inside the VM's process: ask the ones in flight, and look
		 * after active VMs whose connection was lost */
		for (size_t i = 0; i < nvm; i++) {
			struct gw_vm *vm = vms[i];
			if (!vm || gw_vmtable_find(&ag->vms, vm->name) != vm)
				continue;
			const struct gw_driver_ops *ops = gw_vm_ops(ag, vm);
			if (vm->state != GW_VM_MIGRATING &&
			    !(gw_vm_state_active(vm->state) && ops->watch_fd(vm) < 0))
				continue;
			ops->poll(ag, vm);
			if (!gw_vm_state_active(vm->state))
				gw_agent_mig_after_reap(ag, vm);
		}
		for (size_t i = 0; i < ag->n_drivers; i++)
			if (ag->drivers[i].ready && ag->drivers[i].ops->tick)
				ag->drivers[i].ops->tick(ag, &ag->drivers[i]);
		gw_agent_metrics_tick(ag);
		gw_ram_pool_tick(&ag->pool, migrating);
		free(vms);
	}
	free(pfds);
	return 0;
}

/* Which VM backend the VMMs will run guests on ([agent] vm_backend, auto: kvm where /dev/kvm
 * is usable, else process): asked once from godwit-vmm and logged. A host with none still
 * runs the agent; starting a VM then fails with the reason. */
static void probe_vm_backend(struct gw_agent_config *cfg)
{
	char cmd[PATH_MAX + 64], line[512] = "";
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' --probe-backend %s 2>&1", cfg->vmm_path, cfg->vm_backend);
	f = strchr(cfg->vmm_path, '\'') ? NULL : popen(cmd, "re");
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		line[strcspn(line, "\n")] = 0;
		st = pclose(f);
	} else {
		st = -1;
	}
	if (st == 0 && (!strcmp(line, "kvm") || !strcmp(line, "process"))) {
		snprintf(cfg->vm_backend_used, sizeof(cfg->vm_backend_used), "%s", line);
		gw_info(SUBSYS, "VM backend: %s (vm_backend = %s)%s", line, cfg->vm_backend,
			!strcmp(line, "process") ? ": guests run in ptrace-supervised sandboxes"
						 : "");
		return;
	}
	cfg->vm_backend_used[0] = 0;
	gw_err(SUBSYS, "VM backend %s: %s: VMs will not start on this host", cfg->vm_backend,
	       line[0] ? line : "godwit-vmm --probe-backend failed");
}

int main(int argc, char **argv)
{
	struct gw_agent ag = {.listen_fd = -1};
	char err[512];
	sigset_t mask;

	gw_log_set_ident("agent");
	gw_agent_config_defaults(&ag.cfg);
	int r = gw_agent_args_parse(&ag.cfg, argc, argv, err, sizeof(err));
	if (r == 1)
		return 0;
	if (r) {
		fprintf(stderr, "godwit-agent: %s\n", err);
		return 2;
	}
	gw_log_set_level((enum gw_log_level)ag.cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0) {
		gw_err(SUBSYS, "signalfd: %s", strerror(errno));
		return 1;
	}
	r = gw_vmtable_open(&ag.vms, ag.cfg.state_dir);
	if (r) {
		gw_err(SUBSYS, "state dir %s: %s", ag.cfg.state_dir, strerror(-r));
		return 1;
	}
	ag.listen_fd = gw_control_listen(ag.cfg.socket_path);
	if (ag.listen_fd < 0) {
		gw_err(SUBSYS, "control socket %s: %s%s", ag.cfg.socket_path,
		       strerror(-ag.listen_fd),
		       ag.listen_fd == -EADDRINUSE ? " (another agent answers there)" : "");
		return 1;
	}
	gw_info(SUBSYS, "godwit-agent %s node %s: state %s, socket %s, %zu VMs known%s%s",
		GW_VERSION, ag.cfg.node, ag.cfg.state_dir, ag.cfg.socket_path, ag.vms.count,
		ag.cfg.config_path[0] ? ", config " : "", ag.cfg.config_path);
	probe_vm_backend(&ag.cfg);
	gw_drivers_init(&ag);
	for (size_t i = 0; i < ag.vms.count; i++)
		gw_vm_ops(&ag, ag.vms.vms[i])->attach(&ag, ag.vms.vms[i]);
	gw_agent_mig_init(&ag);
	gw_ram_pool_init(&ag.pool, ag.cfg.incoming_ram_pool_mib);
	if (ag.cfg.incoming_ram_pool_mib)
		gw_info(SUBSYS, "incoming migrations get %llu MiB of pre-populated guest RAM",
			ag.cfg.incoming_ram_pool_mib);
	gw_agent_metrics_init(&ag);
	gw_metrics_init(&metrics);
	if (ag.cfg.metrics_listen[0]) {
		r = gw_metrics_listen(&metrics, ag.cfg.metrics_listen, gw_agent_metrics_render,
				      &ag);
		if (r)
			gw_err(SUBSYS, "metrics endpoint %s: %s: running without it",
			       ag.cfg.metrics_listen, strerror(-r));
		else
			gw_info(SUBSYS, "metrics: GET /metrics on %s (port %d)",
				ag.cfg.metrics_listen, gw_metrics_port(&metrics));
	}
	gw_sd_notify("READY=1\nSTATUS=running, %zu VMs known", ag.vms.count);
	r = run(&ag, sigfd);
	gw_sd_notify("STOPPING=1");
	gw_metrics_close(&metrics);
	gw_ram_pool_close(&ag.pool);
	gw_agent_mig_shutdown(&ag);
	while (nconns)
		conn_close(nconns - 1);
	close(ag.listen_fd);
	unlink(ag.cfg.socket_path);
	for (size_t i = 0; i < ag.vms.count; i++)
		if (ag.vms.vms[i]->vmm_fd >= 0)
			close(ag.vms.vms[i]->vmm_fd);
	gw_drivers_fini(&ag);
	gw_vmtable_close(&ag.vms);
	close(sigfd);
	return r ? 1 : 0;
}
