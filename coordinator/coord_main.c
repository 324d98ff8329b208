/* coord_main.c -- godwit-coordinator: configuration, start-up, and the poll loop. */
#include "coord.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_sdnotify.h"

#define SUBSYS	     "main"
#define TICK_MS	     50
#define RECONNECT_MS 500

static volatile sig_atomic_t stopping;
static struct gw_metrics_srv metrics; /* the Prometheus endpoint (disabled: listen_fd -1) */

static void on_signal(int sig)
{
	(void)sig;
	if (stopping < 2)
		stopping++;
}

static int set_str(char *dst, size_t len, const char *v)
{
	if (strlen(v) >= len)
		return -ENAMETOOLONG;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* metrics_listen = ADDR:PORT (IPv4 or [IPv6]), or empty for none; bound at start-up. */
static int set_metrics_listen(struct gw_coord_config *cfg, const char *v)
{
	if (*v && gw_metrics_addr_check(v))
		return -EINVAL;
	return set_str(cfg->metrics_listen, sizeof(cfg->metrics_listen), v);
}

/* [coordinator] keys, and [fence.HOST] sections (agent, timeout, anything else for stdin). */
static int config_cb(void *ctx, const char *section, const char *key, const char *value, int line)
{
	struct gw_coord_config *cfg = ctx;
	if (strcmp(section, "coordinator") == 0) {
		if (strcmp(key, "node") == 0)
			return set_str(cfg->node, sizeof(cfg->node), value);
		if (strcmp(key, "agent_socket") == 0)
			return set_str(cfg->agent_socket, sizeof(cfg->agent_socket), value);
		if (strcmp(key, "socket") == 0)
			return set_str(cfg->socket, sizeof(cfg->socket), value);
		if (strcmp(key, "state_dir") == 0)
			return set_str(cfg->state_dir, sizeof(cfg->state_dir), value);
		if (strcmp(key, "watchdog") == 0)
			return value[0] == '/'
				   ? set_str(cfg->watchdog, sizeof(cfg->watchdog), value)
				   : -EINVAL;
		if (strcmp(key, "watchdog_timeout") == 0) {
			unsigned long long v;
			int r = gw_parse_u64(value, 2, 3600, &v);
			cfg->watchdog_timeout_s = (unsigned)v;
			return r;
		}
		if (strcmp(key, "metrics_listen") == 0)
			return set_metrics_listen(cfg, value);
		if (strcmp(key, "evacuate_on_shutdown") == 0) {
			static const char *const modes[] = {"no", "yes", "always"};
			for (int i = 0; i < 3; i++)
				if (strcmp(value, modes[i]) == 0) {
					cfg->evacuate_on_shutdown = (enum gw_coord_evac_mode)i;
					return 0;
				}
			return -EINVAL;
		}
		if (strcmp(key, "shutdown_timeout") == 0) {
			unsigned long long v;
			int r = gw_parse_u64(value, 1, 86400, &v);
			cfg->shutdown_timeout_s = (unsigned)v;
			return r;
		}
		if (strcmp(key, "log_level") == 0) {
			enum gw_log_level l;
			if (gw_log_level_parse(value, &l))
				return -EINVAL;
			gw_log_set_level(l);
			return 0;
		}
		return -ENOENT;
	}
	if (strcmp(section, "balance") == 0) {
		int r = gw_coord_bal_config(&cfg->bal, key, value);
		if (r == -ENOENT)
			gw_warn("main", "line %d: [balance] %s: unknown key (ignored)", line, key);
		return r == -ENOENT ? 0 : r;
	}
	if (strncmp(section, "fence.", 6) != 0)
		return 0; /* other sections belong to the agent */
	const char *host = section + 6;
	struct gw_coord_fence_dev *d = NULL;
	for (size_t i = 0; i < cfg->n_fence; i++)
		if (strcmp(cfg->fence[i].host, host) == 0)
			d = &cfg->fence[i];
	if (!d) {
		/* a refused section adds no device (no half-made one with an empty host) */
		if (cfg->n_fence == GW_COORD_MAX_HOSTS || !*host ||
		    strlen(host) >= sizeof(cfg->fence[0].host))
			return -EINVAL;
		d = &cfg->fence[cfg->n_fence++];
		memset(d, 0, sizeof(*d));
		d->timeout_s = GW_COORD_FENCE_TIMEOUT_S;
		set_str(d->host, sizeof(d->host), host);
	}
	if (strcmp(key, "agent") == 0)
		return value[0] == '/' ? set_str(d->agent, sizeof(d->agent), value) : -EINVAL;
	if (strcmp(key, "timeout") == 0) {
		unsigned long long v;
		int r = gw_parse_u64(value, 1, 3600, &v);
		d->timeout_s = (unsigned)v;
		return r;
	}
	if (strcmp(key, "action") == 0 || strchr(value, '\n'))
		return -EINVAL; /* the coordinator decides the action */
	size_t used = strlen(d->params);
	int n = snprintf(d->params + used, sizeof(d->params) - used, "%s=%s\n", key, value);
	return n < 0 || (size_t)n >= sizeof(d->params) - used ? -E2BIG : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: godwit-coordinator [--config FILE] [--node NAME] [--socket PATH]\n"
		   "                          [--agent-socket PATH] [--state-dir DIR]\n"
		   "                          [--metrics-listen ADDR:PORT]\n"
		   "                          [--log-level debug|info|warn|error]\n"
		   "  --config FILE   INI file with [coordinator] and [fence.HOST] sections\n"
		   "                  (default " GW_COORD_DEFAULT_CONFIG " if it exists)\n"
		   "  flags override the file\n");
}

static int parse_args(int argc, char **argv, struct gw_coord_config *cfg)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"node", required_argument, NULL, 'n'},
					     {"socket", required_argument, NULL, 's'},
					     {"agent-socket", required_argument, NULL, 'a'},
					     {"state-dir", required_argument, NULL, 'd'},
					     {"log-level", required_argument, NULL, 'l'},
					     {"metrics-listen", required_argument, NULL, 'm'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *config = NULL, *node = NULL, *sock = NULL, *agent = NULL, *dir = NULL;
	const char *level = NULL, *mlisten = NULL;
	char err[512];
	int o, r;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'a':
			agent = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'l':
			level = optarg;
			break;
		case 'm':
			mlisten = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("godwit-coordinator %s\n", GW_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (!config && access(GW_COORD_DEFAULT_CONFIG, R_OK) == 0)
		config = GW_COORD_DEFAULT_CONFIG;
	if (config && (r = gw_config_load(config, config_cb, cfg, err, sizeof(err)))) {
		gw_err(SUBSYS, "config: %s", err);
		return r;
	}
	if ((node && set_str(cfg->node, sizeof(cfg->node), node)) ||
	    (sock && set_str(cfg->socket, sizeof(cfg->socket), sock)) ||
	    (agent && set_str(cfg->agent_socket, sizeof(cfg->agent_socket), agent)) ||
	    (dir && set_str(cfg->state_dir, sizeof(cfg->state_dir), dir)))
		return -ENAMETOOLONG;
	if (mlisten && set_metrics_listen(cfg, mlisten)) {
		gw_err(SUBSYS, "bad --metrics-listen '%s': want ADDR:PORT", mlisten);
		return -EINVAL;
	}
	if (level) {
		enum gw_log_level l;
		if (gw_log_level_parse(level, &l)) {
			gw_err(SUBSYS, "bad --log-level '%s'", level);
			return -EINVAL;
		}
		gw_log_set_level(l);
	}
	if (!cfg->node[0] && gethostname(cfg->node, sizeof(cfg->node)) < 0)
		return -errno;
	for (size_t i = 0; i < cfg->n_fence; i++)
		if (!cfg->fence[i].agent[0]) {
			gw_err(SUBSYS, "config: [fence.%s] has no agent = /path",
			       cfg->fence[i].host);
			return -EINVAL;
		}
	return 0;
}

/* SIGTERM: stop now, or first evacuate this host (coord_shutdown.c); a second one stops now. */
static bool keep_running(struct gw_coord *c)
{
	if (!stopping)
		return true;
	if (!c->shutdown_phase) {
		if (stopping > 1 || !gw_coord_shutdown_begin(c))
			return false;
		stopping = 1; /* signals from here on: count again */
		gw_sd_notify("STATUS=evacuating this host before stopping");
		return true;
	}
	if (stopping > 1) {
		gw_warn(SUBSYS, "signalled again: stopping without waiting for the evacuation");
		return false;
	}
	static unsigned long long next_extend;
	unsigned long long now = gw_now_mono_ms();
	if (now >= next_extend) { /* systemd: the stop takes longer than TimeoutStopSec */
		next_extend = now + 2000;
		gw_sd_notify("EXTEND_TIMEOUT_USEC=10000000");
	}
	return !gw_coord_shutdown_step(c);
}

static int run(struct gw_coord *c)
{
	struct pollfd pfd[3 + GW_COORD_MAX_CLIENTS + GW_METRICS_POLLFDS];
	unsigned long long next_connect = 0;
	while (keep_running(c)) {
		unsigned long long now = gw_now_mono_ms();
		if ((!c->cpg_ok || !c->vq_ok) && now >= next_connect) {
			if (gw_coord_cluster_init(c))
				next_connect = now + RECONNECT_MS;
		}
		size_t n = 0, ci[GW_COORD_MAX_CLIENTS];
		int i_cpg = -1, i_vq = -1;
		pfd[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
		if (c->cpg_ok) {
			i_cpg = (int)n;
			pfd[n++] = (struct pollfd){.fd = c->cpg_fd, .events = POLLIN};
		}
		if (c->vq_ok) {
			i_vq = (int)n;
			pfd[n++] = (struct pollfd){.fd = c->vq_fd, .events = POLLIN};
		}
		size_t first_client = n, nc = 0;
		for (size_t i = 0; i < GW_COORD_MAX_CLIENTS; i++)
			if (c->clients[i].fd >= 0) {
				ci[nc++] = i;
				pfd[n++] =
				    (struct pollfd){.fd = c->clients[i].fd, .events = POLLIN};
			}
		size_t first_metrics = n, nm = gw_metrics_pollfds(&metrics, pfd + n);
		n += nm;
		int pr = poll(pfd, n, TICK_MS);
		if (pr < 0 && errno != EINTR) {
			gw_err(SUBSYS, "poll: %s", strerror(errno));
			return -errno;
		}
		if (pr > 0) {
			if (i_cpg >= 0 && pfd[i_cpg].revents)
				gw_coord_cluster_dispatch_cpg(c);
			if (i_vq >= 0 && c->vq_ok && pfd[i_vq].revents)
				gw_coord_cluster_dispatch_vq(c);
			for (size_t k = 0; k < nc; k++)
				if (pfd[first_client + k].revents)
					gw_coord_api_readable(c, ci[k]);
			if (pfd[0].revents & POLLIN)
				gw_coord_api_accept(c);
		}
		/* every turn, also without events: it ends connections past their deadline */
		gw_metrics_dispatch(&metrics, pfd + first_metrics, pr > 0 ? nm : 0);
		gw_coord_tick(c);
		gw_sd_watchdog_tick();
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct gw_coord c; /* large: keep it off the stack */
	char path[PATH_MAX + 32];
	int r;

	gw_log_set_ident("coordinator");
	signal(SIGPIPE, SIG_IGN);
	snprintf(c.cfg.socket, sizeof(c.cfg.socket), "%s", GW_COORD_DEFAULT_SOCKET);
	snprintf(c.cfg.agent_socket, sizeof(c.cfg.agent_socket), "%s", GW_COORD_DEFAULT_AGENT);
	snprintf(c.cfg.state_dir, sizeof(c.cfg.state_dir), "%s", GW_COORD_DEFAULT_STATE);
	c.cfg.watchdog_timeout_s = GW_COORD_WATCHDOG_TIMEOUT_S;
	c.cfg.shutdown_timeout_s = GW_COORD_SHUTDOWN_TIMEOUT_S;
	gw_coord_bal_defaults(&c.cfg.bal);
	if (parse_args(argc, argv, &c.cfg))
		return 2;
	c.listen_fd = c.cpg_fd = c.vq_fd = c.wd_fd = -1;
	if ((r = gw_mkdir_p(c.cfg.state_dir, 0700))) {
		gw_err(SUBSYS, "state dir %s: %s", c.cfg.state_dir, strerror(-r));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/cluster.state", c.cfg.state_dir);
	gw_coord_state_init(&c.st, path);
	r = gw_coord_state_load(&c.st);
	if (r && r != -ENOENT)
		return 1;
	gw_info(SUBSYS,
		"node %s: durable state %s (%zu hosts, %zu VMs), %zu fence devices, watchdog %s",
		c.cfg.node, path, c.st.n_hosts, c.st.n_vms, c.cfg.n_fence,
		c.cfg.watchdog[0] ? c.cfg.watchdog : "none");
	if ((r = gw_coord_api_listen(&c))) {
		gw_err(SUBSYS, "control socket %s: %s", c.cfg.socket, strerror(-r));
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	gw_info(SUBSYS, "listening on %s, agent at %s", c.cfg.socket, c.cfg.agent_socket);
	gw_metrics_init(&metrics);
	if (c.cfg.metrics_listen[0]) {
		r = gw_metrics_listen(&metrics, c.cfg.metrics_listen, gw_coord_metrics_render, &c);
		if (r)
			gw_err(SUBSYS, "metrics endpoint %s: %s: running without it",
			       c.cfg.metrics_listen, strerror(-r));
		else if ((r = gw_coord_status_routes(&c, &metrics)))
			gw_err(SUBSYS, "status page routes: %s", strerror(-r));
		else
			gw_info(SUBSYS,
				"metrics: GET /metrics on %s (port %d); status page: GET / and "
				"/api/state",
				c.cfg.metrics_listen, gw_metrics_port(&metrics));
	}
	/* the periodic work, in this order (coord_tick.c) */
	gw_coord_tick_register(&c, "selffence", 0, gw_coord_selffence_tick);
	gw_coord_tick_register(&c, "cluster", 0, gw_coord_cluster_tick);
	gw_coord_tick_register(&c, "hello", GW_COORD_STEP_SYNCED, gw_coord_hello_step);
	gw_coord_tick_register(&c, "ha", GW_COORD_STEP_SYNCED, gw_coord_ha_step);
	gw_coord_tick_register(&c, "migrate", GW_COORD_STEP_SYNCED, gw_coord_migrate_step);
	gw_coord_tick_register(&c, "watch", GW_COORD_STEP_SYNCED, gw_coord_watch_step);
	gw_coord_tick_register(&c, "admin", GW_COORD_STEP_SYNCED, gw_coord_admin_tick);
	gw_coord_tick_register(&c, "reconcile", GW_COORD_STEP_SYNCED, gw_coord_reconcile_tick);
	gw_coord_tick_register(&c, "shutdown-return", GW_COORD_STEP_SYNCED,
			       gw_coord_shutdown_return_step);
	gw_sd_notify("READY=1\nSTATUS=running");
	gw_coord_tick_register(&c, "balance", GW_COORD_STEP_SYNCED, gw_coord_drs_step);
	r = run(&c);
	gw_sd_notify("STOPPING=1");
	gw_metrics_close(&metrics);
	gw_info(SUBSYS, "stopping");
	for (size_t i = 0; i < GW_COORD_MAX_HOSTS; i++)
		if (c.fence[i].host[0])
			gw_coord_fence_abort(&c.fence[i]);
	gw_coord_selffence_close(&c);
	gw_coord_cluster_close(&c);
	unlink(c.cfg.socket);
	gw_coord_state_free(&c.st);
	return r ? 1 : 0;
}
